"""Every option, declared once: its flags, type, bounds, help and where it may be set.

One :class:`Option` serves the Typer signature (``cli/commands.py``), the
Python API's keyword checks (``api.py``), a ``--batch`` JSONL item's overrides
(``batch/items.py``) and the config file's checks (``config.py``): each of them
calls :meth:`Option.check`, so a value is judged the same way wherever it comes
from. The shared options are declared here; each task's own options are declared
in its command (see ``commands.py``).

Standard library only: this is imported by ``gencli --help``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from gencli.errors import UsageError

# Help panels, in the order --help shows them.
MODEL_PANEL = "Model & device"
SAMPLING_PANEL = "Generation"
OUTPUT_PANEL = "Output"
BATCH_PANEL = "Batch"
SAFETY_PANEL = "Trust"
PROVENANCE_PANEL = "Provenance"

_KIND_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "True or False", list: "a list of strings"}


@dataclass(frozen=True)
class Option:
    """One option of one or more commands.

    ``name`` is the Python name: the API's keyword, the params key, the config
    key (``-`` or ``_``) and a batch item's key. ``load`` options say what to
    load (the process cache key); the rest say what to make. ``per_item``
    options may be set per item in a ``--batch`` JSONL file.
    """

    name: str
    flags: tuple[str, ...]
    kind: type  # int, float, str, bool or list (of strings)
    default: Any = None
    help: str = ""
    panel: str = SAMPLING_PANEL
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False  # the minimum itself is not allowed
    rule: str | None = None  # what a value must be, for messages, where the bounds do not say it well
    cap: bool = False  # the maximum is a sanity bound no real use reaches, said on its own: "at most N"
    choices: tuple[str, ...] = ()  # offered to shell completion (and, with ``normalize``, checked)
    normalize: Callable[[Any], Any] | None = None  # checks a word and returns its one spelling
    configurable: bool = True  # may be a standing default in the config file
    per_item: bool = False
    load: bool = False
    # The GENCLI_* variables that set it, the first one set winning (a list, as click takes it;
    # left out of the hash so that an Option stays hashable).
    envvar: str | list[str] | None = field(default=None, hash=False)
    show_default: bool = True
    metavar: str | None = None
    completion: str | None = None  # "model": complete with aliases and cached models
    api: bool = True  # a keyword of the Python API (presentation-only flags are not)
    json_object: bool = False  # a str option that also takes a JSON object (API, JSONL), kept as its JSON text

    @property
    def flag(self) -> str:
        return self.flags[0].split("/")[0]

    @property
    def envvars(self) -> tuple[str, ...]:
        """The variables that set this option, in the order they are tried."""
        if self.envvar is None:
            return ()
        return (self.envvar,) if isinstance(self.envvar, str) else tuple(self.envvar)

    def describe(self, value: float | None = None) -> str:
        """What a value must be, as messages say it after "must be" (for ``value``, where given).

        A ``cap`` is said on its own, for a value above it; the ``rule`` and the
        other bounds say the rest. Without ``value``, all of it (for help texts).
        """
        high = None if self.cap else self.maximum
        capped = f"at most {_number(self.maximum)}" if self.cap and self.maximum is not None else None
        if capped and value is not None and value > (self.maximum or 0):
            return capped
        words = self.rule or _bounds(self.minimum, high, self.above) or _KIND_WORDS[self.kind]
        return f"{words}, {capped}" if capped and value is None else words

    def check(self, value: Any, label: str | None = None, name: str | None = None) -> Any:
        """``value`` converted and checked, or a UsageError.

        ``label`` names the value's source in a type error (the API's keyword,
        a batch item's key); range errors name ``name``, by default the flag, as
        the user would type it on the command line. Numbers must be finite and
        within the bounds wherever they come from.
        """
        if value is None and self.default is None:
            return None
        value = self.typed(value, label or self.name)
        if self.normalize is not None:
            return self.normalize(value)
        if self.kind in (int, float):
            name = name or self.flag
            if isinstance(value, float) and not math.isfinite(value):  # (an int is finite; isfinite overflows)
                raise UsageError(f"{name} must be a finite number, not {value}")
            low, high = self.minimum, self.maximum
            if (low is not None and (value < low or (self.above and value == low))) or (
                high is not None and value > high
            ):
                raise UsageError(f"{name} must be {self.describe(value)}, not {_number(value)}")
        return value

    def typed(self, value: Any, label: str) -> Any:
        """``value`` if it has this option's type (an int for a float, as float); else the UsageError."""
        kind = self.kind
        if kind is list:
            if isinstance(value, str):
                return (value,)
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise UsageError(f"{label} must be a string or a list of strings, not {value!r}")
        if isinstance(value, bool) and kind is not bool:
            pass
        elif self.json_object and isinstance(value, dict):
            import json

            try:
                return json.dumps(value, ensure_ascii=False)
            except (TypeError, ValueError, RecursionError):
                raise UsageError(f"{label} must be a string or a JSON object, not {shown_value(value)}") from None
        elif kind is float and isinstance(value, (int, float)):
            try:
                return float(value)
            except OverflowError:  # an integer past float's range
                raise UsageError(f"{label} must be a finite number, not {_number(value)}") from None
        elif isinstance(value, kind):
            return value
        optional = " or None" if self.default is None else ""
        raise UsageError(f"{label} must be {_KIND_WORDS[kind]}{optional}, not {shown_value(value)}")


