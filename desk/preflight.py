"""Checks of what the YAML alone cannot show: the sign-in secrets and each source's credentials.

`hearken check-config` prints them; `hearken up` and `hearken dashboard`
refuse to start on an `auth_problems` one, which would otherwise show only
in the browser. Each problem names the config file, the line and the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from desk.config import HearkenConfig, Problem

SIGN_IN_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")


def secrets_files() -> list[Path]:
    """Where Streamlit reads secrets.toml, in its order (its `secrets.files` option; by default the user's
    ~/.streamlit and the .streamlit folder of the directory Hearken is started from)."""
    try:
        from streamlit import config as st_config

        files = [Path(p) for p in st_config.get_option("secrets.files")]
    except Exception:  # noqa: BLE001 - streamlit missing or its config unreadable: its documented defaults
        files = [Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml"]
    return list(dict.fromkeys(files))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{parts.hostname}:{port}"


def auth_problems(cfg: HearkenConfig, files: list[Path] | None = None) -> list[Problem]:
    """What stops `dashboard.auth: oidc` from signing anyone in; [] for local mode or a complete [auth]."""
    if cfg.dashboard.auth != "oidc":
        return []
    files = secrets_files() if files is None else files

    def problem(message: str) -> Problem:
        return Problem(str(cfg.path or "<config>"), cfg.line_of("dashboard", "auth"), "dashboard.auth", message)

    auth: dict = {}
    where = ""
    for path in files:
        if not path.is_file():
            continue
        try:
            section = tomllib.loads(path.read_text(encoding="utf-8")).get("auth")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            return [problem(f"cannot read the sign-in settings in {path}: {exc}")]
        if isinstance(section, dict):
            auth, where = {**auth, **section}, str(path)  # later files win, as in Streamlit
    if not where:
        return [problem("oidc sign-in needs an [auth] section in Streamlit's secrets.toml (see the README, "
                        f"'Sign-in and roles'); there is none in {' or '.join(str(f) for f in files)}")]
    missing = [k for k in SIGN_IN_KEYS if not auth.get(k)]
    if missing:
        return [problem(f"the [auth] section in {where} lacks {', '.join(missing)}")]
    out = []
    redirect = str(auth["redirect_uri"])
    if urlsplit(redirect).path.rstrip("/") != "/oauth2callback":
        out.append(problem(f"redirect_uri {redirect!r} in {where} must end in /oauth2callback"))
    elif _origin(redirect) != _origin(cfg.dashboard.public_url or ""):
        out.append(problem(
            f"redirect_uri {redirect!r} in {where} is not on the dashboard's address {cfg.dashboard.public_url}: "
            "sign-in would send people elsewhere (set dashboard.public_url to the address people use, "
            "or serve on the redirect URI's port)"))
    return out


def source_lines(cfg: HearkenConfig, env: Mapping[str, str] | None = None) -> tuple[list[str], list[Problem]]:
    """One line per source saying whether it will poll and post, and a problem for each enabled source that
    will be skipped."""
    from collectors import PLATFORM_OF_TYPE, NotConfigured, TermMatcher, build
    from desk.publishers import can_post

    env = dict(os.environ if env is None else env)
    file = str(cfg.path or "<config>")
    lines: list[str] = []
    problems: list[Problem] = []
    for i, src in enumerate(cfg.sources):
        where = f"{file}:{cfg.line_of('sources', i)}"
        label = f"source {src.name} ({src.type})"
        if not src.enabled:
            lines.append(f"{where}: {label}: disabled in the config")
            continue
        try:
            collector = build(src, matcher=TermMatcher(cfg.brand.terms, cfg.brand.exclusions),
                              own_accounts=cfg.accounts.get(PLATFORM_OF_TYPE[src.type], []), env=env)
        except NotConfigured as exc:
            problems.append(Problem(file, cfg.line_of("sources", i), f"sources.{i}",
                                    f"{label} is enabled but will be skipped: {exc}"))
            continue
        anonymous = getattr(collector, "anonymous", False)
        collector.close()
        line = f"{where}: {label}: ready, every {src.interval_seconds:g}s"
        if anonymous:
            key = src.api_key_env
            line += f"; reads anonymously ({key} is not set)" if key else "; reads anonymously"
        posts, why = can_post(cfg, src.name, env)
        lines.append(line + ("; can post replies" if posts else f"; cannot post replies: {why}"))
    return lines, problems


_SECRET_WORDS = ("key", "secret", "password", "token")


def _clear_host(url: object) -> str | None:
    """The host `url` reaches without encryption (http:// to another machine), else None."""
    from desk.config import is_loopback

    try:
        parts = urlsplit(str(url))
    except ValueError:
        return None
    if parts.scheme != "http" or not parts.hostname or is_loopback(parts.hostname):
        return None
    return parts.hostname


def cleartext_secrets(cfg: HearkenConfig, env: Mapping[str, str] | None = None) -> list[Problem]:
    """A warning for each password or key that would cross the network unencrypted to another machine.

    smtplib logs in over a plain connection whenever the server offers AUTH, and httpx sends a source's
    key to an http:// address: anyone on the path can read them. A server on this machine (loopback)
    is fine. A source is asked generically: an http:// address among its settings, and a secret it
    names through a `*_env` key that is set, or a password written into the address itself.
    """
    from desk.config import is_loopback

    env = dict(os.environ if env is None else env)
    file = str(cfg.path or "<config>")
    out: list[Problem] = []
    smtp = cfg.alerts.smtp
    login = [v for v in (smtp.username_env, smtp.password_env) if v and env.get(v)]
    if cfg.alerts.enabled and login and smtp.security == "none" and not is_loopback(smtp.host):
        out.append(Problem(file, cfg.line_of("alerts", "smtp", "security"), "alerts.smtp.security",
                           f"warning: the SMTP login (${', $'.join(login)}) would go to {smtp.host} in plain text, "
                           "readable by anyone on the way; use security: starttls or ssl (TLS)"))
    for i, src in enumerate(cfg.sources):
        if not src.enabled:
            continue
        secrets = [f"${env_name}" for name in type(src).model_fields
                   if name.endswith("_env") and any(w in name for w in _SECRET_WORDS)
                   and (env_name := getattr(src, name, None)) and env.get(env_name)]
        for name in type(src).model_fields:
            value = getattr(src, name, None)
            for url in value if isinstance(value, list) else [value]:
                host = _clear_host(url) if url is not None and "://" in str(url) else None
                sent = secrets + (["the password in the address"] if host and urlsplit(str(url)).password else [])
                if host and sent:
                    out.append(Problem(file, cfg.line_of("sources", i, name), f"sources.{i}.{name}",
                                       f"warning: source {src.name} would send {' and '.join(sent)} to {host} "
                                       "over plain http, readable by anyone on the way; use an https:// address"))
                    break
    return out
