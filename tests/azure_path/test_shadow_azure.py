"""Data capture, compare and drift on the Azure path, through the fake control plane: the deployment PUT carries the
data collector as the REST spec has it, and compare and drift read the collected JSON lines from the default
datastore as azure-ai-ml reads blobs, writing nothing."""

from __future__ import annotations

import datetime
import json
import random
import time

import pytest

import create_online_deployment
import manage_online_endpoint
from common.monitoring import drift
from common.training import FEATURES, LABELS
from tests.fake_azure import WORKSPACE_ID
from tests.seeds import DEPLOYMENT_SEED, with_seed_assets

ENDPOINT = "diabetes-classify"
MODEL_ID = f"{WORKSPACE_ID}/models/diabetes-predict/versions/3"
COLLECTING = {"collections": {"model_inputs": {"dataCollectionMode": "Enabled", "samplingRate": 1.0}}}


@pytest.fixture
def workspace(fake_azure):
    return with_seed_assets(fake_azure)


def iso(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def outputs(ids: list[str], labels: list[str], moment: float) -> list[dict]:
    return [
        {
            "specversion": "1.0",
            "id": f"record-{index}",
            "type": "azureml.inference.model_outputs",
            "time": iso(moment),
            "correlationid": request_id,
            "data": [{"label": label, "diabetic_probability": 0.9 if label == "diabetic" else 0.2}],
        }
        for index, (request_id, label) in enumerate(zip(ids, labels, strict=True))
    ]


def test_the_deployment_put_carries_the_data_collector_as_the_rest_spec_has_it(workspace, run_script):
    workspace.add_endpoint(ENDPOINT)
    argv = [*DEPLOYMENT_SEED, "--data_collection", "model_inputs,model_outputs", "--sampling_rate", "0.25"]

    result = run_script(create_online_deployment, argv)

    assert result.code == 0, result.err
    (put,) = workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}/deployments/diabetes-classify-blue-dp")
    collector = put.body["properties"]["dataCollector"]
    # azure-ai-ml 1.35.2 sends the mode in lower case (the REST enum is Enabled/Disabled) and the rate per collection
    data = f"{WORKSPACE_ID}/data/{ENDPOINT}-diabetes-classify-blue-dp-{{}}/versions/1"
    assert collector["collections"] == {
        name: {"dataCollectionMode": "enabled", "samplingRate": 0.25, "dataId": data.format(name)}
        for name in ("model_inputs", "model_outputs")
    }
    # azure-ai-ml registers each collection as a data asset at modelDataCollector/ENDPOINT/DEPLOYMENT/COLLECTION
    (registered,) = workspace.sent("PUT", f"/data/{ENDPOINT}-diabetes-classify-blue-dp-model_inputs/versions/1")
    path = registered.body["properties"]["dataUri"]
    assert path.endswith(f"/paths/modelDataCollector/{ENDPOINT}/diabetes-classify-blue-dp/model_inputs")
    assert "collects model_inputs+model_outputs at 25%" in result.out


def test_an_update_without_the_flag_keeps_the_collection_and_none_turns_it_off(workspace, run_script):
    workspace.add_endpoint(ENDPOINT, {"diabetes-classify-blue-dp": 100})
    workspace.deployments[(ENDPOINT, "diabetes-classify-blue-dp")]["properties"]["dataCollector"] = COLLECTING

    kept = run_script(create_online_deployment, DEPLOYMENT_SEED)
    off = run_script(create_online_deployment, [*DEPLOYMENT_SEED, "--data_collection", "none"])

    assert kept.code == 0 and off.code == 0, kept.err + off.err
    first, second = workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}/deployments/diabetes-classify-blue-dp")
    assert first.body["properties"]["dataCollector"]["collections"]["model_inputs"]["dataCollectionMode"] == "enabled"
    assert second.body["properties"].get("dataCollector") is None