def _bounds(low: float | None, high: float | None, above: bool) -> str | None:
    if low is not None and high is not None:
        return f"between {_number(low)} and {_number(high)}"
    if low is not None:
        return f"above {_number(low)}" if above else f"at least {_number(low)}"
    if high is not None:
        return f"at most {_number(high)}"
    return None


def _number(value: float) -> str:
    """A number for a message: integers in full up to 30 digits (2**63-1 stays exact), else in short."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e30):
        whole = int(value)
        if abs(whole) < 10**30:
            return str(whole)
        sign = "-" if whole < 0 else ""
        return f"{sign}an integer of about {int(abs(whole).bit_length() * 0.30103) + 1} digits"
    return f"{value:g}"


def shown_value(value: Any) -> str:
    """``repr(value)`` for a message, short: huge integers (``repr`` refuses 4300+ digits) and long text cut."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _number(value)
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested past the interpreter's limit, or holding a huge integer
        return f"a nested {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def check_all(options: tuple[Option, ...], values: dict[str, Any], label: Callable[[str], str] = str) -> dict:
    """Every value checked by its option; an unknown name is a UsageError."""
    by_name = {option.name: option for option in options}
    checked = {}
    for name, value in values.items():
        if name not in by_name:
            raise UsageError(f"unknown option {label(name)}")
        checked[name] = by_name[name].check(value, label(name))
    return checked


def defaults(options: tuple[Option, ...]) -> dict[str, Any]:
    return {option.name: option.default for option in options}


# --- the options every generating command shares -----------------------------------------


def _device(value: str) -> str:
    from gencli.devices import normalize_device

    return normalize_device(value)


def _dtype(value: str) -> str:
    from gencli.devices import normalize_dtype

    return normalize_dtype(value)


def _quantize(value: str) -> str:
    from gencli.devices import normalize_quantize

    return normalize_quantize(value)


DEVICE_MAPS = ("auto", "balanced")  # --device-map: accelerate's big-model placement over the GPUs (and the CPU)


def _device_map(value: str) -> str:
    word = value.strip().lower()
    if word not in DEVICE_MAPS:
        raise UsageError(f"--device-map takes auto or balanced, not {value!r}")
    return word


# The declarations are tables: one option per entry, kept compact for reading side by side.
# fmt: off
MODEL = Option("model", ("--model", "-m"), str, None, panel=MODEL_PANEL, load=True,
               show_default=False, completion="model",
               help="Hub id (org/name or org/name@revision), local directory, .gguf file or alias. "
                    "Default: the task's default model.")
