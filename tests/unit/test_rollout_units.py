"""Safe rollout's pure parts, table-tested without mocks: mirror rules, promotion, rollout plans and verdicts, the
rollback history in tags, metric windows from both targets' figures."""

from __future__ import annotations

import itertools

import pytest

from common.errors import UsageError
from common.local.recent import RecentRequests, nearest_rank
from common.release import history, metrics, rollout, traffic
from common.release.metrics import Figures
from common.release.traffic import Split

# ---- mirror traffic and promotion -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["green=10"], {"green": 10}),
        (["green=50"], {"green": 50}),
        (["none"], {}),
        (["NONE"], {}),
        (["green=0"], {}),
        (["green=0", "red=5"], {"red": 5}),
    ],
)
def test_parse_mirror(values, expected):
    assert traffic.parse_mirror(values) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["green=51"], "invalid --mirror green=51: mirror traffic is at most 50% (Azure's rule)"),
        (["green=10", "red=5"], "mirror traffic goes to one deployment only"),
        (["green"], "invalid --mirror 'green': use DEPLOYMENT=PERCENT"),
        (["green=ten"], "invalid --mirror 'green=ten'"),
        (["-bad=10"], "invalid deployment name '-bad'"),
        (["green=10", "green=20"], "deployment 'green' is given twice in --mirror"),
    ],
)
def test_parse_mirror_refusals(values, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        traffic.parse_mirror(values)


@pytest.mark.parametrize(
    ("mirror", "live", "message"),
    [
        ({"ghost": 10}, {"blue": 100}, "cannot mirror traffic to 'ghost': the endpoint has no such deployment"),
        ({"blue": 10}, {"blue": 100}, "cannot mirror traffic to 'blue': it takes 100% of the live traffic"),
    ],
)
def test_check_mirror_refusals(mirror, live, message):
    with pytest.raises(UsageError, match=message):
        traffic.check_mirror(mirror, live, ["blue", "green"])


def test_check_mirror_accepts_a_dark_deployment():
    traffic.check_mirror({"green": 10}, {"blue": 100, "green": 0}, ["blue", "green"])


@pytest.mark.parametrize(
    ("before", "deployment", "expected"),
    [
        (Split({"blue": 100}, {"green": 10}), "green", Split({"green": 100}, {})),
        (Split({"blue": 90, "green": 10}), "green", Split({"green": 100})),
        (Split({"blue": 100}, {"red": 20}), "green", Split({"green": 100}, {"red": 20})),
        (Split({"green": 100}), "green", Split({"green": 100})),
    ],
)
def test_promoted(before, deployment, expected):
    assert traffic.promoted(before, deployment) == expected


def test_a_split_ignores_zero_shares():
    assert Split({"blue": 100, "green": 0}, {"green": 0}) == Split({"blue": 100})


# ---- rollout plans and verdicts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "steps", "expected"),
    [
        (
            Split({"blue": 100}),
            [10, 50, 100],
            [{"blue": 90, "green": 10}, {"blue": 50, "green": 50}, {"blue": 0, "green": 100}],
        ),
        # the others shrink in proportion to their shares before the rollout, as --traffic_allocation does
        (
            Split({"blue": 60, "red": 40}),
            [10, 55],
            [{"blue": 54, "red": 36, "green": 10}, {"blue": 27, "red": 18, "green": 55}],
        ),
        # a deployment already at the first step's share
        (Split({"blue": 90, "green": 10}), [10, 100], [{"blue": 90, "green": 10}, {"blue": 0, "green": 100}]),
    ],
)
def test_rollout_plan(before, steps, expected):
    assert [split.live for split in rollout.plan(before, "green", steps)] == [Split(e).live for e in expected]


def test_rollout_plan_clears_the_mirror_of_the_deployment_rolled_out_and_keeps_another():
    splits = rollout.plan(Split({"blue": 100}, {"green": 10}), "green", [10])
    assert splits[0].mirror == {}
    splits = rollout.plan(Split({"blue": 100}, {"red": 10}), "green", [10])
    assert splits[0].mirror == {"red": 10}


def test_rollout_plans_always_sum_to_100():
    shares = [(100, 0), (70, 30), (33, 67), (99, 1), (50, 50)]
    for (a, b), steps in itertools.product(shares, [[1, 2, 3], [10, 50, 100], [7, 33, 66, 99], [5, 100]]):
        for split in rollout.plan(Split({"a": a, "b": b}), "new", steps):
            assert sum(split.live.values()) == 100, (a, b, steps, split)


