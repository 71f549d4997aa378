"""Nightly churn-model training: extract, validate, featurise, train, evaluate, then
deploy the model or tell someone why not.

What this example shows:

* a TaskFlow DAG (``@dag`` and ``@task``) on a cron schedule, 02:00 UTC every day,
  with ``catchup=False`` so turning it on does not replay the past;
* ``default_args`` that every task inherits: two retries five minutes apart and a
  timeout, so a flaky warehouse costs a retry instead of a page;
* run ``params`` with a JSON Schema (the accuracy a model must reach to ship), checked
  when a run is created and overridable per run with ``--conf``;
* XCom for small metadata only (file paths, row counts, metrics). The rows themselves
  go to files under the system temp directory, one folder per logical date, and are
  overwritten on a rerun, so retries and backfills are idempotent;
* ``@task.branch`` picking ``deploy`` or ``notify_low_accuracy``, and a join task with
  ``trigger_rule="none_failed_min_one_success"`` that runs whichever branch was taken.

It runs offline with the standard library only: the "warehouse" is a seeded random
generator and the "model" a logistic regression fitted with plain Python loops. With
the default params the model scores about 0.9, so the deploy branch is the one taken.
Try ``--conf '{"accuracy_threshold": 0.99}'`` to see the other branch.
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

from tradewind import Param, dag, task

logger = logging.getLogger(__name__)

DAG_ID = "ml_training_pipeline"
FEATURES = ("tenure_months", "monthly_spend", "support_tickets")
HOLDOUT_EVERY = 5  # every fifth customer is kept out of training, for evaluation


def _work_dir(ds: str, *parts: str) -> Path:
    """The folder of one logical date; created on first use, never at import time."""
    path = Path(tempfile.gettempdir(), "tradewind_examples", DAG_ID, ds, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_atomically(path: Path, text: str) -> None:
    """Write beside the target, then rename: a reader never sees half a file."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(partial, path)


