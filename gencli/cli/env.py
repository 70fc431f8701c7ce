"""``gencli env``: what ``auto`` picks on this machine and why, and what else decides speed and where files go.

The machine's facts (CPU features, RAM, caches, config file, hub token) are read
without torch: from ``/proc`` where there is one, else left unknown. Only the
device choice asks torch.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from gencli.cli.app import app, error_boundary
from gencli.cli.options import DeviceOpt, DtypeOpt, JsonOpt

_PACKAGES = ("torch", "transformers", "diffusers", "accelerate", "huggingface_hub", "gguf", "typer", "rich")

# The CPU features that decide how fast a model runs on the CPU, by their /proc/cpuinfo flag.
X86_FEATURES = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "avx512_vnni": "AVX512-VNNI",
                "amx_tile": "AMX", "amx_bf16": "AMX-BF16", "amx_int8": "AMX-INT8"}  # fmt: skip
ARM_FEATURES = {"asimd": "NEON", "sve": "SVE", "bf16": "BF16", "i8mm": "I8MM"}


def cpu_facts(cpuinfo: str | None, machine: str | None = None) -> dict:
    """The CPU's name, cores and vector features, from ``/proc/cpuinfo``'s text (None: not readable here)."""
    machine = machine or platform.machine()
    known = ARM_FEATURES if machine.lower() in ("aarch64", "arm64") else X86_FEATURES
    facts: dict = {"model": platform.processor() or machine, "arch": machine, "cores": os.cpu_count(), "features": None}
    if cpuinfo is None:
        return facts
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and value.strip():
            facts["model"] = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    if flags:
        facts["features"] = {name: flag in flags for flag, name in known.items()}
    return facts


def ram_facts(meminfo: str | None) -> dict:
    """Total and available memory in bytes, from ``/proc/meminfo`` (else the total from sysconf, if any)."""
    facts: dict = {"total": None, "available": None}
    for line in (meminfo or "").splitlines():
        key, _, value = line.partition(":")
        words = value.split()
        if key in ("MemTotal", "MemAvailable") and words and words[0].isdigit():
            facts["total" if key == "MemTotal" else "available"] = int(words[0]) * 1024
    if facts["total"] is None:
        try:
            facts["total"] = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            pass
    return facts


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(1 << 20)
    except OSError:
        return None


def directory_size(path: str | Path) -> int | None:
    """Bytes in the files under ``path`` (links not followed nor counted: the hub's snapshots link to blobs)."""
    if not os.path.isdir(path):
        return None
    total = 0
    for root, _dirs, files in os.walk(path, onerror=lambda error: None):
        for name in files:
            try:
                found = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(root, name)):
                total += found.st_size
    return total


