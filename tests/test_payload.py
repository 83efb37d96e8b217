"""The one JSON reader for untrusted bytes: syntax errors and hostile nesting are sentences."""

import pytest

from avatar_daemon import PayloadError, load_json


def test_deep_nesting_is_refused_with_a_sentence_not_a_recursion_error():
    for depth in (100_000, 65):
        with pytest.raises(PayloadError, match=r"x\.json: nested too deeply \(more than 64 levels\)"):
            load_json("[" * depth + "]" * depth, "x.json")
    assert load_json("[" * 64 + "]" * 64, "x.json") is not None


def test_bad_syntax_names_the_thing_line_and_column():
    with pytest.raises(PayloadError, match=r"^body: not valid JSON: .* line 2 column 1 \(it looks cut short\)$"):
        load_json('{"a":\n', "body")
