"""A WAN-shaping TCP proxy for the benchmark (loopback only).

Each accepted connection is forwarded to the upstream address with, per connection and per
direction, a bandwidth cap (token bucket) and half the added round-trip latency. Data moves
in blocks of up to 256 KiB through a window of bytes sized to the bandwidth-delay product, so the
proxy holds about as much data in flight as a real path would and costs little CPU; measure
it with ``--rate 0 --latency 0`` (pass-through) against a direct run.

Run standalone::

    python -m benchmarks.wan_proxy --upstream 127.0.0.1:8080 --rate 20e6 --latency 0.040

It prints ``listening <port>`` once per upstream, then forwards until SIGTERM.
``python -m benchmarks.wan_proxy --selftest`` measures the proxy alone: a sender pushes 1 GiB
through it to a sink over 1, 8 and 16 connections, unshaped and shaped.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass

BLOCK = 256 * 1024


@dataclass(frozen=True)
class Shape:
    rate: float  # bytes per second per connection and direction; 0 = unlimited
    latency: float  # added round-trip time in seconds (half each way)

    def window_bytes(self) -> int:
        """Bytes in flight per direction: the bandwidth-delay product plus a little slack.

        Counted in bytes, not blocks: ``recv`` often returns less than a block, and a window
        of a few small blocks would cap a connection below ``rate`` (a 40 ms path then
        carried about 16 of its 20 MB/s).
        """
        return 4 * BLOCK + int(max(self.rate, 0) * self.latency / 2)


class _Window:
    """The bytes in flight in one direction: the reader waits while the window is full."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self.changed = threading.Condition()

    def take(self, count: int) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.used == 0 or self.used + count <= self.limit)
            self.used += count

    def give(self, count: int) -> None:
        with self.changed:
            self.used -= count
            self.changed.notify_all()


class _Pump:
    """One direction of one connection: a reader thread and a paced, delayed writer thread."""

    def __init__(self, source: socket.socket, sink: socket.socket, shape: Shape) -> None:
        self.source, self.sink, self.shape = source, sink, shape
        self.blocks: queue.SimpleQueue[tuple[float, bytes] | None] = queue.SimpleQueue()
        self.window = _Window(shape.window_bytes())
        self.threads = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._write, daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()

    def _read(self) -> None:
        delay = self.shape.latency / 2
        try:
            while data := self.source.recv(BLOCK):
                self.window.take(len(data))
                self.blocks.put((time.monotonic() + delay, data))
        except OSError:
            pass
        self.blocks.put(None)

    def _write(self) -> None:
        # The link's schedule: a block goes out when it has arrived (plus the delay) and the
        # block before it has had its time on the wire. A late wake-up (a busy CPU) does not
        # push the schedule back: the next blocks catch up, as a link with data queued keeps
        # sending, so the proxy delivers its cap however loaded the machine is.
        free_at = 0.0
        try:
            while (item := self.blocks.get()) is not None:
                due, data = item
                free_at = max(free_at, due)
                _sleep_until(free_at)
                self.sink.sendall(data)
                self.window.give(len(data))
                if self.shape.rate > 0:
                    free_at += len(data) / self.shape.rate
            self.sink.shutdown(socket.SHUT_WR)
        except OSError:
            with contextlib.suppress(OSError):
                self.source.shutdown(socket.SHUT_RDWR)
            while (item := self.blocks.get()) is not None:  # let the reader finish
                self.window.give(len(item[1]))


def _sleep_until(moment: float) -> None:
    pause = moment - time.monotonic()
    if pause > 0:
        time.sleep(pause)


def _serve_connection(client: socket.socket, upstream: tuple[str, int], shape: Shape) -> None:
    try:
        server = socket.create_connection(upstream)
    except OSError:
        client.close()
        return
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pumps = [_Pump(client, server, shape), _Pump(server, client, shape)]
    for pump in pumps:
        pump.start()
    for pump in pumps:
        pump.join()
    client.close()
    server.close()


class ShapingProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to ``upstream`` with ``shape``."""

    def __init__(self, upstream: tuple[str, int], shape: Shape) -> None:
        self.upstream, self.shape = upstream, shape
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port: int = self.listener.getsockname()[1]

    def serve_forever(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(
                target=_serve_connection, args=(client, self.upstream, self.shape), daemon=True
            ).start()


def _sink() -> int:
    """A TCP server that counts what it receives and answers the count; returns its port."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)

    def drain(connection: socket.socket) -> None:
        received = 0
        while data := connection.recv(1 << 20):
            received += len(data)
        connection.sendall(str(received).encode())
        connection.close()

    def accept() -> None:
        while True:
            connection, _ = server.accept()
            threading.Thread(target=drain, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(server.getsockname()[1])


def selftest(total: int = 1 << 30) -> None:
    """Print the proxy's throughput and CPU time for a few shapes and connection counts."""
    sink = _sink()
    block = b"\0" * (1 << 20)
    for shape, connections, size in [
        (Shape(0, 0), 1, total),
        (Shape(0, 0), 8, total),
        (Shape(20e6, 0.040), 1, total // 8),
        (Shape(20e6, 0.040), 8, total),
        (Shape(20e6, 0.040), 16, total),
    ]:
        proxy = ShapingProxy(("127.0.0.1", sink), shape)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()

        def send(count: int = size // connections, port: int = proxy.port) -> None:
            with socket.create_connection(("127.0.0.1", port)) as connection:
                for _ in range(count // len(block)):
                    connection.sendall(block)
                connection.shutdown(socket.SHUT_WR)
                connection.recv(100)

        started, cpu = time.monotonic(), time.process_time()
        senders = [threading.Thread(target=send) for _ in range(connections)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        seconds = time.monotonic() - started
        print(
            f"rate {shape.rate / 1e6:g} MB/s, latency {shape.latency * 1000:g} ms, "
            f"{connections} connection(s): {size / seconds / 1e6:.0f} MB/s, "
            f"{time.process_time() - cpu:.2f} CPU s (proxy + sender + sink) in {seconds:.1f} s"
        )
        proxy.listener.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--selftest", action="store_true", help="measure the proxy alone")
    parser.add_argument("--upstream", action="append", help="host:port")
    parser.add_argument("--rate", type=float, default=20e6, help="bytes/s per connection")
    parser.add_argument("--latency", type=float, default=0.040, help="added RTT in seconds")
    args = parser.parse_args(argv)
    if args.selftest:
        selftest()
        return
    if not args.upstream:
        parser.error("--upstream is required")
    shape = Shape(args.rate, args.latency)
    for upstream in args.upstream:
        host, port = upstream.rsplit(":", 1)
        proxy = ShapingProxy((host, int(port)), shape)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        print(f"listening {proxy.port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    threading.Event().wait()


if __name__ == "__main__":
    main()
