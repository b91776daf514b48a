"""The side-effecting steps of the procedure, each one *find, else create*.

A Prefect cache can be lost or live on another machine, so before creating anything each step
looks at the cloud for what an earlier run with the same run key left:

* snapshot: an image of this account carrying the run key that is a snapshot of that server
  (createImage sets the run key, and marks the image as imagehop's own snapshot of that
  server, :data:`SNAPSHOT_PROPERTY`);
* export: an unfinished export task of this image into this container, else the exported
  ``<image id>.vhd`` already in the container;
* import: an image in the target already tagged with the run key and a copy of this source
  (done, :func:`is_copy_for`), else an import task (unfinished, or finished with an image
  nobody has claimed) reading the same location.

The export and the staged copy are named after the source image id, so they cannot be another
image's. The images found by the run key can be: a run key given for another image first
(``run_key=``) marks that image and its copy. Pre-flight refuses such a request
(:func:`imagehop.procedure.preflight.check_run_key`); the steps check too, and never take
another source's snapshot or copy for this one.

Every function takes the clients it needs and returns a small picklable record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait

from pydantic import BaseModel, ConfigDict

from imagehop.clock import parse_timestamp
from imagehop.compute import ComputeClient
from imagehop.errors import ForbiddenError, ForeignPropertyError, NotFoundError
from imagehop.image import IMAGE_FAILED_STATUSES, Image, ImageClient, PropertyValue, Task
from imagehop.object_store import ObjectStore
from imagehop.procedure.request import (
    COORDINATING_KEY_EXAMPLE,
    COORDINATING_KEY_PROPERTY,
    COPY_OF_PROPERTY,
    RUN_KEY_PROPERTY,
    SERVER_PROPERTY,
    SNAPSHOT_PROPERTY,
    TransferIdentity,
    exported_object,
    is_staged_name,
    segments_container,
    staged_segments_prefix,
)
from imagehop.procedure.result import PropertyReport, SkippedProperty

UNFINISHED = ("pending", "processing")
#: Allowed difference between the object store's and the Images API's clocks.
CLOCK_SLACK_SECONDS = 600.0


class SnapshotOutcome(BaseModel):
    """The server's image for this run key; ``created`` is False when an earlier run made it."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    created: bool


class ExportOutcome(BaseModel):
    """Where the exported VHD is (or will be) and the task writing it, if any."""

    model_config = ConfigDict(frozen=True)

    location: str  # <container>/<image id>.vhd
    task_id: str | None = None
    finished: bool = False  # nothing left to wait for
    reused: str | None = None  # what an earlier run left that this run reuses


class ImportOutcome(BaseModel):
    """The import task (if one runs) and the new image (once known)."""

    model_config = ConfigDict(frozen=True)

    task_id: str | None = None
    image_id: str | None = None
    finished: bool = False
    reused: str | None = None


# -- snapshot -------------------------------------------------------------------------------


def find_run_images(images: ImageClient, run_key: str, owner: str) -> list[Image]:
    """Usable images of ``owner`` carrying ``run_key``, newest first."""
    found = images.find_images_by_property(RUN_KEY_PROPERTY, run_key)
    usable = [i for i in found if i.owner == owner and i.status not in IMAGE_FAILED_STATUSES]
    return sorted(usable, key=lambda image: image.created_at or "", reverse=True)


def is_snapshot_of(image: Image, server_id: str) -> bool:
    """The image is a snapshot of that server (imagehop's marker, or the cloud's
    ``instance_uuid`` for snapshots made before the marker existed)."""
    return server_id in (image.value_of(SNAPSHOT_PROPERTY), image.value_of("instance_uuid"))


def is_copy_for(image: Image, source_image_id: str | None, server_id: str | None) -> bool:
    """False if the image's markers say it is a copy of another source image, or of another
    server (or, for a server transfer, of an image given by id).

    ``source_image_id`` is None where it is not known yet (a server not imaged yet). A copy
    without markers (made before :data:`COPY_OF_PROPERTY` existed) is not ruled out here.
    """
    copy_of = _text(image.value_of(COPY_OF_PROPERTY))
    server = _text(image.value_of(SERVER_PROPERTY))
    if source_image_id is not None and copy_of not in (None, source_image_id):
        return False
    if server_id is not None:
        return server == server_id if server is not None else copy_of is None
    return True


