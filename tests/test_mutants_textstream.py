"""Text-stream cases that `make mutation` found untested (docs/mutation.md lists what is left)."""

from gencli.textstream import IncrementalDecoder, StopFilter

EOS = 256


class SpecialTokenizer:
    """Byte ids plus one special token, shown only when not skipped (transformers' default is to show it)."""

    def decode(self, ids, skip_special_tokens=False):
        text = "".join("<eos>" if i == EOS else chr(i) for i in ids)
        return text.replace("<eos>", "") if skip_special_tokens else text


class RewritingTokenizer:
    """A decoding that changes text already decoded once more ids arrive (a merge across the boundary)."""

    def __init__(self, texts):
        self.texts = texts

    def decode(self, ids, skip_special_tokens=False):
        return self.texts[len(ids)]


def test_the_first_of_two_occurrences_of_a_stop_string_in_one_piece_cuts():
    stop = StopFilter(["STOP"])
    assert stop.feed("a STOP b STOP c") == "a "
    assert stop.flush() == ""


def test_special_tokens_are_not_shown_while_streaming_nor_at_the_end():
    d = IncrementalDecoder(SpecialTokenizer())
    assert d.add([ord("h"), ord("i")]) == "hi"
    assert d.add([EOS]) == ""
    assert d.flush() == ""


def test_a_rewrite_of_text_already_shown_emits_nothing_rather_than_a_misaligned_tail():
    d = IncrementalDecoder(RewritingTokenizer({1: "ab", 2: "xyz", 3: "xyz!"}))
    assert d.add([1]) == "ab"
    assert d.add([2]) == ""
    assert d.add([3]) == "!"


def test_flush_after_a_rewrite_emits_nothing_misaligned():
    d = IncrementalDecoder(RewritingTokenizer({1: "ab", 2: "xy\ufffd"}))
    assert d.add([1]) == "ab"
    assert d.add([2]) == ""  # ends in an unfinished character: held
    assert d.flush() == ""  # and what it rewrote is not shown as a tail of "ab"
