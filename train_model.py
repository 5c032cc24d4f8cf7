"""Train the diabetes classifier and save it as a model folder; optionally register it as diabetes-predict.

Examples:
  python train_model.py                                      # synthetic data -> outputs/diabetes-model
  python train_model.py --data diabetes.csv                  # the Azure ML tutorials' data set (*)
  python train_model.py --register                           # also register the next version in the workspace

The model folder holds model.pkl (joblib) and metadata.json (features, labels, scikit-learn version).
(*) data/diabetes.csv of the GitHub repository MicrosoftDocs/mslearn-create-ml-models (CC BY 4.0).

Environment variables (with --register): AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME,
and those DefaultAzureCredential reads.
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
    return dispatch(__doc__, commands.REGISTRIES["train_model.py"], argv)


if __name__ == "__main__":
    sys.exit(commands.run(main))
