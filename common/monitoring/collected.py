"""Where `compare` and `drift` read what deployments collected, on either target (the records of
common/monitoring/capture.py).

Local: the endpoint's folder (common/local/capture_files.py), the front door's live/shadow answer pairs among them
(common/local/shadow_pairs.py), read from the owner's private local home: nothing serves them on the scoring port.
Azure: the workspaceblobstore datastore, where azure-ai-ml points the data collector whatever the workspace's default
datastore is (DEFAULT_MDC_PATH, azureml://datastores/workspaceblobstore/paths/modelDataCollector), read the way
azure-ai-ml reads and writes its own blobs (artifact utilities: the datastore's account, container and credential,
then azure-storage-blob's container client), listing each folder of the window under modelDataCollector/ in the
layout of the deployment's rolling rate (common/monitoring/capture.py: folders). Nothing is written on either target.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.azure.surface import Client, on_azure, on_local
from common.errors import CliError
from common.monitoring import capture

if TYPE_CHECKING:
    from common.target import Target

PAIRS_WRITTEN_SECONDS = 0.5  # the front door writes a pair within a flush (0.1 s) of its second answer


class LocalCollected:
    def __init__(self, client: Client, endpoint: Any, target: Target) -> None:
        self.client, self.endpoint, self.target = client, endpoint, target
        self.skipped: capture.Skipped[str] = capture.Skipped()  # what the reads left out, by reason

    def where(self, deployment: str) -> str:
        return str(on_local(self.client).store.capture_dir(self.endpoint.name, deployment))

    def records(self, deployment: str, collection: str, since: float, until: float) -> list[dict[str, Any]]:
        from common.local import capture_files

        folder = Path(self.where(deployment))
        return list(capture_files.read(folder, collection, since, until, self.skipped))

    def pairs(self, shadow: str, since: float, until: float) -> list[dict[str, Any]]:
        """The front door's pairs of mirrored requests whose shadow was `shadow`, as it wrote them (those answered
        up to `until` are in their file PAIRS_WRITTEN_SECONDS later)."""
        import time

        from common.local import capture_files

        wait = until + PAIRS_WRITTEN_SECONDS - time.time()
        if wait > 0:
            time.sleep(min(wait, PAIRS_WRITTEN_SECONDS))
        return list(capture_files.read_pairs(Path(self.where(shadow)), since, until, self.skipped))


COLLECTOR_DATASTORE = "workspaceblobstore"  # azure-ai-ml 1.35.2, constants/_deployment.py: DEFAULT_MDC_PATH


class AzureCollected:
    def __init__(self, client: Client, endpoint: Any) -> None:
        self.client, self.endpoint = client, endpoint
        self._container: Any = None
        self._rolling_rates: dict[str, Any] = {}
        self.skipped: capture.Skipped[str] = capture.Skipped()

    def where(self, deployment: str) -> str:
        return capture.azure_location(self.endpoint.name, deployment)

    def container(self) -> Any:
        """The collector's datastore's blob container, with the credential azure-ai-ml would use for it."""
        if self._container is None:
            from azure.ai.ml._artifacts._artifact_utilities import get_datastore_info
            from azure.ai.ml._artifacts._blob_storage_helper import BlobStorageClient
            from azure.ai.ml._utils._storage_utils import get_storage_client

            info = get_datastore_info(on_azure(self.client).datastores, COLLECTOR_DATASTORE)
            storage = get_storage_client(**info)
            if not isinstance(storage, BlobStorageClient):  # a workspace's default datastore is a blob container
                raise CliError(f"datastore {COLLECTOR_DATASTORE} is not a blob container: no collected data to read")
            self._container = storage.container_client
        return self._container

    def records(self, deployment: str, collection: str, since: float, until: float) -> list[dict[str, Any]]:
        from azure.core.exceptions import HttpResponseError

        found: list[dict[str, Any]] = []
        folder = f"{capture.AZURE_PREFIX}/{self.endpoint.name}/{deployment}/{collection}"
        try:
            container = self.container()
            for moment in capture.folders(since, until, self.rolling_rate(deployment)):
                for blob in container.list_blobs(name_starts_with=f"{folder}/{moment}/"):
                    if not str(blob.name).endswith(".jsonl"):
                        continue
                    text = container.download_blob(blob.name).readall()
                    found += capture.records(text.splitlines(), since, until, self.skipped)
        except HttpResponseError as error:
            reason = getattr(error, "reason", None) or str(error).splitlines()[0]
            raise CliError(
                f"cannot read the collected data of {deployment!r} in the {COLLECTOR_DATASTORE} datastore ({reason})"
            ) from None
        return found

    def rolling_rate(self, deployment: str) -> Any:
        """The deployment's data collector's rolling rate (None: Azure's default), read once per deployment."""
        if deployment not in self._rolling_rates:
            from common.control.lookups import get_or_none

            found = get_or_none(self.client.online_deployments.get, name=deployment, endpoint_name=self.endpoint.name)
            collector = getattr(found, "data_collector", None)
            self._rolling_rates[deployment] = getattr(collector, "rolling_rate", None)
        return self._rolling_rates[deployment]


def skipped_line(skipped: capture.Skipped[str]) -> str | None:
    """What the reads left out, said once: 'Skipped: 3 line not a record, 1 file not a regular file'."""
    if not skipped:
        return None
    return "Skipped: " + ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))


def source(client: Client, endpoint: Any, *, target: Target) -> LocalCollected | AzureCollected:
    return LocalCollected(client, endpoint, target) if target.local else AzureCollected(client, endpoint)
