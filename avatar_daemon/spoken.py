"""Text made fit to show and to read aloud: no invisible characters, markup, URLs or emoji.

Research text is written by strangers for a browser: HTML (Hacker News, Reddit's `*_html`),
Markdown (Reddit bodies, research jobs), entities escaped once or twice, terminal colour codes
and invisible Unicode. Markup is read with real parsers (html.parser, markdown-it-py), because
regular expressions cannot tell `my_cool_repo` from emphasis or `<script>` from text.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from html.parser import HTMLParser

from markdown_it import MarkdownIt
from markdown_it.token import Token

# Terminal escape sequences go whole: dropping only ESC would leave "[0m" (read "0 million").
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"             # CSI: colours, cursor moves
    # OSC (titles, hyperlinks) and DCS/SOS/PM/APC strings only when terminated: a stray ESC
    # before "Please" must not take the rest of the text with it.
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[PX^_][^\x1b]*\x1b\\"
    r"|\x1b[!-/]+[0-~]|\x1b[78=>]")                  # charsets (ESC ( B), cursor save/restore, keypad
# Other ESC + letter pairs are too rare to be worth eating a letter of text for: a lone ESC goes below.
# Everything invisible that can still reorder, hide or smuggle text: C0/C1 controls (line
# breaks are folded below), Unicode format characters (bidi overrides and isolates, zero-width
# space/joiners, word joiner, BOM, soft hyphen, tag characters) and lone surrogates (which
# SQLite and UTF-8 writers reject). tests/test_spoken.py checks this against unicodedata.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f\ud800-\udfff]")
_LINE_BREAKS = re.compile("\r\n?|[\x0b\x0c\x85\u2028\u2029]")


def strip_invisible(text: str) -> str:
    """Controls, terminal escapes, bidi overrides and zero-width characters removed; breaks become \\n.

    Run on every text field of research (models.py) as well as by the cleaners here, so a
    third-party source cannot store a right-to-left override or a colour code either.
    """
    if text.isascii() and text.isprintable():  # the common case: nothing to look for
        return text
    if "\x1b" in text or "\x9b" in text or "\x9d" in text:
        text = _ANSI.sub("", text)
    return _INVISIBLE.sub("", _LINE_BREAKS.sub("\n", text))


_TAG = re.compile(r"<[A-Za-z!/?]")
# Markdown's syntax, looked for before paying for the parser (most titles have none). Lone
# characters are not syntax: `[OC]` without `](`, one `*`, a backtick or `_private` alone.
_MARKDOWN_SYNTAX = re.compile(
    r"\]\(|\]\[|\]:|`[^`]*`|~~|\*[^*]*\*|\\[!-/:-@\[-`{-~]"
    r"|^[ \t]{0,3}(?:#{1,6}(?:[ \t]|$)|>|[-+*](?:[ \t]|$)|[-=*_]{2,}|=|\d{1,9}[.)](?:[ \t]|$))", re.M)
_UNDERSCORE_OPENS = re.compile(r"(?<![^\W_])_")  # at a word's start: snake_case inside a word is never markup
_UNDERSCORE_CLOSES = re.compile(r"_(?![^\W_])")


def _may_be_markdown(text: str) -> bool:
    if _MARKDOWN_SYNTAX.search(text) or ("|" in text and "\n" in text):
        return True
    opener = _UNDERSCORE_OPENS.search(text)
    return bool(opener and _UNDERSCORE_CLOSES.search(text, opener.end()))


_MD = MarkdownIt("commonmark", {"html": False}).enable(["strikethrough", "table"])
# Link targets are dropped, never followed or rendered: no need to normalise them, and a
# `javascript:` target must not turn its link back into literal `[text](...)` syntax.
_MD.normalizeLink = _MD.normalizeLinkText = lambda url: url
_MD.validateLink = lambda url: True


def strip_markup(text: str) -> str:
    """HTML and Markdown rendered to plain text: tags, script/style bodies and syntax gone, words kept.

    Headings and list items become sentences. Paragraph breaks stay as blank lines (pauses
    when spoken); single line breaks stay as line breaks.
    """
    # HTML first, as a browser reads it: a terminal escape or a control character must not eat
    # the "<" of a <script> that follows it. Then the invisible characters go, and if that
    # joined something into a tag (`<\x00script>`), it is markup like any other.
    text = _decode_html(text)
    visible = strip_invisible(text)
    if visible != text:
        text = _decode_html(visible)
    if _may_be_markdown(text):
        text = strip_invisible(_markdown_text(text))  # markdown-it decodes entities (&#x202e;) too
    return text


def _decode_html(text: str) -> str:
    """Tags stripped and entities decoded until neither is left, a few rounds at most.

    Entities may be escaped twice (Reddit's `*_html`: `&amp;#39;`), and escaped markup is still
    markup once decoded.
    """
    for _ in range(4):
        before = text
        if "<" in text and _TAG.search(text):
            text = _html_text(text)  # the parser decodes the entities it passes
        if text == before and "&" in text:
            text = html.unescape(text)
        if text == before:
            break
    return text


class _HTMLText(HTMLParser):
    """Text as a browser shows it: tags gone, the bodies of script, style and the like dropped."""

    HIDDEN = {"script", "style", "template", "noscript", "iframe", "object", "svg", "math", "head", "title"}
    PARAGRAPH = {"p", "div", "blockquote", "pre", "section", "article", "header", "footer", "table", "ul", "ol",
                 "dl", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "figure", "aside", "main", "nav"}
    LINE = {"br", "li", "tr", "dt", "dd"}
    SPACED = {"td", "th", "img"}  # words either side must not run together

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        self._break(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in self.HIDDEN and tag not in ("svg", "math"):
            self.hidden += 1  # HTML has no self-closing <script/>: a browser hides what follows
        self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1
        self._break(tag)

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)

    def _break(self, tag: str) -> None:
        if tag in self.PARAGRAPH:
            self.parts.append("\n\n")
        elif tag in self.LINE:
            self.parts.append("\n")
        elif tag in self.SPACED:
            self.parts.append(" ")

    def parse_marked_section(self, i: int, report: int = 1) -> int:
        # The stdlib raises AssertionError on `<![foo[`; a browser reads any <![...]]> as a comment.
        end = self.rawdata.find("]]>", i + 3)
        return -1 if end < 0 else end + 3


def _html_text(text: str) -> str:
    parser = _HTMLText()
    parser.feed(text)
    rest = parser.rawdata  # what the parser held back: an unfinished tag, comment or entity
    if rest.startswith(("<!", "<?")) or (rest.startswith("<") and ('"' in rest or "'" in rest)):
        # A browser shows nothing of a comment or an attribute value left open at the end; the
        # stdlib would print it, and with it any markup it swallowed (<a href='<script>...).
        parser.rawdata = ""
    parser.close()
    return "".join(parser.parts)


def _markdown_text(text: str) -> str:
    """Markdown's text, block by block: a blank line between blocks in the source stays a blank line."""
    out: list[str] = []
    prev_end: int | None = None
    glue: str | None = None       # what joins the next block to the last, when the source set it
    numbered: list[bool] = []     # per open list: are its numbers content (1984.) or layout (1. 2. 3.)?
    items = 0                     # list items we are inside: their paragraphs become sentences
    sentence = False
    for tok in _MD.parse(text):
        kind = tok.type
        if kind in ("paragraph_open", "heading_open", "fence", "code_block", "hr", "tr_open") and tok.map:
            if prev_end is not None:
                gap = tok.map[0] > prev_end and kind != "tr_open"  # a table's delimiter row is no gap
                out.append(glue if glue is not None else "\n\n" if gap else "\n")
            glue, prev_end = None, tok.map[1]
            sentence = kind == "heading_open" or (kind == "paragraph_open" and items > 0)
        if kind == "bullet_list_open":
            numbered.append(False)
        elif kind == "ordered_list_open":
            # A list counting from one numbers its items; any other start is part of the text
            # (a title "1984." or "2024. What a year" parses as a list starting there).
            numbered.append(tok.attrs.get("start", 1) not in (0, 1))
        elif kind in ("bullet_list_close", "ordered_list_close"):
            numbered.pop()
        elif kind == "list_item_open":
            items += 1
            if numbered and numbered[-1] and tok.map:
                if prev_end is not None:
                    out.append("\n\n" if tok.map[0] > prev_end else "\n")
                out.append(f"{tok.info}{tok.markup}")
                glue, prev_end = " ", tok.map[0]
        elif kind == "list_item_close":
            items -= 1
            glue = None
        elif kind == "inline":
            inline = _inline_text(tok.children or [])
            out.append(_sentence(inline) if sentence else inline)
        elif kind == "code_block":
            out.append(tok.content.strip())  # indented text in research is rarely code: keep it
        elif kind in ("th_close", "td_close"):
            out.append(" ")
        # fences are code for the eye: never shown in a caption or read aloud
    return "".join(out)


_EMPHASIS_OPEN = {"em_open", "strong_open", "s_open"}
_EMPHASIS_CLOSE = {"em_close", "strong_close", "s_close"}


def _inline_text(children: list[Token]) -> str:
    """Text, code spans and link text kept; emphasis markers dropped unless they belong to a word."""
    out: list[str] = []
    opened: list[tuple[str, int, str]] = []
    for i, tok in enumerate(children):
        kind = tok.type
        if kind in ("text", "code_inline"):
            out.append(tok.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind in _EMPHASIS_OPEN:
            opened.append((tok.markup, len(out), _last_char(out)))
        elif kind in _EMPHASIS_CLOSE and opened:
            markup, start, before = opened.pop()
            after = children[i + 1].content[:1] if i + 1 < len(children) else ""
            if _is_literal(markup, before, after, "".join(out[start:])):
                out.insert(start, markup)
                out.append(markup)
        # links keep their text (their children are in this list); images are dropped
    return "".join(out)


def _is_literal(markup: str, before: str, after: str, inner: str) -> bool:
    """CommonMark reads `a*b*c` and `__init__` as emphasis; in research they are names and formulas."""
    if markup in ("*", "**"):
        return before.isalnum() or after.isalnum()
    if markup == "__":
        return bool(inner) and not any(ch.isspace() for ch in inner)
    return False


def _last_char(parts: list[str]) -> str:
    return next((p[-1] for p in reversed(parts) if p), "")


def _sentence(s: str) -> str:
    s = s.strip()
    return s if not s or s[-1] in ".!?:;" else s + "."


_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.I)
_SCALE = {"k": "thousand", "m": "million", "b": "billion", "bn": "billion", "t": "trillion"}
_CURRENCY = {"$": "dollars", "€": "euros", "£": "pounds", "¥": "yen"}
_MONEY = re.compile(r"([$€£¥])\s?(\d[\d,]*(?:\.\d+)?)\s?(k|m|bn|b|t)?\b", re.I)
_SCALED = re.compile(r"\b(\d+(?:\.\d+)?)(k|m|bn|b)\b(?!\w)", re.I)
_PERCENT = re.compile(r"(\d(?:[\d,]*\d)?(?:\.\d+)?)\s?%")
_VERSION = re.compile(r"\bv(\d+(?:\.\d+)*)\b", re.I)
_TIMES = re.compile(r"\b(\d+(?:\.\d+)?)x\b")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_PLUS = re.compile(r"(\d)\+")
_ABBREV = [(re.compile(pattern), words) for pattern, words in {
    r"\be\.g\.": "for example", r"\bi\.e\.": "that is", r"\bvs\.?(?=\s)": "versus", r"\betc\.": "et cetera",
    r"&": " and ", r"\bw/": "with ", r"\bHN\b": "Hacker News", r"\bTIL\b": "today I learned",
}.items()]


def _is_emoji(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat in ("So", "Sk", "Cs", "Co") or ch in "\u200d\ufe0f\ufe0e" or 0x1F000 <= ord(ch) <= 0x1FAFF


def _money(m: re.Match) -> str:
    amount = m.group(2).replace(",", "")
    scale = _SCALE.get((m.group(3) or "").lower())
    return f"{amount} {scale + ' ' if scale else ''}{_CURRENCY[m.group(1)]}"


def to_spoken(text: str) -> str:
    """Text as it should be read aloud, keeping paragraph breaks (they become pauses)."""
    text = strip_markup(text)
    text = _URL.sub("", text)
    if not text.isascii():  # most research is plain ASCII: skip the per-character look
        text = "".join(" " if _is_emoji(ch) else ch for ch in text)
    text = _MONEY.sub(_money, text)
    text = _PERCENT.sub(lambda m: f"{m.group(1)} percent", text)
    text = _VERSION.sub(lambda m: f"version {m.group(1)}", text)
    text = _TIMES.sub(lambda m: f"{m.group(1)} times", text)
    text = _SCALED.sub(lambda m: f"{m.group(1)} {_SCALE[m.group(2).lower()]}", text)
    text = _PLUS.sub(r"\1 plus", text)
    text = _THOUSANDS.sub("", text)
    for pattern, words in _ABBREV:
        text = pattern.sub(words, text)
    paragraphs = [re.sub(r"[ \t\r\f\v]*\n[ \t\r\f\v]*", " ", p) for p in re.split(r"\n\s*\n", text)]
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in paragraphs]
    paragraphs = [re.sub(r"\s+([,.!?;:])", r"\1", p) for p in paragraphs]
    paragraphs = [re.sub(r"([.!?])\.+", r"\1", p) for p in paragraphs]
    return "\n\n".join(p for p in paragraphs if re.search(r"\w", p))


WORDS_PER_SECOND = 2.75
"""Measured on the bundled Piper voice at speed 1.0 (about 165 words a minute)."""
PARAGRAPH_PAUSE_SECONDS = 0.45
"""The breath a blank line between paragraphs adds. GET /formats gives both numbers to clients."""


def estimate_seconds(text: str, voice_speed: float = 1.0) -> float:
    words = len(text.split())
    pauses = text.count("\n\n") * PARAGRAPH_PAUSE_SECONDS
    return round(words / (WORDS_PER_SECOND * voice_speed) + pauses, 1)


def words_for_seconds(seconds: float, voice_speed: float = 1.0) -> int:
    """How many words fit in `seconds` of speech: the inverse of estimate_seconds without pauses."""
    return max(0, int(seconds * WORDS_PER_SECOND * voice_speed))


def clean_text(text: object, limit: int = 600) -> str:
    """Display text from a research field: markup gone, whitespace folded, long bodies cut at a word.

    A number is text too (a post titled 1984); anything else that is not a string is "".
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if isinstance(text, float) and not math.isfinite(text):
            return ""
        try:
            text = str(text)
        except ValueError:  # an integer past Python's 4300-digit str() limit is not a title
            return ""
    if not isinstance(text, str):
        return ""
    # Parse no more than can show (the Markdown parser costs about 2 us a character): twice the
    # limit is plenty for most text; markup-dense text (links, HTML) gets a second, longer look.
    for cut in (limit * 2, limit * 10):
        s = re.sub(r"\s+", " ", strip_markup(text[:cut])).strip()
        if len(s) > limit or len(text) <= cut:
            break
    if len(s) > limit:
        s = s[:limit].rsplit(" ", 1)[0] + "…"
    return s