DEVICE = Option("device", ("--device",), str, "auto", panel=MODEL_PANEL, load=True, envvar="GENCLI_DEVICE",
                choices=("auto", "cpu", "cuda", "cuda:0", "mps"), normalize=_device,
                help="Where to run: auto, cpu, cuda, cuda:N or mps.")
DTYPE = Option("dtype", ("--dtype",), str, "auto", panel=MODEL_PANEL, load=True, envvar="GENCLI_DTYPE",
               choices=("auto", "fp32", "fp16", "bf16"), normalize=_dtype,
               help="Precision: auto, fp32, fp16 or bf16.")
QUANTIZE = Option("quantize", ("--quantize",), str, "auto", panel=MODEL_PANEL, load=True, envvar="GENCLI_QUANTIZE",
                  choices=("auto", "none", "int8", "int4"), normalize=_quantize,
                  help="Pack the weights for faster CPU decoding: auto, none, int8 or int4. auto (the default): a "
                       "quantised GGUF file runs on its own 4- or 8-bit weights, packed, on the CPU (bf16 for 16 or "
                       "more prompts at once where the CPU has native bf16); anything else as it is. none with "
                       "--dtype fp32 is the exact fp32 path. Packed weights compute in bf16.")
DEVICE_MAP = Option("device_map", ("--device-map",), str, None, panel=MODEL_PANEL, load=True, show_default=False,
                    choices=DEVICE_MAPS, normalize=_device_map,
                    help="For a model larger than one GPU: spread its layers over every GPU, then the CPU, as "
                         "accelerate places them (auto fills GPU 0 first, balanced shares them out; images take "
                         "balanced, which places whole models). Not with --quantize, --offload or --device cpu/mps.")
TRUST_REMOTE_CODE = Option("trust_remote_code", ("--trust-remote-code",), bool, False, panel=SAFETY_PANEL, load=True,
                           configurable=False,
                           help="Allow the model's own Python code to run. Only for sources you trust.")
ALLOW_PICKLE = Option("allow_pickle", ("--allow-pickle",), bool, False, panel=SAFETY_PANEL, load=True,
                      configurable=False,
                      help="Allow pickle (.bin) weights, which can run code when loaded. Only for sources you trust.")
SEED = Option("seed", ("--seed",), int, None, per_item=True, show_default=False, minimum=0, maximum=2**63 - 1,
              rule="between 0 and 2**63-1",
              help="Make the run repeatable (same device and dtype). Default: random, reported in --json.")
JSON = Option("json_out", ("--json",), bool, False, panel=OUTPUT_PANEL, configurable=False, api=False,
              help="Print one JSON record with the output and its provenance instead of the plain output.")
OUTPUT = Option("output", ("--output", "-o"), str, None, panel=OUTPUT_PANEL, configurable=False, show_default=False,
                help="A file, a directory (created when it ends in '/'), or '-' for stdout. "
                     "Default: the current directory.")
NO_STDIN = Option("no_stdin", ("--no-stdin",), bool, False, panel=SAMPLING_PANEL, envvar="GENCLI_NO_STDIN", api=False,
                  help="Never read stdin: the argument is the whole prompt. For loops that read lines from stdin, "
                       "ssh and CI steps (also GENCLI_NO_STDIN=1, or no-stdin = true in the config file).")
OVERWRITE = Option("overwrite", ("--overwrite",), bool, False, panel=OUTPUT_PANEL, configurable=False,
                   help="Replace files that already exist (never done otherwise).")

# Batch mode, shared by every generating command (the API takes these as generate_batch's arguments).
BATCH = Option("batch", ("--batch",), str, None, panel=BATCH_PANEL, configurable=False, show_default=False, api=False,
               help="Prompts file: .txt (one prompt a line) or .jsonl ({\"prompt\", \"id\", overrides}); "
                    "'-' = stdin.")
