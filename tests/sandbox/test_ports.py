"""Ports of the local cloud's servers: chosen once, bound later by another process."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from imagehop_sandbox import state_files, swift_cluster
from imagehop_sandbox.swift_cluster import PORT_FLOOR, _ephemeral_floor, free_ports


def test_ports_are_free_distinct_and_below_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No outgoing connection can take a port below the ephemeral range before the server
    binds it (that race failed a start with EADDRINUSE)."""
    monkeypatch.delenv(swift_cluster.PORT_RANGE_VARIABLE, raising=False)  # set per test worker
    ports = free_ports(12)
    assert len(set(ports)) == 12
    assert all(PORT_FLOOR <= port < _ephemeral_floor() for port in ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(swift_cluster.PORT_RANGE_VARIABLE, raising=False)
    with socket.socket() as held:
        held.bind(("127.0.0.1", PORT_FLOOR + 7))
        held.listen()
        order = [PORT_FLOOR + 7, PORT_FLOOR + 8]  # the held port comes first
        monkeypatch.setattr(
            swift_cluster.random,
            "shuffle",
            lambda pool: pool.sort(key=lambda port: order.index(port) if port in order else 9),
        )
        assert free_ports(1) == [PORT_FLOOR + 8]


def test_a_port_range_variable_confines_the_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(swift_cluster.PORT_RANGE_VARIABLE, f"{PORT_FLOOR + 100}-{PORT_FLOOR + 131}")
    ports = free_ports(12)
    assert len(set(ports)) == 12
    assert all(PORT_FLOOR + 100 <= port <= PORT_FLOOR + 131 for port in ports)


def test_a_bad_port_range_says_how_to_write_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(swift_cluster.PORT_RANGE_VARIABLE, "lots")
    with pytest.raises(ValueError, match=r"e\.g\. 20000-25999"):
        free_ports(1)


def test_ports_handed_out_once_are_not_handed_out_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """One cloud picks its two clusters' ports and its API's ports one after the other, none
    bound yet: a Swift server given an API port took it first and the API failed with
    EADDRINUSE (CI, twice)."""
    monkeypatch.setattr(swift_cluster, "_HANDED_OUT", set())
    monkeypatch.setenv(swift_cluster.PORT_RANGE_VARIABLE, f"{PORT_FLOOR + 200}-{PORT_FLOOR + 231}")
    dfw, iad, api = free_ports(8), free_ports(8), free_ports(8)
    assert len(set(dfw) | set(iad) | set(api)) == 24


def test_ports_recorded_in_a_state_folder_are_not_handed_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A state folder started again keeps its ports; new ones picked beside them avoid them."""
    monkeypatch.setattr(swift_cluster, "_HANDED_OUT", set())
    low = PORT_FLOOR + 300
    monkeypatch.setenv(swift_cluster.PORT_RANGE_VARIABLE, f"{low}-{low + 9}")
    recorded = {name: low + i for i, name in enumerate(state_files.PORT_NAMES)}
    (tmp_path / state_files.PORTS).write_text(json.dumps(recorded))
    assert state_files.ensure_ports(tmp_path) == recorded
    fresh = free_ports(10 - len(recorded))
    assert not set(fresh) & set(recorded.values())
