"""Temporary URLs of objects imagehop wrote, for a ``web-download`` import inside their region.

:func:`temporary_url` signs a ``GET`` of one object with Swift's own algorithm
(``swiftclient.utils.generate_temp_url``: HMAC-SHA256 over method, expiry and path), so that
the target region's Glance can read the staged image without a token. The key is the
container's ``X-Container-Meta-Temp-URL-Key``, on imagehop's OWN container only: a container
the engine created carries :data:`~imagehop.object_store.OWNED_CONTAINER_META`, and the key is
set there (a random one, the first time) if it has none. The account's key is never read or
set, and a container imagehop did not create is refused (:class:`ForeignContainerError`).

A container key authorizes that container only (Swift's ``authorize_same_container``): an SLO
read through the URL needs its segments in the same container, so a plan meant for a temporary
URL is made with ``segments_container=target_container``; :func:`staged_object_url` checks it.

The URL is a secret (anyone holding it can read the image until it expires): never log it,
never return it from a Prefect task or pass it as a parameter; make it in the step that uses
it, and keep ``seconds`` to what the import needs.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlsplit

from swiftclient.utils import generate_temp_url

from imagehop.errors import ForeignContainerError, NotFoundError, PreflightError
from imagehop.object_store import OWNED_CONTAINER_META, ObjectStore
from imagehop.transfer.plan import TransferPlan

TEMP_URL_KEY_META = "x-container-meta-temp-url-key"
#: Longest validity accepted (a day: an import of a large image at a slow store).
MAX_SECONDS = 86_400


def temporary_url(store: ObjectStore, container: str, name: str, seconds: int) -> str:
    """A URL that lets its holder ``GET container/name`` in ``store``'s region for
    ``seconds`` seconds, without a token (a secret: see the module docstring).

    Raises:
        ValueError: ``seconds`` is not between 1 and :data:`MAX_SECONDS`, or no object name.
        ForeignContainerError: ``container`` does not exist or was not created by imagehop.
    """
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"a temporary URL lives 1 to {MAX_SECONDS} seconds, not {seconds}")
    if not name:
        raise ValueError("a temporary URL needs an object name")
    key = container_key(store, container)
    parts = urlsplit(store.storage_url)
    path = f"{parts.path.rstrip('/')}/{container}/{name}"
    signed = str(generate_temp_url(path, seconds, key, "GET", digest="sha256"))
    signed_path, query = signed.split("?", 1)
    return f"{parts.scheme}://{parts.netloc}{quote(signed_path)}?{query}"


def staged_object_url(store: ObjectStore, plan: TransferPlan, seconds: int) -> str:
    """:func:`temporary_url` of the object ``plan`` wrote in the target ``store``.

    Raises:
        PreflightError: the plan's segments are in another container than its manifest (a
            container key does not reach them: Swift would answer 409 to the GET).
        ForeignContainerError, ValueError: as for :func:`temporary_url`.
    """
    if plan.segments and plan.segments_container != plan.target_container:
        raise PreflightError(
            f"the segments of {plan.target_container}/{plan.target_object} are in "
            f"{plan.segments_container!r}, which its container's temporary-URL key does not "
            "cover: plan the copy with segments_container equal to the target container"
        )
    return temporary_url(store, plan.target_container, plan.target_object, seconds)


def container_key(store: ObjectStore, container: str) -> str:
    """The temporary-URL key of imagehop's ``container``, set (random) if it has none yet.

    Raises:
        ForeignContainerError: the container is missing or not imagehop's.
    """
    metadata = owned_container_metadata(store, container)
    key = metadata.get(TEMP_URL_KEY_META)
    if key:
        return key
    store.post_container_metadata(container, {TEMP_URL_KEY_META: secrets.token_hex(32)})
    # Read back: with two callers at once, both sign with the key that was stored last.
    key = store.container_metadata(container).get(TEMP_URL_KEY_META)
    if not key:
        raise ForeignContainerError(
            f"container {container!r} in {store.region or store.storage_url} does not keep a "
            "Temp-URL-Key (the cluster may not run the tempurl middleware): use another "
            "transport"
        )
    return key


def owned_container_metadata(store: ObjectStore, container: str) -> dict[str, str]:
    """The metadata of ``container`` if imagehop created it.

    Raises:
        ForeignContainerError: the container is missing or not imagehop's.
    """
    where = f"container {container!r} in {store.region or 'the region'}"
    try:
        metadata = store.container_metadata(container)
    except NotFoundError:
        raise ForeignContainerError(
            f"{where} does not exist: copy the image into it first (the engine creates it)"
        ) from None
    if OWNED_CONTAINER_META not in metadata:
        raise ForeignContainerError(
            f"{where} was not created by imagehop (it has no {OWNED_CONTAINER_META} "
            "metadata): imagehop sets a temporary-URL key only on its own containers; let "
            "the copy create a new target container (a name that does not exist yet)"
        )
    return metadata
