"""Assets: named pieces of data that tasks produce and DAGs wait for.

A task declares what it writes with ``outlets``; each successful try records an asset
event. A DAG whose ``schedule`` is an asset (or a list, or a condition built with ``&``
and ``|``) runs once its condition is met by events since its last such run::

    features = Asset("s3://lake/features/daily")
    labels = Asset("s3://lake/labels/daily")

    with DAG("build_features", schedule="@daily", start_date=datetime(2026, 1, 1)):
        BashOperator(task_id="build", bash_command="...", outlets=[features])

    with DAG("train", schedule=features & labels):   # or schedule=[features, labels]
        ...

An asset is identified by its URI; ``name`` defaults to it (and the URI to the name when
only a name is given). A URI may contain a template such as ``{{ ds }}``: the asset is
the URI as written, and each event records the rendered one in its extra as ``uri``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tradewind.errors import DagDefinitionError

MAX_LENGTH = 1500


class AssetCondition:
    """Something a DAG can be scheduled on: an asset, or all/any of several."""

    def __and__(self, other: AssetCondition) -> AssetAll:
        return AssetAll(self, _condition(other))

    def __or__(self, other: AssetCondition) -> AssetAny:
        return AssetAny(self, _condition(other))

    def assets(self) -> Iterator[Asset]:
        raise NotImplementedError

    def evaluate(self, updated: set[str]) -> bool:
        """Is the condition met, given the URIs of the assets updated?"""
        raise NotImplementedError

    def dump(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Asset(AssetCondition):
    """A piece of data, identified by ``uri``; ``extra`` is free metadata."""

    uri: str = ""
    name: str = ""
    group: str = "asset"
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __init__(
        self,
        uri: str | None = None,
        *,
        name: str | None = None,
        group: str = "asset",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        chosen_uri = uri if uri is not None else name
        if not isinstance(chosen_uri, str) or not chosen_uri.strip():
            raise DagDefinitionError("an Asset needs a URI or a name (a non-empty string)")
        chosen_name = name if name is not None else chosen_uri
        for what, value in (("URI", chosen_uri), ("name", chosen_name)):
            if not isinstance(value, str) or len(value) > MAX_LENGTH or "\x00" in value:
                raise DagDefinitionError(
                    f"asset {what} must be a string of at most {MAX_LENGTH} characters, "
                    f"got {value!r}"
                )
        object.__setattr__(self, "uri", chosen_uri)
        object.__setattr__(self, "name", chosen_name)
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "extra", dict(extra or {}))

    def assets(self) -> Iterator[Asset]:
        yield self

    def evaluate(self, updated: set[str]) -> bool:
        return self.uri in updated

    def dump(self) -> dict[str, Any]:
        return {"asset": {"uri": self.uri, "name": self.name, "group": self.group}}

    def __repr__(self) -> str:
        named = "" if self.name == self.uri else f", name={self.name!r}"
        return f"Asset({self.uri!r}{named})"


class _Composite(AssetCondition):
    kind = ""

    def __init__(self, *conditions: AssetCondition) -> None:
        if not conditions:
            raise DagDefinitionError(f"Asset{self.kind.capitalize()}() needs at least one asset")
        self.conditions = tuple(_condition(c) for c in conditions)

    def assets(self) -> Iterator[Asset]:
        for condition in self.conditions:
            yield from condition.assets()

    def dump(self) -> dict[str, Any]:
        return {self.kind: [c.dump() for c in self.conditions]}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Composite) and (other.kind, other.conditions) == (
            self.kind,
            self.conditions,
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.conditions))

    def __repr__(self) -> str:
        joiner = " & " if self.kind == "all" else " | "
        return "(" + joiner.join(map(repr, self.conditions)) + ")"


class AssetAll(_Composite):
    """Met when every one of its conditions is."""

    kind = "all"

    def evaluate(self, updated: set[str]) -> bool:
        return all(c.evaluate(updated) for c in self.conditions)


class AssetAny(_Composite):
    """Met when any one of its conditions is."""

    kind = "any"

    def evaluate(self, updated: set[str]) -> bool:
        return any(c.evaluate(updated) for c in self.conditions)


def _condition(value: object) -> AssetCondition:
    if not isinstance(value, AssetCondition):
        raise DagDefinitionError(
            f"an asset condition combines Assets with & and |, got {type(value).__name__}"
        )
    return value


def condition_from(value: object) -> AssetCondition | None:
    """The condition a ``schedule=`` value stands for, or None if it is not about assets.
    A list or tuple of assets means all of them."""
    if isinstance(value, AssetCondition):
        return value
    if (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(v, AssetCondition) for v in value)
    ):
        return AssetAll(*value)
    if isinstance(value, list | tuple) and not value:
        raise DagDefinitionError("schedule=[] names no asset; use schedule=None")
    return None


def load_condition(data: Mapping[str, Any]) -> AssetCondition:
    """Rebuild a condition from `AssetCondition.dump` output."""
    if "asset" in data:
        asset = data["asset"]
        return Asset(asset["uri"], name=asset.get("name"), group=asset.get("group", "asset"))
    if "all" in data:
        return AssetAll(*(load_condition(c) for c in data["all"]))
    if "any" in data:
        return AssetAny(*(load_condition(c) for c in data["any"]))
    raise ValueError(f"not an asset condition: {dict(data)!r}")


def outlet_assets(outlets: Iterable[Any]) -> list[Asset]:
    """The assets among a task's ``outlets`` (anything else there is ignored)."""
    return [o for o in outlets if isinstance(o, Asset)]


# Airflow 2 called them datasets; DAG files written for it keep working.
Dataset = Asset

__all__ = [
    "Asset",
    "AssetAll",
    "AssetAny",
    "AssetCondition",
    "Dataset",
    "condition_from",
    "load_condition",
    "outlet_assets",
]