WHOLE_COLLECTOR = {  # every field of the REST DataCollector (Workspace/OnlineDeployment/createOrUpdate examples)
    "collections": {
        "model_inputs": {
            "dataCollectionMode": "Enabled",
            "samplingRate": 0.5,
            "dataId": f"{WORKSPACE_ID}/data/my-inputs/versions/2",
            "clientId": "0f1e2d3c-aaaa-bbbb-cccc-111122223333",
        }
    },
    "rollingRate": "Day",
    "requestLogging": {"captureHeaders": ["x-user-region"]},
}


def test_a_plain_re_run_keeps_the_whole_data_collector(workspace, run_script):
    """Before: only the names and the rate were rebuilt; the rolling rate, the captured headers, the custom data
    asset and the client id were dropped by a re-run that changed nothing about collection."""
    workspace.add_endpoint(ENDPOINT, {"diabetes-classify-blue-dp": 100})
    workspace.deployments[(ENDPOINT, "diabetes-classify-blue-dp")]["properties"]["dataCollector"] = WHOLE_COLLECTOR

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 0, result.err
    (put,) = workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}/deployments/diabetes-classify-blue-dp")
    sent = put.body["properties"]["dataCollector"]
    assert sent["rollingRate"] == "Day" and sent["requestLogging"] == {"captureHeaders": ["x-user-region"]}
    kept = dict(WHOLE_COLLECTOR["collections"]["model_inputs"], dataCollectionMode="enabled")  # as azure-ai-ml sends
    assert sent["collections"] == {"model_inputs": kept}


def test_a_collection_azure_answers_in_lower_case_is_kept_on(workspace, run_script):
    """azure-ai-ml 1.35.2 reads a collection as on only for exactly "Enabled" and sends "enabled" itself: an answer
    that echoes it would read as off, and a plain re-run switched collection off (no dataCollector sent)."""
    workspace.add_endpoint(ENDPOINT, {"diabetes-classify-blue-dp": 100})
    echoed = {"collections": {"model_inputs": {"dataCollectionMode": "enabled", "samplingRate": 1.0}}}
    workspace.deployments[(ENDPOINT, "diabetes-classify-blue-dp")]["properties"]["dataCollector"] = echoed

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 0, result.err
    (put,) = workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}/deployments/diabetes-classify-blue-dp")
    assert put.body["properties"]["dataCollector"]["collections"]["model_inputs"]["dataCollectionMode"] == "enabled"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--data_collection", "model_inputs,payload"], "invalid --data_collection 'payload'"),
        (["--data_collection", "model_inputs", "--sampling_rate", "1.5"], "invalid --sampling_rate 1.5"),
        (["--sampling_rate", "0.5"], "--sampling_rate needs --data_collection"),
    ],
)
def test_bad_collection_flags_are_refused_before_any_call(workspace, run_script, flags, message):
    result = run_script(create_online_deployment, [*DEPLOYMENT_SEED, *flags])

    assert result.code == 2
    assert message in result.err
    assert workspace.requests == []


def test_show_says_what_is_collected_and_where(workspace, run_script):
    workspace.add_endpoint(ENDPOINT, {"blue": 100})
    workspace.deployments[(ENDPOINT, "blue")]["properties"]["dataCollector"] = COLLECTING

    result = run_script(manage_online_endpoint, ["show", "--endpoint_name", ENDPOINT])

    assert result.code == 0, result.err
    where = f"azureml://datastores/workspaceblobstore/paths/modelDataCollector/{ENDPOINT}/blue/"
    assert f"    data collection: model_inputs -> {where}" in result.out.splitlines()


