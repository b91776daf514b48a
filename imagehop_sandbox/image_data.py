"""Glance's image download in the regions the ``glance_regions`` option names (generic-OpenStack
mode); Cloud Images documents no ``/file``, so elsewhere it is not found. Upload (``PUT``) and
staging are :mod:`imagehop_sandbox.glance_api`.

``GET /v2/images/{id}/file`` streams the bytes from the region's Swift with ``Content-MD5`` (the
MD5 of the bytes, which is also the image's ``checksum`` there), ``204`` while the image has no
data, and one byte range (``Range: bytes=a-b``, ``a-``, ``-n``): ``206`` with ``Content-Range``,
or ``416`` with ``Content-Range: bytes */<size>`` when unsatisfiable (Swift itself answers the
range, SLOs included). Several ranges in one request are refused with 416, as Glance serves one.
"""

from __future__ import annotations

from imagehop_sandbox.cloud import Cloud
from imagehop_sandbox.content import open_content
from imagehop_sandbox.models import ImageRecord
from imagehop_sandbox.swift_io import SwiftFailure, stream_body
from imagehop_sandbox.web import App, HttpError, Request, Response

NOT_FOUND = "The resource could not be found."
UNSATISFIABLE = "Requested Range Not Satisfiable"


class ImageDataApi:
    def __init__(self, cloud: Cloud, app: App, region: str) -> None:
        self.cloud = cloud
        self.region = region
        app.route("GET", "/v2/images/{image_id}/file")(self.download)

    def download(self, request: Request) -> Response:
        if not self.cloud.options.is_glance_region(self.region):
            raise HttpError(404, NOT_FOUND)
        caller = self.cloud.caller(request)
        image_id = request.params["image_id"]
        image = ImageRecord.load(self.cloud.store, image_id)
        if image is None or image.region != self.region or not image.visible_to(caller.tenant):
            raise HttpError(404, f"No image found with ID {image_id}")
        stored = image.stored
        if stored is None:
            return Response.empty(204)
        byte_range = request.headers.get("Range")
        account = self.cloud.service_account(self.region)
        headers = {"Content-Type": "application/octet-stream", "Content-MD5": stored.md5}
        if not byte_range:
            headers["Content-Length"] = str(stored.size)
            return Response(200, headers=headers, stream=open_content(account, stored))
        if "," in byte_range:
            raise _unsatisfiable(stored.size)
        try:
            answer = account.open(stored.container, stored.name, byte_range)
        except SwiftFailure as failure:
            if failure.status == 416:
                raise _unsatisfiable(stored.size) from None
            raise
        if answer.status_code == 200:  # Swift ignores a malformed Range: so does Glance
            headers["Content-Length"] = str(stored.size)
            return Response(200, headers=headers, stream=stream_body(answer))
        headers["Content-Length"] = answer.headers["Content-Length"]
        headers["Content-Range"] = answer.headers["Content-Range"]
        return Response(206, headers=headers, stream=stream_body(answer))


def _unsatisfiable(size: int) -> HttpError:
    return HttpError(416, UNSATISFIABLE, headers={"Content-Range": f"bytes */{size}"})
