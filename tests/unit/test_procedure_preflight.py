"""Pre-flight rules as pure functions over the clients' records."""

from __future__ import annotations

from typing import Any

import pytest

from imagehop.compute import Flavor, Server
from imagehop.errors import (
    ForeignContainerError,
    ForeignPropertyError,
    ImageNotTransferableError,
    InvalidContainerNameError,
    PreflightError,
    RunKeyInUseError,
    UnknownRegionError,
)
from imagehop.identity import Endpoint, ServiceCatalog, User
from imagehop.image import Image
from imagehop.procedure.preflight import (
    GB,
    check_catalog,
    check_containers,
    check_distinct,
    check_image,
    check_run_key,
    check_server,
    check_staging_container,
    check_task_role,
    choose_flavor,
    source_services,
    target_services,
)
from imagehop.procedure.request import (
    COORDINATING_KEY_PROPERTY,
    COPY_OF_PROPERTY,
    RUN_KEY_PROPERTY,
    SERVER_PROPERTY,
    SNAPSHOT_PROPERTY,
    BootRequest,
    TransferIdentity,
    TransferRequest,
)
from imagehop.procedure.steps import check_coordinating_property
from imagehop.procedure.transport import TransportChoice

LIMIT = 160 * GB
FLAVORS = [Flavor("small", "1 GB", 1024, 20, 1), Flavor("big", "8 GB", 8192, 160, 4)]


def image(**fields: Any) -> Image:
    values: dict[str, Any] = {
        "id": "img-1",
        "name": "web",
        "status": "active",
        "owner": "t1",
        "size": 10 * GB,
        "min_disk": 20,
        "properties": {"com.rackspace__1__options": "0"},
    }
    return Image(**{**values, **fields})


def request(**fields: Any) -> TransferRequest:
    return TransferRequest(
        **{"source_region": "DFW", "target_region": "IAD", "image_id": "img-1", **fields}
    )


def test_an_owned_active_exportable_image_passes() -> None:
    assert "owned, active and exportable" in check_image(image(), "t1", "DFW", LIMIT)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"owner": "rackspace"}, "only the owner can export it"),
        ({"status": "saving"}, "not 'active'"),
        ({"properties": {"com.rackspace__1__options": "1"}}, "licence restrictions"),
        ({"size": 161 * GB}, "over the import limit of 160 GB"),
        ({"min_disk": 320}, "needs a 320 GB disk"),
    ],
)
def test_images_that_cannot_be_transferred(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ImageNotTransferableError, match=says):
        check_image(image(**fields), "t1", "DFW", LIMIT)


def test_region_missing_from_the_catalog_names_the_regions_that_exist() -> None:
    catalog = ServiceCatalog(
        tuple(
            Endpoint("cloudImages", "image", r, f"https://{r}", None, "t1") for r in ("DFW", "IAD")
        )
    )
    assert "DFW offers image" in check_catalog(catalog, "DFW", ["image"], "source")
    with pytest.raises(UnknownRegionError, match="regions that do: DFW, IAD"):
        check_catalog(catalog, "ORD", ["image"], "target")


def test_a_region_listed_for_some_services_only_names_the_missing_one() -> None:
    endpoints = [
        Endpoint(name, kind, region, f"https://{kind}.{region}", None, "t1")
        for name, kind, regions in [
            ("cloudFiles", "object-store", ("DFW", "IAD", "ORD")),
            ("cloudImages", "image", ("DFW", "ORD")),
        ]
        for region in regions
    ]
    catalog = ServiceCatalog(tuple(endpoints))
    with pytest.raises(UnknownRegionError) as refused:
        check_catalog(catalog, "iad", ["image", "object-store"], "target")
    assert str(refused.value) == (
        "region IAD offers object-store but no image to the target account (the catalog lists "
        "no image endpoint there): pick a target region that offers image, object-store "
        "(regions that do: DFW, ORD), or have image enabled for this account in IAD"
    )
    with pytest.raises(UnknownRegionError, match=r"regions that do: DFW, IAD, ORD$"):
        check_catalog(catalog, "SYD", ["object-store"], "target")  # unknown: as before


