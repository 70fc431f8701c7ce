"""Checker cases that `make mutation` found untested (docs/mutation.md lists what is left).

Only the in-process parts: the parsers' messages and the C/C++ refusal, which runs before any compiler.
"""

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
