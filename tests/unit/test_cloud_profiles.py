"""Cloud profiles (IMAGEHOP_CLOUDS): the model, its refusals, and Settings.for_clouds."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from imagehop.errors import ConfigurationError, UnknownCloudError
from imagehop.procedure.registry import CloudClients
from imagehop.procedure.request import BatchRequest, Clouds, TransferRequest
from imagehop.settings import Credentials, KeystoneCredentials, Settings, read_settings

ROOT = Path(__file__).resolve().parents[2]
LEGACY = {"username": "legacy-user", "api_key_secret_block": "legacy-key"}
FLEX = {
    "auth_type": "v3password",
    "identity_url": "https://keystone.api.sjc3.rackspacecloud.com/v3",
    "username": "flex-user",
    "user_domain_name": "rackspace_cloud_domain",
    "password_secret_block": "flex-password",
}
APPCRED = {
    "auth_type": "v3applicationcredential",
    "identity_url": "https://keystone.example.com/v3",
    "application_credential_id": "ac-1",
    "application_credential_secret_block": "ac-secret",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("IMAGEHOP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env file


def clouds_env(monkeypatch: pytest.MonkeyPatch, clouds: object) -> None:
    text = clouds if isinstance(clouds, str) else json.dumps(clouds)
    monkeypatch.setenv("IMAGEHOP_CLOUDS", text)


def refusal(monkeypatch: pytest.MonkeyPatch, clouds: object) -> str:
    clouds_env(monkeypatch, clouds)
    with pytest.raises(ConfigurationError) as caught:
        read_settings()
    return str(caught.value)


# -- the profile model and its refusals ------------------------------------------------------


def test_profiles_are_read_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    clouds_env(monkeypatch, {"legacy-dfw": LEGACY, "flex-sjc3": FLEX, "keystone": APPCRED})
    settings = read_settings()
    assert sorted(settings.clouds) == ["flex-sjc3", "keystone", "legacy-dfw"]
    assert settings.clouds["legacy-dfw"].auth_type == "rackspace"
    assert settings.clouds["flex-sjc3"].password_secret_block == "flex-password"


def test_no_profiles_by_default() -> None:
    assert read_settings().clouds == {}


def test_bad_json_is_refused_with_the_variable_and_an_example(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(monkeypatch, '{"flex": {"username": ')
    assert message.startswith("IMAGEHOP_CLOUDS is refused: it must be a JSON object of cloud ")
    assert "not JSON" in message and 'e.g. {"legacy-dfw": {"username": ' in message
    assert "fix it or unset it" in message


def test_an_unknown_field_names_the_profile_and_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(monkeypatch, {"flex": {**FLEX, "region": "SJC3"}})
    assert "profile 'flex': field region: unknown (a profile has auth_type, " in message
    assert "e.g. {" in message


def test_a_missing_secret_block_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    flex = {k: v for k, v in FLEX.items() if k != "password_secret_block"}
    message = refusal(monkeypatch, {"flex-sjc3": flex})
    assert "profile 'flex-sjc3': field password_secret_block: missing" in message
    legacy = refusal(monkeypatch, {"legacy": {"username": "u"}})
    assert "profile 'legacy': field api_key_secret_block (or password_secret_block)" in legacy
    appcred = {k: v for k, v in APPCRED.items() if k != "application_credential_secret_block"}
    assert "field application_credential_secret_block" in refusal(monkeypatch, {"a": appcred})


def test_a_secret_in_a_profile_is_refused_and_never_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(monkeypatch, {"legacy": {"username": "u", "api_key": "s3cr3t-key"}})
    assert "field api_key: a profile holds no secret" in message
    assert "api_key_secret_block" in message
    assert "s3cr3t-key" not in message


def test_cloud_names_are_lower_case_slugs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "cloud name 'Flex SJC3' is not a lower-case slug" in refusal(
        monkeypatch, {"Flex SJC3": FLEX}
    )


def test_a_keystone_profile_needs_a_keystone_url(monkeypatch: pytest.MonkeyPatch) -> None:
    flex = {k: v for k, v in FLEX.items() if k != "identity_url"}
    assert "field identity_url: a v3password login needs the cloud's Keystone" in refusal(
        monkeypatch, {"flex": flex}
    )


def test_not_an_object(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "a JSON list, not an object" in refusal(monkeypatch, [LEGACY])
    assert "profile 'flex': not a JSON object of fields" in refusal(monkeypatch, {"flex": 3})


# -- resolution: Settings.for_clouds ---------------------------------------------------------


def two_clouds(**process: str) -> Settings:
    return Settings(clouds={"legacy-dfw": LEGACY, "flex-sjc3": FLEX}, **process)  # type: ignore[arg-type]


def test_no_clouds_named_is_the_settings_themselves() -> None:
    settings = two_clouds(username="ops", api_key="k")
    assert settings.for_clouds(None, None) is settings


def test_each_side_logs_in_as_its_profile() -> None:
    resolved = two_clouds(username="ops", api_key="k").for_clouds("legacy-dfw", "flex-sjc3")
    assert resolved.identity_url == "https://identity.api.rackspacecloud.com/v2.0"
    assert resolved.username == "legacy-user" and resolved.api_key is None
    assert resolved.api_key_secret_block == "legacy-key"
    assert resolved.target_identity == FLEX["identity_url"]
    assert resolved.target_auth_type == "v3password"
    assert resolved.target_password_secret_block == "flex-password"
    assert resolved.separate_target_account
    # the secrets come from the blocks (what tasks/cloud.load_settings does)
    filled = resolved.model_copy(update={"api_key": "key-1", "target_password": "pw-1"})
    source, target = filled.source_credentials(), filled.target_credentials()
    assert isinstance(source, Credentials) and source.username == "legacy-user"
    assert isinstance(target, KeystoneCredentials) and target.username == "flex-user"
    assert target.user_domain_name == target.project_domain_name == "rackspace_cloud_domain"


def test_an_unnamed_side_keeps_the_worker_settings_of_that_side() -> None:
    worker = two_clouds(username="ops", api_key="k")
    only_target = worker.for_clouds(None, "flex-sjc3")
    assert only_target.source_credentials() == worker.source_credentials()
    assert only_target.identity_url == worker.identity_url
    only_source = worker.for_clouds("flex-sjc3", None)
    target = only_source.model_copy(update={"password": "pw"}).target_credentials()
    assert target == worker.target_credentials()  # the worker's own account, not flex-user
    assert only_source.target_identity == worker.identity_url


def test_a_named_source_without_a_worker_account_needs_a_target_cloud() -> None:
    with pytest.raises(ConfigurationError, match="name a target_cloud too"):
        two_clouds().for_clouds("legacy-dfw", None)


def test_an_unknown_cloud_names_the_known_ones_and_the_variable() -> None:
    with pytest.raises(UnknownCloudError) as caught:
        two_clouds().for_clouds("legacy-dfw", "flex-dfw3")
    assert str(caught.value).startswith(
        "target_cloud 'flex-dfw3' is not a cloud of IMAGEHOP_CLOUDS (known: flex-sjc3, legacy-dfw)"
    )
    with pytest.raises(UnknownCloudError, match="known: none"):
        Settings().for_clouds("x", None)


def test_profiles_get_their_own_token_managers() -> None:
    """The registry is keyed by account: each cloud pair's view logs in as its own."""
    worker = two_clouds(username="ops", api_key="k")
    registry = CloudClients(lambda: worker)

    def view(source: str, target: str) -> CloudClients:
        resolved = worker.for_clouds(source, target)
        filled = resolved.model_copy(
            update={"api_key": "key-1", "password": "pw-1", "target_password": "pw-1",
                    "target_api_key": "key-1"}
        )  # fmt: skip
        return registry.reading(lambda: filled)

    one = view("legacy-dfw", "flex-sjc3")
    other = view("flex-sjc3", "legacy-dfw")
    assert one.tokens("source") is other.tokens("target")  # the same legacy account
    assert one.tokens("target") is other.tokens("source")
    assert one.tokens("source") is not one.tokens("target")
    assert registry.tokens("source") is not one.tokens("source")  # the worker's own


