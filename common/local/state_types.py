"""The local target's state files as types (common/local/state.py has their layout): what commands ask for,
endpoint.json (EndpointSpec) and deployment.json (DeploymentSpec), and what the front door reports back,
frontdoor.json (FrontDoorRecord) and status.json (DeploymentStatus).

Their string keys live here alone, at the load/dump boundary; everything else reads fields. Each file carries a
`schema_version`: a file without one was written before the field existed and reads as version 1 (the same keys);
one written by a newer toolkit is refused, since rewriting it could drop what that version relies on. In a spec, a
field of the wrong type (a file edited by hand, half-written by another tool) makes the file unreadable state, named
with its fields, never a crash in the front door. A report is only ever a hint (the front door rewrites it every few
seconds): one that is missing or unreadable reads as "nothing known yet", a field of the wrong type as unset.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from common.local import logfiles
from common.local.state import LocalStateError, LocalStore, append_line, read_json, read_json_or_none, write_json

SCHEMA_VERSION = 1
VERSION_KEY = "schema_version"


@dataclass
class EndpointSpec:
    """endpoint.json: the endpoint as the user set it. `revision` counts every change (a write based on an older
    one is refused); `last_change` is the record of the latest change, kept until activity.jsonl has it."""

    name: str
    port: int
    auth_mode: str
    revision: int = 0
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    public_network_access: str | None = None
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    deleting: bool = False
    last_change: dict[str, Any] | None = None

    @classmethod
    def load(cls, path: Path, remedy: str = "") -> EndpointSpec:
        return _from_json(EndpointSpec, read_json(path, remedy), path, remedy)

    def dump(self, path: Path) -> None:
        write_json(path, to_json(self))

    def share(self, deployment: str) -> int:
        """The deployment's live or mirrored percentage (0: none)."""
        return self.traffic.get(deployment, 0) or self.mirror_traffic.get(deployment, 0)


@dataclass
class DeploymentSpec:
    """deployment.json: what the user asked a deployment to run, with the snapshots taken of its code and model and
    a `generation` that counts its writes (the front door rolls each new one out). A deployment being deleted
    (`deleting`) needs nothing else to be read."""

    name: str
    endpoint_name: str
    model_dir: str = ""
    code_dir: str = ""
    scoring_script: str = ""
    generation: int = 1
    model: str = ""
    environment: str = ""
    python: str | None = None  # the built environment's interpreter (None: the toolkit's own, as before they existed)
    local_environment: dict[str, Any] | None = None
    code: str = ""
    platform_variables: dict[str, str] = field(default_factory=dict)
    instance_type: str | None = None
    instance_count: int = 1
    request_settings: dict[str, Any] = field(default_factory=dict)
    liveness_probe: dict[str, Any] = field(default_factory=dict)
    readiness_probe: dict[str, Any] = field(default_factory=dict)
    environment_variables: dict[str, Any] = field(default_factory=dict)  # as the YAML file gave them
    app_insights_enabled: bool = False
    egress_public_network_access: str | None = None
    data_collection: dict[str, Any] | None = None
    collector_config: str | None = None
    capture_dir: str | None = None
    snapshots: list[str] = field(default_factory=list)
    created_at: float | None = None
    deleting: bool = False

    @classmethod
    def load(cls, path: Path, remedy: str = "") -> DeploymentSpec:
        return _from_json(DeploymentSpec, read_json(path, remedy), path, remedy)

    @classmethod
    def read(cls, path: Path) -> DeploymentSpec | None:
        """None when there is none, or it is unreadable (being replaced, damaged): for the readers that only look."""
        try:
            return cls.load(path)
        except (FileNotFoundError, LocalStateError):
            return None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeploymentSpec | None:
        """A spec kept inside another file (status.json's serving generation); None when it is not a whole one."""
        try:
            return _from_json(DeploymentSpec, data, Path("status.json"), "")
        except LocalStateError:
            return None

    def dump(self, path: Path) -> None:
        write_json(path, to_json(self))


@dataclass
class FrontDoorRecord:
    """frontdoor.json, written by the running front door alone: its process and port, the endpoint revision it
    routes by, and why it cannot read the state when it cannot."""

    pid: int
    port: int
    applied_revision: int = -1
    state_error: str | None = None

    @classmethod
    def read(cls, path: Path) -> FrontDoorRecord | None:
        """None when there is none, or it is unreadable (being rewritten, damaged)."""
        data = read_json_or_none(path)
        try:
            return _from_json(FrontDoorRecord, data, path, "", strict=False) if data is not None else None
        except LocalStateError:  # no pid or port: not a record to act on
            return None

    def dump(self, path: Path) -> None:
        write_json(path, to_json(self))


