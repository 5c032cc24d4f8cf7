"""Online endpoints: create, read, delete, keys and tokens, and the scoring URI (which answers as score.py would)."""

from __future__ import annotations

import copy
import functools
import json
import logging
import uuid
from typing import Any

from tests.fake_azure.wire import (
    ARM,
    LOCATION,
    OPERATIONS_PREFIX,
    WORKSPACE_ID,
    Reply,
    SeenRequest,
    _error,
    _ok,
    _tag_refusal,
    tracked_resource,
)


class EndpointRoutes:
    """Routes of FakeAzureML (tests/fake_azure/__init__.py), on its state."""

    # ---- endpoints ----------------------------------------------------------------------------------------

    def _endpoint_resource(self, name: str, body: dict[str, Any], state: str = "Succeeded") -> dict[str, Any]:
        properties = dict(body.get("properties", {}))
        properties.update(
            scoringUri=f"https://{name}.{LOCATION}.inference.ml.azure.com/score",
            swaggerUri=f"https://{name}.{LOCATION}.inference.ml.azure.com/swagger.json",
            provisioningState=state,
        )
        properties.setdefault("publicNetworkAccess", "Enabled")
        # as recorded: Azure fills in the endpoint's own id (the SDK reads this dict whenever systemData is there)
        properties["properties"] = {
            **(properties.get("properties") or {}),
            "azureml.onlineendpointid": f"{WORKSPACE_ID}/onlineEndpoints/{name}".lower(),
        }
        properties["traffic"] = {k: v for k, v in (properties.get("traffic") or {}).items() if v}
        resource = tracked_resource(f"onlineEndpoints/{name}", "onlineEndpoints", body, properties)
        return {**resource, "identity": {"type": "SystemAssigned", "principalId": "p-1", "tenantId": "t-1"}}

    def _get_endpoint(self, _request: SeenRequest, name: str) -> Reply:
        if name not in self.endpoints:
            return _error(404, "UserError", f"Endpoint {name} not found.")
        answer = _ok(self.endpoints[name])
        self.endpoint_gets += 1
        other_writer = self.after_endpoint_get.pop(self.endpoint_gets, None)
        if other_writer is not None:
            other_writer()
        return answer

    def _put_endpoint(self, request: SeenRequest, name: str) -> Reply:
        refused = _tag_refusal(request.body.get("tags") or {})
        if refused:
            return refused
        traffic = request.body.get("properties", {}).get("traffic") or {}
        mirror = request.body.get("properties", {}).get("mirrorTraffic") or {}
        missing = [d for d in traffic if (name, d) not in self.deployments]
        if missing:
            return _error(400, "BadArgument", f"Traffic rule refers to deployments that do not exist: {missing}")
        both = sorted(d for d in traffic if traffic[d] and mirror.get(d))
        if both:
            message = f"A deployment can receive only live traffic or mirrored traffic, not both: {both}"
            return _error(400, "BadArgument", message)
        state = "Updating" if name in self.endpoints else "Creating"
        self.endpoints[name] = self._endpoint_resource(name, request.body, state)
        answer = copy.deepcopy(self.endpoints[name])
        if self.after_endpoint_put is not None:
            self.after_endpoint_put(name)
        if state == "Creating":  # as recorded: no scoring URI until the endpoint exists
            answer["properties"].update(scoringUri=None, swaggerUri=None)
        return self._accepted(answer, "Succeeded", kind="oe")

    def _delete_endpoint(self, _request: SeenRequest, name: str) -> Reply:
        self.endpoints.pop(name, None)
        for key in [k for k in self.deployments if k[0] == name]:
            del self.deployments[key]
        return self._accepted(None, "Succeeded", kind="oe", status=202)

    def endpoint_keys(self, name: str) -> dict[str, str]:
        return self.keys.setdefault(name, {"primaryKey": "primary-key-0", "secondaryKey": "secondary-key-0"})

    def _list_keys(self, _request: SeenRequest, name: str) -> Reply:
        return _ok(dict(self.endpoint_keys(name)))

    def _regenerate_keys(self, request: SeenRequest, name: str) -> Reply:
        """POST regenerateKeys {"keyType": "Primary"|"Secondary", "keyValue": ...}: Azure answers 202 with a Location
        to poll; the key is new (the service generates it) unless `regenerate_keeps_key`."""
        if name not in self.endpoints:
            return _error(404, "UserError", f"Endpoint {name} not found.")
        field_name = {"Primary": "primaryKey", "Secondary": "secondaryKey"}[request.body["keyType"]]
        keys = self.endpoint_keys(name)
        if not self.regenerate_keeps_key:
            keys[field_name] = f"{field_name.removesuffix('Key')}-key-{int(keys[field_name].rsplit('-', 1)[1]) + 1}"
        location = f"{ARM}{OPERATIONS_PREFIX}/locations/{LOCATION}/mfeOperationResults/oe:{uuid.uuid4()}"
        return 202, {"Location": location, "Retry-After": "1"}, ""

    def _operation_result(self, _request: SeenRequest, _location: str, _operation: str) -> Reply:
        return 200, {}, ""

    def _token(self, _request: SeenRequest, _name: str) -> Reply:
        return _ok(
            {
                "accessToken": "aml-token-0",
                "expiryTimeUtc": 1893456000,
                "refreshAfterTimeUtc": 1893450000,
                "tokenType": "Bearer",
            }
        )

    def _served_by(self, request: SeenRequest, endpoint: str) -> str | None:
        """The deployment a data-plane request reaches (the header's, else the first with traffic), or None when
        the key or token is refused."""
        accepted = [f"Bearer {key}" for key in self.endpoint_keys(endpoint).values()] + ["Bearer aml-token-0"]
        if request.headers.get("Authorization") not in accepted:
            return None
        return request.headers.get("azureml-model-deployment") or next(
            iter(self.endpoints[endpoint]["properties"]["traffic"]), "none"
        )

    def _swagger(self, request: SeenRequest, endpoint: str) -> Reply:
        """The endpoint's swaggerUri: the inference server's GET /swagger.json (azureml-inference-server-http
        server/routes.py: version 2 unless the version parameter says; 404 {"message"} for a version it has no
        document of; the document as json.dumps writes it), score.py's documents from openapi_contract.py."""
        served_by = self._served_by(request, endpoint)
        if served_by is None:
            return _error(401, "Unauthorized", "invalid key or token")
        asked = request.query.get("version", ["2"])[0]
        version = {"2.0": "2", "3.0": "3"}.get(asked, asked)  # the server's aliases
        headers = {"Content-Type": "application/json", "azureml-model-deployment": served_by}
        if version not in ("2", "3", "3.1"):
            message = f"Swagger version [{version}] is not valid. Supported versions: [2, 3, 3.1]."
            return 404, headers, json.dumps({"message": message})
        served = self.swagger.get(served_by) or openapi_contract().document(
            score_py().FEATURES, score_py().LABELS, self.model_metadata, version
        )
        return 200, headers, json.dumps(served)

    def _score(self, request: SeenRequest, endpoint: str) -> Reply:
        """The scoring URI: checks the key as a managed endpoint would and answers like score.py."""
        served_by = self._served_by(request, endpoint)
        if served_by is None:
            return _error(401, "Unauthorized", "invalid key or token")
        headers = {"Content-Type": "application/json", "azureml-model-deployment": served_by}
        try:
            score_py().parse_request(json.dumps(request.body))
        except score_py().BadRequest:  # score.py answers 400; Azure turns a model's error into 424
            headers |= {"ms-azureml-model-error-statuscode": "400", "ms-azureml-model-error-reason": "model_error"}
            return 424, headers, refusal_of_score_py(json.dumps(request.body))
        return 200, headers, '["diabetic"]'


def refusal_of_score_py(body: str) -> str:
    """The body score.py's run() answers a request it refuses, without its log line (the scoring URI's log is not
    the test's output)."""
    logger = logging.getLogger("score")
    logger.disabled = True
    try:
        return score_py().run(body).get_data(as_text=True)
    finally:
        logger.disabled = False


@functools.cache
def score_py() -> Any:
    """09-deploy-model/score.py, so the fake scoring URI refuses exactly what the real one does."""
    from tests.conftest import load_score_module

    return load_score_module()


@functools.cache
def openapi_contract() -> Any:
    """09-deploy-model/openapi_contract.py, which writes the documents score.py's server serves."""
    from tests.conftest import load_code_module

    return load_code_module("openapi_contract.py", "openapi_contract_of_the_fake")
