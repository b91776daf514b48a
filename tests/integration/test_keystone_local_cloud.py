"""imagehop's clients logged in with Keystone v3 to the local cloud's generic-OpenStack mode:
settings per side (a Keystone per region as on Flex, or one for both; password with domains or
an application credential; different accounts), and the errors of a bad v3 login."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from imagehop import errors
from imagehop.procedure.registry import CloudClients
from imagehop.settings import Settings, read_settings
from imagehop_sandbox.handle import LocalCloud
from tests.support.scripted_bodies import make_settings

pytestmark = pytest.mark.cloud


def as_fields(env: dict[str, str], target: bool = False) -> dict[str, Any]:
    """Settings fields from ``IMAGEHOP_*`` variables (as the target's when ``target``)."""
    prefix = "target_" if target else ""
    return {prefix + name.removeprefix("IMAGEHOP_").lower(): value for name, value in env.items()}


@pytest.fixture
def registry_of() -> Iterator[Any]:
    made: list[CloudClients] = []

    def build(settings: Settings) -> CloudClients:
        made.append(CloudClients(lambda: settings))
        return made[-1]

    yield build
    for registry in made:
        registry.close()


def test_source_and_target_on_their_regions_own_keystone_with_different_accounts(
    local_cloud: LocalCloud, registry_of: Any
) -> None:
    source = local_cloud.keystone_settings_env(local_cloud.main, region="DFW")
    target = local_cloud.keystone_settings_env(
        local_cloud.other, region="IAD", application_credential=True
    )
    clients = registry_of(make_settings(**as_fields(source), **as_fields(target, target=True)))
    assert clients.tokens("source").tenant_id == local_cloud.main.tenant_id
    assert clients.tokens("target").tenant_id == local_cloud.other.tenant_id
    seed = local_cloud.admin.seed()
    dfw_ids = {image.id for image in clients.images("source", "DFW").list_images()}
    assert seed["DFW"]["base_image"] in dfw_ids
    iad_ids = {image.id for image in clients.images("target", "IAD").list_images()}
    assert seed["IAD"]["base_image"] in iad_ids
    store = clients.objects("target", "IAD")
    store.ensure_container("keystone-v3")
    store.put_bytes("keystone-v3", "hello", b"hello")
    other = local_cloud.session(local_cloud.other)  # the same object, seen over v2.0
    assert other.storage("IAD", "GET", "/keystone-v3/hello").content == b"hello"
    with pytest.raises(errors.UnknownRegionError, match=r"regions that do: DFW$"):
        clients.images("source", "IAD")  # DFW's Keystone lists DFW only, as on Flex


def test_settings_from_the_environment_reach_both_regions_through_one_keystone(
    local_cloud: LocalCloud, registry_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_cloud.keystone_settings_env().items():
        monkeypatch.setenv(name, value)
    clients = registry_of(read_settings())
    assert clients.tokens("source") is clients.tokens("target")
    for region in ("DFW", "IAD"):
        assert clients.images("target", region).list_images({"visibility": "public"})
    url = f"{clients.tokens('source').endpoint('object-store', 'IAD')}/v3-check"
    created = requests.put(
        url, headers={"X-Auth-Token": clients.tokens("source").token()}, timeout=30
    )
    assert created.status_code in (201, 202)


def test_a_wrong_v3_password_names_the_target_variables_without_the_secret(
    local_cloud: LocalCloud, registry_of: Any
) -> None:
    target = local_cloud.keystone_settings_env(local_cloud.other, region="IAD")
    target["IMAGEHOP_PASSWORD"] = "wrong-password-123"
    settings = make_settings(
        username=local_cloud.main.username,
        api_key=local_cloud.main.api_key,
        identity_url=local_cloud.identity_url,
        **as_fields(target, target=True),
    )
    with pytest.raises(errors.AuthenticationError) as caught:
        registry_of(settings).tokens("target").token()
    text = str(caught.value)
    for variable in ("USERNAME", "PASSWORD", "USER_DOMAIN_NAME", "PROJECT_NAME"):
        assert f"IMAGEHOP_TARGET_{variable}" in text
    assert "requires authentication" in text and "wrong-password-123" not in text


def test_a_wrong_application_credential_secret_names_its_variables(
    local_cloud: LocalCloud, registry_of: Any
) -> None:
    env = local_cloud.keystone_settings_env(application_credential=True)
    env["IMAGEHOP_APPLICATION_CREDENTIAL_SECRET"] = "not-the-secret"
    with pytest.raises(errors.AuthenticationError) as caught:
        registry_of(make_settings(**as_fields(env))).tokens("source").token()
    assert "IMAGEHOP_APPLICATION_CREDENTIAL_SECRET" in str(caught.value)
    assert "not-the-secret" not in str(caught.value)


def test_the_v2_identity_given_for_a_v3_login_is_a_configuration_error(
    local_cloud: LocalCloud, registry_of: Any
) -> None:
    env = local_cloud.keystone_settings_env()
    env["IMAGEHOP_IDENTITY_URL"] = local_cloud.identity_url  # the Rackspace-style /v2.0
    with pytest.raises(
        errors.ConfigurationError, match=r"not a Keystone v3.*IMAGEHOP_IDENTITY_URL"
    ):
        registry_of(make_settings(**as_fields(env))).tokens("source").token()
