"""The scoring script of an MLflow model deployed without code (Azure's no-code deployment), on the local target.

Azure runs such a model with a scoring script of its own (how-to-deploy-mlflow-models-online-endpoints: "Azure
Machine Learning provides ... a scoring script for inferencing"); this one takes the requests that page documents
and answers as it documents: the predictions as JSON (a data frame as records). The model is loaded with
mlflow.pyfunc, so its signature is enforced by MLflow itself. It runs inside the deployment's environment (the
model's own conda file), never in the toolkit's.
"""

import io
import json
import os

import mlflow.pyfunc
import numpy
import pandas
from mlflow.pyfunc.scoring_server import _get_jsonable_obj

MODEL_FOLDER_VARIABLE = "MLFLOW_MODEL_FOLDER"  # as Azure sets it: the MLflow model's folder in AZUREML_MODEL_DIR
FORMATS = (
    'give {"input_data": {"columns": [...], "index": [...], "data": [[...]]}} (a data frame, pandas split), '
    '{"input_data": [[...]]} (a tensor) or {"input_data": {"NAME": [...]}} (named tensors), with "params" optional'
)

model = None


def init():
    global model
    folder = os.path.join(os.environ["AZUREML_MODEL_DIR"], os.environ.get(MODEL_FOLDER_VARIABLE, ""))
    model = mlflow.pyfunc.load_model(folder)


def model_input(input_data):
    """The request's input_data as MLflow takes it: a data frame, an array, or a dict of arrays."""
    if isinstance(input_data, list):
        return numpy.asarray(input_data)
    if isinstance(input_data, dict) and {"columns", "index", "data"} <= set(input_data):
        return pandas.read_json(io.StringIO(json.dumps(input_data)), orient="split", dtype=False)
    if isinstance(input_data, dict):
        return {name: numpy.asarray(value) for name, value in input_data.items()}
    raise ValueError(f"input_data is a {type(input_data).__name__}: {FORMATS}")


def with_signature_types(data):
    """Whole numbers sent for a signature's float columns, as floats: Azure's script reads a request through
    inference-schema samples built from the signature, which cast it to the signature's types; MLflow itself refuses
    int64 for a double column ("Can not safely convert int64 to float64")."""
    schema = model.metadata.get_input_schema()
    if schema is None or schema.is_tensor_spec():
        return data
    types = dict(zip(schema.input_names(), schema.pandas_types(), strict=True))
    if isinstance(data, numpy.ndarray):
        floating = all(numpy.issubdtype(dtype, numpy.floating) for dtype in types.values())
        return data.astype("float64") if floating and numpy.issubdtype(data.dtype, numpy.integer) else data
    if isinstance(data, pandas.DataFrame):
        for column, dtype in types.items():
            if (
                column in data
                and pandas.api.types.is_integer_dtype(data[column])
                and numpy.issubdtype(dtype, numpy.floating)
            ):
                data[column] = data[column].astype(dtype)
    return data


def run(raw_data):
    request = json.loads(raw_data)
    if not isinstance(request, dict) or "input_data" not in request:
        raise ValueError(f"the request has no input_data: {FORMATS}")
    params = request.get("params")
    data = with_signature_types(model_input(request["input_data"]))
    result = model.predict(data, params=params) if params else model.predict(data)
    return _get_jsonable_obj(result, pandas_orient="records")
