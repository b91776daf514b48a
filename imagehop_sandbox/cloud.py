"""Shared state of the API service: accounts, options, Swift access, faults, background jobs."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imagehop_sandbox.info import AccountInfo, SandboxInfo
from imagehop_sandbox.options import CLUSTER_OPTIONS, SandboxOptions
from imagehop_sandbox.state import Store
from imagehop_sandbox.swift_io import SwiftAccount
from imagehop_sandbox.tokens import TokenClaims, verify
from imagehop_sandbox.web import HttpError, Request, Response

log = logging.getLogger("imagehop_sandbox.cloud")

OPTIONS_KEY = "options"
TASK_FAULTS_KEY = "task_faults"
HTTP_FAULTS_KEY = "http_faults"


def user_id(username: str) -> str:
    """The stable numeric id Identity gives a user name."""
    return str(int(hashlib.sha256(username.encode()).hexdigest()[:8], 16))


@dataclass(frozen=True)
class Caller:
    """Who sent a request, from its token."""

    tenant: str
    user: str
    admin: bool

    @property
    def user_id(self) -> str:
        return user_id(self.user)


class Cloud:
    """Everything the request handlers and the background jobs share."""

    def __init__(
        self, info: SandboxInfo, store: Store, base_options: SandboxOptions, secret: str
    ) -> None:
        self.info = info
        self.store = store
        self.base_options = base_options
        self.secret = secret
        self.started_at = time.time()

    # -- options -------------------------------------------------------------------------

    @property
    def options(self) -> SandboxOptions:
        return self.base_options.updated(self.store.get_meta(OPTIONS_KEY, {}))

    def set_options(self, changes: dict[str, Any]) -> SandboxOptions:
        fixed = sorted(set(changes) & CLUSTER_OPTIONS)
        if fixed:
            raise ValueError(
                f"{', '.join(fixed)} shape the Swift clusters and are fixed when the state "
                "folder is created; start a new state folder to change them"
            )
        self.options.updated(changes)  # validate before saving
        return self.base_options.updated(
            self.store.update_meta(OPTIONS_KEY, {}, lambda old: {**old, **changes})
        )

    def reset_options(self) -> SandboxOptions:
        self.store.set_meta(OPTIONS_KEY, {})
        return self.options

    # -- accounts and tokens -------------------------------------------------------------

    def account(self, username: str) -> AccountInfo | None:
        return next((a for a in self.info.accounts if a.username == username), None)

    def caller(self, request: Request) -> Caller:
        """The request's sender; 401 without a valid token."""
        claims = self.claims(request.headers.get("X-Auth-Token") or "")
        if claims is None:
            raise HttpError(
                401,
                "The request you have made requires authentication.",
                "unauthorized",
                {"WWW-Authenticate": "Keystone uri='" + self.info.identity_url + "'"},
            )
        account = self.account(claims.user)
        return Caller(claims.tenant, claims.user, account is not None and account.admin)

    def claims(self, token: str) -> TokenClaims | None:
        return verify(self.secret, token)

    # -- Swift ---------------------------------------------------------------------------

    def service_account(self, region: str) -> SwiftAccount:
        """The sandbox's own account in ``region``: image bytes live there."""
        return SwiftAccount(
            self.info.region(region).storage_host, self.info.service_tenant, self.secret
        )

    def user_account(self, region: str, tenant: str) -> SwiftAccount:
        return SwiftAccount(self.info.region(region).storage_host, tenant, self.secret)

    # -- faults --------------------------------------------------------------------------

    def add_task_fault(self, fault: dict[str, Any]) -> None:
        self.store.update_meta(TASK_FAULTS_KEY, [], lambda old: [*old, fault])

    def take_task_fault(self, region: str, task_type: str) -> dict[str, Any] | None:
        """Consume one pending fault for the next task of this region and type."""
        return self._take_fault(
            TASK_FAULTS_KEY, lambda f: f["region"] == region and f["type"] == task_type
        )

    def _take_fault(
        self, key: str, matches: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """Count down the first matching fault (dropping it at zero) and return it."""
        taken: list[dict[str, Any]] = []

        def pop(faults: list[dict[str, Any]]) -> list[dict[str, Any]]:
            for index, fault in enumerate(faults):
                if matches(fault):
                    taken.append(dict(fault))
                    fault["count"] -= 1
                    if fault["count"] <= 0:
                        del faults[index]
                    break
            return faults

        self.store.update_meta(key, [], pop)
        return taken[0] if taken else None

    def add_http_fault(self, fault: dict[str, Any]) -> None:
        re.compile(fault["path"])
        self.store.update_meta(HTTP_FAULTS_KEY, [], lambda old: [*old, fault])

    def clear_faults(self) -> None:
        self.store.set_meta(TASK_FAULTS_KEY, [])
        self.store.set_meta(HTTP_FAULTS_KEY, [])

    def faults(self) -> dict[str, Any]:
        return {
            "tasks": self.store.get_meta(TASK_FAULTS_KEY, []),
            "http": self.store.get_meta(HTTP_FAULTS_KEY, []),
        }

    def http_fault_hook(
        self, service: str, region: str | None
    ) -> Callable[[Request], Response | None]:
        """A request hook answering with an injected error when one matches."""

        def hook(request: Request) -> Response | None:
            if not self.store.get_meta(HTTP_FAULTS_KEY, []):
                return None
            fault = self._take_fault(
                HTTP_FAULTS_KEY, lambda f: _fault_matches(f, service, region, request)
            )
            if fault is None:
                return None
            body = str(fault.get("body", "")).encode()
            return Response(int(fault["status"]), body, dict(fault.get("headers") or {}))

        return hook

    # -- background work -----------------------------------------------------------------

    def run_in_background(self, name: str, work: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                work()
            except Exception:
                log.exception("background job %s failed", name)

        if self.options.jobs_before_answer:
            guarded()
            return
        # Daemon threads: a stop may cut a job short; the next start resumes it (jobs.py).
        threading.Thread(target=guarded, name=name, daemon=True).start()


def _fault_matches(
    fault: dict[str, Any], service: str, region: str | None, request: Request
) -> bool:
    if fault.get("service", service) != service:
        return False
    if region is not None and fault.get("region", region).upper() != region:
        return False
    if fault.get("method", request.method).upper() != request.method:
        return False
    return re.search(fault["path"], request.path) is not None
