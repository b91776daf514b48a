"""A team-shaped set-up: `prefect server` on PostgreSQL, two process workers on one pool, the
deployments of prefect.yaml, the global limits, the local cloud; a fanned-out batch.

It takes minutes (every image waits one 30 s poll for its export and one for its import, and
the caps make the images queue), so it is deselected by default (marker ``team``); run it with

    .venv/bin/python -m pytest -m team tests/deployments/test_team.py -s

(``-s`` shows the wall time it prints). Not covered here yet: ``replicate-server`` three times
with keep=2 (that flow is not on main yet).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from imagehop_sandbox.handle import LocalCloud
from tests.deployments.batches import (
    batch_table,
    global_limits,
    image_runs,
    limit_acquisitions,
    run_limits,
    start_weekly_batch,
    wait_final,
)
from tests.deployments.conftest import running_worker, set_up_operator, start_prefect_server
from tests.deployments.postgres import BIN, DATABASE, USER, Postgres, running_postgres
from tests.deployments.processes import Api
from tests.flows.helpers import new_image

pytestmark = [pytest.mark.cloud, pytest.mark.deployment, pytest.mark.team]

IMAGES = 4
CAP = 2  # export and import tasks per region; 3 image runs fit the workers at once
#: Cloud tasks last this long here (not the test scale's fraction of a second), so that the
#: tasks of image runs started a few seconds apart would overlap if nothing capped them.
TASK_SECONDS = 20.0
EVENT_WAIT_SECONDS = 60.0
WORKERS = ("team-worker-a", "team-worker-b")
BATCH_TIMEOUT_SECONDS = 900.0


def test_two_workers_on_a_postgres_server_share_a_batch_within_the_caps(
    local_cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory
) -> None:
    began = time.monotonic()
    workdir = tmp_path_factory.mktemp("team")
    (workdir / "server").mkdir()
    with running_postgres() as database:
        server = start_prefect_server(
            workdir / "server", PREFECT_API_DATABASE_CONNECTION_URL=database.url
        )
        try:
            operator = set_up_operator(server, local_cloud, workdir, together=False)
            counts = ["--export", str(CAP), "--import", str(CAP), "--copy", str(CAP)]
            run_limits(operator, "--region", "DFW", "--region", "IAD", *counts)
            with (
                running_worker(operator, WORKERS[0]) as first,
                running_worker(operator, WORKERS[1]) as second,
            ):
                operator.deploy()
                images = [new_image(local_cloud, disk_bytes=1024 * 1024 + n) for n in range(IMAGES)]
                local_cloud.admin.clear_peaks()
                with local_cloud.admin.temporary_options(task_processing_seconds=TASK_SECONDS):
                    batch_run = start_weekly_batch(
                        operator.api, images, max_parallel_transfers=IMAGES
                    )
                    batch = wait_final(operator.api, batch_run, BATCH_TIMEOUT_SECONDS)
                runs = image_runs(operator.api, batch_run)
                table = batch_table(operator.api, batch_run)
                acquired = _acquisitions(operator.api)
                held = global_limits(operator.api)
                worker_logs = {
                    WORKERS[0]: first.output(last=10**7),
                    WORKERS[1]: second.output(last=10**7),
                }
            stored_runs = _flow_runs_in(database)
        finally:
            server.stop()
    peaks = local_cloud.admin.peaks()
    print(f"\nteam test: {time.monotonic() - began:.0f} s wall time; peaks {peaks}")

    assert batch["state_type"] == "COMPLETED"
    assert [row["status"] for row in table] == ["succeeded"] * IMAGES, table
    assert {row["source"] for row in table} == set(images)
    assert len(runs) == IMAGES and all(r["state_type"] == "COMPLETED" for r in runs)
    took = {r["id"]: r["labels"]["prefect.worker.name"] for r in [*runs, batch]}
    assert set(took.values()) == set(WORKERS), took  # both workers ran part of the batch
    for run_id, worker in took.items():
        assert f"Worker '{worker}' submitting flow run '{run_id}'" in worker_logs[worker]
    assert 1 <= peaks["DFW"]["export_tasks_running"] <= CAP, peaks
    assert 1 <= peaks["IAD"]["import_tasks_running"] <= CAP, peaks
    every_image = {"imagehop-export-DFW": IMAGES, "imagehop-import-IAD": IMAGES}
    assert acquired == {**every_image, "imagehop-copy-DFW-IAD": IMAGES}, acquired
    assert held == dict.fromkeys(held, CAP) and len(held) == 6  # runs do not change limits
    assert stored_runs >= IMAGES + 1  # the runs live in PostgreSQL, not in a SQLite file
    assert not list(Path(server.home).glob("*.db"))


def _acquisitions(api: Api) -> dict[str, int]:
    """Slots taken per limit, once Prefect's event persister caught up (bounded wait)."""
    wanted = {"imagehop-export-DFW", "imagehop-import-IAD", "imagehop-copy-DFW-IAD"}
    deadline = time.monotonic() + EVENT_WAIT_SECONDS
    while True:
        counts = limit_acquisitions(api)
        done = wanted <= set(counts) and min(counts[name] for name in wanted) >= IMAGES
        if done or time.monotonic() > deadline:
            return counts
        time.sleep(1.0)


def _flow_runs_in(database: Postgres) -> int:
    query = ["-h", "127.0.0.1", "-p", str(database.port), "-U", USER, "-d", DATABASE]
    result = subprocess.run(
        [
            "runuser",
            "-u",
            USER,
            "--",
            str(BIN / "psql"),
            *query,
            "-tAc",
            "SELECT count(*) FROM flow_run",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout.strip())
