"""A layered drawing of a DAG, computed on the server and sent as SVG.

Tasks are put in layers by longest path from a root (so every edge points right), then
ordered within their layer by the mean position of their upstream tasks (a few sweeps of
the barycentre heuristic keep edge crossings down). Groups are drawn as boxes around the
tasks they hold. A pure function of the serialized DAG: no database, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NODE_WIDTH = 180
NODE_HEIGHT = 36
LAYER_GAP = 70
ROW_GAP = 16
MARGIN = 24
SWEEPS = 4


@dataclass(frozen=True, slots=True)
class Node:
    task_id: str
    label: str
    operator: str
    x: float
    y: float
    is_mapped: bool


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    path: str  # an SVG path from the source's right side to the target's left side


@dataclass(frozen=True, slots=True)
class GroupBox:
    group_id: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Layout:
    nodes: list[Node]
    edges: list[Edge]
    groups: list[GroupBox]
    width: float
    height: float


def layers(tasks: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Tasks by layer (longest path from a root); ``tasks`` in topological order."""
    depth: dict[str, int] = {}
    for task in tasks:
        ups = [depth[u] for u in task.get("upstream", []) if u in depth]
        depth[task["task_id"]] = max(ups) + 1 if ups else 0
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for task in tasks:
        out[depth[task["task_id"]]].append(task["task_id"])
    return out


def _order(grouped: list[list[str]], tasks: Mapping[str, Mapping[str, Any]]) -> None:
    """Reorder each layer in place by the barycentre of its neighbours, sweeping down
    and up a few times."""
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        sequence = range(1, len(grouped)) if downward else range(len(grouped) - 2, -1, -1)
        for index in sequence:
            neighbour_layer = grouped[index - 1] if downward else grouped[index + 1]
            position = {task_id: i for i, task_id in enumerate(neighbour_layer)}
            key = "upstream" if downward else "downstream"

            def barycentre(
                task_id: str, key: str = key, position: dict[str, int] = position
            ) -> float:
                linked = [position[t] for t in tasks[task_id].get(key, []) if t in position]
                return sum(linked) / len(linked) if linked else float("inf")

            current = {task_id: i for i, task_id in enumerate(grouped[index])}
            grouped[index].sort(key=lambda t: (barycentre(t), current[t]))


def layout(serialized: Mapping[str, Any]) -> Layout:
    specs = list(serialized.get("tasks", []))
    tasks = {t["task_id"]: t for t in specs}
    grouped = layers(specs)
    _order(grouped, tasks)
    nodes: dict[str, Node] = {}
    tallest = max((len(layer) for layer in grouped), default=0)
    for column, layer in enumerate(grouped):
        offset = (tallest - len(layer)) * (NODE_HEIGHT + ROW_GAP) / 2
        for row, task_id in enumerate(layer):
            spec = tasks[task_id]
            nodes[task_id] = Node(
                task_id=task_id,
                label=spec.get("label") or task_id,
                operator=spec.get("operator_name") or spec.get("task_type") or "",
                x=MARGIN + column * (NODE_WIDTH + LAYER_GAP),
                y=MARGIN + offset + row * (NODE_HEIGHT + ROW_GAP),
                is_mapped=bool(spec.get("is_mapped")),
            )
    edges = [
        _edge(nodes[up], nodes[task_id])
        for task_id in tasks
        for up in tasks[task_id].get("upstream", [])
        if up in nodes and task_id in nodes
    ]
    width = MARGIN * 2 + max(len(grouped), 1) * (NODE_WIDTH + LAYER_GAP) - LAYER_GAP
    height = MARGIN * 2 + max(tallest, 1) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
    boxes = _group_boxes(serialized.get("task_group") or {}, nodes)
    return Layout(list(nodes.values()), edges, boxes, width, height + 8)


def _edge(source: Node, target: Node) -> Edge:
    x1, y1 = source.x + NODE_WIDTH, source.y + NODE_HEIGHT / 2
    x2, y2 = target.x, target.y + NODE_HEIGHT / 2
    bend = (x2 - x1) / 2
    path = (
        f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
    )
    return Edge(source.task_id, target.task_id, path)


def _group_boxes(group: Mapping[str, Any], nodes: Mapping[str, Node]) -> list[GroupBox]:
    boxes: list[GroupBox] = []
    for child in group.get("children", []):
        if isinstance(child, str):
            continue
        members = [nodes[t] for t in _members(child) if t in nodes]
        if members:
            pad = 8
            left = min(n.x for n in members) - pad
            top = min(n.y for n in members) - pad - 14
            right = max(n.x for n in members) + NODE_WIDTH + pad
            bottom = max(n.y for n in members) + NODE_HEIGHT + pad
            boxes.append(GroupBox(child["group_id"], left, top, right - left, bottom - top))
        boxes.extend(_group_boxes(child, nodes))
    return boxes


def _members(group: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for child in group.get("children", []):
        found.extend([child] if isinstance(child, str) else _members(child))
    return found
