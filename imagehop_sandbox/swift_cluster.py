"""One real OpenStack Swift cluster on 127.0.0.1 (account, container, object, proxy servers).

Each sandbox region is one such cluster with its own rings, hash prefix and disk folder, so the
regions are as independent as Cloud Files regions are. The proxy accepts the local Identity's
tokens (:mod:`imagehop_sandbox.swift_auth`), has SLO, DLO and bulk delete with read throttling
off, the account/container info cache a production proxy keeps in memcache
(:mod:`imagehop_sandbox.swift_cache`), and an optional single-object size cap standing in for
Cloud Files' 5 GiB limit. Swift's own ``tempurl`` middleware sits before the auth filter: once
an account owner sets a key (``X-Account-Meta-Temp-URL-Key`` or a container's
``X-Container-Meta-Temp-URL-Key``), a URL made with ``swiftclient.utils.generate_temp_url``
reads (GET/HEAD) or writes an object without a token until it expires, SLO and DLO manifests
included (the whole concatenated bytes).

The configuration is written once into ``root``; :meth:`SwiftCluster.start` can then be called
again after a stop (same ports, same data), which is what "restart the local cloud" means.
"""

from __future__ import annotations

import json
import os
import pwd
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

SERVERS = ("account", "container", "object", "proxy")
SERVER_MODULES = {
    "account": "swift.account.server",
    "container": "swift.container.server",
    "object": "swift.obj.server",
    "proxy": "swift.proxy.server",
}
# 1 MiB network/disk chunks instead of Swift's 64 KiB: several times less CPU per byte on
# loopback, for every client alike (imagehop, rclone, the swift CLI).
CHUNK = 1024 * 1024

SIZELIMIT_FILTER = '''\
"""Per-cluster single-object cap (Swift reads [swift-constraints] only from /etc/swift)."""
from swift.common import constraints


def filter_factory(global_conf, **local_conf):
    limit = int(local_conf["max_file_size"])
    constraints.MAX_FILE_SIZE = limit
    constraints.EFFECTIVE_CONSTRAINTS["max_file_size"] = limit
    return lambda app: app
'''


#: Lowest port :func:`free_ports` hands out.
PORT_FLOOR = 20_000
#: ``LOW-HIGH``: the only ports :func:`free_ports` hands out, e.g. one range per local cloud
#: started at the same time (Swift's servers bind with SO_REUSEPORT, so two clouds that pick
#: the same port both get it and share its connections).
PORT_RANGE_VARIABLE = "IMAGEHOP_SANDBOX_PORTS"
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


#: Ports this process has handed out or loaded from a state folder: free now, bound later.
_HANDED_OUT: set[int] = set()