def test_show_and_drift_read_a_collection_azure_answers_in_lower_case_as_on(workspace, run_script):
    """azure-ai-ml reads only "Enabled" as on: show said nothing was collected, and drift said it collects nothing."""
    workspace.add_endpoint(ENDPOINT, {"blue": 100})
    echoed = {"collections": {"model_inputs": {"dataCollectionMode": "enabled", "samplingRate": 1.0}}}
    workspace.deployments[(ENDPOINT, "blue")]["properties"]["dataCollector"] = echoed

    shown = run_script(manage_online_endpoint, ["show", "--endpoint_name", ENDPOINT])
    drifted = run_script(manage_online_endpoint, ["drift", "--endpoint_name", ENDPOINT, "--deployment_name", "blue"])

    assert shown.code == 0, shown.err
    where = f"azureml://datastores/workspaceblobstore/paths/modelDataCollector/{ENDPOINT}/blue/"
    assert f"    data collection: model_inputs -> {where}" in shown.out.splitlines()
    assert "too few collected rows" in drifted.out + drifted.err
    assert "it collects nothing" not in drifted.out + drifted.err


def test_compare_joins_the_collected_outputs_on_the_correlation_id_and_writes_nothing(workspace, run_script):
    workspace.add_endpoint(ENDPOINT, {"blue": 100})
    workspace.add_deployment(ENDPOINT, "green")
    now = time.time() - 60
    ids = [f"request-{index}" for index in range(40)]
    rng = random.Random(7)
    blue = [rng.choice(LABELS) for _ in ids]
    green = [label if index % 4 else LABELS[1] for index, label in enumerate(blue)]  # every 4th said diabetic
    workspace.add_collected(ENDPOINT, "blue", "model_outputs", outputs(ids, blue, now))
    workspace.add_collected(ENDPOINT, "green", "model_outputs", outputs(ids[:30], green[:30], now))
    expected_agreeing = sum(a == b for a, b in zip(blue[:30], green[:30], strict=True))

    result = run_script(
        manage_online_endpoint,
        ["compare", "--endpoint_name", ENDPOINT, "--deployment_name", "green", "--output", "json"],
    )

    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["live"] == "blue" and found["compared_rows"] == 30
    assert found["agreeing_rows"] == expected_agreeing
    assert found["agreement_percent"] == round(100 * expected_agreeing / 30, 3)
    disagreeing = [(a, b) for a, b in zip(blue[:30], green[:30], strict=True) if a != b]
    assert found["table"]["not-diabetic"]["diabetic"] == len(disagreeing)
    assert found["mean_abs_probability_diff"] == round(0.7 * len(disagreeing) / 30, 6)
    assert workspace.writes() == []
    listed = [r for r in workspace.requests if r.method == "GET" and r.query.get("comp") == ["list"]]
    assert any("modelDataCollector/diabetes-classify/green/model_outputs/" in r.query["prefix"][0] for r in listed)


@pytest.mark.parametrize("rolling_rate", ["Minute", "Hour", "Day", "Month", "Year"])
def test_compare_reads_workspaceblobstore_in_every_rolling_rates_layout(workspace, run_script, rolling_rate):
    """Before: the workspace's default datastore was read (the collector writes to workspaceblobstore whatever the
    default is), and only hour folders were listed: Day, Month and Year gave nothing, silently."""
    workspace.default_datastore = "userdefault"
    workspace.add_endpoint(ENDPOINT, {"blue": 100})
    workspace.add_deployment(ENDPOINT, "green")
    for name in ("blue", "green"):
        collector = {**COLLECTING, "rollingRate": rolling_rate}
        workspace.deployments[(ENDPOINT, name)]["properties"]["dataCollector"] = collector
    ids = [f"request-{index}" for index in range(20)]
    labels = [LABELS[index % 2] for index in range(20)]
    now = time.time() - 60
    workspace.add_collected(ENDPOINT, "blue", "model_outputs", outputs(ids, labels, now), rolling_rate)
    workspace.add_collected(ENDPOINT, "green", "model_outputs", outputs(ids, labels, now), rolling_rate)

    result = run_script(
        manage_online_endpoint,
        ["compare", "--endpoint_name", ENDPOINT, "--deployment_name", "green", "--output", "json"],
    )

    assert result.code == 0, result.err
    assert json.loads(result.out)["compared_rows"] == 20
    read = [r.path for r in workspace.requests if r.method == "GET" and r.query.get("comp") == ["list"]]
    assert read and not any("userdefault-container" in path for path in read)


