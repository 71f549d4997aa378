"""What an operator's script does against a fresh deployment, with the official
`apache-airflow-client` 3.3.2. It runs in the client's own virtualenv, so it imports
only the client and the standard library.

    python compose_client_script.py trigger HOST USERNAME PASSWORD DAG_ID
        waits until the DAG is listed, unpauses it, triggers a run; prints its run id
    python compose_client_script.py finish HOST USERNAME PASSWORD DAG_ID RUN_ID TASK_ID LINE
        waits for the run to succeed, then reads TASK_ID's log and looks for LINE

Prints one line per step; exits non-zero at the first step that fails.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from airflow_client import client
from airflow_client.client.api import dag_api, dag_run_api, task_instance_api
from airflow_client.client.models import DAGPatchBody, TriggerDAGRunPostBody

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from airflow_client_script import token_for

WAIT_SECONDS = 240


def step(name: str) -> None:
    print(f"ok {name}", flush=True)


def api_client(host: str, username: str, password: str) -> client.ApiClient:
    token = token_for(host, username, password)
    return client.ApiClient(client.Configuration(host=host, access_token=token))


def trigger(api: client.ApiClient, dag_id: str) -> None:
    dags = dag_api.DAGApi(api)
    deadline = time.monotonic() + WAIT_SECONDS
    while dag_id not in {d.dag_id for d in dags.get_dags(dag_id_pattern=dag_id).dags}:
        assert time.monotonic() < deadline, f"{dag_id} was never listed"
        time.sleep(0.5)
    step(f"{dag_id} listed by GET /api/v2/dags")
    assert dags.patch_dag(dag_id, DAGPatchBody(is_paused=False)).is_paused is False
    step(f"{dag_id} unpaused")
    run = dag_run_api.DagRunApi(api).trigger_dag_run(
        dag_id, TriggerDAGRunPostBody(logical_date=datetime.now(UTC))
    )
    assert run is not None, "trigger_dag_run answered an undocumented status"
    step(f"{dag_id} triggered")
    print(f"run_id={run.dag_run_id}", flush=True)


def finish(api: client.ApiClient, dag_id: str, run_id: str, task_id: str, line: str) -> None:
    runs = dag_run_api.DagRunApi(api)
    deadline = time.monotonic() + WAIT_SECONDS
    run = runs.get_dag_run(dag_id, run_id)
    while run.state.value not in ("success", "failed"):
        assert time.monotonic() < deadline, f"run still {run.state.value}"
        time.sleep(0.5)
        run = runs.get_dag_run(dag_id, run_id)
    assert run.state.value == "success", run
    step(f"{dag_id} {run_id} succeeded")
    instances = task_instance_api.TaskInstanceApi(api)
    ti = instances.get_task_instance(dag_id, run_id, task_id)
    log = instances.get_log(dag_id, run_id, task_id, ti.try_number)
    assert any(line in str(entry) for entry in log.content), log
    step(f"{task_id}'s log (try {ti.try_number}) holds {line!r}")


def main(action: str, host: str, username: str, password: str, *rest: str) -> None:
    with api_client(host, username, password) as api:
        if action == "trigger":
            trigger(api, *rest)
        elif action == "finish":
            finish(api, *rest)
        else:
            raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
