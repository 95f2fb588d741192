"""The HTTP API's application: `create_app(cfg, store)` returns a FastAPI app serving /api/v1 and /docs.

Every request under /api/ needs `Authorization: Bearer hk_…` (a personal token,
desk/api/tokens.py): it acts as the token's owner with their role in the config
as it is now (the file is read again when it changes). Each token has its own
rate limit (desk/api/limits.py). Every call, answered or refused, is written to
`api_calls` with the token, its owner, the method, path and status; actions on
cases are in the case's history too, as from the dashboard.

What desk/ refuses becomes a 4xx with its message in `detail`: NotAllowed 403,
an unknown case 404, a case whose state does not allow it (or a reply that
could be a second one) 409, any other UserError 400. Bad input is FastAPI's 422
naming the field (`detail[].loc`).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from fastapi_offline import FastAPIOffline

from desk.api.auth import ApiRefusal, ApiState, LiveConfig
from desk.api.limits import BodyCap, TokenBuckets
from desk.api.routes import router
from desk.api.tokens import Caller
from desk.cases.actions import CaseError, CaseNotFound
from desk.config.schema import HearkenConfig
from desk.errors import HearkenError, PostingError, UserError
from desk.store.db import Store
from desk.store.models import ApiCall, now_utc
from desk.team.users import NotAllowed

log = logging.getLogger(__name__)

VERSION = "v1"
PREFIX = f"/api/{VERSION}"
HOOK = "desk.api.discourse_hook"
AUDITED = ("/api/", "/hooks/")  # every call to these is written to api_calls, answered or refused
MAX_BODY_BYTES = 1_000_000  # no request of the API needs more; larger ones are refused before they are read


def status_for(exc: HearkenError) -> int:
    if isinstance(exc, NotAllowed):
        return 403
    if isinstance(exc, CaseNotFound):
        return 404
    if isinstance(exc, (CaseError, PostingError)):
        return 409
    return 400 if isinstance(exc, UserError) else 500


def _record_call(store: Store, request: Request, status: int) -> None:
    who: Caller | None = getattr(request.state, "caller", None)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    with store.session() as s:
        s.add(ApiCall(token_id=who.token_id if who else None, actor=who.actor.name if who else None,
                      method=request.method[:10], path=path[:500], status=status, at=now_utc()))


def create_app(cfg: HearkenConfig, store: Store) -> FastAPI:
    """The API for `cfg`'s team on `store`: /api/v1/…, OpenAPI at /docs (and /openapi.json)."""
    app = FastAPIOffline(title="Hearken API", version=VERSION,
                  description="Work Hearken's queue from other tools. Authenticate with a personal token "
                              "(Authorization: Bearer hk_…) made on the dashboard's Team page.")
    app.state.hearken = ApiState(store, LiveConfig(cfg, store), TokenBuckets(cfg.api.rate_limit_per_minute))

    @app.exception_handler(ApiRefusal)
    async def _refused(request: Request, exc: ApiRefusal) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HearkenError)
    async def _hearken_error(request: Request, exc: HearkenError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    @app.middleware("http")
    async def _audit(request: Request, call_next):
        try:
            response = await call_next(request)
        except Exception:
            if request.url.path.startswith(AUDITED):
                await run_in_threadpool(_record_call, store, request, 500)
            raise
        if request.url.path.startswith(AUDITED):
            try:
                await run_in_threadpool(_record_call, store, request, response.status_code)
            except Exception:  # noqa: BLE001 - the answer stands; the database's trouble is logged
                log.exception("could not write the API call to api_calls")
        return response

    app.include_router(router, prefix=PREFIX)
    app.add_middleware(BodyCap, max_bytes=MAX_BODY_BYTES)
    if importlib.util.find_spec(HOOK) is not None:  # the Discourse webhook, where that module is present
        app.include_router(importlib.import_module(HOOK).router)
    return app
