"""Identity v2.0: the catalog, authentication errors, and the token manager's refresh timing
(fake clock, real loopback server)."""

from __future__ import annotations

import pickle
import socket
import threading
import time

import pytest
from pydantic import SecretStr

from imagehop import errors
from imagehop.http import HttpClient
from imagehop.identity import (
    TokenManager,
    auth_request_body,
    authenticate,
    parse_access,
    parse_catalog,
    refresh_time,
    tokens_url,
)
from imagehop.login import SettingNames
from imagehop.settings import Credentials
from tests.support import scripted_bodies as bodies
from tests.support.scripted_clock import ScriptedClock
from tests.support.scripted_server import ScriptedServer

KEY = Credentials(username="demo", api_key=SecretStr("very-secret-key"))
PASSWORD = Credentials(username="demo", password=SecretStr("very-secret-password"))
HOUR = 3600.0


def manager(
    server: ScriptedServer,
    clock: ScriptedClock,
    credentials: Credentials = KEY,
    margin: float = HOUR,
    **kw: str,
) -> TokenManager:
    settings = bodies.make_settings(token_refresh_margin_seconds=margin)
    return TokenManager(f"{server.url}/v2.0", credentials, settings, clock=clock, **kw)


def expect_auth(server: ScriptedServer, token: str, expires_at: float) -> None:
    server.expect("POST", "/v2.0/tokens").reply(200, json=bodies.access(token, expires_at))


# catalog --------------------------------------------------------------------------------

CATALOG = parse_catalog(bodies.catalog("https://cloud"))


def test_endpoint_by_type_region_and_interface() -> None:
    assert CATALOG.endpoint("image", "DFW") == "https://cloud/dfw/images/v2"
    assert CATALOG.endpoint("compute", "iad") == f"https://cloud/iad/servers/v2/{bodies.TENANT}"
    internal = CATALOG.endpoint("object-store", "IAD", "internal")
    assert internal == f"https://cloud/snet-iad/files/v1/MossoCloudFS_{bodies.TENANT}"


def test_an_unknown_region_lists_the_regions_that_exist() -> None:
    with pytest.raises(errors.UnknownRegionError) as caught:
        CATALOG.endpoint("image", "ORD")
    assert "'ORD'" in str(caught.value) and "DFW, IAD" in str(caught.value)


def test_lon_gets_a_hint_about_uk_accounts() -> None:
    with pytest.raises(errors.UnknownRegionError, match="UK accounts"):
        CATALOG.endpoint("image", "LON")


def test_a_missing_service_type_names_what_the_catalog_has() -> None:
    with pytest.raises(errors.UnknownRegionError, match=r"no 'volume' service.*compute"):
        CATALOG.endpoint("volume", "DFW")


def test_a_missing_internal_url_is_a_preflight_error() -> None:
    with pytest.raises(errors.PreflightError, match="no internal URL"):
        CATALOG.endpoint("image", "DFW", "internal")


def test_the_catalog_pickles_and_lists_regions() -> None:
    assert pickle.loads(pickle.dumps(CATALOG)) == CATALOG
    assert CATALOG.regions("object-store") == ["DFW", "IAD"]


def test_parse_access_reads_token_user_and_expiry() -> None:
    access = parse_access(bodies.access("zq-secret-zq", 1_700_003_600.0))
    assert access.token.expires_at == 1_700_003_600.0
    assert access.token.tenant_id == bodies.TENANT
    assert access.user.default_region == "DFW" and access.user.roles == ("admin",)
    assert "zq-secret-zq" not in repr(access)


def test_parse_access_refuses_a_body_without_token() -> None:
    with pytest.raises(ValueError):
        parse_access({"access": {"token": {}}})


@pytest.mark.parametrize(
    "url", ["https://id.example/v2.0", "https://id.example/v2.0/", "https://id.example"]
)
def test_tokens_url_with_or_without_version(url: str) -> None:
    assert tokens_url(url) == "https://id.example/v2.0/tokens"


