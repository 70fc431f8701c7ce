"""Device-option cases that `make mutation` found untested (docs/mutation.md lists what is left)."""

import pytest

from gencli.devices import normalize_device, normalize_dtype, normalize_quantize
from gencli.errors import UsageError


def test_empty_values_mean_the_defaults():
    assert normalize_device("") == "auto"
    assert normalize_dtype("") == "auto"
    assert normalize_quantize("") == "auto"


@pytest.mark.parametrize(
    "normalize, value, line",
    [
        (normalize_device, "tpu", "unknown device 'tpu'. Use auto, cpu, cuda, cuda:N or mps."),
        (normalize_dtype, "fp8", "unknown dtype 'fp8'. Use auto, fp32, fp16 or bf16."),
        (normalize_quantize, "int2", "unknown quantisation 'int2'. Use auto, none, int8 or int4."),
    ],
)
def test_an_unknown_value_names_itself_and_the_choices(normalize, value, line):
    with pytest.raises(UsageError) as caught:
        normalize(value)
    assert caught.value.one_line() == line
