"""Caps on concurrent export and import tasks per region, for batches run in one process.

``transfer-images`` sets the caps; each ``transfer-image`` holds a slot of its region from
starting an export (import) until that task finished. The slots are process-local
semaphores, which is right for a batch whose transfers run as threads of one process.

Several workers or machines would instead share Prefect *global concurrency limits*: create
``imagehop-export-<REGION>`` / ``imagehop-import-<REGION>`` limits
(``prefect gcl create imagehop-export-DFW --limit 2``) and hold one with
``prefect.concurrency.sync.concurrency(name, occupy=1, strict=True)`` around the same steps;
the API server then enforces them across every process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

Kind = Literal["export", "import"]

_lock = threading.Lock()
_caps: dict[Kind, int | None] = {"export": None, "import": None}
_slots: dict[tuple[Kind, str, int], threading.BoundedSemaphore] = {}


def configure(exports: int | None, imports: int | None) -> None:
    """At most ``exports`` export tasks (``imports`` import tasks) at once per region in this
    process; None lifts the cap."""
    with _lock:
        _caps["export"] = exports
        _caps["import"] = imports


@contextmanager
def region_slot(kind: Kind, region: str) -> Iterator[None]:
    """Hold one of ``region``'s ``kind`` slots for the block (no-op without a cap)."""
    with _lock:
        cap = _caps[kind]
        key = (kind, region.upper(), cap or 0)
        if cap is not None and key not in _slots:
            _slots[key] = threading.BoundedSemaphore(cap)
        slot = _slots.get(key)
    if slot is None:
        yield
        return
    with slot:
        yield
