"""Decoding bytes from outside (drops, HTTP bodies, live fetches): syntax errors and hostile input are sentences."""

import json
import xml.etree.ElementTree as ET

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings, strategies as st

from avatar_daemon import AvatarDaemonError, PayloadError, fetch, load_json
from avatar_daemon.decoding import MAX_DEPTH, TEXT_SUFFIXES, parse
from avatar_daemon.planning import prepare
from avatar_daemon.testing import RecordingPlugin, make_daemon
from tests.conftest import FIXTURES


def test_deep_nesting_is_refused_with_a_sentence_not_a_recursion_error():
    for depth in (100_000, 65):
        with pytest.raises(PayloadError, match=r"x\.json: nested too deeply \(more than 64 levels\)"):
            load_json("[" * depth + "]" * depth, "x.json")
    assert load_json("[" * 64 + "]" * 64, "x.json") is not None


def test_bad_syntax_names_the_thing_line_and_column():
    with pytest.raises(PayloadError, match=r"^body: not valid JSON: .* line 2 column 1 \(it looks cut short\)$"):
        load_json('{"a":\n', "body")


# ---- properties: any input is a result or our own error with a sentence, never another exception --------


NAME = "drop.json"
PROPERTY = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
SUFFIXES = st.sampled_from([".json", ".JSON", ".txt", ".md", ".markdown", ".xml", ".rss", ".csv", ""])
# Keys the built-in sources look for, so generated documents reach their extractors, not just detect().
KEYS = ["hits", "items", "data", "children", "kind", "analysis", "analyzed_data", "key_insights", "insights",
        "title", "text", "url", "points", "score", "created_at", "interest_over_time", "timeline_data", "values",
        "related_queries", "rising", "top", "query", "value", "total_count", "full_name", "stargazers_count",
        "description", "html_url", "subreddit", "selftext", "ups", "num_comments", "posts", "stories", "source",
        "search_parameters", "engine", "trending_searches", "config", "keywords", "topic", "error", "deleted",
        "type", "id", "author", "story_title", "request", "research", "formats", "avatar", "voice_speed"]
SCALARS = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=40)
           | st.sampled_from(["", " ", "t3", "Listing", "story", "rss", "hackernews", "github", "\ud83d", "1e999"]))
VALUES = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=4)
                      | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), kids, max_size=5),
                      max_leaves=40)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])


@st.composite
def json_bytes(draw):
    """Documents the sources half-recognise, sometimes cut short, re-encoded or behind Google's prefix."""
    text = json.dumps(draw(VALUES), ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        text = text[:draw(st.integers(0, len(text)))]
    if draw(st.integers(0, 9)) == 0:
        text = ")]}'\n" + text
    return text.encode(draw(ENCODINGS), errors="surrogatepass")


@st.composite
def nested_bytes(draw):
    """Brackets around the depth limit, mixed, sometimes unbalanced."""
    opens = draw(st.lists(st.sampled_from(['[', '{"k":']), min_size=MAX_DEPTH - 3, max_size=MAX_DEPTH + 3))
    closes = "".join("]" if o == "[" else "}" for o in reversed(opens))
    return ("".join(opens) + draw(st.sampled_from(["1", '"x"', "[]", ""])) + closes[:draw(
        st.integers(0, len(closes)))]).encode()


XML_PIECES = ["<rss>", "</rss>", "<channel>", "</channel>", "<item>", "</item>", "<title>", "</title>", "<a>",
              "</a>", "<b/>", "text", "&amp;", "&e;", "&#0;", "&#x1F600;", '<?xml version="1.0"?>',
              '<?xml version="1.0" encoding="utf-16"?>', '<?xml version="1.0" encoding="nope"?>',
              "<!DOCTYPE rss [", "<!ENTITY e 'x'>", '<!ENTITY x SYSTEM "file:///etc/passwd">', "]>",
              '<!DOCTYPE rss SYSTEM "http://example.invalid/rss.dtd">', "<![CDATA[", "]]>", "<!--", "-->",
              '<ht:approx_traffic xmlns:ht="https://trends.google.com/trends/trendingsearches/daily">',
              "</ht:approx_traffic>", "<", ">", '"', "\x01"]


@st.composite
def xml_bytes(draw):
    body = "".join(draw(st.lists(st.sampled_from(XML_PIECES) | st.text(max_size=5), max_size=30)))
    return ("<" + body).encode(draw(ENCODINGS), errors="surrogatepass")


RESEARCH = sorted((FIXTURES / "research").glob("*.json"))


@st.composite
def mutated_research(draw):
    """A real research fixture with a few of its values swapped for odd ones, or deleted: shapes a source
    recognises but cannot take for granted."""
    doc = parse(draw(st.sampled_from(RESEARCH)).read_bytes(), NAME, ".json")
    for _ in range(draw(st.integers(1, 4))):
        places, stack = [], [doc]
        while stack:
            node = stack.pop()
            for key in (node if isinstance(node, dict) else range(len(node))):
                places.append((node, key))
                if isinstance(node[key], (dict, list)):
                    stack.append(node[key])
        if not places:
            break
        node, key = draw(st.sampled_from(places))
        if isinstance(node, dict) and draw(st.integers(0, 3)) == 0:
            del node[key]
        else:
            node[key] = draw(VALUES)
    return json.dumps(doc).encode()


@st.composite
def mutated_rss(draw):
    text = (FIXTURES / "research" / "trends_rss.xml").read_text()
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 80)))
    return (text[:start] + draw(st.sampled_from(XML_PIECES) | st.text(max_size=10)) + text[end:]).encode()


