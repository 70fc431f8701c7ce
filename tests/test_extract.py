"""Code extraction over the shapes answers come in, whole and streamed."""

import random

import pytest

from gencli.extract import CodeStream, extract_code, normalize_language, prose_of

F = "```"

CASES = [
    # (name, answer, language, expected code)
    ("no fence", "x = 1\nprint(x)\n", None, "x = 1\nprint(x)"),
    ("no fence, blank edges", "\n\nx = 1\n\n", "python", "x = 1"),
    ("one fence", f"{F}python\nx = 1\n{F}\n", "python", "x = 1"),
    ("fence without tag", f"{F}\nx = 1\n{F}", "python", "x = 1"),
    ("prose before and after", f"Here you go:\n{F}python\nx = 1\n{F}\nThis sets x.", None, "x = 1"),
    ("two blocks same language", f"{F}python\na = 1\n{F}\nthen\n{F}python\nb = 2\n{F}", "python", "a = 1\n\nb = 2"),
    ("other-language block dropped", f"{F}python\na = 1\n{F}\nRun it:\n{F}bash\npython a.py\n{F}", "python", "a = 1"),
    ("alias tags match", f"{F}py\na = 1\n{F}", "python", "a = 1"),
    ("no block in the wanted language: all of them", f"{F}js\nlet a\n{F}\n{F}ruby\nb\n{F}", "python", "let a\n\nb"),
    ("several blocks, no language asked", f"{F}python\na\n{F}\n{F}bash\nb\n{F}", None, "a\n\nb"),
    ("nested backticks in a longer fence", f"````markdown\n{F}python\nx\n{F}\n````", "markdown", f"{F}python\nx\n{F}"),
    ("inline backticks inside code", f"{F}bash\necho `date`\n{F}", "bash", "echo `date`"),
    ("CRLF line ends", f"{F}python\r\nx = 1\r\ny = 2\r\n{F}\r\n", "python", "x = 1\ny = 2"),
    (
        "unterminated fence runs to the end",
        f"Sure:\n{F}python\ndef f():\n    return 1",
        "python",
        "def f():\n    return 1",
    ),
    ("tilde fence", "~~~python\nx = 1\n~~~", "python", "x = 1"),
    ("closing fence must match the opener", f"~~~\n{F}\nx\n~~~", None, f"{F}\nx"),
    (
        "indented fence strips its indent",
        f"1. Do this:\n   {F}python\n   x = 1\n     y\n   {F}",
        "python",
        "x = 1\n  y",
    ),
    ("blank lines inside kept, around dropped", f"{F}python\n\nx = 1\n\n\ny = 2\n\n{F}", "python", "x = 1\n\n\ny = 2"),
    ("indentation of the first line kept", f"{F}python\n    indented = True\n{F}", "python", "    indented = True"),
    ("info string with attributes", f"{F}python title=a.py\nx\n{F}", "python", "x"),
    ("empty block", f"{F}python\n{F}", "python", ""),
    ("fence-like text inside a line is not a fence", f"Use {F}x{F} inline\n{F}\ncode\n{F}", None, "code"),
]


@pytest.mark.parametrize("name, answer, language, expected", CASES, ids=[c[0] for c in CASES])
def test_extract_code(name, answer, language, expected):
    assert extract_code(answer, language) == expected


@pytest.mark.parametrize("name, answer, language, expected", CASES, ids=[c[0] for c in CASES])
def test_streaming_gives_the_same_code_however_the_answer_is_cut(name, answer, language, expected):
    rng = random.Random(name)
    for _ in range(20):
        cuts = sorted(rng.sample(range(len(answer) + 1), k=min(len(answer), rng.randint(0, 8))))
        pieces = [answer[i:j] for i, j in zip([0, *cuts], [*cuts, len(answer)], strict=True)]
        stream = CodeStream(language)
        assert "".join(stream.feed(p) for p in pieces) + stream.finish() == expected


def test_streaming_shows_code_lines_before_the_answer_ends():
    stream = CodeStream("python")
    assert stream.feed(f"{F}python\nline_one = 1\n") == "line_one = 1"
    assert stream.feed("line_two = 2\n") == "\nline_two = 2"


def test_prose_is_what_surrounds_the_code():
    assert prose_of(f"Intro:\n{F}python\nx\n{F}\nOutro.") == "Intro:\nOutro."
    assert prose_of("no fences at all") == ""


@pytest.mark.parametrize(
    "name, normal",
    [
        ("Py", "python"),
        ("sh", "bash"),
        ("JS", "javascript"),
        ("c++", "cpp"),
        ("rust", "rust"),
        (None, None),
        ("", None),
    ],
)
def test_normalize_language(name, normal):
    assert normalize_language(name) == normal
