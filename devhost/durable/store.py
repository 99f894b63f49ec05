"""The task hub in SQLite: instances, their history, their inbox and the activity work queue.

One table per kind of record; every state change the engine makes is one `transaction()`,
so a host killed at any point finds either all of an episode's effects or none of them.

- `instances`: one row per instance: status, input/output/custom status (JSON text),
  times, parent link, `execution` (changes on ContinueAsNew and on re-use of an id, so
  late completions of an older generation are recognised and dropped), and `core` (the
  core's bookkeeping, `OrchestrationState.to_json()`).
- `history`: the played events, one row each, in order.
- `inbox`: messages waiting for an instance's next episode. `visible_at` in the future
  makes a row a durable timer.
- `work`: activities scheduled and not yet completed; all of them run again after a
  restart (at-least-once, as in Azure).

Times are stored as epoch seconds (REAL) for filtering and shown as ISO text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    parent_instance_id TEXT,
    parent_task_id INTEGER,
    parent_execution TEXT,
    execution TEXT NOT NULL,
    core TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_by_created ON instances (created, instance_id);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution TEXT NOT NULL,
    visible_at REAL NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_by_instance ON inbox (instance_id);
CREATE TABLE IF NOT EXISTS work (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT,
    scheduled_at REAL NOT NULL
);
"""


@dataclass
class WorkItem:
    """One activity call to run: the row in `work` and what to call."""
    row_id: int
    instance_id: str
    execution: str
    task_id: int
    name: str
    input: str | None
    scheduled_at: float


class Store:
    """A SQLite connection shared by the engine's loop thread and status readers (locked)."""

    def __init__(self, path: str | Path = ":memory:"):
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process (only an OS crash may lose
            # the last commits), which is what "kill the host" means here.
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self):
        """One atomic change: BEGIN IMMEDIATE ... COMMIT, rolled back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params=()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # ---- reads ---------------------------------------------------------------------

    def instance(self, instance_id: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM instances WHERE instance_id = ?", (instance_id,))
        return rows[0] if rows else None

    def history(self, instance_id: str) -> list[dict]:
        rows = self.query("SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,))
        return [json.loads(r["event"]) for r in rows]

    def unfinished_instances(self) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM instances WHERE status IN "
                          "('Pending', 'Running', 'Suspended', 'ContinuedAsNew')")

    def inbox(self) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM inbox ORDER BY id")

    def work(self) -> list[WorkItem]:
        rows = self.query("SELECT * FROM work ORDER BY id")
        return [WorkItem(r["id"], r["instance_id"], r["execution"], r["task_id"], r["name"],
                         r["input"], r["scheduled_at"]) for r in rows]

    # ---- writes (inside a transaction: pass the connection `db`) -------------------

    @staticmethod
    def append_history(db, instance_id: str, first_seq: int, events: list[dict]) -> None:
        db.executemany("INSERT INTO history (instance_id, seq, event) VALUES (?, ?, ?)",
                       [(instance_id, first_seq + i, json.dumps(e)) for i, e in enumerate(events)])

    @staticmethod
    def add_message(db, instance_id: str, execution: str, message: dict, visible_at: float) -> int:
        cursor = db.execute("INSERT INTO inbox (instance_id, execution, visible_at, message) "
                            "VALUES (?, ?, ?, ?)", (instance_id, execution, visible_at, json.dumps(message)))
        return cursor.lastrowid

    @staticmethod
    def add_work(db, instance_id: str, execution: str, task_id: int, name: str,
                 input_json: str | None, scheduled_at: float) -> int:
        cursor = db.execute("INSERT INTO work (instance_id, execution, task_id, name, input, scheduled_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (instance_id, execution, task_id, name, input_json, scheduled_at))
        return cursor.lastrowid

    @staticmethod
    def instance_status(db, instance_id: str) -> str | None:
        row = db.execute("SELECT status FROM instances WHERE instance_id = ?", (instance_id,)).fetchone()
        return row["status"] if row is not None else None

    @staticmethod
    def insert_instance(db, instance_id: str, name: str, status: str, input_json: str | None,
                        now: float, parent: tuple[str, int, str] | None, execution: str,
                        core_json: str) -> None:
        db.execute("INSERT INTO instances (instance_id, name, status, input, created, updated, "
                   "parent_instance_id, parent_task_id, parent_execution, execution, core) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (instance_id, name, status, input_json, now, now,
                    *(parent or (None, None, None)), execution, core_json))

    @staticmethod
    def update_instance(db, instance_id: str, status: str, input_json: str | None,
                        output_json: str | None, custom_status: str | None, replayed: bool,
                        now: float, execution: str, core_json: str) -> None:
        """Record an episode's outcome; the custom status only changes if the episode replayed
        the orchestrator (suspend and terminate episodes keep the last one)."""
        db.execute("UPDATE instances SET status = ?, input = ?, output = ?, "
                   "custom_status = CASE WHEN ? THEN ? ELSE custom_status END, "
                   "updated = ?, execution = ?, core = ? WHERE instance_id = ?",
                   (status, input_json, output_json, replayed, custom_status, now,
                    execution, core_json, instance_id))

    @staticmethod
    def delete_messages(db, row_ids: list[int]) -> None:
        db.executemany("DELETE FROM inbox WHERE id = ?", [(row_id,) for row_id in row_ids])

    @staticmethod
    def delete_work(db, row_id: int) -> bool:
        """Remove a finished activity's row; False if it was already gone (terminated, purged)."""
        return db.execute("DELETE FROM work WHERE id = ?", (row_id,)).rowcount == 1

    @staticmethod
    def drop_pending(db, instance_id: str) -> None:
        """Forget an instance's waiting messages, timers and activities (it has finished)."""
        db.execute("DELETE FROM inbox WHERE instance_id = ?", (instance_id,))
        db.execute("DELETE FROM work WHERE instance_id = ?", (instance_id,))

    @staticmethod
    def drop_generation(db, instance_id: str) -> None:
        """Forget an instance's history as well as what is pending (ContinueAsNew); the row stays."""
        db.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))
        Store.drop_pending(db, instance_id)

    @staticmethod
    def delete_instance(db, instance_id: str) -> int:
        """Remove an instance and everything it owns; returns 1 if it existed."""
        Store.drop_generation(db, instance_id)
        return db.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,)).rowcount
