"""One model per customer segment: ingest, build features, train retail, smb and
enterprise side by side in a task group, then compare them and register the best.

What this example shows:

* the classic style: ``with DAG(...)``, ``PythonOperator`` and ``>>``;
* a ``TaskGroup`` holding one training task per segment, built in a loop. Its tasks are
  ``train_segments.train_retail`` and so on; ``build_features >> group`` links to every
  task inside, ``group >> evaluate_all`` waits for all of them;
* ``default_args`` on the group (more retries for training) on top of the DAG's own;
* ``op_kwargs`` with a fixed value (the segment), a template (``{{ ds }}``) and another
  task's output (``build_features.output``), which also adds the dependency;
* a join task pulling the three results at once with ``ti.xcom_pull(task_ids=[...])``.

Only standard-library code runs: each segment's data is simulated from a seeded random
generator and the "model" is a nearest-centroid classifier. Results are deterministic;
with the default seed the enterprise model wins.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tradewind import DAG, TaskGroup
from tradewind.operators.python import PythonOperator

logger = logging.getLogger(__name__)

DAG_ID = "segment_training"
SEGMENTS = ("retail", "smb", "enterprise")
# How noisy each segment's behaviour is: bigger means harder to predict.
SEGMENT_NOISE = {"retail": 1.4, "smb": 1.0, "enterprise": 0.6}
FEATURES = ("seats", "weekly_logins")


def _work_dir(ds: str) -> Path:
    path = Path(tempfile.gettempdir(), "tradewind_examples", DAG_ID, ds)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(partial, path)  # atomic: a retry never leaves half a file behind


def _read_csv(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def ingest_raw(ds: str, params: dict[str, Any]) -> dict[str, Any]:
    """Simulate the day's account snapshot: segment, seats, logins, and whether the
    account upgraded its plan (the label)."""
    rng = random.Random(params["seed"])
    rows = []
    for _ in range(1800):
        segment = rng.choice(SEGMENTS)
        seats = rng.randint(1, 20) * (10 if segment == "enterprise" else 1)
        logins = rng.randint(0, 40)
        signal = math.log(seats) * 0.8 + logins * 0.12 - 3.0
        upgraded = int(signal + rng.gauss(0, SEGMENT_NOISE[segment]) > 0)
        rows.append([segment, seats, logins, upgraded])
    path = _work_dir(ds) / "accounts.csv"
    _write_csv(path, ["segment", *FEATURES, "upgraded"], rows)
    return {"path": str(path), "rows": len(rows)}


def build_features(ds: str, ti: Any) -> dict[str, Any]:
    """Validate the snapshot and write one feature file per segment."""
    raw = ti.xcom_pull(task_ids="ingest_raw")
    rows = _read_csv(raw["path"])
    if len(rows) < 500:
        raise ValueError(f"only {len(rows)} accounts in {raw['path']}; refusing to train")
    manifest = {}
    for segment in SEGMENTS:
        table = [
            [round(math.log(int(r["seats"])), 4), int(r["weekly_logins"]), int(r["upgraded"])]
            for r in rows
            if r["segment"] == segment
        ]
        path = _work_dir(ds) / f"features_{segment}.csv"
        _write_csv(path, [*FEATURES, "label"], table)
        manifest[segment] = {"path": str(path), "rows": len(table)}
    logger.info("Feature files: %s", manifest)
    return manifest


def train_segment(segment: str, run_date: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Fit a nearest-centroid model on 80% of the segment and score the other 20%."""
    rows = _read_csv(manifest[segment]["path"])
    points = [([float(r[f]) for f in FEATURES], int(r["label"])) for r in rows]
    cut = int(len(points) * 0.8)
    train, holdout = points[:cut], points[cut:]
    # Scale each feature by its spread on the training split so both count equally.
    spread = [max(col) - min(col) or 1.0 for col in zip(*(x for x, _ in train), strict=True)]
    centroids = {}
    for label in (0, 1):
        members = [x for x, y in train if y == label]
        centroids[label] = [
            sum(col) / len(members) / s
            for col, s in zip(zip(*members, strict=True), spread, strict=True)
        ]

    def predict(x: list[float]) -> int:
        scaled = [v / s for v, s in zip(x, spread, strict=True)]
        return min(centroids, key=lambda label: math.dist(scaled, centroids[label]))

    accuracy = sum(predict(x) == y for x, y in holdout) / len(holdout)
    model_path = Path(manifest[segment]["path"]).with_name(f"model_{segment}.json")
    model_path.write_text(
        json.dumps({"segment": segment, "spread": spread, "centroids": centroids})
    )
    logger.info("%s model for %s: accuracy %.3f", segment, run_date, accuracy)
    return {
        "segment": segment,
        "model_path": str(model_path),
        "accuracy": round(accuracy, 4),
        "train_rows": len(train),
    }


def evaluate_all(ti: Any) -> dict[str, Any]:
    """Compare the segment models; pick the most accurate one."""
    ids = [f"train_segments.train_{segment}" for segment in SEGMENTS]
    results = ti.xcom_pull(task_ids=ids)
    for result in results:
        logger.info("%-10s accuracy %.3f", result["segment"], result["accuracy"])
    best = max(results, key=lambda r: r["accuracy"])
    return {"best": best, "leaderboard": {r["segment"]: r["accuracy"] for r in results}}


def register_best(ds_nodash: str, ti: Any) -> str:
    """Record the winner in a (local, simulated) model registry."""
    evaluation = ti.xcom_pull(task_ids="evaluate_all")
    best = evaluation["best"]
    registry = Path(tempfile.gettempdir(), "tradewind_examples", DAG_ID, "registry")
    registry.mkdir(parents=True, exist_ok=True)
    version = f"upgrade-{best['segment']}-{ds_nodash}"
    entry = {"version": version, **best, "leaderboard": evaluation["leaderboard"]}
    (registry / f"{version}.json").write_text(json.dumps(entry, indent=2))
    logger.info("Registered %s", version)
    return version


with DAG(
    DAG_ID,
    description="Train one upgrade-propensity model per customer segment; keep the best.",
    schedule="0 2 * * *",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={"owner": "ml-platform", "retries": 1, "retry_delay": timedelta(minutes=2)},
    params={"seed": 11},
    tags=["ml", "training", "example"],
    doc_md=__doc__,
):
    ingest = PythonOperator(task_id="ingest_raw", python_callable=ingest_raw)
    features = PythonOperator(task_id="build_features", python_callable=build_features)

    with TaskGroup(
        "train_segments",
        tooltip="One model per customer segment, trained in parallel",
        default_args={"retries": 3, "execution_timeout": timedelta(minutes=20)},
    ) as train_segments:
        for segment in SEGMENTS:
            PythonOperator(
                task_id=f"train_{segment}",
                python_callable=train_segment,
                op_kwargs={
                    "segment": segment,
                    "run_date": "{{ ds }}",
                    "manifest": features.output,
                },
            )

    evaluate = PythonOperator(task_id="evaluate_all", python_callable=evaluate_all)
    register = PythonOperator(task_id="register_best", python_callable=register_best)

    ingest >> features >> train_segments >> evaluate >> register