ANY_BYTES = (st.binary(max_size=300) | json_bytes() | nested_bytes() | xml_bytes() | mutated_research()
             | mutated_rss())


def _refused_with_a_sentence(exc: AvatarDaemonError, name: str = NAME) -> None:
    message = str(exc)
    assert message.startswith(f"{name}: ") and len(message) > len(name) + 12, message
    assert "internal error" not in message and "Traceback" not in message


@PROPERTY
@given(st.text(max_size=200) | nested_bytes().map(bytes.decode))
@example('["a title cut mid-emoji \\ud83d"]')  # valid JSON, but not text the store can write
@example("[" + "9" * 5000 + "]")  # int() refuses it with a ValueError of its own
def test_load_json_gives_storable_json_or_a_payload_error(text):
    try:
        value = load_json(text, NAME)
    except PayloadError as exc:
        _refused_with_a_sentence(exc)
        return
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # no lone surrogate left to fail in the store


@PROPERTY
@given(ANY_BYTES, SUFFIXES)
@example(b'"hello"', ".json")  # a bare string is not research: refused, not a video that says hello
@example(b"<a>" * 100_000 + b"</a>" * 100_000, ".xml")
def test_parse_gives_a_payload_or_our_error(data, suffix):
    """A payload is research-shaped (an object, a list, an XML tree no deeper than the limit) or a script."""
    try:
        value = parse(data, NAME, suffix)
    except AvatarDaemonError as exc:
        _refused_with_a_sentence(exc)
        return
    if isinstance(value, str):
        assert suffix.lower() in TEXT_SUFFIXES
    elif isinstance(value, ET.Element):
        assert _depth(value) <= MAX_DEPTH
    else:
        assert isinstance(value, (dict, list))


def _depth(root: ET.Element) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node)
    return deepest


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return make_daemon(tmp_path_factory.mktemp("property"), plugins=[RecordingPlugin()]).catalogue


@PROPERTY
@given(data=ANY_BYTES, suffix=SUFFIXES)
def test_the_whole_decoding_of_a_drop_gives_a_script_or_our_error(catalogue, data, suffix):
    """parse, unwrap, detect, extract and write the script, as the inbox does before the store."""
    try:
        prepared = prepare(catalogue, data, NAME, suffix)
    except AvatarDaemonError as exc:
        _refused_with_a_sentence(exc)
        return
    prepared.research.model_dump_json()  # what the store writes: must serialise
    prepared.script.model_dump_json()


async def test_a_live_fetch_refuses_an_entity_bomb_with_a_sentence():
    """A feed server turned hostile (billion laughs, or an entity reading a local file): the fetch says so."""
    bodies = {name: (FIXTURES / "hostile" / name).read_bytes()
              for name in ("billion_laughs.xml", "external_entity.xml")}
    app = web.Application()

    async def feed(request):
        return web.Response(body=bodies[request.match_info["name"]], content_type="application/rss+xml")

    app.router.add_get("/{name}", feed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as http:
            for name, words in (("billion_laughs.xml", "declares an entity ('lol')"),
                                ("external_entity.xml",
                                 "declares an entity ('secret' pointing at 'file:///etc/passwd')")):
                url = f"http://127.0.0.1:{port}/{name}"
                with pytest.raises(AvatarDaemonError) as refused:
                    await fetch(http, url, service="trends", min_interval=0)
                assert str(refused.value).startswith(f"trends {url}: XML refused: it {words}")
    finally:
        await runner.cleanup()
