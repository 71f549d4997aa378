"""Nightly batch-scoring export driven by shell commands and Jinja templates.

What this example shows:

* ``BashOperator`` commands rendered with Jinja just before they run: ``{{ ds }}`` and
  ``{{ ds_nodash }}``, run params (``{{ params.batch_size }}``), macros
  (``{{ macros.ds_add(ds, -1) }}``), another task's output
  (``{{ ti.xcom_pull(task_ids='make_workdir') }}``) and a Variable with a default
  (``{{ var.value.get('scores_destination', 'local-disk') }}``);
* the last line a command prints becomes its XCom, so shell tasks can hand a path or a
  count to the next task;
* ``@task.bash``: a Python function that returns the command to run, which is then
  rendered as a template too;
* ``ShortCircuitOperator``: when the export is too small, everything after it is
  skipped instead of publishing a bad file;
* ``chain(...)`` to write a long sequence of dependencies in one call.

The commands only use bash and coreutils and write under ``$TMPDIR`` (``/tmp`` if unset).
"""

from __future__ import annotations

import logging
import shlex
from datetime import UTC, datetime, timedelta

from tradewind import DAG, Param, chain, task
from tradewind.operators.bash import BashOperator
from tradewind.operators.python import ShortCircuitOperator

logger = logging.getLogger(__name__)

DAG_ID = "bash_and_templates"

MAKE_WORKDIR = """
set -euo pipefail
dir="${TMPDIR:-/tmp}/tradewind_examples/bash_and_templates/{{ ds_nodash }}"
mkdir -p "$dir"
echo "$dir"
"""

# Scores are a deterministic function of the row number, so every rerun writes the same file.
EXPORT_SCORES = """
set -euo pipefail
out="{{ ti.xcom_pull(task_ids='make_workdir') }}/scores.csv"
echo "scoring with model {{ params.model_version }} on events {{ macros.ds_add(ds, -1) }}..{{ ds }}"
echo "destination: {{ var.value.get('scores_destination', 'local-disk') }}"
echo "run: $SCORING_RUN"
{
  echo "customer_id,score,scored_for"
  for i in $(seq 1 {{ params.batch_size }}); do
    printf 'c%05d,0.%02d,{{ ds }}\\n' "$i" $(( (i * 37) % 100 ))
  done
} > "$out.partial"
mv "$out.partial" "$out"
tail -n +2 "$out" | wc -l
"""


def export_is_large_enough(exported_rows: str, params: dict[str, int]) -> bool:
    """Continue only when the export has at least ``min_rows`` rows."""
    rows = int(exported_rows)
    logger.info("Export has %d rows; at least %d needed", rows, params["min_rows"])
    return rows >= params["min_rows"]


@task.bash
def publish_manifest(workdir: str) -> str:
    """Checksum the export next to it; the returned command is rendered, then run."""
    return (
        f"cd {shlex.quote(workdir)} && sha256sum scores.csv > scores.csv.sha256"
        " && echo published scores.csv for {{ ds }}"
    )


with DAG(
    DAG_ID,
    description="Export nightly churn scores with shell commands and templates.",
    schedule="0 4 * * *",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={"owner": "ml-platform", "retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "model_version": Param("churn-v3", type="string", description="Model used to score."),
        "batch_size": Param(500, type="integer", minimum=1, maximum=100_000),
        "min_rows": Param(100, type="integer", minimum=0, description="Smallest export to ship."),
    },
    tags=["bash", "templates", "example"],
    doc_md=__doc__,
):
    make_workdir = BashOperator(task_id="make_workdir", bash_command=MAKE_WORKDIR)

    export_scores = BashOperator(
        task_id="export_scores",
        bash_command=EXPORT_SCORES,
        # Keep PATH and friends from the worker; add one variable of our own.
        env={"SCORING_RUN": "{{ run_id }}"},
        append_env=True,
    )

    check_size = ShortCircuitOperator(
        task_id="export_is_large_enough",
        python_callable=export_is_large_enough,
        op_kwargs={"exported_rows": "{{ ti.xcom_pull(task_ids='export_scores') }}"},
    )

    manifest = publish_manifest(make_workdir.output)

    announce = BashOperator(
        task_id="announce",
        bash_command=(
            "echo \"{{ ti.xcom_pull(task_ids='publish_manifest') }}"
            ' (run {{ run_id }}, previous day {{ macros.ds_add(ds, -1) }})"'
        ),
    )

    chain(make_workdir, export_scores, check_size, manifest, announce)
