"""The one exception tree of imagehop.

Every error says what went wrong and, where it can, what to do about it. Each class declares
whether retrying the same step could succeed (``retryable``); an instance also says whether a
retry layer already used up its attempts on it (``exhausted_by``, see :mod:`imagehop.retries`):
every layer retries only errors that are retryable and not exhausted, so no error is retried
by two layers. All errors pickle (Prefect stores failed states): every constructor takes
``message`` and ``request_id`` first and gives the rest defaults.

HTTP error answers become these classes in one place, :func:`imagehop.error_map.error_from_answer`,
for the ``requests`` clients and the object store alike.

* ImagehopError
  * ConfigurationError        settings or credentials are missing or wrong
  * PreflightError            the request cannot work; found before any side effect
    * UnknownRegionError      a region is not in the service catalog
    * ImageNotTransferableError  missing, not owned, not active, not exportable, too large
    * InvalidContainerNameError
    * ForeignPropertyError    the coordinating key holds a value imagehop did not write
    * ForeignContainerError   a container imagehop did not create (no temporary-URL key on it)
    * RunKeyInUseError        the run key already names another image's transfer
  * AuthenticationError       the credentials, or a freshly renewed token, were refused (401)
  * ApiError                  an HTTP error answer from a cloud API (status, request id)
    * BadRequestError (400), ForbiddenError (403), NotFoundError (404),
      ConflictError (409), UnsupportedMediaTypeError (415)
    * RequestTooLargeError (413 without a retry hint: over a size or count limit)
    * UnprocessableEntityError (422: Swift's ETag mismatch; also an IntegrityError)
    * InsufficientStorageError (507: no room; retrying does not make room)
    * UnauthorizedError (401: token refused; renewed before a retry)  retryable
    * RateLimitedError (429, 498, or 413 with Retry-After)             retryable
    * ServerError (5xx but 507)                                        retryable
  * TransportError            connection refused/reset, timeouts (also 408, 499)  retryable
  * TaskFailedError           an export/import task ended in ``failure``
  * ResourceFailedError       an image or server reached an error state (killed, ERROR)
  * WaitTimeoutError          a wait passed its deadline
  * SourceIncompleteError     a DLO's listing has gaps or does not add up      retryable
  * IntegrityError            bytes did not verify (MD5/ETag/size mismatch)
  * StoppedError              told to stop (its batch was cancelled): a wait or the copy ended
"""

from __future__ import annotations

from typing import Any, ClassVar


class ImagehopError(Exception):
    """Root of every error imagehop raises on purpose."""

    retryable: ClassVar[bool] = False
    #: The retry layer that used up its attempts on this error (``"request"``,
    #: ``"segment"`` ...), so no layer above retries it; None while nobody gave up on it.
    #: Set with :func:`imagehop.retries.give_up`.
    exhausted_by: str | None = None

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id: {self.request_id})"
        return self.message

    def __repr__(self) -> str:
        # Prefect's failure lines show errors with %r: keep the request id in them.
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the two arguments every class takes, then every attribute restored.
        return (self.__class__, (self.message, self.request_id), dict(self.__dict__))


class ConfigurationError(ImagehopError):
    """Settings or credentials are missing or inconsistent."""


class PreflightError(ImagehopError):
    """The request cannot succeed; detected before anything was created or moved."""


class UnknownRegionError(PreflightError):
    """A region is not offered by the account's service catalog."""


class UnknownCloudError(PreflightError):
    """A request names a cloud that is not a profile of the worker's ``IMAGEHOP_CLOUDS``."""


class ImageNotTransferableError(PreflightError):
    """The source image is missing, not owned, not active, not exportable or too large."""


class InvalidContainerNameError(PreflightError):
    """A Cloud Files container name the export or import would reject."""


class ForeignPropertyError(PreflightError):
    """An image already carries the coordinating key with a value imagehop did not write
    (imagehop never changes such a property)."""


class ForeignContainerError(PreflightError):
    """A container imagehop did not create: imagehop puts no temporary-URL key on it (nor on
    the account), since it never changes what it did not make."""


class RunKeyInUseError(PreflightError):
    """The run key already names the transfer of another image (or server): resuming it
    would take that transfer's snapshot, export, copy or new image for this one."""