OUT = Option("out", ("--out",), str, None, panel=BATCH_PANEL, configurable=False, show_default=False, api=False,
             help="With --batch: the JSONL results file. Default: stdout.")
RESUME = Option("resume", ("--resume",), bool, False, panel=BATCH_PANEL, configurable=False, api=False,
                help="With --batch: keep the records already in --out and do the rest (failed ones again).")
BATCH_SIZE = Option("batch_size", ("--batch-size",), int, None, panel=BATCH_PANEL, minimum=1, maximum=4096, cap=True,
                    show_default=False, api=False,
                    help="With --batch: prompts generated together, at most 4096 (fewer use less memory). Default: 64.")
PROGRESS = Option("progress", ("--progress",), bool, False, panel=BATCH_PANEL, api=False,
                  help="With --batch: progress lines on stderr even when it is not a terminal.")
OUT_DIR = Option("out_dir", ("--out-dir",), str, None, panel=BATCH_PANEL, configurable=False, show_default=False,
                 api=False,
                 help="With --batch: the directory for the files (created if missing); an item's \"output\" is "
                      "relative to it. Default: the current directory.")

# Marking the files a run writes as AI-generated (gencli/marking): on by default, signed on request.
MARK = Option("mark", ("--mark/--no-mark",), bool, True, panel=PROVENANCE_PANEL,
              help="Mark each file as AI-generated: XMP metadata (IPTC trainedAlgorithmicMedia, the model, the seed, "
                   "a hash of the content) that gencli verify reads back. --no-mark writes none.")
SIGN = Option("sign", ("--sign",), bool, False, panel=PROVENANCE_PANEL,
              help="Also sign each file with a C2PA manifest (needs pip install 'gencli[sign]', --sign-cert and "
                   "--sign-key).")
SIGN_CERT = Option("sign_cert", ("--sign-cert",), str, None, panel=PROVENANCE_PANEL, show_default=False,
                   metavar="PEM", help="With --sign: the certificate chain (PEM, signing certificate first).")
SIGN_KEY = Option("sign_key", ("--sign-key",), str, None, panel=PROVENANCE_PANEL, show_default=False,
                  metavar="PEM", help="With --sign: the private key of the signing certificate (PEM).")
MARK_OPTIONS = (MARK, SIGN, SIGN_CERT, SIGN_KEY)

# The history (gencli/logs): every generation logged unless --no-log; conversations continue from it.
LOG = Option("log", ("--log/--no-log",), bool, True, panel=OUTPUT_PANEL, envvar="GENCLI_LOG",
             help="Log this run to the history database ($XDG_DATA_HOME/gencli/logs.db; see gencli logs). "
                  "--no-log (or GENCLI_LOG=0, or log = false in the config file): not this run.")
# Templates (gencli/templates): a saved prompt, system prompt, options and model.
SAVE = Option("save", ("--save",), str, None, panel=OUTPUT_PANEL, configurable=False, show_default=False, api=False,
              metavar="NAME",
              help="Save this command's prompt, system prompt, options and model as template NAME "
                   "(see gencli templates); the prompt may hold {input} for stdin.")
TEMPLATE = Option("template", ("--template", "-T"), str, None, panel=SAMPLING_PANEL, configurable=False,
                  show_default=False, api=False, metavar="NAME",
                  help="Start from template NAME (see gencli templates); flags given here win over it.")
HISTORY_OPTIONS = (LOG, SAVE, TEMPLATE)

BATCH_OPTIONS = (BATCH, OUT, RESUME, BATCH_SIZE, PROGRESS)
LOAD_OPTIONS = (MODEL, DEVICE, DTYPE)
TRUST_OPTIONS = (TRUST_REMOTE_CODE, ALLOW_PICKLE)

