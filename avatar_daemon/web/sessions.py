"""Browser access: an API token traded for a session cookie, CSRF tokens, and WebSocket tickets.

A browser cannot keep a token out of reach of page scripts, nor set headers on a WebSocket.
So the page signs in once with its token and gets an HttpOnly, SameSite=Strict cookie; every
state-changing request it makes also carries `X-CSRF-Token`. The cookie is signed, not
stored: it holds the token's hash (what users.yaml holds), so revoking the token in
users.yaml ends its sessions on every daemon that shares the key, and a restart ends none.
A WebSocket gets a ticket: short-lived, single use, and not a credential worth stealing from
a log line.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta


from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ..access import Caller, digest_caller, token_caller, token_digest
from ..share_links import SigningKey, signing_key
from .common import Answer, ApiError, Endpoint, WebHost, caller, daemon_of, parse_body
from .replies import Reply


COOKIE = "avatar_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
TICKET_SECONDS = 30
MAX_TICKETS = 10_000
KEYS = web.AppKey("session_keys", object)
TICKETS = web.AppKey("ws_tickets", dict)


class SessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=4096, description="an API token from `avatar-daemon tokens create`")


class SessionReply(Reply):
    user: str | None
    workspace: str | None
    tier: str
    admin: bool
    campaigns: bool
    name: str = Field(description="the token's name in users.yaml")
    csrf_token: str = Field(description=f"send it back as the {CSRF_HEADER} header on every POST, PUT, PATCH "
                                        "and DELETE the cookie signs in")
    expires_at: str


class SignedOut(Reply):
    signed_out: bool


class Ticket(Reply):
    ticket: str
    expires_in: int = Field(description="seconds; the ticket opens one WebSocket, once")


@dataclass
class Session:
    digest: str
    expires: datetime
    cookie: str


def _keys(request: web.Request) -> SigningKey:
    return request.app[KEYS]


def _now(request: web.Request) -> datetime:
    return daemon_of(request).clock()


def _cookie_for(keys: SigningKey, digest: str, expires: datetime) -> str:
    body = f"{digest}.{int(expires.timestamp())}"
    return f"{body}.{keys.sign('session:' + body)}"


def csrf_token(keys: SigningKey, cookie: str) -> str:
    """Bound to the session: a page on another site can neither read it nor derive it."""
    return keys.sign("csrf:" + cookie)


def _session(request: web.Request) -> Session | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    digest, _, rest = raw.partition(".")
    stamp, _, sig = rest.partition(".")
    keys = _keys(request)
    if not (digest and stamp.isdigit() and sig) or \
            not hmac.compare_digest(keys.sign(f"session:{digest}.{stamp}"), sig):
        return None
    expires = datetime.fromtimestamp(int(stamp), tz=_now(request).tzinfo)
    if expires <= _now(request):
        return None
    return Session(digest, expires, raw)


def _ws_handshake(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def authenticate(request: web.Request) -> Caller:
    """The caller, by bearer header, WebSocket ticket or subprotocol, or session cookie (with CSRF)."""
    users = daemon_of(request).settings.users
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "a bearer token is required (Authorization: Bearer <token>)")
        who = token_caller(users, token.strip())
        if who is None:
            raise ApiError(401, "the bearer token is not one in users.yaml")
        return who
    if _ws_handshake(request) and "ticket" in request.query:  # a ticket opens a WebSocket, nothing else
        return _redeem(request, request.query["ticket"])
    if _ws_handshake(request):
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if len(offered) >= 2 and offered[0] == "bearer" and offered[1]:
            who = token_caller(users, offered[1])
            if who is None:
                raise ApiError(401, "the bearer token in Sec-WebSocket-Protocol is not one in users.yaml")
            return who
    session = _session(request)
    if session is None:
        if request.cookies.get(COOKIE):
            raise ApiError(401, "the session has expired or was signed by another key; sign in again "
                                "(POST /session)")
        raise ApiError(401, "a bearer token is required (Authorization: Bearer <token>), or a session "
                            "cookie from POST /session")
    who = digest_caller(users, session.digest)
    if who is None:
        raise ApiError(401, "the session's token is no longer in users.yaml; sign in again")
    origin = request.headers.get("Origin")
    if _ws_handshake(request) and origin and not _own_origin(request, origin):
        # A WebSocket is not held to CORS: without this, any page could open one with the visitor's cookie.
        raise ApiError(403, f"Origin: {origin} is neither this server nor in http.cors_origins; a session "
                            "cookie opens a WebSocket only from those", "Origin")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf_token(_keys(request), session.cookie).encode()):
            raise ApiError(403, f"{CSRF_HEADER}: a request signed in by the session cookie that changes "
                                f"something must carry the {CSRF_HEADER} header POST /session answered",
                           CSRF_HEADER)
    return who


def _own_origin(request: web.Request, origin: str) -> bool:
    return origin == f"{request.scheme}://{request.host}" or \
        origin in daemon_of(request).settings.http.cors_origins


def _redeem(request: web.Request, ticket: str) -> Caller:
    tickets = request.app[TICKETS]
    held = tickets.pop(ticket, None)  # single use, whatever happens next
    if held is None or held[1] <= _now(request):
        raise ApiError(401, "ticket: unknown, used or expired; get a new one from POST /ws-tickets", "ticket")
    return held[0]


def _reply(request: web.Request, who: Caller, cookie: str, expires: datetime) -> dict:
    return {"user": who.user, "workspace": who.workspace, "tier": who.tier, "admin": who.admin,
            "campaigns": who.campaigns, "name": who.name, "csrf_token": csrf_token(_keys(request), cookie),
            "expires_at": expires.isoformat()}


async def sign_in(request: web.Request) -> web.Response:
    # JSON only: a form on another site can post text/plain that parses as JSON, and sign the
    # visitor in as someone else. A JSON post from another origin needs a CORS preflight first.
    if request.content_type != "application/json":
        raise ApiError(415, "send the token as JSON (Content-Type: application/json)")
    body = await parse_body(request, SessionBody)
    d = daemon_of(request)
    who = token_caller(d.settings.users, body.token)
    if who is None:
        raise ApiError(401, "token: not a token in users.yaml (create one with `avatar-daemon tokens create`)",
                       "token")
    hours = d.settings.http.session_hours
    expires = _now(request) + timedelta(hours=hours)
    cookie = _cookie_for(_keys(request), token_digest(body.token), expires)
    resp = web.json_response(_reply(request, who, cookie, expires))
    resp.set_cookie(COOKIE, cookie, max_age=int(hours * 3600), path="/", httponly=True, samesite="Strict",
                    secure=request.secure)
    return resp


async def current_session(request: web.Request) -> web.Response:
    session = _session(request)
    if session is None:
        raise ApiError(401, "not signed in (POST /session with an API token)")
    who = digest_caller(daemon_of(request).settings.users, session.digest)
    if who is None:
        raise ApiError(401, "the session's token is no longer in users.yaml; sign in again")
    return web.json_response(_reply(request, who, session.cookie, session.expires))


async def sign_out(request: web.Request) -> web.Response:
    resp = web.json_response({"signed_out": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


async def new_ticket(request: web.Request) -> web.Response:
    tickets = request.app[TICKETS]
    now = _now(request)
    for stale in [t for t, (_, until) in tickets.items() if until <= now]:
        del tickets[stale]
    if len(tickets) >= MAX_TICKETS:
        raise ApiError(429, f"{MAX_TICKETS} WebSocket tickets are outstanding; use or let some expire first")
    ticket = secrets.token_urlsafe(24)
    tickets[ticket] = (caller(request), now + timedelta(seconds=TICKET_SECONDS))
    return web.json_response({"ticket": ticket, "expires_in": TICKET_SECONDS}, status=201)


def install(app: web.Application, daemon: WebHost) -> None:
    app[KEYS] = signing_key(daemon.settings.data_dir)
    app[TICKETS] = {}


def endpoints() -> list[Endpoint]:
    return [
        Endpoint("POST", "/session", sign_in, "Sign a browser in with an API token: sets the HttpOnly "
                 f"{COOKIE} cookie and answers the CSRF token", body=SessionBody, auth=False,
                 responses={200: Answer("signed in", SessionReply), 401: "not a token in users.yaml",
                            415: "not JSON"}),
        Endpoint("GET", "/session", current_session, "Who the session cookie signs in", auth=False,
                 responses={200: Answer("signed in", SessionReply), 401: "no session, or it expired"}),
        Endpoint("DELETE", "/session", sign_out, "Sign the browser out (clears the cookie)", auth=False,
                 responses={200: Answer("signed out", SignedOut)}),
        Endpoint("POST", "/ws-tickets", new_ticket, "A single-use ticket, valid 30 s, that opens one status "
                 "WebSocket as the caller (`?ticket=`): browsers cannot send headers on a WebSocket",
                 responses={201: Answer("issued", Ticket), 429: "too many outstanding"}),
    ]
