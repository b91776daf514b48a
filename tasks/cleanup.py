"""After a successful import: delete the intermediate copies in both regions."""

from __future__ import annotations

from prefect import get_run_logger, task

from imagehop.procedure.request import Clouds, exported_object
from imagehop.procedure.steps import delete_copies
from imagehop.tasks.cloud import clients
from imagehop.tasks.policy import FRESH


@task(name="delete-intermediates", task_run_name="delete-intermediates", **FRESH)
def delete_intermediates(
    source_region: str,
    target_region: str,
    export_container: str,
    import_container: str,
    source_image_id: str,
    source_exported: bool | None = None,
    staged: str | None = None,
    *,
    clouds: Clouds,
) -> tuple[str, ...]:
    """Bulk-delete the exported DLO (source) and the staged SLO (target), both at once.

    Only call this once the import succeeded: a re-run after a failure needs both. Deleting
    what is already gone is not an error, so the step can be repeated.

    Args:
        source_exported: the source exported the image (Rackspace's legacy cloud); False: a
            Glance source, whose object storage is never touched (it may have none); None:
            asked of the source region (legacy when it serves no ``/v2/info/import``).
        staged: the staged object's name, for the line saying what was deleted (every
            staged object of that source image goes, whatever its disk format:
            :func:`~imagehop.procedure.steps.delete_staged`).

    Returns:
        One line per region saying what was deleted.
    """
    c = clients(clouds)
    if source_exported is None:
        source_exported = c.glance("source", source_region).import_methods() is None
    exported, deleted = delete_copies(
        c.objects("source", source_region) if source_exported else None,
        c.objects("target", target_region),
        export_container,
        import_container,
        source_image_id,
    )
    export_line = (
        f"{source_region}: {export_container}/{exported_object(source_image_id)} "
        f"({exported} objects)"
    )
    done = (
        *([export_line] if source_exported else []),
        f"{target_region}: {import_container}/{staged or source_image_id + '.*'} "
        f"({deleted} objects)",
    )
    for line in done:
        get_run_logger().info("deleted %s", line)
    return done
