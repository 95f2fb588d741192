"""Checks of what the YAML alone cannot show: the sign-in secrets and each source's credentials.

`hearken check-config` prints them; `hearken up` and `hearken dashboard`
refuse to start on an `auth_problems` one, which would otherwise show only
in the browser. Each problem names the config file, the line and the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from collectors.redact import HIDDEN, hide_passwords
from desk.config.schema import HearkenConfig, Problem
from desk.errors import UserError

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


MIN_SECRET_LENGTH = 32
# the README's placeholder and the words people type when asked for one (each short, but named for what it is)
KNOWN_SECRETS = {"a long random string", "changeme", "change me", "secret", "password"}
# zxcvbn's estimate of the guesses a cookie secret takes, at least: 10^24 is about 80 bits (a random
# secrets.token_hex(16) scores 27 or more, token_urlsafe(32) about 43; the digits in order score 2)
MIN_GUESSES_LOG10 = 24
# a secret whose characters are mostly words, keyboard runs, sequences, repeats or dates was typed
MAX_PATTERN_SHARE = 0.8
_ZXCVBN_CHUNK = 64  # zxcvbn reads at most 72 characters; a longer secret is read in parts
_WORDS_WITH_SPACES = re.compile(r"[^\W\d_]{2,}[,;.:!?]?\s+[^\W\d_]{2,}")  # no random token has a space


def guessable_secret(secret: str, words: Iterable[str] = ()) -> str | None:
    """Why a cookie secret is one others can guess, or None.

    An example from the docs, short, a few characters repeated, words with spaces between them (a
    sentence), or what zxcvbn (Dropbox's strength estimator, the Python port; `words` are names it
    should count as known: the brand's terms) finds to be sequences, repeats, words or keyboard runs
    that take fewer than 10^24 guesses."""
    if secret.strip().casefold() in KNOWN_SECRETS:
        return "is a placeholder (the README's example or a common word)"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"has {len(secret)} characters"
    if len(set(secret)) < 10:
        return f"is made of only {len(set(secret))} different characters"
    if _WORDS_WITH_SPACES.search(secret):
        return "is words with spaces between them (a sentence), far easier to guess than its length suggests"
    from zxcvbn import zxcvbn

    known = [w for w in words if w]
    guesses_log10, patterned, found = 0.0, 0, []
    for i in range(0, len(secret), _ZXCVBN_CHUNK):
        result = zxcvbn(secret[i:i + _ZXCVBN_CHUNK], user_inputs=known)
        guesses_log10 += result["guesses_log10"]
        for match in result["sequence"]:
            if match["pattern"] != "bruteforce":
                patterned += len(match["token"])
                found.append(_PATTERN_NAMES.get(match["pattern"], match["pattern"]))
    what = ", ".join(dict.fromkeys(found)) or "nothing random"
    if guesses_log10 < MIN_GUESSES_LOG10:
        return f"takes about 10^{guesses_log10:.0f} guesses (zxcvbn finds {what} in it)"
    if patterned >= MAX_PATTERN_SHARE * len(secret):
        return f"is {patterned} of {len(secret)} characters {what} (zxcvbn)"
    return None


_PATTERN_NAMES = {"dictionary": "words", "spatial": "keyboard runs", "repeat": "repeats", "sequence": "sequences",
                  "regex": "years", "date": "dates"}


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
    weak = guessable_secret(str(auth["cookie_secret"]), words=[*cfg.brand.terms, "hearken"])
    if weak:
        out.append(problem(
            f"cookie_secret in {where} {weak}: whoever knows or guesses it can sign Streamlit's sign-in cookie "
            "for any team member. Use a random one of 32 characters or more: "
            "python -c \"import secrets; print(secrets.token_urlsafe(32))\""))
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
    from desk.cases.publishing import can_post

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


# --- what fails only when Hearken runs: the model, the database, alert rules with nobody behind them ----------


def _problem(cfg: HearkenConfig, key: tuple[str, ...], message: str) -> Problem:
    return Problem(str(cfg.path or "<config>"), cfg.line_of(*key), ".".join(key), message)


def model_problems(cfg: HearkenConfig) -> list[Problem]:
    """classifier.model_path must hold a model the runner can load (it is loaded as `hearken run` does:
    relative to the directory Hearken is started from)."""
    path = cfg.classifier.model_path
    if not path:
        return []
    import classifier
    from classifier.runtime import ModelError

    where = Path(path).resolve()
    if not where.is_dir():
        return [_problem(cfg, ("classifier", "model_path"),
                         f"no model folder at {where}; leave model_path empty for the model shipped with Hearken, "
                         "or point it at the folder `hearken train --out` wrote")]
    try:
        classifier.load(where)
    except (ModelError, OSError, ValueError, RuntimeError) as exc:
        return [_problem(cfg, ("classifier", "model_path"), f"the model in {where} cannot be loaded: {exc}")]
    return []


def database_origin(cfg: HearkenConfig, env: Mapping[str, str] | None = None) -> tuple[str, tuple[str, ...]]:
    """Where the database URL comes from, as a person would look for it, and the config key to point at."""
    env = os.environ if env is None else env
    if env.get("HEARKEN_DATABASE_URL"):
        return "the environment variable HEARKEN_DATABASE_URL", ("database",)
    if cfg.database.url_env and env.get(cfg.database.url_env):
        return f"the environment variable {cfg.database.url_env} (database.url_env)", ("database", "url_env")
    return "database.url", ("database", "url")


def database_problem(cfg: HearkenConfig, exc: BaseException, env: Mapping[str, str] | None = None) -> str:
    """One line saying which database could not be opened, where its URL came from and why."""
    from desk.store.db import shown_url, url_secrets

    origin, _ = database_origin(cfg, env)
    url = cfg.database_url(dict(os.environ if env is None else env))
    reason = getattr(exc, "orig", None) or exc
    text = " ".join(str(reason).split()) or type(reason).__name__
    if isinstance(exc, ImportError):
        text = f"its driver is not installed ({text})"
        if url.startswith("postgresql"):
            text += "; install it with .venv/bin/pip install -c constraints.txt -e '.[postgres]'"
    elif isinstance(exc, ValueError) and text.startswith("invalid literal for int()"):  # SQLAlchemy on host:port
        text = f"its port is not a number ({text.rsplit(':', 1)[-1].strip()})"
    for secret in sorted(url_secrets(url), key=len, reverse=True):  # a driver may quote the connection string
        text = text.replace(secret, HIDDEN)
    return f"cannot open the database {shown_url(url)} (from {origin}): {hide_passwords(text)}"


CONNECT_SECONDS = 5  # a server's connect_timeout when the URL gives none (or 0, libpq's "for ever")
QUERY_SECONDS = 1  # then the server has this long to answer SELECT 1 (statement_timeout, and a wall clock)


class DatabaseTimeout(UserError, OSError):
    """The database check ran past its deadline."""


def _connect_seconds(query: Mapping[str, object]) -> int | None:
    """libpq's connect_timeout as it applies it: 0, negative or absent waits for ever (we take our 5 s),
    and 1 is taken as 2 (its minimum); None where it is not a number (the driver refuses it, and says so)."""
    value = query.get("connect_timeout")
    if value is None:
        return CONNECT_SECONDS
    try:
        seconds = int(float(str(value[0] if isinstance(value, tuple) else value).strip()))
    except ValueError:
        return None
    return CONNECT_SECONDS if seconds <= 0 else max(seconds, 2)


def database_problems(cfg: HearkenConfig, env: Mapping[str, str] | None = None) -> list[Problem]:
    """The database URL parses and, for a server, answers within a few seconds. A SQLite file that is not
    there yet is fine (Hearken creates it) as long as its folder can be made.

    The whole check of a server has a deadline: connect_timeout (ours, 5 s, where the URL gives none or 0)
    for connecting, then `QUERY_SECONDS` for SELECT 1, asked of the server as its statement_timeout too
    (libpq drivers) and held by a wall clock, so a server that accepts the connection and then never
    answers (a stuck pooler, a locked catalog) is named as a problem instead of holding check-config.
    The clock starts with the check (loading the driver counts)."""
    import time

    started = time.monotonic()
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    env = dict(os.environ if env is None else env)
    _, key = database_origin(cfg, env)
    url = cfg.database_url(env)
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            folder = Path(parsed.database or ".").resolve().parent
            while not folder.exists():
                folder = folder.parent
            if parsed.database not in (None, "", ":memory:") and not os.access(folder, os.W_OK):
                raise OSError(f"{folder} cannot be written to")
            return []
        deadline = QUERY_SECONDS
        if parsed.get_backend_name() == "postgresql":
            connect = _connect_seconds(parsed.query)
            deadline += connect or CONNECT_SECONDS
            asked = {"connect_timeout": str(connect)} if connect else {}
            if parsed.get_driver_name() in ("", "psycopg", "psycopg2"):  # libpq's options, as desk.store.db picks them
                options = parsed.query.get("options", "")
                options = " ".join(options) if isinstance(options, tuple) else options
                asked["options"] = f"{options} -c statement_timeout={QUERY_SECONDS * 1000}".strip()
            parsed = parsed.update_query_dict(asked)
        else:
            deadline += CONNECT_SECONDS
        _answers_within(parsed.render_as_string(hide_password=False), started, deadline)
    except (ValueError, SQLAlchemyError, ImportError, OSError) as exc:
        return [_problem(cfg, key, database_problem(cfg, exc, env))]
    return []


def _answers_within(url: str, started: float, seconds: float) -> None:
    """Connect to `url` and run SELECT 1 in a thread, ending `seconds` after `started` (time.monotonic) at
    the latest: a driver's wait that no timeout of its own covers is left behind (the thread is a daemon)
    and the check fails."""
    import threading
    import time

    from sqlalchemy import text

    from desk.store.db import make_engine

    failed: list[BaseException] = []

    def check() -> None:
        try:
            engine = make_engine(url)
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            finally:
                engine.dispose()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=check, name="database-check", daemon=True)
    worker.start()
    worker.join(max(0.0, started + seconds - time.monotonic()))
    if worker.is_alive():
        raise DatabaseTimeout(f"it accepted no connection or answered no query within {seconds:g} s")
    if failed:
        raise failed[0]


def alert_reach_problems(cfg: HearkenConfig) -> list[Problem]:
    """Rules whose 'empty = the managers' (or the admins) falls back on a role nobody on the team has: their
    alerts would be written for nobody, and so never sent or shown."""
    if not cfg.alerts.enabled:
        return []
    rules = cfg.alerts.rules
    out = []
    if not cfg.members("manager"):
        unreached = [what for what, on, named in (
            ("severe complaints (severe_recipients)", rules.severe_complaint, rules.severe_recipients),
            ("SLA breaches (escalation_managers)", rules.sla_breach_to_managers, rules.escalation_managers),
            ("the daily digest (digest_recipients)", rules.daily_digest, rules.digest_recipients),
            ("SLA warnings on unassigned cases", rules.sla_warning_minutes > 0, []),
        ) if on and not named]
        if unreached:
            out.append(_problem(cfg, ("team",), (
                "no member of team: has role: manager, so these alerts would go to nobody: " + ", ".join(unreached)
                + "; give someone role: manager, or name the recipients under alerts.rules")))
    if not cfg.members("admin") and cfg.sources and not rules.source_recipients:
        out.append(_problem(cfg, ("team",), "no member of team: has role: admin, so alerts about failing or silent "
                                            "sources would go to nobody; set alerts.rules.source_recipients"))
    return out


_SECRET_WORDS = ("key", "secret", "password", "token")


def _clear_host(url: object) -> str | None:
    """The host `url` reaches without encryption (http:// to another machine), else None."""
    from desk.config.schema import is_loopback

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
    from desk.config.schema import is_loopback

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
