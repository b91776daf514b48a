"""The identity, image and compute clients against the local two-region cloud (real HTTP
services on real Swift): the documented procedure step by step, its failure modes, and a
token that expires in the middle of a run.

Task and status polls use a fast-forward clock: the clients still space polls by 30 s (10 s
for statuses) as far as they can tell, but the test does not wait for real. The spacing
itself is covered by ``tests/unit/test_image.py`` on a scripted server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from imagehop import errors
from imagehop.clock import SYSTEM_CLOCK
from imagehop.compute import ComputeClient, pick_flavor
from imagehop.identity import TokenManager
from imagehop.image import IMPORT_CODE_ADVICE, ImageClient, normalize_images_url
from imagehop.object_store import ObjectStore
from imagehop.settings import Credentials, KeystoneCredentials, Settings
from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.info import DOMAIN_NAME, AccountInfo
from tests.support.scripted_bodies import make_settings
from tests.support.scripted_clock import FastForwardClock

pytestmark = pytest.mark.cloud

DEADLINE = 600.0  # fast-forward seconds: about 20 task polls


@dataclass
class Cloud:
    """The local cloud plus the settings these tests give the clients."""

    local: LocalCloud
    settings: Settings

    def tokens(self, account: AccountInfo | None = None, **kw: Any) -> TokenManager:
        account = account or self.local.main
        credentials = Credentials(username=account.username, api_key=SecretStr(account.api_key))
        return TokenManager(self.local.identity_url, credentials, self.settings, **kw)

    def keystone_tokens(self, account: AccountInfo | None = None, **kw: Any) -> TokenManager:
        """The account logged in to Keystone v3 (generic-OpenStack mode) with its password."""
        credentials = KeystoneCredentials(
            method="password",
            username=(account or self.local.main).username,
            password=SecretStr((account or self.local.main).password),
            user_domain_name=DOMAIN_NAME,
            project_name=(account or self.local.main).project_name,
        )
        return TokenManager(self.local.keystone_url(), credentials, self.settings, **kw)

    def new_image(self, region: str = "DFW", **properties: str) -> str:
        """A fresh active image of the main account with real (VHD) bytes."""
        owner = self.local.main.tenant_id
        return str(self.local.admin.create_image(region, owner, properties=properties)["id"])


@pytest.fixture(scope="module")
def cloud(local_cloud: LocalCloud) -> Cloud:
    return Cloud(local_cloud, make_settings())


@pytest.fixture
def clock() -> FastForwardClock:
    return FastForwardClock()


@pytest.fixture(params=["identity-v2.0", "keystone-v3"])
def tokens(cloud: Cloud, request: pytest.FixtureRequest) -> TokenManager:
    """The main account's tokens: every client test runs on either kind of login."""
    return cloud.tokens() if request.param == "identity-v2.0" else cloud.keystone_tokens()


@pytest.fixture
def dfw(cloud: Cloud, tokens: TokenManager, clock: FastForwardClock) -> Iterator[ImageClient]:
    client = ImageClient.for_region(tokens, "DFW", cloud.settings, clock=clock)
    yield client
    client.close()


@pytest.fixture
def compute(cloud: Cloud, tokens: TokenManager, clock: FastForwardClock) -> Iterator[ComputeClient]:
    client = ComputeClient.for_region(tokens, "DFW", cloud.settings, clock=clock)
    yield client
    client.close()


@pytest.fixture
def image_id(cloud: Cloud) -> str:
    """A fresh private image of the main account in DFW."""
    return cloud.new_image(**{"com.example.tier": "old"})


def make_container(tokens: TokenManager, region: str) -> str:
    """A new Cloud Files container (plain HTTP on the real Swift) with an export-safe name."""
    name = f"exports-{uuid.uuid4().hex[:12]}"
    url = f"{tokens.endpoint('object-store', region)}/{name}"
    response = requests.put(url, headers={"X-Auth-Token": tokens.token()}, timeout=30)
    assert response.status_code in (201, 202), response.text
    return name


# identity --------------------------------------------------------------------------------


