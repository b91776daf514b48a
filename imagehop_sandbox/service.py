"""The local cloud's API service: Identity, Images and Servers of both regions, one process.

Run by the supervisor as ``python -m imagehop_sandbox.service <state_dir> [--fresh]`` once the
Swift clusters answer. Each API listens on its own port of 127.0.0.1 (fixed in
``ports.json``). On start it seeds a new state folder, resumes interrupted background work,
then serves until SIGTERM. ``--fresh`` (a new ``up``) drops run-time option overrides and
pending injected faults; a restart of the service alone keeps them.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from imagehop_sandbox import state_files
from imagehop_sandbox.admin_api import AdminApi
from imagehop_sandbox.cloud import Cloud
from imagehop_sandbox.compute_api import ComputeApi
from imagehop_sandbox.identity_api import IdentityApi, render_identity_error
from imagehop_sandbox.images_api import ImagesApi
from imagehop_sandbox.info import REGIONS, read_info
from imagehop_sandbox.jobs import Jobs
from imagehop_sandbox.keystone_v3 import KeystoneV3Api
from imagehop_sandbox.seed import seed
from imagehop_sandbox.state import Store
from imagehop_sandbox.web import App, Server

log = logging.getLogger("imagehop_sandbox.service")


def build_servers(cloud: Cloud, jobs: Jobs) -> list[Server]:
    ports = cloud.info.ports
    front = App("identity", render_identity_error)
    IdentityApi(cloud, front)
    KeystoneV3Api(cloud, front)
    AdminApi(cloud, front)
    servers = [Server(front, ports["identity"])]
    for region in REGIONS:
        servers.append(Server(ImagesApi(cloud, jobs, region).app, ports[f"images-{region}"]))
        servers.append(Server(ComputeApi(cloud, jobs, region).app, ports[f"compute-{region}"]))
    return servers


def serve(state_dir: Path, fresh: bool) -> None:
    info = read_info(state_dir)
    if info is None:
        raise SystemExit(f"no sandbox.json in {state_dir}: start the local cloud with `up`")
    store = Store(state_files.database(state_dir))
    secret = Path(info.token_secret_file).read_text().strip()
    cloud = Cloud(info, store, state_files.load_options(state_dir), secret)
    if fresh:
        cloud.reset_options()
        cloud.clear_faults()
    jobs = Jobs(cloud)
    seed(cloud)
    jobs.resume_all()
    servers = build_servers(cloud, jobs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for server in servers:
        server.start()
    log.info("serving on ports %s", sorted(info.ports.values()))
    while not stop.wait(0.5):
        pass
    log.info("stopping")
    for server in servers:
        server.stop()
    store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        filename=state_files.log_dir(args.state_dir) / "api.log",
        level=logging.INFO,
        format="%(asctime)s %(process)d %(threadName)s %(name)s %(levelname)s %(message)s",
    )
    serve(args.state_dir, args.fresh)


if __name__ == "__main__":
    main()
