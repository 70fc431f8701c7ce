"""``gencli env``: what ``auto`` picks on this machine, and why."""

from __future__ import annotations

import sys
from importlib import metadata

from gencli.cli.app import app, error_boundary
from gencli.cli.options import DeviceOpt, DtypeOpt, JsonOpt

_PACKAGES = ("torch", "transformers", "diffusers", "accelerate", "huggingface_hub", "gguf", "typer", "rich")


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
    from gencli.paths import cache_dir
    from gencli.tasks import TASKS
    from gencli.version import __version__

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
        "versions": {"python": sys.version.split()[0], "gencli": __version__, **{p: _version_of(p) for p in _PACKAGES}},
        "paths": {
            "gencli_cache": str(cache_dir()),
            "hf_home": constants.HF_HOME,
            "hf_hub_cache": constants.HF_HUB_CACHE,
        },
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
    """Show the device and dtype that 'auto' picks here and why, library versions and cache paths."""
    with error_boundary():
        from gencli.writers import write_json, write_stdout

        facts = describe(device, dtype)
        if json_out:
            write_json(facts)
            return
        lines = [f"device    {facts['device']}", f"dtype     {facts['dtype']}"]
        lines += [f"  why     {reason}" for reason in facts["why"]]
        lines += [f"  warning {warning}" for warning in facts["warnings"]]
        cuda = facts["hardware"]["cuda"]
        lines.append(
            "cuda      "
            + (", ".join(f"{c['name']} (bf16: {'yes' if c['bf16'] else 'no'})" for c in cuda) if cuda else "none")
        )
        lines.append(f"mps       {'yes' if facts['hardware']['mps'] else 'no'}")
        lines.append("versions  " + ", ".join(f"{k} {v or 'missing'}" for k, v in facts["versions"].items()))
        for key, value in facts["paths"].items():
            lines.append(f"{key:<13} {value}")
        lines.append(f"hf_hub_offline {'yes' if facts['hf_hub_offline'] else 'no'}")
        for task, model in facts["default_models"].items():
            embedded = facts["embedded_models"].get(task)
            lines.append(f"model {task:<5} {model}" + (f" (embedded: {embedded})" if embedded else ""))
        write_stdout("\n".join(lines) + "\n")