def free_ports(count: int) -> list[int]:
    """``count`` different ports free on 127.0.0.1 now, for servers that bind them later.

    They are drawn below the kernel's ephemeral range: a port from that range (what binding
    port 0 gives) can be taken by any process's outgoing connection before the server binds
    it, which failed the API service's start with EADDRINUSE now and then. A port this
    process already handed out (or loaded, see :func:`claim_ports`) is never handed out
    again: one cloud picks its clusters' and its API's ports one after the other, before any
    is bound, and a Swift server given an API port would take it first (SO_REUSEPORT).
    """
    pool = [port for port in _port_pool(count) if port not in _HANDED_OUT]
    random.shuffle(pool)
    sockets: list[socket.socket] = []
    try:
        for port in pool:
            if len(sockets) == count:
                break
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        while len(sockets) < count:  # no room below the ephemeral range: any free port
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            if sock.getsockname()[1] in _HANDED_OUT:
                sock.close()
                continue
            sockets.append(sock)
        ports = [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    claim_ports(ports)
    return ports


def claim_ports(ports: Iterable[int]) -> None:
    """Keep :func:`free_ports` from handing out ``ports`` (recorded in a state folder)."""
    _HANDED_OUT.update(ports)


def _port_pool(count: int) -> list[int]:
    """:data:`PORT_RANGE_VARIABLE`'s ports, else those from :data:`PORT_FLOOR` up to the
    ephemeral range (empty when too few)."""
    wanted = os.environ.get(PORT_RANGE_VARIABLE, "").strip()
    if wanted:
        first, _, last = wanted.partition("-")
        try:
            return list(range(int(first), int(last) + 1))
        except ValueError:
            raise ValueError(
                f"{PORT_RANGE_VARIABLE}={wanted!r}: give a range of ports, e.g. 20000-25999"
            ) from None
    ceiling = _ephemeral_floor()
    return list(range(PORT_FLOOR, ceiling)) if ceiling - PORT_FLOOR >= 16 * count else []


def _ephemeral_floor() -> int:
    """The lowest port of the kernel's ephemeral range (32768 where it cannot be read)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


@dataclass
class ClusterConfig:
    """What is fixed when a cluster is first written; saved as ``cluster.json``."""

    name: str
    ports: dict[str, int]
    max_file_size: int | None = None
    max_manifest_segments: int = 1000

    @property
    def storage_host(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy']}"


@dataclass
class SwiftCluster:
    """A Swift cluster rooted at ``root``; call :meth:`prepare` once, then start/stop."""

    root: Path
    config: ClusterConfig
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def prepare(
        cls,
        root: Path,
        name: str,
        token_secret_file: Path,
        max_file_size: int | None = None,
        max_manifest_segments: int = 1000,
    ) -> SwiftCluster:
        """Load the cluster at ``root``, or write its configuration and rings first.

        The server configurations hold absolute paths, so a loaded cluster writes them again:
        the state folder may have been moved or renamed since.
        """
        saved = root / "cluster.json"
        if saved.exists():
            loaded = cls(root, ClusterConfig(**json.loads(saved.read_text())))
            claim_ports(loaded.config.ports.values())
            loaded._write_configs(token_secret_file)
            return loaded
        config = ClusterConfig(
            name,
            dict(zip(SERVERS, free_ports(len(SERVERS)), strict=True)),
            max_file_size,
            max_manifest_segments,
        )
        cluster = cls(root, config)
        cluster._write(token_secret_file)
        saved.write_text(json.dumps(asdict(config)))
        return cluster

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def storage_host(self) -> str:
        """``http://127.0.0.1:<proxy port>``; the account path ``/v1/<account>`` follows."""
        return self.config.storage_host

    def _write(self, token_secret_file: Path) -> None:
        for sub in ("etc", "srv/d1", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._write_configs(token_secret_file)
        self._write_rings()

    def _write_configs(self, token_secret_file: Path) -> None:
        name = self.config.name.lower()
        (self.etc / "swift.conf").write_text(
            f"[swift-hash]\nswift_hash_path_prefix = {name}-prefix\n"
            f"swift_hash_path_suffix = {name}-suffix\n\n"
            "[storage-policy:0]\nname = Policy-0\ndefault = yes\n"
        )
        for server in ("account", "container", "object"):
            (self.etc / f"{server}-server.conf").write_text(self._server_conf(server))
        (self.etc / "proxy-server.conf").write_text(self._proxy_conf(token_secret_file))
        (self.etc / "imagehop_sizelimit.py").write_text(SIZELIMIT_FILTER)

    def _default_section(self, server: str) -> str:
        user = pwd.getpwuid(os.getuid()).pw_name
        return (
            "[DEFAULT]\nbind_ip = 127.0.0.1\n"
            f"bind_port = {self.config.ports[server]}\nworkers = 0\nuser = {user}\n"
            f"swift_dir = {self.etc}\ndevices = {self.root / 'srv'}\nmount_check = false\n"
            "disable_fallocate = true\nlog_level = INFO\n"
            f"log_name = {self.config.name.lower()}-{server}\n"
        )

    def _server_conf(self, server: str) -> str:
        extra = ""
        if server == "object":
            extra = f"network_chunk_size = {CHUNK}\ndisk_chunk_size = {CHUNK}\n"
        return (
            self._default_section(server)
            + f"\n[pipeline:main]\npipeline = {server}-server\n\n"
            + f"[app:{server}-server]\nuse = egg:swift#{server}\n{extra}"
        )

    def _proxy_conf(self, token_secret_file: Path) -> str:
        cap = " sizelimit" if self.config.max_file_size else ""
        text = self._default_section("proxy") + (
            "\n[pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy-logging "
            f"imagehop_cache listing_formats bulk tempurl imagehop_auth copy slo dlo "
            f"versioned_writes{cap} "
            "proxy-logging proxy-server\n\n"
            "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n"
            "allow_account_management = true\nnode_timeout = 60\nconn_timeout = 5\n"
            f"object_chunk_size = {CHUNK}\nclient_chunk_size = {CHUNK}\n\n"
            "[filter:imagehop_auth]\nuse = call:imagehop_sandbox.swift_auth:filter_factory\n"
            f"token_secret_file = {token_secret_file}\n\n"
            "[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n\n"
            "[filter:imagehop_cache]\nuse = call:imagehop_sandbox.swift_cache:filter_factory\n\n"
            "[filter:slo]\nuse = egg:swift#slo\nrate_limit_segments_per_sec = 0\n"
            f"max_manifest_segments = {self.config.max_manifest_segments}\n\n"
            "[filter:dlo]\nuse = egg:swift#dlo\nrate_limit_segments_per_sec = 0\n\n"
        )
        for plain in ("catch_errors", "gatekeeper", "healthcheck", "listing_formats", "bulk"):
            text += f"[filter:{plain}]\nuse = egg:swift#{plain}\n\n"
        text += "[filter:copy]\nuse = egg:swift#copy\n\n"
        text += "[filter:tempurl]\nuse = egg:swift#tempurl\n\n"
        text += "[filter:versioned_writes]\nuse = egg:swift#versioned_writes\n\n"
        if self.config.max_file_size:
            text += (
                "[filter:sizelimit]\nuse = call:imagehop_sizelimit:filter_factory\n"
                f"max_file_size = {self.config.max_file_size}\n"
            )
        return text

    def _write_rings(self) -> None:
        from swift.common.ring import RingBuilder

        for server in ("account", "container", "object"):
            builder = RingBuilder(6, 1, 1)
            builder.add_dev(
                {
                    "region": 1,
                    "zone": 1,
                    "ip": "127.0.0.1",
                    "port": self.config.ports[server],
                    "device": "d1",
                    "weight": 100,
                    "meta": "",
                }
            )
            builder.rebalance()
            builder.get_ring().save(str(self.etc / f"{server}.ring.gz"))

    def start(self) -> None:
        """Start the four servers as child processes (logs in ``root/log``)."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(self.etc), *sys.path]))
        for server in SERVERS:
            log: IO[bytes]
            with open(self.root / "log" / f"{server}.log", "ab") as log:
                self.processes[server] = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        f"import sys; from {SERVER_MODULES[server]} import main; sys.exit(main())",
                        str(self.etc / f"{server}-server.conf"),
                        "-v",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes.values()]

    def check_alive(self) -> None:
        """Raise if a server process has exited."""
        for server, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"Swift {self.config.name} {server} server exited with "
                    f"{process.returncode}; see {self.root / 'log' / (server + '.log')}"
                )

    def is_ready(self, account: str, token: str) -> bool:
        """True once an authenticated PUT reaches the account, container and object servers."""
        self.check_alive()
        base = f"{self.storage_host}/v1/{account}"
        try:
            for url, data in ((f"{base}/.ready", None), (f"{base}/.ready/probe", b"ok")):
                request = urllib.request.Request(
                    url, data=data, method="PUT", headers={"X-Auth-Token": token}
                )
                urllib.request.urlopen(request, timeout=5).close()
        except (OSError, urllib.error.HTTPError):
            return False
        return True

    def wait_ready(self, account: str, token: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_ready(account, token):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Swift {self.config.name} not ready after {timeout:.0f}s; "
                    f"see {self.root / 'log'}"
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM each server, SIGKILL what is left after ``timeout``."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
