"""The history (gencli/logs.py, gencli logs): what is logged, where, by whom at once, and how it is shown."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap

import pytest

from scripted_models import EOS, build_graph_llama, chain

GENCLI = [sys.executable, "-m", "gencli"]
pytestmark = pytest.mark.usefixtures("one_thread")

# After the chat template's last token ("t" of "assistant"): " red" or " blue", drawn again at every step.
FORK = {
    "t": {" red": 10.0, " blue": 10.0},
    " red": {" red": 10.0, " blue": 10.0},
    " blue": {" red": 10.0, " blue": 10.0},
}


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "history" / "logs.db"
    monkeypatch.setenv("GENCLI_LOGS_DB", str(path))
    return path


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    return str(build_graph_llama(tmp_path_factory.mktemp("hello"), chain("t", "Hello", " world", EOS)))


@pytest.fixture(scope="module")
def fork(tmp_path_factory):
    return str(build_graph_llama(tmp_path_factory.mktemp("fork"), FORK))


@pytest.fixture
def cli_logs(cli):
    import importlib

    for module in ("gencli.cli.logs", "gencli.cli.chat"):  # registers the commands (gencli.cli may not yet)
        importlib.import_module(module)

    return cli


def rows(path) -> list[dict]:
    from gencli import logs

    os.environ["GENCLI_LOGS_DB"] = str(path)
    return logs.entries(None)


# --- the store ----------------------------------------------------------------------------------


def test_ids_sort_in_the_order_they_were_made():
    from gencli.logs import new_id

    ids = [new_id() for _ in range(500)] + [new_id(now_ms=1) for _ in range(3)]  # a clock step back too
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and all(len(i) == 26 for i in ids)


def test_the_database_is_private_wal_and_versioned(db):
    from gencli import logs

    assert logs.log_records([logs.row_of({"task": "text", "prompt": "p", "text": "a"}, {"seed": 1})])
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == "1"
    connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    connection.commit()
    with pytest.raises(Exception, match="schema 99"):
        logs.entries()


def test_query_conversation_order_and_removal(db):
    from gencli import logs

    made = [
        logs.row_of({"task": "text", "prompt": f"prompt {i}", "text": f"answer {i}", "conversation_id": c}, {})
        for i, c in enumerate(["A", "B", "A", None])
    ]
    logs.log_records(made)
    assert [e["prompt"] for e in logs.entries(2)] == ["prompt 2", "prompt 3"]  # the newest two, newest last
    assert [e["prompt"] for e in logs.entries(None, conversation="A")] == ["prompt 0", "prompt 2"]
    assert [e["output"] for e in logs.entries(None, query="answer 1")] == ["answer 1"]
    assert logs.entries(None, query="%") == []  # LIKE's wildcards are searched for as themselves
    assert logs.latest_conversation() == "A"
    assert logs.turns("A", before=made[2]["id"]) == [("prompt 0", "answer 0")]
    assert logs.turns("nope") is None
    with pytest.raises(Exception, match="no log entry"):
        logs.remove([made[0]["id"], "NOPE"])
    assert len(logs.entries(None)) == 4  # all or none
    with pytest.raises(Exception, match="more than one"):
        logs.entry(made[0]["id"][:10])
    assert logs.entry(made[3]["id"][:10].lower() + made[3]["id"][10:])["prompt"] == "prompt 3"
    assert logs.remove([made[0]["id"]]) == 1
    assert logs.remove_all() == 3


def test_a_database_that_cannot_be_written_is_one_warning(tmp_path, monkeypatch):
    from gencli import logs

    monkeypatch.setenv("GENCLI_LOGS_DB", str(tmp_path))  # a directory
    said = []
    row = logs.row_of({"task": "text", "prompt": "p"}, {})
    assert not logs.log_records([row], lambda message, level="info": said.append((message, level)))
    assert not logs.log_records([dict(row)], lambda message, level="info": said.append((message, level)))
    assert len(said) == 1 and said[0][1] == "warning" and str(tmp_path) in said[0][0]


def test_two_processes_logging_at_once_lose_nothing(tmp_path):
    path = tmp_path / "logs.db"
    script = textwrap.dedent(
        """
        import sys
        from gencli import logs
        for i in range(150):
            row = logs.row_of({"task": "text", "prompt": f"{sys.argv[1]} {i}", "text": "x"}, {})
            assert logs.log_records([row], lambda m, level="info": sys.exit(m))
        """
    )
    env = {**os.environ, "GENCLI_LOGS_DB": str(path)}
    procs = [subprocess.Popen([sys.executable, "-c", script, name], env=env) for name in ("one", "two", "three")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    found = rows(path)
    assert len(found) == 450 and len({e["id"] for e in found}) == 450


def test_two_gencli_batches_at_once_log_every_item(hello, tmp_path):
    path = tmp_path / "logs.db"
    env = {**os.environ, "GENCLI_LOGS_DB": str(path), "OMP_NUM_THREADS": "1"}
    procs = []
    for name in ("one", "two"):
        prompts = tmp_path / f"{name}.txt"
        prompts.write_text("".join(f"{name} {i}\n" for i in range(6)))
        argv = [*GENCLI, "text", "--batch", str(prompts), "-m", hello, "-t", "4", "--batch-size", "1"]
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    assert [p.wait(timeout=600) for p in procs] == [0, 0], [p.stderr.read() for p in procs]
    found = rows(path)
    assert sorted(e["prompt"] for e in found) == sorted(f"{n} {i}" for n in ("one", "two") for i in range(6))
    assert {e["output"] for e in found} == {"Hello world"}


# --- what a run logs ------------------------------------------------------------------------------


def test_a_text_run_logs_its_provenance_and_conversation(cli_logs, hello, db):
    result = cli_logs("text", "hi there", "-m", hello, "-t", "5", "--seed", "4", "--system", "Be brief.", "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    (entry,) = rows(db)
    assert (entry["task"], entry["prompt"], entry["system"], entry["output"]) == (
        "text",
        "hi there",
        "Be brief.",
        "Hello world",
    )
    assert entry["seed"] == 4 and entry["options"]["max_new_tokens"] == 5
    assert entry["model"] == record["model"] and entry["model_id"] == record["model"]["id"]
    assert entry["conversation_id"] == record["conversation_id"] and entry["record"] == record
    assert (entry["device"], entry["dtype"], entry["usage"]) == (record["device"], record["dtype"], record["usage"])


def test_no_log_writes_nothing(cli_logs, hello, db, monkeypatch):
    assert cli_logs("text", "hi", "-m", hello, "-t", "3", "--no-log").exit_code == 0
    monkeypatch.setenv("GENCLI_LOG", "0")
    assert cli_logs("text", "hi", "-m", hello, "-t", "3").exit_code == 0
    assert not db.exists()
    import gencli

    gencli.generate_text("hi", model=hello, max_new_tokens=3, log=False)
    assert not db.exists()
    gencli.generate_text("hi", model=hello, max_new_tokens=3)  # the API logs too
    assert len(rows(db)) == 1


def test_config_log_false_writes_nothing(hello, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[defaults]\nlog = false\n")
    env = {**os.environ, "GENCLI_LOGS_DB": str(tmp_path / "logs.db"), "GENCLI_CONFIG": str(config)}
    done = subprocess.run([*GENCLI, "text", "hi", "-m", hello, "-t", "3"], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "logs.db").exists()


@pytest.mark.parametrize("where", ["directory", "under a file"])
def test_a_database_that_cannot_be_written_leaves_the_run_alone(hello, tmp_path, where):
    target = tmp_path if where == "directory" else tmp_path / "file" / "logs.db"
    (tmp_path / "file").write_text("")
    env = {**os.environ, "GENCLI_LOGS_DB": str(target)}
    done = subprocess.run([*GENCLI, "text", "hi", "-m", hello, "-t", "3"], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0 and done.stdout == b"Hello world\n"
    warnings = [line for line in done.stderr.decode().splitlines() if "could not log" in line]
    assert len(warnings) == 1 and "--no-log" in warnings[0], done.stderr


def test_a_file_task_logs_each_files_path_and_sha256(tiny_vits, db, tmp_path):
    import gencli

    record = gencli.generate_audio("hello", model=str(tiny_vits), output=str(tmp_path / "a.wav"))
    (entry,) = rows(db)
    data = (tmp_path / "a.wav").read_bytes()
    assert entry["files"] == [{"path": record["paths"][0], "sha256": hashlib.sha256(data).hexdigest()}]
    assert entry["task"] == "audio" and entry["output"] is None


# --- gencli logs --------------------------------------------------------------------------------------


def test_logs_lists_shows_and_escapes_control_characters(cli_logs, hello, db):
    import gencli

    gencli.generate_text("first", model=hello, max_new_tokens=3)
    gencli.generate_text("red \x1b[31m\x07 alert", model=hello, max_new_tokens=3)
    listed = cli_logs("logs")
    assert listed.exit_code == 0 and "\x1b" not in listed.stdout and "\x07" not in listed.stdout
    assert "\\x1b[31m\\x07" in listed.stdout
    assert listed.stdout.index("first") < listed.stdout.index("alert")  # newest last
    lines = cli_logs("logs", "--json").stdout.splitlines()
    assert [json.loads(line)["prompt"] for line in lines] == ["first", "red \x1b[31m\x07 alert"]
    newest = json.loads(lines[-1])["id"]
    shown = cli_logs("logs", "show", newest)
    assert shown.exit_code == 0 and "\x1b" not in shown.stdout and "Hello world" in shown.stdout
    assert json.loads(cli_logs("logs", "show", newest, "--json").stdout)["id"] == newest
    assert [json.loads(x)["prompt"] for x in cli_logs("logs", "-q", "first", "--json").stdout.splitlines()] == ["first"]
    assert cli_logs("logs", "path").stdout == f"{db}\n"
    assert cli_logs("logs", "show", "NOPE").exit_code == 2
    assert cli_logs("logs", "rm", "--all").exit_code == 2 and len(rows(db)) == 2
    assert cli_logs("logs", "rm", newest).exit_code == 0 and len(rows(db)) == 1
    assert cli_logs("logs", "rm", "--all", "--yes").exit_code == 0 and rows(db) == []


def test_replay_reproduces_a_seeded_sampled_answer(cli_logs, fork, db):
    def run(seed: str) -> dict:
        args = ("text", "hi", "-m", fork, "--seed", seed, "--temperature", "1", "--top-k", "0", "-t", "12", "--json")
        result = cli_logs(*args)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    first, other = run("5"), run("6")
    assert first["text"] != other["text"], "the seed must matter to this answer"
    entry = rows(db)[0]
    replayed = cli_logs("logs", "replay", entry["id"])
    assert replayed.exit_code == 0, replayed.stderr
    assert replayed.stdout == first["text"] + "\n"
    again = json.loads(cli_logs("logs", "replay", entry["id"], "--json").stdout)
    assert (again["text"], again["seed"], again["options"]) == (first["text"], 5, first["options"])


FIRST_LOG = """
import sys, time
from gencli import logs
while time.time() < float(sys.argv[2]):
    pass
said = []
record = {"schema": 1, "task": "text", "id": None, "prompt": sys.argv[1], "text": "x", "model": {"id": "m"}}
ok = logs.log_records([logs.row_of(record, {"seed": 1})], notify=lambda message, level="info": said.append(message))
print(ok, said)
"""


def test_two_processes_making_the_database_at_once_both_log(tmp_path):
    """Opening a file another process is making a WAL database is "database is locked" at once, past the
    busy timeout: both first logs must still land (the race lost an entry in one run of two batches)."""
    import time

    for attempt in range(8):
        path = tmp_path / f"logs-{attempt}.db"
        env = {**os.environ, "GENCLI_LOGS_DB": str(path)}
        start = str(time.time() + 1.0)  # both past their imports, then off together
        procs = [
            subprocess.Popen([sys.executable, "-c", FIRST_LOG, name, start], env=env, stdout=subprocess.PIPE, text=True)
            for name in ("a", "b")
        ]
        outputs = [proc.communicate(timeout=60)[0] for proc in procs]
        assert outputs == ["True []\n", "True []\n"], outputs
        assert sorted(entry["prompt"] for entry in rows(path)) == ["a", "b"]
