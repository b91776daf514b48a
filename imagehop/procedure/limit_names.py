"""Names of the global concurrency limits that cap imagehop's cloud work (Prefect-free, so
that set-up scripts and tests can name them without importing Prefect)."""

from __future__ import annotations

from typing import Literal

CloudTask = Literal["export", "import"]
PREFIX = "imagehop"


def task_limit_name(kind: CloudTask, region: str) -> str:
    """``imagehop-export-DFW`` / ``imagehop-import-IAD``."""
    return f"{PREFIX}-{kind}-{region.strip().upper()}"


def copy_limit_name(source_region: str, target_region: str) -> str:
    """``imagehop-copy-DFW-IAD``."""
    return f"{PREFIX}-copy-{source_region.strip().upper()}-{target_region.strip().upper()}"
