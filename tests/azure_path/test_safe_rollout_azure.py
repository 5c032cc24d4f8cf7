"""Safe rollout on the Azure path: the real azure-ai-ml SDK (and azure-mgmt-monitor) against the fake control
plane, with Azure Monitor's metrics answered by the fake. What is asserted is what would reach Azure."""

from __future__ import annotations

import json

import pytest

import create_online_deployment
import manage_online_endpoint
from common.release import metrics
from tests.seeds import DEPLOYMENT_SEED, with_flag

ENDPOINT = ["--endpoint_name", "diabetes-classify"]
ENDPOINT_PATH = "/onlineEndpoints/diabetes-classify"
GOOD = {"2xx": 60.0, "p50": 20.0, "p95": 45.0, "p99": 80.0}
BROKEN = {"4xx": 30.0, "p50": 5.0, "p95": 9.0, "p99": 12.0}  # a model's 500 reaches clients as 424


@pytest.fixture
def azure_endpoint(fake_azure, monkeypatch):
    fake_azure.add_model("diabetes-predict", "3")
    fake_azure.add_environment("diabetes-classify", "7")
    fake_azure.add_endpoint("diabetes-classify", {"blue": 100}, tags={"team": "ml"})
    fake_azure.add_deployment("diabetes-classify", "green")
    # Azure Monitor's figures are read at once and settle on the second read (the delays are for real Azure)
    monkeypatch.setattr(metrics, "AZURE_FIRST_READ_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(metrics, "AZURE_SETTLE_POLL_SECONDS", 0.0)
    return fake_azure


def endpoint_puts(fake) -> list[dict]:
    return [request.body for request in fake.sent("PUT", ENDPOINT_PATH)]


def manage(run_script, *argv: str):
    return run_script(manage_online_endpoint, [argv[0], *ENDPOINT, *argv[1:]])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mirror", "green=51"], "mirror traffic is at most 50% (Azure's rule)"),
        (["--mirror", "green=10", "blue=5"], "mirror traffic goes to one deployment only"),
        (["--mirror", "blue=10"], "cannot mirror traffic to 'blue': it takes 100% of the live traffic"),
        (["--mirror", "ghost=10"], "cannot mirror traffic to 'ghost': the endpoint has no such deployment"),
        (["--set", "blue=50", "green=50", "--mirror", "green=10"], "cannot mirror traffic to 'green': it takes 50%"),
        ([], "traffic needs --set"),
    ],
)
def test_mirror_rules_are_refused_before_any_write(azure_endpoint, run_script, argv, message):
    result = manage(run_script, "traffic", *argv)

    assert result.code == 2, result.err
    assert message in result.err
    assert azure_endpoint.writes() == []


def test_mirror_is_set_and_cleared_and_each_change_is_recorded_in_the_tags(azure_endpoint, run_script):
    result = manage(run_script, "traffic", "--mirror", "green=10")

    assert result.code == 0, result.err
    put = endpoint_puts(azure_endpoint)[-1]
    assert (put["properties"]["traffic"], put["properties"]["mirrorTraffic"]) == ({"blue": 100}, {"green": 10})
    assert put["tags"]["team"] == "ml"
    assert put["tags"]["toolkit.rollback.1"].endswith("|traffic --mirror green=10|blue=100|-")
    assert "Mirror traffic: none -> green=10%" in result.out

    result = manage(run_script, "traffic", "--mirror", "none", "--output", "json")

    assert result.code == 0, result.err
    put = endpoint_puts(azure_endpoint)[-1]
    assert put["properties"].get("mirrorTraffic") in ({}, None)
    assert json.loads(result.out)["before"]["mirror_traffic"] == {"green": 10}
    assert put["tags"]["toolkit.rollback.1"].endswith("|traffic --mirror none|blue=100|green=10")


def test_set_and_mirror_together(azure_endpoint, run_script):
    azure_endpoint.add_deployment("diabetes-classify", "red")

    result = manage(run_script, "traffic", "--set", "blue=90", "red=10", "--mirror", "green=20")

    assert result.code == 0, result.err
    properties = endpoint_puts(azure_endpoint)[-1]["properties"]
    assert (properties["traffic"], properties["mirrorTraffic"]) == ({"blue": 90, "red": 10}, {"green": 20})