class AuthenticationError(ImagehopError):
    """Identity refused the credentials, or a service refused a token just renewed."""


class IntegrityError(ImagehopError):
    """Bytes did not verify: an MD5, ETag, size or segment-count mismatch."""


class ApiError(ImagehopError):
    """An HTTP error answer from a cloud API."""

    def __init__(
        self,
        message: str,
        request_id: str | None = None,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, request_id)
        self.status = status
        self.method = method
        self.url = url


class BadRequestError(ApiError):
    """400: the cloud rejected the request's content."""


class UnauthorizedError(ApiError):
    """401: the token was refused. The request layer renews the token and repeats the request
    once; a request that cannot be repeated in place (a streamed segment copy) raises this
    after the token has been invalidated, so retrying the step uses a new one. A 401 that a
    fresh token does not cure is an :class:`AuthenticationError`."""

    retryable = True


class ForbiddenError(ApiError):
    """403: not allowed (e.g. a protected ``com.rackspace*`` property, or a missing role)."""


class NotFoundError(ApiError):
    """404: the resource does not exist (or is not visible to this account)."""


class ConflictError(ApiError):
    """409: conflicts with the resource's state (e.g. ``add`` of an existing property)."""


class UnsupportedMediaTypeError(ApiError):
    """415: wrong Content-Type for the call."""


class RequestTooLargeError(ApiError):
    """413 without a retry hint: the request is over a size or count limit (an object over
    Swift's maximum, a quota, too many image properties); sending it again cannot help."""


class UnprocessableEntityError(ApiError, IntegrityError):
    """422: the content does not match what the request declared; from Swift, the MD5 of the
    body differs from the ``ETag`` sent. An :class:`IntegrityError`: not retried."""


class InsufficientStorageError(ApiError):
    """507: the cloud has no room for this; retrying does not make room."""


class RateLimitedError(ApiError):
    """429 (498 from Swift), or 413 with a retry hint: over a rate limit; ``retry_after``
    seconds is the cloud's advice (None if it gave none)."""

    retryable = True

    def __init__(
        self,
        message: str,
        request_id: str | None = None,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, request_id, status, method, url)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the cloud failed; usually passes."""

    retryable = True


class TransportError(ImagehopError):
    """The connection failed or timed out before an answer arrived; ``connect_failed``: no
    connection was made at all (refused, name not resolved, connect timed out)."""

    retryable = True

    def __init__(
        self, message: str, request_id: str | None = None, connect_failed: bool = False
    ) -> None:
        super().__init__(message, request_id)
        self.connect_failed = connect_failed


class TaskFailedError(ImagehopError):
    """An export or import task ended in ``failure``; ``advice`` says what to do."""

    def __init__(
        self,
        message: str,
        request_id: str | None = None,
        task_id: str | None = None,
        task_type: str | None = None,
        cloud_message: str | None = None,
        advice: str | None = None,
    ) -> None:
        super().__init__(message, request_id)
        self.task_id = task_id
        self.task_type = task_type
        self.cloud_message = cloud_message
        self.advice = advice


class ResourceFailedError(ImagehopError):
    """An image or server reached a state it cannot leave (``killed``, ``ERROR``, ...)."""

    def __init__(
        self,
        message: str,
        request_id: str | None = None,
        resource: str | None = None,
        status: str | None = None,
    ) -> None:
        super().__init__(message, request_id)
        self.resource = resource
        self.status = status


class WaitTimeoutError(ImagehopError):
    """A wait passed its deadline; names the resource, the wanted and the last status."""

    def __init__(
        self,
        message: str,
        request_id: str | None = None,
        resource: str | None = None,
        wanted: str | None = None,
        last_status: str | None = None,
    ) -> None:
        super().__init__(message, request_id)
        self.resource = resource
        self.wanted = wanted
        self.last_status = last_status


class SourceIncompleteError(ImagehopError):
    """A large object's segments are missing, out of order or do not add up (yet)."""

    retryable = True


class StoppedError(ImagehopError):
    """The run was told to stop (its batch was cancelled): a wait or the copy ended early.
    What is in place stays for a re-run with the same request; retrying now cannot help."""
