"""The text cleaner: what research text may carry into a caption, a script, Slack, a log or the store."""

import json
import re
import sqlite3
import sys
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatar_daemon import Insight, Research, clean_text, hookimpl, to_spoken
from avatar_daemon.spoken import strip_markup
from avatar_daemon.spoken import strip_invisible
from avatar_daemon.testing import make_daemon

# Deterministic (the same examples on every run and in CI), no example database left in the tree,
# and no deadline: the machine is shared, and speed belongs in benchmarks.
PROPERTY = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
LINE_BREAKS = "\t\n\r\x0b\x0c\x85"  # whitespace: folded, not deleted


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs") and ch not in LINE_BREAKS


@pytest.mark.parametrize("text,expected", [
    ("awesome_llm_apps: a list", "awesome_llm_apps: a list"),
    ("use my_cool_repo", "use my_cool_repo"),
    ("override __init__ and __repr__", "override __init__ and __repr__"),
    ("edit __init__.py first", "edit __init__.py first"),
    ("a*b*c is a product", "a*b*c is a product"),
    ("call `parse_args()` then `my_func`", "call parse_args() then my_func"),
    ("_private_ stays a word", "private stays a word"),
])
def test_identifiers_and_code_spans_keep_their_characters(text, expected):
    assert clean_text(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("<script>alert(1)</script>Hello", "Hello"),
    ("Hi <style>p { color: red }</style>there", "Hi there"),
    ("&lt;script&gt;alert(1)&lt;/script&gt; escaped once", "escaped once"),
    ("<p>Ask HN</p><script src=x>steal()", "Ask HN"),  # never closed: hides the rest, as in a browser
    ("<a href='<script>alert(1)</script>", ""),      # an attribute left open swallows what follows
    ("<noscript>fallback</noscript><template>t</template>kept", "kept"),
    ("<script/>alert(1)</script>after <svg/>icon", "after icon"),  # only SVG closes itself
])
def test_script_and_style_bodies_are_dropped(text, expected):
    assert clean_text(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("I&#x27;m posting <em>this</em><p>second para", "I'm posting this second para"),
    ("&lt;!-- SC_OFF --&gt;&lt;div class=\"md\"&gt;&lt;p&gt;I&amp;#39;m here&lt;/p&gt;&lt;/div&gt;", "I'm here"),
    ("AT&amp;T &lt;3 R&D", "AT&T <3 R&D"),
    ("if x<y then", "if x<y then"),  # not a tag: no browser would hide it either
    ("<![foo[ bogus ]]>after", "after"),  # the stdlib raises AssertionError on this
])
def test_html_is_read_by_a_parser(text, expected):
    assert clean_text(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("x *emph* y **bold** ~~old~~ new", "x emph y bold old new"),
    ("see [the study](https://example.com) ![chart](c.png) now", "see the study now"),
    ("[the docs](javascript:alert(1)) and [a page](https://a.io/%zz)", "the docs and a page"),
    ("# Heading\nBody text", "Heading. Body text"),
    ("Title\n=====\nbody", "Title. body"),
    ("- one\n- two\n* three", "one. two. three."),
    ("1. first\n2. second", "first. second."),
    ("&gt; quoted reply\n\nFTFY.", "quoted reply FTFY."),
    ("before\n\n```python\nimport os\n```\n\nafter", "before after"),
    ("| name | stars |\n|---|---|\n| react | 5 |", "name stars react 5"),
    ("[OC] a chart, [D] a talk", "[OC] a chart, [D] a talk"),  # brackets without a link are text
])
def test_markdown_is_read_by_a_parser(text, expected):
    assert clean_text(text) == expected


def test_paragraph_breaks_stay_pauses_and_lines_join():
    assert to_spoken("## Big *news*\n- one\n- two") == "Big news. one. two."
    assert to_spoken("First paragraph\nsame one.\n\nSecond **one**.") == "First paragraph same one.\n\nSecond one."
    assert to_spoken("<p>one</p><p>two</p>") == "one\n\ntwo"


@pytest.mark.parametrize("value,expected", [
    (1984, "1984"), ("1984", "1984"), ("1984.", "1984."), (3.5, "3.5"),
    ("2024. What a year", "2024. What a year."),  # a list "starting at 2024" keeps its number
    (True, ""), (None, ""), (float("nan"), ""), ({"title": "x"}, ""), (10 ** 5000, ""),
], ids=lambda v: type(v).__name__ if isinstance(v, int) and v > 10 ** 100 else None)
def test_numbers_are_text(value, expected):
    assert clean_text(value) == expected


def test_terminal_escapes_go_whole_and_are_not_read_as_numbers():
    text = "Revenue \x1b[0mgrew \x1b[1;31m5x\x1b[0m \x1b]8;;https://x.io\x1b\\here\x1b]8;;\x1b\\ \x9b2Jnow"
    assert clean_text(text) == "Revenue grew 5x here now"
    spoken = to_spoken(text)
    assert "million" not in spoken and "[" not in spoken and spoken == "Revenue grew 5 times here now"


def test_bidi_overrides_zero_width_and_controls_are_removed():
    text = f"safe{BIDI}txt{ZERO_WIDTH}.exe\x00\x07\x7f\x9f soft\u00adhyphen tag\U000e0041s"
    assert clean_text(text) == "safetxt.exe softhyphen tags"
    assert to_spoken("line one\r\nline\u2028two") == "line one line two"
    # entities that decode to invisible characters are caught too, and none hides markup
    assert clean_text("a&#x202e;b&#8203;c&#x2066;") == "abc"
    assert clean_text("<\x00script>alert(1)</script>") == ""
    assert clean_text("ok \x1b<b>bold</b>") == "ok bold"


