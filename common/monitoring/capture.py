"""Data capture: what a deployment collects of the requests it scores (Azure's data collector, on both targets), and
reading the collected records back for `compare` and `drift`.

Azure: the deployment carries a DataCollector (azure-ai-ml) whose collections score.py fills through
azureml-ai-monitoring's Collector; Azure's collector writes JSON lines to the workspace's default blob datastore
under modelDataCollector/ENDPOINT/DEPLOYMENT/COLLECTION/yyyy/MM/dd/HH/ (how-to-collect-production-data). Local:
the same score.py and package, the records written as the same JSON lines in the endpoint's folder, under
data/DEPLOYMENT/COLLECTION/yyyy/MM/dd/HH/ (common/local/collector_sink.py).

A record is one collect() call, one request: {"id", "type": "azureml.inference.COLLECTION", "time",
"correlationid", "data": [one object per row]}. model_inputs rows are the 8 features as scored; model_outputs rows
are {"label", "diabetic_probability"}.
"""

from __future__ import annotations

import collections
import copy
import datetime
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from common.errors import UsageError

COLLECTIONS = ("model_inputs", "model_outputs")
AZURE_PREFIX = "modelDataCollector"  # the blob folder Azure's data collector writes under
LOCAL_FOLDER = "data"  # the endpoint folder's subfolder the local collector writes under
OUTPUT_LABEL = "label"
OUTPUT_PROBABILITY = "diabetic_probability"
# Each row's own id, a column of both collections (09-deploy-model/score.py: REQUEST-INDEX): Azure batches requests
# sent close together into one record under one correlationid (how-to-collect-production-data, "Data collector
# batching"); the guide's remedy is the id as a column of the logged DataFrame.
ROW_ID = "correlationid"


@dataclass(frozen=True)
class Collection:
    """--data_collection and --sampling_rate: the collections on (empty: off) and the share of requests kept."""

    names: tuple[str, ...]
    sampling_rate: float = 1.0

    @property
    def enabled(self) -> bool:
        return bool(self.names)

    def describe(self) -> str:
        if not self.names:
            return "off"
        return f"{', '.join(self.names)} ({self.sampling_rate:.0%} of requests)"

    def as_dict(self) -> dict[str, Any]:
        return {"collections": list(self.names), "sampling_rate": self.sampling_rate}


OFF = Collection(())


def parse(data_collection: str | None, sampling_rate: float | None) -> Collection | None:
    """The collection asked for (None: flags not given, keep the deployment's). `--data_collection none` turns it
    off; names are Azure's collection names, comma-separated."""
    if sampling_rate is not None and not 0.0 <= sampling_rate <= 1.0:
        raise UsageError(f"invalid --sampling_rate {sampling_rate:g}: use 0.0 to 1.0 (the share of requests kept)")
    if data_collection is None:
        if sampling_rate is not None:
            raise UsageError(f"--sampling_rate needs --data_collection ({','.join(COLLECTIONS)})")
        return None
    if data_collection.strip().lower() == "none":
        if sampling_rate is not None:
            raise UsageError("--sampling_rate with --data_collection none: nothing is collected to sample")
        return OFF
    names = [name.strip() for name in data_collection.split(",")]
    for name in names:
        if name not in COLLECTIONS:
            raise UsageError(
                f"invalid --data_collection {name!r}: use {', '.join(COLLECTIONS)} (comma-separated), or none"
            )
    if len(set(names)) != len(names):
        raise UsageError(f"invalid --data_collection {data_collection!r}: a collection is named twice")
    ordered = tuple(name for name in COLLECTIONS if name in names)
    return Collection(ordered, 1.0 if sampling_rate is None else sampling_rate)


