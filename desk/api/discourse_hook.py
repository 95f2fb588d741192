"""Instant intake from Discourse: the endpoint a forum's webhook posts to, `POST /hooks/discourse/{source}`.

Discourse sends each event as JSON (`{"post": {...}}` for post_created and post_edited, the post as its
API serialises it, raw and topic title included) with the headers X-Discourse-Event (post_created),
X-Discourse-Event-Type (post; ping for the test button), X-Discourse-Instance (the forum's address) and,
when the webhook has a secret, X-Discourse-Event-Signature: ``sha256=<hex HMAC-SHA256 of the raw body>``.

A delivery is taken only for a configured, enabled Discourse source whose `webhook_secret_env` names a
variable that holds the secret (else 404, the same answer as for an unknown source, so the endpoint
says nothing of which sources exist), as `application/json` (else 415), of at most `MAX_BODY_BYTES`
(else 413), and with the right signature, compared in constant time (else 401). Discourse signs no time,
so a delivery recorded and sent again verifies again: it is absorbed because storing is idempotent (one
post id is one mention; the unique key takes no second row). Events other than post_created and
post_edited, and the ping, are answered 200 and stored nothing, so Discourse does not retry them.

The post goes through the collector's own mapping (collectors/discourse/mention.py: the same id, term
matching and own-account filter as a poll) and the runner's storing (desk/intake/storing.py,
`store_pushed`), without moving the source's cursor: the next poll reads the post again and stores
nothing, and a delivery lost (Hearken down, a network error) is still picked up by that poll. The stored
post waits unclassified; the runner's classification loop takes what is waiting on every pass (about
once a second when idle), so the case is in the queue within a few seconds (benchmarks/RESULTS.md).

The app that mounts `router` keeps the config and the store in ``app.state.cfg`` and ``app.state.store``
(desk/api's `create_app` does).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from collectors import clean
from collectors.discourse.mention import Forum, pushed
from desk.config.schema import HearkenConfig
from desk.intake import source_state
from desk.intake.polling import matcher_for, own_accounts
from desk.intake.storing import Pushed, StoreFailed, store_pushed
from desk.store.db import Store

log = logging.getLogger(__name__)

router = APIRouter(tags=["hooks"])

MAX_BODY_BYTES = 1_000_000  # a post is at most 32,000 characters (max_post_length); raw and cooked both come
POST_EVENTS = ("post_created", "post_edited")
PLATFORM = "discourse"
NOT_HERE = "no Discourse webhook is taken here under this name"


def _context(request: Request) -> tuple[HearkenConfig, Store]:
    """The config and store: those of `hearken api` (desk.api.create_app: the config as it is now, reread when
    the file changes), or app.state.cfg / app.state.store of another app that mounts the router."""
    state = request.app.state
    api = getattr(state, "hearken", None)
    if api is not None:
        return api.config.current(), api.store
    try:
        return state.cfg, state.store
    except AttributeError:
        raise RuntimeError("the app mounting the Discourse hook keeps the config and store in app.state.cfg "
                           "and app.state.store") from None


def _source(cfg: HearkenConfig, name: str) -> tuple[Any, bytes]:
    """The enabled Discourse source of that name and its webhook secret; 404 when there is none."""
    src = next((s for s in cfg.sources if s.name == name), None)
    if src is None or src.type != PLATFORM or not src.enabled:
        raise HTTPException(404, NOT_HERE)
    var = getattr(src, "webhook_secret_env", None)
    secret = os.environ.get(var, "") if var else ""
    if not secret:
        log.warning("source %s: a webhook delivery was refused: %s", name,
                    f"the variable {var} it names is unset" if var else "it has no webhook_secret_env")
        raise HTTPException(404, NOT_HERE)
    return src, secret.encode()


def _check_content_type(request: Request) -> None:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise HTTPException(415, "the webhook's content type must be application/json (Admin > API > Webhooks)")


async def _body(request: Request) -> bytes:
    """The raw body, refused with 413 past `MAX_BODY_BYTES` (by its Content-Length, or as it arrives)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise HTTPException(413, f"a webhook delivery is at most {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"a webhook delivery is at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def signature(secret: bytes, body: bytes) -> str:
    """The X-Discourse-Event-Signature Discourse sends with `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _check_signature(secret: bytes, body: bytes, given: str | None) -> None:
    if not given or not hmac.compare_digest(signature(secret, body).encode(), given.strip().encode()):
        raise HTTPException(401, "the X-Discourse-Event-Signature is missing or does not match the body")


def _store(cfg: HearkenConfig, store: Store, src: Any, post: Any, *, edited: bool) -> Pushed:
    forum = Forum(src.base_url, src.name, matcher=matcher_for(cfg, src), own_accounts=own_accounts(cfg, src))
    cursor = source_state.cursor(store, src.name, PLATFORM) or {}
    ours = [str(x) for x in cursor.get("ours") or []] if isinstance(cursor.get("ours"), list) else []
    return store_pushed(store, src.name, PLATFORM, pushed(forum, post, ours=ours), edited=edited)


@router.post("/hooks/discourse/{source_name}", summary="Take a post from a Discourse webhook")
async def discourse_webhook(source_name: str, request: Request) -> dict[str, Any]:
    """A Discourse webhook delivery (events: Post): the post is stored at once, as a poll would store it."""
    cfg, store = _context(request)
    src, secret = _source(cfg, source_name)
    _check_content_type(request)
    body = await _body(request)
    try:
        _check_signature(secret, body, request.headers.get("x-discourse-event-signature"))
    except HTTPException:
        # a wrong secret in Discourse fails every delivery: say so where the runner's log is read (and the
        # refusal is in api_calls, with every other call to /hooks/)
        log.warning("Discourse webhook for source %s refused: the signature is missing or does not match "
                    "(check that the webhook's secret in Discourse is $%s)", src.name, src.webhook_secret_env)
        raise
    event = request.headers.get("x-discourse-event", "")
    if request.headers.get("x-discourse-event-type") == "ping" or event not in POST_EVENTS:
        return {"event": event or "ping", "stored": 0}
    try:
        payload = clean.loads_json(body)
    except ValueError:
        raise HTTPException(400, "the body is not JSON") from None
    post = payload.get("post") if isinstance(payload, dict) else None
    if post is None:
        raise HTTPException(400, 'a post event\'s body is {"post": {...}}')
    try:
        done = await run_in_threadpool(_store, cfg, store, src, post, edited=event == "post_edited")
    except StoreFailed as exc:  # Discourse retries a delivery answered 5xx; the next poll reads the post anyway
        raise HTTPException(503, str(exc)) from None
    return {"event": event, "stored": done.new, "updated": done.updated, "set_aside": done.set_aside}
