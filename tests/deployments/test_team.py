"""A team-shaped set-up: `prefect server` on PostgreSQL, two process workers on one pool, the
deployments of prefect.yaml, the global limits, the local cloud; a fanned-out batch and, beside
it, three runs of ``replicate-server/nightly-dr`` keeping 2 copies of the demo server.

It takes minutes (every image waits one 30 s poll for its export and one for its import, and
the caps make the images queue), so it is deselected by default (marker ``team``); run it with

    .venv/bin/python -m pytest -n 0 -m team tests/deployments/test_team.py -s

(``-s`` shows the wall time and the copies it prints). The nightly runs go one after another
(the deployment's ``concurrency_limit`` of 1 with CANCEL_NEW would cancel a second one started
while the first runs) while the batch runs, so they share the workers and the caps with it.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imagehop.procedure.request import (
    DEFAULT_EXPORT_CONTAINER,
    DEFAULT_IMPORT_CONTAINER,
    RUN_KEY_PROPERTY,
    SERVER_PROPERTY,
    SNAPSHOT_PROPERTY,
    segments_container,
)
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
from tests.deployments.expected import NIGHTLY
from tests.deployments.postgres import BIN, DATABASE, USER, Postgres, running_postgres
from tests.deployments.processes import Api
from tests.flows.helpers import new_image, objects

pytestmark = [pytest.mark.cloud, pytest.mark.deployment, pytest.mark.team]

IMAGES = 4
CAP = 2  # export and import tasks per region; 3 image runs fit the workers at once
#: Cloud tasks last this long here (not the test scale's fraction of a second), so that the
#: tasks of image runs started a few seconds apart would overlap if nothing capped them.
TASK_SECONDS = 20.0
EVENT_WAIT_SECONDS = 60.0
WORKERS = ("team-worker-a", "team-worker-b")
BATCH_TIMEOUT_SECONDS = 900.0
DR_RUNS = 3
KEEP = 2
DR_RUN_TIMEOUT_SECONDS = 600.0  # one run: a snapshot, an export and an import, maybe queued


def test_two_workers_on_a_postgres_server_share_a_batch_and_nightly_copies_within_caps(
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
                    nightly = NightlyRuns(operator.api, local_cloud)
                    nightly.start_first()  # the nightly runs are the longer part: first
                    batch_run = start_weekly_batch(
                        operator.api, images, max_parallel_transfers=IMAGES
                    )
                    dr = nightly.three_runs()
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
    print(
        f"replicate-server: {DR_RUNS} runs keeping {KEEP}, copies kept {len(dr.kept)}, "
        f"deleted {len(dr.deleted)}; {dr.seconds:.0f} s wall time (beside the batch)"
    )

    assert batch["state_type"] == "COMPLETED"
    assert [row["status"] for row in table] == ["succeeded"] * IMAGES, table
    assert {row["source"] for row in table} == set(images)
    assert len(runs) == IMAGES and all(r["state_type"] == "COMPLETED" for r in runs)
    took = {r["id"]: r["labels"]["prefect.worker.name"] for r in [*runs, batch, *dr.runs]}
    assert set(took.values()) == set(WORKERS), took  # both workers ran part of the batch
    for run_id, worker in took.items():
        assert f"Worker '{worker}' submitting flow run '{run_id}'" in worker_logs[worker]
    assert 1 <= peaks["DFW"]["export_tasks_running"] <= CAP, peaks
    assert 1 <= peaks["IAD"]["import_tasks_running"] <= CAP, peaks
    # every image and every nightly copy took one slot of each (the caps held across both)
    assert acquired == dict.fromkeys(ACQUIRED, IMAGES + DR_RUNS), acquired
    assert held == dict.fromkeys(held, CAP) and len(held) == 6  # runs do not change limits
    assert stored_runs >= IMAGES + 1 + DR_RUNS  # the runs live in PostgreSQL, not SQLite
    assert not list(Path(server.home).glob("*.db"))

    assert [r["state_type"] for r in dr.runs] == ["COMPLETED"] * DR_RUNS, dr.runs
    assert len(dr.made) == DR_RUNS and all(dr.snapshots.values())  # each run a new copy
    assert len({dr.made[copy][RUN_KEY_PROPERTY] for copy in dr.made}) == DR_RUNS
    oldest, *newest = dr.made
    assert dr.kept == newest and dr.deleted == [oldest]  # the two newest copies remain
    assert dr.left == {*newest, dr.look_alike}  # of every image with the property
    snapshots = set(_snapshots_in_dfw(local_cloud).values())
    assert dr.snapshots[oldest] not in snapshots  # found after its run, deleted by the third
    assert all(dr.snapshots[copy] in snapshots for copy in newest)
    assert dr.first_intermediates  # kept (cleanup: keep) until retention deleted them
    assert _intermediates(local_cloud, dr.snapshots[oldest]) == []
    assert all(_intermediates(local_cloud, dr.snapshots[copy]) for copy in newest)


ACQUIRED = ("imagehop-export-DFW", "imagehop-import-IAD", "imagehop-copy-DFW-IAD")


@dataclass
class Replication:
    """What three nightly runs left in the local cloud."""

    runs: list[dict[str, Any]]  # the flow runs, in the order they ran
    made: dict[str, dict[str, Any]]  # copy id -> its image record, oldest first
    snapshots: dict[str, str]  # copy id -> the source snapshot imagehop made for it
    first_intermediates: list[str]  # the first copy's objects in Cloud Files after its run
    look_alike: str
    left: set[str]  # images in IAD with the coordinating property of the server, at the end
    seconds: float

    @property
    def kept(self) -> list[str]:
        return [copy for copy in self.made if copy in self.left]

    @property
    def deleted(self) -> list[str]:
        return [copy for copy in self.made if copy not in self.left]


class NightlyRuns:
    """``nightly-dr`` on the demo server with keep=2, started through the server one after
    another (each run a new scheduled start, so a new run key and a new copy). The intermediates
    are kept (cleanup: keep) so that retention has them to delete. After the first run, a
    look-alike image made by hand: the first copy's name and the coordinating property of the
    server, none of imagehop's markers."""

    def __init__(self, api: Api, cloud: LocalCloud) -> None:
        self.api, self.cloud, self.began = api, cloud, time.monotonic()
        deployment = api.deployments()[NIGHTLY]
        self.path = f"/deployments/{deployment['id']}/create_flow_run"
        request = deployment["parameters"]["request"]
        self.key, self.server_id = request["coordinating_property_key"], _demo_server(cloud)
        self.request = {
            **request,
            "source": {"server_id": self.server_id},
            "keep": KEEP,
            "cleanup": "keep",
        }
        self.before = {image["id"] for image in self._with_property("IAD")}
        self.first_run = ""

    def start_first(self) -> None:
        """The first run, started before the batch so that it has a worker slot at once."""
        self.first_run = self._start()

    def three_runs(self) -> Replication:
        """Wait for the first run, then start and wait for the others, one at a time."""
        runs: list[dict[str, Any]] = []
        made: dict[str, dict[str, Any]] = {}
        snapshots: dict[str, str] = {}
        look_alike, first_intermediates = "", []
        for number in range(DR_RUNS):
            flow_run = self.first_run if number == 0 else self._start()
            runs.append(wait_final(self.api, flow_run, DR_RUN_TIMEOUT_SECONDS))
            new = [
                image
                for image in self._with_property("IAD")
                if SERVER_PROPERTY in image and image["id"] not in {*self.before, *made}
            ]
            by_run_key = _snapshots_in_dfw(self.cloud)
            for image in new:
                made[image["id"]] = image
                snapshots[image["id"]] = by_run_key.get(str(image.get(RUN_KEY_PROPERTY)), "")
            if not look_alike and made:
                first, first_image = next(iter(made.items()))
                first_intermediates = _intermediates(self.cloud, snapshots[first])
                look_alike = self.cloud.admin.create_image(
                    "IAD",
                    self.cloud.main.tenant_id,
                    name=first_image["name"],
                    properties={self.key: self.server_id},
                )["id"]
        left = {image["id"] for image in self._with_property("IAD")}
        seconds = time.monotonic() - self.began
        return Replication(runs, made, snapshots, first_intermediates, look_alike, left, seconds)

    def _start(self) -> str:
        flow_run = self.api.call("POST", self.path, {"parameters": {"request": self.request}})
        return str(flow_run["id"])

    def _with_property(self, region: str) -> list[dict[str, Any]]:
        return _images(self.cloud, region, self.key, self.server_id)


