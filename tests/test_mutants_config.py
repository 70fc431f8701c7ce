"""The config file's messages, lines and sources, in process (`make mutation` found them reached only by slow tests)."""

import os
import stat

import pytest

from gencli import config
from gencli.cli import declared_options
from gencli.config import MAX_BYTES, Config, _read, load, user_aliases
from gencli.errors import UsageError
from gencli.options import Option

HINT = "Point GENCLI_CONFIG at a TOML file"
ARGUMENTS = {"text": "prompt", "code": "prompt", "image": "prompt", "audio": "text"}


def failure(call, *args) -> str:
    with pytest.raises(UsageError) as caught:
        call(*args)
    return caught.value.one_line()


def written(tmp_path, text: str, name: str = "config.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- where the file is -------------------------------------------------------------------------


def test_the_path_comes_from_gencli_config_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("GENCLI_CONFIG", "~/gencli.toml")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.config_path() == tmp_path / "gencli.toml"  # ~ expanded
    monkeypatch.setenv("GENCLI_CONFIG", "")  # empty: not set
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config.config_path() == tmp_path / "xdg" / "gencli" / "config.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert config.config_path() == tmp_path / ".config" / "gencli" / "config.toml"


def test_no_home_directory_says_which_variables_to_set(monkeypatch):
    monkeypatch.delenv("GENCLI_CONFIG", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)

    def no_home():
        raise UsageError("no home")

    monkeypatch.setattr(config, "home_dir", no_home)
    assert failure(config.config_path) == (
        "no home directory to look for the config file in: HOME is not set and the user has none. "
        "Set GENCLI_CONFIG (GENCLI_CONFIG=/dev/null for none), XDG_CONFIG_HOME or HOME"
    )


# --- reading it: bounded, never blocking --------------------------------------------------------


def test_a_missing_file_is_an_empty_config(tmp_path):
    loaded = load(tmp_path / "absent.toml")
    assert (loaded.path, loaded.sections, loaded.text, loaded.exists) == (tmp_path / "absent.toml", {}, "", False)


def test_dev_null_reads_as_empty_and_another_device_is_refused():
    assert _read(os.devnull) == b""
    assert load(config.Path(os.devnull)).sections == {}
    assert failure(_read, "/dev/zero") == f"the config file /dev/zero is not a regular file. {HINT}"


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    assert failure(_read, str(fifo)) == f"the config file {fifo} is a FIFO. {HINT}"
    assert failure(load, fifo) == f"the config file {fifo} is a FIFO. {HINT}"


def test_a_directory_is_refused(tmp_path):
    assert failure(_read, str(tmp_path)) == f"the config file {tmp_path} is a directory. {HINT}"


def test_a_file_that_cannot_be_opened_names_the_reason(tmp_path):
    missing = tmp_path / "no" / "such.toml"
    assert failure(_read, str(missing)) == f"cannot read the config file {missing}: No such file or directory. {HINT}"


def test_a_read_error_names_the_reason_and_closes_the_file(tmp_path, monkeypatch):
    path = written(tmp_path, "[text]\n")
    closed = []
    real_close = os.close

    def broken(fd, size):
        raise OSError(5, "Input/output error")

    def close(fd):
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(os, "read", broken)
    monkeypatch.setattr(os, "close", close)
    assert failure(_read, str(path)) == f"cannot read the config file {path}: Input/output error. {HINT}"
    assert len(closed) == 1


def test_the_file_is_closed_after_a_good_read(tmp_path, monkeypatch):
    path = written(tmp_path, "[text]\nseed = 1\n")
    closed = []
    real_close = os.close
    monkeypatch.setattr(os, "close", lambda fd: (closed.append(fd), real_close(fd)))
    assert _read(str(path)) == b"[text]\nseed = 1\n"
    assert len(closed) == 1


def test_one_mib_is_read_and_one_byte_more_is_refused(tmp_path):
    path = tmp_path / "big.toml"
    path.write_bytes(b"#" * MAX_BYTES)
    assert len(_read(str(path))) == MAX_BYTES == 1 << 20
    path.write_bytes(b"#" * (MAX_BYTES + 1))
    assert failure(_read, str(path)) == f"the config file {path} is larger than 1 MiB. {HINT}"


def test_a_short_read_is_continued(tmp_path, monkeypatch):
    path = written(tmp_path, "[text]\nseed = 7\n")
    real_read = os.read
    sizes = []

    def trickle(fd, size):
        sizes.append(size)
        return real_read(fd, 3)

    monkeypatch.setattr(os, "read", trickle)
    assert _read(str(path)) == b"[text]\nseed = 7\n"
    assert sizes[:2] == [MAX_BYTES + 1, MAX_BYTES - 2]


def test_a_file_replaced_in_place_is_read_again(tmp_path):
    path = written(tmp_path, "[text]\nseed = 1\n")
    assert load(path).sections == {"text": {"seed": 1}}
    before = path.stat()
    other = written(tmp_path, "[text]\nseed = 2\n", "other.toml")
    os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(other, path)  # same size and time, another inode
    assert load(path).sections == {"text": {"seed": 2}}


# --- parsing it ------------------------------------------------------------------------------


def test_text_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b"[text]\nsystem = '\xff'\n")
    assert failure(load, path) == f"{path}: the config file is not UTF-8 text"


