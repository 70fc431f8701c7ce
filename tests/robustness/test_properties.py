"""Property tests: the prompts-file parser and the code extractor raise nothing but their typed errors."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gencli.batch import read_items
from gencli.batch.items import overridable
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

# --- prompts files built to be valid, or valid but for one named line ---------------------------------

TASKS = st.sampled_from(["text", "code", "image", "audio"])
_VALUES = {
    int: st.integers(min_value=0, max_value=10**6),
    float: st.floats(min_value=0.01, max_value=10, allow_nan=False),
    str: st.text(min_size=1, max_size=12),
    bool: st.booleans(),
    list: st.lists(st.text(min_size=1, max_size=6), max_size=3),
}
_WRONG = {int: st.just("7"), float: st.just("0.5"), str: st.just(5), bool: st.just("yes"), list: st.just([1])}
PROMPTS = st.text(min_size=1, max_size=40).filter(str.strip)


@st.composite
def valid_records(draw, task: str) -> list[dict]:
    """1-6 records a prompts file of ``task`` accepts: a prompt, maybe an id (unique), overrides of the right type."""
    allowed = overridable(task)
    count = draw(st.integers(min_value=1, max_value=6))
    ids = draw(st.lists(st.text(min_size=1, max_size=6), min_size=count, max_size=count, unique=True))
    records = []
    for number in range(count):
        record: dict = {"prompt": draw(PROMPTS)}
        if draw(st.booleans()):
            record["id"] = "item-" + ids[number]  # never a line number, which an id-less record takes
        for key in draw(st.lists(st.sampled_from(sorted(allowed)), max_size=3, unique=True)):
            record[key] = draw(_VALUES[allowed[key]])
        records.append(record)
    return records


def _file(records: list) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


@SETTINGS
@given(data=st.data(), task=TASKS)
def test_valid_prompts_files_parse_to_their_records(tmp_path_factory, data, task):
    records = data.draw(valid_records(task))
    path = tmp_path_factory.mktemp("p") / "prompts.jsonl"
    path.write_text(_file(records), encoding="utf-8")
    items = read_items(str(path), task)
    assert [i.prompt for i in items] == [r["prompt"] for r in records]
    assert [i.id for i in items] == [str(r.get("id", n)) for n, r in enumerate(records, 1)]
    overrides = [{k: v for k, v in r.items() if k not in ("prompt", "id")} for r in records]
    assert [i.params for i in items] == overrides
    assert [i.line for i in items] == list(range(1, len(records) + 1))


@SETTINGS
@given(
    data=st.data(),
    task=TASKS,
    fault=st.sampled_from(
        ["unknown key", "wrong type", "blank prompt", "no prompt", "duplicate id", "not JSON", "not an object"]
    ),
)
def test_a_prompts_file_valid_but_for_one_line_names_that_line(tmp_path_factory, data, task, fault):
    records: list = data.draw(valid_records(task))
    line = data.draw(st.integers(min_value=1, max_value=len(records)))
    broken = dict(records[line - 1])
    allowed = overridable(task)
    if fault == "unknown key":
        broken["colour"] = "red"
    elif fault == "wrong type":
        key = data.draw(st.sampled_from(sorted(allowed)))
        broken[key] = data.draw(_WRONG[allowed[key]])
    elif fault == "blank prompt":
        broken["prompt"] = " \t"
    elif fault == "no prompt":
        del broken["prompt"]
    elif fault == "duplicate id":
        records.insert(0, {"prompt": "first", "id": "twin"})
        line += 1
        broken["id"] = "twin"
    elif fault == "not JSON":
        broken = json.dumps(broken)[:-1]
    else:
        broken = json.dumps([broken])
    records[line - 1] = broken
    path = tmp_path_factory.mktemp("p") / "prompts.jsonl"
    path.write_text(_file(records), encoding="utf-8")
    try:
        read_items(str(path), task)
    except UsageError as exc:
        assert exc.exit_code == 2 and exc.message.startswith(f"{path}:{line}: "), (fault, exc.message)
    else:
        raise AssertionError(f"{fault} on line {line} was accepted")


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