def test_promote_then_rollback_restores_live_and_mirror(azure_endpoint, run_script):
    assert manage(run_script, "traffic", "--mirror", "green=10").code == 0

    result = manage(run_script, "promote", "--deployment_name", "green")

    assert result.code == 0, result.err
    put = endpoint_puts(azure_endpoint)[-1]
    assert (put["properties"]["traffic"], put["properties"].get("mirrorTraffic") or {}) == ({"green": 100}, {})
    assert "Live traffic:   blue=100% -> green=100%" in result.out

    result = manage(run_script, "rollback")

    assert result.code == 0, result.err
    put = endpoint_puts(azure_endpoint)[-1]
    assert (put["properties"]["traffic"], put["properties"]["mirrorTraffic"]) == ({"blue": 100}, {"green": 10})
    assert "Rolled back 'promote green'" in result.out
    assert put["tags"]["toolkit.rollback.1"].endswith("|traffic --mirror green=10|blue=100|-")  # the one before
    assert "toolkit.rollback.2" not in put["tags"] and put["tags"]["team"] == "ml"


def test_rollback_after_traffic_set(azure_endpoint, run_script):
    assert manage(run_script, "traffic", "--set", "blue=80", "green=20").code == 0

    result = manage(run_script, "rollback", "--output", "json")

    assert result.code == 0, result.err
    assert endpoint_puts(azure_endpoint)[-1]["properties"]["traffic"] == {"blue": 100}
    assert json.loads(result.out)["undone"] == "traffic --set blue=80 green=20"


def test_rollback_after_a_deployments_traffic_allocation(azure_endpoint, run_script):
    argv = with_flag(with_flag(DEPLOYMENT_SEED, "--deployment_name", "green"), "--traffic_allocation", "10")
    assert run_script(create_online_deployment, argv).code == 0
    assert endpoint_puts(azure_endpoint)[-1]["properties"]["traffic"] == {"blue": 90, "green": 10}

    result = manage(run_script, "rollback")

    assert result.code == 0, result.err
    assert endpoint_puts(azure_endpoint)[-1]["properties"]["traffic"] == {"blue": 100}
    assert "Rolled back '--traffic_allocation green=10'" in result.out


def test_rollback_without_history_changes_nothing(azure_endpoint, run_script):
    result = manage(run_script, "rollback")

    assert result.code == 3
    assert "has no rollback history" in result.err and "nothing was changed" in result.err
    assert azure_endpoint.writes() == []


def test_rollback_refuses_a_split_whose_deployment_is_gone(azure_endpoint, run_script):
    assert manage(run_script, "promote", "--deployment_name", "green").code == 0
    del azure_endpoint.deployments[("diabetes-classify", "blue")]
    writes = len(azure_endpoint.writes())

    result = manage(run_script, "rollback")

    assert result.code == 2
    assert "deployment 'blue' no longer exists" in result.err
    assert len(azure_endpoint.writes()) == writes


def test_promote_of_a_missing_deployment_is_refused(azure_endpoint, run_script):
    result = manage(run_script, "promote", "--deployment_name", "ghost")

    assert result.code == 3
    assert "has no deployment 'ghost'" in result.err
    assert azure_endpoint.writes() == []


def test_metrics_come_from_azure_monitor_by_deployment_and_status_class(azure_endpoint, run_script):
    azure_endpoint.monitor = {"blue": {"2xx": 95.0, "4xx": 3.0, "5xx": 2.0, "p50": 20.0, "p95": 45.0, "p99": 80.0}}

    result = manage(run_script, "metrics", "--minutes", "10", "--output", "json")

    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert shown["deployments"]["blue"]["live"] == {
        "requests": 100,
        "4xx": 3,
        "5xx": 2,
        "error_percent": 5.0,
        "4xx_percent": 3.0,
        "5xx_percent": 2.0,
        "p50_ms": 20.0,
        "p95_ms": 45.0,
        "p99_ms": 80.0,
    }
    assert shown["deployments"]["green"]["live"]["requests"] == 0
    assert "Azure Monitor figures: whole minutes" in shown["note"]
    counts, latency = azure_endpoint.sent("GET", f"{ENDPOINT_PATH}/providers/Microsoft.Insights/metrics")
    assert counts.query["metricnames"] == ["RequestsPerMinute"]
    assert counts.query["$filter"] == ["deployment eq '*' and statusCodeClass eq '*'"]
    assert (counts.query["aggregation"], counts.query["interval"]) == (["Average"], ["PT1M"])
    assert latency.query["metricnames"] == ["RequestLatency_P50,RequestLatency_P95,RequestLatency_P99"]
    start, end = counts.query["timespan"][0].split("/")
    assert start.endswith(":00Z") and end.endswith(":00Z")  # whole minutes


