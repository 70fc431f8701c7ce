"""gencli chat: messages from a pipe or a terminal, one model load, one conversation, Ctrl-C per answer."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import interruptible
from scripted_models import EOS, build_graph_llama, chain

pytestmark = pytest.mark.usefixtures("one_thread")
ANSWER = "Hello world"
# gencli's own entry point; the wrapper counts the models built into the process cache (gencli.models.loading).
CHAT = [
    sys.executable,
    "-c",
    (
        "import os, sys\n"
        "import gencli.models.loading as loading\n"
        "class Counted(dict):\n"
        "    def __setitem__(self, key, value):\n"
        "        with open(os.environ['LOADS_FILE'], 'a') as f: f.write('load\\n')\n"
        "        super().__setitem__(key, value)\n"
        "loading._LOADED = Counted()\n"
        "import gencli.cli.chat\n"
        "from gencli.cli import main\n"
        "main()\n"
    ),
    "chat",
]


@pytest.fixture(autouse=True)
def db(tmp_path, monkeypatch):
    path = tmp_path / "logs.db"
    monkeypatch.setenv("GENCLI_LOGS_DB", str(path))
    return path


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    return str(build_graph_llama(tmp_path_factory.mktemp("hello"), chain("t", "Hello", " world", EOS)))


@pytest.fixture(scope="module")
def looping(tmp_path_factory):
    graph = {"t": {"alpha": 20.0}, "alpha": {" beta": 20.0}, " beta": {"alpha": 20.0}}
    return str(build_graph_llama(tmp_path_factory.mktemp("looping"), graph))


@pytest.fixture
def chat_cli(cli):
    import gencli.cli.chat  # noqa: F401  (registers the command until gencli.cli imports it)

    return cli


def entries() -> list[dict]:
    from gencli import logs

    return logs.entries(None)


def sent_ids(model: str, *turns: str) -> list[int]:
    from transformers import AutoTokenizer

    from gencli.conversation import messages

    tokenizer = AutoTokenizer.from_pretrained(model)
    text = tokenizer.apply_chat_template(
        messages(None, [(t, ANSWER) for t in turns[:-1]], turns[-1]), tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_piped_stdin_is_one_message_a_line(chat_cli, hello):
    given = "Paris\n!multi\nthe sea\nthe fox\n!end\n\n!exit\nnot read\n"
    result = chat_cli("chat", "-m", hello, "-t", "5", "--seed", "3", input=given)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{ANSWER}\n{ANSWER}\n"
    first, second = entries()
    assert (first["prompt"], second["prompt"]) == ("Paris", "the sea\nthe fox")
    assert first["conversation_id"] == second["conversation_id"]
    assert (first["seed"], second["seed"]) == (3, 4)  # turn i: seed + i
    assert second["usage"]["prompt_tokens"] == len(sent_ids(hello, "Paris", "the sea\nthe fox"))


def test_chat_keeps_the_turns_without_the_log_and_resumes_a_logged_one(chat_cli, hello, db):
    result = chat_cli("chat", "-m", hello, "-t", "5", "--no-log", input="Paris\nthe sea\n")
    assert result.exit_code == 0 and not db.exists()
    logged = chat_cli("chat", "-m", hello, "-t", "5", input="Paris\n")
    assert logged.exit_code == 0
    resumed = chat_cli("chat", "-m", hello, "-t", "5", "-c", input="the fox\n")
    assert resumed.exit_code == 0, resumed.stderr
    first, second = entries()
    assert first["conversation_id"] == second["conversation_id"]
    assert second["usage"]["prompt_tokens"] == len(sent_ids(hello, "Paris", "the fox"))


def test_chat_refuses_a_model_without_a_chat_template(chat_cli, tiny_llama_plain):
    result = chat_cli("chat", "-m", str(tiny_llama_plain), input="hi\n")
    assert result.exit_code == 2 and "chat template" in result.stderr


# --- on a terminal ------------------------------------------------------------------------------


class Terminal:
    """``argv`` with stdin, stdout and stderr on one pseudo-terminal, typed at and read from."""

    def __init__(self, argv: list[str], env: dict):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**os.environ, "TERM": "xterm-256color", "OMP_NUM_THREADS": "1", **env},
            preexec_fn=interruptible,
        )
        os.close(slave)
        self.shown = b""

    def wait_for(self, text: bytes, count: int = 1, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.shown.count(text) < count:
            assert time.monotonic() < deadline, self.shown[-2000:]
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.shown += os.read(self.master, 65536)
                except OSError:
                    raise AssertionError(self.shown[-2000:]) from None

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=60)
        finally:
            os.close(self.master)
            if self.proc.poll() is None:
                self.proc.kill()


def test_three_messages_on_a_terminal_load_the_model_once(hello, tmp_path, db):
    loads = tmp_path / "loads"
    terminal = Terminal([*CHAT, "-m", hello, "-t", "5"], {"LOADS_FILE": str(loads)})
    for count, message in enumerate(["Paris", "the sea", "the fox"], start=1):
        terminal.wait_for(b"> ", count)
        terminal.type(message)
        terminal.wait_for(ANSWER.encode(), count)
    terminal.wait_for(b"> ", 4)
    terminal.type("!exit")
    assert terminal.close() == 0, terminal.shown[-2000:]
    assert loads.read_text() == "load\n"
    found = entries()
    assert [e["prompt"] for e in found] == ["Paris", "the sea", "the fox"]
    assert len({e["conversation_id"] for e in found}) == 1


def test_ctrl_c_cancels_an_answer_and_a_second_at_the_prompt_leaves(looping, tmp_path, db):
    terminal = Terminal([*CHAT, "-m", looping, "-t", "3000"], {"LOADS_FILE": str(tmp_path / "loads")})
    terminal.wait_for(b"> ")
    terminal.type("go on")
    terminal.wait_for(b"alpha beta")
    terminal.proc.send_signal(signal.SIGINT)
    terminal.wait_for(b"answer cancelled")
    terminal.wait_for(b"> ", 2)
    assert terminal.proc.poll() is None, "Ctrl-C during an answer must not end the chat"
    terminal.proc.send_signal(signal.SIGINT)
    assert terminal.close() == 130, terminal.shown[-2000:]
    assert not db.exists() or entries() == []  # the cancelled answer was not logged


def test_chat_json_lines_of_the_log_are_one_conversation(chat_cli, hello):
    chat_cli("chat", "-m", hello, "-t", "5", input="Paris\nthe sea\n")
    from gencli.cli.logs import list_entries  # noqa: F401  (registers gencli logs)

    lines = chat_cli("logs", "-c", "--json").stdout.splitlines()
    assert [json.loads(line)["prompt"] for line in lines] == ["Paris", "the sea"]
