"""The LLM script writer: a presenter's script from any OpenAI-compatible chat-completions server.

Off by default: the template writer stays the default. Configure it in daemon.yaml, under
``plugins.settings.llm``, and choose it with ``script.writer: llm``, a script template's or
campaign's ``writer: llm``, or a request envelope's ``"writer": "llm"``::

    llm:
      base_url: http://127.0.0.1:11434/v1   # Ollama; llama.cpp's server and vLLM also serve /v1;
                                            # OpenAI: https://api.openai.com/v1 (the default)
      model: llama3.1:8b
      api_key_env: OPENAI_API_KEY            # an environment variable or systemd credential; local
                                             # servers need none
      timeout_seconds: 60
      temperature: 0.7

The model's script is only used when it passes every check: each figure and proper name in it
appears in the research, it fits the format's time and the template's length, and it is plain
text the voice can speak. A script that fails is asked for once more with the reasons; then
the template writer's script is used and Script.notes says why (the job's report shows it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import unicodedata
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from avatar_daemon import (
    GaveUp, PayloadError, Research, Script, ScriptTemplate, TryAgain, estimate_seconds, hookimpl, load_json,
    numbers_in_words, plugin_settings, retry_after, retrying, secret, to_spoken, words_for_seconds,
)
from avatar_daemon_plugins.template_writer import SOURCE_LABELS, speakable

log = logging.getLogger(__name__)

MAX_REPLY_BYTES = 64 * 1024  # a script is a few hundred words; anything far bigger is not one
UNITS = {"reddit": "upvotes", "hackernews": "points", "github": "stars", "google_trends": "searches"}
SYSTEM = (
    "You write the narration for a short video read aloud by a presenter. Write only the words the "
    "presenter says: plain sentences, in paragraphs separated by a blank line; no headings, lists, "
    "markdown, emoji, links or stage directions. Use only the facts, names and figures in the research "
    "you are given, and write every figure in digits, exactly or rounded (225273 may be 'about 230,000')."
)
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
_FIGURE = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)(?:\s?(k|m|bn|b|thousand|million|billion)\b)?", re.I)
_NUMBER_WORD = re.compile(r"\b(?:(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|"
                          r"twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|a)[\s-]+)+"
                          r"(?:hundred|thousand|million|billion)\b", re.I)
_MARKUP = re.compile(r"\*\*|__|`|^\s{0,3}#|\[[^\]]*\]\(|<[^>]+>|^\s*(?:[-•*]|\d+[.)])\s", re.M)
_URL = re.compile(r"https?://|www\.", re.I)
_NAME = re.compile(r"\b[A-Z][\w'’&.-]*[\w]|\b[A-Z]\b")
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n\s*)[\"“'‘(]?$")
_PRONOUNS = {"I", "I'm", "I've", "I'll", "I'd", "I’m", "I’ve", "I’ll", "I’d"}
_THINK = re.compile(r"<think>.*?</think>", re.S)  # reasoning models' private notes


class LlmError(Exception):
    """The server answered, and the answer cannot be used (not worth asking again)."""


class LlmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = "https://api.openai.com/v1"
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout_seconds: float = Field(60.0, gt=0)
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(800, ge=50)
    retries: int = Field(2, ge=0, le=10)
    retry_delay: float = Field(1.0, ge=0)
    stream: bool = True


def _figures(text: str) -> list[float]:
    out = []
    for m in _FIGURE.finditer(text):
        try:
            value = float(m.group(1).replace(",", ""))
        except ValueError:
            continue
        out.append(value * _SCALE.get((m.group(2) or "").lower(), 1))
    return out


def _figure(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"


def _corpus(research: Research) -> str:
    parts = [research.title, research.topic, SOURCE_LABELS.get(research.source, research.source)]
    for i in research.insights:
        parts += [i.text, i.detail or "", i.url or ""]
    return "\n".join(parts)


def check(text: str, research: Research, limits, template: ScriptTemplate) -> list[str]:
    """Why `text` cannot be narrated as it is, in sentences the model can act on; [] when it can."""
    problems = []
    if _URL.search(text):
        problems.append("it contains a link; links are not spoken")
    markup = _MARKUP.search(text)
    if markup:
        problems.append(f"it contains markup or a list ({markup.group().strip()!r}); write plain sentences")
    if any(unicodedata.category(ch) == "So" for ch in text):
        problems.append("it contains emoji or symbols the voice cannot say")
    if speakable(text, getattr(limits, "language", "en"))[1]:
        problems.append("it contains words in a script the voice cannot read")
    corpus = _corpus(research)
    known = _figures(corpus) + [i.score for i in research.insights if i.score is not None]
    for m in _FIGURE.finditer(text):
        value = _figures(m.group())[0]
        if value <= 10 and value.is_integer():
            continue  # counting ("three stories") needs no source
        if not any(abs(value - f) <= 0.1 * f for f in known if f > 0):
            problems.append(f"the figure {m.group().strip()!r} is not in the research")
    for m in _NUMBER_WORD.finditer(text):
        problems.append(f"write the figure {m.group()!r} in digits, so it can be checked against the research")
    lowered = corpus.lower()
    for m in _NAME.finditer(text):
        name = re.sub(r"['’]s$", "", m.group()).rstrip(".")
        if name in _PRONOUNS or _SENTENCE_START.search(text[: m.start()]):
            continue
        if name.lower() not in lowered:
            problems.append(f"the name {name!r} is not in the research")
    spoken = narration(text)
    budget = limits.max_seconds * 0.95
    seconds = estimate_seconds(spoken, limits.voice_speed)
    if seconds > budget:
        problems.append(f"it takes about {seconds:.0f} seconds to say; it must fit in {budget:.0f} seconds "
                        f"(at most {words_for_seconds(budget, limits.voice_speed)} words)")
    if len(spoken) > template.max_chars:
        problems.append(f"it is {len(spoken)} characters long; at most {template.max_chars}")
    if len(spoken) < template.min_chars:
        problems.append(f"it is only {len(spoken)} characters long; at least {template.min_chars}")
    return list(dict.fromkeys(problems))


def narration(text: str) -> str:
    """The model's text as the voice reads it and the captions show it: figures in words."""
    return numbers_in_words(to_spoken(text))


