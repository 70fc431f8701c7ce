"""Stop strings, trimming and incremental decoding, piece by piece."""

import pytest

from gencli.textstream import EdgeTrimmer, IncrementalDecoder, Shaper, StopFilter


def feed_all(filter_, pieces):
    out = "".join(filter_.feed(p) for p in pieces)
    return out + filter_.flush()


@pytest.mark.parametrize(
    "pieces, stops, expected",
    [
        (["Hello wor", "ld. END here"], ["END"], "Hello world. "),
        (["abc", "E", "N", "D", "more"], ["END"], "abc"),  # stop string split across pieces
        (["abcEN", "x"], ["END"], "abcENx"),  # a false start is released
        (["abcEN"], ["END"], "abcEN"),  # held text released at the end
        (["one\n\ntwo"], ["\n\n"], "one"),
        (["xx STOP yy END"], ["END", "STOP"], "xx "),  # the earliest of several wins
        (["no stop at all"], [], "no stop at all"),
        (["aaa"], [""], "aaa"),  # an empty stop string is ignored
    ],
)
def test_stop_filter(pieces, stops, expected):
    assert feed_all(StopFilter(stops), pieces) == expected


def test_stop_filter_holds_back_only_a_possible_prefix():
    f = StopFilter(["END"])
    assert f.feed("abcE") == "abc"  # "E" may start "END"
    assert f.feed("x") == "Ex"
    assert f.feed("EN") == ""
    assert f.feed("D!") == "" and f.stopped
    assert f.feed("after") == ""


def test_edge_trimmer_drops_leading_and_trailing_whitespace():
    t = EdgeTrimmer()
    out = "".join(t.feed(p) for p in ["\n\n  ", "Hello", " ", "\n", "world", "\n\n", "  "])
    assert out == "Hello \nworld"


def test_shaper_text_is_what_it_emitted():
    s = Shaper(["###"])
    shown = [s.feed(p) for p in ["\nAnswer: 4", "2\n", "###", " ignored"]] + [s.finish()]
    assert "".join(shown) == s.text == "Answer: 42"
    assert s.stopped


class FakeByteTokenizer:
    """Decodes ids as UTF-8 bytes, like a byte-level tokenizer splitting characters."""

    def decode(self, ids, skip_special_tokens=True):
        return bytes(ids).decode("utf-8", errors="replace")


def test_incremental_decoder_waits_for_whole_characters():
    d = IncrementalDecoder(FakeByteTokenizer())
    euro = list("€".encode())  # three bytes
    assert d.add([ord("a")]) == "a"
    assert d.add(euro[:1]) == ""
    assert d.add(euro[1:2]) == ""
    assert d.add(euro[2:]) == "€"
    assert d.add(euro[:1]) == ""
    assert d.flush() == "\ufffd"  # the stream ended mid-character: shown, not lost


# --- generated text on a terminal (issue 18.6) -------------------------------------------------


def test_terminal_safe_neutralises_escape_sequences_and_keeps_newlines_and_tabs():
    from gencli.textstream import terminal_safe

    text = "a\x1b]0;pwned\x07b\x1b[2Jc\td\ne\x9bf\x7fg"
    shown = terminal_safe(text)
    assert shown == "a\\x1b]0;pwned\\x07b\\x1b[2Jc\td\ne\\x9bf\\x7fg"
    assert all(ch in "\t\n" or (ch.isprintable()) for ch in shown)


def test_terminal_safe_drops_carriage_returns_and_keeps_unicode():
    from gencli.textstream import terminal_safe

    assert terminal_safe("line\r\nover\rwrite") == "line\noverwrite"
    assert terminal_safe("café 👩‍💻 ✓") == "café 👩‍💻 ✓"  # ZWJ sequences stay whole


def test_terminal_safe_works_piece_by_piece():
    from gencli.textstream import terminal_safe

    pieces = ["x\x1b", "[2", "Jy"]
    assert "".join(terminal_safe(p) for p in pieces) == terminal_safe("".join(pieces))