def test_invalid_toml_names_the_line_and_the_parser_message(tmp_path):
    path = written(tmp_path, "[text]\nseed = \n")
    assert failure(load, path) == (
        f"{path}:2: the config file is not valid TOML (Invalid value). Fix it, or point GENCLI_CONFIG elsewhere"
    )
    path = written(tmp_path, "seed = ", "end.toml")
    assert failure(load, path) == (
        f"{path}: the config file is not valid TOML (Invalid value). Fix it, or point GENCLI_CONFIG elsewhere"
    )


def test_nesting_too_deep_is_named(tmp_path):
    path = written(tmp_path, "a = " + "[" * 5000)
    assert failure(load, path) == f"{path}: the config file nests too deeply. A config file holds flat [sections]"


def test_a_number_too_long_names_its_line(tmp_path):
    path = written(tmp_path, "[text]\n\n\nseed = " + "9" * 5000 + "\n")
    assert failure(load, path) == (f"{path}:4: the config file holds a number too long to read (thousands of digits)")


def test_a_value_outside_a_section_is_named(tmp_path):
    path = written(tmp_path, "seed = 1\n")
    assert failure(load, path) == f"{path}: 'seed' must be a [section] of options"
    path = written(tmp_path, "[text]\nseed = 1\n[[image]]\nsteps = 2\n", "array.toml")
    assert failure(load, path) == f"{path}:3: 'image' must be a [section] of options"  # was no line: [[ not read


def test_keys_take_underscores_but_alias_names_are_kept(tmp_path):
    path = written(tmp_path, '[text]\nmax-new-tokens = 5\n[aliases]\nmy-model = "org/m"\n')
    loaded = load(path)
    assert loaded.sections == {"text": {"max_new_tokens": 5}, "aliases": {"my-model": "org/m"}}
    assert loaded.aliases == {"my-model": "org/m"} and loaded.exists
    loaded.aliases["x"] = "y"
    assert "x" not in loaded.sections["aliases"]  # a copy
    assert Config(path).aliases == {}


def test_user_aliases_come_from_the_file_or_are_none(monkeypatch, tmp_path):
    monkeypatch.setenv("GENCLI_CONFIG", str(written(tmp_path, '[aliases]\nfast = "org/fast"\n')))
    assert user_aliases() == {"fast": "org/fast"}
    monkeypatch.setenv("GENCLI_CONFIG", str(written(tmp_path, "[aliases\n", "bad.toml")))
    assert user_aliases() == {}


# --- lines and sources -------------------------------------------------------------------------

TEXT = """\
# gencli
seed = 0
[image]
seed = 1
[ "text" ]   # spaced and quoted
temperature = 0.5
"max-new-tokens" = 9
  top_p = 0.9
[defaults]
seed = 3
[text.sub]
"""