def _text(value: PropertyValue | None) -> str | None:
    return None if value is None else str(value)


def ensure_snapshot(
    compute: ComputeClient,
    images: ImageClient,
    server_id: str,
    name: str,
    identity: TransferIdentity,
    owner: str,
) -> SnapshotOutcome:
    """The image of ``server_id`` for this run key: an earlier run's, else a new one."""
    for image in find_run_images(images, identity.run_key, owner):
        if is_snapshot_of(image, server_id):
            return SnapshotOutcome(image_id=image.id, created=False)
    metadata = {**identity.tags, SNAPSHOT_PROPERTY: server_id}  # only imagehop's snapshots
    image_id = compute.create_server_image(server_id, name, metadata)
    return SnapshotOutcome(image_id=image_id, created=True)


# -- export ---------------------------------------------------------------------------------


def find_unfinished_task(
    images: ImageClient, task_type: str, matches: Mapping[str, str]
) -> Task | None:
    """The newest unfinished task of ``task_type`` whose input has these values."""
    return next(iter(_tasks_with_input(images, task_type, matches, UNFINISHED)), None)


def _tasks_with_input(
    images: ImageClient,
    task_type: str,
    matches: Mapping[str, str],
    statuses: Iterable[str],
    created_after: float | None = None,
) -> list[Task]:
    """Tasks (full records, newest first) of that type and status whose input matches.

    A task listing carries no input, so each candidate is read once (which counts as a poll
    of that task; the poll ledger spaces a later wait accordingly); ``created_after`` (epoch
    seconds) rules out older tasks without reading them.
    """
    wanted = set(statuses)
    summaries = [
        task
        for task in images.list_tasks({"type": task_type})
        if task.status in wanted and _created_after(task, created_after)
    ]
    summaries.sort(key=lambda task: task.created_at or "", reverse=True)
    found = []
    for summary in summaries:
        try:
            task = images.get_task(summary.id)
        except NotFoundError:  # expired meanwhile
            continue
        if all(str(task.input.get(key)) == value for key, value in matches.items()):
            found.append(task)
    return found


def _created_after(task: Task, moment: float | None) -> bool:
    if moment is None or not task.created_at:
        return True
    try:
        return parse_timestamp(task.created_at) >= moment
    except ValueError:
        return True


def ensure_export(
    images: ImageClient, store: ObjectStore, image_id: str, container: str
) -> ExportOutcome:
    """Start exporting ``image_id`` into ``container`` unless an earlier run did.

    An export task still running is waited for; a ``<image id>.vhd`` already in the container
    is reused (exporting again would fail: "Swift already has an object ...").
    """
    location = f"{container}/{exported_object(image_id)}"
    running = find_unfinished_task(
        images, "export", {"image_uuid": image_id, "receiving_swift_container": container}
    )
    if running is not None:
        return ExportOutcome(location=location, task_id=running.id, reused="export task")
    if _exists(store, container, exported_object(image_id)):
        return ExportOutcome(location=location, finished=True, reused="exported VHD")
    task = images.create_export_task(image_id, container)
    return ExportOutcome(location=location, task_id=task.id)


def _exists(store: ObjectStore, container: str, name: str) -> bool:
    try:
        store.head_object(container, name)
    except NotFoundError:
        return False
    return True


# -- import ---------------------------------------------------------------------------------


def find_transferred_image(
    images: ImageClient, identity: TransferIdentity, owner: str, source_image_id: str | None
) -> Image | None:
    """The target image of this transfer, if an earlier run finished it (active, tagged
    with both the coordinating property and the run key, and a copy of this source:
    ``source_image_id``, None for a server not imaged yet, and the identity's server)."""
    found = images.find_images_by_property(identity.coordinating_key, identity.coordinating_value)
    mine = [
        image
        for image in found
        if image.owner == owner
        and image.status == "active"
        and image.value_of(RUN_KEY_PROPERTY) == identity.run_key
        and is_copy_for(image, source_image_id, identity.server_id)
    ]
    mine.sort(key=lambda image: image.created_at or "", reverse=True)
    return mine[0] if mine else None


