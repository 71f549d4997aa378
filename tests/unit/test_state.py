"""The transition rules, table-driven, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tradewind.state import (
    RETRYABLE_ENDS,
    DagRunState,
    IllegalTransitionError,
    Readiness,
    RetryPolicy,
    TaskInstanceState,
    TriggerRule,
    TryEnd,
    UpstreamSummary,
    check_transition,
    decide_run_state,
    evaluate_trigger_rule,
    resolve_try_end,
    retry_delay_for,
)

TI = TaskInstanceState
R = Readiness
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

S, F, K, UF, RM, N = TI.SUCCESS, TI.FAILED, TI.SKIPPED, TI.UPSTREAM_FAILED, TI.REMOVED, None

# (rule, upstream states, expected readiness)
TRIGGER_RULE_CASES = [
    # all_success
    ("all_success", [S, S], R.RUN),
    ("all_success", [S, N], R.WAIT),
    ("all_success", [S, F], R.UPSTREAM_FAILED),
    ("all_success", [S, UF], R.UPSTREAM_FAILED),
    ("all_success", [N, F], R.UPSTREAM_FAILED),  # decided before all are done
    ("all_success", [S, K], R.SKIP),
    ("all_success", [K, F], R.UPSTREAM_FAILED),  # failure wins over skip
    # all_failed
    ("all_failed", [F, UF], R.RUN),
    ("all_failed", [F, N], R.WAIT),
    ("all_failed", [F, S], R.SKIP),
    ("all_failed", [F, K], R.SKIP),
    # all_done
    ("all_done", [S, F, K, UF], R.RUN),
    ("all_done", [S, N], R.WAIT),
    # all_skipped
    ("all_skipped", [K, K], R.RUN),
    ("all_skipped", [K, N], R.WAIT),
    ("all_skipped", [K, S], R.SKIP),
    ("all_skipped", [K, F], R.SKIP),
    # one_success
    ("one_success", [S, N], R.RUN),
    ("one_success", [F, N], R.WAIT),
    ("one_success", [F, UF], R.UPSTREAM_FAILED),
    ("one_success", [K, K], R.SKIP),
    ("one_success", [K, F], R.UPSTREAM_FAILED),
    # one_failed
    ("one_failed", [F, N], R.RUN),
    ("one_failed", [UF, N], R.RUN),
    ("one_failed", [S, N], R.WAIT),
    ("one_failed", [S, K], R.SKIP),
    # one_done
    ("one_done", [S, N], R.RUN),
    ("one_done", [F, N], R.RUN),
    ("one_done", [K, N], R.WAIT),
    ("one_done", [K, K], R.SKIP),
    ("one_done", [UF, K], R.SKIP),
    # none_failed
    ("none_failed", [S, K], R.RUN),
    ("none_failed", [K, K], R.RUN),
    ("none_failed", [S, N], R.WAIT),
    ("none_failed", [S, F], R.UPSTREAM_FAILED),
    ("none_failed", [UF, N], R.UPSTREAM_FAILED),
    # none_failed_min_one_success
    ("none_failed_min_one_success", [S, K], R.RUN),
    ("none_failed_min_one_success", [K, K], R.SKIP),
    ("none_failed_min_one_success", [S, N], R.WAIT),
    ("none_failed_min_one_success", [S, F], R.UPSTREAM_FAILED),
    # none_skipped
    ("none_skipped", [S, F, UF], R.RUN),
    ("none_skipped", [S, N], R.WAIT),
    ("none_skipped", [S, K], R.SKIP),
    # always
    ("always", [N, N], R.RUN),
    ("always", [F, K], R.RUN),
    # removed upstream instances count as done
    ("all_success", [S, RM], R.RUN),
    ("all_done", [RM, RM], R.RUN),
]


@pytest.mark.parametrize(("rule", "states", "expected"), TRIGGER_RULE_CASES)
def test_trigger_rules(rule: str, states: list[TI | None], expected: Readiness) -> None:
    assert evaluate_trigger_rule(TriggerRule(rule), UpstreamSummary.of(states)) is expected


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_a_task_without_upstream_runs_whatever_its_rule(rule: TriggerRule) -> None:
    assert evaluate_trigger_rule(rule, UpstreamSummary.of([])) is R.RUN


def test_every_rule_is_covered_by_the_table() -> None:
    assert {TriggerRule(r) for r, _, _ in TRIGGER_RULE_CASES} == set(TriggerRule)


def test_upstream_summary_counts_states() -> None:
    summary = UpstreamSummary.of([S, S, F, None, TI.RUNNING, K])
    assert (summary.total, summary.success, summary.failed, summary.skipped) == (6, 2, 1, 1)
    assert summary.done == 4
    assert not summary.all_done


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, TI.SCHEDULED),
        (TI.SCHEDULED, TI.QUEUED),
        (TI.QUEUED, TI.RUNNING),
        (TI.RUNNING, TI.SUCCESS),
        (TI.RUNNING, TI.UP_FOR_RETRY),
        (TI.UP_FOR_RETRY, TI.QUEUED),
        (TI.RUNNING, TI.DEFERRED),
        (TI.DEFERRED, TI.SCHEDULED),
        (None, TI.SKIPPED),
        (None, TI.UPSTREAM_FAILED),
        (TI.QUEUED, TI.FAILED),
    ],
)
def test_allowed_automatic_transitions(old: TI | None, new: TI | None) -> None:
    check_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (TI.SUCCESS, TI.RUNNING),  # a finished try never runs again by itself
        (TI.SUCCESS, TI.QUEUED),
        (TI.FAILED, TI.QUEUED),
        (TI.SKIPPED, TI.RUNNING),
        (None, TI.RUNNING),  # must be queued (claimed) first
        (TI.RUNNING, TI.QUEUED),
        (TI.SUCCESS, None),  # only a user may clear
    ],
)
def test_forbidden_automatic_transitions(old: TI | None, new: TI | None) -> None:
    with pytest.raises(IllegalTransitionError):
        check_transition(old, new)


def test_users_may_mark_and_clear_but_not_clear_a_running_try() -> None:
    check_transition(TI.FAILED, TI.SUCCESS, by_user=True)
    check_transition(TI.SUCCESS, None, by_user=True)
    check_transition(TI.RUNNING, TI.FAILED, by_user=True)
    with pytest.raises(IllegalTransitionError):
        check_transition(TI.RUNNING, None, by_user=True)
    with pytest.raises(IllegalTransitionError):
        check_transition(TI.FAILED, TI.QUEUED, by_user=True)


@pytest.mark.parametrize(
    ("states", "leaves", "expected"),
    [
        ({"a": [S], "b": [S]}, ["b"], DagRunState.SUCCESS),
        ({"a": [S], "b": [K]}, ["b"], DagRunState.SUCCESS),
        ({"a": [S], "b": [F]}, ["b"], DagRunState.FAILED),
        ({"a": [F], "b": [UF]}, ["b"], DagRunState.FAILED),
        ({"a": [F], "b": [S]}, ["b"], DagRunState.SUCCESS),  # all_done cleanup leaf
        ({"a": [S], "b": [N]}, ["b"], None),
        ({"a": [TI.RUNNING], "b": [N]}, ["b"], None),
        ({"a": [S], "m": [S, F, S]}, ["m"], DagRunState.FAILED),  # one mapped instance failed
        ({"a": [S], "m": [S, TI.UP_FOR_RETRY]}, ["m"], None),
        ({"a": [S], "b": [RM]}, ["b"], DagRunState.SUCCESS),
    ],
)
def test_run_state(
    states: dict[str, list[TI | None]], leaves: list[str], expected: DagRunState | None
) -> None:
    assert decide_run_state(states, leaves) == expected


POLICY = RetryPolicy(retries=2, retry_delay=timedelta(seconds=10))


def test_success_and_skip_need_no_retry() -> None:
    assert (
        resolve_try_end(TryEnd.SUCCESS, try_number=1, policy=POLICY, now=NOW, jitter_key="k").state
        is TI.SUCCESS
    )
    skipped = resolve_try_end(TryEnd.SKIPPED, try_number=1, policy=POLICY, now=NOW, jitter_key="k")
    assert skipped.state is TI.SKIPPED


@pytest.mark.parametrize(
    "end", [TryEnd.FAILED, TryEnd.TIMED_OUT, TryEnd.LOST, TryEnd.RETRY_REQUESTED]
)
def test_failures_retry_while_retries_are_left(end: TryEnd) -> None:
    first = resolve_try_end(end, try_number=1, policy=POLICY, now=NOW, jitter_key="k")
    assert first.state is TI.UP_FOR_RETRY
    assert first.next_try_at == NOW + timedelta(seconds=10)
    assert first.callback == "on_retry"
    second = resolve_try_end(end, try_number=2, policy=POLICY, now=NOW, jitter_key="k")
    assert second.state is TI.UP_FOR_RETRY
    last = resolve_try_end(end, try_number=3, policy=POLICY, now=NOW, jitter_key="k")
    assert last.state is TI.FAILED
    assert last.callback == "on_failure"


@pytest.mark.parametrize("end", sorted(set(TryEnd) - RETRYABLE_ENDS, key=lambda e: e.value))
@pytest.mark.parametrize("try_number", [1, 3])
def test_ends_outside_retryable_ends_mean_the_same_whatever_the_policy(
    end: TryEnd, try_number: int
) -> None:
    # The task runner skips reading the retry policy for these ends; that is only
    # right while no policy changes what they mean.
    policies = [
        RetryPolicy(),
        POLICY,
        RetryPolicy(retries=9, retry_delay=timedelta(hours=1), retry_exponential_backoff=2.0),
    ]
    results = {
        resolve_try_end(
            end, try_number=try_number, policy=policy, now=NOW, jitter_key="k", max_tries=m
        )
        for policy in policies
        for m in (None, 0, 5)
    }
    assert len(results) == 1


def test_a_cleared_instance_retries_within_its_own_budget() -> None:
    # POLICY has 2 retries. Failed at try 3, then cleared: max_tries became 3 + 2.
    def end(try_number: int) -> TI:
        return resolve_try_end(
            TryEnd.FAILED,
            try_number=try_number,
            policy=POLICY,
            now=NOW,
            jitter_key="k",
            max_tries=5,
        ).state

    assert [end(n) for n in (4, 5, 6)] == [TI.UP_FOR_RETRY, TI.UP_FOR_RETRY, TI.FAILED]
    no_retries = RetryPolicy(retries=0)
    once = resolve_try_end(
        TryEnd.FAILED, try_number=1, policy=no_retries, now=NOW, jitter_key="k", max_tries=4
    )
    assert once.state is TI.FAILED  # a task without retries is never retried


@pytest.mark.parametrize("try_number", [1, 3, 7])
def test_an_interrupted_try_is_handed_back_at_once_whatever_retries_are_left(
    try_number: int,
) -> None:
    result = resolve_try_end(
        TryEnd.INTERRUPTED, try_number=try_number, policy=POLICY, now=NOW, jitter_key="k"
    )
    assert (result.state, result.next_try_at, result.callback) == (TI.UP_FOR_RETRY, NOW, None)


def test_task_fail_ends_retries_at_once() -> None:
    result = resolve_try_end(
        TryEnd.FAILED_NO_RETRY, try_number=1, policy=POLICY, now=NOW, jitter_key="k"
    )
    assert result.state is TI.FAILED


def test_reschedule_keeps_the_requested_time() -> None:
    at = NOW + timedelta(minutes=5)
    result = resolve_try_end(
        TryEnd.RESCHEDULED, try_number=1, policy=POLICY, now=NOW, jitter_key="k", reschedule_at=at
    )
    assert (result.state, result.next_try_at) == (TI.UP_FOR_RESCHEDULE, at)


def test_exponential_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(
        retries=10,
        retry_delay=timedelta(seconds=10),
        retry_exponential_backoff=2.0,
        max_retry_delay=timedelta(seconds=300),
    )
    for try_number in range(1, 6):
        floor = 10 * 2 ** (try_number - 1)
        delay = retry_delay_for(policy, try_number, "dag.task.run")
        assert timedelta(seconds=min(floor, 300)) <= delay <= timedelta(seconds=min(2 * floor, 300))
    assert retry_delay_for(policy, 9, "dag.task.run") == timedelta(seconds=300)


def test_backoff_jitter_is_deterministic_per_key() -> None:
    policy = RetryPolicy(
        retries=3, retry_delay=timedelta(seconds=60), retry_exponential_backoff=2.0
    )
    assert retry_delay_for(policy, 2, "a") == retry_delay_for(policy, 2, "a")
    delays = {retry_delay_for(policy, 2, f"key{i}") for i in range(20)}
    assert len(delays) > 1


def test_states_print_as_their_values() -> None:
    assert str(TI.UP_FOR_RETRY) == "up_for_retry"
    assert str(DagRunState.RUNNING) == "running"
