"""`TriggerDagRunOperator` without a database: its options and its logical date."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tradewind import DAG
from tradewind.errors import DagDefinitionError, TradewindError
from tradewind.operators.trigger_dagrun import TriggerDagRunOperator

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def make(**kwargs: Any) -> TriggerDagRunOperator:
    with DAG("controller"):
        return TriggerDagRunOperator(task_id="kick", **{"trigger_dag_id": "target", **kwargs})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trigger_dag_id": ""}, "trigger_dag_id must be a DAG id"),
        ({"conf": ["not", "a", "dict"]}, "conf must be a dict, got list"),
        ({"allowed_states": ["done"]}, "'done' is not a state of a run"),
        ({"failed_states": ["success"]}, "both allowed and failed"),
        ({"poke_interval": -5}, "poke_interval must be a timedelta or a number of seconds"),
    ],
)
def test_bad_options_are_refused_when_the_file_is_parsed(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(DagDefinitionError, match=message) as raised:
        make(**options)
    assert "task 'kick'" in str(raised.value)
    assert raised.value.filename == __file__


def test_the_logical_date_is_now_unless_given() -> None:
    assert make()._logical_date(NOW) == NOW
    assert make(logical_date=None)._logical_date(NOW) is None
    assert make(logical_date="2026-02-01T00:00:00")._logical_date(NOW) == datetime(
        2026, 2, 1, tzinfo=UTC
    )
    given = datetime(2026, 2, 1, 6, tzinfo=UTC)
    assert make(logical_date=given)._logical_date(NOW) == given
    with pytest.raises(TradewindError, match="'yesterday' is not an ISO 8601 date-time"):
        make(logical_date="yesterday")._logical_date(NOW)


def test_templated_fields() -> None:
    assert set(TriggerDagRunOperator.template_fields) == {
        "trigger_dag_id",
        "trigger_run_id",
        "logical_date",
        "conf",
    }