def test_api_key_and_password_reach_the_same_account(cloud: Cloud) -> None:
    by_key = cloud.tokens()
    credentials = Credentials(
        username=cloud.local.main.username, password=SecretStr(cloud.local.main.password)
    )
    by_password = TokenManager(cloud.local.identity_url, credentials, cloud.settings)
    assert by_key.tenant_id == by_password.tenant_id == cloud.local.main.tenant_id
    for tokens in (by_key, by_password):
        images = ImageClient.for_region(tokens, "IAD", cloud.settings)
        assert images.list_images({"visibility": "public"})


def test_the_catalog_offers_every_service_in_both_regions(
    cloud: Cloud, tokens: TokenManager
) -> None:
    for service in ("image", "compute", "object-store"):
        assert tokens.catalog.regions(service) == ["DFW", "IAD"]
    assert normalize_images_url(tokens.endpoint("image", "iad")) == cloud.local.images_url("IAD")
    assert tokens.endpoint("compute", "DFW").endswith(f"/v2/{tokens.tenant_id}")
    storage = tokens.endpoint("object-store", "DFW", "internal")
    assert storage.endswith(f"/v1/MossoCloudFS_{tokens.tenant_id}")
    with pytest.raises(errors.UnknownRegionError, match="DFW, IAD"):
        tokens.endpoint("image", "ORD")


def test_bad_credentials_are_refused_without_echoing_the_secret(cloud: Cloud) -> None:
    credentials = Credentials(
        username=cloud.local.main.username, api_key=SecretStr("wrong-key-123")
    )
    manager = TokenManager(cloud.local.identity_url, credentials, cloud.settings)
    with pytest.raises(errors.AuthenticationError) as caught:
        manager.token()
    assert "IMAGEHOP_API_KEY" in str(caught.value)
    assert "wrong-key-123" not in str(caught.value)


def test_a_separate_target_account_has_its_own_token_and_images(
    cloud: Cloud, clock: FastForwardClock, image_id: str
) -> None:
    main, other = cloud.tokens(), cloud.tokens(cloud.local.other)
    assert other.tenant_id == cloud.local.other.tenant_id != main.tenant_id
    assert other.endpoint("compute", "IAD").endswith(f"/v2/{other.tenant_id}")
    images = ImageClient.for_region(other, "DFW", cloud.settings, clock=clock)
    with pytest.raises(errors.NotFoundError):
        images.get_image(image_id)  # the main account's private image


# image properties ------------------------------------------------------------------------


def test_set_properties_adds_replaces_and_reports_protected(
    dfw: ImageClient, image_id: str
) -> None:
    changes = dfw.set_properties(
        image_id,
        {
            "com.example.tier": "new",
            "com.example.path/like~key": "x",
            "com.rackspace__1__options": "1",
        },
    )
    assert set(changes.changed) == {"com.example.tier", "com.example.path/like~key"}
    assert list(changes.refused) == ["com.rackspace__1__options"]
    image = dfw.get_image(image_id)
    assert image.properties["com.example.tier"] == "new"
    assert image.properties["com.example.path/like~key"] == "x"
    again = dfw.set_properties(image_id, {"com.example.tier": "new"})
    assert again.unchanged == ("com.example.tier",) and not again.changed


def test_remove_properties_and_find_by_property(dfw: ImageClient, image_id: str) -> None:
    marker = f"db-{uuid.uuid4().hex[:8]}"
    dfw.set_properties(image_id, {"com.example.image-of": marker})
    assert [i.id for i in dfw.find_images_by_property("com.example.image-of", marker)] == [image_id]
    dfw.remove_properties(image_id, ["com.example.image-of", "com.example.absent"])
    assert dfw.find_images_by_property("com.example.image-of", marker) == []


def test_delete_image_removes_it_and_a_second_delete_is_not_an_error(
    dfw: ImageClient, image_id: str
) -> None:
    assert dfw.delete_image(image_id) is True
    with pytest.raises(errors.NotFoundError):
        dfw.get_image(image_id)
    assert dfw.delete_image(image_id) is False


def test_deleting_an_image_of_the_cloud_is_forbidden(cloud: Cloud, dfw: ImageClient) -> None:
    """A public image of another owner (the cloud's base image) stays: 403, not deleted."""
    base_id = cloud.local.admin.seed()["DFW"]["base_image"]
    with pytest.raises(errors.ForbiddenError):
        dfw.delete_image(base_id)
    assert dfw.get_image(base_id).status == "active"