def collected(kind: str, ids: list[str], rows: list[dict], moment: float, row_ids: bool) -> list[dict]:
    """One record per request as score.py collects it (with its per-row id column when `row_ids`)."""
    return [
        {
            "specversion": "1.0",
            "id": f"{kind}-{index}",
            "type": f"azureml.inference.{kind}",
            "time": iso(moment),
            "correlationid": request_id,
            "data": [{**row, "correlationid": f"{request_id}-0"} if row_ids else row],
        }
        for index, (request_id, row) in enumerate(zip(ids, rows, strict=True))
    ]


def shadow_case(workspace, *, row_ids: bool, same_ids: bool, inputs: bool, batch: bool = True) -> list[str]:
    """blue and green collected 24 requests of one row each, batched differently by each deployment's collector
    (blue 3 by 3, green 2 by 2; one by one unless `batch`); green says diabetic on every 4th request. Blue's labels,
    request by request."""
    workspace.add_endpoint(ENDPOINT, {"blue": 100})
    workspace.add_deployment(ENDPOINT, "green")
    now = time.time() - 60
    rng = random.Random(11)
    features = [{name: rng.randint(0, 200) for name in FEATURES} for _ in range(24)]  # distinct input rows
    blue_labels = [rng.choice(LABELS) for _ in features]
    green_labels = [label if index % 4 else LABELS[1] for index, label in enumerate(blue_labels)]
    blue_ids = [f"request-{index}" for index in range(24)]
    green_ids = blue_ids if same_ids else [f"mirrored-{index}" for index in range(24)]
    sizes = (3, 2) if batch else (1, 1)
    for name, ids, labels, size in (
        ("blue", blue_ids, blue_labels, sizes[0]),
        ("green", green_ids, green_labels, sizes[1]),
    ):
        rows = [{"label": label, "diabetic_probability": 0.9 if label == LABELS[1] else 0.2} for label in labels]
        made = collected("model_outputs", ids, rows, now, row_ids)
        workspace.add_collected(ENDPOINT, name, "model_outputs", workspace.batched(made, [size] * 24))
        if inputs:
            made = collected("model_inputs", ids, features, now, row_ids)
            workspace.add_collected(ENDPOINT, name, "model_inputs", workspace.batched(made, [size] * 24))
    return blue_labels


def compare_json(run_script) -> dict:
    result = run_script(
        manage_online_endpoint,
        ["compare", "--endpoint_name", ENDPOINT, "--deployment_name", "green", "--output", "json"],
    )
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_compare_pairs_batched_records_row_by_row_on_the_row_id_column(workspace, run_script):
    """Before: records were joined on their correlationid; batched differently on each side, the joined records
    held other requests' rows (or were skipped), and the agreement was computed from mispaired rows."""
    blue = shadow_case(workspace, row_ids=True, same_ids=True, inputs=False)

    found = compare_json(run_script)

    assert found["compared_rows"] == 24
    assert found["agreeing_rows"] == sum(1 for index, label in enumerate(blue) if index % 4 or label == LABELS[1])
    assert "rows paired on their correlationid column: 24; by the content of their input row: 0" in found["notes"][1]


@pytest.mark.parametrize(
    ("row_ids", "batch"),
    [(True, True), (False, False)],
    ids=["mirrored copies under other request ids", "older records without the column, one request each"],
)
def test_rows_whose_ids_do_not_pair_are_paired_by_their_input_rows(workspace, run_script, row_ids, batch):
    """Each row's input row is found by its own id (the column, or a one-row record's id); rows with the same
    inputs are paired."""
    blue = shadow_case(workspace, row_ids=row_ids, same_ids=False, inputs=True, batch=batch)

    found = compare_json(run_script)

    assert found["compared_rows"] == 24
    assert found["agreeing_rows"] == sum(1 for index, label in enumerate(blue) if index % 4 or label == LABELS[1])
    assert "on their correlationid column: 0; by the content of their input row: 24; not paired: 0" in found["notes"][1]


