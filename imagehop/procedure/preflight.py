"""Pre-flight: everything that can be known to fail, found before anything is created.

The rules are pure functions over the clients' records (catalogs, images, servers, flavors);
:func:`run_preflight` reads those records (GETs only) and applies the rules. Each failure is a
:class:`~imagehop.errors.PreflightError` (or an ``AuthenticationError`` for refused
credentials) whose message says what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from imagehop.access import ServiceCatalog, User
from imagehop.compute import Flavor, Server, pick_flavor
from imagehop.errors import (
    ForbiddenError,
    ForeignContainerError,
    ImageNotTransferableError,
    NotFoundError,
    PreflightError,
    RunKeyInUseError,
    UnknownRegionError,
)
from imagehop.glance import GlanceImages
from imagehop.image import Image, ImageClient, check_container_name, format_size
from imagehop.object_store import OWNED_CONTAINER_META, ObjectStore
from imagehop.procedure.registry import CloudClients, Side
from imagehop.procedure.request import (
    COPY_OF_PROPERTY,
    RUN_KEY_PROPERTY,
    SERVER_PROPERTY,
    SNAPSHOT_PROPERTY,
    BootRequest,
    TransferIdentity,
    TransferRequest,
)
from imagehop.procedure.steps import (
    check_coordinating_property,
    find_run_images,
    is_copy_for,
    is_snapshot_of,
)
from imagehop.procedure.transport import (
    WEB_DOWNLOAD,
    SideOffer,
    TransportChoice,
    choose_transport,
)
from imagehop.settings import Settings

GB = 1000**3
EXPORT_OPTIONS_PROPERTY = "com.rackspace__1__options"
#: Role names that may create export/import tasks ("Only users with the Admin role").
TASK_ROLES = frozenset({"admin", "identity:admin", "identity:user-admin", "cloudimages:admin"})


class SourceSummary(BaseModel):
    """What the transfer starts from, as far as can be known before it starts."""

    model_config = ConfigDict(frozen=True)

    image: Image | None = None  # the source image (None for a server: not imaged yet)
    server: Server | None = None
    base_image: Image | None = None  # the server's image, when this account can see it
    expected_bytes: int  # the image's size, or (server) its flavor's disk: an upper bound
    bytes_exact: bool
    min_disk: int
    min_ram: int

    @property
    def name(self) -> str:
        if self.image is not None:
            return self.image.name or self.image.id
        return self.server.name if self.server is not None else ""


class PreflightReport(BaseModel):
    """The checks that passed and the facts later steps use."""

    model_config = ConfigDict(frozen=True)

    source_tenant: str
    target_tenant: str
    source: SourceSummary
    boot_flavor: Flavor | None = None
    #: How the bytes move, and why (:func:`~imagehop.procedure.transport.choose_transport`).
    transport: TransportChoice
    checks: tuple[str, ...]


# -- rules ----------------------------------------------------------------------------------


def check_catalog(catalog: ServiceCatalog, region: str, services: Sequence[str], who: str) -> str:
    """Every service is offered in ``region``.

    Raises:
        UnknownRegionError: a region the catalog does not know names the regions that offer
            the service; a region the catalog lists for some services but not for all of
            them names the missing ones and the regions that offer every one.
    """
    missing = []
    for service in services:
        try:
            catalog.endpoint(service, region)
        except UnknownRegionError as error:
            missing.append(error)
    if not missing:
        return f"{region} offers {', '.join(services)} to the {who} account"
    code = region.upper()
    types = sorted({endpoint.service_type for endpoint in catalog.endpoints})
    if not any(code in _upper(catalog.regions(t)) for t in types):
        raise missing[0]  # a region the catalog does not know at all
    absent = [s for s in services if code not in _upper(catalog.regions(s))]
    present = [s for s in services if s not in absent]
    offers = f"offers {', '.join(present)} but no" if present else "offers no"
    everything = sorted(set.intersection(*(_upper(catalog.regions(s)) for s in services)))
    regions = f" (regions that do: {', '.join(everything)})" if everything else ""
    raise UnknownRegionError(
        f"region {code} {offers} {' and '.join(absent)} to the {who} account (the catalog "
        f"lists no {' or '.join(absent)} endpoint there): pick a {who} region that offers "
        f"{', '.join(services)}{regions}, or have {' and '.join(absent)} enabled for this "
        f"account in {code}"
    )


def _upper(regions: Sequence[str]) -> set[str]:
    return {region.upper() for region in regions}


def check_distinct(request: TransferRequest, source_tenant: str, target_tenant: str) -> str:
    """Source and target differ in region or in account."""
    if request.source_region == request.target_region and source_tenant == target_tenant:
        fix = "(or set IMAGEHOP_TARGET_USERNAME for another account)"
        if request.clouds.named:
            sides = (("source", request.source_cloud), ("target", request.target_cloud))
            named = (f"{side}_cloud {name!r}" for side, name in sides if name)
            fix = f"or another target_cloud ({', '.join(named)} logs in as the same account)"
        raise PreflightError(
            f"source and target are both {request.source_region} in the same account: pick "
            f"another target region {fix}"
        )
    return "source and target differ"


def check_containers(request: TransferRequest) -> str:
    """Both container names are ones the export and the import accept."""
    check_container_name(request.export_container, "export")
    check_container_name(request.import_container, "import")
    return f"container names {request.export_container!r}, {request.import_container!r} valid"


def check_staging_container(
    metadata: Mapping[str, str] | None, container: str, region: str, transport: TransportChoice
) -> str:
    """The container the copy stages into can carry imagehop's temporary-URL key, when the
    transport imports by ``web-download`` of a temporary URL (``metadata``: the container's
    headers, names in lower case; None: it does not exist yet, the copy creates it).

    imagehop sets that key only on a container it created (marked
    :data:`~imagehop.object_store.OWNED_CONTAINER_META`, see :mod:`imagehop.transfer.tempurl`),
    so a container of that name it did not create would be refused only after the copy.

    Raises:
        ForeignContainerError: the container exists and imagehop did not create it.
    """
    where = f"container {container!r} in {region}"
    if transport.target_import != WEB_DOWNLOAD:
        return f"{where}: no temporary URL needed ({transport.transport})"
    if metadata is None:
        return f"{where} does not exist yet: the copy creates it as imagehop's"
    if OWNED_CONTAINER_META in metadata:
        return f"{where} was created by imagehop: it may carry imagehop's temporary-URL key"
    marker = "-".join(part.capitalize() for part in OWNED_CONTAINER_META.split("-"))
    raise ForeignContainerError(
        f"{where} already exists and was not created by imagehop (it has no {marker} "
        f"metadata): the {transport.transport} transport has {region}'s Glance import the "
        "staged copy by web-download of a temporary URL on that container, and imagehop puts "
        "a temporary-URL key only on containers it created (it never changes one it did not "
        "make): name another container with the request's import_container option "
        f"(--import-container), or delete or rename {container!r} in {region}"
    )


def check_task_role(user: User, who: str) -> str:
    """The user may create export/import tasks (Cloud Images wants an admin role)."""
    roles = {role.lower() for role in user.roles}
    if roles & TASK_ROLES or any(role.endswith(":admin") for role in roles):
        return f"the {who} user may create tasks"
    raise PreflightError(
        f"user {user.name!r} ({who} account) has no admin role ({', '.join(sorted(roles))}); "
        "only admins may create export and import tasks: use an admin user"
    )


def check_image(image: Image, tenant: str, region: str, limit_bytes: int | None) -> str:
    """The image can be exported from ``region`` by ``tenant`` and imported elsewhere
    (``limit_bytes``: the target's import limit; None for a target without one)."""
    where = f"image {image.id} in {region}"
    if image.owner != tenant:
        raise ImageNotTransferableError(
            f"{where} belongs to {image.owner or 'the cloud'}, not to account {tenant}; only "
            "the owner can export it: boot a server from it, image that server and transfer "
            "the new image (the server as the source)"
        )
    if image.status != "active":
        raise ImageNotTransferableError(
            f"{where} is {image.status!r}, not 'active': wait until it is active, or pick "
            "another image"
        )
    check_exportable(image, where)
    if limit_bytes is not None:
        check_size(image.size or 0, image.min_disk or 0, limit_bytes, where)
    return f"{where} is owned, active and exportable, {image.size or 0} bytes"


def check_exportable(image: Image, where: str) -> None:
    """``com.rackspace__1__options`` must be ``"0"`` (licence restrictions otherwise)."""
    options = image.value_of(EXPORT_OPTIONS_PROPERTY)
    if options is not None and str(options) != "0":
        raise ImageNotTransferableError(
            f"{where} cannot be exported: {EXPORT_OPTIONS_PROPERTY} is {options!r}, not '0' "
            "(licence restrictions, e.g. Windows or Red Hat); it cannot leave its region"
        )


def check_size(nbytes: int, min_disk_gb: int, limit_bytes: int, where: str) -> None:
    """Size and ``min_disk`` within the target's import limit (the
    ``IMAGEHOP_IMPORT_SIZE_LIMIT_BYTES`` setting, quoted as it is)."""
    limit = format_size(limit_bytes)
    if nbytes > limit_bytes:
        raise ImageNotTransferableError(
            f"{where} is {format_size(nbytes)}, over the import limit of {limit}: "
            "image a server with a smaller system disk and transfer that"
        )
    if min_disk_gb * GB > limit_bytes:
        raise ImageNotTransferableError(
            f"{where} needs a {min_disk_gb} GB disk (min_disk), over the import limit of "
            f"{limit}: image a server whose system disk is at most {limit}"
        )


def check_server(server: Server, region: str) -> str:
    """The server can be imaged now."""
    if server.status != "ACTIVE":
        raise PreflightError(
            f"server {server.id} in {region} is {server.status}, not ACTIVE: wait until it "
            "is ACTIVE (a server in ERROR cannot be imaged)"
        )
    if server.task_state:
        raise PreflightError(
            f"server {server.id} in {region} is busy ({server.task_state}): wait until it "
            "has no task state"
        )
    return f"server {server.id} in {region} is ACTIVE"


def check_run_key(
    request: TransferRequest,
    identity: TransferIdentity,
    in_source: Sequence[Image],
    in_target: Sequence[Image],
) -> str:
    """The run key names no other transfer: every image carrying it is this source (or, for
    a server, a snapshot of it) in the source region, or a copy of this source in the target.

    ``in_source`` and ``in_target`` are the accounts' images carrying the run key. A copy
    without imagehop's markers (made before :data:`COPY_OF_PROPERTY` existed) counts as this
    transfer's only if this source already carries the run key.

    Raises:
        RunKeyInUseError: naming the image (or server) the run key belongs to, and what to do.
    """
    src, dst = request.source_region, request.target_region
    image_id, server_id = request.image_id, request.server_id
    ours = [
        image
        for image in in_source
        if image.id == image_id or (server_id is not None and is_snapshot_of(image, server_id))
    ]
    for image in in_source:
        if image not in ours:
            server = image.value_of(SNAPSHOT_PROPERTY)
            made_by = f"server {server}" if server is not None else f"image {image.id}"
            _run_key_in_use(request, identity, made_by, f"image {image.id} in {src}")
    for image in in_target:
        copy_of = image.value_of(COPY_OF_PROPERTY)
        server = image.value_of(SERVER_PROPERTY) if server_id is not None else None
        if is_copy_for(image, image_id, server_id) and (copy_of or server or ours):
            continue  # a copy of this source (markers), or of this source's earlier run
        owner = (
            f"server {server}"
            if server is not None and server != server_id
            else f"image {copy_of}"
            if copy_of is not None
            else None
        )
        _run_key_in_use(request, identity, owner, f"image {image.id} in {dst}")
    return f"run key {identity.run_key!r} names no other image's transfer"


def _run_key_in_use(
    request: TransferRequest, identity: TransferIdentity, owner: str | None, found: str
) -> None:
    key = identity.run_key
    this = f"image {request.image_id}" if request.image_id else f"server {request.server_id}"
    whose = f"the transfer of {owner}" if owner else "another transfer"
    resume = f", or transfer {owner} to resume that transfer" if owner else ""
    raise RunKeyInUseError(
        f"run key {key!r} already belongs to {whose}, not to this one of {this} ({found} carries "
        f"{RUN_KEY_PROPERTY}={key}); resuming would take that transfer's images for this "
        f"one: give another run key (or none, for the default){resume}"
    )


def choose_flavor(boot: BootRequest, flavors: Sequence[Flavor], min_disk: int, ram: int) -> Flavor:
    """The flavor named by ``boot`` (id or name), or the smallest that fits the image."""
    if boot.flavor is None:
        return pick_flavor(flavors, min_disk, ram)
    for flavor in flavors:
        if boot.flavor in (flavor.id, flavor.name):
            if flavor.disk < min_disk:
                raise PreflightError(
                    f"flavor {flavor.name} has a {flavor.disk} GB disk; the image needs "
                    f"{min_disk} GB (min_disk): pick a larger flavor"
                )
            return flavor
    names = ", ".join(sorted(f.id for f in flavors))
    raise PreflightError(f"no flavor {boot.flavor!r} in the target region (flavors: {names})")


# -- reading the facts -------------------------------------------------------------------------


def run_preflight(
    clients: CloudClients, request: TransferRequest, identity: TransferIdentity
) -> PreflightReport:
    """Read what the rules need (GET requests only) and apply every rule.

    Raises:
        AuthenticationError: the cloud refused the source or target credentials.
        PreflightError: a rule failed (subclasses say which kind).
    """
    src, dst = request.source_region, request.target_region
    source_tokens, target_tokens = clients.tokens("source"), clients.tokens("target")
    # object storage where the target has it (a missing image service is then named beside
    # it); where it has none, only a transport that stages the copy there is refused, below
    target_objects = offers(target_tokens.catalog, "object-store", dst)
    checks = [
        check_catalog(source_tokens.catalog, src, source_services(request, False), "source"),
        check_catalog(
            target_tokens.catalog, dst, target_services(request, target_objects), "target"
        ),
    ]
    source_tenant = _tenant(source_tokens.tenant_id, "source")
    target_tenant = _tenant(target_tokens.tenant_id, "target")
    checks.append(check_distinct(request, source_tenant, target_tenant))
    checks.append(check_containers(request))
    source_methods = clients.glance("source", src).import_methods()
    target_methods = clients.glance("target", dst).import_methods()
    if source_methods is None:  # Rackspace's export task, into the source's Cloud Files
        checks[0] = check_catalog(
            source_tokens.catalog, src, source_services(request, True), "source"
        )
        checks.append(check_task_role(source_tokens.user, "source"))
    if target_methods is None:  # Rackspace's import task and its size limit
        checks.append(check_task_role(target_tokens.user, "target"))
    settings = clients.settings()
    limit = settings.import_size_limit_bytes if target_methods is None else None
    source, source_checks = inspect_source(clients, request, identity, source_tenant, limit)
    checks += source_checks
    target_tempurl = (
        target_methods is not None
        and target_objects
        and clients.objects("target", dst).limits().tempurl
    )
    downloads = source_methods is None or may_download(clients.glance("source", src), source)
    try:
        transport = choose_transport(
            source_offer(src, source_methods, source, downloads),
            target_offer(dst, target_methods, target_tempurl, settings.target_allows_image_upload),
            shared_identity=shares_identity(settings),
        )
    except PreflightError:  # every other transport stages the copy there: say that first
        require_target_objects(target_tokens.catalog, dst, request, target_objects)
        raise
    checks.append(f"transport {transport.transport}: {transport.reason}")
    if transport.stages_segments:  # the copy's segments go into the target's object storage
        require_target_objects(target_tokens.catalog, dst, request, target_objects)
    if transport.target_import == WEB_DOWNLOAD:
        staging = staging_container_metadata(clients.objects("target", dst), request)
        checks.append(check_staging_container(staging, request.import_container, dst, transport))
    in_source = find_run_images(clients.images("source", src), identity.run_key, source_tenant)
    in_target = find_run_images(clients.images("target", dst), identity.run_key, target_tenant)
    checks.append(check_run_key(request, identity, in_source, in_target))
    flavor = None
    if request.boot is not None:
        flavors = clients.compute("target", dst).list_flavors()
        flavor = choose_flavor(request.boot, flavors, source.min_disk, source.min_ram)
        checks.append(f"{dst} can boot it on flavor {flavor.name}")
    return PreflightReport(
        source_tenant=source_tenant,
        target_tenant=target_tenant,
        source=source,
        boot_flavor=flavor,
        transport=transport,
        checks=tuple(checks),
    )


def source_services(request: TransferRequest, exports: bool) -> list[str]:
    """The services the source region must offer: images (and servers, to image one), and
    object storage only where the source exports (Rackspace's legacy cloud: its export task
    writes into Cloud Files); a Glance source's data is read from the Images API itself
    (ranged ``GET /v2/images/{id}/file``)."""
    return (
        ["image"]
        + (["object-store"] if exports else [])
        + (["compute"] if request.server_id else [])
    )


def target_services(request: TransferRequest, stages: bool) -> list[str]:
    """The services the target region must offer: images (and servers, to boot), and object
    storage only where the transport stages the copy's segments there (every transport but
    ``glance-download``, where the target's Glance pulls the image from the source's)."""
    return ["image"] + (["object-store"] if stages else []) + (["compute"] if request.boot else [])


def require_target_objects(
    catalog: ServiceCatalog, region: str, request: TransferRequest, offered: bool
) -> None:
    """Where the target region offers no object storage, refuse (naming it) a transport that
    stages the copy there; where it offers some, the target's catalog check already named it."""
    if not offered:
        check_catalog(catalog, region, target_services(request, True), "target")


def offers(catalog: ServiceCatalog, service: str, region: str) -> bool:
    """The catalog lists ``service`` in ``region`` (any case)."""
    return region.upper() in _upper(catalog.regions(service))


def staging_container_metadata(
    store: ObjectStore, request: TransferRequest
) -> dict[str, str] | None:
    """The import container's metadata (a HEAD), or None when it does not exist."""
    try:
        return store.container_metadata(request.import_container)
    except NotFoundError:
        return None


def source_offer(
    region: str, methods: frozenset[str] | None, source: SourceSummary, downloads: bool = True
) -> SideOffer:
    """What the source side offers: its import methods (None: Rackspace legacy), whether the
    image's data downloads, and its formats (a server's snapshot does not exist yet: unknown)."""
    image = source.image
    return SideOffer(
        region=region,
        import_methods=methods,
        image_download=downloads,
        disk_format=image.disk_format if image is not None else None,
        container_format=image.container_format if image is not None else None,
    )


def may_download(glance: GlanceImages, source: SourceSummary) -> bool:
    """The source image's data can be read: a one-byte ranged ``GET .../file`` is answered
    (False on 403, the cloud's download policy). A server's snapshot does not exist yet: True."""
    image = source.image
    if image is None or not image.size:
        return True
    try:
        reader = glance.open_range(image.id, 0, 1)
    except ForbiddenError:
        return False
    try:
        reader.read()
    finally:
        reader.close()
    return True


def target_offer(
    region: str, methods: frozenset[str] | None, tempurl: bool, image_upload: bool
) -> SideOffer:
    """What the target side offers: import methods, Swift's tempurl, the upload setting."""
    return SideOffer(
        region=region, import_methods=methods, tempurl=tempurl, image_upload=image_upload
    )


def shares_identity(settings: Settings) -> bool:
    """Both sides log in at one Identity (same URL, ``/v3`` or not) with one account: what
    ``glance-download`` needs (the target Glance reuses the caller's token at the source)."""

    def base(url: str) -> str:
        url = url.rstrip("/")
        return url.removesuffix("/v3").removesuffix("/v2.0")

    same_url = base(settings.identity_url) == base(settings.target_identity)
    return same_url and settings.source_credentials() == settings.target_credentials()


def inspect_source(
    clients: CloudClients,
    request: TransferRequest,
    identity: TransferIdentity,
    tenant: str,
    limit: int | None,
) -> tuple[SourceSummary, list[str]]:
    """The source image (or server) and the checks it passed."""
    region = request.source_region
    images = clients.images("source", region)
    if request.image_id is not None:
        image = get_image(images, request.image_id, region)
        check = check_image(image, tenant, region, limit)
        check_coordinating_property(image, identity, f"image {image.id} in {region}")
        summary = SourceSummary(
            image=image,
            expected_bytes=image.size or 0,
            bytes_exact=True,
            min_disk=image.min_disk or 0,
            min_ram=image.min_ram or 0,
        )
        return summary, [check]
    return _inspect_server(clients, request.server_id or "", region, limit)


def get_image(images: ImageClient, image_id: str, region: str) -> Image:
    """The image, or ImageNotTransferableError when it does not exist (for this account)."""
    try:
        return images.get_image(image_id)
    except NotFoundError as exc:
        raise ImageNotTransferableError(
            f"image {image_id} does not exist in {region} (or this account cannot see it): "
            "check the image id and the source region",
            exc.request_id,
        ) from None


def _inspect_server(
    clients: CloudClients, server_id: str, region: str, limit: int | None
) -> tuple[SourceSummary, list[str]]:
    compute = clients.compute("source", region)
    try:
        server = compute.get_server(server_id)
    except NotFoundError as exc:
        raise PreflightError(
            f"server {server_id} does not exist in {region} (or this account cannot see it): "
            "check the server id and the source region",
            exc.request_id,
        ) from None
    checks = [check_server(server, region)]
    base = _visible_image(clients, region, server.image_id)
    if base is not None:
        check_exportable(base, f"server {server_id}'s image {base.id}")
        checks.append(f"the server's image {base.id} is exportable")
    flavor = next((f for f in compute.list_flavors() if f.id == server.flavor_id), None)
    disk_gb = flavor.disk if flavor is not None else (base.min_disk or 0) if base else 0
    if limit is not None:
        check_size(disk_gb * GB, disk_gb, limit, f"server {server_id}'s disk")
    summary = SourceSummary(
        server=server,
        base_image=base,
        expected_bytes=disk_gb * GB,
        bytes_exact=False,
        min_disk=disk_gb,
        min_ram=(base.min_ram or 0) if base else 0,
    )
    return summary, checks


def _visible_image(clients: CloudClients, region: str, image_id: str | None) -> Image | None:
    if not image_id:
        return None
    try:
        return clients.images("source", region).get_image(image_id)
    except NotFoundError:
        return None


def _tenant(tenant_id: str | None, side: Side) -> str:
    if not tenant_id:
        raise PreflightError(f"the {side} account's token names no tenant; check the user")
    return tenant_id
