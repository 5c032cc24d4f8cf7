"""Training the diabetes classifier: data, fit, save. Deterministic and quick (seconds on 2 cores)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import UsageError
from common.monitoring import drift

if TYPE_CHECKING:  # numpy and pandas are imported when data is handled: --help stays fast
    import pandas as pd

# Must match FEATURES and LABELS in 09-deploy-model/score.py (a test checks they agree).
FEATURES = (
    "Pregnancies",
    "PlasmaGlucose",
    "DiastolicBloodPressure",
    "TricepsThickness",
    "SerumInsulin",
    "BMI",
    "DiabetesPedigree",
    "Age",
)
LABELS = ("not-diabetic", "diabetic")
TARGET = "Diabetic"
MODEL_FILE = "model.pkl"
METADATA_FILE = "metadata.json"
SEED = 42


@dataclass(frozen=True)
class TrainingResult:
    model_dir: Path
    rows: int
    holdout_accuracy: float
    source: str


def synthetic_dataset(rows: int = 5000, seed: int = SEED) -> pd.DataFrame:
    """Patients with the value ranges of the Azure ML tutorials' diabetes.csv; the label follows a noisy risk score."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "Pregnancies": np.clip(rng.poisson(3.2, rows), 0, 14),
            "PlasmaGlucose": np.clip(rng.normal(108, 32, rows), 44, 192).round(),
            "DiastolicBloodPressure": np.clip(rng.normal(71, 17, rows), 24, 117).round(),
            "TricepsThickness": np.clip(rng.normal(29, 14.5, rows), 7, 93).round(),
            "SerumInsulin": np.clip(rng.lognormal(4.6, 0.8, rows), 14, 799).round(),
            "BMI": np.clip(rng.normal(31.5, 9.8, rows), 18.2, 56.0),
            "DiabetesPedigree": np.clip(rng.lognormal(-1.2, 0.7, rows), 0.078, 2.3),
            "Age": np.clip(21 + rng.exponential(9, rows), 21, 77).round(),
        }
    )
    risk = (
        0.35 * (frame["Pregnancies"] - 3.2)
        + 0.03 * (frame["PlasmaGlucose"] - 108)
        + 0.05 * (frame["BMI"] - 31.5)
        + 0.004 * (frame["SerumInsulin"] - 100)
        + 1.2 * (frame["DiabetesPedigree"] - 0.4)
        + 0.07 * (frame["Age"] - 30)
        - 0.7
    )
    frame[TARGET] = (risk + rng.normal(0, 0.8, rows) > 0).astype(int)
    return frame


def load_dataset(csv_path: Path) -> pd.DataFrame:
    """The tutorials' diabetes.csv (PatientID and the 8 features and Diabetic); other columns are ignored."""
    import pandas as pd

    try:
        frame = pd.read_csv(csv_path)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read --data {str(csv_path)!r}: {error}") from None
    missing = [column for column in (*FEATURES, TARGET) if column not in frame.columns]
    if missing:
        raise UsageError(f"--data {str(csv_path)!r} lacks columns {missing}; it needs {[*FEATURES, TARGET]}")
    return check_dataset(frame[[*FEATURES, TARGET]], f"--data {str(csv_path)!r}")


MIN_ROWS = 20  # a 30% holdout, stratified, needs a few rows of each class on both sides


def check_dataset(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """The 8 features and Diabetic as numbers, every value present, both classes there: else one line saying
    which column, which row (counted from 1 after the header) and what is wrong."""
    import pandas as pd

    for column in (*FEATURES, TARGET):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() & frame[column].notna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise UsageError(f"{what}: column {column}, row {row + 1}: {frame[column].iloc[row]!r} is not a number")
        if numbers.isna().any():
            row = int(numbers.isna().to_numpy().argmax())
            raise UsageError(f"{what}: column {column}, row {row + 1} is empty")
        frame = frame.assign(**{column: numbers})
    if not frame[TARGET].isin([0, 1]).all():
        others = sorted(set(frame[TARGET]) - {0, 1})[:3]
        raise UsageError(f"{what}: {TARGET} must be 0 or 1, found {others}")
    if len(frame) < MIN_ROWS:
        raise UsageError(f"{what} has {len(frame)} rows; training needs at least {MIN_ROWS}")
    counts = frame[TARGET].value_counts()
    if len(counts) < 2 or counts.min() < 2:
        found = ", ".join(f"{TARGET}={int(label)}: {count} rows" for label, count in counts.items())
        raise UsageError(
            f"{what} needs at least 2 rows of each class ({TARGET}=0 and 1) to train a classifier; it has {found}"
        )
    return frame


def openmp_threads() -> int | None:
    """The OpenMP threads training may use: 1, unless OMP_NUM_THREADS says otherwise (None: as it says).

    HistGradientBoostingClassifier spins one OpenMP thread per core; with anything else running (the local
    deployments' servers, the test suite) the threads wait on each other: 5,000 rows took 8-45 s of wall time
    (8-14 s of CPU) on 2 busy cores against 6.5-8 s (1.8 s of CPU) with one thread, and on a quiet machine one
    thread is as fast (benchmarks/training.py measures both).
    """
    return None if os.environ.get("OMP_NUM_THREADS") else 1


def train(frame: pd.DataFrame, model_dir: Path, source: str) -> TrainingResult:
    """Fit, score on a 30% holdout, save model.pkl and metadata.json into model_dir."""
    import joblib
    import sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    features, labels = frame[list(FEATURES)].astype(float), frame[TARGET].astype(int)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.3, random_state=SEED, stratify=labels
    )
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=SEED)
    with threadpool_limits(limits=openmp_threads(), user_api="openmp"):
        model.fit(x_train, y_train)
        accuracy = float(model.score(x_test, y_test))
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / MODEL_FILE)
    metadata = {
        "features": list(FEATURES),
        "labels": list(LABELS),
        "sklearn_version": sklearn.__version__,
        "trained_on": source,
        "rows": len(frame),
        "holdout_accuracy": round(accuracy, 4),
        # what production requests are compared against (common/monitoring/drift.py): the rows the model was fit on
        "training_distribution": drift.training_distribution(
            {name: x_train[name].tolist() for name in FEATURES}, y_train.tolist(), LABELS
        ),
    }
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return TrainingResult(model_dir, len(frame), accuracy, source)
