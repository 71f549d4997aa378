"""`Param` and `ParamsDict`: defaults, JSON Schema checks of a run's conf, serialization."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from tradewind import DAG, Param
from tradewind.errors import ParamValidationError
from tradewind.sdk.params import NOTSET, ParamsDict, params_from_dump


@pytest.fixture
def params() -> ParamsDict:
    return ParamsDict(
        {
            "epochs": Param(10, type="integer", minimum=1, description="Training epochs"),
            "segment": Param("retail", enum=["retail", "smb", "enterprise"]),
            "table": Param(type="string", minLength=3),
            "dry_run": False,
        }
    )


# --- defining params ----------------------------------------------------------------


def test_params_read_like_a_dict_of_default_values(params: ParamsDict) -> None:
    assert list(params) == ["epochs", "segment", "table", "dry_run"]
    assert len(params) == 4
    assert params["epochs"] == 10
    assert params["dry_run"] is False
    assert params["table"] is NOTSET
    assert params.get("missing", "fallback") == "fallback"


def test_plain_values_are_wrapped_in_params(params: ParamsDict) -> None:
    wrapped = params.get_param("dry_run")

    assert isinstance(wrapped, Param)
    assert wrapped.value is False
    assert wrapped.schema == {}


def test_param_keeps_its_description_and_schema() -> None:
    param = Param(5, description="How many", type="integer", maximum=9)

    assert param.has_value
    assert param.description == "How many"
    assert param.schema == {"type": "integer", "maximum": 9, "description": "How many"}
    assert not Param().has_value


def test_dag_params_are_available_on_the_dag() -> None:
    dag = DAG("d", params={"limit": Param(5, type="integer"), "region": "eu"})

    assert dict(dag.params) == {"limit": 5, "region": "eu"}


def test_none_default_is_allowed_when_the_schema_accepts_it() -> None:
    optional = ParamsDict({"note": Param(None, type=["null", "string"])})

    assert optional.resolve() == {"note": None}


# --- resolving a run's conf ---------------------------------------------------------


def test_resolve_uses_defaults_and_conf_overrides(params: ParamsDict) -> None:
    values = params.resolve({"table": "orders", "epochs": 3})

    assert values == {"epochs": 3, "segment": "retail", "table": "orders", "dry_run": False}


def test_conf_keys_that_are_not_declared_are_kept(params: ParamsDict) -> None:
    values = params.resolve({"table": "orders", "extra": [1, 2]})

    assert values["extra"] == [1, 2]


@pytest.mark.parametrize(
    ("conf", "fragment"),
    [
        ({"epochs": "ten"}, "param 'epochs': 'ten' is not of type 'integer'"),
        ({"epochs": 0}, "param 'epochs': 0 is less than the minimum of 1"),
        ({"segment": "consumer"}, "param 'segment': 'consumer' is not one of"),
        ({"table": "ab"}, "param 'table': 'ab' is too short"),
    ],
)
def test_resolve_checks_conf_against_the_schema(
    params: ParamsDict, conf: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ParamValidationError) as info:
        params.resolve({"table": "orders", **conf})

    assert fragment in str(info.value)


def test_required_param_without_a_value_fails(params: ParamsDict) -> None:
    with pytest.raises(ParamValidationError, match="param 'table' is required and has no value"):
        params.resolve({})


def test_none_conf_means_defaults_only() -> None:
    assert ParamsDict({"a": 1}).resolve(None) == {"a": 1}


def test_nested_schema_errors_name_the_path() -> None:
    nested = ParamsDict(
        {"window": Param({"days": 1}, type="object", properties={"days": {"type": "integer"}})}
    )

    with pytest.raises(ParamValidationError, match=r"param 'window'\['days'\]"):
        nested.resolve({"window": {"days": "one"}})


def test_resolved_values_are_copies() -> None:
    defaults = ParamsDict({"items": [1]})

    defaults.resolve()["items"].append(2)

    assert defaults["items"] == [1]


# --- merging ------------------------------------------------------------------------


def test_merged_lets_the_other_side_win() -> None:
    base = ParamsDict({"a": 1, "b": Param(2, type="integer")})

    merged = base.merged({"b": 3, "c": 4})

    assert dict(merged) == {"a": 1, "b": 3, "c": 4}
    assert dict(base) == {"a": 1, "b": 2}


def test_merged_with_another_params_dict_keeps_its_schemas() -> None:
    merged = ParamsDict({"a": 1}).merged(ParamsDict({"a": Param(5, minimum=2)}))

    with pytest.raises(ParamValidationError, match="minimum of 2"):
        merged.resolve({"a": 1})


# --- serialization ------------------------------------------------------------------


def test_dump_is_json(params: ParamsDict) -> None:
    dumped = params.dump()

    assert json.loads(json.dumps(dumped)) == dumped
    assert dumped["epochs"] == {
        "value": 10,
        "has_default": True,
        "description": "Training epochs",
        "schema": {"type": "integer", "minimum": 1, "description": "Training epochs"},
    }
    assert dumped["table"]["has_default"] is False


def test_params_from_dump_round_trips(params: ParamsDict) -> None:
    rebuilt = params_from_dump(json.loads(json.dumps(params.dump())))

    assert rebuilt.dump() == params.dump()
    assert dict(rebuilt) == dict(params)
    assert rebuilt.resolve({"table": "orders"}) == params.resolve({"table": "orders"})
    with pytest.raises(ParamValidationError, match="'table' is required"):
        rebuilt.resolve({})
    with pytest.raises(ParamValidationError, match="minimum of 1"):
        rebuilt.resolve({"table": "orders", "epochs": 0})


def test_params_from_dump_keeps_a_none_default() -> None:
    original = ParamsDict({"note": Param(None, type=["null", "string"])})

    rebuilt = params_from_dump(original.dump())

    assert rebuilt.resolve() == {"note": None}


def test_the_schema_validator_is_loaded_by_the_first_dag_that_needs_it() -> None:
    """A fork server imports jsonschema with the first DAG file that defines a param with
    a schema (so every try forked from it has it), and never for DAGs without one."""
    script = textwrap.dedent(
        """
        import sys
        from tradewind import DAG, Param
        with DAG("plain", params={"n": 1, "name": Param("x")}):
            pass
        print("jsonschema" in sys.modules)
        with DAG("checked", params={"n": Param(type="integer")}):
            pass
        print("jsonschema" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["False", "True"]
