"""Which transport moves the image, chosen from what each side advertises (pure rules).

A side is Rackspace's legacy cloud when its Images API serves no ``GET /v2/info/import``
(Cloud Images: export and import *tasks* are its only data path); any other side is upstream
Glance and says which interoperable import methods it takes. :func:`choose_transport` picks,
in this order (Glance's interoperable image import and image data API references):

* ``rackspace-tasks``: both sides legacy; export task, parallel segment copy, import task;
* ``glance-download``: the target advertises it and both sides log in through one Identity
  with one account (Glance reuses the caller's token in the other region); one server-side
  call, verified afterwards by comparing the images' hashes;
* ``stream``: the source's bytes (an export's segments, or ranged ``GET /v2/images/{id}/file``)
  stream in parallel into segments in the target's object storage, which the target Glance
  then pulls by ``web-download`` of a temporary URL (needs the target Swift's ``tempurl``);
* ``stream-stage`` / ``single-put``: the same parallel, resumable segment copy, then one
  stream of the staged object into ``PUT .../stage`` + ``glance-direct``, or into
  ``PUT .../file`` (never advertised: only when a setting says the cloud allows it);
* ``stream-import-task``: a generic source into a legacy target: the image's VHD streams into
  the target's Cloud Files and its import task imports it;
* nothing fits: :class:`~imagehop.errors.PreflightError` saying what was found and what the
  user can ask for or set.

Reasons are whole sentences for a CLI line, a dry-run table row or a run's state message.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from imagehop.errors import PreflightError
from imagehop.procedure.request import EXPORT_DISK_FORMAT, segments_container

Transport = Literal[
    "rackspace-tasks",
    "glance-download",
    "stream",
    "stream-stage",
    "single-put",
    "stream-import-task",
]
#: How the target side turns the staged bytes (or the remote image) into an image.
TargetImport = Literal[
    "import-task", "glance-download", "web-download", "glance-direct", "put-file"
]

WEB_DOWNLOAD = "web-download"
GLANCE_DIRECT = "glance-direct"
GLANCE_DOWNLOAD = "glance-download"
#: The setting that allows ``PUT /v2/images/{id}/file`` on the target (no cloud advertises it).
UPLOAD_SETTING = "IMAGEHOP_TARGET_ALLOWS_IMAGE_UPLOAD"
#: What the target image is created as for a Rackspace export (a VHD,
#: :data:`~imagehop.procedure.request.EXPORT_DISK_FORMAT`).
EXPORT_CONTAINER_FORMAT = "bare"


class SideOffer(BaseModel):
    """What one side of a transfer advertises (read by pre-flight with GET requests only)."""

    model_config = ConfigDict(frozen=True)

    region: str
    #: ``GET /v2/info/import``'s methods; None: the region serves none (Rackspace legacy).
    import_methods: frozenset[str] | None
    #: Source: ``GET /v2/images/{id}/file`` of the image is allowed (not asked: True).
    image_download: bool = True
    #: Target: its object storage has the ``tempurl`` middleware (``GET /info``).
    tempurl: bool = False
    #: Target: ``PUT /v2/images/{id}/file`` is allowed (the :data:`UPLOAD_SETTING`).
    image_upload: bool = False
    #: Source: the image's formats (a legacy export is always vhd/bare).
    disk_format: str | None = None
    container_format: str | None = None

    @property
    def legacy(self) -> bool:
        """Rackspace's legacy Cloud Images (no interoperable import)."""
        return self.import_methods is None


class TransportChoice(BaseModel):
    """The transport, why, and what the steps need to know to run it."""

    model_config = ConfigDict(frozen=True)

    transport: Transport
    reason: str
    #: The source exports the image with a Rackspace export task (a VHD in Cloud Files).
    source_export: bool
    target_import: TargetImport
    #: The target image's formats (None: the import task decides, as on Rackspace).
    disk_format: str | None = None
    container_format: str | None = None
    #: What the target needs to boot the image, stated plainly (never a guess).
    notes: tuple[str, ...] = ()

    @property
    def stages_segments(self) -> bool:
        """Bytes go through segments in the target's object storage (all but glance-download)."""
        return self.transport != "glance-download"

    @property
    def staged_format(self) -> str | None:
        """The disk format of the bytes staged in the target (it names the staged object,
        :func:`~imagehop.procedure.request.staged_object`): a Rackspace export's VHD, the VHD a
        Rackspace import task takes, else the source image's format; None: not known yet (a
        server's snapshot in a Glance source: the cloud picks its format)."""
        if self.source_export or self.target_import == "import-task":
            return EXPORT_DISK_FORMAT
        return self.disk_format


def choose_transport(
    source: SideOffer, target: SideOffer, *, shared_identity: bool
) -> TransportChoice:
    """The transport for ``source`` -> ``target``.

    Args:
        shared_identity: both sides log in at the same Identity URL with the same account.

    Raises:
        PreflightError: no transport works; the message says what was found and what to do.
    """
    src, dst = source.region, target.region
    if source.legacy and target.legacy:
        return TransportChoice(
            transport="rackspace-tasks",
            reason=f"{src} and {dst} serve no /v2/info/import (Rackspace Cloud Images): "
            f"export task in {src}, parallel segment copy, import task in {dst}",
            source_export=True,
            target_import="import-task",
        )
    if not source.legacy and not source.image_download:
        raise PreflightError(
            f"{src} refuses to download this image's data (GET /v2/images/{{id}}/file): every "
            "transport out of an OpenStack Glance reads it; ask the cloud operator to allow "
            "image download for your images (Glance policy download_image)"
        )
    if target.legacy:
        return _into_legacy(source, target)
    return _into_glance(source, target, shared_identity)