def test_batched_records_without_ids_or_inputs_are_never_paired_by_position(workspace, run_script):
    shadow_case(workspace, row_ids=False, same_ids=True, inputs=False)

    found = compare_json(run_script)

    assert found["compared_rows"] == 0  # batched rows have no id of their own: nothing is guessed
    assert "not paired: 24 of blue, 24 of green" in found["notes"][1]
    assert any("label distributions are compared instead" in note for note in found["notes"])


def test_compare_says_when_the_records_cannot_be_joined_and_compares_label_shares(workspace, run_script):
    workspace.add_endpoint(ENDPOINT, {"blue": 100})
    workspace.add_deployment(ENDPOINT, "green")
    now = time.time() - 60
    workspace.add_collected(ENDPOINT, "blue", "model_outputs", outputs(["a", "b"], ["diabetic", "not-diabetic"], now))
    workspace.add_collected(ENDPOINT, "green", "model_outputs", outputs(["c", "d"], ["diabetic", "diabetic"], now))

    result = run_script(manage_online_endpoint, ["compare", "--endpoint_name", ENDPOINT, "--deployment_name", "green"])

    assert result.code == 0, result.err
    assert "cannot be joined, so label distributions are compared instead" in result.out
    assert "diabetic 50.0% vs 100.0%" in result.out


def test_drift_reads_the_collected_inputs_and_the_models_training_distribution(workspace, run_script, tmp_path):
    rng = random.Random(3)
    training = {name: [rng.gauss(100, 10) for _ in range(2000)] for name in FEATURES}
    recorded = drift.training_distribution(training, [0, 1] * 1000, LABELS)
    metadata = json.dumps({"training_distribution": recorded}).encode()
    workspace.add_model("diabetes-predict", "3", {"metadata.json": metadata, "model.pkl": b"not read"})
    workspace.add_endpoint(ENDPOINT, {})
    workspace.add_deployment(ENDPOINT, "blue", model=MODEL_ID, dataCollector=COLLECTING)
    now = time.time() - 120
    records = [
        {
            "id": f"r{index}",
            "type": "azureml.inference.model_inputs",
            "time": iso(now),
            "correlationid": f"c{index}",
            "data": [
                {
                    **{name: rng.gauss(130 if name == "BMI" else 100, 10) for name in FEATURES},
                    "correlationid": f"c{index}-0",  # score.py's row id: not a feature
                }
            ],
        }
        for index in range(300)
    ]
    # as Azure's collector writes them: requests sent close together batched into shared records
    workspace.add_collected(ENDPOINT, "blue", "model_inputs", workspace.batched(records, [1, 4, 7, 2] * 75))

    result = run_script(
        manage_online_endpoint, ["drift", "--endpoint_name", ENDPOINT, "--deployment_name", "blue", "--output", "json"]
    )

    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["rows"] == 300
    assert found["features"]["BMI"]["verdict"] == "drift"
    assert {name for name, f in found["features"].items() if f["verdict"] == "drift"} == {"BMI"}
    assert workspace.writes() == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["compare", "--deployment_name", "green", "--against", "green"],
            "--against 'green' is the deployment compared",
        ),
        (["compare", "--deployment_name", "green", "--minutes", "0"], "invalid --minutes 0: use 1 to 10080"),
        (["drift", "--deployment_name", "blue", "--plot", "drift.txt"], "invalid --plot 'drift.txt': name a .png file"),
        (
            ["rollout", "--deployment_name", "green", "--steps", "100", "--max_disagreement_percent", "150"],
            "invalid --max_disagreement_percent 150: use 0 to 100",
        ),
    ],
)
def test_bad_compare_drift_and_gate_flags_are_one_line_before_any_call(workspace, run_script, argv, message):
    result = run_script(manage_online_endpoint, [argv[0], "--endpoint_name", ENDPOINT, *argv[1:]])

    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert workspace.requests == []