def prompt(research: Research, limits, template: ScriptTemplate) -> list[dict[str, str]]:
    label = SOURCE_LABELS.get(research.source, research.source)
    unit = UNITS.get(research.source, "score")
    language = getattr(limits, "language", "en")
    lines = [f"Research from {label}, about {research.topic}:"]
    offered = []
    for i in research.insights:  # words the voice cannot read are not offered
        text, cut = speakable(i.text, language)
        if not cut or len(text.split()) >= 2:
            offered.append((text, i))
    for n, (text, i) in enumerate(offered[: template.max_items], start=1):
        facts = [f"{unit}: {_figure(i.score)}"] if i.score is not None else []
        facts += [f"details: {i.detail}"] if i.detail else []
        facts += [f"link: {i.url}"] if i.url else []
        lines.append(f"{n}. {text}" + (f" ({'; '.join(facts)})" if facts else ""))
    budget = limits.max_seconds * 0.9
    words = words_for_seconds(budget, limits.voice_speed)
    lines.append("")
    lines.append(f"Write the presenter's script: about {int(words * 0.85)} words and never more than {words} "
                 f"(it must be spoken in {budget:.0f} seconds), at most {template.max_chars} characters. Open with "
                 "one sentence that says what this is about, then take the insights in order, each with its own "
                 "figures, then close with one short line.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


class LlmWriter:
    name = "llm"

    def __init__(self, daemon, cfg: LlmSettings):
        self.daemon = daemon
        self.cfg = cfg

    @property
    def url(self) -> str:
        return self.cfg.base_url.rstrip("/") + "/chat/completions"

    def write(self, research: Research, template: str, limits) -> Script:
        """Blocking (the pipeline calls writers in a worker thread): the HTTP work runs on a private loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.awrite(research, template, limits))
        raise RuntimeError("LlmWriter.write waits on the network: call it off the event loop "
                           "(Pipeline.awrite_script), or await awrite")

    async def awrite(self, research: Research, template: str, limits) -> Script:
        fallback = self.daemon.script_writer("template").write(research, template, limits)
        if not self.cfg.model:
            return self._fallback(fallback, "no model is configured (plugins.settings.llm.model)")
        t = self._template(template)
        messages = prompt(research, limits, t)
        problems: list[str] = []
        async with aiohttp.ClientSession() as http:
            for turn in range(2):
                try:
                    reply = await retrying(lambda: self._complete(http, messages), retries=self.cfg.retries,
                                           base_delay=self.cfg.retry_delay)
                except (GaveUp, LlmError) as exc:
                    return self._fallback(fallback, f"{self.url}: {exc}")
                reply = _THINK.sub("", reply).strip()
                problems = check(reply, research, limits, t)
                if not problems:
                    text = narration(reply)
                    return fallback.model_copy(update={
                        "text": text, "estimated_seconds": estimate_seconds(text, limits.voice_speed),
                        "writer": self.name, "notes": []})
                log.info("llm writer: script rejected (%s)%s", "; ".join(problems),
                         ", asking again" if turn == 0 else "")
                messages = messages + [
                    {"role": "assistant", "content": reply},
                    {"role": "user", "content": "That script cannot be used: " + "; ".join(problems) + ". Write "
                     "the whole script again, fixing exactly these problems."}]
        return self._fallback(fallback, "the script failed its checks twice (" + "; ".join(problems) + ")")

    def _template(self, name: str) -> ScriptTemplate:
        templates = self.daemon.settings.script_templates
        return templates.get(name) or templates.get("default") or ScriptTemplate()

    def _fallback(self, script: Script, why: str) -> Script:
        note = f"llm writer: {why}; the template writer's script is used"
        log.warning("%s", note)
        return script.model_copy(update={"notes": [*script.notes, note]})

    async def _complete(self, http: aiohttp.ClientSession, messages: list[dict[str, str]]) -> str:
        """One chat-completions call: the reply's text, TryAgain for 429/5xx/no answer, LlmError otherwise."""
        body = {"model": self.cfg.model, "messages": messages, "temperature": self.cfg.temperature,
                "max_tokens": self.cfg.max_tokens, "stream": self.cfg.stream}
        key = secret(self.cfg.api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            async with http.post(self.url, json=body, headers=headers,
                                 timeout=aiohttp.ClientTimeout(total=self.cfg.timeout_seconds)) as resp:
                if resp.status != 200:
                    reason = f"HTTP {resp.status}: {await _error_message(resp)}"
                    if key:  # some servers echo the key they refused
                        reason = reason.replace(key, "***")
                    if resp.status == 429 or resp.status >= 500:
                        raise TryAgain(reason, retry_after(resp.headers.get("Retry-After")))
                    raise LlmError(reason)
                if resp.content_type == "text/event-stream":
                    return await _read_stream(resp)
                return _content(await _read_json(resp))
        except asyncio.TimeoutError:
            raise LlmError(f"no answer within {self.cfg.timeout_seconds:g} seconds") from None
        except aiohttp.ClientError as exc:
            raise TryAgain(f"no answer ({type(exc).__name__})") from None


async def _read_json(resp: aiohttp.ClientResponse) -> Any:
    raw = await resp.content.read(MAX_REPLY_BYTES + 1)
    if len(raw) > MAX_REPLY_BYTES:
        raise LlmError(f"the answer is over {MAX_REPLY_BYTES} bytes")
    try:
        return load_json(raw.decode("utf-8", "replace"), "the chat completion")
    except PayloadError as exc:
        raise LlmError(str(exc)) from None


def _content(data: Any) -> str:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LlmError("the answer is not a chat completion (no choices[0].message.content)") from None
    if not isinstance(content, str) or not content.strip():
        raise LlmError("the answer has no text")
    return content


async def _read_stream(resp: aiohttp.ClientResponse) -> str:
    """Server-sent events: `data: {chunk}` lines whose choices[0].delta.content add up, until [DONE]."""
    parts: list[str] = []
    size = 0
    async for line in resp.content:
        size += len(line)
        if size > MAX_REPLY_BYTES:
            raise LlmError(f"the answer is over {MAX_REPLY_BYTES} bytes")
        line = line.strip()
        if not line.startswith(b"data:"):
            continue  # blank separators, comments (": keep-alive"), event names
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        try:
            chunk = load_json(data.decode("utf-8", "replace"), "a streamed chunk")
        except PayloadError as exc:
            raise LlmError(str(exc)) from None
        if isinstance(chunk, dict) and chunk.get("error"):
            raise LlmError(f"the stream ended with an error: {_message(chunk)}")
        try:
            delta = chunk["choices"][0].get("delta") or {}
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # a usage-only chunk has no choices
        if isinstance(delta.get("content"), str):
            parts.append(delta["content"])
    text = "".join(parts)
    if not text.strip():
        raise LlmError("the streamed answer has no text")
    return text


async def _error_message(resp: aiohttp.ClientResponse) -> str:
    raw = await resp.content.read(8192)
    try:
        return _message(json.loads(raw))
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:200] or resp.reason or "no reason given"


def _message(body: Any) -> str:
    """OpenAI's {"error": {"message": ...}} (vLLM, llama.cpp alike) or Ollama's {"error": "..."}."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"][:300]
    if isinstance(error, str):
        return error[:300]
    return str(body)[:200]


@hookimpl
def register_script_writers(register, daemon):
    register(LlmWriter(daemon, plugin_settings(daemon, "llm", LlmSettings)))