@pytest.mark.parametrize(
    ("before", "steps", "message"),
    [
        (Split({}), [10], "cannot give 'green' 10% of the traffic"),
        (Split({"green": 60, "blue": 40}), [10, 100], "'green' already takes 60% of the live traffic"),
    ],
)
def test_impossible_rollout_plans_are_refused(before, steps, message):
    with pytest.raises(UsageError, match=message):
        rollout.plan(before, "green", steps)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([0, 50], "use percentages from 1 to 100"),
        ([10, 101], "from 1 to 100"),
        ([50, 10], "larger than the one before"),
        ([10, 10], "larger than the one before"),
    ],
)
def test_bad_steps_are_refused(steps, message):
    with pytest.raises(UsageError, match=message):
        rollout.check_steps(steps)


LIMITS = rollout.Limits(max_error_percent=1, max_p95_ms=500, min_requests=20)


@pytest.mark.parametrize(
    ("figures", "crossed"),
    [
        (Figures(100, 0, 0, 2.0, 4.0, 9.0), []),
        (Figures(100, 1, 0, 2.0, 4.0, 9.0), []),  # 1% is within --max_error_percent 1
        (Figures(100, 1, 1, 2.0, 4.0, 9.0), ["error percentage 2.0% (2 of 100) is above --max_error_percent 1"]),
        (Figures(45, 45, 0, 1.0, 1.8, 2.0), ["error percentage 100.0% (45 of 45) is above --max_error_percent 1"]),
        (Figures(100, 0, 0, 20.0, 600.0, 900.0), ["p95 600.0 ms is above --max_p95_ms 500"]),
        (Figures(19, 0, 0, 2.0, 4.0, 9.0), ["19 requests, fewer than --min_requests 20"]),
        (Figures(), ["0 requests, fewer than --min_requests 20"]),  # no data is never a pass
        (Figures(30, 0, 0, None, None, None), ["no p95 latency was reported for the window"]),
        (
            Figures(10, 5, 5, 2.0, 800.0, 900.0),
            [
                "10 requests, fewer than --min_requests 20",
                "error percentage 100.0% (10 of 10) is above --max_error_percent 1",
                "p95 800.0 ms is above --max_p95_ms 500",
            ],
        ),
    ],
)
def test_verdicts(figures, crossed):
    verdict = rollout.judge(figures, LIMITS)
    assert list(verdict.crossed) == crossed
    assert verdict.passed == (not crossed)


# ---- rollback history in tags ---------------------------------------------------------------------------------


def entry(live: dict[str, int], mirror: dict[str, int] | None = None, change: str = "promote green") -> history.Entry:
    return history.Entry(Split(live, mirror or {}), change, "2026-11-24T10:00:00Z")


def test_history_round_trips_through_tags_most_recent_first_and_keeps_user_tags():
    tags = {"team": "ml"}
    tags = history.recorded(tags, entry({"blue": 100}, change="traffic --mirror green=10"))
    tags = history.recorded(tags, entry({"blue": 100}, {"green": 10}))
    assert tags["team"] == "ml"
    assert tags["toolkit.rollback.1"] == "2026-11-24T10:00:00Z|promote green|blue=100|green=10"
    assert tags["toolkit.rollback.2"] == "2026-11-24T10:00:00Z|traffic --mirror green=10|blue=100|-"
    assert history.entries(tags) == [
        entry({"blue": 100}, {"green": 10}),
        entry({"blue": 100}, change="traffic --mirror green=10"),
    ]


def test_history_keeps_the_most_recent_entries():
    tags: dict[str, str] = {}
    for share in range(1, 9):
        tags = history.recorded(tags, entry({"blue": 100 - share, "green": share}))
    found = history.entries(tags)
    assert len(found) == history.MAX_ENTRIES
    assert found[0].before.live == {"blue": 92, "green": 8}


def test_a_split_too_long_for_a_tag_clears_the_history_rather_than_leave_a_gap(capsys):
    tags = history.recorded({}, entry({"blue": 100}))
    many = {f"deployment-number-{i:02d}-abcdefghij": 5 for i in range(20)}
    tags = history.recorded(tags, entry(many))
    assert history.entries(tags) == []
    assert "the rollback history is cleared" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["garbage", "a|b|c", "2026|promote|blue=x|-", ""])
def test_tags_that_are_not_history_entries_end_the_history(value):
    assert history.entries({"toolkit.rollback.1": value}) == []


