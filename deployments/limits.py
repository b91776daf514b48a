"""Create imagehop's global concurrency limits on the Prefect server the workers use.

    python deployments/limits.py --region DFW --region IAD                 # defaults: 2, 2, 2
    python deployments/limits.py --region DFW --region IAD --export 1 --import 3 --copy 2
    python deployments/limits.py --region DFW --region IAD --export 4 --update

For every region it creates ``imagehop-export-<REGION>`` (export tasks at once) and
``imagehop-import-<REGION>`` (import tasks at once); for every ordered pair of two regions
``imagehop-copy-<SRC>-<DST>`` (segment copies at once). Every worker and batch shares them:
the API server counts the slots (see ``imagehop/tasks/limits.py`` for how long one is held,
and the lease that frees a slot whose holder died).

Idempotent: a limit that exists keeps its value unless ``--update`` is given, and then only
the counts given change (other teams' batches may rely on the rest); each line of the output
says what happened to one limit. Run it where ``PREFECT_API_URL`` points at that server. The
same with Prefect's CLI: ``prefect gcl create imagehop-export-DFW --limit 2`` (and
``prefect gcl update ... --limit``).

If the server reports that it keeps its concurrency leases in memory (Prefect's default, lost
when it restarts: slots held then stay taken), a warning on stderr says how to start it
instead; the exit status stays 0 (deployments/README.md, *Leases across a server restart*).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import permutations
from typing import TYPE_CHECKING

from imagehop.procedure.limit_names import copy_limit_name, task_limit_name
from imagehop.procedure.request import REGION_PATTERN

if TYPE_CHECKING:
    from prefect.client.schemas.responses import GlobalConcurrencyLimitResponse

DEFAULT_EXPORTS = 2
DEFAULT_IMPORTS = 2
DEFAULT_COPIES = 2
MAX_SLOTS = 64


@dataclass(frozen=True)
class WantedLimit:
    name: str
    limit: int
    asked: bool = True  # False: the typed default, which never changes an existing limit


def wanted_limits(
    regions: Sequence[str], exports: int | None, imports: int | None, copies: int | None
) -> list[WantedLimit]:
    """The limits for ``regions``: export and import per region, copy per ordered pair (a
    count not given: its default, for limits still to create)."""
    codes = list(dict.fromkeys(region.strip().upper() for region in regions))
    kinds = [
        (exports, DEFAULT_EXPORTS, [task_limit_name("export", code) for code in codes]),
        (imports, DEFAULT_IMPORTS, [task_limit_name("import", code) for code in codes]),
        (copies, DEFAULT_COPIES, [copy_limit_name(a, b) for a, b in permutations(codes, 2)]),
    ]
    return [
        WantedLimit(name, default if given is None else given, given is not None)
        for given, default, names in kinds
        for name in names
    ]


def apply(wanted: Sequence[WantedLimit], update: bool) -> list[str]:
    """Create what is missing (and, with ``update``, set what differs); one line per limit."""
    from prefect.client.orchestration import get_client  # Prefect only to talk to the API
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectNotFound

    lines = []
    with get_client(sync_client=True) as client:
        for limit in wanted:
            try:
                held = client.read_global_concurrency_limit_by_name(limit.name)
            except ObjectNotFound:
                create = GlobalConcurrencyLimitCreate(name=limit.name, limit=limit.limit)
                client.create_global_concurrency_limit(create)
                lines.append(f"created   {limit.name} = {limit.limit}")
                continue
            if held.limit == limit.limit and held.active:
                lines.append(f"unchanged {limit.name} = {limit.limit}")
            elif update and limit.asked:
                change = GlobalConcurrencyLimitUpdate(limit=limit.limit, active=True)
                client.update_global_concurrency_limit(limit.name, change)
                lines.append(f"updated   {limit.name} = {limit.limit} (was {_held(held)})")
            elif limit.asked:
                lines.append(
                    f"kept      {limit.name} = {_held(held)} (asked {limit.limit}; "
                    "--update changes it)"
                )
            else:
                lines.append(f"kept      {limit.name} = {_held(held)}")
    return lines


def lease_storage_warning() -> str | None:
    """The warning to print if the server keeps its concurrency leases in memory (None if it
    does not, or does not say)."""
    from prefect.client.orchestration import get_client

    from imagehop.tasks.limits import MEMORY_LEASES_WARNING, server_leases_in_memory

    with get_client(sync_client=True) as client:
        return f"warning: {MEMORY_LEASES_WARNING}" if server_leases_in_memory(client) else None


def _held(held: GlobalConcurrencyLimitResponse) -> str:
    return f"{held.limit}" if held.active else f"{held.limit}, inactive"


def _slots(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_SLOTS:
        raise argparse.ArgumentTypeError(f"give 1 to {MAX_SLOTS} slots, not {value}")
    return value


def _region(text: str) -> str:
    code = text.strip().upper()
    if not re.fullmatch(REGION_PATTERN, code):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a region code: 2 to 8 letters or digits, e.g. DFW"
        )
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python deployments/limits.py",
        description="Create imagehop's global concurrency limits (idempotent).",
    )
    parser.add_argument(
        "--region", type=_region, action="append", required=True,
        help="a region the workers export from or import to (repeat: --region DFW --region IAD)",
    )  # fmt: skip
    parser.add_argument(
        "--export", type=_slots, dest="exports",
        help=f"export tasks at once per region (new limits: {DEFAULT_EXPORTS} if not given)",
    )  # fmt: skip
    parser.add_argument(
        "--import", type=_slots, dest="imports",
        help=f"import tasks at once per region (new limits: {DEFAULT_IMPORTS} if not given)",
    )  # fmt: skip
    parser.add_argument(
        "--copy", type=_slots, dest="copies",
        help=f"segment copies at once per region pair (new limits: {DEFAULT_COPIES} if not given)",
    )  # fmt: skip
    parser.add_argument(
        "--update", action="store_true",
        help="set existing limits to the counts given (default: leave them as they are)",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    wanted = wanted_limits(args.region, args.exports, args.imports, args.copies)
    for line in apply(wanted, args.update):
        sys.stdout.write(line + "\n")
    warning = lease_storage_warning()
    if warning:
        sys.stderr.write(warning + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
