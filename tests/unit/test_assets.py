"""Assets in DAG files, without a database: identity, conditions, schedules and how
they are stored."""

from __future__ import annotations

import pytest

from tradewind import DAG, Asset, AssetAll, AssetAny, Dataset, task
from tradewind.errors import DagDefinitionError
from tradewind.schedules import deserialize_schedule, schedule_from_argument
from tradewind.schedules.assets import AssetSchedule
from tradewind.sdk.assets import load_condition
from tradewind.serialization import serialize_dag

A, B, C = Asset("s3://a"), Asset("s3://b"), Asset("s3://c")


def test_an_asset_is_its_uri_and_the_name_defaults_to_it() -> None:
    assert Asset("s3://a") == Asset(uri="s3://a")
    assert Asset("s3://a").name == "s3://a"
    assert Asset(name="orders").uri == "orders"
    assert Asset("s3://a", name="raw") == Asset("s3://a", name="raw")
    assert Dataset is Asset


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs a URI or a name"),
        ({"uri": "  "}, "needs a URI or a name"),
        ({"uri": "x" * 1501}, "at most 1500 characters"),
    ],
)
def test_a_bad_asset_is_refused(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(DagDefinitionError, match=message):
        Asset(**kwargs)


@pytest.mark.parametrize(
    ("condition", "updated", "met"),
    [
        (A & B, {"s3://a"}, False),
        (A & B, {"s3://a", "s3://b"}, True),
        (A | B, {"s3://b"}, True),
        (A & (B | C), {"s3://a", "s3://c"}, True),
        (A & (B | C), {"s3://b", "s3://c"}, False),
        (AssetAny(A, AssetAll(B, C)), {"s3://b", "s3://c"}, True),
    ],
)
def test_conditions_combine_with_and_and_or(
    condition: AssetAll | AssetAny, updated: set[str], met: bool
) -> None:
    assert condition.evaluate(updated) is met
    assert load_condition(condition.dump()) == condition


def test_a_list_of_assets_schedules_on_all_of_them() -> None:
    schedule = schedule_from_argument([A, B])
    assert isinstance(schedule, AssetSchedule)
    assert schedule.condition == AssetAll(A, B)
    assert schedule.summary == "Asset"
    assert deserialize_schedule(schedule.serialize()) == schedule
    assert isinstance(schedule_from_argument(A | B), AssetSchedule)


def test_only_assets_combine() -> None:
    with pytest.raises(DagDefinitionError, match=r"combines Assets with & and \|"):
        A & "s3://b"  # type: ignore[operator]
    with pytest.raises(DagDefinitionError, match="names no asset"):
        schedule_from_argument([])


def test_a_dag_stores_its_condition_and_its_tasks_outlets() -> None:
    with DAG("consumer", schedule=A & (B | C)) as dag:

        @task(outlets=[Asset("s3://out/{{ ds }}", name="out"), "not an asset"])
        def write() -> None:
            pass

        @task
        def other() -> None:
            pass

        write() >> other()

    stored = serialize_dag(dag)
    assert stored["timetable_type"] == "AssetTriggeredTimetable"
    assert load_condition(stored["schedule"]["condition"]) == A & (B | C)
    tasks = {t["task_id"]: t for t in stored["tasks"]}
    assert tasks["write"]["outlets"] == [
        {"uri": "s3://out/{{ ds }}", "name": "out", "group": "asset"}
    ]
    assert "outlets" not in tasks["other"]  # no key: older DAGs keep their content hash
