"""Constrained output (gencli/constrain.py), in process: reading schemas and grammars, and generation
on a tiny random Llama whose tokenizer can spell JSON, so only the grammar mask makes its output valid."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gencli import constrain
from gencli.errors import EXIT_INCOMPLETE, UsageError


@pytest.fixture(scope="module")
def tiny_json(tmp_path_factory):
    from tiny_json_model import build_tiny_json_llama

    return str(build_tiny_json_llama(tmp_path_factory.mktemp("tiny-json-llama")))


def run(model: str, prompt: str = "Answer in JSON.", **options):
    from gencli.api import generate

    return generate("text", prompt, model=model, **options)


# --- reading the constraint ------------------------------------------------------------------


def test_the_concise_form_is_an_object_of_required_typed_fields_with_descriptions():
    schema, _ = constrain.read_schema("name, age int, score float, ok bool, bio: a short bio")
    assert schema == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "score": {"type": "number"},
            "ok": {"type": "boolean"},
            "bio": {"type": "string", "description": "a short bio"},
        },
        "required": ["name", "age", "score", "ok", "bio"],
        "additionalProperties": False,
    }
    lines, _ = constrain.read_schema("title\ncount int: how many, at most ten")
    assert lines["properties"]["count"] == {"type": "integer", "description": "how many, at most ten"}


def test_a_schema_comes_from_inline_json_a_file_or_a_concise_file(tmp_path):
    assert constrain.read_schema('{"type": "integer"}')[0] == {"type": "integer"}
    (tmp_path / "s.json").write_text('{"type": "object", "properties": {"a": {"type": "boolean"}}}')
    assert constrain.read_schema(str(tmp_path / "s.json"))[0]["properties"] == {"a": {"type": "boolean"}}
    (tmp_path / "concise").write_text("a int\nb")
    assert constrain.read_schema(str(tmp_path / "concise"))[0]["required"] == ["a", "b"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"schema": "a", "choice": "x,y"}, "--schema and --choice do not go together"),
        ({"schema": "a", "grammar": "g.gbnf", "choice": "x"}, "do not go together"),
        ({"schema": "missing.json"}, "--schema file 'missing.json' does not exist"),
        ({"schema": "dir/missing"}, "does not exist"),
        ({"schema": '{"type": '}, "--schema (inline JSON) is not valid JSON"),
        ({"schema": "[1, 2]"}, "cannot read the field"),
        ({"schema": '{"type": "objekt"}'}, "--schema (inline JSON) cannot be used"),
        ({"schema": "name, age integr"}, "cannot read the field 'age integr'"),
        ({"schema": " , "}, "names no field"),
        ({"choice": "a,,b"}, "has an empty choice"),
        ({"choice": " "}, "has an empty choice"),
        ({"grammar": "no-such.gbnf"}, "--grammar file 'no-such.gbnf' does not exist"),
        ({"choice": "a,b", "stop": ["x"]}, "--stop would cut the output that --choice must complete"),
    ],
)
def test_bad_constraints_are_usage_errors_naming_their_source(params, message):
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        constrain.check(params)
    assert "\n" not in caught.value.one_line()


def test_bad_grammar_files_are_refused_with_their_name(tmp_path):
    bad_lark = tmp_path / "bad.lark"
    bad_lark.write_text('start: "(" undefined_rule\n')
    bad_gbnf = tmp_path / "bad.gbnf"
    bad_gbnf.write_text('root ::= "a" (\n')
    big = tmp_path / "big.lark"
    big.write_bytes(b"start: " + b'"a" | ' * 200_000 + b'"b"\n')
    binary = tmp_path / "nul.gbnf"
    binary.write_bytes(b'root ::= "a"\0')
    for path, message in [
        (bad_lark, "cannot be used"),
        (bad_gbnf, "--grammar file"),
        (big, "is over 1024 KiB"),
        (binary, "NUL bytes"),
        (tmp_path, "is not a regular file"),
    ]:
        with pytest.raises(UsageError, match=re.escape(message)):
            constrain.check({"grammar": str(path)})


def test_a_gbnf_file_in_llama_cpp_syntax_is_converted_and_a_lark_file_read_as_it_is(tmp_path):
    gbnf = tmp_path / "answer.gbnf"
    gbnf.write_text('# llama.cpp\nroot ::= answer " " [a-z]{1,3}\nanswer ::= "yes" | "no"\n')
    lark = tmp_path / "answer.lark"
    lark.write_text('start: ("yes" | "no") "!"\n')
    assert constrain.constraint_of({"grammar": str(gbnf)}).record["format"] == "gbnf"
    assert constrain.constraint_of({"grammar": str(lark)}).record["format"] == "lark"


# --- generation ------------------------------------------------------------------------------

_NAMES = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)
_WORDS = st.lists(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6), min_size=1, max_size=3, unique=True)
_PROPERTY = st.one_of(
    st.integers(1, 8).map(lambda n: {"type": "string", "maxLength": n}),
    st.tuples(st.integers(-50, 50), st.integers(0, 500)).map(
        lambda t: {"type": "integer", "minimum": t[0], "maximum": t[0] + t[1]}
    ),
    st.just({"type": "boolean"}),
    _WORDS.map(lambda words: {"enum": words}),
)
_SCHEMAS = st.dictionaries(_NAMES, _PROPERTY, min_size=1, max_size=3).flatmap(
    lambda props: st.lists(st.sampled_from(sorted(props)), unique=True).map(
        lambda required: {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    )
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=_SCHEMAS, seed=st.integers(0, 2**31 - 1), temperature=st.sampled_from([0.0, 0.8, 1.5]))
def test_every_output_parses_and_validates_against_its_schema(tiny_json, schema, seed, temperature):
    import jsonschema

    record = run(tiny_json, schema=json.dumps(schema), seed=seed, temperature=temperature, max_new_tokens=160)
    assert record["finish_reason"] == "eos", record["text"]
    assert json.loads(record["text"]) == record["data"]
    jsonschema.validate(record["data"], schema)
    assert record["constraint"] == {"kind": "schema", "schema": schema}


def test_without_the_constraint_the_tiny_model_does_not_write_json(tiny_json):
    record = run(tiny_json, seed=3, temperature=0.8, max_new_tokens=40)
    with pytest.raises(json.JSONDecodeError):
        json.loads(record["text"])
    assert "constraint" not in record and "data" not in record


def test_choice_gives_one_of_the_choices_for_every_seed_greedy_too(tiny_json):
    seen = set()
    for seed in range(6):
        record = run(tiny_json, choice="red, green ,blue", seed=seed, temperature=1.0)
        assert record["text"] in {"red", "green", "blue"} and record["finish_reason"] == "eos"
        seen.add(record["text"])
    assert record["constraint"] == {"kind": "choice", "choices": ["red", "green", "blue"]}
    assert run(tiny_json, choice="yes,no", temperature=0)["text"] in {"yes", "no"}
    assert len(seen) > 1  # the seed still chooses among the allowed tokens


def test_a_gbnf_grammar_shapes_the_output(tiny_json, tmp_path):
    grammar = tmp_path / "mood.gbnf"
    grammar.write_text(
        "# an answer and a short word, as llama.cpp writes grammars\n"
        'root   ::= answer " " mood\n'
        'answer ::= "yes" | "no"\n'
        'mood   ::= [a-z]{1,3} "!"?\n'
    )
    for seed in range(3):
        record = run(tiny_json, grammar=str(grammar), seed=seed, temperature=0.9, max_new_tokens=30)
        assert re.fullmatch(r"(yes|no) [a-z]{1,3}!?", record["text"]), record["text"]
        assert record["constraint"]["format"] == "gbnf" and "data" not in record


def test_the_token_limit_before_the_end_is_exit_9_with_a_record_that_says_length(tiny_json):
    from gencli.engine import run_one, settle

    params = settle("text", {"model": tiny_json, "schema": "name, age int", "max_new_tokens": 3, "seed": 1})
    record = run_one("text", "Who?", params)
    assert record["finish_reason"] == "length" and record["data"] is None
    assert "--max-new-tokens" in record["error"]
    with pytest.raises(constrain.IncompleteOutput) as caught:
        run(tiny_json, "Who?", schema="name, age int", max_new_tokens=3, seed=1)
    assert caught.value.exit_code == EXIT_INCOMPLETE == 9


def test_a_batch_mixes_per_item_constraints_in_one_group(tiny_json):
    from gencli.api import generate_batch

    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["n"]}
    items = [
        {"id": "s", "prompt": "a", "schema": json.dumps(schema)},
        {"id": "c", "prompt": "b", "choice": "up,down"},
        {"id": "free", "prompt": "c"},
        {"id": "short", "prompt": "d", "schema": "name", "max_new_tokens": 2},
    ]
    # seed 2: the tiny model closes the object within 40 tokens (the schema allows more properties)
    records = {r["id"]: r for r in generate_batch("text", items, model=tiny_json, max_new_tokens=40, seed=2)}
    assert records["s"]["data"] == json.loads(records["s"]["text"]) and 0 <= records["s"]["data"]["n"] <= 9
    assert records["c"]["text"] in {"up", "down"} and records["c"]["constraint"]["kind"] == "choice"
    assert "constraint" not in records["free"] and "error" not in records["free"]
    assert records["s"]["timings"]["batch_size"] == 3  # one generate call, a matcher per row
    short = records["short"]
    assert short["finish_reason"] == "length" and short["data"] is None and "--max-new-tokens" in short["error"]


def test_quantized_models_are_constrained_too(tiny_json):
    record = run(tiny_json, schema="ok bool, n int", quantize="int8", seed=2, temperature=0.7, max_new_tokens=120)
    assert record["quantize"] == "int8"
    assert set(record["data"]) == {"ok", "n"} and isinstance(record["data"]["ok"], bool)


def test_a_choice_the_tokenizer_cannot_spell_is_a_usage_error_not_a_crash(tiny_json):
    with pytest.raises(UsageError, match="cannot write what the constraint requires"):
        run(tiny_json, choice="\u00e9t\u00e9,\u00e0 la", temperature=0)


def test_a_schema_may_be_a_json_object_in_a_prompts_file_and_in_the_api(tiny_json, tmp_path):
    from gencli.api import generate_batch, generate_text

    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["n"]}
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"id": "o", "prompt": "a", "schema": schema}) + "\n")
    (record,) = generate_batch("text", prompts, model=tiny_json, max_new_tokens=40, seed=2)
    assert "error" not in record and 0 <= record["data"]["n"] <= 9 and record["constraint"]["kind"] == "schema"
    direct = generate_text("a", model=tiny_json, max_new_tokens=40, seed=2, schema=schema)
    assert direct["text"] == record["text"]  # the object is the schema its JSON text is