# -- the request ------------------------------------------------------------------------------


def test_a_request_names_clouds_by_slug() -> None:
    request = TransferRequest(
        source_region="DFW", target_region="SJC3", image_id="i", source_cloud=" Legacy-DFW ",
        target_cloud="flex-sjc3",
    )  # fmt: skip
    assert request.clouds == Clouds(source="legacy-dfw", target="flex-sjc3")
    assert TransferRequest(source_region="DFW", target_region="IAD", image_id="i").clouds == (
        Clouds()
    )
    with pytest.raises(ValidationError, match="is not a cloud name"):
        TransferRequest(source_region="DFW", target_region="IAD", image_id="i", source_cloud="a b")


def test_a_batch_passes_its_clouds_to_each_image() -> None:
    batch = BatchRequest(
        source_region="DFW", target_region="SJC3", image_ids=("a", "b"),
        source_cloud="legacy-dfw", target_cloud="flex-sjc3",
    )  # fmt: skip
    assert batch.request_for("a").clouds == Clouds(source="legacy-dfw", target="flex-sjc3")


def test_the_request_holds_names_only() -> None:
    """The form has no field for a secret or a block: a cloud is a name."""
    fields = set(TransferRequest.model_json_schema()["properties"])
    assert {"source_cloud", "target_cloud"} <= fields
    assert not {f for f in fields if "secret" in f or "password" in f or f == "key"}