def test_metrics_of_one_deployment_in_text(azure_endpoint, run_script):
    azure_endpoint.monitor = {"green": GOOD}

    result = manage(run_script, "metrics", "--deployment_name", "green")

    assert result.code == 0, result.err
    assert (
        "green                    60 requests, 4xx 0.0%, 5xx 0.0%  p50 20.0 ms  p95 45.0 ms  p99 80.0 ms" in result.out
    )
    assert "blue" not in result.out


def rollout_args(*extra: str) -> list[str]:
    return ["rollout", "--deployment_name", "green", "--steps", "10", "50", "100", "--bake_seconds", "1", *extra]


def test_a_rollout_of_a_good_deployment_reaches_100(azure_endpoint, run_script):
    azure_endpoint.monitor = {"green": GOOD}

    result = manage(run_script, *rollout_args("--output", "json"))

    assert result.code == 0, result.err
    lives = [put["properties"]["traffic"] for put in endpoint_puts(azure_endpoint)]
    assert lives == [{"blue": 90, "green": 10}, {"blue": 50, "green": 50}, {"green": 100}]
    assert all(sum(live.values()) == 100 for live in lives)
    shown = json.loads(result.out)
    assert [step["verdict"] for step in shown["steps"]] == ["ok", "ok", "ok"]
    assert shown["steps"][0]["requests"] == 60 and shown["steps"][0]["p95_ms"] == 45.0
    assert "step 3/3: green 100%: 60 requests, 0 errors" in result.err  # steps are printed as they happen
    # the split before the rollout is recorded once, with the first step
    tags = [put["tags"].get("toolkit.rollback.1", "") for put in endpoint_puts(azure_endpoint)]
    assert all(tag.endswith("|rollout green 10 50 100|blue=100|-") for tag in tags)
    assert "toolkit.rollback.2" not in endpoint_puts(azure_endpoint)[-1]["tags"]

    result = manage(run_script, "rollback")

    assert result.code == 0, result.err
    assert endpoint_puts(azure_endpoint)[-1]["properties"]["traffic"] == {"blue": 100}


def test_a_rollout_of_a_failing_deployment_is_rolled_back_at_its_first_step(azure_endpoint, run_script):
    azure_endpoint.monitor = {"green": BROKEN}

    result = manage(run_script, *rollout_args())

    assert result.code == 9
    assert "rolled back at step 1/3 (green=10%): error percentage 100.0% (30 of 30)" in result.err
    assert "above --max_error_percent 1" in result.err
    puts = endpoint_puts(azure_endpoint)
    assert [put["properties"]["traffic"] for put in puts] == [{"blue": 90, "green": 10}, {"blue": 100}]
    assert "toolkit.rollback.1" not in puts[-1]["tags"]  # the rollout's own entry goes with it
    assert "step 1/3: green 10%: 30 requests, 30 errors (100.0%: 4xx 30, 5xx 0), p95 9.0 ms -> FAILED" in result.out


def test_a_rollout_waits_for_late_metrics_instead_of_judging_no_data(azure_endpoint, run_script):
    azure_endpoint.monitor = {"green": GOOD}
    azure_endpoint.monitor_empty_reads = 2  # Azure Monitor has nothing for the window yet

    result = manage(run_script, *rollout_args())

    assert result.code == 0, result.err
    assert "Azure Monitor so far: no requests; reading again" in result.err
    reads = azure_endpoint.sent("GET", f"{ENDPOINT_PATH}/providers/Microsoft.Insights/metrics")
    assert len([r for r in reads if r.query["metricnames"] == ["RequestsPerMinute"]]) >= 3 * 2 + 2


