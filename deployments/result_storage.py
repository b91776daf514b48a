"""Where flow results are stored, so that whoever starts a run can read its typed result.

    python deployments/result_storage.py /mnt/shared/imagehop-results

saves a ``LocalFileSystem`` block named ``imagehop-results`` with that base path. The
deployments in ``deployments/prefect.yaml`` set ``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK`` to
``local-file-system/imagehop-results``, so a flow run writes its result (and its cached step
results) there and records the block's id with it; ``run_deployment(...).state.result()`` then
loads the block and reads the file, from any process.

The path must be the same folder for the workers and for every reader: on one host any folder
works; across machines use a shared mount (NFS, SMB), or object storage instead (a
``RemoteFileSystem`` block such as ``s3://bucket/imagehop-results``, or prefect-aws'
``S3Bucket``) and change the block slug in ``prefect.yaml`` to match.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from prefect.filesystems import LocalFileSystem
from prefect.settings import PREFECT_API_URL

RESULTS_BLOCK = "imagehop-results"


def save_local_storage(path: Path, name: str = RESULTS_BLOCK) -> str:
    """Save (or overwrite) the LocalFileSystem block ``name`` at ``path``; returns its slug."""
    LocalFileSystem(basepath=str(path)).save(name, overwrite=True)
    return f"local-file-system/{name}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python deployments/result_storage.py",
        description="Save the LocalFileSystem block that holds imagehop's flow results.",
    )
    parser.add_argument(
        "path", type=Path, help="folder for the results, the same for workers and readers"
    )
    parser.add_argument("--name", default=RESULTS_BLOCK, help="block name (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not PREFECT_API_URL.value():
        sys.stderr.write(
            "result_storage: error: PREFECT_API_URL is not set: the block would go to a "
            "temporary server that no worker sees\n"
        )
        return 2
    path = args.path.expanduser().absolute()
    slug = save_local_storage(path, args.name)
    sys.stdout.write(f"saved block {slug} -> {path}\n")
    if not path.is_dir():
        sys.stdout.write(f"note: {path} does not exist here; the first run creates it\n")
    if args.name != RESULTS_BLOCK:
        sys.stdout.write(f"set PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK: {slug} in prefect.yaml\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