def token_source() -> str | None:
    """Where a Hugging Face token would come from (a variable, or the token file); never the token itself."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(var, "").strip():
            return var
    from huggingface_hub import constants

    path = Path(constants.HF_TOKEN_PATH)
    try:
        if path.is_file() and path.stat().st_size > 0:
            return f"token file {path}"
    except OSError:
        pass
    return None


def machine() -> dict:
    """The facts that need no torch: CPU, RAM, caches and their sizes, the config file, the hub token."""
    from huggingface_hub import constants

    from gencli import config
    from gencli.errors import GencliError
    from gencli.paths import cache_dir

    try:
        gencli_cache: str | None = str(cache_dir())
    except GencliError:  # no home directory, a file in its place: nothing to measure
        gencli_cache = None
    caches = {"gencli_cache": gencli_cache, "hf_home": constants.HF_HOME, "hf_hub_cache": constants.HF_HUB_CACHE}
    settings = config.load()
    return {
        "cpu": cpu_facts(_read_text("/proc/cpuinfo")),
        "ram": ram_facts(_read_text("/proc/meminfo")),
        "paths": caches,
        "cache_sizes": {
            key: directory_size(path) if path else None for key, path in caches.items() if key != "hf_home"
        },
        "config": {"path": str(settings.path), "exists": settings.exists},
        "hf_token": token_source(),
    }


def _version_of(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def describe(device: str = "auto", dtype: str = "auto") -> dict:
    """The facts ``gencli env`` shows, as one dict (imports torch to probe)."""
    from huggingface_hub import constants

    from gencli.convert import locate_embedded
    from gencli.devices import choose, probe
    from gencli.tasks import TASKS
    from gencli.version import __version__

    facts = machine()
    hardware = probe()
    placement = choose(device, dtype, hardware)
    embedded = {
        name: str(locate_embedded(task.embedded) or "") or None for name, task in TASKS.items() if task.embedded
    }
    return {
        "device": placement.device,
        "dtype": placement.dtype,
        "why": list(placement.reasons),
        "warnings": list(placement.warnings),
        "hardware": {
            "cuda": [{"name": n, "bf16": b} for n, b in zip(hardware.cuda_names, hardware.cuda_bf16, strict=False)],
            "mps": hardware.mps,
        },
        "cpu": facts["cpu"],
        "ram": facts["ram"],
        "versions": {"python": sys.version.split()[0], "gencli": __version__, **{p: _version_of(p) for p in _PACKAGES}},
        "paths": facts["paths"],
        "cache_sizes": facts["cache_sizes"],
        "config": facts["config"],
        "hf_token": facts["hf_token"],
        "hf_hub_offline": bool(constants.HF_HUB_OFFLINE),
        "default_models": {name: task.default_model for name, task in TASKS.items()},
        "embedded_models": embedded,
    }


@app.command()
def env(
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Show the device and dtype that 'auto' picks here and why, the CPU's vector features, RAM, the config
    file, the caches and their sizes, whether a hub token is set (never its value), and library versions."""
    with error_boundary():
        from gencli.writers import write_json, write_stdout

        facts = describe(device, dtype)
        if json_out:
            write_json(facts)
            return
        write_stdout(plain(facts))


def plain(facts: dict) -> str:
    """``gencli env`` for a person: one fact a line, names in a column."""
    from gencli.writers import printable

    rows = [("device", facts["device"]), ("dtype", facts["dtype"])]
    rows += [("  why", reason) for reason in facts["why"]]
    rows += [("  warning", warning) for warning in facts["warnings"]]
    cuda = facts["hardware"]["cuda"]
    shown = ", ".join(f"{c['name']} (bf16: {'yes' if c['bf16'] else 'no'})" for c in cuda)
    rows.append(("cuda", shown or "none"))
    rows.append(("mps", "yes" if facts["hardware"]["mps"] else "no"))
    cpu = facts["cpu"]
    rows.append(("cpu", f"{cpu['model']} ({cpu['arch']}, {cpu['cores']} cores)"))
    features = cpu["features"]
    rows.append(
        ("cpu features", "unknown here (no /proc/cpuinfo)" if features is None else _features(features) or "none")
    )
    ram = facts["ram"]
    rows.append(("ram", f"{_size(ram['total'])} total, {_size(ram['available'])} available"))
    config = facts["config"]
    rows.append(("config", config["path"] + ("" if config["exists"] else " (not there)")))
    for key, path in facts["paths"].items():
        sizes = facts["cache_sizes"]
        size = "" if key not in sizes else " (not there)" if sizes[key] is None else f" ({_size(sizes[key])})"
        rows.append((key.replace("_", " "), f"{path or 'none'}{size}"))
    rows.append(("hf token", f"set ({facts['hf_token']})" if facts["hf_token"] else "not set"))
    rows.append(("hf offline", "yes" if facts["hf_hub_offline"] else "no"))
    rows.append(("versions", ", ".join(f"{k} {v or 'missing'}" for k, v in facts["versions"].items())))
    for task, model in facts["default_models"].items():
        embedded = facts["embedded_models"].get(task)
        rows.append((f"model {task}", model + (f" (embedded: {embedded})" if embedded else "")))
    width = max(len(name) for name, _ in rows)
    return "".join(f"{name:<{width}}  {printable(str(value))}\n" for name, value in rows)


def _features(features: dict) -> str:
    have = [name for name, present in features.items() if present]
    lacks = [name for name, present in features.items() if not present]
    return ", ".join(have) + (f" (not: {', '.join(lacks)})" if lacks else "")


def _size(value: int | None) -> str:
    """Bytes for a person: 1.2 GB; "unknown" for None."""
    if value is None:
        return "unknown"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{value} B"
