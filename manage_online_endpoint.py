"""Look after an online endpoint: show it, keys, logs, its contract, traffic and safe rollout, metrics, shadow
comparison and drift, capacity and right-sizing, the doctor, delete.

Examples:
  python manage_online_endpoint.py show --endpoint_name diabetes-classify
  python manage_online_endpoint.py keys --endpoint_name diabetes-classify
  python manage_online_endpoint.py keys --endpoint_name diabetes-classify --regenerate secondary
  python manage_online_endpoint.py logs --endpoint_name diabetes-classify --deployment_name blue --lines 50
  python manage_online_endpoint.py logs --endpoint_name diabetes-classify --deployment_name blue --local --follow
  python manage_online_endpoint.py contract --endpoint_name diabetes-classify --save contract.json
  python manage_online_endpoint.py contract --endpoint_name diabetes-classify \\
      --check 09-deploy-model/sample-request.json
  python manage_online_endpoint.py traffic --endpoint_name diabetes-classify --set blue=90 green=10
  python manage_online_endpoint.py traffic --endpoint_name diabetes-classify --mirror green=10
  python manage_online_endpoint.py metrics --endpoint_name diabetes-classify --minutes 10
  python manage_online_endpoint.py rollout --endpoint_name diabetes-classify --deployment_name green \\
      --steps 10 50 100 --bake_seconds 300 --max_error_percent 1 --max_p95_ms 500
  python manage_online_endpoint.py promote --endpoint_name diabetes-classify --deployment_name green
  python manage_online_endpoint.py rollback --endpoint_name diabetes-classify
  python manage_online_endpoint.py compare --endpoint_name diabetes-classify --deployment_name green --minutes 30
  python manage_online_endpoint.py drift --endpoint_name diabetes-classify --deployment_name blue --plot
  python manage_online_endpoint.py capacity --instance_type Standard_DS3_v2 --instance_count 2
  python manage_online_endpoint.py size --endpoint_name diabetes-classify --deployment_name blue --target_rps 50
  python manage_online_endpoint.py doctor --endpoint_name diabetes-classify --deployment_name green
  python manage_online_endpoint.py delete --endpoint_name diabetes-classify --deployment_name green --yes
  python manage_online_endpoint.py delete --endpoint_name diabetes-classify --deployment_name blue --force --yes
  python manage_online_endpoint.py delete --endpoint_name diabetes-classify --yes
  python manage_online_endpoint.py autoscale --endpoint_name diabetes-classify --deployment_name blue \\
      --min 1 --max 5 --default 2 --cpu_out 70 --cpu_in 30 --latency_out_ms 70 --cooldown_minutes 5
  python manage_online_endpoint.py probe --endpoint_name diabetes-classify --requests 200
  python manage_online_endpoint.py register --name my-model --path path/to/model --local
  python manage_online_endpoint.py stop --endpoint_name diabetes-classify --local
  python manage_online_endpoint.py start --endpoint_name diabetes-classify --local

Every subcommand but capacity and autoscale (Azure's quota and Azure Monitor: Azure only) takes --local for the
local target; start and stop exist only there (an Azure endpoint runs until it is deleted). size always measures
on this machine (an Azure deployment is downloaded and tried here, as --preflight does) and sizes for Azure.
traffic, promote, rollout and create_online_deployment.py --traffic_allocation record the split they replace in
the endpoint's tags; rollback restores the most recent one. traffic, promote and rollout first compare the
contract (contract) of the deployment gaining live traffic with the live one's. Exit codes: 0 done, 1 failed,
2 bad input, 3 not found (rollback: no history), 7 not enough quota (size), 9 a rollout crossed a limit
and was rolled back, 12 a breaking contract change refused (--allow_contract_change moves the traffic anyway),
130 interrupted (a rollout restores the split from before it).
Environment variables: AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME (when the workspace
flags are not given), and those DefaultAzureCredential reads.
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
    return dispatch(__doc__, commands.REGISTRIES["manage_online_endpoint.py"], argv)


if __name__ == "__main__":
    sys.exit(commands.run(main))
