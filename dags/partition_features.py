"""Daily feature build over a rolling window of date partitions, with dynamic task mapping.

What this example shows:

* ``list_partitions`` decides at run time which partitions to process (the last
  ``params.lookback_days`` days up to the run's logical date), so the number of tasks is
  not fixed when the DAG file is parsed;
* ``extract_partition.expand(day=...)``: one task instance per partition, ``map_index``
  0, 1, ... in the order of the list;
* ``build_partition_features.partial(...).expand(partition=...)``: arguments given to
  ``partial`` are the same for every instance, the expanded one differs. It maps over
  the output of the previous mapped task, one instance per upstream instance;
* ``aggregate_window`` receives the mapped results as one list, in ``map_index`` order,
  and checks that order before combining them;
* ``max_active_tis_per_dagrun`` to cap how many partitions run at once, as you would for
  a backfill against a shared warehouse;
* ``outlets=[FEATURE_WINDOW]``: each successful window records an update of that asset
  (with its row count), so a DAG scheduled on it would run after every new window.

Each partition is a small CSV of simulated sessions under the system temp directory,
seeded by its date, so reruns and retries produce the same files and the same numbers.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import statistics
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tradewind import Asset, Param, dag, task

logger = logging.getLogger(__name__)

DAG_ID = "partition_features"


def _output_path(folder: str, name: str) -> Path:
    path = Path(tempfile.gettempdir(), "tradewind_examples", DAG_ID, folder)
    path.mkdir(parents=True, exist_ok=True)
    return path / name


@task
def list_partitions(ds: str, params: dict[str, Any]) -> list[str]:
    """The partitions of this run: ``lookback_days`` dates, oldest first, ending at ``ds``."""
    end = date.fromisoformat(ds)
    days = [(end - timedelta(days=n)).isoformat() for n in range(params["lookback_days"])]
    return sorted(days)


@task(max_active_tis_per_dagrun=4)
def extract_partition(day: str) -> dict[str, Any]:
    """Write one day of simulated user sessions; the seed is the date, so it is repeatable."""
    rng = random.Random(day)
    rows = [
        [f"user{rng.randint(1, 300):03d}", rng.randint(1, 90), rng.random() < 0.15]
        for _ in range(rng.randint(400, 600))
    ]
    path = _output_path(f"day={day}", "sessions.csv")
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "session_minutes", "purchased"])
        writer.writerows(rows)
    os.replace(partial, path)
    return {"day": day, "path": str(path), "sessions": len(rows)}


@task(max_active_tis_per_dagrun=4)
def build_partition_features(
    partition: dict[str, Any], long_session_minutes: int, min_sessions: int
) -> dict[str, Any]:
    """Per-day features from one partition file; only the summary goes to XCom."""
    with open(partition["path"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    if len(rows) < min_sessions:
        raise ValueError(
            f"partition {partition['day']} has {len(rows)} sessions (< {min_sessions})"
        )
    minutes = [int(r["session_minutes"]) for r in rows]
    features = {
        "day": partition["day"],
        "sessions": len(rows),
        "users": len({r["user_id"] for r in rows}),
        "median_minutes": float(statistics.median(minutes)),
        "long_session_share": round(
            sum(m >= long_session_minutes for m in minutes) / len(minutes), 4
        ),
        "conversion_rate": round(sum(r["purchased"] == "True" for r in rows) / len(rows), 4),
    }
    logger.info("Features of %s: %s", partition["day"], features)
    return features


FEATURE_WINDOW = Asset(
    "file://tradewind_examples/partition_features/windows", name="feature_window"
)


@task(outlets=[FEATURE_WINDOW])
def aggregate_window(
    daily: list[dict[str, Any]], ds: str, outlet_events: Any = None
) -> dict[str, Any]:
    """Combine the per-day results; they arrive in map_index order, oldest day first."""
    days = [d["day"] for d in daily]
    if days != sorted(days):
        raise ValueError(f"partitions arrived out of order: {days}")
    total = sum(d["sessions"] for d in daily)
    summary = {
        "window": f"{days[0]}..{days[-1]}",
        "partitions": len(daily),
        "sessions": total,
        "conversion_rate": round(
            sum(d["conversion_rate"] * d["sessions"] for d in daily) / total, 4
        ),
        "busiest_day": max(daily, key=lambda d: d["sessions"])["day"],
    }
    path = _output_path("windows", f"window_ending_{ds}.csv")
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(daily[0]))
        writer.writeheader()
        writer.writerows(daily)
    logger.info("Window summary: %s (per-day table in %s)", summary, path)
    if outlet_events is not None:
        outlet_events[FEATURE_WINDOW].extra.update(window=summary["window"], rows=len(daily))
    return summary


@dag(
    dag_id=DAG_ID,
    schedule="30 1 * * *",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={"owner": "features", "retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "lookback_days": Param(
            7, type="integer", minimum=1, maximum=31, description="How many daily partitions."
        ),
    },
    tags=["features", "mapping", "example"],
)
def partition_features() -> None:
    """
    ### Rolling-window features, one mapped task instance per day

    `list_partitions` >> `extract_partition` (mapped) >> `build_partition_features`
    (mapped, with `partial` arguments) >> `aggregate_window`.
    """
    days = list_partitions()
    extracted = extract_partition.expand(day=days)
    daily = build_partition_features.partial(long_session_minutes=30, min_sessions=100).expand(
        partition=extracted
    )
    aggregate_window(daily)


partition_features()
