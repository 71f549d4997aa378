"""The README stays true: every setting is documented, and CI runs its test command."""

from __future__ import annotations

from pathlib import Path

from tradewind.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"{ENV_PREFIX}{name.upper()}"
        for name in Settings.model_fields
        if f"`{ENV_PREFIX}{name.upper()}`" not in readme
    ]
    assert missing == []


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    command = "pip install -e '.[dev]' && python -m pytest"
    assert f"```bash\n{command}\n```" in readme
    assert command in (ROOT / ".ci" / "run").read_text()