# -- every task gets its request's clouds ------------------------------------------------------


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else ""


def test_every_call_of_a_step_taking_clouds_passes_them() -> None:
    """A call that forgot ``clouds=`` would talk to the worker's own account: every function
    of tasks/ with a ``clouds`` parameter is called with it, in tasks/ and flows/ (directly,
    or through run_create)."""
    taking = {
        (f"imagehop.tasks.{path.stem}", node.name)
        for path in sorted((ROOT / "tasks").glob("*.py"))
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.FunctionDef)
        and any(a.arg == "clouds" for a in node.args.kwonlyargs)
    }
    assert {
        ("imagehop.tasks.copy", "copy_segments"),
        ("imagehop.tasks.retention", "delete_image"),
    } <= taking
    missing, checked = [], 0
    for folder in ("tasks", "flows"):
        for path in sorted((ROOT / folder).glob("*.py")):
            tree = _tree(path)
            here = f"imagehop.{folder}.{path.stem}"
            origin = {node.name: here for node in tree.body if isinstance(node, ast.FunctionDef)}
            for node in tree.body:
                if isinstance(node, ast.ImportFrom) and node.module:
                    origin.update({alias.asname or alias.name: node.module for alias in node.names})
            for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
                name = _name(call.func)
                if name == "run_create" and call.args:
                    name = _name(call.args[0])
                if (origin.get(name), name) in taking:
                    checked += 1
                    if not any(keyword.arg == "clouds" for keyword in call.keywords):
                        missing.append(f"{folder}/{path.name}:{call.lineno} {name}")
    assert not missing, missing
    assert checked > 30  # the test sees the flows' calls


def test_clients_without_clouds_only_for_process_wide_settings() -> None:
    """``clients()`` without clouds reads the worker's own sides: only for process-wide
    settings (timeouts, limits, segment size), or the CLI's login before Prefect starts
    (skipped when a side is a profile: its secrets are in Secret blocks)."""
    bare = [
        f"{path.name}: {line.strip()}"
        for folder in ("tasks", "flows")
        for path in sorted((ROOT / folder).glob("*.py"))
        for line in path.read_text().splitlines()
        if "clients()" in line and "clients().settings()" not in line
    ]
    assert bare == ["cli.py: registry = cloud.clients()"]
