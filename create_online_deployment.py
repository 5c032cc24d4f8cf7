"""Create or update a deployment on an Azure ML managed online endpoint, then set its share of the traffic.

Example:
  python create_online_deployment.py --deployment_name diabetes-classify-blue-dp --endpoint_name diabetes-classify \\
      --model_path azureml:diabetes-predict:3 --environment diabetes-classify --score_path 09-deploy-model \\
      --score_script score.py --instance_type Standard_DS3_v2 --instance_count 1 --traffic_allocation 100

After the deployment succeeds it gets --traffic_allocation percent (0 included); the other deployments share the
rest in proportion to their current shares. Without --traffic_allocation, and when it fails, traffic is not
touched. --dry_run prints the deployment YAML without contacting Azure.

--preflight first deploys the same model, code and environment on the local target (a throw-away endpoint on this
machine), sends the sample request and goes on to Azure only if it gets a 2xx: a broken score.py or environment
fails in seconds instead of after the image build. With --dry_run it runs the preflight and prints the YAML.

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
    return dispatch(__doc__, commands.REGISTRIES["create_online_deployment.py"], argv)


if __name__ == "__main__":
    sys.exit(commands.run(main))
