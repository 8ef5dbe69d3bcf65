from chatport.engine.text import StopMatcher, Utf8Assembler, token_display


def feed_all(matcher, pieces):
    out, stopped = "", False
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        out += text
        if stopped:
            return out, True
    return out + matcher.flush(), False


def test_stop_split_across_pieces_is_never_released():
    matcher = StopMatcher(("END",))
    released = []
    for piece in ["hello E", "N", "D and more"]:
        text, stopped = matcher.feed(piece)
        released.append(text)
        if stopped:
            break
    assert released == ["hello ", "", ""]
    assert stopped


def test_partial_match_that_fails_is_released_later():
    assert feed_all(StopMatcher(("END",)), ["a E", "N", "x"]) == ("a ENx", False)


def test_earliest_of_several_stops_wins():
    assert feed_all(StopMatcher(("world", "lo")), ["hello world"]) == ("hel", True)


def test_no_stops_passes_through():
    assert StopMatcher(()).feed("abc") == ("abc", False)


def test_stop_inside_one_piece():
    assert feed_all(StopMatcher(("\n\n",)), ["line one\n", "\nline two"]) == ("line one", True)


def test_utf8_split_over_tokens():
    data = "é😀".encode()
    asm = Utf8Assembler()
    assert asm.feed(data[:1]) == ""
    assert asm.feed(data[1:3]) == "é"
    assert asm.feed(data[3:]) == "😀"


def test_token_display_spells_partial_bytes():
    assert token_display(b"abc") == "abc"
    assert token_display("😀".encode()[:2]) == "bytes:\\xf0\\x9f"
