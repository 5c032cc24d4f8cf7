"""Flag checks, model/environment references and the SKU list: all pure, no Azure."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import references, validation
from common.azure.skus import MANAGED_ONLINE_SKUS, instance_type_warning
from common.errors import UsageError


@pytest.mark.parametrize("name", ["abc", "diabetes-classify", "a1-b2", "A" + "b" * 31, "blue"])
def test_valid_resource_names_are_taken_in_the_lowercase_azure_keeps(name):
    assert validation.resource_name("endpoint", name) == name.lower()
    assert validation.canonical_name(name) == name.lower()


def test_an_invalid_name_is_left_as_typed_for_the_error_to_name_it():
    assert validation.canonical_name("Ab_C") == "Ab_C"
    with pytest.raises(UsageError, match="invalid endpoint name 'Ab_C'"):
        validation.resource_name("endpoint", "Ab_C")


@pytest.mark.parametrize("name", ["ab", "a" * 33, "1abc", "-abc", "abc-", "ab_c", "ab.c", "ab c", ""])
def test_invalid_resource_names_name_the_value_and_the_rule(name):
    with pytest.raises(UsageError, match="starting with a letter") as error:
        validation.resource_name("deployment", name)
    assert f"invalid deployment name {name!r}" in str(error.value)


def test_tags():
    assert validation.tags(["team=ml", "note=a=b", " k = v "]) == {"team": "ml", "note": "a=b", "k": "v"}
    assert validation.tags(None) == {}
    with pytest.raises(UsageError, match="invalid tag '=x'"):
        validation.tags(["=x"])
    with pytest.raises(UsageError, match="invalid tag key 'a/b'"):
        validation.tags(["a/b=c"])


def test_model_references(tmp_path: Path):
    assert references.parse_model("azureml:diabetes-predict:3") == references.AssetRef("diabetes-predict", "3")
    assert references.parse_model("azureml:diabetes-predict@latest") == references.AssetRef("diabetes-predict")
    (tmp_path / "model.pkl").write_bytes(b"x")
    assert references.parse_model(str(tmp_path)) == references.LocalModel(tmp_path)
    assert references.parse_model(str(tmp_path / "model.pkl")) == references.LocalModel(tmp_path / "model.pkl")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="the folder is empty"):
        references.parse_model(str(empty))
    with pytest.raises(UsageError, match="registry and ARM ids are not supported"):
        references.parse_model("azureml://registries/azureml/models/x/versions/1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("diabetes-classify", references.AssetRef("diabetes-classify")),
        ("diabetes-classify:4", references.AssetRef("diabetes-classify", "4")),
        ("diabetes-classify@latest", references.AssetRef("diabetes-classify")),
        ("azureml:diabetes-classify:4", references.AssetRef("diabetes-classify", "4")),
        ("azureml:diabetes-classify@latest", references.AssetRef("diabetes-classify")),
    ],
)
def test_environment_references(text, expected):
    assert references.parse_environment(text) == expected


def test_arm_reference_forms():
    assert references.AssetRef("m", "3").arm_reference == "azureml:m:3"
    assert references.AssetRef("m").arm_reference == "azureml:m@latest"


def test_documented_skus_pass_silently_in_any_case():
    assert instance_type_warning("Standard_DS3_v2") is None
    assert instance_type_warning("standard_f4s_v2") is None
    assert len(MANAGED_ONLINE_SKUS) == len({s.lower() for s in MANAGED_ONLINE_SKUS})


def test_the_sku_list_is_the_documented_one():
    """reference-managed-online-endpoints-vm-sku-list: 85 sizes in 19 families (synced 2026-12-01)."""
    from common.azure.skus import DOCUMENTED_SKUS

    assert len(MANAGED_ONLINE_SKUS) == 85 and len({sku.family for sku in DOCUMENTED_SKUS}) == 19
    for added in ("Standard_L8s_v2", "Standard_L80as_v3", "Standard_NC6s_v2", "Standard_NV36adms_A10_v5"):
        assert added in MANAGED_ONLINE_SKUS
    for added in ("Standard_FX4mds", "Standard_FX12mds", "Standard_ND96is_H100_v5"):
        assert added in MANAGED_ONLINE_SKUS
    for gone in ("Standard_E4a_v4", "Standard_E96as_v4", "Standard_NC24rs_v3"):
        assert gone not in MANAGED_ONLINE_SKUS
        assert "is not in the documented SKU list" in (instance_type_warning(gone) or "")
    ds3 = next(sku for sku in DOCUMENTED_SKUS if sku.name == "Standard_DS3_v2")
    assert (ds3.family, ds3.cores, ds3.gpu, ds3.skips_reservation) == ("standardDSv2Family", 4, False, False)
    a100 = next(sku for sku in DOCUMENTED_SKUS if sku.name == "Standard_NC24ads_A100_v4")
    assert a100.gpu and a100.skips_reservation


def test_instance_types_match_regardless_of_case_and_take_the_documented_spelling():
    from common.azure.skus import canonical, same_instance_type

    assert canonical("STANDARD_DS3_V2") == canonical("standard_ds3_v2") == "Standard_DS3_v2"
    assert canonical("Standard_Unknown_v9") == "Standard_Unknown_v9"
    assert same_instance_type("Standard_DS3_V2", "Standard_DS3_v2")
    assert not same_instance_type("Standard_DS3_v2", "Standard_DS4_v2")


def test_small_and_unknown_skus_warn():
    assert "may be too small for bigger models (Azure's SKU list cautions" in (
        instance_type_warning("Standard_DS1_v2") or ""
    )
    assert instance_type_warning("Standard_DS2_v2") is None  # the caution names DS1_v2 and F2s_v2 only
    warning = instance_type_warning("Standard_F4s_v3") or ""
    assert "'Standard_F4s_v3' is not in the documented SKU list" in warning
    assert "Standard_F4s_v2" in warning.split("closest known:")[1]
    assert "closest known: Standard_DS3_v2" in (instance_type_warning("banana") or "")


def test_scoring_code(tmp_path: Path):
    (tmp_path / "score.py").write_text("def init(): pass\n")
    assert validation.scoring_code(str(tmp_path), "score.py") == tmp_path / "score.py"
    with pytest.raises(UsageError, match="must be a path inside"):
        validation.scoring_code(str(tmp_path), "/etc/passwd")


@pytest.mark.parametrize(
    ("script", "argv", "message"),
    [
        (
            "create_online_deployment",
            ["--timeout_minutes", "-5"],
            "error: argument --timeout_minutes/--timeout-minutes: -5 is negative: use 0 or more minutes",
        ),
        (
            "create_online_deployment",
            ["--instance_count", "100000"],
            "error: invalid --instance_count 100000: a managed online deployment has at most 50 instances (Azure's "
            "limit; a support request can raise it)",
        ),
        (
            "create_online_endpoint",
            ["--timeout_minutes", "soon"],
            "error: argument --timeout_minutes/--timeout-minutes: 'soon' is not a whole number of minutes",
        ),
    ],
)
def test_waits_and_instance_counts_out_of_range_are_refused(run_script, script, argv, message):
    import importlib

    from tests.seeds import DEPLOYMENT_SEED

    module = importlib.import_module(script)
    base = DEPLOYMENT_SEED if script == "create_online_deployment" else ["--endpoint_name", "diabetes-classify"]
    changed = list(base)
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        changed = [*changed, flag, value] if flag not in changed else changed
        changed[changed.index(flag) + 1] = value

    result = run_script(module, [*changed, "--dry_run"])

    assert result.code == 2
    assert result.err.startswith(message), result.err


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_probe_request_file_missing_or_a_folder_is_one_line(run_script, tmp_path, kind):
    import manage_online_endpoint

    path = tmp_path / "nothing.json" if kind == "missing" else tmp_path
    argv = ["probe", "--local", "--endpoint_name", "diabetes-classify", "--request_file", str(path)]

    result = run_script(manage_online_endpoint, argv)

    assert result.code == 2
    expected = "cannot be read: No such file or directory" if kind == "missing" else "is a folder: give a JSON file"
    assert result.err == f"error: --request_file {str(path)!r} {expected}\n"