def test_same_region_is_only_fine_across_accounts() -> None:
    same = request(target_region="DFW")
    with pytest.raises(PreflightError, match="same account"):
        check_distinct(same, "t1", "t1")
    assert check_distinct(same, "t1", "t2")


@pytest.mark.parametrize(("export", "bad"), [("a.b", "'.'"), ("a/b", "'/'"), ("", "empty")])
def test_container_names_the_export_rejects(export: str, bad: str) -> None:
    """(A request refuses an empty name itself; pre-flight also checks one made unchecked.)"""
    unchecked = request().model_copy(update={"export_container": export})
    with pytest.raises(InvalidContainerNameError, match=f"export container name.*{bad}"):
        check_containers(unchecked)


def test_a_bad_import_container_is_named_as_the_import_container() -> None:
    with pytest.raises(InvalidContainerNameError, match=r"^import container name 'a\.b'"):
        check_containers(request(import_container="a.b"))


def test_import_container_is_checked_too() -> None:
    with pytest.raises(InvalidContainerNameError):
        check_containers(request(import_container="my.imports"))


@pytest.mark.parametrize(
    ("roles", "allowed"),
    [
        (("identity:user-admin",), True),
        (("admin",), True),
        (("cloudImages:admin", "identity:default"), True),
        (("identity:default", "cloudImages:observer"), False),
    ],
)
def test_only_admins_may_create_tasks(roles: tuple[str, ...], allowed: bool) -> None:
    user = User("u1", "alice", "DFW", roles)
    if allowed:
        assert check_task_role(user, "source")
    else:
        with pytest.raises(PreflightError, match="only admins"):
            check_task_role(user, "source")


@pytest.mark.parametrize(
    ("status", "task_state", "says"),
    [("SHUTOFF", None, "not ACTIVE"), ("ACTIVE", "image_snapshot", "busy")],
)
def test_servers_that_cannot_be_imaged_now(status: str, task_state: str | None, says: str) -> None:
    with pytest.raises(PreflightError, match=says):
        check_server(Server("s1", "web", status, task_state), "DFW")


def test_flavor_defaults_to_the_smallest_that_fits() -> None:
    assert choose_flavor(BootRequest(), FLAVORS, 20, 512).id == "small"
    assert choose_flavor(BootRequest(), FLAVORS, 40, 512).id == "big"
    assert choose_flavor(BootRequest(flavor="8 GB"), FLAVORS, 20, 512).id == "big"


@pytest.mark.parametrize(
    ("flavor", "says"), [("small", "pick a larger flavor"), ("x", "no flavor")]
)
def test_named_flavor_must_exist_and_fit(flavor: str, says: str) -> None:
    with pytest.raises(PreflightError, match=says):
        choose_flavor(BootRequest(flavor=flavor), FLAVORS, 40, 512)


# -- the coordinating property is imagehop's own, or left alone -------------------------------

IDENTITY = TransferIdentity(
    run_key="img-1", coordinating_key="com.mycompany.image-of", coordinating_value="img-1"
)


def tagged(**properties: str) -> Image:
    return image(properties=properties)


@pytest.mark.parametrize(
    "properties",
    [
        {},
        {"com.mycompany.image-of": "img-1"},  # this transfer's value already
        {"com.mycompany.image-of": "old", COORDINATING_KEY_PROPERTY: "com.mycompany.image-of"},
        {"com.mycompany.image-of": "k-0", RUN_KEY_PROPERTY: "k-0"},  # tagged by an older imagehop
    ],
    ids=["absent", "same value", "marked as imagehop's", "older imagehop's"],
)
def test_imagehops_own_coordinating_value_may_be_replaced(properties: dict[str, str]) -> None:
    check_coordinating_property(tagged(**properties), IDENTITY, "image img-1")


