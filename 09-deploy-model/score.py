"""Entry script for the diabetes classifier, run by azureml-inference-server-http (locally and in Azure).

init() loads the model with joblib from AZUREML_MODEL_DIR (the folder Azure mounts the model in; the model
file is found at any depth). run() accepts three request formats and answers a JSON list of labels:

  {"data": [[2, 180, 74, 24, 21, 23.9091702, 1.488172308, 22]]}
  {"input_data": {"columns": ["Pregnancies", ...], "data": [[...]]}}
  [{"Pregnancies": 2, "PlasmaGlucose": 180, ...}]

Bad input gets HTTP 400 with {"error": {"code": "BadRequest", "message": "..."}} naming the problem (Azure's error
shape, which azure-ai-ml's invoke and `az ml online-endpoint invoke` read), whatever the body holds: run() never
raises on a request (so never answers 500). The script imports nothing from the project, so it runs unchanged in Azure's
inference images.

Requests are checked in two passes: a vectorised one (orjson and numpy) that accepts a well-formed request at the
cost of little more than the prediction itself, and, only when it finds something wrong, the value-by-value checks
that name the problem. The second pass is the reference: both accept exactly the same requests.

Environment variables: AZUREML_MODEL_DIR (required by init()); MAX_ROWS_PER_REQUEST (optional: refuse requests with
more rows; by default the number of rows is limited only by the request size and the request timeout, as in Azure).

The contract (openapi_contract.py, beside this script): init() writes the OpenAPI documents the inference server
serves at GET /swagger.json?version=2|3|3.1 (the features, their training ranges, the request formats, the labels
and the error shape), unless the code folder brings swagger files of its own.

Data collection (Azure's data collector, how-to-collect-production-data) lives beside this script, in
data_collection.py: when the deployment collects model_inputs or model_outputs, run() collects the frame it scores
and the labels with the probability of "diabetic", under the request id the server was given (x-request-id) as
correlation id. Otherwise nothing extra is done.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import os
import reprlib
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn

CODE_FOLDER = str(Path(__file__).resolve().parent)
if CODE_FOLDER not in sys.path:  # the inference server puts it there; a script loaded by its path (a test) does not
    sys.path.append(CODE_FOLDER)
import data_collection  # noqa: E402  (beside this script: its data collection)
import openapi_contract  # noqa: E402  (beside this script: the OpenAPI documents)

try:
    import orjson
except ImportError:  # an environment without it decodes with the standard library, a few times slower
    orjson = None

try:
    from azureml_inference_server_http.api.aml_response import AMLResponse
except ImportError:  # the inference images of azureml-defaults < 1.0 ship it under its old name
    from azureml.contrib.services.aml_response import AMLResponse

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
LABEL_ARRAY = np.array(LABELS, dtype=object)
# One Index for every request's frame: pandas and scikit-learn cache what they derive from it (the names checked
# against the model's), which made a fresh frame's prediction 0.06 ms faster.
COLUMNS = pd.Index(FEATURES)
MAX_ROWS_VARIABLE = "MAX_ROWS_PER_REQUEST"
APP_ROOT_VARIABLE = "AML_APP_ROOT"  # the code folder's root: the inference server sets it (and Azure does)
BAD_REQUEST_CODE = "BadRequest"
MODEL_SUFFIXES = (".pkl", ".joblib")
FORMATS = (
    '{"data": [[8 numbers], ...]}, {"input_data": {"columns": [...], "data": [[...], ...]}} '
    "or a list of records keyed by the 8 feature names"
)

model: Any = None
max_rows: int | None = None  # from MAX_ROWS_PER_REQUEST, read by init()
collection: data_collection.Collection | None = None  # set by init() when the deployment collects data


def _logger() -> logging.Logger:
    """score.py's logger, writing INFO and up to stdout (what the deployment's logs show). The inference server
    configures only its own azmlinfsrv loggers and leaves the root logger at WARNING, so without a handler of its
    own "Loaded ..." and "Rejected request: ..." would never appear, in Azure or locally."""
    log = logging.getLogger("score")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s [%(process)d] score - %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False  # a root handler (the server's packages may add one) would print every line twice
    return log


logger = _logger()


class BadRequest(ValueError):
    """The request cannot be scored; the message is returned to the caller with HTTP 400."""


def find_model_file(model_dir: Path) -> Path:
    """The one model file (.pkl or .joblib) anywhere under model_dir."""
    found = sorted(p for p in model_dir.rglob("*") if p.is_file() and p.suffix in MODEL_SUFFIXES)
    if not found:
        raise FileNotFoundError(f"no model file ({', '.join(MODEL_SUFFIXES)}) under AZUREML_MODEL_DIR={model_dir}")
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(model_dir)) for p in found)
        raise RuntimeError(f"more than one model file under AZUREML_MODEL_DIR={model_dir}: {names}")
    return found[0]


def _max_rows() -> int | None:
    configured = os.environ.get(MAX_ROWS_VARIABLE, "").strip()
    if not configured:
        return None
    if not configured.isdigit() or int(configured) < 1:
        raise RuntimeError(f"{MAX_ROWS_VARIABLE}={configured!r} must be a whole number of rows, at least 1")
    return int(configured)


def init() -> None:
    global model, max_rows
    max_rows = _max_rows()
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set: it must name the folder that holds the model")
    path = find_model_file(Path(model_dir))
    model = joblib.load(path)
    metadata_path = path.parent / "metadata.json"
    metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
    trained_with = metadata.get("sklearn_version", "unknown")
    logger.info("Loaded %s (trained with scikit-learn %s; runtime %s)", path, trained_with, sklearn.__version__)
    if trained_with not in ("unknown", sklearn.__version__):
        logger.warning("scikit-learn differs: model %s, runtime %s", trained_with, sklearn.__version__)
    if max_rows is not None:
        logger.info("At most %d rows per request (%s)", max_rows, MAX_ROWS_VARIABLE)
    app_root = os.environ.get(APP_ROOT_VARIABLE)
    if app_root:  # under the inference server, which serves the documents from there once init() returns
        logger.info("Contract: %s", openapi_contract.write(Path(app_root), FEATURES, LABELS, metadata))
    global collection
    collection = data_collection.start(model, LABEL_ARRAY, logger)


def _short_repr() -> reprlib.Repr:
    """repr() bounded in depth and length: a value quoted in an error message can be nested or huge."""
    short = reprlib.Repr()
    short.maxlevel, short.maxstring, short.maxother, short.maxlist, short.maxdict, short.maxlong = 2, 40, 40, 4, 4, 40
    return short


_short = _short_repr()


def _number(value: Any, row: int, column: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"row {row}, {column}: {_short.repr(value)} is not a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float's range (about 1.8e308)
        raise BadRequest(f"row {row}, {column}: {_short.repr(value)} is too large") from None
    if not math.isfinite(number):
        raise BadRequest(f"row {row}, {column}: {value!r} is not a finite number")
    return number


def _rows_from_lists(data: Any, columns: list[str]) -> list[list[float]]:
    if not isinstance(data, list):
        raise BadRequest(f'"data" must be a list of rows, got {type(data).__name__}')
    rows = []
    for index, row in enumerate(data):
        if not isinstance(row, list):
            raise BadRequest(f"row {index}: must be a list of {len(FEATURES)} numbers, got {type(row).__name__}")
        if len(row) != len(columns):
            raise BadRequest(f"row {index}: has {len(row)} values, expected {len(columns)} ({', '.join(columns)})")
        rows.append([_number(value, index, column) for value, column in zip(row, columns, strict=True)])
    return rows


def _rows_from_records(records: list[Any]) -> list[list[float]]:
    rows = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRequest(f"record {index}: must be an object keyed by the feature names")
        missing = [f for f in FEATURES if f not in record]
        extra = sorted(set(record) - set(FEATURES))
        if missing or extra:
            unknown = _short.repr(extra) if extra else "nothing"
            raise BadRequest(f"record {index}: missing {missing or 'nothing'}, unknown {unknown}")
        rows.append([_number(record[f], index, f) for f in FEATURES])
    return rows


def _rows_from_input_data(input_data: Any) -> list[list[float]]:
    if not isinstance(input_data, dict) or "data" not in input_data:
        raise BadRequest('"input_data" must be an object with "data" (and optionally "columns")')
    columns = input_data.get("columns", list(FEATURES))
    if not isinstance(columns, list) or sorted(map(str, columns)) != sorted(FEATURES) or len(columns) != len(FEATURES):
        raise BadRequest(f'"input_data.columns" must name each of the {len(FEATURES)} features once: {list(FEATURES)}')
    rows = _rows_from_lists(input_data["data"], columns)
    order = [columns.index(f) for f in FEATURES]
    return [[row[i] for i in order] for row in rows]


def _payload(raw_data: Any) -> Any:
    """The decoded JSON body (the server hands run() the body as text)."""
    if isinstance(raw_data, bytes | bytearray):
        try:
            raw_data = bytes(raw_data).decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadRequest(f"the body is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not isinstance(raw_data, str):
        return raw_data
    if not raw_data.strip():
        raise BadRequest(f"the body is empty; send {FORMATS} with Content-Type: application/json")
    try:
        return json.loads(raw_data)
    except RecursionError:
        raise BadRequest("the body is nested too deeply to be a request") from None
    except ValueError as error:
        raise BadRequest(f"the body is not JSON ({error}); send {FORMATS}") from None


def _checked_rows(raw_data: Any) -> list[list[float]]:
    """Rows of the 8 features, in FEATURES order, checked value by value; BadRequest names anything wrong."""
    payload = _payload(raw_data)
    if isinstance(payload, dict):
        formats = [key for key in ("data", "input_data") if key in payload]
        unknown = sorted(str(key) for key in payload if key not in ("data", "input_data"))
        if len(formats) != 1 or unknown:
            keys = _short.repr(sorted(map(str, payload)))
            found = "both data and input_data" if len(formats) == 2 else f"keys {keys}"
            raise BadRequest(f"unrecognised request ({found}); send {FORMATS}")
        if formats == ["data"]:
            rows = _rows_from_lists(payload["data"], list(FEATURES))
        else:
            rows = _rows_from_input_data(payload["input_data"])
    elif isinstance(payload, list) and all(isinstance(item, dict) for item in payload):
        rows = _rows_from_records(payload)
    else:
        raise BadRequest(f"unrecognised request ({type(payload).__name__}); send {FORMATS}")
    if not rows:
        raise BadRequest("the request has no rows to score")
    return rows


_FEATURE_SET = frozenset(FEATURES)
_RECORD_VALUES = operator.itemgetter(*FEATURES)


def _numbers(rows: Any) -> np.ndarray | None:
    """rows as a float matrix of the 8 features when every value is a finite int or float, else None. Booleans
    are not told apart here (numpy takes True for 1): the caller rules them out from the text."""
    try:
        matrix = np.array(rows)
    except (ValueError, TypeError, OverflowError, RecursionError):  # ragged, or nested beyond numpy's dimensions
        return None
    if matrix.dtype.kind not in "iuf" or matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] != len(FEATURES):
        return None
    matrix = matrix.astype(np.float64, copy=False)
    return matrix if np.isfinite(matrix).all() else None


def _vectorised_rows(raw_data: Any) -> np.ndarray | None:
    """The rows of a well-formed request (all three formats), or None when anything may be wrong with it. The
    server hands run() the body as text; anything else goes to the checks."""
    if not isinstance(raw_data, str) or "true" in raw_data or "false" in raw_data:
        return None  # not text, or text that may hold booleans: the checks say what it holds
    try:
        payload = orjson.loads(raw_data) if orjson is not None else json.loads(raw_data)
    except (ValueError, RecursionError):
        return None
    if isinstance(payload, dict) and len(payload) == 1:
        if "data" in payload:
            return _numbers(payload["data"])
        input_data = payload.get("input_data")
        if isinstance(input_data, dict) and "data" in input_data and input_data.keys() <= {"data", "columns"}:
            columns = input_data.get("columns", list(FEATURES))
            if not isinstance(columns, list) or len(columns) != len(FEATURES) or set(columns) != _FEATURE_SET:
                return None
            matrix = _numbers(input_data["data"])
            return None if matrix is None else matrix[:, [columns.index(f) for f in FEATURES]]
        return None
    if isinstance(payload, list) and payload and all(type(r) is dict and r.keys() == _FEATURE_SET for r in payload):
        return _numbers(list(map(_RECORD_VALUES, payload)))
    return None


def parse_request(raw_data: Any) -> np.ndarray:
    """Rows of the 8 features, in FEATURES order (an n x 8 float matrix); BadRequest names anything wrong."""
    matrix = _vectorised_rows(raw_data)
    if matrix is None:
        matrix = np.array(_checked_rows(raw_data), dtype=np.float64)
    if max_rows is not None and len(matrix) > max_rows:
        raise BadRequest(f"the request has {len(matrix)} rows; at most {max_rows} per request ({MAX_ROWS_VARIABLE})")
    return matrix


def predict(rows: np.ndarray) -> list[str]:
    frame = pd.DataFrame(rows, columns=COLUMNS, copy=False)
    if collection is None:
        return LABEL_ARRAY[model.predict(frame).astype(np.intp)].tolist()
    return collection.predict(frame)


def run(raw_data: Any) -> Any:
    try:
        rows = parse_request(raw_data)
    except RecursionError:  # a value nested deeper than the checks can walk
        return _rejected(BadRequest("the request is nested too deeply"))
    except BadRequest as error:
        return _rejected(error)
    return predict(rows)


def _rejected(error: BadRequest) -> Any:
    logger.info("Rejected request: %s", error)
    return AMLResponse({"error": {"code": BAD_REQUEST_CODE, "message": str(error)}}, 400, json_str=True)
