"""The workspace, its datastore and blob store (code and model uploads), and the model, environment and code assets."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from tests.fake_azure.wire import (
    BLOB,
    CONTAINER,
    LOCATION,
    STORAGE_ACCOUNT,
    STORAGE_ACCOUNT_ID,
    WORKSPACE,
    WORKSPACE_GUID,
    WORKSPACE_ID,
    Reply,
    SeenRequest,
    _asset,
    _error,
    _ok,
)


class AssetRoutes:
    """Routes of FakeAzureML (tests/fake_azure/__init__.py), on its state."""

    # ---- workspace and datastore --------------------------------------------------------------------------

    def _workspace(self, _request: SeenRequest) -> Reply:
        return _ok(
            {
                "id": WORKSPACE_ID,
                "name": WORKSPACE,
                "type": "Microsoft.MachineLearningServices/workspaces",
                "location": LOCATION,
                "kind": "Default",
                "identity": {"type": "SystemAssigned", "principalId": str(uuid.uuid4()), "tenantId": str(uuid.uuid4())},
                "properties": {
                    "friendlyName": WORKSPACE,
                    "storageAccount": STORAGE_ACCOUNT_ID,
                    "discoveryUrl": f"https://{LOCATION}.api.azureml.ms/discovery",
                    "mlFlowTrackingUri": f"azureml://{LOCATION}.api.azureml.ms/mlflow/v1.0{WORKSPACE_ID}",
                    "provisioningState": "Succeeded",
                    "publicNetworkAccess": "Enabled",
                },
            }
        )

    def _datastore_body(self, name: str) -> dict[str, Any]:
        return {
            "id": f"{WORKSPACE_ID}/datastores/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "datastoreType": "AzureBlob",
                "accountName": STORAGE_ACCOUNT,
                "containerName": CONTAINER if name == "workspaceblobstore" else f"{name}-container",
                "endpoint": "core.windows.net",
                "protocol": "https",
                "credentials": {"credentialsType": "AccountKey"},
                "isDefault": name == self.default_datastore,
            },
        }

    def _datastores(self, request: SeenRequest) -> Reply:
        names = dict.fromkeys(["workspaceblobstore", self.default_datastore])
        found = [self._datastore_body(name) for name in names]
        if request.query.get("isDefault") == ["true"]:  # the list filter azure-ai-ml's get_default sends
            found = [body for body in found if body["properties"]["isDefault"]]
        return _ok({"value": found})

    def _datastore(self, _request: SeenRequest, name: str) -> Reply:
        return _ok(self._datastore_body(name))

    def _datastore_secrets(self, _request: SeenRequest, _name: str) -> Reply:
        return _ok({"secretsType": "AccountKey", "key": "ZmFrZS1zdG9yYWdlLWtleQ=="})

    # ---- blobs (the code and model uploads) ---------------------------------------------------------------

    def _get_blob(self, request: SeenRequest, path: str) -> Reply:
        if path not in self.blobs:
            return 404, {"x-ms-error-code": "BlobNotFound"}, ""
        content = self.blobs[path]
        headers = {
            "Content-Length": str(len(content)),
            "x-ms-meta-upload_status": "completed",
            "x-ms-blob-type": "BlockBlob",
            "Content-Type": "application/octet-stream",
        }
        if request.method == "HEAD":
            return 200, headers, ""
        if "x-ms-range" in {name.lower() for name in request.headers}:  # azure-storage-blob's download: the whole blob
            headers["Content-Range"] = f"bytes 0-{max(len(content) - 1, 0)}/{len(content)}"
            return 206, headers, content.decode("utf-8")
        return 200, headers, content.decode("utf-8")

    def _put_blob(self, request: SeenRequest, path: str) -> Reply:
        headers = {"ETag": '"0x1"', "Last-Modified": "Mon, 01 Jan 2030 00:00:00 GMT"}
        if "comp" in request.query:  # set metadata (the SDK marks an upload complete)
            return 200, headers, ""
        self.blobs[path] = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        return 201, headers, ""

    def _list_blobs(self, request: SeenRequest, container: str) -> Reply:
        self.blob_lists += 1
        for hook in self.before_blob_list:
            hook(self.blob_lists)
        prefix = container + "/" + request.query.get("prefix", [""])[0]
        names = "".join(
            f"<Blob><Name>{p.split('/', 1)[1]}</Name><Properties><Content-Length>{len(content)}</Content-Length>"
            "<BlobType>BlockBlob</BlobType></Properties></Blob>"
            for p, content in self.blobs.items()
            if p.startswith(prefix)
        )
        xml = f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs>{names}</Blobs></EnumerationResults>'
        return 200, {"Content-Type": "application/xml"}, xml

    # ---- assets -------------------------------------------------------------------------------------------

    def _asset_get(self, store: dict[tuple[str, str], dict[str, Any]]) -> Callable[..., Reply]:
        def get(_request: SeenRequest, name: str, version: str) -> Reply:
            if (name, version) not in store:
                return _error(404, "UserError", f"Could not find asset with ID: {name}:{version}")
            return _ok(store[(name, version)])

        return get

    def _asset_list(self, store: dict[tuple[str, str], dict[str, Any]]) -> Callable[..., Reply]:
        def versions(_request: SeenRequest, name: str) -> Reply:
            found = [body for (n, _v), body in store.items() if n == name]
            found.sort(key=lambda body: int(body["name"]) if body["name"].isdigit() else 0, reverse=True)
            return _ok({"value": found[:1]})

        return versions

    def _codes_by_hash(self, request: SeenRequest, _name: str) -> Reply:
        wanted = request.query.get("hash", [None])[0]
        found = [body for body in self.codes.values() if body["properties"].get("contentHash") == wanted]
        return _ok({"value": found})

    def _start_pending_upload(self, _request: SeenRequest, name: str, version: str) -> Reply:
        """A container of its own for the upload, as a recorded session answers (azure-sdk-for-python, azure-ai-ml
        tests/recordings/code_asset/e2etests/test_code.pyTestCodetest_download_directory_code.json: blobUri is the
        account with :443 and a new container; the SDK uploads the folder into it and registers codeUri as blobUri
        plus the folder's name)."""
        container = f"{WORKSPACE_GUID[:10]}-{name}"
        blob_uri = f"{BLOB}:443/{container}"
        return _ok(
            {
                "blobReferenceForConsumption": {
                    "blobUri": blob_uri,
                    "storageAccountArmId": STORAGE_ACCOUNT_ID,
                    "credential": {
                        "credentialType": "SAS",
                        "sasUri": f"{BLOB}/{container}?sv=2021-10-04&sr=c&sp=rcwl&sig=fake",
                    },
                },
                "pendingUploadId": f"{name}-{version}",
                "pendingUploadType": "None",
            }
        )

    def _put_data(self, request: SeenRequest, name: str, version: str) -> Reply:
        """A data asset (azure-ai-ml registers one per collected collection); a version is never replaced."""
        if (name, version) in self.data:
            return _error(409, "UserError", f"Data {name}:{version} already exists and cannot be changed")
        self.data[(name, version)] = _asset("data", name, version, request.body["properties"])
        return _ok(self.data[(name, version)], status=201)

    def _asset_put(self, kind: str, store: dict[tuple[str, str], dict[str, Any]]) -> Callable[..., Reply]:
        """A model or environment version as azure-ai-ml registers one (an inline model or environment included):
        the version, with the properties sent (REST examples Workspace/ModelVersion/createOrUpdate.json and
        EnvironmentVersion/createOrUpdate.json, 2024-04-01: 201 with the properties sent, plus id, name and type). A
        registered version never changes: other properties for it are refused (409)."""

        def put(request: SeenRequest, name: str, version: str) -> Reply:
            # what was sent, without the fields sent as null (ARM answers leave out what is not set)
            properties = {key: value for key, value in request.body["properties"].items() if value is not None}
            if kind == "models":  # the example's answer always has flavors (azure-ai-ml reads them unguarded)
                properties.setdefault("flavors", {})
            if (name, version) in store:
                if store[(name, version)]["properties"] != _asset(kind, name, version, properties)["properties"]:
                    return _error(409, "UserError", f"{kind} {name}:{version} already exists and cannot be changed")
                return _ok(store[(name, version)])
            store[(name, version)] = _asset(kind, name, version, properties)
            return _ok(store[(name, version)], status=201)

        return put

    def _put_code(self, request: SeenRequest, name: str, version: str) -> Reply:
        self.codes[(name, version)] = _asset("codes", name, version, request.body["properties"])
        return _ok(self.codes[(name, version)], status=201)
