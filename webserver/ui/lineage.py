"""The asset lineage graph: DAGs and assets as nodes, "produces" and "schedules" as
edges, laid out with the DAG graph's layered drawing. Pure: no database."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from webserver.ui.graph import Layout, layout

DAG_PREFIX, ASSET_PREFIX = "dag:", "asset:"


def lineage_layout(
    edges: Iterable[tuple[str, str]], labels: dict[str, str], kinds: dict[str, str]
) -> Layout:
    """Lay out nodes joined by ``edges`` (source id, target id); ``labels`` and ``kinds``
    (``DAG`` or ``Asset``) by node id. A cycle (a DAG that consumes what it produces) is
    drawn without the edge that closes it."""
    upstream: dict[str, set[str]] = {node: set() for node in labels}
    for source, target in edges:
        if source != target:
            upstream[target].add(source)
    specs: list[dict[str, Any]] = []
    placed: set[str] = set()
    pending = sorted(labels)
    while pending:
        ready = [n for n in pending if upstream[n] <= placed] or [pending[0]]  # break a cycle
        for node in ready:
            specs.append(
                {
                    "task_id": node,
                    "label": labels[node],
                    "operator_name": kinds[node],
                    "upstream": sorted(upstream[node] & placed),
                }
            )
            placed.add(node)
        pending = [n for n in pending if n not in placed]
    return layout({"tasks": specs})