def test_request_bodies_for_key_and_password() -> None:
    assert auth_request_body(KEY) == {
        "auth": {"RAX-KSKEY:apiKeyCredentials": {"username": "demo", "apiKey": "very-secret-key"}}
    }
    assert auth_request_body(PASSWORD) == {
        "auth": {"passwordCredentials": {"username": "demo", "password": "very-secret-password"}}
    }


# refresh timing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifetime", "margin", "refresh_after"),
    [
        (24 * HOUR, HOUR, 23 * HOUR),  # Rackspace default: renew in the last hour
        (2 * HOUR, HOUR, HOUR),
        (HOUR, HOUR, HOUR / 2),  # lifetime not longer than the margin: half-way
        (10.0, HOUR, 5.0),  # test-scale token: no thrashing
        (-5.0, HOUR, 60.0),  # looks expired on arrival (clock skew): keep a minute
    ],
)
def test_refresh_time(lifetime: float, margin: float, refresh_after: float) -> None:
    assert refresh_time(1000.0, 1000.0 + lifetime, margin) == 1000.0 + refresh_after


def test_the_token_is_cached_until_the_refresh_margin(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    expect_auth(server, "t-first", clock.time() + 24 * HOUR)
    expect_auth(server, "t-second", clock.time() + 48 * HOUR)
    tokens = manager(server, clock)
    assert tokens.token() == "t-first"
    clock.advance(23 * HOUR - 1)
    assert tokens.token() == "t-first"
    assert len(server.received) == 1
    clock.advance(1)
    assert tokens.token() == "t-second"


def test_a_short_lived_token_is_renewed_half_way(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    expect_auth(server, "t1", clock.time() + 10)
    expect_auth(server, "t2", clock.time() + 15)
    tokens = manager(server, clock)
    assert tokens.token() == "t1"
    clock.advance(4.9)
    assert tokens.token() == "t1"
    clock.advance(0.2)
    assert tokens.token() == "t2"


def test_the_first_call_authenticates_with_the_api_key(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    expect_auth(server, "t1", clock.time() + HOUR)
    tokens = manager(server, clock)
    assert tokens.catalog.endpoint("image", "IAD").endswith("/iad/images/v2")
    assert tokens.tenant_id == bodies.TENANT
    assert server.received[0].json() == auth_request_body(KEY)


def test_invalidate_forces_a_new_login_once(server: ScriptedServer, clock: ScriptedClock) -> None:
    expect_auth(server, "t1", clock.time() + 24 * HOUR)
    expect_auth(server, "t2", clock.time() + 24 * HOUR)
    tokens = manager(server, clock)
    stale = tokens.token()
    tokens.invalidate(stale)
    assert tokens.token() == "t2"
    tokens.invalidate(stale)  # a second worker reporting the same stale token: no-op
    assert tokens.token() == "t2"


def test_concurrent_workers_share_one_renewal(server: ScriptedServer, clock: ScriptedClock) -> None:
    expect_auth(server, "t1", clock.time() + 24 * HOUR)
    expect_auth(server, "t2", clock.time() + 24 * HOUR)
    tokens = manager(server, clock)
    stale = tokens.token()
    seen: list[str] = []

    def worker() -> None:
        tokens.invalidate(stale)
        seen.append(tokens.token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == ["t2"] * 8
    assert len(server.requests_to("POST", "/v2.0/tokens")) == 2


def test_bad_credentials_say_which_setting_to_check(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("POST", "/v2.0/tokens").reply(
        401, json={"unauthorized": {"code": 401, "message": "Username or api key is invalid."}}
    )
    with pytest.raises(errors.AuthenticationError) as caught:
        manager(server, clock, names=SettingNames("IMAGEHOP_TARGET_")).token()
    text = str(caught.value)
    assert "IMAGEHOP_TARGET_USERNAME" in text and "IMAGEHOP_TARGET_API_KEY" in text
    assert "Username or api key is invalid." in text
    assert "very-secret-key" not in text


def test_an_answer_quoting_the_key_never_shows_it(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("POST", "/v2.0/tokens").reply(
        400, json={"badRequest": {"message": "Invalid apiKey 'very-secret-key' for demo"}}
    )
    with pytest.raises(errors.AuthenticationError) as caught:
        manager(server, clock).token()
    assert "very-secret-key" not in str(caught.value)
    assert "Invalid apiKey '<redacted>'" in str(caught.value)


def test_a_password_user_is_told_to_check_the_password(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("POST", "/v2.0/tokens").reply(403, json={"forbidden": {"message": "disabled"}})
    with pytest.raises(errors.AuthenticationError, match="IMAGEHOP_PASSWORD"):
        manager(server, clock, PASSWORD).token()


def test_a_wrong_identity_url_is_a_configuration_error(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("POST", "/v2.0/tokens").reply(404, body="no such thing")
    with pytest.raises(errors.ConfigurationError, match="IMAGEHOP_IDENTITY_URL"):
        manager(server, clock).token()


def closed_port_url() -> str:
    """An Identity URL on loopback where nothing listens: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v2.0"


def test_an_unreachable_identity_url_fails_the_first_login_at_once(clock: ScriptedClock) -> None:
    """No retry, no backoff: a connection refused before anything worked is a wrong URL."""
    tokens = TokenManager(closed_port_url(), KEY, bodies.make_settings(), clock=clock)
    with pytest.raises(errors.ConfigurationError) as caught:
        tokens.token()
    message = str(caught.value)
    assert "IMAGEHOP_IDENTITY_URL" in message and "connection refused" in message
    assert clock.sleeps == []


def test_an_identity_that_never_accepts_fails_the_first_login_in_one_connect_timeout(
    clock: ScriptedClock,
) -> None:
    """A listener whose backlog is full drops new connections: one connect timeout, no
    retry (before: three timeouts plus backoff)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        settings = bodies.make_settings(connect_timeout_seconds=0.5)
        tokens = TokenManager(f"http://127.0.0.1:{port}/v2.0", KEY, settings, clock=clock)
        began = time.monotonic()
        with pytest.raises(errors.ConfigurationError, match=r"connect timed out.*IDENTITY_URL"):
            tokens.token()
        seconds = time.monotonic() - began
        for filler in fillers:
            filler.close()
    assert clock.sleeps == [] and seconds < 2.0


def test_a_renewal_that_cannot_connect_is_retried_by_the_http_layer(clock: ScriptedClock) -> None:
    """Once a login worked, a failed connection is a blip: the request layer retries it."""
    http = HttpClient(bodies.make_settings(), clock=clock)
    with pytest.raises(errors.TransportError) as caught:
        authenticate(http, closed_port_url(), KEY)
    assert caught.value.connect_failed and caught.value.exhausted_by == "request"
    assert len(clock.sleeps) == 2  # three tries


def test_identity_overload_is_retried_by_the_http_layer(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("POST", "/v2.0/tokens").reply(503)
    expect_auth(server, "t1", clock.time() + HOUR)
    assert manager(server, clock).token() == "t1"


def test_the_manager_repr_shows_no_secret(server: ScriptedServer, clock: ScriptedClock) -> None:
    expect_auth(server, "t-secret-token", clock.time() + HOUR)
    tokens = manager(server, clock)
    tokens.token()
    assert "very-secret" not in repr(tokens) and "t-secret-token" not in repr(tokens)


def test_target_manager_uses_the_target_account(clock: ScriptedClock) -> None:
    settings = bodies.make_settings(
        username="src",
        api_key="k1",
        target_username="dst",
        target_password="p2",
    )
    target = TokenManager.for_target(settings, clock=clock)
    assert "dst" in repr(target)
    same = TokenManager.for_target(bodies.make_settings(username="src", api_key="k1"))
    assert "src" in repr(same)
