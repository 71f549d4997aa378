"""A user's script for the official `apache-airflow-client` 3.3.2, run unchanged
against Tradewind. It runs in the client's own virtualenv (never Tradewind's), so it
imports only the client and the standard library.

    python airflow_client_script.py HOST USERNAME PASSWORD

Prints one line per step and exits non-zero at the first step that fails.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request

from airflow_client import client
from airflow_client.client.api import (
    connection_api,
    dag_api,
    dag_run_api,
    import_error_api,
    monitor_api,
    pool_api,
    task_instance_api,
    variable_api,
    version_api,
    x_com_api,
)
from airflow_client.client.exceptions import NotFoundException, UnauthorizedException
from airflow_client.client.models import (
    ConnectionBody,
    DAGPatchBody,
    PoolBody,
    PoolPatchBody,
    TriggerDAGRunPostBody,
    VariableBody,
)


def step(name: str) -> None:
    print(f"ok {name}", flush=True)


def token_for(host: str, username: str, password: str) -> str:
    request = urllib.request.Request(
        f"{host}/auth/token",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 201, answer.status
        return str(json.load(answer)["access_token"])


def main(host: str, username: str, password: str) -> None:
    anonymous = client.ApiClient(client.Configuration(host=host))
    health = monitor_api.MonitorApi(anonymous).get_health()
    assert health.metadatabase.status == "healthy", health
    step("health")
    assert version_api.VersionApi(anonymous).get_version().version
    step("version")
    try:
        dag_api.DAGApi(anonymous).get_dags()
        raise AssertionError("listing DAGs without a token worked")
    except UnauthorizedException:
        step("401 without a token")

    configuration = client.Configuration(
        host=host, access_token=token_for(host, username, password)
    )
    with client.ApiClient(configuration) as api:
        dags = dag_api.DAGApi(api)
        listed = dags.get_dags(limit=100, tags=["client"])
        assert [d.dag_id for d in listed.dags] == ["client_demo"], listed
        step("get_dags")
        try:
            dags.get_dag("no_such_dag")
            raise AssertionError("an unknown DAG was found")
        except NotFoundException:
            step("404 for an unknown DAG")
        assert dags.patch_dag("client_demo", DAGPatchBody(is_paused=False)).is_paused is False
        step("patch_dag (unpause)")
        details = dags.get_dag_details("client_demo")
        assert details.params is not None
        step("get_dag_details")

        runs = dag_run_api.DagRunApi(api)
        run = runs.trigger_dag_run(
            "client_demo",
            TriggerDAGRunPostBody(logical_date=None, conf={"greeting": "hello"}),
        )
        assert run is not None, "trigger_dag_run answered an undocumented status"
        assert run.state.value == "queued", run
        step("trigger_dag_run")
        deadline = time.monotonic() + 120
        while run.state.value not in ("success", "failed"):
            assert time.monotonic() < deadline, f"run still {run.state}"
            time.sleep(0.5)
            run = runs.get_dag_run("client_demo", run.dag_run_id)
        assert run.state.value == "success", run
        step("get_dag_run until success")
        assert runs.get_dag_runs("client_demo").total_entries == 1
        step("get_dag_runs")

        instances = task_instance_api.TaskInstanceApi(api)
        tis = instances.get_task_instances("client_demo", run.dag_run_id)
        assert {t.task_id: t.state.value for t in tis.task_instances} == {
            "greet": "success",
            "shout": "success",
        }, tis
        step("get_task_instances")
        log = instances.get_log("client_demo", run.dag_run_id, "greet", 1)
        assert any("hello from client_demo" in str(line) for line in log.content), log
        step("get_log")
        entry = x_com_api.XComApi(api).get_xcom_entry(
            "client_demo", "greet", run.dag_run_id, "return_value"
        )
        assert entry.actual_instance.value == "hello", entry
        step("get_xcom_entry")

        variables = variable_api.VariableApi(api)
        variables.post_variable(VariableBody(key="client_var", value="v1"))
        variables.patch_variable("client_var", VariableBody(key="client_var", value="v2"))
        assert variables.get_variable("client_var").value == "v2"
        variables.delete_variable("client_var")
        assert variables.get_variables().total_entries == 0
        step("variables CRUD")

        connections = connection_api.ConnectionApi(api)
        connections.post_connection(
            ConnectionBody(connection_id="client_conn", conn_type="http", password="secret")
        )
        assert connections.get_connection("client_conn").password == "***"
        connections.delete_connection("client_conn")
        step("connections CRUD")

        pools = pool_api.PoolApi(api)
        pools.post_pool(PoolBody(name="client_pool", slots=3))
        patched = pools.patch_pool(
            "client_pool", PoolPatchBody(pool="client_pool", slots=5, include_deferred=False)
        )
        assert patched.slots == 5
        assert {p.name for p in pools.get_pools().pools} == {"default_pool", "client_pool"}
        pools.delete_pool("client_pool")
        step("pools CRUD")

        errors = import_error_api.ImportErrorApi(api).get_import_errors()
        assert errors.total_entries == 1, errors
        assert errors.import_errors[0].filename.endswith("broken.py")
        step("get_import_errors")
    print("all steps passed")


if __name__ == "__main__":
    main(*sys.argv[1:4])
