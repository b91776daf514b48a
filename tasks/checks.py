"""Read-only steps: pre-flight, the target's limits, and "is this transfer already done?"."""

from __future__ import annotations

from prefect import task

from imagehop.object_store import ClusterLimits
from imagehop.procedure.preflight import PreflightReport, run_preflight
from imagehop.procedure.request import Clouds, TransferIdentity, TransferRequest
from imagehop.procedure.steps import find_run_images, find_transferred_image, is_snapshot_of
from imagehop.tasks.cloud import clients
from imagehop.tasks.policy import FRESH
from imagehop.tasks.refusals import REFUSALS, Refusal


@task(
    name="preflight",
    task_run_name="preflight-{request.source_region}-to-{request.target_region}",
    **FRESH,
)
def preflight(request: TransferRequest, identity: TransferIdentity) -> PreflightReport | Refusal:
    """Check everything that can be checked before any side effect (GET requests only).

    Returns:
        The report, or a :class:`Refusal` (the task run completes: the check worked) when the
        request cannot work (PreflightError, the message says what to do), the cloud refused
        the credentials (AuthenticationError) or the settings are wrong (ConfigurationError).
    """
    try:
        return run_preflight(clients(request.clouds), request, identity)
    except REFUSALS as error:
        return Refusal(error)


@task(name="find-finished-transfer", task_run_name="find-finished-in-{region}", **FRESH)
def find_finished_transfer(
    region: str,
    identity: TransferIdentity,
    owner: str,
    source_image_id: str | None,
    *,
    clouds: Clouds,
) -> str | None:
    """The target image of an earlier run of this transfer, if that run got it tagged (a
    copy of ``source_image_id``, None for a server: of the identity's server)."""
    images = clients(clouds).images("target", region)
    image = find_transferred_image(images, identity, owner, source_image_id)
    return image.id if image is not None else None


@task(name="read-target-limits", task_run_name="target-limits-{region}", **FRESH)
def read_target_limits(region: str, *, clouds: Clouds) -> ClusterLimits:
    """The target Swift's limits (object cap, manifest segments) from its ``/info``."""
    return clients(clouds).objects("target", region).limits()


@task(name="find-source-image", task_run_name="find-source-image-in-{region}", **FRESH)
def find_source_image(
    region: str, identity: TransferIdentity, owner: str, *, clouds: Clouds
) -> str | None:
    """The snapshot of the identity's server an earlier run of this transfer made."""
    found = find_run_images(clients(clouds).images("source", region), identity.run_key, owner)
    server_id = identity.server_id
    snapshots = [image.id for image in found if server_id and is_snapshot_of(image, server_id)]
    return snapshots[0] if snapshots else None


@task(name="list-source-images", task_run_name="list-images-in-{region}", **FRESH)
def list_source_images(region: str, filters: dict[str, str], *, clouds: Clouds) -> list[str]:
    """Active images of the source account whose properties match ``filters``, oldest first."""
    c = clients(clouds)
    owner = c.tokens("source").tenant_id
    found = c.images("source", region).list_images(filters)
    mine = [
        image
        for image in found
        if image.owner == owner
        and image.status == "active"
        and all(str(image.value_of(key)) == value for key, value in filters.items())
    ]
    return [image.id for image in sorted(mine, key=lambda image: image.created_at or "")]
