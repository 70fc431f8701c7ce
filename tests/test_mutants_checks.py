"""Checker cases that `make mutation` found untested (docs/mutation.md lists what is left).

Only the in-process parts: the parsers' messages and the C/C++ refusal, which runs before any compiler.
"""

import os

import pytest

from gencli import checks


def test_a_json_nested_too_deeply_names_the_parser_s_reason():
    message = checks._json("[" * 200_000)
    assert message is not None and message.startswith("cannot parse: maximum recursion depth exceeded")


def test_a_toml_error_message_is_the_parser_s_own():
    message = checks._toml("a = ")
    assert message is not None and "Invalid value" in message


def test_a_nul_byte_is_refused_with_its_reason():
    assert checks._c_refusal("int x;\0") == "refused to check: the code contains a NUL byte"


@pytest.mark.parametrize("end", ["\r\n", "\r"])
def test_a_line_splice_with_a_carriage_return_still_joins_the_directive(end):
    # "#inc\<CR>lude" is "#include" to the preprocessor: refused like it.
    assert "not a standard header" in (checks._c_refusal(f'#inc\\{end}lude "x.h"\nint x;') or "")


def test_token_pasting_is_allowed_without_a_define():
    assert checks._c_refusal('const char *s = "a ## b";\nint x;') is None
    assert checks._c_refusal("#define CAT(a, b) a %:%: b\n") is not None


def test_clang_pragmas_are_limited_to_the_vendor_list():
    assert checks._c_refusal("#pragma clang diagnostic push\n") is None
    assert checks._c_refusal("#pragma clang include_file\n") == (
        "refused to check: #pragma clang include_file is not one the check allows"
    )


def test_a_pragma_without_a_second_word_reads_as_one_space():
    assert checks._c_refusal("#pragma nonsense\n") == "refused to check: #pragma nonsense is not one the check allows"


def test_a_directive_after_a_comment_is_still_seen():
    assert checks._c_refusal('# /* c */ /**/ include "x.h"\n') is not None
    assert checks._c_refusal("#/* a */include <stdio.h>\nint x;") is None
    assert checks._c_refusal("int x; /* unterminated") is None
    assert checks._c_refusal('#/* c */ /* unterminated include "x.h"') is None


def test_shebang_made_a_plain_comment_for_ruby():
    assert checks._no_shebang("#!/usr/bin/ruby -rsocket\nputs 1") == "#/usr/bin/ruby -rsocket\nputs 1"
    assert checks._no_shebang("puts 1") == "puts 1"


def test_comment_ends_are_found_exactly():
    assert checks._c_refusal('#/*/ x */include "a.h"\n') is not None  # "/*/" does not close the comment
    assert checks._c_refusal('#/**/include "a.h"\n') is not None  # "/**/" does
    assert checks._c_refusal("#/**/define CAT(a, b) a ## b\n") is not None
    assert checks._c_refusal("int x;\n#") is None  # a bare # at the very end


# --- run_tool on a stand-in tool: `sh -c SCRIPT sh <code file>` (one short process each) ---------------


def _sh(script: str, **limits) -> str | None:
    return checks.run_tool("t", ["sh", "-c", script, "sh"], "", ".x", checks.Limits(**limits))


def test_a_tool_not_on_path_is_named():
    assert checks.run_tool("t", ["no-such-checker-xyz"], "", ".x") == "no-such-checker-xyz is not on PATH"


def test_a_tool_on_path_is_offered():
    assert "bash" in checks.checkable_languages()


def test_the_code_file_keeps_undecodable_bytes_and_the_tool_s_output_is_decoded_leniently():
    code = "echo \udcff"  # a byte that is not UTF-8, as surrogateescape reads it
    assert checks.run_tool("t", ["sh", "-c", 'od -An -tx1 "$1" | tr -d " \\n"; exit 1', "sh"], code, ".x") == (
        "6563686f20ff"
    )
    assert _sh('printf "bad \\377 error\\n" >&2; exit 1') == "bad \ufffd error"


def test_the_first_line_is_the_message_when_no_line_says_error_and_stderr_comes_first():
    assert _sh("echo out; echo warn >&2; exit 1") == "warn"


def test_a_silent_failure_gives_the_exit_status_or_the_signal():
    assert _sh("exit 3") == "t exited 3"
    assert _sh("kill -9 $$") == "t was killed by signal 9"


def test_a_silent_tool_is_cut_at_the_time_limit():
    message = _sh("sleep 3", seconds=0.3)
    assert message == "t did not finish within 0.3 s (the check's time limit); the code was not checked"


def test_output_of_exactly_the_limit_is_not_cut():
    assert _sh("head -c 1024 /dev/zero | tr '\\0' a; exit 1", output_bytes=1024) == "a" * 1024


def test_the_tool_reads_dev_null_as_stdin():
    assert _sh('[ "$(readlink /proc/self/fd/0)" = /dev/null ] || { echo "stdin is not /dev/null"; exit 1; }') is None


def test_output_is_counted_across_reads_and_joined_without_separators():
    script = "for i in 1 2 3; do head -c 600 /dev/zero | tr '\\0' a; sleep 0.05; done; exit 1"
    assert _sh(script, output_bytes=1024) == "t printed more than 1 KiB (the check's output limit)"
    assert _sh("printf a >&2; sleep 0.05; printf b >&2; printf c; exit 1") == "abc"


def test_a_limit_under_a_second_still_lets_a_quick_tool_finish():
    assert _sh("exit 3", seconds=0.9) == "t exited 3"


def test_a_tool_that_closes_its_output_and_lingers_is_cut_and_ended(tmp_path):
    pid_file = tmp_path / "pid"
    message = _sh(f"echo $$ > {pid_file}; exec >&- 2>&-; exec sleep 3", seconds=0.5)
    assert message is not None and message.startswith("t did not finish within 0.5 s")
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_a_toml_nested_too_deeply_names_the_parser_s_reason():
    message = checks._toml("a = " + "[" * 200_000)
    assert message is not None and message.startswith("cannot parse: maximum recursion depth exceeded")
