"""The training script: deterministic, saves model and metadata, reads the tutorials' CSV, registers the model."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pandas as pd
import pytest
import sklearn

import train_model as script
from common.errors import UsageError
from common.training import FEATURES, LABELS, TARGET, load_dataset, synthetic_dataset, train
from tests.conftest import asset


def test_synthetic_data_is_deterministic_realistic_and_has_both_labels():
    first, second = synthetic_dataset(800), synthetic_dataset(800)
    pd.testing.assert_frame_equal(first, second)
    assert list(first.columns) == [*FEATURES, TARGET]
    assert first["PlasmaGlucose"].between(44, 192).all()
    assert first["Age"].between(21, 77).all()
    assert 0.15 < first[TARGET].mean() < 0.6


def test_training_twice_gives_the_same_model(tmp_path: Path):
    frame = synthetic_dataset(1000)
    train(frame, tmp_path / "a", "x")
    train(frame, tmp_path / "b", "x")
    a, b = joblib.load(tmp_path / "a" / "model.pkl"), joblib.load(tmp_path / "b" / "model.pkl")
    probe = frame[list(FEATURES)].astype(float).head(200)
    assert (a.predict_proba(probe) == b.predict_proba(probe)).all()


@pytest.mark.parametrize(("variable", "expected"), [(None, 1), ("2", 2)])
def test_training_fits_with_one_openmp_thread_unless_omp_num_threads_says_otherwise(
    tmp_path: Path, monkeypatch, variable, expected
):
    """scikit-learn's one thread per core wait on each other on a busy machine (benchmarks/training.py)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_info, threadpool_limits

    seen: list[int] = []
    real_fit = HistGradientBoostingClassifier.fit

    def recording_fit(self, *args, **kwargs):
        seen.extend(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", recording_fit)
    if variable is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", variable)
    with threadpool_limits(limits=2, user_api="openmp"):  # OpenMP's own default here: one thread per core
        train(synthetic_dataset(rows=200), tmp_path / "model", "synthetic")

    assert seen and set(seen) == {expected}, seen


def test_model_folder_holds_model_and_metadata(tmp_path: Path):
    result = train(synthetic_dataset(1000), tmp_path / "m", "synthetic")
    metadata = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert metadata["features"] == list(FEATURES)
    assert metadata["labels"] == list(LABELS)
    assert metadata["sklearn_version"] == sklearn.__version__
    assert metadata["rows"] == 1000
    assert 0.7 < result.holdout_accuracy <= 1.0
    assert metadata["holdout_accuracy"] == round(result.holdout_accuracy, 4)


def write_tutorial_csv(path: Path, rows: int = 400) -> Path:
    frame = synthetic_dataset(rows, seed=7)
    frame.insert(0, "PatientID", range(1000000, 1000000 + rows))
    frame.to_csv(path, index=False)
    return path


def test_tutorial_csv_is_read_with_patient_id_ignored(tmp_path: Path):
    frame = load_dataset(write_tutorial_csv(tmp_path / "diabetes.csv"))
    assert list(frame.columns) == [*FEATURES, TARGET]
    assert len(frame) == 400


def test_csv_without_the_columns_is_refused(tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match=r"lacks columns \['Pregnancies'"):
        load_dataset(path)
    with pytest.raises(UsageError, match="cannot read --data"):
        load_dataset(tmp_path / "missing.csv")


def test_script_trains_from_csv(tmp_path: Path, run_script):
    csv_path = write_tutorial_csv(tmp_path / "diabetes.csv")
    result = run_script(script, ["--data", str(csv_path), "--output_dir", str(tmp_path / "out"), "--output", "json"])

    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["trained_on"] == "diabetes.csv"
    assert summary["rows"] == 400
    assert (tmp_path / "out" / "model.pkl").is_file()


def test_register_creates_the_next_version_of_diabetes_predict(azure, tmp_path: Path, run_script):
    azure.client.models.create_or_update.return_value = asset("diabetes-predict", "4")

    result = run_script(script, ["--rows", "600", "--output_dir", str(tmp_path / "m"), "--register"])

    assert result.code == 0, result.err
    (model,) = azure.client.models.create_or_update.call_args.args
    assert model.name == "diabetes-predict"
    assert model.version is None  # Azure gives it the next version
    assert model.type == "custom_model"
    assert Path(model.path) == (tmp_path / "m").resolve()
    assert "Registered azureml:diabetes-predict:4" in result.out


def test_register_without_workspace_fails_before_training(azure, tmp_path: Path, run_script, monkeypatch):
    for variable in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)

    result = run_script(script, ["--output_dir", str(tmp_path / "m"), "--register"])

    assert result.code == 2
    assert "missing workspace settings" in result.err
    assert not (tmp_path / "m").exists()


def bad_csv(tmp_path: Path, change: str) -> Path:
    frame = synthetic_dataset(rows=60)
    if change == "text":
        frame["BMI"] = frame["BMI"].astype(object)
        frame.loc[3, "BMI"] = "high"
    elif change == "empty":
        frame.loc[5, "Age"] = None
    elif change == "one-class":
        frame[TARGET] = 1
    elif change == "two-rows":
        frame = frame.head(2)
    elif change == "label-7":
        frame.loc[0, TARGET] = 7
    path = tmp_path / f"{change}.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("text", ": column BMI, row 4: 'high' is not a number"),
        ("empty", ": column Age, row 6 is empty"),
        ("one-class", " needs at least 2 rows of each class (Diabetic=0 and 1) to train a classifier; it has "
         "Diabetic=1: 60 rows"),
        ("two-rows", " has 2 rows; training needs at least 20"),
        ("label-7", ": Diabetic must be 0 or 1, found [7]"),
    ],
)  # fmt: skip
def test_a_csv_that_cannot_train_a_classifier_is_one_line(tmp_path: Path, run_script, change, message):
    path = bad_csv(tmp_path, change)

    result = run_script(script, ["--data", str(path), "--output_dir", str(tmp_path / "out")])

    assert result.code == 2
    assert result.err == f"error: --data {str(path)!r}{message}\n"
    assert not (tmp_path / "out" / "model.pkl").exists()


def test_too_few_synthetic_rows_are_refused(run_script):
    result = run_script(script, ["--rows", "1"])

    assert (result.code, result.err) == (2, "error: invalid --rows 1: training needs at least 20\n")


def test_an_output_dir_under_a_file_is_one_line_before_training(tmp_path: Path, run_script):
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    result = run_script(script, ["--rows", "50", "--output_dir", str(blocker / "model")])

    assert result.code == 2
    assert result.err == f"error: --output_dir {str(blocker / 'model')!r} cannot be written: Not a directory\n"


def test_register_tries_the_credential_before_training(azure, tmp_path: Path, run_script):
    from azure.core.exceptions import ClientAuthenticationError

    azure.client.models.get.side_effect = ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    result = run_script(script, ["--rows", "50", "--output_dir", str(tmp_path / "model"), "--register"])

    assert result.code == 5
    assert "no Azure credential found: run `az login`" in result.err
    assert not (tmp_path / "model" / "model.pkl").exists()  # nothing trained
    azure.client.models.create_or_update.assert_not_called()
