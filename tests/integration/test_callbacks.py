"""Callbacks and notifiers, each run exactly once per event, against local sinks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.dag_test import run_dag_test
from tests.integration.daemons import daemon_env, running, wait_for
from tests.integration.sinks import SmtpSink, WebhookSink, serving
from tests.integration.test_scheduler import parse_and_unpause, runs_of
from tradewind.models import CallbackRequest
from tradewind.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    with serving(SmtpSink()) as sink:
        monkeypatch.setenv("TRADEWIND_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("TRADEWIND_SMTP_PORT", str(sink.port))
        yield sink


@pytest.fixture
def webhook():  # type: ignore[no-untyped-def]
    with serving(WebhookSink()) as sink:
        yield sink


def test_notifiers_and_email_on_failure_in_a_test_run(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    smtp: SmtpSink,
    webhook: WebhookSink,
) -> None:
    (dags_folder / "notify.py").write_text(
        textwrap.dedent(f"""
    from tradewind import DAG
    from tradewind.notifications import EmailNotifier, WebhookNotifier
    from tradewind.operators.bash import BashOperator

    with DAG("notify"):
        BashOperator(
            task_id="breaks",
            bash_command="exit 4",
            email=["oncall@example.com"],
            email_on_failure=True,
            on_failure_callback=WebhookNotifier(url={webhook.url!r}),
        )
        BashOperator(
            task_id="works",
            bash_command="echo fine",
            on_success_callback=EmailNotifier(to="team@example.com",
                                              subject="{{{{ ti.task_id }}}} done"),
        )
    """)
    )
    from tradewind.settings import get_settings

    result = run_dag_test(session_factory, get_settings(), "notify", echo=None)
    assert str(result.state) == "failed"
    subjects = sorted(m["Subject"].strip() for m in smtp.messages)
    assert subjects == sorted(["works done", f"Tradewind: notify.breaks failed ({result.run_id})"])
    failure_mail = next(m for m in smtp.messages if m["To"] == "oncall@example.com")
    assert "non-zero exit code 4" in failure_mail.get_content()
    assert len(webhook.posts) == 1
    assert "notify.breaks" in webhook.posts[0]["text"]


def test_scheduler_runs_dag_callbacks_and_lost_try_callbacks_once(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    webhook: WebhookSink,
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    (dags_folder / "watched.py").write_text(
        textwrap.dedent(f"""
    import os, time
    from tradewind import DAG, task
    from tradewind.notifications import WebhookNotifier

    hook = WebhookNotifier(url={webhook.url!r}, text="{{{{ reason or ti.state }}}}")

    with DAG("watched", on_failure_callback=hook, on_success_callback=hook):
        @task(on_failure_callback=WebhookNotifier(url={webhook.url!r},
                                                  text="lost: {{{{ exception }}}}"))
        def doomed():
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            time.sleep(60)

        doomed()
    """)
    )
    parse_and_unpause(session_factory, settings, "watched")
    env = daemon_env(settings)
    with running(["scheduler", "--no-dag-processor"], env, tmp_path / "scheduler.log") as daemon:
        with running(["dags", "trigger", "watched"], env, tmp_path / "trigger.log") as trigger:
            trigger.process.wait(timeout=60)
        pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), "the task to start"))
        import os
        import signal

        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: len(webhook.posts) >= 2, "both callbacks", timeout=60)
    assert daemon.process.returncode == 0
    texts = sorted(p["text"] for p in webhook.posts)
    assert texts == ["failed", "lost: the try's process was killed by SIGKILL"]
    assert [r.state for r in runs_of(session_factory, "watched")] == ["failed"]
    with session_factory() as session:
        requests = list(session.scalars(select(CallbackRequest)))
    assert sorted(r.kind for r in requests) == ["dag_failure", "task_failure"]
    assert {r.state for r in requests} == {"done"}