# Sampling, shared by text and code. The defaults suit small instruction models such as
# the embedded SmolLM2: a low temperature and a mild repetition penalty keep them on topic.
SYSTEM = Option("system", ("--system", "-s"), str, None, per_item=True, show_default=False,
                help="System prompt for chat models.")
MAX_NEW_TOKENS = Option("max_new_tokens", ("--max-new-tokens", "-t"), int, 512, per_item=True, minimum=1,
                        maximum=1_000_000, cap=True, help="Most tokens to generate (at most 1000000).")
TEMPERATURE = Option("temperature", ("--temperature",), float, 0.2, per_item=True, minimum=0, maximum=100, cap=True,
                     rule="0 (greedy) or more",
                     help="Sampling temperature, 0 to 100; 0 is greedy (deterministic).")
TOP_P = Option("top_p", ("--top-p",), float, 0.9, per_item=True, minimum=0, maximum=1, above=True, rule="in (0, 1]",
               help="Nucleus sampling: keep the likeliest tokens holding this much probability.")
TOP_K = Option("top_k", ("--top-k",), int, 50, per_item=True, minimum=0, maximum=1_000_000, cap=True,
               rule="0 (off) or more",
               help="Sample among the k likeliest tokens (at most 1000000); 0 turns it off.")
REPETITION_PENALTY = Option("repetition_penalty", ("--repetition-penalty",), float, 1.1, per_item=True, minimum=0,
                            above=True, maximum=100, cap=True,
                            help="Above 1 discourages repeating tokens (at most 100).")
STOP = Option("stop", ("--stop",), list, None, per_item=True, show_default=False,
              help="Stop before this string (repeatable); it is not printed.")

SAMPLING_OPTIONS = (SYSTEM, MAX_NEW_TOKENS, TEMPERATURE, TOP_P, TOP_K, REPETITION_PENALTY, STOP)

# Constrained output (gencli/constrain): the text always parses as asked. One of the three at a time.
SCHEMA = Option("schema", ("--schema",), str, None, per_item=True, show_default=False, metavar="SCHEMA",
                json_object=True,
                help="The output is JSON valid against this JSON Schema: a file, inline JSON, or a concise list "
                     "such as 'name, age int, bio: a short bio'. Generation is constrained token by token.")
GRAMMAR = Option("grammar", ("--grammar",), str, None, per_item=True, show_default=False, metavar="FILE",
                 help="The output follows this grammar file: GBNF (as llama.cpp writes it) or Lark.")
CHOICE = Option("choice", ("--choice",), str, None, per_item=True, show_default=False, metavar="A,B,C",
                help="The output is exactly one of these comma-separated choices.")
CONSTRAINT_OPTIONS = (SCHEMA, GRAMMAR, CHOICE)

# Conversations (gencli/conversation): earlier turns from the history go through the chat template.
CONTINUE = Option("continue_conversation", ("--continue", "-c"), bool, False, configurable=False,
                  help="Continue the most recent conversation (its earlier turns go to the model).")
CID = Option("cid", ("--cid",), str, None, configurable=False, show_default=False, metavar="ID",
             help="Continue conversation ID (see gencli logs).")
CONVERSATION_OPTIONS = (CONTINUE, CID)
# fmt: on


def model_option(command: str, shared: bool = False) -> Option:
    """``--model`` for one command, set by ``GENCLI_<COMMAND>_MODEL``; ``shared`` also by ``GENCLI_MODEL``.

    One variable for every command would hand a text model to ``gencli image``:
    the commands take different kinds of model. ``GENCLI_MODEL`` is kept for text
    and code, which take the same kind (a causal language model; code falls back
    to the text model), and the command's own variable wins over it.
    """
    own = f"GENCLI_{command.upper()}_MODEL"
    return replace(MODEL, envvar=[own, "GENCLI_MODEL"] if shared else own)


def variant(option: Option, **changes: Any) -> Option:
    """The same option with another help text, default or panel, for one command."""
    return replace(option, **changes)