def test_listing_follows_the_clouds_next_links(cloud: Cloud, dfw: ImageClient) -> None:
    marker = f"page-{uuid.uuid4().hex[:8]}"
    created = {cloud.new_image(**{"com.example.batch": marker}) for _ in range(5)}
    listed = dfw.list_images({"com.example.batch": marker}, page_size=2)
    assert sorted(image.id for image in listed) == sorted(created)


# export and import -----------------------------------------------------------------------


def export_image(tokens: TokenManager, dfw: ImageClient, image_id: str) -> str:
    container = make_container(tokens, "DFW")
    task = dfw.create_export_task(image_id, container)
    done = dfw.wait_for_task(task.id, DEADLINE)
    assert done.export_location == f"{container}/{image_id}.vhd"
    return done.export_location


def test_export_then_wait_writes_a_dlo(
    tokens: TokenManager, dfw: ImageClient, image_id: str
) -> None:
    seen: list[str] = []
    container = make_container(tokens, "DFW")
    task = dfw.create_export_task(image_id, container)
    done = dfw.wait_for_task(task.id, DEADLINE, on_poll=lambda t: seen.append(t.status))
    assert seen[-1] == "success" and done.message is None
    manifest = f"{tokens.endpoint('object-store', 'DFW')}/{done.export_location}"
    head = requests.head(manifest, headers={"X-Auth-Token": tokens.token()}, timeout=30)
    assert head.headers["X-Object-Manifest"] == f"{container}/{image_id}.vhd-"
    assert int(head.headers["Content-Length"]) > 0


def test_import_then_wait_creates_a_new_image(
    tokens: TokenManager, dfw: ImageClient, image_id: str
) -> None:
    location = export_image(tokens, dfw, image_id)
    task = dfw.create_import_task(location, "imported copy")
    done = dfw.wait_for_task(task.id, DEADLINE)
    assert done.image_id and done.image_id != image_id
    imported = dfw.get_image(done.image_id)
    assert (imported.name, imported.status) == ("imported copy", "active")
    marker = f"db-{uuid.uuid4().hex[:8]}"
    dfw.set_properties(done.image_id, {"com.example.image-of": marker})
    assert [i.id for i in dfw.find_images_by_property("com.example.image-of", marker)] == [
        done.image_id
    ]


def test_exporting_twice_into_one_container_fails_with_advice(
    tokens: TokenManager, dfw: ImageClient, image_id: str
) -> None:
    location = export_image(tokens, dfw, image_id)
    task = dfw.create_export_task(image_id, location.split("/")[0])
    with pytest.raises(errors.TaskFailedError) as caught:
        dfw.wait_for_task(task.id, DEADLINE)
    assert "already has an object" in (caught.value.cloud_message or "")
    assert "reuse that object" in (caught.value.advice or "")


def test_a_licence_restricted_image_fails_with_advice(
    cloud: Cloud, tokens: TokenManager, dfw: ImageClient
) -> None:
    licensed = cloud.local.admin.seed()["DFW"]["licensed_image"]
    task = dfw.create_export_task(licensed, make_container(tokens, "DFW"))
    with pytest.raises(errors.TaskFailedError) as caught:
        dfw.wait_for_task(task.id, DEADLINE)
    assert "Licence restrictions" in (caught.value.advice or "")


def test_a_missing_container_fails_with_advice(dfw: ImageClient, image_id: str) -> None:
    task = dfw.create_export_task(image_id, f"never-created-{uuid.uuid4().hex[:8]}")
    with pytest.raises(errors.TaskFailedError) as caught:
        dfw.wait_for_task(task.id, DEADLINE)
    assert "container" in (caught.value.advice or "")


def test_importing_something_that_is_not_a_vhd_gives_code_396_advice(
    tokens: TokenManager, dfw: ImageClient
) -> None:
    container = make_container(tokens, "DFW")
    url = f"{tokens.endpoint('object-store', 'DFW')}/{container}/junk.vhd"
    requests.put(url, data=b"not a disk" * 100, headers={"X-Auth-Token": tokens.token()})
    task = dfw.create_import_task(f"{container}/junk.vhd", "junk")
    with pytest.raises(errors.TaskFailedError) as caught:
        dfw.wait_for_task(task.id, DEADLINE)
    assert caught.value.advice == IMPORT_CODE_ADVICE["396"]