def _demo_server(cloud: LocalCloud) -> str:
    return cloud.admin.seed()["DFW"]["demo_server"]


def _images(cloud: LocalCloud, region: str, key: str, value: str) -> list[dict[str, Any]]:
    """The main account's images in that region whose property ``key`` is ``value``."""
    response = cloud.session().images(region, "GET", "/images", params={key: value})
    response.raise_for_status()
    images: list[dict[str, Any]] = response.json()["images"]
    return images


def _snapshots_in_dfw(cloud: LocalCloud) -> dict[str, str]:
    """run key -> id of the snapshots imagehop made of the demo server in DFW."""
    found = _images(cloud, "DFW", SNAPSHOT_PROPERTY, _demo_server(cloud))
    return {str(image.get(RUN_KEY_PROPERTY)): image["id"] for image in found}


def _intermediates(cloud: LocalCloud, source_image_id: str) -> list[str]:
    """Exported (DFW) and staged (IAD) objects of that source image."""
    staged = segments_container(DEFAULT_IMPORT_CONTAINER)
    return [
        *objects(cloud, "DFW", DEFAULT_EXPORT_CONTAINER, source_image_id),
        *objects(cloud, "IAD", DEFAULT_IMPORT_CONTAINER, source_image_id),
        *objects(cloud, "IAD", staged, source_image_id),
    ]


def _acquisitions(api: Api) -> dict[str, int]:
    """Slots taken per limit, once Prefect's event persister caught up (bounded wait)."""
    deadline = time.monotonic() + EVENT_WAIT_SECONDS
    while True:
        counts = limit_acquisitions(api)
        done = set(ACQUIRED) <= set(counts) and min(counts[n] for n in ACQUIRED) >= IMAGES + DR_RUNS
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
