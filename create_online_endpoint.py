"""Create or update an Azure ML managed online endpoint.

Example:
  python create_online_endpoint.py --endpoint_name diabetes-classify \\
      --description "Diabetes classification endpoint" --auth_mode aml_token --public_network enabled --verbose

Running it again updates the endpoint in place: only the settings given as flags change; its traffic and
everything else stay. --dry_run prints the YAML that `az ml online-endpoint create -f` accepts, without
contacting Azure.

Environment variables: AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME (when the
workspace flags are not given), and those DefaultAzureCredential reads (AZURE_CLIENT_ID, ...).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

try:
    from common import startup

    startup.prepare()  # the toolkit's libraries are there; Ctrl-C while they load is one line
    import commands
    from commands.dispatch import dispatch
except KeyboardInterrupt:  # Ctrl-C while Python still loads the toolkit: nothing has started
    raise SystemExit(130) from None


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(__doc__, commands.REGISTRIES["create_online_endpoint.py"], argv)


if __name__ == "__main__":
    sys.exit(commands.run(main))