def ensure_import(
    images: ImageClient,
    store: ObjectStore,
    location: str,
    name: str,
    identity: TransferIdentity,
    owner: str,
    source_image_id: str,
) -> ImportOutcome:
    """Import ``location`` as ``name`` unless an earlier run did (or is doing it).

    Besides running imports of ``location``, a *finished* one counts if its image exists and
    no other transfer tagged it (a run that stopped between import and tagging); only imports
    created after the staged object was written are read.
    """
    done = find_transferred_image(images, identity, owner, source_image_id)
    if done is not None:
        return ImportOutcome(image_id=done.id, finished=True, reused="tagged target image")
    source = {"import_from": location}
    running = find_unfinished_task(images, "import", source)
    if running is not None:
        return ImportOutcome(task_id=running.id, reused="import task")
    staged_at = _written_at(store, location)
    if staged_at is not None:
        after = staged_at - CLOCK_SLACK_SECONDS
        for task in _tasks_with_input(images, "import", source, ("success",), after):
            if _unclaimed(images, task.image_id, identity):
                image_id = task.image_id
                return ImportOutcome(
                    task_id=task.id, image_id=image_id, finished=True, reused="imported image"
                )
    task = images.create_import_task(location, name)
    return ImportOutcome(task_id=task.id)


def _written_at(store: ObjectStore, location: str) -> float | None:
    """Epoch seconds when ``<container>/<object>`` was last written (None if absent)."""
    container, _, name = location.partition("/")
    try:
        timestamp = store.head_object(container, name).timestamp
    except NotFoundError:
        return None
    return float(timestamp) if timestamp else None


def _unclaimed(images: ImageClient, image_id: str | None, identity: TransferIdentity) -> bool:
    """True if the image exists and no *other* transfer has tagged it as its own."""
    if image_id is None:
        return False
    try:
        image = images.get_image(image_id)
    except NotFoundError:
        return False
    run_key = image.value_of(RUN_KEY_PROPERTY)
    return image.status not in IMAGE_FAILED_STATUSES and run_key in (None, identity.run_key)


# -- properties -----------------------------------------------------------------------------


def foreign_coordinating_value(image: Image, identity: TransferIdentity) -> str | None:
    """The image's value of the coordinating key if imagehop did not write it, else None.

    imagehop's own value is this transfer's, or one marked by :data:`COORDINATING_KEY_PROPERTY`
    (images tagged before that marker existed: the value equals the image's run key).
    """
    value = image.value_of(identity.coordinating_key)
    if value is None or value == identity.coordinating_value:
        return None
    if image.value_of(COORDINATING_KEY_PROPERTY) == identity.coordinating_key:
        return None
    if value == image.value_of(RUN_KEY_PROPERTY):
        return None
    return str(value)


def check_coordinating_property(image: Image, identity: TransferIdentity, where: str) -> None:
    """Refuse to touch an image whose coordinating key holds a value imagehop did not write.

    Raises:
        ForeignPropertyError: naming the key, its value and what to do.
    """
    value = foreign_coordinating_value(image, identity)
    if value is None:
        return
    key = identity.coordinating_key
    raise ForeignPropertyError(
        f"{where} already has the property {key}={value!r}, which imagehop did not write and "
        f"will not change: choose another coordinating property key (e.g. "
        f"{COORDINATING_KEY_EXAMPLE}), or remove {key} from the image if it is not needed"
    )


def copy_properties(
    images: ImageClient,
    source: Image,
    target_image_id: str,
    keys: Iterable[str],
    identity: TransferIdentity,
) -> PropertyReport:
    """Give the target image the source's values of ``keys`` plus the transfer's tags and
    :data:`COPY_OF_PROPERTY` (the source image's id).

    Keys the source lacks, values that are not plain strings/numbers/booleans, and keys the
    cloud refuses (403, protected) are reported as skipped; none of them fails the step.
    """
    wanted: dict[str, PropertyValue] = {}
    skipped: list[SkippedProperty] = []
    for key in keys:
        value = source.value_of(key)
        if value is None:
            skipped.append(SkippedProperty(key=key, reason="not set on the source image"))
        elif not isinstance(value, str | int | bool):
            skipped.append(SkippedProperty(key=key, reason="not a plain value"))
        else:
            wanted[key] = value
    target = images.get_image(target_image_id)
    check_coordinating_property(target, identity, f"the new image {target_image_id}")
    tags = {**identity.tags, COPY_OF_PROPERTY: source.id}
    changes = images.set_properties(target_image_id, {**wanted, **tags})
    refused = [SkippedProperty(key=k, reason=r) for k, r in changes.refused.items()]
    copied = tuple(key for key in wanted if key not in changes.refused)
    return PropertyReport(copied=copied, skipped=(*skipped, *refused))