@pytest.mark.parametrize("code", sorted(IMPORT_CODE_ADVICE))
def test_an_injected_import_failure_code_maps_to_its_advice(
    code: str, cloud: Cloud, tokens: TokenManager, dfw: ImageClient, image_id: str
) -> None:
    """Every documented import error code gets its own advice."""
    location = export_image(tokens, dfw, image_id)
    message = f"Image cannot be imported. Error code: '{code}'"
    cloud.local.admin.fail_next_task("DFW", "import", message)
    task = dfw.create_import_task(location, "too big")
    with pytest.raises(errors.TaskFailedError) as caught:
        dfw.wait_for_task(task.id, DEADLINE)
    assert caught.value.cloud_message == message
    assert caught.value.advice == IMPORT_CODE_ADVICE[code]


def test_a_user_without_the_admin_role_cannot_create_tasks(
    cloud: Cloud, clock: FastForwardClock, image_id: str
) -> None:
    viewer = cloud.tokens(cloud.local.viewer)
    client = ImageClient.for_region(viewer, "DFW", cloud.settings, clock=clock)
    with pytest.raises(errors.ForbiddenError):
        client.create_export_task(image_id, "exports")


def test_a_503_from_the_cloud_is_retried_transparently(
    cloud: Cloud, dfw: ImageClient, image_id: str
) -> None:
    cloud.local.admin.fail_next_request(
        "images", f"/images/{image_id}$", 503, region="DFW", method="GET"
    )
    assert dfw.get_image(image_id).id == image_id
    assert not cloud.local.admin.faults()["http"]


# compute ---------------------------------------------------------------------------------


def test_snapshot_boot_and_wait(cloud: Cloud, dfw: ImageClient, compute: ComputeClient) -> None:
    server_id = cloud.local.admin.seed()["DFW"]["demo_server"]
    with cloud.local.admin.temporary_options(snapshot_seconds=2.0, boot_seconds=1.0):
        image_id = compute.create_server_image(server_id, "snap", {"com.example.of": "demo"})
        with pytest.raises(errors.ConflictError, match="already being imaged"):
            compute.create_server_image(server_id, "second snap")
    snapshot = dfw.wait_for_image_active(image_id, DEADLINE)
    assert snapshot.properties["com.example.of"] == "demo"
    flavor = pick_flavor(compute.list_flavors(), snapshot.min_disk or 0)
    booted = compute.boot_server(f"from-{image_id[:8]}", image_id, flavor.id)
    server = compute.wait_for_server_active(booted, DEADLINE)
    assert (server.status, server.image_id, server.flavor_id) == ("ACTIVE", image_id, flavor.id)


def test_a_flavor_too_small_for_the_image_is_a_bad_request(
    cloud: Cloud, compute: ComputeClient
) -> None:
    smallest = min(compute.list_flavors(), key=lambda f: f.disk)
    owner = cloud.local.main.tenant_id
    big = cloud.local.admin.create_image("DFW", owner, min_disk=smallest.disk + 1)["id"]
    with pytest.raises(errors.BadRequestError):
        compute.boot_server("too-small", big, smallest.id)


# tokens ----------------------------------------------------------------------------------


@pytest.fixture
def short_tokens(cloud: Cloud) -> Iterator[float]:
    """Tokens of the local Identity live 2 s during the test."""
    with cloud.local.admin.temporary_options(token_lifetime_seconds=2.0):
        yield 2.0


def test_a_run_outlives_its_tokens(
    cloud: Cloud, short_tokens: float, clock: FastForwardClock, image_id: str
) -> None:
    """Proactive refresh: 2 s tokens are renewed half-way through a 3 s export."""
    cloud.local.admin.delay_next_task("DFW", "export", 3.0)
    tokens = cloud.tokens()
    client = ImageClient.for_region(tokens, "DFW", cloud.settings, clock=clock)
    first = tokens.token()
    task = client.create_export_task(image_id, make_container(tokens, "DFW"))
    done = client.wait_for_task(task.id, 20 * DEADLINE)
    assert done.status == "success"
    assert tokens.token() != first


