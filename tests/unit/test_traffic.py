"""Traffic rebalancing as a pure function: table tests, including rounding that must sum to 100."""

from __future__ import annotations

import itertools

import pytest

from common.errors import UsageError
from common.release.traffic import ImpossibleTrafficError, rebalance, without_live_mirrors


@pytest.mark.parametrize(
    ("current", "deployment", "percent", "expected"),
    [
        ({}, "blue", 100, {"blue": 100}),
        ({}, "blue", 0, {"blue": 0}),
        ({"dark": 0}, "blue", 0, {"dark": 0, "blue": 0}),
        ({"blue": 100}, "blue", 100, {"blue": 100}),
        ({"blue": 100}, "green", 10, {"blue": 90, "green": 10}),
        ({"blue": 100}, "green", 0, {"blue": 100, "green": 0}),
        ({"blue": 100}, "green", 100, {"blue": 0, "green": 100}),
        ({"blue": 90, "green": 10}, "green", 50, {"blue": 50, "green": 50}),
        ({"blue": 90, "green": 10}, "green", 100, {"blue": 0, "green": 100}),
        ({"blue": 90, "green": 10}, "blue", 0, {"blue": 0, "green": 100}),
        # proportional: 60/30 of 100 -> 50 left for a and b in 2:1
        ({"a": 60, "b": 30, "c": 10}, "c", 50, {"a": 33, "b": 17, "c": 50}),
        # thirds: 100 split 1:1:1 of 90 is 30 each
        ({"a": 34, "b": 33, "c": 33}, "d", 10, {"a": 30, "b": 30, "c": 30, "d": 10}),
        # 67 split over three equal shares: 22.33 each, one gets the extra point; ties go to larger share, then name
        ({"a": 34, "b": 33, "c": 33}, "d", 33, {"a": 23, "b": 22, "c": 22, "d": 33}),
        ({"x": 50, "y": 50}, "z", 1, {"x": 50, "y": 49, "z": 1}),
        # a deployment at 0 stays at 0 and takes none of the rest
        ({"blue": 100, "dark": 0}, "green", 20, {"blue": 80, "dark": 0, "green": 20}),
        # shares that do not sum to 100 (Azure allows less) still end at exactly 100
        ({"blue": 40}, "green", 30, {"blue": 70, "green": 30}),
    ],
)
def test_rebalance_table(current, deployment, percent, expected):
    assert rebalance(current, deployment, percent) == expected


@pytest.mark.parametrize(
    ("current", "deployment", "percent"),
    [
        ({}, "blue", 50),
        ({"blue": 100}, "blue", 99),
        ({"blue": 100}, "blue", 0),
        ({"blue": 0, "dark": 0}, "green", 10),
    ],
)
def test_rest_with_nowhere_to_go_is_refused(current, deployment, percent):
    with pytest.raises(ImpossibleTrafficError, match=rf"cannot give '{deployment}' {percent}% of the traffic"):
        rebalance(current, deployment, percent)


@pytest.mark.parametrize("percent", [-1, 101])
def test_out_of_range_share_is_refused(percent):
    with pytest.raises(UsageError, match=f"invalid traffic share {percent}"):
        rebalance({"blue": 100}, "green", percent)


def test_every_split_sums_to_exactly_100_and_keeps_the_requested_share():
    shares = [(70, 20, 10), (33, 33, 34), (1, 1, 98), (50, 49, 1), (97, 2, 1)]
    for (a, b, c), percent in itertools.product(shares, range(0, 101, 7)):
        plan = rebalance({"a": a, "b": b, "c": c}, "new", percent)
        assert sum(plan.values()) == 100
        assert plan["new"] == percent
        assert all(share >= 0 for share in plan.values())


@pytest.mark.parametrize(
    ("live", "mirror", "kept", "cleared"),
    [
        ({"blue": 90, "green": 10}, {"green": 10}, {}, {"green": 10}),
        ({"blue": 100, "green": 0}, {"green": 10}, {"green": 10}, {}),
        ({"blue": 100}, {"green": 20}, {"green": 20}, {}),
        ({"blue": 50, "red": 50}, {"green": 5, "red": 0}, {"green": 5}, {}),
        ({}, {}, {}, {}),
    ],
)
def test_a_deployment_with_live_traffic_loses_its_mirror_share(live, mirror, kept, cleared):
    assert without_live_mirrors(live, mirror) == (kept, cleared)