@pytest.mark.parametrize(
    "properties",
    [
        {"com.mycompany.image-of": "billing-db"},
        {"com.mycompany.image-of": "billing-db", RUN_KEY_PROPERTY: "k-0"},
        {"com.mycompany.image-of": "billing-db", COORDINATING_KEY_PROPERTY: "com.other.key"},
    ],
    ids=["unmarked", "run key of another value", "marker for another key"],
)
def test_a_value_imagehop_did_not_write_is_refused(properties: dict[str, str]) -> None:
    with pytest.raises(ForeignPropertyError) as refused:
        check_coordinating_property(tagged(**properties), IDENTITY, "image img-1 in DFW")
    message = str(refused.value)
    assert "com.mycompany.image-of='billing-db'" in message
    assert "imagehop did not write" in message and "choose another coordinating property" in message
    assert isinstance(refused.value, PreflightError)  # before any side effect: exit code 3


def test_a_small_import_limit_is_quoted_as_it_is() -> None:
    """The limit setting (the local cloud uses MiB), not a rounded '0 GB'."""
    with pytest.raises(ImageNotTransferableError, match=r"over the import limit of 1\.049 MB"):
        check_image(image(size=2 * 1024 * 1024), "t1", "DFW", 1024 * 1024)


# -- a run key reused for another source ------------------------------------------------------

KEY = "nightly"
COPY = {COPY_OF_PROPERTY: "img-1"}  # a copy of img-1
SERVER = {SERVER_PROPERTY: "srv-1"}  # of a transfer of server srv-1
SNAPSHOT = {SNAPSHOT_PROPERTY: "srv-1", **SERVER}  # imagehop's snapshot of srv-1


def carrying(image_id: str, marks: dict[str, str] | None = None) -> Image:
    """An image carrying the run key ``KEY`` and these markers."""
    return image(id=image_id, properties={RUN_KEY_PROPERTY: KEY, **(marks or {})})


def run_key_check(in_source: list[Image], in_target: list[Image], server: bool = False) -> str:
    """check_run_key for img-1 (or server srv-1) with run key ``KEY``."""
    source = {"image_id": None, "server_id": "srv-1"} if server else {}
    req = request(run_key=KEY, **source)
    identity = TransferIdentity(
        run_key=KEY, coordinating_key="com.imagehop.image-of", coordinating_value=KEY,
        server_id=req.server_id,
    )  # fmt: skip
    return check_run_key(req, identity, in_source, in_target)


@pytest.mark.parametrize(
    ("in_source", "in_target", "server"),
    [
        ([], [], False),
        ([carrying("img-1")], [], False),  # this image's transfer, half-way
        ([carrying("img-1")], [carrying("new-1", COPY)], False),  # finished
        ([], [carrying("new-1", COPY)], False),  # finished, the source's tag removed since
        ([carrying("img-1")], [carrying("new-1")], False),  # a copy made before copy-of existed
        ([carrying("snap-1", SNAPSHOT)], [carrying("new-1", SERVER)], True),
        ([carrying("snap-1", {"instance_uuid": "srv-1"})], [carrying("new-1")], True),
    ],
    ids=["new", "half-way", "finished", "source untagged", "older copy", "server", "older server"],
)
def test_a_run_key_of_this_source_passes(
    in_source: list[Image], in_target: list[Image], server: bool
) -> None:
    assert "names no other image's transfer" in run_key_check(in_source, in_target, server)