def of_deployment(deployment: Any) -> Collection:
    """What a deployment entity collects (its DataCollector; OFF without one)."""
    collector = getattr(deployment, "data_collector", None)
    if collector is None or not getattr(collector, "collections", None):
        return OFF
    names, rate = [], None
    for name, collection in collector.collections.items():
        if str(getattr(collection, "enabled", "")).lower() == "true":
            names.append(name)
        rate = getattr(collection, "sampling_rate", None) if rate is None else rate
    rate = getattr(collector, "sampling_rate", None) if rate is None else rate
    ordered = tuple(n for n in COLLECTIONS if n in names) + tuple(sorted(n for n in names if n not in COLLECTIONS))
    return Collection(ordered, 1.0 if rate is None else float(rate)) if ordered else OFF


def data_collector(collection: Collection, existing: Any = None) -> Any:
    """The azure-ai-ml DataCollector entity for `collection` (None when off), as the collect-production-data guide
    builds it: one DeploymentCollection per name, the sampling rate on the collector. What `existing` (the
    deployment's current DataCollector) sets beyond names and rate is kept: its rolling rate, its request logging
    (captured headers), and each kept collection's data asset and client id, so a re-run changes only what it
    names."""
    if not collection.enabled:
        return None
    from azure.ai.ml.entities import DataCollector, DeploymentCollection

    # azure-ai-ml logs "This is an experimental class" for each of them, on every command that reads a deployment:
    # said once in the docs instead (docs/data-capture.md)
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)

    before = dict(getattr(existing, "collections", None) or {})
    collections = {
        name: DeploymentCollection(
            enabled="true",
            data=_data_asset(getattr(before.get(name), "data", None)),
            client_id=getattr(before.get(name), "client_id", None),
        )
        for name in collection.names
    }
    return DataCollector(
        collections=collections,
        sampling_rate=collection.sampling_rate,
        rolling_rate=getattr(existing, "rolling_rate", None),
        request_logging=copy.deepcopy(getattr(existing, "request_logging", None)),
    )


def _data_asset(data: Any) -> Any:
    """A collection's data asset as azure-ai-ml registers it on create (a DataAsset with a name and version): read
    back, Azure answers its ARM id (dataId), which the SDK's registration cannot take (it reads .name)."""
    if not isinstance(data, str):
        return data
    found = re.search(r"/data/([^/]+)/versions/([^/]+)$", data)
    if not found:
        return None  # not an asset id: the SDK registers its default asset for the collection
    from azure.ai.ml.entities import DataAsset

    return DataAsset(name=found.group(1), version=found.group(2))  # type: ignore[arg-type]


def read_modes(deployment: Any, modes: dict[str, str]) -> Any:
    """`deployment` with each collection's `enabled` read from the mode Azure answered, in any case: azure-ai-ml
    1.35.2 reads a collection as on only for exactly "Enabled" (DeploymentCollection._from_rest_object) while it
    sends "enabled" itself, so an echo of what it sent would read as off, and a re-run would switch collection off."""
    collector = getattr(deployment, "data_collector", None)
    for name, collection in (getattr(collector, "collections", None) or {}).items():
        if name in modes:
            collection.enabled = "true" if str(modes[name]).lower() == "enabled" else "false"
    return deployment


def azure_location(endpoint: str, deployment: str) -> str:
    """Where Azure's data collector writes a deployment's collections: workspaceblobstore, whatever the workspace's
    default datastore is (azure-ai-ml's DEFAULT_MDC_PATH)."""
    return f"azureml://datastores/workspaceblobstore/paths/{AZURE_PREFIX}/{endpoint}/{deployment}/"


# The data collector's folder per rolling rate (the REST DataCollector.rollingRate: "If the rolling rate is hour, all
# data will be collected in the blob path /yyyy/MM/dd/HH/. If it's day, ... /yyyy/MM/dd/"); Azure's default is Hour.
# A Minute layout is read by its hour folder (its minute folders are under it): one listing per hour, not per minute.
ROLLING_FOLDERS = {"year": "%Y", "month": "%Y/%m", "day": "%Y/%m/%d", "hour": "%Y/%m/%d/%H", "minute": "%Y/%m/%d/%H"}
DEFAULT_ROLLING_RATE = "Hour"


def partition(moment: float) -> str:
    """The hour folder a record written at `moment` (epoch seconds) goes in: yyyy/MM/dd/HH, UTC, as Azure's."""
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime(ROLLING_FOLDERS["hour"])


