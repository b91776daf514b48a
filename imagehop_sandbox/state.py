"""Durable state of the local cloud's API service: one SQLite file in the state folder.

Resources (images, tasks, servers, issued tokens) are JSON documents keyed by kind and id.
One lock serialises every access, so a read-modify-write (:meth:`Store.update`) is atomic
between the request threads and the background jobs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

Doc = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, id TEXT NOT NULL, region TEXT, doc TEXT NOT NULL,
    PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS counters (
    region TEXT NOT NULL, name TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (region, name));
CREATE TABLE IF NOT EXISTS peaks (
    region TEXT NOT NULL, name TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (region, name));
CREATE TABLE IF NOT EXISTS polls (task_id TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS polls_task ON polls (task_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def get(self, kind: str, key: str) -> Doc | None:
        with self.lock:
            row = self.db.execute(
                "SELECT doc FROM docs WHERE kind = ? AND id = ?", (kind, key)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put(self, kind: str, key: str, doc: Doc, region: str | None = None) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO docs (kind, id, region, doc) VALUES (?, ?, ?, ?)",
                (kind, key, region, json.dumps(doc)),
            )

    def delete(self, kind: str, key: str) -> None:
        with self.lock:
            self.db.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, key))

    def all(self, kind: str, region: str | None = None) -> list[Doc]:
        query, args = "SELECT doc FROM docs WHERE kind = ?", [kind]
        if region is not None:
            query += " AND region = ?"
            args.append(region)
        with self.lock:
            rows = self.db.execute(query, args).fetchall()
        return [dict(json.loads(row[0])) for row in rows]

    def update(self, kind: str, key: str, change: Callable[[Doc], None]) -> Doc | None:
        """Apply ``change`` to the stored document in place and save it; None if absent."""
        with self.lock:
            row = self.db.execute(
                "SELECT doc, region FROM docs WHERE kind = ? AND id = ?", (kind, key)
            ).fetchone()
            if row is None:
                return None
            doc = dict(json.loads(row[0]))
            change(doc)
            self.put(kind, key, doc, row[1])
            return doc

    def bump(self, region: str, name: str) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO counters (region, name, n) VALUES (?, ?, 1) "
                "ON CONFLICT (region, name) DO UPDATE SET n = n + 1",
                (region, name),
            )

    def counters(self) -> dict[str, dict[str, int]]:
        with self.lock:
            rows = self.db.execute("SELECT region, name, n FROM counters").fetchall()
        result: dict[str, dict[str, int]] = {}
        for region, name, n in rows:
            result.setdefault(region, {})[name] = n
        return result

    def raise_peak(self, region: str, name: str, n: int) -> None:
        """Keep the highest ``n`` seen for ``(region, name)``."""
        with self.lock:
            self.db.execute(
                "INSERT INTO peaks (region, name, n) VALUES (?, ?, ?) "
                "ON CONFLICT (region, name) DO UPDATE SET n = max(n, excluded.n)",
                (region, name, n),
            )

    def peaks(self) -> dict[str, dict[str, int]]:
        with self.lock:
            rows = self.db.execute("SELECT region, name, n FROM peaks").fetchall()
        result: dict[str, dict[str, int]] = {}
        for region, name, n in rows:
            result.setdefault(region, {})[name] = n
        return result

    def clear_peaks(self) -> None:
        with self.lock:
            self.db.execute("DELETE FROM peaks")

    def record_poll(self, task_id: str, at: float) -> None:
        with self.lock:
            self.db.execute("INSERT INTO polls (task_id, at) VALUES (?, ?)", (task_id, at))

    def polls(self, task_id: str) -> list[float]:
        with self.lock:
            rows = self.db.execute(
                "SELECT at FROM polls WHERE task_id = ? ORDER BY at", (task_id,)
            ).fetchall()
        return [row[0] for row in rows]

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self.lock:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )

    def update_meta(self, key: str, default: Any, change: Callable[[Any], Any]) -> Any:
        """Replace a meta value by ``change(old)`` atomically; returns what ``change`` returned."""
        with self.lock:
            new = change(self.get_meta(key, default))
            self.set_meta(key, new)
            return new
