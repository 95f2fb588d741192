"""The HTTP API (issue 18): Hearken's queue and cases for other tools, on FastAPI, served by uvicorn.

    app.py      create_app(cfg, store): authentication, rate limit, audit, errors, /docs
    routes.py   the endpoints of /api/v1, each calling the desk/ function the dashboard calls
    bodies.py   request bodies and the JSON of desk/'s values
    tokens.py   personal API tokens: made, listed, revoked, checked
    limits.py   the rate limit per token (a token bucket)

`hearken api` serves it alone and `hearken up` beside the dashboard (desk/cli/api.py).
"""

from desk.api.app import create_app

__all__ = ["create_app"]
