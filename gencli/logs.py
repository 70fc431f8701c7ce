"""The history: every generation, one row per item, in a SQLite database (standard library only).

The file is ``$GENCLI_LOGS_DB``, else ``$XDG_DATA_HOME/gencli/logs.db``, else
``~/.local/share/gencli/logs.db``; it is made on first use, readable by its
owner only (0600, in a 0700 directory). WAL journal and a 5 s busy timeout,
so runs and batches that log at once wait for each other instead of failing;
one short transaction per record (a batch: per group). The ``meta`` table
holds the schema version.

Writing never fails a run: :func:`log_records` turns any error into one
warning (once per process). Reading (``gencli logs``, ``--continue``) raises
a :class:`~gencli.errors.UsageError` naming the file.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gencli.errors import UsageError
from gencli.paths import home_dir

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 5.0
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_JSON_COLUMNS = ("options", "model", "files", "usage", "timings", "record")
COLUMNS = (
    "id",
    "time",
    "task",
    "prompt",
    "system",
    "options",
    "model_id",
    "revision",
    "model",
    "seed",
    "device",
    "dtype",
    "output",
    "files",
    "usage",
    "timings",
    "conversation_id",
    "record",
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY, time TEXT NOT NULL, task TEXT NOT NULL, prompt TEXT, system TEXT, options TEXT,
    model_id TEXT, revision TEXT, model TEXT, seed INTEGER, device TEXT, dtype TEXT, output TEXT, files TEXT,
    usage TEXT, timings TEXT, conversation_id TEXT, record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_conversation ON entries (conversation_id, id);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '{SCHEMA_VERSION}');
"""
# Parameters that are not the run's options: a conversation's turns are the log's own rows.
PRIVATE_PARAMS = ("history",)

_last_id = [0, 0]  # the last id's milliseconds and random part: ids made in one process keep their order
_warned: set[str] = set()
_HINT = "set GENCLI_LOGS_DB to a writable file, or pass --no-log"


def db_path() -> Path:
    """The history database's path (it may not exist yet)."""
    return _chosen()[0]


def db_variable() -> str:
    """The variable that chose the path: ``GENCLI_LOGS_DB``, ``XDG_DATA_HOME`` or ``HOME``."""
    return _chosen()[1]


def _chosen() -> tuple[Path, str]:
    if os.environ.get("GENCLI_LOGS_DB"):
        return Path(os.path.abspath(Path(os.environ["GENCLI_LOGS_DB"]).expanduser())), "GENCLI_LOGS_DB"
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative path is invalid and ignored
        return Path(xdg) / "gencli" / "logs.db", "XDG_DATA_HOME"
    return home_dir() / ".local" / "share" / "gencli" / "logs.db", "HOME"


def new_id(now_ms: int | None = None) -> str:
    """A sortable id (ULID layout: 48 bits of milliseconds, 80 random bits, Crockford base32, 26 characters)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    if ms <= _last_id[0]:  # the same millisecond (or a clock step back): the next one up
        ms, rand = _last_id[0], _last_id[1] + 1
    else:
        rand = secrets.randbits(79)  # room to count up within a millisecond
    _last_id[:] = [ms, rand]
    value = (ms << 80) | rand
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def connect(path: Path | None = None, *, create: bool = True) -> sqlite3.Connection | None:
    """A connection to the database (made, with its schema, when ``create``); None if absent and not ``create``."""
    path = path or db_path()
    if not create and not path.exists():
        return None
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600))
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        version = _schema_of(connection)
        if version is None and create:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode = WAL")
            connection.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
            version = _schema_of(connection)
        if version is not None and version > SCHEMA_VERSION:
            raise UsageError(
                f"the history database {path} has schema {version}, newer than this gencli's {SCHEMA_VERSION}",
                "upgrade gencli, or set GENCLI_LOGS_DB to another file",
            )
        connection.execute("PRAGMA synchronous = NORMAL")  # WAL: a commit is durable at the next checkpoint
    except BaseException:
        connection.close()
        raise
    return connection


def _schema_of(connection: sqlite3.Connection) -> int | None:
    try:
        row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return int(row[0]) if row else None


# --- writing ----------------------------------------------------------------------------------


def row_of(record: Mapping[str, Any], params: Mapping[str, Any], files: Iterable[Mapping[str, str]] = ()) -> dict:
    """The columns of one record's row (``files``: each written file's path and sha256)."""
    model: dict = record["model"] if isinstance(record.get("model"), dict) else {}
    options = {key: value for key, value in params.items() if key not in PRIVATE_PARAMS}
    output = record.get("text") if isinstance(record.get("text"), str) else record.get("code")
    return {
        "id": new_id(),
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "task": record.get("task"),
        "prompt": record.get("prompt"),
        "system": params.get("system"),
        "options": options,
        "model_id": model.get("id"),
        "revision": model.get("revision"),
        "model": model,
        "seed": record.get("seed", params.get("seed")),
        "device": record.get("device"),
        "dtype": record.get("dtype"),
        "output": output,
        "files": list(files),
        "usage": record.get("usage"),
        "timings": record.get("timings"),
        "conversation_id": record.get("conversation_id"),
        "record": dict(record),
    }


def log_records(rows: list[dict], notify: Callable[..., None] | None = None) -> bool:
    """Insert ``rows`` (from :func:`row_of`) in one transaction; on any error, one warning and False."""
    if not rows:
        return True
    try:
        values = [tuple(_stored(row[name], name) for name in COLUMNS) for row in rows]
        _retrying(lambda: _insert(db_path(), values))
        return True
    except Exception as exc:  # the run stands whatever the log does
        reason = exc.message if isinstance(exc, UsageError) else f"{type(exc).__name__}: {exc}"
        first = (reason.strip().splitlines() or [type(exc).__name__])[0]
        if notify is not None and first not in _warned:
            _warned.add(first)
            where = _where()
            notify(f"could not log this run to {where}: {first} ({_HINT})", "warning")
        return False


def _insert(path: Path, values: list[tuple]) -> None:
    connection = connect(path)
    assert connection is not None
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(f"INSERT INTO entries VALUES ({', '.join('?' * len(COLUMNS))})", values)
        connection.execute("COMMIT")
    finally:
        connection.close()


def _retrying(action: Callable[[], Any]) -> Any:
    """``action()``, tried again for up to BUSY_TIMEOUT_S while SQLite says the database is locked.

    The busy timeout covers most waits, but not all: a process opening the file while another
    makes it a WAL database, or recovers its WAL, gets "database is locked" at once. A failed
    attempt's transaction is rolled back, so trying again never writes a row twice.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01 + random.random() * 0.04)  # apart, so two writers do not meet again