def test_line_of_finds_sections_and_keys_in_their_own_section():
    settings = Config(config.Path("c.toml"), text=TEXT)
    assert settings.line_of("image") == 3
    assert settings.line_of("text") == 5
    assert settings.line_of("defaults") == 9
    assert settings.line_of("text.sub") == 11
    assert settings.line_of("image", "seed") == 4
    assert settings.line_of("defaults", "seed") == 10
    assert settings.line_of("text", "temperature") == 6
    assert settings.line_of("text", "max_new_tokens") == 7
    assert settings.line_of("text", "top_p") == 8
    assert settings.line_of("text", "seed") == 0
    assert settings.line_of("audio") == 0
    assert settings.where("text", "top_p") == "c.toml:8"
    assert settings.where("audio") == "c.toml"


def test_source_of_prefers_the_commands_section(tmp_path):
    path = written(tmp_path, "[defaults]\nseed = 3\ntop_k = 4\n[text]\nseed = 1\n")
    loaded = load(path)
    assert loaded.source_of("text", "seed") == f"{path}:5"
    assert loaded.source_of("code", "seed") == f"{path}:2"
    assert loaded.source_of("text", "top_k") == f"{path}:3"
    assert loaded.source_of("text", "temperature") is None


def test_the_default_map_layers_the_commands_section_over_defaults():
    options = {
        "a": {"seed": Option("seed", ("--seed",), int), "raw": Option("raw", ("--raw",), bool, configurable=False)},
        "b": {"seed": Option("seed", ("--seed",), int)},
        "c": {"top_k": Option("top_k", ("--top-k",), int)},
    }
    settings = Config(config.Path("c.toml"), {"defaults": {"seed": 1, "raw": True}, "a": {"seed": 2, "raw": True}})
    assert settings.default_map(options) == {"a": {"seed": 2}, "b": {"seed": 1}}


# --- validation messages -----------------------------------------------------------------------


def invalid(tmp_path, text: str) -> tuple[str, str]:
    path = written(tmp_path, text)
    return str(path), failure(load(path).validate, declared_options(), ARGUMENTS)


@pytest.mark.parametrize(
    "text, line",
    [
        ("[aliases]\n\nfast = 3\n", ":3: alias 'fast' must name a model (a string)"),
        ('[aliases]\nfast = "  "\n', ":2: alias 'fast' must name a model (a string)"),
        (
            "[text]\nseed = 1\n[txt]\n",
            ":3: unknown section [txt]. Sections: defaults, aliases, audio, code, image, text, video",
        ),
        (
            '[text]\n\nprompt = "hi"\n',
            (
                ":3: prompt is the prompt, which cannot be set in the config file. "
                "Give it on the command line (or on stdin) each run"
            ),
        ),
        (
            '[defaults]\ntext = "hi"\n',
            (
                ":2: text is the prompt, which cannot be set in the config file. "
                "Give it on the command line (or on stdin) each run"
            ),
        ),
        (
            "[text]\nallow_pickle = true\n",
            (
                ":2: allow-pickle is decided per run and cannot be set in the config "
                "file. Remove it, and pass --allow-pickle in each run that needs it"
            ),
        ),
        ('[image]\ncolour = "red"\n', ":2: [image] has no option 'colour'. See gencli image --help"),
        ('[defaults]\ncolour = "red"\n', ":2: [defaults] has no option 'colour'. See gencli COMMAND --help"),
        ("[text]\ntop-k = -1\n", ":2: top-k must be 0 (off) or more, not -1"),
        (
            '[defaults]\ndevice = "tpu"\n',
            ":2: device = 'tpu': unknown device 'tpu'. Use auto, cpu, cuda, cuda:N or mps.",
        ),
        ('[text]\nseed = "x"\n', ":2: seed must be an integer or None, not 'x'"),
    ],
)
def test_validate_names_the_line_the_value_and_the_fix(tmp_path, text, line):
    path, message = invalid(tmp_path, text)
    assert message == path + line


