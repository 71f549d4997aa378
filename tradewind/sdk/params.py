"""`Param`: a run parameter with a default and a JSON Schema, checked when a run is created.

Example::

    with DAG("train", params={
        "epochs": Param(10, type="integer", minimum=1, description="Training epochs"),
        "segment": Param("retail", enum=["retail", "smb", "enterprise"]),
    }):
        ...
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

from tradewind.errors import DagDefinitionError, ParamValidationError


class _NotSet:
    _instance: _NotSet | None = None

    def __new__(cls) -> _NotSet:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOTSET"

    def __bool__(self) -> bool:
        return False


NOTSET: Any = _NotSet()


class Param:
    """A parameter: ``Param(default, description=..., **json_schema)``.

    Keyword arguments other than ``description`` form the JSON Schema the value must
    satisfy (``type``, ``enum``, ``minimum``, ``maxLength``, ``format``, ...).
    """

    def __init__(
        self,
        default: Any = NOTSET,
        description: str | None = None,
        **schema: Any,
    ) -> None:
        self.value = default
        self.description = description
        self.schema: dict[str, Any] = schema
        if description is not None:
            self.schema.setdefault("description", description)

    @property
    def has_value(self) -> bool:
        return self.value is not NOTSET

    def resolve(self, name: str, value: Any = NOTSET) -> Any:
        """The final value of the parameter named ``name``, checked against its schema."""
        final = self.value if value is NOTSET else value
        if final is NOTSET:
            raise ParamValidationError(f"param {name!r} is required and has no value")
        if self.schema:
            _check(name, final, self.schema)
        return final

    def dump(self) -> dict[str, Any]:
        return {
            "value": None if self.value is NOTSET else self.value,
            "has_default": self.value is not NOTSET,
            "description": self.description,
            "schema": self.schema,
        }

    def __repr__(self) -> str:
        return f"Param({self.value!r}, schema={self.schema!r})"


def _check(name: str, value: Any, schema: dict[str, Any]) -> None:
    import jsonschema

    try:
        jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    except jsonschema.ValidationError as exc:
        where = "".join(f"[{p!r}]" for p in exc.absolute_path)
        raise ParamValidationError(f"param {name!r}{where}: {exc.message}") from None
    except jsonschema.SchemaError as exc:
        raise ParamValidationError(f"param {name!r} has an invalid schema: {exc.message}") from None


class ParamsDict(Mapping[str, Any]):
    """The params of a DAG or task: names mapped to `Param` objects (plain values wrapped)."""

    def __init__(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        site: tuple[str | None, int | None] = (None, None),
    ) -> None:
        self._params: dict[str, Param] = {}
        for name, value in (params or {}).items():
            self._params[name] = value if isinstance(value, Param) else Param(value)
        self._validate_defaults(site)

    def _validate_defaults(self, site: tuple[str | None, int | None]) -> None:
        if any(param.schema for param in self._params.values()):
            # Loaded where the DAG is defined: a fork server that loads this DAG's file
            # has it ready for every try it forks (which checks the run's values), and
            # one whose DAGs have no schema never carries it.
            import jsonschema  # noqa: F401
        for name, param in self._params.items():
            if not isinstance(name, str):
                raise DagDefinitionError(
                    f"param names must be strings, got {name!r}", filename=site[0], lineno=site[1]
                )
            if param.has_value and param.value is not None and param.schema:
                try:
                    param.resolve(name)
                except ParamValidationError as exc:
                    raise DagDefinitionError(
                        f"default of {exc}", filename=site[0], lineno=site[1]
                    ) from None
            try:
                json.dumps(param.dump())
            except (TypeError, ValueError):
                raise DagDefinitionError(
                    f"param {name!r}: default must be JSON-serialisable, got {param.value!r}",
                    filename=site[0],
                    lineno=site[1],
                ) from None

    def __getitem__(self, name: str) -> Any:
        return self._params[name].value

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def get_param(self, name: str) -> Param:
        return self._params[name]

    def merged(self, other: ParamsDict | Mapping[str, Any] | None) -> ParamsDict:
        result = ParamsDict()
        result._params = dict(self._params)
        if isinstance(other, ParamsDict):
            result._params.update(other._params)
        elif other:
            result._params.update(
                {k: v if isinstance(v, Param) else Param(v) for k, v in other.items()}
            )
        return result

    def dump(self) -> dict[str, Any]:
        return {name: param.dump() for name, param in self._params.items()}

    def resolve(self, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Final values for a run: ``conf`` overrides defaults; every value is checked."""
        conf = conf or {}
        values = {name: p.resolve(name, conf.get(name, NOTSET)) for name, p in self._params.items()}
        for name, value in conf.items():
            values.setdefault(name, value)
        return copy.deepcopy(values)


def params_from_dump(dumped: Mapping[str, Any]) -> ParamsDict:
    """Rebuild params from their serialized form (the scheduler and API have no DAG code)."""
    result = ParamsDict()
    for name, data in dumped.items():
        param = Param(data["value"] if data.get("has_default", True) else NOTSET)
        param.description = data.get("description")
        param.schema = dict(data.get("schema") or {})
        result._params[name] = param
    return result


class DagParam:
    """A DAG param used as a task argument in a ``@dag`` function: the run's value of
    ``params[name]`` is passed when the task runs (so a run's conf can change it)."""

    def __init__(self, name: str, default: Any = NOTSET) -> None:
        self.name = name
        self.default = default

    def resolve(self, context: Mapping[str, Any]) -> Any:
        params = context.get("params") or {}
        if self.name in params:
            return params[self.name]
        if self.default is NOTSET:
            raise ParamValidationError(f"param {self.name!r} has no value in this run")
        return self.default

    def __repr__(self) -> str:
        return f"DagParam({self.name!r})"


def function_params(
    func: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, DagParam]]:
    """For a ``@dag`` function: the params its parameters declare (by default value)
    and references to pass for those the caller did not give."""
    import inspect

    defaults: dict[str, Any] = {}
    references: dict[str, DagParam] = {}
    parameters = list(inspect.signature(func).parameters.values())
    for position, parameter in enumerate(parameters):
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        given = position < len(args) or parameter.name in kwargs
        if parameter.default is not inspect.Parameter.empty:
            defaults[parameter.name] = parameter.default
        if not given:
            default = defaults.get(parameter.name, NOTSET)
            references[parameter.name] = DagParam(parameter.name, default)
    return defaults, references