def _where() -> str:
    try:
        return f"the history database {db_path()}"
    except Exception:
        return "the history database"


def _stored(value: Any, column: str) -> Any:
    if column in _JSON_COLUMNS:
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


# --- reading ----------------------------------------------------------------------------------


def _reading(action: Callable[[sqlite3.Connection], Any], empty: Any, write: bool = False) -> Any:
    """``action`` on the database (``empty`` when there is none yet); an error is exit 2 naming the file."""
    path = db_path()

    def attempt() -> Any:
        connection = connect(path, create=False)
        if connection is None:
            return empty
        try:
            if _schema_of(connection) is None:
                return empty
            if write:
                connection.execute("BEGIN IMMEDIATE")
            result = action(connection)
            if write:
                connection.execute("COMMIT")
            return result
        finally:
            connection.close()

    try:
        return _retrying(attempt)
    except (sqlite3.Error, OSError) as exc:
        raise UsageError(
            f"cannot read the history database {path} ({exc}; set by {db_variable()})", _HINT.split(", or")[0]
        ) from exc


def _entry(row: sqlite3.Row | tuple) -> dict:
    entry = dict(zip(COLUMNS, row, strict=True))
    for name in _JSON_COLUMNS:
        try:
            entry[name] = json.loads(entry[name]) if entry[name] is not None else None
        except ValueError:
            pass  # left as the text stored
    return entry


def entries(
    limit: int | None = 10, query: str | None = None, conversation: str | None = None, newest_first: bool = False
) -> list[dict]:
    """The newest ``limit`` entries (all with None), oldest first unless ``newest_first``."""
    where, args = [], []
    if query:
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(prompt LIKE ? ESCAPE '\\' OR output LIKE ? ESCAPE '\\')")
        args += [pattern, pattern]
    if conversation is not None:
        where.append("conversation_id = ?")
        args.append(conversation)
    sql = f"SELECT {', '.join(COLUMNS)} FROM entries"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC" + ("" if limit is None else f" LIMIT {int(limit)}")
    rows = _reading(lambda c: c.execute(sql, args).fetchall(), [])
    found = [_entry(row) for row in rows]
    return found if newest_first else found[::-1]


def entry(entry_id: str) -> dict:
    """The entry ``entry_id`` names (its whole id, or a prefix of it that only it has); exit 2 if none."""
    key = entry_id.strip().upper()
    pattern = key.replace("\\", "").replace("%", "").replace("_", "") + "%"
    sql = f"SELECT {', '.join(COLUMNS)} FROM entries WHERE id LIKE ? ORDER BY id LIMIT 2"
    rows = _reading(lambda c: c.execute(sql, [pattern]).fetchall(), []) if key else []
    if len(rows) == 1 or (rows and rows[0][0] == key):
        return _entry(rows[0])
    if not rows:
        raise UsageError(f"no log entry {entry_id!r} in {db_path()}", "list them with: gencli logs")
    raise UsageError(f"more than one log entry starts with {entry_id!r}", "give more of the id")


def remove(entry_ids: list[str]) -> int:
    """Remove the entries these ids name (each must name one); all or none. The number removed."""
    ids = [entry(entry_id)["id"] for entry_id in entry_ids]
    return _reading(lambda c: c.executemany("DELETE FROM entries WHERE id = ?", [(i,) for i in ids]).rowcount, 0, True)


def remove_all() -> int:
    return _reading(lambda c: c.execute("DELETE FROM entries").rowcount, 0, True)


def latest_conversation() -> str | None:
    """The conversation id of the newest entry that has one."""
    sql = "SELECT conversation_id FROM entries WHERE conversation_id IS NOT NULL ORDER BY id DESC LIMIT 1"
    row = _reading(lambda c: c.execute(sql).fetchone(), None)
    return row[0] if row else None


def turns(conversation: str, before: str | None = None) -> list[tuple[str, str]] | None:
    """A conversation's turns (prompt, answer), oldest first, those before entry ``before`` only if given;
    None when no entry has that conversation id."""
    sql = "SELECT id, prompt, output FROM entries WHERE conversation_id = ? ORDER BY id"
    rows = _reading(lambda c: c.execute(sql, [conversation]).fetchall(), [])
    if not rows:
        return None
    return [(p or "", o or "") for i, p, o in rows if before is None or i < before]
