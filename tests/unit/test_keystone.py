"""Keystone v3 logins: the settings that choose them (and the errors naming what to set), the
request body, the catalog, and the token manager on a scripted Keystone."""

from __future__ import annotations

from typing import Any

import pytest

from imagehop import errors
from imagehop.identity import TokenManager
from imagehop.keystone import parse_v3_catalog, v3_auth_body, v3_tokens_url
from imagehop.settings import KeystoneCredentials, Settings
from tests.support import scripted_bodies as bodies
from tests.support.scripted_clock import ScriptedClock
from tests.support.scripted_server import ScriptedServer

HOUR = 3600.0
DOMAIN = "rackspace_cloud_domain"


def v3_settings(url: str = "https://keystone.example/v3", **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "identity_url": url,
        "auth_type": "v3password",
        "username": "ops",
        "password": "very-secret-password",
        "user_domain_name": DOMAIN,
        "project_name": "web",
    }
    return bodies.make_settings(**{**values, **overrides})


def v3_catalog(host: str, regions: tuple[str, ...] = ("SJC3", "DFW3")) -> list[dict[str, Any]]:
    def endpoints(service: str) -> list[dict[str, Any]]:
        return [
            {
                "interface": interface,
                "region_id": region,
                "region": region,
                "url": f"{host}/{interface}/{region.lower()}/{service}",
            }
            for region in regions
            for interface in ("public", "internal", "admin")
        ]

    return [
        {"type": "image", "name": "glance", "endpoints": endpoints("image")},
        {"type": "object-store", "name": "swift", "endpoints": endpoints("swift")},
    ]


def v3_token(expires_at: float, host: str = "https://cloud") -> dict[str, Any]:
    return {
        "token": {
            "methods": ["password"],
            "expires_at": bodies.iso(expires_at).replace("Z", "000Z"),
            "project": {"id": "p-123", "name": "web", "domain": {"name": DOMAIN}},
            "user": {"id": "u-1", "name": "ops", "domain": {"name": DOMAIN}},
            "roles": [{"id": "r", "name": "member"}],
            "catalog": v3_catalog(host),
        }
    }


def expect_v3_login(server: ScriptedServer, token: str, expires_at: float) -> None:
    server.expect("POST", "/v3/auth/tokens").reply(
        201, json=v3_token(expires_at), headers={"X-Subject-Token": token}
    )


# settings ---------------------------------------------------------------------------------


def test_v3_password_settings_give_keystone_credentials() -> None:
    credentials = v3_settings().source_credentials()
    assert isinstance(credentials, KeystoneCredentials)
    assert (credentials.method, credentials.username) == ("password", "ops")
    assert credentials.project_domain_name == DOMAIN  # the user's domain unless set
    assert "very-secret-password" not in repr(credentials) + repr(v3_settings())


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"user_domain_name": None}, "IMAGEHOP_USER_DOMAIN_NAME"),
        ({"password": None}, "IMAGEHOP_PASSWORD"),
        ({"username": None}, "IMAGEHOP_USERNAME"),
        ({"identity_url": "https://identity.api.rackspacecloud.com/v2.0"}, "IMAGEHOP_IDENTITY_URL"),
        ({"auth_type": "v3applicationcredential"}, "IMAGEHOP_APPLICATION_CREDENTIAL_ID"),
        (
            {"auth_type": "v3applicationcredential", "application_credential_id": "ac-1"},
            "IMAGEHOP_APPLICATION_CREDENTIAL_SECRET",
        ),
    ],
)
def test_an_incomplete_v3_login_names_the_variable_to_set(
    overrides: dict[str, Any], variable: str
) -> None:
    with pytest.raises(errors.ConfigurationError, match=variable):
        v3_settings(**overrides).source_credentials()


def test_the_target_may_be_another_cloud_with_another_kind_of_login() -> None:
    settings = bodies.make_settings(
        username="legacy",
        api_key="k1",
        target_identity_url="https://keystone.api.sjc3.rackspacecloud.com/v3",
        target_auth_type="v3applicationcredential",
        target_application_credential_id="ac-9",
        target_application_credential_secret="s-9",
    )
    source, target = settings.source_credentials(), settings.target_credentials()
    assert not isinstance(source, KeystoneCredentials)
    assert isinstance(target, KeystoneCredentials)
    assert target.method == "application_credential"
    manager = TokenManager.for_target(settings)
    assert "ac-9" in repr(manager) and "sjc3" in repr(manager) and "s-9" not in repr(manager)


def test_a_keystone_per_region_keeps_the_same_account() -> None:
    settings = v3_settings(target_identity_url="https://keystone.api.dfw3.example/v3")
    assert settings.target_credentials() == settings.source_credentials()
    assert settings.target_identity == "https://keystone.api.dfw3.example/v3"
    assert "dfw3" in repr(TokenManager.for_target(settings))


def test_another_kind_of_login_for_the_same_account_is_refused() -> None:
    settings = bodies.make_settings(username="ops", api_key="k", target_auth_type="v3password")
    with pytest.raises(errors.ConfigurationError, match="IMAGEHOP_TARGET_USERNAME"):
        settings.target_credentials()


