"""The `api:` section of the config: where `hearken api` (and `hearken up`) serve the HTTP API, and its limits.

Kept apart from desk/config/sections.py, which only names it as one field of HearkenConfig. Every
call needs a personal token (README "HTTP API"), but a token sent as plain
HTTP across a network can be read on the way: a host beyond loopback is served
only when `behind_tls_proxy` says a TLS-terminating proxy is in front of it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Api(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="`hearken up` starts the HTTP API beside the dashboard.")
    host: str = Field("127.0.0.1", description="Address the API listens on; beyond loopback needs behind_tls_proxy.")
    port: int = Field(8600, ge=0, le=65535, description="0 = any free port.")
    rate_limit_per_minute: int = Field(
        120, ge=1, le=100_000, description="Requests one token may make per minute (a token bucket; 429 past it).")
    behind_tls_proxy: bool = Field(
        False, description="A TLS-terminating proxy (nginx, Caddy, a load balancer) is in front of the API, so "
                           "it may listen beyond 127.0.0.1: tokens then cross the network encrypted.")