def folders(since: float, until: float, rolling_rate: Any) -> list[str]:
    """The data collector's folders that hold records written from `since` to `until`, oldest first, for its
    rolling rate (any case; None: Azure's default, Hour)."""
    rate = getattr(rolling_rate, "value", rolling_rate) or DEFAULT_ROLLING_RATE  # an enum member, read back from Azure
    layout = ROLLING_FOLDERS.get(str(rate).lower(), ROLLING_FOLDERS["hour"])
    step = 3600 if "%H" in layout else 86400  # from `since`'s hour (day) on: `until`'s is among them
    moments = range(int(since // step * step), int(until) + 1, step)
    found = [datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime(layout) for moment in moments]
    return list(dict.fromkeys(found))


def hours(since: float, until: float) -> list[str]:
    """Every hour folder from `since` to `until`, oldest first (the local collector's layout: Azure's default)."""
    return folders(since, until, DEFAULT_ROLLING_RATE)


def created_at(deployment: Any) -> float | None:
    """When the deployment was created (epoch seconds): Azure's systemData.createdAt (azure-ai-ml's
    creation_context), the local target's created_at; None when it is not known."""
    created = getattr(getattr(deployment, "creation_context", None), "created_at", None)
    if isinstance(created, datetime.datetime):
        return created.timestamp()
    local = (getattr(deployment, "properties", None) or {}).get("created_at")
    try:
        return float(local) if local else None
    except (TypeError, ValueError):
        return None


def window_since(deployment: Any, since: float, include_previous: bool) -> tuple[float, str | None]:
    """The start of the window to read a deployment's collected data from: not before the deployment was created
    (a deployment deleted and created again under its name finds its predecessor's data in the same place), unless
    `include_previous`; with the note saying the window was shortened."""
    created = created_at(deployment)
    if include_previous or created is None or created <= since:
        return since, None
    moment = datetime.datetime.fromtimestamp(created).strftime("%H:%M:%S")
    return created, f"counted since {deployment.name} was created at {moment} (--include_previous for earlier rows)"


def record_time(record: dict[str, Any]) -> float | None:
    moment = record.get("time")
    if isinstance(moment, int | float):
        return float(moment)
    if isinstance(moment, str):
        try:
            return datetime.datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


Skipped = collections.Counter  # what a reader left out, by reason: "line not a record", "file not regular", ...


def records(
    lines: Iterable[bytes | str], since: float, until: float, skipped: Skipped[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The records of JSON lines written from `since` to `until`; a line that is not a record (cut short by a full
    disk or a kill, nested too deep to parse, not UTF-8) is skipped and counted in `skipped` by reason."""
    for record in _timed(lines, since, until, skipped):
        if isinstance(record.get("data"), list):
            yield record
        elif skipped is not None:
            skipped["line not a record"] += 1


def pair_records(
    lines: Iterable[bytes | str], since: float, until: float, skipped: Skipped[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The front door's mirrored answer pairs (common/local/shadow_pairs.py) written from `since` to `until`."""
    for record in _timed(lines, since, until, skipped):
        if isinstance(record.get("live"), dict) and isinstance(record.get("shadow"), dict):
            yield record
        elif skipped is not None:
            skipped["line not a pair"] += 1


def _timed(
    lines: Iterable[bytes | str], since: float, until: float, skipped: Skipped[str] | None
) -> Iterator[dict[str, Any]]:
    counted = skipped if skipped is not None else collections.Counter()
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except UnicodeDecodeError:
            counted["line not UTF-8"] += 1
            continue
        except RecursionError:
            counted["line nested too deep"] += 1
            continue
        except ValueError:
            counted["line not a record"] += 1
            continue
        moment = record_time(record) if isinstance(record, dict) else None
        if moment is None:
            counted["line not a record"] += 1
        elif math.floor(since) <= moment <= until:  # Azure stamps whole seconds: a window's first second is in it
            yield record


def rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for row in record["data"] if isinstance(row, dict)]