def test_the_shadow_gate_waits_for_the_bakes_collected_rows_to_arrive(azure_endpoint, run_script, monkeypatch):
    """Azure's collector writes with a delay: before, the gate read the blobs right after its bake and judged what
    was there (nothing yet: 'too few to judge'). Now it reads again until two reads agree, bounded and said."""
    import time

    from common.release import rollout
    from tests.azure_path.test_shadow_azure import COLLECTING, collected

    monkeypatch.setattr(rollout, "COLLECTED_POLL_SECONDS", 0.05)
    monkeypatch.setattr(rollout, "COLLECTED_WAIT_SECONDS", 20.0)  # a bound the test never reaches when it passes
    azure_endpoint.monitor = {"green": GOOD}
    for name in ("blue", "green"):
        azure_endpoint.deployments[("diabetes-classify", name)]["properties"]["dataCollector"] = COLLECTING

    bake_ended: list[float] = []

    def collector_writes_late(listing: int) -> None:
        if listing == 1:  # the gate's first read comes right after the bake
            bake_ended.append(time.time())
        if listing == 5:  # the first reads (two deployments, both collections) found nothing: it arrives now
            ids = [f"request-{index}" for index in range(30)]
            rows = [{"label": "not-diabetic", "diabetic_probability": 0.2}] * 30
            for name in ("blue", "green"):
                made = collected("model_outputs", ids, rows, bake_ended[0] - 0.5, row_ids=True)
                azure_endpoint.add_collected("diabetes-classify", name, "model_outputs", made)

    azure_endpoint.before_blob_list.append(collector_writes_late)

    result = manage(
        run_script,
        "rollout",
        "--deployment_name",
        "green",
        "--steps",
        "100",
        "--bake_seconds",
        "1",
        "--max_disagreement_percent",
        "0",
        "--min_requests",
        "10",
    )

    assert result.code == 0, result.err
    said = result.out + result.err
    assert "waiting up to 20 s for the bake's collected rows" in said
    assert "shadow bake: 30 rows compared with blue, disagreement 0.0% -> ok" in said


def test_a_rollout_with_too_few_requests_is_rolled_back(azure_endpoint, run_script):
    azure_endpoint.monitor = {"green": {"2xx": 5.0, "p50": 1.0, "p95": 2.0, "p99": 3.0}}

    result = manage(run_script, *rollout_args())

    assert result.code == 9
    assert "5 requests, fewer than --min_requests 20" in result.err
    assert endpoint_puts(azure_endpoint)[-1]["properties"]["traffic"] == {"blue": 100}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--probe_requests", "400"], "--probe_requests is for the local target"),
        (["--max_error_percent", "101"], "invalid --max_error_percent 101"),
        (["--max_p95_ms", "0"], "invalid --max_p95_ms 0"),
        (["--min_requests", "0"], "invalid --min_requests 0"),
        (["--bake_seconds", "0"], "invalid --bake_seconds 0"),
    ],
)
def test_bad_rollout_flags_are_refused_before_any_call(azure_endpoint, run_script, extra, message):
    result = manage(run_script, *rollout_args(*extra))

    assert result.code == 2
    assert message in result.err
    assert azure_endpoint.requests == []


def test_a_rollout_whose_first_step_is_impossible_is_refused_before_any_write(azure_endpoint, run_script):
    azure_endpoint.endpoints["diabetes-classify"]["properties"]["traffic"] = {}

    result = manage(run_script, *rollout_args())

    assert result.code == 2
    assert "cannot give 'green' 10% of the traffic" in result.err
    assert azure_endpoint.writes() == []


def test_a_rollout_that_fails_for_any_other_reason_restores_the_split_and_says_so(
    azure_endpoint, run_script, monkeypatch
):
    """A failure mid-rollout that is not a crossed limit (here Azure Monitor's read at step 2) used to leave green at
    10%: the split from before the rollout is restored on every way a rollout ends, its exit code kept."""
    azure_endpoint.monitor = {"green": GOOD}
    real = metrics.AzureMonitorMetrics.settled
    reads = []

    def failing_second_read(self, *args, **kwargs):
        reads.append(args)
        if len(reads) == 2:
            raise RuntimeError("the metrics service went away")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(metrics.AzureMonitorMetrics, "settled", failing_second_read)

    result = manage(run_script, *rollout_args())

    assert result.code == 1
    lives = [put["properties"]["traffic"] for put in endpoint_puts(azure_endpoint)]
    assert lives == [{"blue": 90, "green": 10}, {"blue": 50, "green": 50}, {"blue": 100}]
    assert "rollout of green stopped: RuntimeError: the metrics service went away; the split from before the " \
           "rollout is restored (live blue=100%; mirror none)" in result.err  # fmt: skip
    assert "toolkit.rollback.1" not in endpoint_puts(azure_endpoint)[-1]["tags"]  # its own history entry goes too