@pytest.mark.parametrize(
    ("in_source", "in_target", "server", "says"),
    [
        ([carrying("img-0")], [], False, "of image img-0, not to this one of image img-1"),
        ([], [carrying("new-0", {COPY_OF_PROPERTY: "img-0"})], False, "of image img-0"),
        ([], [carrying("new-0")], False, "another transfer, not to this one of image img-1"),
        ([carrying("snap-0", SNAPSHOT)], [], False, "the transfer of server srv-1"),
        ([carrying("img-0")], [], True, "of image img-0, not to this one of server srv-1"),
        ([], [carrying("new-0", COPY)], True, "the transfer of image img-1"),
        ([], [carrying("new-0", {SERVER_PROPERTY: "srv-0"})], True, "of server srv-0"),
    ],
    ids=["image's source", "image's copy", "unmarked copy", "server's snapshot",
         "image for a server", "image's copy for a server", "another server's copy"],
)  # fmt: skip
def test_a_run_key_of_another_source_is_refused_naming_it(
    in_source: list[Image], in_target: list[Image], server: bool, says: str
) -> None:
    with pytest.raises(RunKeyInUseError) as refused:
        run_key_check(in_source, in_target, server)
    message = str(refused.value)
    assert says in message and "give another run key (or none, for the default)" in message
    assert isinstance(refused.value, PreflightError)  # exit code 3, before any side effect


def _transport(transport: str, target_import: str) -> TransportChoice:
    return TransportChoice.model_validate(
        {"transport": transport, "reason": "", "source_export": False,
         "target_import": target_import}
    )  # fmt: skip


WEB = _transport("stream", "web-download")
OWNED = {"x-container-meta-imagehop-created": "1767225600", "x-container-object-count": "3"}


@pytest.mark.parametrize(
    ("metadata", "says"),
    [(None, "does not exist yet"), (OWNED, "was created by imagehop")],
    ids=["missing", "imagehop's"],
)
def test_a_missing_or_imagehop_made_staging_container_passes(
    metadata: dict[str, str] | None, says: str
) -> None:
    assert says in check_staging_container(metadata, "imports", "IAD", WEB)


def test_a_staging_container_imagehop_did_not_make_is_refused_for_a_temporary_url() -> None:
    foreign = {"x-container-meta-owner": "ops", "x-container-object-count": "1"}
    with pytest.raises(ForeignContainerError) as refused:
        check_staging_container(foreign, "imports", "IAD", WEB)
    message = str(refused.value)
    assert message.startswith("container 'imports' in IAD already exists and was not created")
    assert "(it has no X-Container-Meta-Imagehop-Created metadata)" in message
    assert "web-download of a temporary URL" in message
    assert "imagehop puts a temporary-URL key only on containers it created" in message
    assert "--import-container), or delete or rename 'imports' in IAD" in message


@pytest.mark.parametrize(
    ("transport", "target_import"),
    [("stream-stage", "glance-direct"), ("single-put", "put-file"),
     ("rackspace-tasks", "import-task"), ("stream-import-task", "import-task")],
)  # fmt: skip
def test_a_transport_without_a_temporary_url_takes_any_staging_container(
    transport: str, target_import: str
) -> None:
    foreign = {"x-container-meta-owner": "ops"}
    choice = _transport(transport, target_import)
    assert "no temporary URL needed" in check_staging_container(foreign, "imports", "IAD", choice)


def test_only_an_exporting_source_needs_object_storage() -> None:
    """Rackspace's export task writes into the source's Cloud Files; a Glance source's data
    is read from its Images API."""
    assert source_services(request(), exports=True) == ["image", "object-store"]
    assert source_services(request(), exports=False) == ["image"]
    server = request(image_id=None, server_id="srv-1")
    assert source_services(server, exports=True) == ["image", "object-store", "compute"]
    assert source_services(server, exports=False) == ["image", "compute"]


def test_only_a_target_that_stages_the_copy_needs_object_storage() -> None:
    """Every transport but glance-download stages segments in the target's object storage;
    with glance-download the target's Glance pulls the image from the source's."""
    assert target_services(request(), stages=True) == ["image", "object-store"]
    assert target_services(request(), stages=False) == ["image"]