def _read_csv(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _simulate_customer(rng: random.Random) -> list[Any]:
    tenure = rng.randint(1, 72)
    spend = round(rng.uniform(10, 200), 2)
    tickets = min(10, int(rng.expovariate(0.5)))
    # Short tenure and many support tickets make a customer likely to leave.
    score = 1.8 - 0.07 * tenure + 0.55 * tickets - 0.004 * spend + rng.gauss(0, 0.6)
    return [tenure, spend, tickets, int(score > 0)]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def _predict(weights: list[float], row: list[float]) -> float:
    return _sigmoid(weights[0] + sum(w * x for w, x in zip(weights[1:], row, strict=True)))


@task
def extract(ds: str, params: dict[str, Any]) -> dict[str, Any]:
    """Pull the day's customers from the (simulated) warehouse into a CSV file."""
    rng = random.Random(params["seed"])
    rows = [_simulate_customer(rng) for _ in range(params["sample_rows"])]
    path = _work_dir(ds) / "raw_customers.csv"
    _write_csv(path, [*FEATURES, "churned"], rows)
    logger.info("Extracted %d customers for %s to %s", len(rows), ds, path)
    return {"path": str(path), "rows": len(rows)}


@task
def validate(raw: dict[str, Any]) -> dict[str, Any]:
    """Fail loudly on bad data rather than train on it: row count, ranges, labels."""
    rows = _read_csv(raw["path"])
    if len(rows) != raw["rows"]:
        raise ValueError(f"expected {raw['rows']} rows in {raw['path']}, found {len(rows)}")
    problems = [
        i
        for i, row in enumerate(rows)
        if not 1 <= int(row["tenure_months"]) <= 120
        or float(row["monthly_spend"]) < 0
        or row["churned"] not in ("0", "1")
    ]
    if problems:
        raise ValueError(f"{len(problems)} invalid rows, first at line {problems[0] + 2}")
    churn_rate = sum(row["churned"] == "1" for row in rows) / len(rows)
    if not 0.05 <= churn_rate <= 0.95:
        raise ValueError(f"churn rate {churn_rate:.2f} is implausible; check the source")
    return {"path": raw["path"], "rows": len(rows), "churn_rate": round(churn_rate, 4)}


@task
def build_features(validated: dict[str, Any], ds: str) -> dict[str, Any]:
    """Standardise each feature; the scaling travels with the model, not in XCom data."""
    rows = _read_csv(validated["path"])
    columns = {name: [float(row[name]) for row in rows] for name in FEATURES}
    scaling = {}
    for name, values in columns.items():
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
        scaling[name] = {"mean": round(mean, 6), "std": round(std, 6)}
    table = [
        [
            *(round((columns[n][i] - scaling[n]["mean"]) / scaling[n]["std"], 6) for n in FEATURES),
            int(row["churned"]),
        ]
        for i, row in enumerate(rows)
    ]
    path = _work_dir(ds) / "features.csv"
    _write_csv(path, [*FEATURES, "label"], table)
    return {"path": str(path), "rows": len(table), "features": list(FEATURES), "scaling": scaling}


@task
def train(features: dict[str, Any], ds: str) -> dict[str, Any]:
    """Fit a logistic regression by batch gradient descent on the training split."""
    rows = _read_csv(features["path"])
    data = [
        ([float(row[n]) for n in FEATURES], int(row["label"]))
        for i, row in enumerate(rows)
        if i % HOLDOUT_EVERY
    ]
    weights = [0.0] * (len(FEATURES) + 1)
    learning_rate = 0.5
    for _epoch in range(60):
        gradient = [0.0] * len(weights)
        for x, y in data:
            error = _predict(weights, x) - y
            gradient[0] += error
            for j, value in enumerate(x, start=1):
                gradient[j] += error * value
        weights = [
            w - learning_rate * g / len(data) for w, g in zip(weights, gradient, strict=True)
        ]
    model = {"weights": weights, "features": features["features"], "scaling": features["scaling"]}
    path = _work_dir(ds, "model") / "churn_model.json"
    _write_atomically(path, json.dumps(model, indent=2))
    logger.info("Trained on %d rows; weights %s", len(data), [round(w, 3) for w in weights])
    return {"model_path": str(path), "train_rows": len(data)}


@task
def evaluate(model: dict[str, Any], features: dict[str, Any]) -> dict[str, Any]:
    """Score the holdout split; only the metrics go to XCom."""
    weights = json.loads(Path(model["model_path"]).read_text())["weights"]
    rows = _read_csv(features["path"])
    holdout = [
        ([float(row[n]) for n in FEATURES], int(row["label"]))
        for i, row in enumerate(rows)
        if i % HOLDOUT_EVERY == 0
    ]
    tp = fp = fn = correct = 0
    for x, y in holdout:
        predicted = int(_predict(weights, x) >= 0.5)
        correct += predicted == y
        tp += predicted == 1 and y == 1
        fp += predicted == 1 and y == 0
        fn += predicted == 0 and y == 1
    metrics = {
        "accuracy": round(correct / len(holdout), 4),
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
        "holdout_rows": len(holdout),
    }
    logger.info("Holdout metrics: %s", metrics)
    return metrics


@task.branch
def choose_path(metrics: dict[str, Any], params: dict[str, Any]) -> str:
    """Ship only a model that beats the bar; the other branch is skipped."""
    threshold = params["accuracy_threshold"]
    if metrics["accuracy"] >= threshold:
        return "deploy"
    logger.warning("Accuracy %.3f is below %.3f", metrics["accuracy"], threshold)
    return "notify_low_accuracy"


@task
def deploy(model: dict[str, Any], metrics: dict[str, Any], ds_nodash: str) -> dict[str, Any]:
    """Copy the model into the (local, simulated) registry under a dated version."""
    registry = Path(tempfile.gettempdir(), "tradewind_examples", DAG_ID, "registry")
    registry.mkdir(parents=True, exist_ok=True)
    version = f"churn-{ds_nodash}"
    entry = json.loads(Path(model["model_path"]).read_text())
    entry.update(version=version, metrics=metrics)
    _write_atomically(registry / f"{version}.json", json.dumps(entry, indent=2))
    _write_atomically(registry / "CURRENT", version + "\n")
    logger.info("Deployed %s (accuracy %.3f)", version, metrics["accuracy"])
    return {"version": version, "registry": str(registry)}


@task
def notify_low_accuracy(metrics: dict[str, Any], params: dict[str, Any]) -> None:
    """Stand-in for a Slack or e-mail alert: the current model stays in place."""
    logger.warning(
        "Model not deployed: accuracy %.3f < threshold %.3f",
        metrics["accuracy"],
        params["accuracy_threshold"],
    )


@task(trigger_rule="none_failed_min_one_success")
def publish_report(metrics: dict[str, Any], ti: Any) -> dict[str, Any]:
    """Runs after either branch; a skipped ``deploy`` simply has no XCom."""
    deployed = ti.xcom_pull(task_ids="deploy")
    report = {"metrics": metrics, "deployed": deployed is not None}
    if deployed is not None:
        report["version"] = deployed["version"]
    logger.info("Run report: %s", report)
    return report


@dag(
    dag_id=DAG_ID,
    schedule="0 2 * * *",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(minutes=30),
    },
    params={
        "accuracy_threshold": Param(
            0.8,
            type="number",
            minimum=0,
            maximum=1,
            description="Holdout accuracy a model must reach to be deployed.",
        ),
        "sample_rows": Param(
            2000,
            type="integer",
            minimum=200,
            maximum=100_000,
            description="How many customers the simulated extract returns.",
        ),
        "seed": Param(7, type="integer", description="Seed of the simulated extract."),
    },
    tags=["ml", "training", "example"],
)
def ml_training_pipeline() -> None:
    """
    ### Churn model, trained nightly

    `extract` >> `validate` >> `build_features` >> `train` >> `evaluate` >> `choose_path`,
    then `deploy` (accuracy at or above `params.accuracy_threshold`) or
    `notify_low_accuracy`, and `publish_report` either way.

    Tasks hand each other file paths and metrics through XCom; the data stays in files.
    """
    raw = extract()
    features = build_features(validate(raw))
    model = train(features)
    metrics = evaluate(model, features)
    branches = [deploy(model, metrics), notify_low_accuracy(metrics)]
    choose_path(metrics) >> branches
    branches >> publish_report(metrics)


ml_training_pipeline()
