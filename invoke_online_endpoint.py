"""Send a request file to an online endpoint and print the predictions, e.g. ["not-diabetic"].

Examples:
  python invoke_online_endpoint.py --endpoint_name diabetes-classify --request_file 09-deploy-model/sample-request.json
  python invoke_online_endpoint.py --endpoint_name diabetes-classify --deployment_name green --local
  python invoke_online_endpoint.py --endpoint_name diabetes-classify --check_contract

The endpoint's key or token is fetched for you and the request is POSTed to its scoring URI (on Azure, or the
local front door with --local). --deployment_name sends the request to that deployment whatever the traffic
split (the azureml-model-deployment header). A refused request is one line: the endpoint's status, the model's
own status (Azure answers 424 when score.py answers 400), and the error text. --check_contract first checks the
request against the endpoint's OpenAPI document (GET /swagger.json) and sends nothing when it does not fit (exit 2,
a line per problem).

Environment variables: AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME (when the
workspace flags are not given), and those DefaultAzureCredential reads.
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
    return dispatch(__doc__, commands.REGISTRIES["invoke_online_endpoint.py"], argv)


if __name__ == "__main__":
    sys.exit(commands.run(main))
