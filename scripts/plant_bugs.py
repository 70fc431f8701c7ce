"""Plant each bug of issue 21 in a scratch copy of HEAD and run the test file that must catch it.

Each bug is a few text replacements in one module of a fresh ``git archive HEAD``; the
test runs against that copy (PYTHONPATH first, so processes the test starts use it too).
A bug whose test still passes is printed with rc=0: a blind spot came back.

    .venv/bin/python scripts/plant_bugs.py
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUGS = [
    (
        "--temperature forced to 1, top-k/top-p ignored",
        "gencli/sampling.py",
        [
            ("TemperatureLogitsWarper(temperature)", "TemperatureLogitsWarper(1.0)"),
            ("        if top_k:\n", "        if False:\n"),
            ("        if top_p < 1:\n", "        if False:\n"),
        ],
        "tests/test_sampling_truth.py",
    ),
    (
        "repetition penalty ignored",
        "gencli/text.py",
        [('repetition_penalty=params["repetition_penalty"],', "repetition_penalty=1.0,")],
        "tests/test_sampling_truth.py",
    ),
    (
        "--check retries reuse the first seed and temperature",
        "gencli/code.py",
        [
            ('params["seed"] = framed.item.seed + attempt', 'params["seed"] = framed.item.seed'),
            (
                'params["temperature"] = params["temperature"] or RETRY_TEMPERATURE',
                'params["temperature"] = params["temperature"]',
            ),
        ],
        "tests/test_code_retries.py",
    ),
    (
        "every eos reported as length",
        "gencli/text.py",
        [('else "eos" if by_eos[row] else "length"', 'else "length"')],
        "tests/test_sampling_truth.py",
    ),
    (
        "generation not stopped at the stop string",
        "gencli/text.py",
        [("return torch.tensor([s.stopped for s in shapers]", "return torch.tensor([False for s in shapers]")],
        "tests/test_sampling_truth.py",
    ),
    (
        "config [defaults] ignored",
        "gencli/config.py",
        [('for section in ("defaults", command)', "for section in (command,)")],
        "tests/test_defaults_truth.py",
    ),
    (
        "no-overwrite write made racy",
        "gencli/writers.py",
        [
            (
                "                os.link(scratch, path)\n",
                (
                    "                if os.path.lexists(path):\n"  # a check, then a rename: the race is back
                    "                    raise FileExistsError(path)\n"
                    "                os.replace(scratch, path)\n"
                ),
            )
        ],
        "tests/test_write_race.py",
    ),
    (
        "int4 codes rounded down",
        "gencli/quantize.py",
        [(".div_(scale[..., None]).round_()", ".div_(scale[..., None]).floor_()")],
        "tests/test_int4_error.py",
    ),
    (
        "resume ignores accelerate shards",
        "gencli/batch/__init__.py",
        [
            (
                "earlier = {**results.read_records(out_path)[0], **shards.records_in_shards(out_path)}",
                "earlier = {**results.read_records(out_path)[0]}",
            )
        ],
        "tests/test_resume_shards.py",
    ),
    (
        "--extract ignored",
        "gencli/cli/present_code.py",
        [('not flags.get("extract") and not raw', "not raw")],
        "tests/test_code_terminal.py",
    ),
]
copy = Path(tempfile.mkdtemp()) / "tree"
py = str(ROOT / ".venv/bin/python")
failed_to_catch = 0
for name, file, edits, test in BUGS:
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir()
    subprocess.run(f"git -C {ROOT} archive HEAD | tar -x -C {copy}", shell=True, check=True)
    path = copy / file
    text = path.read_text()
    for old, new in edits:
        assert old in text, (name, old)
        text = text.replace(old, new)
    path.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(copy), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [py, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    last = [line for line in done.stdout.splitlines() if line.startswith("FAILED")][:1]
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-200:]
    failed_to_catch += done.returncode == 0
    print(f"{name}: {test}: rc={done.returncode}: {last[0] if last else summary}", flush=True)
raise SystemExit(1 if failed_to_catch else 0)
