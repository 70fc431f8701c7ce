"""Extraction cases that `make mutation` found untested (docs/mutation.md lists what is left)."""

from gencli.extract import CodeStream, extract_code, normalize_language

F = "```"


def _streamed(answer: str, language: str | None) -> str:
    stream = CodeStream(language)
    return stream.feed(answer) + stream.finish()


def test_pandoc_style_tags_lose_their_braces_and_dot():
    assert normalize_language("{.python}") == "python"
    assert normalize_language("{py}") == "python"


def test_a_last_line_without_newline_loses_its_carriage_return():
    assert extract_code(f"{F}python\r\nx = 1\r") == "x = 1"
    assert _streamed(f"{F}python\r\nx = 1\r", "python") == "x = 1"


def test_a_content_line_indented_less_than_its_fence_keeps_its_text():
    answer = f"   {F}python\n x = 1\n   {F}"
    assert extract_code(answer, "python") == "x = 1"


def test_an_answer_without_fences_keeps_its_leading_indentation_and_loses_trailing_spaces():
    assert extract_code("\n    x = 1   \n\n") == "    x = 1"
    assert _streamed("\n    x = 1   \n\n", None) == "    x = 1"


def test_a_blank_wanted_block_does_not_make_the_stream_fall_back_to_other_languages():
    answer = f"{F}python\n\n{F}\n{F}bash\necho hi\n{F}\n"
    assert extract_code(answer, "python") == ""
    assert _streamed(answer, "python") == ""


def test_a_wanted_block_after_an_unwanted_one_streams_in_the_same_piece():
    stream = CodeStream("python")
    assert stream.feed(f"{F}bash\necho hi\n{F}\n{F}python\na = 1\n") == "a = 1"
