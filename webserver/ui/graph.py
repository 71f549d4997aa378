"""A layered drawing of a DAG, computed on the server and sent as SVG.

Tasks are put in layers by longest path from a root (so every edge points right), then
ordered within their layer by the mean position of their upstream tasks (a few sweeps of
the barycentre heuristic keep edge crossings down). Groups are drawn as boxes around the
tasks they hold. A pure function of the serialized DAG: no database, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
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
    depth = _depths(tasks)
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for task in tasks:
        out[depth[task["task_id"]]].append(task["task_id"])
    return out


def _depths(tasks: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for task in tasks:
        ups = [depth[u] for u in task.get("upstream", []) if u in depth]
        depth[task["task_id"]] = max(ups) + 1 if ups else 0
    return depth


def _with_waypoints(
    tasks: Sequence[Mapping[str, Any]],
) -> tuple[list[list[str]], dict[str, dict[str, list[str]]], dict[tuple[str, str], list[str]]]:
    """The layers with a waypoint in every layer a long edge crosses, the links between
    all of them, and each edge's waypoints. Waypoints take part in the ordering, so a
    long edge runs between the tasks of a layer instead of through them."""
    depth = _depths(tasks)
    grouped = layers(tasks)
    links: dict[str, dict[str, list[str]]] = {
        t["task_id"]: {"upstream": [], "downstream": []} for t in tasks
    }
    routes: dict[tuple[str, str], list[str]] = {}
    for task in tasks:
        target = task["task_id"]
        for source in task.get("upstream", []):
            if source not in depth:
                continue
            chain = [
                f"\x00{source}\x00{target}\x00{d}" for d in range(depth[source] + 1, depth[target])
            ]
            for layer, waypoint in zip(range(depth[source] + 1, depth[target]), chain, strict=True):
                grouped[layer].append(waypoint)
                links[waypoint] = {"upstream": [], "downstream": []}
            hops = [source, *chain, target]
            for up, down in pairwise(hops):
                links[up]["downstream"].append(down)
                links[down]["upstream"].append(up)
            routes[(source, target)] = chain
    return grouped, links, routes


def _order(grouped: list[list[str]], links: Mapping[str, Mapping[str, list[str]]]) -> None:
    """Reorder each layer in place by the barycentre of its neighbours, sweeping down
    and up a few times."""
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        sequence = range(1, len(grouped)) if downward else range(len(grouped) - 2, -1, -1)
        for index in sequence:
            neighbour_layer = grouped[index - 1] if downward else grouped[index + 1]
            position = {node: i for i, node in enumerate(neighbour_layer)}
            key = "upstream" if downward else "downstream"

            def barycentre(node: str, key: str = key, position: dict[str, int] = position) -> float:
                linked = [position[n] for n in links[node][key] if n in position]
                return sum(linked) / len(linked) if linked else float("inf")

            current = {node: i for i, node in enumerate(grouped[index])}
            grouped[index].sort(key=lambda n: (barycentre(n), current[n]))


def layout(serialized: Mapping[str, Any]) -> Layout:
    specs = list(serialized.get("tasks", []))
    tasks = {t["task_id"]: t for t in specs}
    grouped, links, routes = _with_waypoints(specs)
    _order(grouped, links)
    spots: dict[str, tuple[float, float]] = {}
    tallest = max((len(layer) for layer in grouped), default=0)
    for column, layer in enumerate(grouped):
        offset = (tallest - len(layer)) * (NODE_HEIGHT + ROW_GAP) / 2
        for row, node in enumerate(layer):
            x = MARGIN + column * (NODE_WIDTH + LAYER_GAP)
            spots[node] = (x, MARGIN + offset + row * (NODE_HEIGHT + ROW_GAP))
    nodes = {
        task_id: Node(
            task_id=task_id,
            label=spec.get("label") or task_id,
            operator=spec.get("operator_name") or spec.get("task_type") or "",
            x=spots[task_id][0],
            y=spots[task_id][1],
            is_mapped=bool(spec.get("is_mapped")),
        )
        for task_id, spec in tasks.items()
    }
    edges = [
        _edge(source, target, [spots[w] for w in waypoints], spots)
        for (source, target), waypoints in routes.items()
    ]
    width = MARGIN * 2 + max(len(grouped), 1) * (NODE_WIDTH + LAYER_GAP) - LAYER_GAP
    height = MARGIN * 2 + max(tallest, 1) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
    boxes = _group_boxes(serialized.get("task_group") or {}, nodes)
    return Layout(list(nodes.values()), edges, boxes, width, height + 8)


def _edge(
    source: str,
    target: str,
    waypoints: list[tuple[float, float]],
    spots: Mapping[str, tuple[float, float]],
) -> Edge:
    """A curve from the source's right side through the waypoints (straight across the
    width of each) to the target's left side."""
    mid = NODE_HEIGHT / 2
    x, y = spots[source][0] + NODE_WIDTH, spots[source][1] + mid
    parts = [f"M{x:.0f},{y:.0f}"]

    def curve_to(tx: float, ty: float) -> None:
        bend = (tx - x) / 2
        parts.append(f"C{x + bend:.0f},{y:.0f} {tx - bend:.0f},{ty:.0f} {tx:.0f},{ty:.0f}")

    for wx, wy in waypoints:
        curve_to(wx, wy + mid)
        x, y = wx + NODE_WIDTH, wy + mid
        parts.append(f"L{x:.0f},{y:.0f}")
    curve_to(spots[target][0], spots[target][1] + mid)
    return Edge(source, target, " ".join(parts))


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
