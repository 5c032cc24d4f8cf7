"""The seed's two commands (as the README gives them), shared by the tests of both targets."""

from __future__ import annotations

from typing import Any

ENDPOINT_SEED = [
    *("--endpoint_name", "diabetes-classify", "--description", "Diabetes classification endpoint"),
    *("--auth_mode", "aml_token", "--public_network", "enabled", "--verbose"),
]
DEPLOYMENT_SEED = [
    *("--deployment_name", "diabetes-classify-blue-dp", "--endpoint_name", "diabetes-classify"),
    *("--model_path", "azureml:diabetes-predict:3", "--environment", "diabetes-classify"),
    *("--score_path", "09-deploy-model", "--score_script", "score.py"),
    *("--instance_type", "Standard_DS3_v2", "--instance_count", "1", "--traffic_allocation", "100"),
]


def with_flag(argv: list[str], flag: str, value: str) -> list[str]:
    """argv with the value after `flag` replaced."""
    changed = list(argv)
    changed[changed.index(flag) + 1] = value
    return changed


def with_seed_assets(fake_azure: Any) -> Any:
    """The fake control plane holding what the seed's deployment names: the model and two environment versions."""
    fake_azure.add_model("diabetes-predict", "3")
    fake_azure.add_environment("diabetes-classify", "6")
    fake_azure.add_environment("diabetes-classify", "7")
    return fake_azure