def test_endpoint_tags_given_with_tags_keep_the_history():
    existing = history.recorded({"team": "old"}, entry({"blue": 100}))
    assert history.kept_in({"team": "new"}, existing) == {
        "team": "new",
        "toolkit.rollback.1": existing["toolkit.rollback.1"],
    }


# ---- metric windows ---------------------------------------------------------------------------------------------


def test_figures_from_status_codes():
    figures = metrics.from_status_codes({"200": 90, "424": 6, "429": 1, "503": 3}, {"p50": 2.0, "p95": 5.0, "p99": 7.5})
    assert (figures.requests, figures.client_errors, figures.server_errors) == (100, 7, 3)
    assert figures.error_percent == 10.0
    assert figures.as_dict()["4xx_percent"] == 7.0


def test_figures_from_azure_minutes_weight_percentiles_by_requests():
    requests = {"2xx": {"10:00": 90.0, "10:01": 10.0}, "4xx": {"10:00": 0.0, "10:01": 0.0}, "5xx": {"10:01": 2.0}}
    latency = {"p95": {"10:00": 10.0, "10:01": 100.0}, "p50": {"10:00": 5.0}}
    figures = metrics.from_minutes(requests, latency)
    assert (figures.requests, figures.client_errors, figures.server_errors) == (102, 0, 2)
    assert figures.p95_ms == pytest.approx((10 * 90 + 100 * 12) / 102, abs=1e-3)
    assert figures.p50_ms == 5.0
    assert figures.p99_ms is None


def test_no_azure_data_is_no_requests():
    assert metrics.from_minutes({}, {}) == Figures()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_recent_requests_window_starts_and_ends_at_the_exact_time_asked():
    clock = Clock(1000.2)
    recent = RecentRequests(clock=clock)
    recent.record("blue", 200, 0.010)  # 1000.2, before the window
    clock.now = 1000.6
    recent.record("green", 200, 0.020)
    recent.record("green", 424, 0.030)
    recent.record("green", 200, 0.040, mirrored=True)
    clock.now = 1002.5
    recent.record("green", 503, 0.050)
    clock.now = 1003.9
    recent.record("green", 200, 0.060)  # after the window

    window = recent.window(1000.5, 1003.5)["deployments"]

    assert "blue" not in window
    assert window["green"]["live"] == {
        "requests": 3,
        "status_codes": {"200": 1, "424": 1, "503": 1},
        "latency_ms": {"p50": 30.0, "p95": 50.0, "p99": 50.0},
    }
    assert window["green"]["mirrored"]["requests"] == 1


def test_recent_requests_forget_what_is_older_than_the_retention():
    clock = Clock(1000.0)
    recent = RecentRequests(clock=clock, retention=60)
    recent.record("blue", 200, 0.01)
    clock.now = 1061.0
    recent.record("blue", 200, 0.01)
    assert recent.window(0, 2000)["deployments"]["blue"]["live"]["requests"] == 1
    assert len(recent.seconds) == 1


@pytest.mark.parametrize(
    ("values", "percentile", "expected"),
    [
        ([1.0], 99, 1.0),
        ([1.0, 2.0], 50, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 95, 4.0),
        (list(map(float, range(1, 101))), 95, 95.0),
    ],
)
def test_nearest_rank(values, percentile, expected):
    assert nearest_rank(values, percentile) == expected


def test_the_shadow_gate_fails_on_the_shadows_own_error_rate():
    """A green failing 94 of 100 mirrored requests passed the gate on the rows of its 6 answers."""
    from types import SimpleNamespace

    from common.release.rollout import Limits, shadow_errors_crossed
    from common.release.shadow import SideFigures

    limits = Limits(max_error_percent=1.0, max_p95_ms=1000.0, min_requests=10)
    failing = SimpleNamespace(shadow_figures=SideFigures(100, 94, 3.0, 5.0, ((429, 4), (503, 90))))
    healthy = SimpleNamespace(shadow_figures=SideFigures(100, 1, 3.0, 5.0))
    unknown = SimpleNamespace(shadow_figures=SideFigures(100, None, None, None))  # Azure: not in the collected data

    assert shadow_errors_crossed(failing, "green", limits) == [
        "green failed 94 of 100 mirrored requests (94.0%; status 429 x 4, 503 x 90), above --max_error_percent 1"
    ]
    assert shadow_errors_crossed(healthy, "green", limits) == []
    assert shadow_errors_crossed(unknown, "green", limits) == []
