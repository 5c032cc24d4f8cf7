"""score.py's data collection, beside it in the code folder (Azure uploads the folder whole and the inference server
puts it on the path).

When the deployment collects model_inputs or model_outputs (the platform configures azureml-ai-monitoring through
AZUREML_MDC_CONFIG_PATH or AZUREML_MDC_ENABLED) and the package is installed, start() gives a Collection: its
predict() scores a frame, then collects the frame and the labels with the probability of "diabetic" under the
request id the server was given (x-request-id) as correlation id, once the answer is sent. Otherwise start() gives
None and score.py predicts alone. A collection that fails is logged at most once a minute (the package's worker logs
each payload it fails to send on its own) and the request answered all the same.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

COLLECTION_VARIABLES = ("AZUREML_MDC_CONFIG_PATH", "AZUREML_MDC_ENABLED")  # what azureml-ai-monitoring reads
COLLECTION_NAMES = ("model_inputs", "model_outputs")
# Each collected row carries its own id (the request id and the row's index), as the data collection guide advises:
# Azure's collector batches requests sent close together into one record under one correlationid
# (how-to-collect-production-data, "Data collector batching"), so only a column keeps rows and requests apart.
ROW_ID = "correlationid"
OUTPUT_COLUMNS = pd.Index(["label", "diabetic_probability", ROW_ID])
COLLECTION_ERROR_LOG_SECONDS = 60.0


class RequestContext(NamedTuple):
    """What collecting needs of the request being served: flask's, where the inference server keeps the request."""

    correlation: Any  # azureml-ai-monitoring's BasicCorrelationContext
    active: Any  # flask.has_request_context
    g: Any  # flask.g: the server sets g.request_id from x-request-id
    after_this_request: Any  # flask.after_this_request


class CollectionErrors:
    """A collection's errors logged at most once a minute, with how many there were: one per request would flood
    the log of a busy deployment."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.count, self.logged_at = 0, -math.inf

    def __call__(self, error: BaseException) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.logged_at >= COLLECTION_ERROR_LOG_SECONDS:
            self.logger.warning(
                "Data collection failed (%d so far; requests are answered all the same): %s", self.count, error
            )
            self.logged_at = now


class _OnError:
    """A Collector's on_error: errors while it is made say the collection is off; after, they are logged."""

    def __init__(self, errors: CollectionErrors) -> None:
        self.errors = errors
        self.at_start: list[BaseException] = []
        self.started = False

    def __call__(self, error: BaseException) -> None:
        if self.started:
            self.errors(error)
        else:
            self.at_start.append(error)


def collectors(errors: CollectionErrors) -> dict[str, Any]:
    """A Collector for each collection the platform turned on; none when data collection is off or
    azureml-ai-monitoring is not installed."""
    logger = errors.logger
    if not any(os.environ.get(name) for name in COLLECTION_VARIABLES):
        return {}
    try:
        from azureml.ai.monitoring import Collector
    except ImportError:
        logger.warning("Data collection is configured but azureml-ai-monitoring is not installed: nothing is collected")
        return {}
    found = {}
    for name in COLLECTION_NAMES:
        handler = _OnError(errors)
        try:
            collector = Collector(name=name, on_error=handler)
        except Exception as error:  # the package must never stop the deployment from starting
            handler(error)
        if handler.at_start:  # the package reports a collection that is not enabled as an error at construction
            logger.info("Data collection: %s off (%s)", name, handler.at_start[0])
            continue
        handler.started = True
        found[name] = collector
    if found:
        logger.info("Data collection: collecting %s", ", ".join(found))
    return found


def start(model: Any, labels: np.ndarray, logger: logging.Logger) -> Collection | None:
    """The deployment's collection, or None when it collects nothing."""
    errors = CollectionErrors(logger)
    found = collectors(errors)
    return Collection(model, labels, found, errors) if found else None


class Collection:
    """Scoring with collection on. What each collected request needs is worked out once: the label of each of the
    model's classes, predict_proba's column of "diabetic", and flask's request context (where the server keeps the
    request id)."""

    def __init__(self, model: Any, labels: np.ndarray, found: dict[str, Any], errors: CollectionErrors) -> None:
        self.model, self.labels, self.collectors, self.errors = model, labels, found, errors
        classes = list(getattr(model, "classes_", []))
        # the label of each of the model's classes, in predict_proba's column order
        self.class_labels = labels[np.asarray(classes, dtype=np.intp)] if classes else labels
        self.positive_column = classes.index(1) if 1 in classes else None
        self.request_context: RequestContext | None
        try:
            from azureml.ai.monitoring.context import BasicCorrelationContext
            from flask import after_this_request, g, has_request_context
        except ImportError:
            self.request_context = None
        else:
            self.request_context = RequestContext(BasicCorrelationContext, has_request_context, g, after_this_request)

    def predict(self, frame: pd.DataFrame) -> list[str]:
        """The labels (and probabilities when outputs are collected), then the inputs and outputs collected under
        one correlation id. In a request, collecting waits until the answer is sent (the server's worker does it
        before it takes the next request), so the caller does not wait for it."""
        request_id = self._request_id()
        outputs = self.collectors.get("model_outputs")
        if outputs is None or not hasattr(self.model, "predict_proba"):
            labels = self.labels[self.model.predict(frame).astype(np.intp)]
            diabetic = None
        else:
            probabilities = self.model.predict_proba(frame)
            # the class of highest probability, as scikit-learn's classifiers predict (first class on a tie)
            labels = self.class_labels[probabilities.argmax(axis=1)]
            column = self.positive_column
            diabetic = probabilities[:, column] if column is not None else np.zeros(len(frame))

        def collect() -> None:
            context = self.request_context.correlation(id=request_id) if self.request_context and request_id else None
            ids = row_ids(request_id, len(frame))
            inputs = self.collectors.get("model_inputs")
            if inputs is not None:
                context = self._collect(inputs, frame.assign(**{ROW_ID: ids}), context)
            if outputs is not None and diabetic is not None:
                table = np.empty((len(labels), 3), dtype=object)  # one block: a third of what a frame from a dict costs
                table[:, 0], table[:, 1], table[:, 2] = labels, diabetic, ids
                self._collect(outputs, pd.DataFrame(table, columns=OUTPUT_COLUMNS, copy=False), context)

        if not self._after_answer(collect):
            collect()
        return labels.tolist()

    def _request_id(self) -> str:
        """The request's id (x-request-id, the id the server puts on its answer), the collection's correlation id;
        "" outside a request (the collector then makes one up)."""
        if self.request_context is None or not self.request_context.active():
            return ""
        return str(getattr(self.request_context.g, "request_id", "") or "")

    def _after_answer(self, job: Any) -> bool:
        """Run `job` once the answer is sent (Werkzeug calls a response's on-close functions after the server wrote
        it); False outside a request."""
        if self.request_context is None or not self.request_context.active():
            return False

        def guarded() -> None:
            try:
                job()
            except Exception as error:  # nothing of a collection may reach the server
                self.errors(error)

        def on_close(response: Any) -> Any:
            response.call_on_close(guarded)
            return response

        self.request_context.after_this_request(on_close)
        return True

    def _collect(self, collector: Any, frame: pd.DataFrame, context: Any) -> Any:
        try:
            return collector.collect(frame, context)
        except Exception as error:  # a collection must never fail the request
            self.errors(error)
            return context


def row_ids(request_id: str, count: int) -> list[str]:
    """Each row's id: the request's id (a new one outside a request) and the row's index, REQUEST-INDEX."""
    base = request_id or uuid.uuid4().hex
    return [f"{base}-{index}" for index in range(count)]