@dataclass
class DeploymentStatus:
    """status.json, written by the front door alone: which generation serves, which failed and why, its server's
    process and health. `serving` is the serving generation's whole spec (DeploymentSpec.from_json), so a front
    door that starts again serves it even after deployment.json has moved on."""

    name: str = ""
    generation: int | None = None
    serving_generation: int | None = None
    serving: dict[str, Any] | None = None
    failed_generation: int | None = None
    failure_log: str = ""
    state: str = ""
    health: str = ""
    reason: str = ""
    pid: int | None = None
    starting_pid: int | None = None
    retiring_pid: int | None = None
    socket: str | None = None
    restarts: int = 0
    front_door_pid: int | None = None
    updated: float = 0.0

    @classmethod
    def load(cls, path: Path) -> DeploymentStatus:
        """FileNotFoundError when there is none yet, LocalStateError when it is not JSON."""
        return _from_json(DeploymentStatus, read_json(path), path, "", strict=False)

    @classmethod
    def read(cls, path: Path) -> DeploymentStatus:
        """An empty status (nothing known yet) when there is none, or it is unreadable."""
        try:
            return cls.load(path)
        except (FileNotFoundError, LocalStateError):
            return DeploymentStatus()

    @property
    def server_pids(self) -> list[int]:
        """Every server process the status names: the serving one, a starting one, one being stopped."""
        return [pid for pid in (self.pid, self.starting_pid, self.retiring_pid) if pid]

    def dump(self, path: Path) -> None:
        write_json(path, to_json(self))


Spec = TypeVar("Spec", EndpointSpec, DeploymentSpec, FrontDoorRecord, DeploymentStatus)

# what each file must hold beyond the fields without a default (a deployment: what its server is started from), and
# what it is called in a message
REQUIRED: dict[type, tuple[str, ...]] = {
    DeploymentSpec: ("model_dir", "code_dir", "scoring_script", "generation"),
}
WHAT = {EndpointSpec: "an endpoint", DeploymentSpec: "a deployment", FrontDoorRecord: "a front door's record"}


def to_json(spec: EndpointSpec | DeploymentSpec | FrontDoorRecord | DeploymentStatus) -> dict[str, Any]:
    return {VERSION_KEY: SCHEMA_VERSION, **dataclasses.asdict(spec)}


def _from_json(kind: type[Spec], data: dict[str, Any], path: Path, remedy: str, strict: bool = True) -> Spec:
    version = data.get(VERSION_KEY, 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise LocalStateError(
            f"local state file {str(path)!r} was written by a newer version of this toolkit (schema {version}; this "
            f"one reads up to {SCHEMA_VERSION}): use that version, or remove the file{remedy}"
        )
    # one being deleted is read for its names alone: whatever else it holds is dropped, not checked
    deleting = data.get("deleting") is True
    fields = dataclasses.fields(kind)
    unset = dataclasses.MISSING
    names: list[str] = [f.name for f in fields if f.default is unset and f.default_factory is unset]
    required = names if deleting else [*names, *REQUIRED.get(kind, ())]
    hints = typing.get_type_hints(kind)
    values: dict[str, Any] = {}
    wrong: list[str] = []
    for name in (f.name for f in fields):
        if name in data and _fits(data[name], hints[name]):
            values[name] = data[name]
        elif name in required or (name in data and strict and not deleting):
            wrong.append(name)
    if wrong:
        raise LocalStateError(
            f"local state file {str(path)!r} is unreadable (no valid {', '.join(dict.fromkeys(wrong))}: it is not "
            f"{WHAT[kind]} this toolkit wrote){remedy}"
        )
    return kind(**values)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value is of the annotated type (the few shapes the specs use)."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is types.UnionType:
        return any(_fits(value, argument) for argument in arguments)
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is dict:
        key_type, value_type = arguments
        return isinstance(value, dict) and all(_fits(k, key_type) and _fits(v, value_type) for k, v in value.items())
    if origin is list:
        return isinstance(value, list) and all(_fits(item, arguments[0]) for item in value)
    return isinstance(value, hint)


def repair_activity(store: LocalStore, name: str) -> bool:
    """Append endpoint.json's record of its last change to activity.jsonl when a killed command left it out; the
    caller holds the endpoint's lock. Whether anything was appended."""
    try:
        change = EndpointSpec.load(store.endpoint_file(name)).last_change
    except (FileNotFoundError, LocalStateError):
        return False
    if change is None or not isinstance(change.get("revision"), int):
        return False
    activity = store.activity_file(name)  # one line per change for the endpoint's life: only its end is read
    lines = logfiles.tail(activity, 20).splitlines()
    last = max((int(json.loads(line).get("revision", 0)) for line in lines if line.strip()), default=0)
    if last >= int(change["revision"]):
        return False
    append_line(activity, {**change, "recorded_late": True})
    return True