def tag_image(images: ImageClient, image_id: str, identity: TransferIdentity) -> tuple[str, ...]:
    """Put the coordinating property and the run key on ``image_id``; returns what changed.

    Raises:
        ForbiddenError: the cloud refused the tags (they are this transfer's identity).
        ForeignPropertyError: the coordinating key holds a value imagehop did not write.
    """
    check_coordinating_property(images.get_image(image_id), identity, f"image {image_id}")
    changes = images.set_properties(image_id, identity.tags)
    if changes.refused:
        key, reason = next(iter(changes.refused.items()))
        raise ForbiddenError(f"the cloud refused to set {key} on image {image_id}: {reason}")
    return changes.changed


# -- cleanup --------------------------------------------------------------------------------


def delete_export(store: ObjectStore, container: str, image_id: str) -> int:
    """Bulk-delete the exported DLO (manifest and segments); returns how many objects went."""
    names = _names(store, container, exported_object(image_id))
    return store.bulk_delete((container, name) for name in names).deleted if names else 0


def delete_staged(store: ObjectStore, container: str, source_image_id: str) -> int:
    """Bulk-delete the staged SLO's manifest and every staged segment of that image (in the
    ``_segments`` container, or beside the manifest as for a temporary URL): every object
    named as :func:`~imagehop.procedure.request.staged_object` names one for that image,
    whatever its disk format (:func:`~imagehop.procedure.request.is_staged_name`)."""
    objects = [
        (where, n)
        for where in (segments_container(container), container)
        for n in _names(store, where, f"{source_image_id}.")
        if is_staged_name(source_image_id, n)
    ]
    # the segments first, the manifests last (as the manifest was before)
    objects.sort(key=lambda item: "/imagehop/" not in item[1])
    return store.bulk_delete(objects).deleted if objects else 0


def delete_copies(
    source: ObjectStore | None,
    target: ObjectStore,
    export_container: str,
    import_container: str,
    source_image_id: str,
) -> tuple[int, int]:
    """:func:`delete_export` in the source and :func:`delete_staged` in the target at the same
    time (two regions' clusters: neither waits for the other). Returns how many objects each
    deleted; an error of either is raised once both ended. ``source`` None: the source did
    not export (a Glance source; it may have no object storage at all), only the target's
    staged copy is deleted."""
    if source is None:
        return 0, delete_staged(target, import_container, source_image_id)
    with ThreadPoolExecutor(2, thread_name_prefix="imagehop-cleanup") as pool:
        exported = pool.submit(delete_export, source, export_container, source_image_id)
        staged = pool.submit(delete_staged, target, import_container, source_image_id)
        wait((exported, staged))
    return exported.result(), staged.result()


def _names(store: ObjectStore, container: str, prefix: str) -> list[str]:
    try:
        return [item.name for item in store.list_objects(container, prefix)]
    except NotFoundError:
        return []


def intermediates(
    source_region: str,
    target_region: str,
    export_container: str,
    import_container: str,
    source_image_id: str,
    staged: str,
    segments_in: str | None = None,
) -> list[str]:
    """What a transfer leaves in Cloud Files until cleanup, and how to remove each by hand
    (``staged``: the staged object's name, :func:`~imagehop.procedure.request.staged_object`;
    ``segments_in``: the staged segments' container, default the ``_segments`` one)."""
    exported = exported_object(source_image_id)
    segments = segments_in or segments_container(import_container)
    prefix = staged_segments_prefix(staged)
    return [
        f"{source_region}: {export_container}/{exported} and its segments {exported}-* "
        f"(remove: swift delete {export_container} --prefix {exported})",
        f"{target_region}: {import_container}/{staged} and its segments "
        f"{segments}/{prefix}* (remove: swift delete {import_container} {staged}; "
        f"swift delete {segments} --prefix {prefix})",
    ]