def _into_legacy(source: SideOffer, target: SideOffer) -> TransportChoice:
    """A generic source into Rackspace's legacy cloud: its import task takes VHD only."""
    src, dst = source.region, target.region
    if source.disk_format != EXPORT_DISK_FORMAT:
        raise PreflightError(
            f"{dst} is Rackspace Cloud Images (no /v2/info/import): its import task takes VHD "
            f"images only, and the image in {src} is {source.disk_format or 'of no format'}: "
            f"convert it to a dynamic VHD (qemu-img convert -O vpc) in {src} first, or pick "
            "an OpenStack target"
        )
    return TransportChoice(
        transport="stream-import-task",
        reason=f"{dst} serves no /v2/info/import (Rackspace Cloud Images) and {src} is "
        f"OpenStack Glance: the VHD streams from {src}'s image data into segments in {dst}'s "
        f"Cloud Files, then {dst}'s import task imports it",
        source_export=False,
        target_import="import-task",
    )


def _into_glance(source: SideOffer, target: SideOffer, shared_identity: bool) -> TransportChoice:
    """Into an OpenStack Glance: glance-download, else segments then one import method."""
    src, dst = source.region, target.region
    methods = target.import_methods or frozenset()
    found = _methods_found(target)
    disk: str | None = EXPORT_DISK_FORMAT
    container: str | None = EXPORT_CONTAINER_FORMAT
    if source.legacy:
        read = f"{src} is Rackspace Cloud Images: it exports a VHD, whose segments stream"
        notes = legacy_image_notes(src, dst)
    else:
        disk, container = source.disk_format, source.container_format
        read = f"ranged reads of {src}'s image data stream in parallel"
        notes = ()

    def choice(transport: Transport, target_import: TargetImport, reason: str) -> TransportChoice:
        return TransportChoice(
            transport=transport,
            reason=reason,
            source_export=source.legacy,
            target_import=target_import,
            disk_format=disk,
            container_format=container,
            notes=notes,
        )

    if not source.legacy and GLANCE_DOWNLOAD in methods and shared_identity:
        return choice(
            "glance-download",
            "glance-download",
            f"{found}; both regions log in at one Identity with one account: {dst} pulls "
            f"the image from {src} itself (one call, server-side), then imagehop compares "
            "the images' hashes",
        )
    why_not = _why_not_glance_download(source, methods, shared_identity)
    if WEB_DOWNLOAD in methods and target.tempurl:
        return choice(
            "stream",
            "web-download",
            f"{found}{why_not}: {read} into segments in {dst}'s object storage, "
            f"which {dst}'s Glance imports by web-download of a temporary URL",
        )
    why_not += _why_not_web_download(target, methods)
    if GLANCE_DIRECT in methods:
        return choice(
            "stream-stage",
            "glance-direct",
            f"{found}{why_not}: {read} into segments in {dst}'s object storage, then "
            "one stream of them is staged (PUT .../stage) and imported by glance-direct",
        )
    if target.image_upload:
        return choice(
            "single-put",
            "put-file",
            f"{found}{why_not}, no glance-direct; {UPLOAD_SETTING} is set: {read} into "
            f"segments in {dst}'s object storage, then one stream of them is uploaded "
            "(PUT .../file)",
        )
    raise PreflightError(
        f"{found}{why_not}, no glance-direct: imagehop has no way to put the image into {dst}; "
        f"ask the cloud operator to enable web-download or glance-direct in {dst} (Glance's "
        f"enabled_import_methods), or set {UPLOAD_SETTING}=true if {dst} allows "
        "PUT /v2/images/{id}/file"
    )


def _methods_found(target: SideOffer) -> str:
    methods = sorted(target.import_methods or ())
    listed = ", ".join(methods) if methods else "none"
    return f"{target.region} offers the import methods {listed} (GET /v2/info/import)"


def _why_not_glance_download(
    source: SideOffer, methods: frozenset[str], shared_identity: bool
) -> str:
    if GLANCE_DOWNLOAD not in methods:
        return ""
    if source.legacy:
        return f"; glance-download cannot read {source.region} (Rackspace Cloud Images)"
    if not shared_identity:
        return (
            "; glance-download needs both regions behind one Identity with one account (it "
            "reuses the caller's token in the other region), and these log in separately"
        )
    return ""


def _why_not_web_download(target: SideOffer, methods: frozenset[str]) -> str:
    if WEB_DOWNLOAD not in methods:
        return ", no web-download"
    return (
        f"; web-download needs a temporary URL and {target.region}'s object storage has no "
        "tempurl middleware (GET /info)"
    )


def legacy_image_notes(source_region: str, target_region: str) -> tuple[str, ...]:
    """What booting an image exported by Rackspace's legacy cloud needs in an OpenStack target:
    the facts imagehop knows, and that it checks nothing else."""
    return (
        f"the image arrives in {target_region} as exported by {source_region}: a VHD "
        f"(disk_format={EXPORT_DISK_FORMAT}, container_format={EXPORT_CONTAINER_FORMAT}), "
        "unconverted",
        f"imagehop does not know whether {target_region}'s compute boots VHD images, nor "
        "whether the guest has the drivers its hypervisor needs (the cloud advertises "
        "neither): check the cloud's documentation; converting (e.g. qemu-img convert "
        "-O qcow2) and installing drivers are up to you",
    )


def segments_for(import_container: str, choice: TransportChoice | None) -> str:
    """Where the staged copy's segments go: beside the manifest for a ``web-download`` (a
    temporary URL's container key reaches that container only), else ``<container>_segments``
    (Rackspace's import task and the one-stream fallbacks read the manifest with a token)."""
    if choice is not None and choice.target_import == "web-download":
        return import_container
    return segments_container(import_container)
