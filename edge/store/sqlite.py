"""One way to open an edgewatch SQLite file: durable pragmas, one writer, pooled readers, migrations.

Every store (verdict history, escalation outbox, alerts, trends, and any added later) builds on
``Database``, and subclasses ``Store`` for closing (also as a context manager)::

    MIGRATIONS = (
        "CREATE TABLE IF NOT EXISTS things (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",  # -> 1
        add_column_if_missing("things", "note", "TEXT"),                                    # -> 2
    )
    db = Database(path, "thing store", MIGRATIONS)
    with db.write() as conn:                       # BEGIN IMMEDIATE ... COMMIT, under the writer lock
        conn.execute("INSERT INTO things (body) VALUES (?)", ("x",))
    rows = db.read("SELECT id, body FROM things")  # on a pooled reader connection
    db.close()

Durability: WAL journal with ``synchronous=FULL``. In WAL mode ``NORMAL`` survives a crashed
process but may lose the last commits on power loss, which is how Pi boards usually stop;
``FULL`` fsyncs the WAL at every commit, so a row that a write returned for survives a pulled plug.

Threads: one writer connection, serialised by a lock, and up to ``idle_readers`` pooled reader
connections (WAL lets readers run while the writer commits). Other processes (the CLI reading
while the service writes) wait up to ``busy_timeout_s`` for a lock instead of failing.

Migrations: ``PRAGMA user_version`` counts the steps applied. Step ``n`` (1-based) of the ordered
list moves a file from version ``n - 1`` to ``n``; each step runs in the same transaction as the
version bump, so a crash mid-migration leaves the file at its old version. A file whose version
is newer than the list is refused (an older edgewatch must not write a newer schema).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from edge.errors import StorageError

log = logging.getLogger(__name__)

Migration = str | Callable[[sqlite3.Connection], None]
"""A migration step: an SQL script (statements separated by ';') or a function given the connection."""


class Database:
    """An SQLite file opened the edgewatch way; ``name`` (e.g. 'history') appears in every error."""

    def __init__(
        self,
        path: Path,
        name: str,
        migrations: Sequence[Migration],
        busy_timeout_s: float = 30.0,
        idle_readers: int = 4,
    ) -> None:
        self.path = Path(path)
        self.name = name
        self._busy_timeout_s = busy_timeout_s
        self._max_idle = idle_readers
        self._write_lock = threading.Lock()  # one writer at a time
        self._idle_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the {name} folder {self.path.parent}, so the {name} cannot be opened: {exc}"
            ) from exc
        self._writer = self._connect()
        try:
            self._migrate(migrations)
        except BaseException:
            self.close()
            raise

    @property
    def schema_version(self) -> int:
        return int(self.read("PRAGMA user_version")[0][0])

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the {self.name} {self.path}: {exc}") from exc
        return db

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        with self.write() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > len(migrations):
                raise StorageError(
                    f"the {self.name} {self.path} has schema {version}, newer than this edgewatch "
                    f"({len(migrations)}); upgrade edgewatch"
                )
            for number, step in enumerate(migrations[version:], start=version + 1):
                log.info("migrating the %s %s to schema %d", self.name, self.path, number)
                if callable(step):
                    step(db)
                else:
                    for statement in split_statements(step):
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction on the writer connection, under the writer lock; any
        sqlite3 error rolls it back and is raised as StorageError."""
        with self._write_lock:
            if self._closed:
                raise StorageError(f"the {self.name} {self.path} is closed")
            db = self._writer
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:  # SQLite already rolled back after SQLITE_FULL: keep its error
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise StorageError(f"cannot write the {self.name} {self.path}: {exc}") from exc

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one query on a pooled reader connection (WAL: never blocked by the writer)."""
        with self._idle_lock:
            if self._closed:
                raise StorageError(f"the {self.name} {self.path} is closed")
            db = self._idle.pop() if self._idle else None
        db = db or self._connect()
        try:
            return db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the {self.name} {self.path}: {exc}") from exc
        finally:
            with self._idle_lock:
                keep = not self._closed and len(self._idle) < self._max_idle
                if keep:
                    self._idle.append(db)
            if not keep:
                db.close()

    def close(self) -> None:
        """Close every connection; SQLite checkpoints the WAL into the database on the last close."""
        with self._write_lock, self._idle_lock:
            if self._closed:
                return
            self._closed = True
            for db in (*self._idle, self._writer):
                try:
                    db.close()
                except sqlite3.Error as exc:  # closing must not hide the error that led here
                    log.warning("closing the %s %s: %s", self.name, self.path, exc)
            self._idle.clear()


StoreT = TypeVar("StoreT", bound="Store")


class Store:
    """A store kept in one ``Database`` (``self._db``): closing it, also as a context manager."""

    _db: Database

    def close(self) -> None:
        """Close every connection; SQLite checkpoints the WAL into the database on the last close."""
        self._db.close()

    def __enter__(self: StoreT) -> StoreT:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def split_statements(script: str) -> list[str]:
    """An SQL script -> its statements. ``executescript`` would commit the migration's transaction
    first, so statements run one by one; ``complete_statement`` keeps triggers and ';' in strings whole."""
    statements: list[str] = []
    pending = ""
    for chunk in script.split(";"):
        pending += chunk + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\n;"):
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()[:80]!r}")
    return statements


def add_column_if_missing(table: str, column: str, declaration: str) -> Migration:
    """A migration step adding ``column`` to ``table`` unless a file written before versioning has it."""

    def step(db: sqlite3.Connection) -> None:
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    return step


def used_bytes(db: sqlite3.Connection) -> int:
    """Bytes the file's live pages take (free pages excluded): what retention limits."""
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)
