"""Property tests: the prompts-file parser and the code extractor raise nothing but their typed errors."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gencli.batch import read_items
from gencli.errors import UsageError
from gencli.extract import CodeStream, extract_code, prose_of

FENCE_HEAVY = st.text(alphabet=st.sampled_from(list("`~ \n\r\tpyhon{}abc123#:.-")), max_size=200)
ANY_TEXT = st.one_of(st.text(max_size=300), FENCE_HEAVY)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
KEYS = st.sampled_from(
    [
        "prompt",
        "id",
        "seed",
        "max_new_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "system",
        "lang",
        "negative",
        "output",
        "colour",
        "",
    ]
)
RECORDS = st.dictionaries(KEYS, JSON_VALUES, max_size=5)
LINES = st.lists(st.one_of(RECORDS.map(json.dumps), st.text(max_size=40)), max_size=8)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(
    lines=LINES, task=st.sampled_from(["text", "code", "image", "audio"]), suffix=st.sampled_from([".jsonl", ".txt"])
)
def test_prompts_file_parser_gives_items_or_a_usage_error(tmp_path_factory, lines, task, suffix):
    path = tmp_path_factory.mktemp("p") / f"prompts{suffix}"
    path.write_bytes("\n".join(lines).encode("utf-8", errors="replace"))
    try:
        items = read_items(str(path), task)
    except UsageError as exc:
        assert exc.exit_code == 2 and exc.message
        return
    assert items and len({i.id for i in items}) == len(items)
    assert all(i.prompt.strip() for i in items)
    assert [i.index for i in items] == list(range(len(items)))


@SETTINGS
@given(data=st.binary(max_size=300))
def test_prompts_file_parser_on_raw_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("p") / "prompts.jsonl"
    path.write_bytes(data)
    try:
        read_items(str(path), "text")
    except UsageError:
        pass


@SETTINGS
@given(
    answer=ANY_TEXT,
    language=st.sampled_from([None, "python", "bash", "py"]),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=6),
)
def test_extractor_never_raises_and_streaming_equals_whole(answer, language, cuts):
    whole = extract_code(answer, language)
    assert isinstance(whole, str) and isinstance(prose_of(answer), str)
    bounds = sorted({min(c, len(answer)) for c in cuts})
    pieces = [answer[i:j] for i, j in zip([0, *bounds], [*bounds, len(answer)], strict=True)]
    stream = CodeStream(language)
    assert "".join(stream.feed(p) for p in pieces) + stream.finish() == whole
