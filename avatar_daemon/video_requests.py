"""Video requests from people (HTTP, Slack): one way to turn a script or stored research into jobs.

`key` makes a request idempotent: the same key (a Slack trigger id, a retried HTTP call)
finds the jobs the first request made instead of making a second video.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from pydantic import ValidationError

from .access import Caller, tier_of
from .catalogue import Catalogue
from .errors import InvalidRequest, UnknownNameError, first_problem
from .jobs import Queued
from .media import MediaResolver
from .models import TITLE_MAX_CHARS, Research, Script, VideoText
from .planning import (
    SCRIPT_MAX_CHARS, VideoOptions, awrite_script, check_logo, job_request, settled, videos_of, with_text,
    write_script,
)
from .store import Job, NewJob, Store


def video_options(settings: dict[str, Any] | None) -> VideoOptions:
    """The settings as a job keeps them, or InvalidRequest naming the first bad field."""
    try:
        return VideoOptions.model_validate(settings or {})
    except ValidationError as exc:
        where, reason = first_problem(exc)
        raise InvalidRequest(where or "settings", reason) from None


def video_text(title: str | None = None, description: str | None = None,
               hashtags: list[str] | None = None) -> VideoText:
    """A request's own title, description and hashtags, or InvalidRequest naming the first bad one."""
    try:
        return VideoText(title=title, description=description, hashtags=hashtags)
    except ValidationError as exc:
        where, reason = first_problem(exc)
        raise InvalidRequest(where or "title", reason) from None


def check_text(field: str, text: str, limit: int) -> str:
    text = text.strip()
    if not text:
        raise InvalidRequest(field, "is empty")
    if len(text) > limit:
        raise InvalidRequest(field, f"is {len(text):,} characters; the limit is {limit:,}")
    return text


class VideoRequests:
    def __init__(self, catalogue: Catalogue, media: MediaResolver, store: Store, queued: Queued):
        self.catalogue = catalogue
        self.media = media
        self.store = store
        self.queued = queued

    def caller(self, workspace: str | None, user: str | None, name: str | None = None) -> Caller:
        """A chat user as a Caller: their tier from users.yaml, their workspace's rows."""
        users = self.catalogue.settings.users
        return Caller(name or f"{user}@{workspace}", workspace, user, tier_of(users, workspace, user))

    def defaults(self, workspace: str | None, user: str | None) -> tuple[str | None, str]:
        """(avatar, format) for a one-line request: the user's, else the workspace's, else the daemon's;
        the avatar only if the caller's tier allows it (else their first allowed one, or None)."""
        c = self.catalogue
        ws = c.settings.users.workspaces.get(workspace or "")
        mine = ws.user_defaults.get(user or "") if ws else None
        avatar = (mine and mine.avatar) or (ws and ws.defaults.avatar) or c.settings.default_avatar
        fmt = (mine and mine.format) or (ws and ws.defaults.format) or c.settings.default_formats[0]
        who = self.caller(workspace, user)
        allowed = [a.id for a in c.settings.avatars.values() if who.may_use(a)]
        if avatar not in allowed:
            avatar = allowed[0] if allowed else None
        return avatar, fmt if fmt in c.formats else c.settings.default_formats[0]

    def check(self, who: Caller, avatar: str, format_name: str, renderer: str | None, template: str | None) -> None:
        """Every name must exist and the avatar must be open to the caller's tier: InvalidRequest otherwise."""
        c = self.catalogue
        for field, lookup in (("avatar", lambda: c.avatar(avatar)), ("format", lambda: c.formats[format_name]),
                              ("renderer", lambda: renderer is None or c.renderers[renderer]),
                              ("template", lambda: c.template_name(template))):
            try:
                lookup()
            except UnknownNameError as exc:
                raise InvalidRequest(field, str(exc)) from None
        profile = c.avatar(avatar)
        if not who.may_use(profile):
            raise PermissionError(who.refusal(profile))

    async def from_script(self, title: str, text: str, *, who: Caller, avatar: str, format_name: str,
                          renderer: str | None = None, template: str | None = None,
                          settings: dict[str, Any] | None = None, key: str | None = None,
                          text_over: VideoText | None = None, split: bool = False) -> tuple[list[Job], bool]:
        """(jobs, created): created is False when `key` was seen before.

        `text_over` is the request's own description and hashtags (and a title other than the script's);
        `split` makes a script too long for the format several videos instead of a refusal."""
        c = self.catalogue
        self.check(who, avatar, format_name, renderer, template)
        title = check_text("title", title, TITLE_MAX_CHARS)
        text = check_text("script", text, SCRIPT_MAX_CHARS)
        options = video_options(settings)
        check_logo(c, renderer or c.settings.default_renderer, options.brand_logo is not None)
        research = Research(source="request", title=title, topic=title, insights=[], script_text=text)
        script = write_script(c, research, [format_name], options.voice_speed)
        script = with_text(c, script.model_copy(update={"title": title}), template, text_over)
        videos = videos_of(c, script, [format_name], options.voice_speed, split)
        settings = await settled(c, self.media, options, renderer=renderer or c.settings.default_renderer,
                                 avatar=avatar, remote=True, workspace=who.workspace)  # people are remote
        jobs = self._jobs(videos, avatar, renderer, template, settings, who)
        digest = "request:" + (hashlib.sha256(key.encode()).hexdigest() if key else uuid.uuid4().hex)
        _, job_ids, created = await self.store.add_research_with_jobs(digest, research, script, None, jobs,
                                                                      who.workspace, who.user)
        return await self._queued(job_ids, created), created

    async def from_research(self, research_id: int, *, who: Caller, avatar: str, format_name: str,
                            renderer: str | None = None, template: str | None = None,
                            settings: dict[str, Any] | None = None, title: str | None = None,
                            text_over: VideoText | None = None, split: bool = False) -> list[Job]:
        c = self.catalogue
        self.check(who, avatar, format_name, renderer, template)
        options = video_options(settings)
        check_logo(c, renderer or c.settings.default_renderer, options.brand_logo is not None)
        if title is not None:
            title = check_text("title", title, TITLE_MAX_CHARS)
        found = await self.store.research_job(research_id)
        if found is None:
            raise UnknownNameError(f"no research job {research_id}")
        if found.workspace_id not in (None, who.workspace) and not who.admin:
            raise PermissionError(f"research job {research_id} belongs to another workspace")
        script = await awrite_script(c, found.research, [format_name], options.voice_speed)
        if title:
            script = script.model_copy(update={"title": title})
        script = with_text(c, script, template, text_over)
        videos = videos_of(c, script, [format_name], options.voice_speed, split)
        settings = await settled(c, self.media, options, renderer=renderer or c.settings.default_renderer,
                                 avatar=avatar, remote=True, workspace=who.workspace)  # people are remote
        # a re-told research's jobs carry their own script, whole or a part
        jobs = self._jobs(videos, avatar, renderer, template, settings, who, own_script=True)
        return await self._queued(await self.store.add_jobs(jobs, found.id), True)

    def _jobs(self, videos: list[tuple[str, Script]], avatar: str, renderer: str | None, template: str | None,
              settings: dict[str, Any], who: Caller, own_script: bool = False) -> list[NewJob]:
        c = self.catalogue
        return [NewJob(renderer or c.settings.default_renderer, f, avatar, script.title,
                       job_request(settings, script, own_script), template or c.settings.default_template,
                       who.workspace, who.user) for f, script in videos]

    async def _queued(self, job_ids: list[int], created: bool) -> list[Job]:
        if created:
            self.queued(job_ids)
        return [await self.store.job(i) for i in job_ids]