def test_every_control_format_and_surrogate_character_is_removed():
    invisible = [chr(cp) for cp in range(sys.maxunicode + 1) if _invisible(chr(cp))]
    assert len(invisible) > 2000  # the C0/C1 controls, ~170 format characters and 2048 surrogates
    assert strip_invisible("".join(invisible)) == ""
    assert strip_invisible(LINE_BREAKS) == "\t\n\n\n\n\n"


def test_a_long_body_is_cut_at_a_word():
    text = "word " * 400
    assert clean_text(text, 50) == " ".join(["word"] * 10) + "…"


def test_markup_dense_text_still_fills_the_limit():
    assert clean_text("<em>word</em> " * 40, 30) == " ".join(["word"] * 6) + "…"


# ---- property-based: any text gives text, never an exception ---------------------------------

MARKUP = st.sampled_from([
    "<", ">", "&", "&amp;", "&lt;", "&#x27;", "&#0;", "&#x110000;", "<p>", "</p>", "<script>", "</script>",
    "<style>", "<!--", "-->", "<![", "]]>", "<a href='", "'>", "<br/>", "*", "**", "_", "__", "`", "```",
    "~~", "[", "](", ")", "![", "#", "# ", "\n", "\n\n", "- ", "1. ", "1984.", "> ", "|", "\\", "\x1b[",
    "\x1b]", "\x9b", "m", "0", "$5M", "50%", "https://x.io/a_b", "\u202e", "\u200b", "\ud800", "🚀", "\u2028",
])
RESEARCH_TEXT = st.one_of(st.text(), st.lists(st.one_of(MARKUP, st.text(max_size=8)), max_size=40).map("".join))


@PROPERTY
@given(RESEARCH_TEXT)
def test_strip_markup_gives_visible_text_for_any_input(text):
    out = strip_markup(text)
    assert isinstance(out, str)
    assert not any(_invisible(ch) for ch in out if ch not in "\t\n")


@PROPERTY
@given(RESEARCH_TEXT, st.integers(min_value=1, max_value=200))
def test_clean_text_gives_one_short_visible_line_for_any_input(text, limit):
    out = clean_text(text, limit)
    assert len(out) <= limit + 1
    assert out == out.strip() and "\n" not in out and "\t" not in out
    assert not any(_invisible(ch) for ch in out)


@PROPERTY
@given(RESEARCH_TEXT)
def test_to_spoken_gives_speakable_text_for_any_input(text):
    out = to_spoken(text)
    assert not any(_invisible(ch) for ch in out if ch != "\n")
    assert not re.search(r"\bhttps?://", out, re.I)
    assert not any(0x1F000 <= ord(ch) <= 0x1FAFF for ch in out)


@PROPERTY
@given(st.text(alphabet=st.characters(blacklist_characters="<&"), max_size=40),
       st.text(alphabet=st.characters(blacklist_characters="<&"), max_size=40))
def test_script_bodies_never_show_whatever_surrounds_them(before, after):
    assert "SECRET" not in clean_text(f"{before}<script>SECRET</script>{after}")


# ---- the models: nothing unclean is stored, whichever plugin made it -------------------------

def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _visible(value) -> bool:
    return not any(_invisible(ch) for s in _strings(value) for ch in s)


@PROPERTY
@given(st.text(), st.text(), st.text())
def test_research_models_hold_only_visible_text(text, detail, title):
    insight = Insight(text=text, detail=detail, url=text)
    research = Research(source="x", title=title, topic=title, insights=[insight], script_text=detail,
                        meta={"origin": title, "nested": [detail]})
    assert _visible(research.model_dump())
    insight.detail = "late\u202eassignment"
    assert insight.detail == "lateassignment"


class HostileSource:
    """A third-party source that copies text as it found it: no cleaning of its own."""

    name = "hostile"

    def detect(self, payload, filename):
        return 1.0 if isinstance(payload, dict) and "hostile" in payload else 0.0

    def extract(self, payload):
        text = payload["hostile"]
        return Research(source=self.name, title=text, topic=text, meta={"raw": text},
                        insights=[Insight(text=text, detail=text, url="https://x.io/\u202egpj.exe")])


class HostilePlugin:
    __name__ = "hostile"

    @hookimpl
    def register_sources(self, register):
        register(HostileSource())


async def test_a_third_party_source_cannot_store_invisible_text(tmp_path, plugin):
    daemon = make_daemon(tmp_path, plugins=[plugin, HostilePlugin()])
    text = f"Price {BIDI[4]}drop\x1b[0m of 5{ZERO_WIDTH}0%\x07"
    async with daemon.started():
        done = await daemon.pipeline.ingest(json.dumps({"hostile": text}).encode(), "h.json", ".json")
    with sqlite3.connect(daemon.settings.database) as db:
        row = db.execute("SELECT title, topic, research, script FROM research_jobs WHERE id = ?",
                         (done.research_id,)).fetchone()
    title, topic, research, script = row[0], row[1], json.loads(row[2]), json.loads(row[3])
    assert _visible([title, topic, research, script])
    assert research["insights"][0]["text"] == title == "Price drop of 50%"
    assert research["insights"][0]["url"] == "https://x.io/gpj.exe"