def test_a_prompt_name_that_is_an_option_elsewhere_is_checked_as_that_option(tmp_path):
    # [audio]'s prompt is "text"; no command has an option "text", so the prompt message is right here,
    # while a declared option named like a prompt is checked as the option
    options = {"audio": {"prompt": Option("prompt", ("--prompt",), int)}}
    path = written(tmp_path, '[audio]\nprompt = "x"\n')
    assert failure(load(path).validate, options) == f"{path}:2: prompt must be an integer or None, not 'x'"
    assert failure(load(path).validate, {"audio": {}}) == (
        f"{path}:2: prompt is the prompt, which cannot be set in the config file. "
        "Give it on the command line (or on stdin) each run"
    )


def test_a_valid_file_passes_validation(tmp_path):
    path = written(tmp_path, '[defaults]\nseed = 1\n[text]\ntop-k = 5\n[aliases]\nfast = "org/m"\n')
    assert load(path).validate(declared_options(), ARGUMENTS) is None


def test_per_run_in_defaults_is_refused_when_no_command_may_set_it(tmp_path):
    options = {
        "a": {"seed": Option("seed", ("--seed", "-s"), int, configurable=False)},
        "b": {"seed": Option("seed", ("--seed/--no-seed",), bool, configurable=False)},
    }
    path = written(tmp_path, "[defaults]\nseed = 1\n")
    assert failure(load(path).validate, options) == (
        f"{path}:2: seed is decided per run and cannot be set in the config file. "
        "Remove it, and pass --seed in each run that needs it"
    )
    options["b"]["seed"] = Option("seed", ("--seed",), int)
    assert load(path).validate(options) is None  # one command may take it
    assert stat.S_ISREG(path.stat().st_mode)


def test_dev_null_is_recognised_only_when_it_can_be_compared(monkeypatch):
    real_stat = os.stat

    def no_null(path, *args, **kwargs):
        if path == os.devnull:
            raise PermissionError(13, "Permission denied")
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", no_null)
    assert failure(_read, os.devnull) == f"the config file {os.devnull} is not a regular file. {HINT}"


def test_reads_that_stop_at_the_limit_still_find_a_byte_more(tmp_path, monkeypatch):
    path = tmp_path / "big.toml"
    path.write_bytes(b"#" * (MAX_BYTES + 1))
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, size: real_read(fd, min(size, MAX_BYTES // 2)))
    assert failure(_read, str(path)) == f"the config file {path} is larger than 1 MiB. {HINT}"
    path.write_bytes(b"#" * MAX_BYTES)
    assert len(_read(str(path))) == MAX_BYTES


def test_short_reads_ask_for_what_is_left(tmp_path, monkeypatch):
    path = written(tmp_path, "[text]\nseed = 7\n")
    real_read = os.read
    sizes = []
    monkeypatch.setattr(os, "read", lambda fd, size: (sizes.append(size), real_read(fd, 3))[1])
    _read(str(path))
    assert sizes[:4] == [MAX_BYTES + 1, MAX_BYTES - 2, MAX_BYTES - 5, MAX_BYTES - 8]


def test_line_of_keys_before_any_header_belong_to_no_section():
    settings = Config(config.Path("c.toml"), text='x = 1\n[""]\nx = 2\n["X"]\nTop_K = 3\n')
    assert settings.line_of("", "x") == 3
    assert settings.line_of("X") == 4
    assert settings.line_of("X", "Top_K") == 5


def test_sections_after_aliases_are_validated(tmp_path):
    path, message = invalid(tmp_path, '[aliases]\nfast = "org/m"\n[txt]\n')
    assert message == path + ":3: unknown section [txt]. Sections: defaults, aliases, audio, code, image, text, video"


def test_a_type_error_names_the_key_as_spelled_in_the_file(tmp_path):
    path, message = invalid(tmp_path, '[text]\nmax_new_tokens = "x"\n')
    assert message == path + ":2: max-new-tokens must be an integer, not 'x'"


def test_an_options_own_message_keeps_its_hint(tmp_path):
    def even(value):
        if value % 2:
            raise UsageError("seed is odd", "use an even seed")
        return value

    path = written(tmp_path, "[text]\nseed = 3\n")
    options = {"text": {"seed": Option("seed", ("--seed",), int, normalize=even)}}
    assert failure(load(path).validate, options) == f"{path}:2: seed is odd. Use an even seed"