# the request and the answer ----------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://k.example", "https://k.example/v3/", "https://k/v3"])
def test_tokens_url_with_or_without_v3(url: str) -> None:
    assert v3_tokens_url(url).endswith("/v3/auth/tokens")
    assert "/v3/v3" not in v3_tokens_url(url)


def test_password_body_scopes_to_the_project_in_its_domain() -> None:
    body = v3_auth_body(v3_settings(project_domain_name="Default").source_credentials())
    assert body["auth"]["identity"] == {
        "methods": ["password"],
        "password": {
            "user": {"name": "ops", "domain": {"name": DOMAIN}, "password": "very-secret-password"}
        },
    }
    assert body["auth"]["scope"] == {"project": {"name": "web", "domain": {"name": "Default"}}}
    by_id = v3_auth_body(v3_settings(project_id="p-1").source_credentials())
    assert by_id["auth"]["scope"] == {"project": {"id": "p-1"}}
    unscoped = v3_auth_body(v3_settings(project_name=None).source_credentials())
    assert "scope" not in unscoped["auth"]


def test_application_credential_body_asks_for_no_scope() -> None:
    settings = v3_settings(
        auth_type="v3applicationcredential",
        application_credential_id="ac-1",
        application_credential_secret="s-1",
    )
    body = v3_auth_body(settings.source_credentials())
    assert body == {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": "ac-1", "secret": "s-1"},
            }
        }
    }


def test_the_v3_catalog_joins_interfaces_per_region() -> None:
    catalog = parse_v3_catalog(v3_catalog("https://c"))
    assert catalog.regions("image") == ["DFW3", "SJC3"]
    assert catalog.endpoint("image", "sjc3") == "https://c/public/sjc3/image"
    assert catalog.endpoint("object-store", "DFW3", "internal") == "https://c/internal/dfw3/swift"
    with pytest.raises(errors.UnknownRegionError, match="DFW3, SJC3"):
        catalog.endpoint("image", "IAD3")


# the token manager on a scripted Keystone --------------------------------------------------


def test_the_token_comes_from_x_subject_token(server: ScriptedServer, clock: ScriptedClock) -> None:
    expect_v3_login(server, "t-v3", clock.time() + HOUR)
    settings = v3_settings(server.url)
    tokens = TokenManager.for_source(settings, clock=clock)
    assert tokens.token() == "t-v3"
    assert tokens.tenant_id == "p-123"
    assert tokens.user.roles == ("member",)
    assert tokens.endpoint("image", "DFW3") == "https://cloud/public/dfw3/image"
    assert server.received[0].json() == v3_auth_body(settings.source_credentials())


def test_a_refused_v3_login_names_every_variable_that_may_be_wrong(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("POST", "/v3/auth/tokens").reply(
        401,
        json={
            "error": {
                "code": 401,
                "message": "The request you have made requires authentication.",
                "title": "Unauthorized",
            }
        },
    )
    with pytest.raises(errors.AuthenticationError) as caught:
        TokenManager.for_source(v3_settings(server.url), clock=clock).token()
    text = str(caught.value)
    for variable in ("USERNAME", "PASSWORD", "USER_DOMAIN_NAME", "PROJECT_NAME"):
        assert f"IMAGEHOP_{variable}" in text
    assert "requires authentication" in text
    assert "very-secret-password" not in text


def test_a_refused_login_of_a_cloud_profile_names_the_profile_s_fields(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    """A side that logs in as a profile of IMAGEHOP_CLOUDS is fixed there, not in
    IMAGEHOP_TARGET_* (which this worker may not even set)."""
    server.expect("POST", "/v3/auth/tokens").reply(
        401, json={"error": {"code": 401, "message": "requires authentication"}}
    )
    profile = {
        "auth_type": "v3password",
        "identity_url": f"{server.url}/v3",
        "username": "flex-user",
        "user_domain_name": DOMAIN,
        "project_id": "p-1",
        "password_secret_block": "flex-password",
    }
    settings = bodies.make_settings(clouds={"flex-sjc3": profile}).for_clouds(None, "flex-sjc3")
    with_secret = settings.model_copy(update={"target_password": "from-the-block"})  # as loaded
    with pytest.raises(errors.AuthenticationError) as caught:
        TokenManager.for_target(with_secret, clock=clock).token()
    text = str(caught.value)
    assert (
        "check username, password_secret_block, user_domain_name and project_id of cloud "
        "'flex-sjc3' in IMAGEHOP_CLOUDS"
    ) in text
    assert "IMAGEHOP_TARGET_" not in text and "from-the-block" not in text


def test_an_answer_without_x_subject_token_is_an_api_error(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("POST", "/v3/auth/tokens").reply(201, json=v3_token(clock.time() + HOUR))
    with pytest.raises(errors.ApiError, match="X-Subject-Token"):
        TokenManager.for_source(v3_settings(server.url), clock=clock).token()


def test_a_v2_identity_given_as_keystone_is_a_configuration_error(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("POST", "/v3/auth/tokens").reply(404, body="not here")
    with pytest.raises(errors.ConfigurationError, match="IMAGEHOP_IDENTITY_URL"):
        TokenManager.for_source(v3_settings(server.url), clock=clock).token()
