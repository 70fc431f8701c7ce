"""An ordinary offline user: ``HF_HUB_OFFLINE`` not set, and the hub out of reach.

The rest of the suite runs with ``HF_HUB_OFFLINE=1``, which takes another path
through huggingface_hub. Here the variable is unset and ``HF_ENDPOINT`` names
a local port where nothing listens (or where a server accepts and never
answers), as on a laptop on a train or a machine behind a dead proxy: a
missing model must be exit 3 with the command that would fetch it, soon, and
a cached model and the embedded one must still work.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

from conftest import GENCLI, ONE_THREAD, in_hub_cache

# A hang is what these guard against (huggingface_hub retrying for minutes); a run takes seconds.
NO_HANG_S = 45


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _offline_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return {**env, **ONE_THREAD, "HF_ENDPOINT": endpoint}


def _gencli(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(
        [str(GENCLI), *args], env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=NO_HANG_S * 4
    )
    return result, time.monotonic() - started


@pytest.fixture(scope="module")
def closed_hub() -> dict[str, str]:
    """The environment of a user with no network: the hub's address refuses connections."""
    return _offline_env(f"http://127.0.0.1:{_free_port()}")


@pytest.fixture
def silent_hub():
    """The environment of a user behind a dead proxy: the hub's address accepts and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)  # connections queue in the kernel; nothing ever reads or answers them
        yield _offline_env(f"http://127.0.0.1:{server.getsockname()[1]}")


class TestOfflineUserWithoutHfHubOffline:
    @pytest.mark.parametrize(
        "args, fetch",
        [
            (("text", "hi", "-m", "org/not-cached", "-t", "2"), "hf download org/not-cached"),
            (("text", "hi", "-m", "org/not-cached@v1.0", "-t", "2"), "hf download org/not-cached --revision v1.0"),
            (("image", "a cat", "-m", "org/no-pipeline", "-o", "{tmp}/cat.png"), "hf download org/no-pipeline"),
            (("audio", "hello", "-m", "org/no-voice", "-o", "{tmp}/hi.wav"), "hf download org/no-voice"),
        ],
        ids=["text", "revision", "image", "audio"],
    )
    def test_a_missing_model_is_exit_3_with_the_download_command(self, closed_hub, tmp_path, args, fetch):
        assert "HF_HUB_OFFLINE" not in closed_hub
        result, seconds = _gencli(closed_hub, *(arg.format(tmp=tmp_path) for arg in args))
        assert result.returncode == 3, result.stderr
        message = result.stderr.decode()
        assert message.count("\n") == 1 and message.startswith("gencli: error: ")
        assert "cannot be reached" in message and message.rstrip().endswith(fetch)
        assert result.stdout == b"" and list(tmp_path.iterdir()) == []  # nothing written
        assert seconds < NO_HANG_S

    def test_a_hub_that_never_answers_is_exit_3_not_a_hang(self, silent_hub):
        result, seconds = _gencli(silent_hub, "text", "hi", "-m", "org/not-cached", "-t", "2")
        assert result.returncode == 3, result.stderr
        assert result.stderr.decode().rstrip().endswith("hf download org/not-cached")
        assert seconds < NO_HANG_S

    def test_a_model_in_the_hub_cache_runs(self, closed_hub, tiny_llama):
        with in_hub_cache(tiny_llama, "gencli-tests/cached-offline"):
            result, _ = _gencli(closed_hub, "text", "hi", "-m", "gencli-tests/cached-offline", "-t", "3", "--json")
        assert result.returncode == 0, result.stderr
        record = json.loads(result.stdout)
        assert record["model"]["id"] == "gencli-tests/cached-offline"
        assert 0 < record["usage"]["completion_tokens"] <= 3

    @pytest.mark.embedded
    def test_the_embedded_model_still_works(self, closed_hub):
        result, _ = _gencli(closed_hub, "text", "What is the capital of France?", "--temperature", "0", "-t", "12")
        assert result.returncode == 0, result.stderr
        assert "Paris" in result.stdout.decode()
