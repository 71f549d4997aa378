"""The grid of a DAG: one row per task (and per task group), one column per run.

Rows come from the serialized task-group tree, so groups can be collapsed; a group's
cell shows the most pressing state among its tasks, a mapped task's cell the counts of
its map indexes. The cells of a row are rendered here as one string: a 2,000-task grid
has 50,000 of them, too many for a template loop to stay fast.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

# Most pressing first: a group with one failed task shows as failed.
PRIORITY = (
    "failed",
    "upstream_failed",
    "up_for_retry",
    "up_for_reschedule",
    "running",
    "restarting",
    "deferred",
    "queued",
    "scheduled",
    "no_status",
    "removed",
    "skipped",
    "success",
)
_RANK = {state: rank for rank, state in enumerate(PRIORITY)}

Cells = Mapping[tuple[str, str], Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class Row:
    node_id: str  # a task id, or a group id for a group's row
    label: str
    depth: int
    groups: tuple[str, ...]  # the groups this row sits in, outermost first
    is_group: bool
    is_mapped: bool
    cells: Markup


def most_pressing(counts: Mapping[str, int]) -> str:
    return min(counts, key=lambda state: _RANK.get(state, len(PRIORITY)))


_EMPTY = '<td class="c"></td>'
# The cell of a single instance in each state, built once.
_SINGLE = {state: f'<td class="c s-{state}"></td>' for state in PRIORITY}


def _cell(counts: Mapping[str, int] | None, summarise: bool) -> str:
    """One cell: empty, one instance's state, or (a mapped task, a group) the most
    pressing state with the count of instances and a tooltip of the counts."""
    if not counts:
        return _EMPTY
    if not summarise and len(counts) == 1:
        ((state, count),) = counts.items()
        if count == 1:
            return _SINGLE.get(state) or f'<td class="c s-{escape(state)}"></td>'
    state = most_pressing(counts)
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda item: _RANK.get(item[0], len(PRIORITY)))
    summary = ", ".join(f"{n} {s}" for s, n in ordered)
    text = total if summarise and total > 1 else ""
    return f'<td class="c s-{escape(state)}" title="{escape(summary)}">{text}</td>'


def _walk(
    group: Mapping[str, Any], parents: tuple[str, ...]
) -> Iterator[tuple[str, tuple[str, ...], bool, list[str]]]:
    """(node id, enclosing groups, is a group, task ids below) in display order."""
    for child in group.get("children", []):
        if isinstance(child, str):
            yield child, parents, False, [child]
        else:
            members = list(_task_ids(child))
            yield child["group_id"], parents, True, members
            yield from _walk(child, (*parents, child["group_id"]))


def _task_ids(group: Mapping[str, Any]) -> Iterator[str]:
    for child in group.get("children", []):
        if isinstance(child, str):
            yield child
        else:
            yield from _task_ids(child)


def build_rows(serialized: Mapping[str, Any], run_ids: Sequence[str], cells: Cells) -> list[Row]:
    tasks = {t["task_id"]: t for t in serialized.get("tasks", [])}
    tree = serialized.get("task_group") or {"children": list(tasks)}
    rows = []
    seen: set[str] = set()
    for node_id, parents, is_group, members in _walk(tree, ()):
        prefix = f"{parents[-1]}." if parents else ""
        label = node_id.removeprefix(prefix)
        if is_group:
            parts = []
            for run_id in run_ids:
                merged: dict[str, int] = {}
                for task_id in members:
                    for state, n in cells.get((task_id, run_id), {}).items():
                        merged[state] = merged.get(state, 0) + n
                parts.append(_cell(merged, True))
            rows.append(
                Row(node_id, label, len(parents), parents, True, False, Markup("".join(parts)))
            )
            continue
        seen.add(node_id)
        mapped = bool(tasks.get(node_id, {}).get("is_mapped"))
        row_cells = "".join(_cell(cells.get((node_id, run_id)), mapped) for run_id in run_ids)
        rows.append(Row(node_id, label, len(parents), parents, False, mapped, Markup(row_cells)))
    for task_id, spec in tasks.items():  # tasks no group lists (older serializations)
        if task_id not in seen:
            mapped = bool(spec.get("is_mapped"))
            row_cells = "".join(_cell(cells.get((task_id, r)), mapped) for r in run_ids)
            rows.append(Row(task_id, task_id, 0, (), False, mapped, Markup(row_cells)))
    return rows