class LaggingClock:
    """Wall time a day behind: the manager believes its token is fresh when it is not."""

    def time(self) -> float:
        return SYSTEM_CLOCK.time() - 24 * 3600

    def monotonic(self) -> float:
        return SYSTEM_CLOCK.monotonic()

    def sleep(self, seconds: float) -> None:
        SYSTEM_CLOCK.sleep(seconds)


def test_an_expired_token_is_replaced_after_one_401(
    cloud: Cloud, short_tokens: float, clock: FastForwardClock, image_id: str
) -> None:
    tokens = cloud.tokens(clock=LaggingClock())
    client = ImageClient.for_region(tokens, "DFW", cloud.settings, clock=clock)
    stale = tokens.token()
    SYSTEM_CLOCK.sleep(short_tokens + 0.5)
    assert tokens.token() == stale  # no proactive refresh: only a 401 can reveal it
    assert client.get_image(image_id).id == image_id
    assert tokens.token() != stale


def _stored_objects(cloud: Cloud, count: int) -> tuple[ObjectStore, str, list[tuple[str, str]]]:
    """``count`` small objects in a new IAD container (written with a token that lives)."""
    tokens = cloud.tokens()
    container = make_container(tokens, "IAD")
    store = ObjectStore.from_settings(
        tokens.endpoint("object-store", "IAD"), tokens, cloud.settings, region="IAD"
    )
    for n in range(count):
        store.put_bytes(container, f"seg/{n:03d}", b"x" * 100)
    return store, container, [(container, f"seg/{n:03d}") for n in range(count)]


def _stale_token(cloud: Cloud) -> tuple[TokenManager, str]:
    """A manager (on a lagging clock) holding a 0.5 s token of the local Identity that has
    expired since; tokens it gets after that live as long as usual."""
    with cloud.local.admin.temporary_options(token_lifetime_seconds=0.5):
        tokens = cloud.tokens(clock=LaggingClock())
        stale = tokens.token()
    SYSTEM_CLOCK.sleep(0.5 + 0.5)
    assert tokens.token() == stale  # no proactive refresh: only Swift's refusal reveals it
    return tokens, stale


def test_a_bulk_delete_refused_for_an_expired_token_renews_it_and_deletes(cloud: Cloud) -> None:
    """Swift's bulk middleware checks the token on every delete inside the request, so a
    token that expires before or during it fails those deletes with 401 inside a 200 answer
    (the cleanup once reported it as ``ApiError 400``): that is a 401 of the request layer,
    so the token is renewed once and the refused objects deleted."""
    writer, container, objects = _stored_objects(cloud, 12)
    tokens, stale = _stale_token(cloud)
    store = ObjectStore.from_settings(writer.storage_url, tokens, cloud.settings, region="IAD")

    result = store.bulk_delete(objects)

    assert (result.deleted, result.not_found) == (12, 0)
    assert writer.list_objects(container) == []
    assert tokens.token() != stale


class StuckTokens:
    """A provider that hands out the same (dead) token even after it was invalidated."""

    def __init__(self, token: str) -> None:
        self.stale = token
        self.invalidated: list[str] = []

    def token(self) -> str:
        return self.stale

    def invalidate(self, stale: str) -> None:
        self.invalidated.append(stale)


def test_a_bulk_delete_refused_again_after_the_renewal_is_an_authentication_error(
    cloud: Cloud,
) -> None:
    """One renewal (the retry table's 401 row), not a loop: refused again, it raises an
    AuthenticationError (nobody retries it) and deletes nothing."""
    writer, container, objects = _stored_objects(cloud, 3)
    _, stale = _stale_token(cloud)
    stuck = StuckTokens(stale)
    store = ObjectStore.from_settings(writer.storage_url, stuck, cloud.settings, region="IAD")

    with pytest.raises(errors.AuthenticationError) as refused:
        store.bulk_delete(objects)

    message = str(refused.value)
    assert "IAD: POST" in message and "401 Unauthorized" in message
    assert "3 objects refused" in message and "the renewed token was refused too" in message
    assert stale not in message
    assert stuck.invalidated == [stale]
    assert len(writer.list_objects(container)) == 3
