"""Where a request may go: a redirect is followed only on the origin asked for.

An http -> https upgrade of the same host is allowed; a redirect to another site, to a private or
loopback address, or to a scheme other than http(s) is refused with the reason, so credentials and
content never come from anywhere but the configured platform. Both readers keep this rule:
collectors/net/http.py (httpx) and collectors/net/sessions.py (requests).
"""

from __future__ import annotations

import ipaddress

import httpx


def _is_private(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not ip.is_global


def origin_of(url: str | httpx.URL) -> str:
    u = httpx.URL(str(url))
    return f"{u.scheme}://{u.netloc.decode('ascii')}"


def off_origin(origin: str | httpx.URL, target: str | httpx.URL) -> str | None:
    """Why a request that began at `origin` must not go to `target`; None when it may.

    Allowed: the same scheme, host and port, or the same host upgraded from http to https (default
    ports). Refused: any other scheme, a private or loopback address (unless `origin` is one
    itself, then as another origin), any other host or port.
    """
    o, t = httpx.URL(str(origin)), httpx.URL(str(target))
    if t.scheme not in ("http", "https"):
        return f"a {t.scheme or 'schemeless'}: address is never followed"
    if (t.scheme, t.host, t.port) == (o.scheme, o.host, o.port):
        return None
    if t.host == o.host and o.scheme == "http" and t.scheme == "https" and o.port is None and t.port is None:
        return None
    if _is_private(t.host) and not _is_private(o.host):
        return f"{t.host} is a private or loopback address"
    return f"it is another site (requests stay on {origin_of(o)}; if the platform moved, change its address in the config)"
