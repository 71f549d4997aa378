"""The UI's pure parts: the trigger form from Params, the grid's rows, the graph's
layout and the code highlighter. No database, no server."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from tradewind import DAG, Param, task
from tradewind.operators.empty import EmptyOperator
from tradewind.sdk.taskgroup import TaskGroup
from tradewind.serialization import serialize_dag
from webserver.ui import graph, grid, highlight, param_form

PARAMS: dict[str, Any] = {
    name: param.dump()
    for name, param in {
        "rows": Param(100, type="integer", minimum=1, description="How many rows"),
        "ratio": Param(0.5, type="number"),
        "mode": Param("fast", enum=["fast", "safe"]),
        "dry_run": Param(False, type="boolean"),
        "day": Param("2024-01-01", type="string", format="date"),
        "tables": Param(["a"], type="array"),
        "label": Param("x"),
        "needed": Param(type="string"),
    }.items()
}


def test_each_param_gets_the_control_its_schema_asks_for() -> None:
    controls = {f.name: f.control for f in param_form.fields(PARAMS)}
    assert controls == {
        "rows": "integer",
        "ratio": "number",
        "mode": "select",
        "dry_run": "checkbox",
        "day": "date",
        "tables": "json",
        "label": "text",
        "needed": "text",
    }
    fields = {f.name: f for f in param_form.fields(PARAMS)}
    assert fields["mode"].options == ("fast", "safe")
    assert fields["rows"].description == "How many rows"
    assert fields["tables"].value.replace(" ", "").replace("\n", "") == '["a"]'
    assert fields["needed"].required
    assert not fields["rows"].required


def _form(**overrides: str) -> dict[str, str]:
    form = {
        "param.rows": "10",
        "param.ratio": "0.25",
        "param.mode": "safe",
        "param.day": "2024-02-03",
        "param.tables": '["a", "b"]',
        "param.label": "hello",
        "param.needed": "yes",
    }
    form.update({f"param.{k}": v for k, v in overrides.items()})
    return form


def test_a_good_form_becomes_a_typed_conf() -> None:
    conf, errors = param_form.read_form(PARAMS, {**_form(), "param.dry_run": "true"})
    assert errors == {}
    assert conf == {
        "rows": 10,
        "ratio": 0.25,
        "mode": "safe",
        "dry_run": True,
        "day": "2024-02-03",
        "tables": ["a", "b"],
        "label": "hello",
        "needed": "yes",
    }


def test_an_unticked_checkbox_is_false() -> None:
    conf, _ = param_form.read_form(PARAMS, _form())
    assert conf["dry_run"] is False


def test_each_bad_value_is_reported_against_its_own_field() -> None:
    _, errors = param_form.read_form(
        PARAMS, _form(rows="0", ratio="lots", tables="[oops", mode="reckless", needed="")
    )
    assert set(errors) == {"rows", "ratio", "tables", "mode", "needed"}
    assert "minimum" in errors["rows"] or "less than" in errors["rows"]
    assert "not a number" in errors["ratio"]
    assert "JSON" in errors["tables"]
    assert errors["needed"] == "A value is required."


def test_a_whole_number_field_refuses_a_fraction() -> None:
    _, errors = param_form.read_form(PARAMS, _form(rows="1.5"))
    assert errors == {"rows": "'1.5' is not a whole number."}


def _serialized() -> dict[str, Any]:
    with DAG("shape") as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("load") as load:
            EmptyOperator(task_id="a")
            EmptyOperator(task_id="b")

        @task
        def numbers() -> list[int]:
            return [1, 2, 3]

        @task
        def double(n: int) -> int:
            return 2 * n

        start >> load
        load >> double.expand(n=numbers())
    return serialize_dag(dag)


def test_grid_rows_follow_the_groups_and_summarise_groups_and_mapped_tasks() -> None:
    cells = {
        ("load.a", "r1"): {"success": 1},
        ("load.b", "r1"): {"failed": 1},
        ("double", "r1"): {"success": 2, "running": 1},
        ("start", "r1"): {"success": 1},
    }
    rows = {row.node_id: row for row in grid.build_rows(_serialized(), ["r1", "r2"], cells)}
    assert list(rows) == ["start", "load", "load.a", "load.b", "numbers", "double"]
    assert rows["load"].is_group
    assert rows["load.a"].groups == ("load",)
    assert rows["load.a"].label == "a"
    assert rows["load.a"].depth == 1
    assert 'class="c s-failed"' in rows["load"].cells  # the most pressing state of the group
    assert 'class="c s-running"' in rows["double"].cells
    assert ">3</td>" in rows["double"].cells
    assert rows["start"].cells == Markup('<td class="c s-success"></td><td class="c"></td>')


def test_the_most_pressing_state_wins() -> None:
    assert grid.most_pressing({"success": 5, "up_for_retry": 1}) == "up_for_retry"
    assert grid.most_pressing({"success": 5, "skipped": 1}) == "skipped"


def test_graph_layers_put_every_task_right_of_its_upstream() -> None:
    layout = graph.layout(_serialized())
    x = {node.task_id: node.x for node in layout.nodes}
    assert x["start"] < x["load.a"] < x["double"]
    assert x["numbers"] < x["double"]
    assert {(e.source, e.target) for e in layout.edges} >= {
        ("start", "load.a"),
        ("numbers", "double"),
    }
    (box,) = layout.groups
    assert box.group_id == "load"
    ys = {node.task_id: node.y for node in layout.nodes}
    assert box.y < min(ys["load.a"], ys["load.b"])
    assert layout.width > 0
    assert layout.height > 0


def test_an_empty_dag_has_an_empty_drawing() -> None:
    layout = graph.layout({})
    assert layout.nodes == []
    assert layout.edges == []


def test_the_highlighter_escapes_html_and_marks_tokens() -> None:
    html = highlight.python_html('def f():\n    return "<b>"  # done\n')
    assert '<span class="kw">def</span>' in html
    assert '<span class="fn">f</span>' in html
    assert '<span class="st">&#34;&lt;b&gt;&#34;</span>' in html
    assert '<span class="cm"># done</span>' in html


def test_source_that_does_not_tokenize_is_shown_plain() -> None:
    assert highlight.python_html('x = """<open') == Markup("x = &#34;&#34;&#34;&lt;open")


def test_a_long_edge_goes_around_the_tasks_between_its_ends() -> None:
    with DAG("skip_a_layer") as dag:
        a, b, c = (EmptyOperator(task_id=name) for name in "abc")
        a >> b >> c
        a >> c
    layout = graph.layout(serialize_dag(dag))
    edges = {(e.source, e.target): e.path for e in layout.edges}
    direct = edges[("a", "c")]
    assert " L" in direct  # it crosses b's layer through a waypoint of its own
    b_node = next(n for n in layout.nodes if n.task_id == "b")
    crossing_y = float(direct.split(" L")[1].split(",")[1].split()[0])
    assert not b_node.y <= crossing_y <= b_node.y + graph.NODE_HEIGHT
