"""Hold one slot of an imagehop limit the way imagehop's cloud tasks do: a task of a flow run
inside ``tasks/limits.py``'s ``region_slot``. Run by test_leases.py as its own process:

    python -m tests.deployments.slot_holder export DFW

It prints ``slot holder: held`` once it has the slot, releases it when a line (or the end of
its input) comes on stdin, then prints ``slot holder: released``. Never imported by the test
process (it imports Prefect).
"""

from __future__ import annotations

import sys
from typing import cast

from prefect import flow, task

from imagehop.procedure.limit_names import CloudTask
from imagehop.tasks.limits import region_slot


@task
def hold_one_slot(kind: CloudTask, region: str) -> None:
    with region_slot(kind, region):
        print("slot holder: held", flush=True)
        sys.stdin.readline()
    print("slot holder: released", flush=True)


@flow
def hold_slot(kind: CloudTask, region: str) -> None:
    hold_one_slot(kind, region)


if __name__ == "__main__":
    kind, region = sys.argv[1:3]
    hold_slot(cast(CloudTask, kind), region)
