"""Checks of what the YAML alone cannot show: the sign-in secrets, each source's credentials, the model, the
database, alert rules with nobody behind them, and secrets that would cross the network in plain text.

`hearken check-config` prints them; `hearken up` and `hearken dashboard`
refuse to start on an `auth_problems` one, which would otherwise show only
in the browser. Each problem names the config file, the line and the key.
The sign-in checks live in signin.py and the database's in database_check.py;
they are imported from here like the rest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from desk.config.database_check import DatabaseTimeout, database_origin, database_problem, database_problems
from desk.config.rules import is_loopback
from desk.config.schema import HearkenConfig, Problem, problem_at
from desk.config.signin import auth_problems, guessable_secret, secrets_files

__all__ = ["source_lines", "model_problems", "alert_reach_problems", "channel_problems", "cleartext_secrets", "auth_problems",
           "guessable_secret", "secrets_files", "DatabaseTimeout", "database_origin", "database_problem",
           "database_problems"]


def source_lines(cfg: HearkenConfig, env: Mapping[str, str] | None = None) -> tuple[list[str], list[Problem]]:
    """One line per source saying whether it will poll and post, and a problem for each enabled source that
    will be skipped."""
    from collectors import NotConfigured, TermMatcher, build
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
                              own_accounts=cfg.accounts.get(src.type, []), env=env)
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
        return [problem_at(cfg, ("classifier", "model_path"),
                         f"no model folder at {where}; leave model_path empty for the model shipped with Hearken, "
                         "or point it at the folder `hearken train --out` wrote")]
    try:
        classifier.load(where)
    except (ModelError, OSError, ValueError, RuntimeError) as exc:
        return [problem_at(cfg, ("classifier", "model_path"), f"the model in {where} cannot be loaded: {exc}")]
    return []




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
            out.append(problem_at(cfg, ("team",), (
                "no member of team: has role: manager, so these alerts would go to nobody: " + ", ".join(unreached)
                + "; give someone role: manager, or name the recipients under alerts.rules")))
    if not cfg.members("admin") and cfg.sources and not rules.source_recipients:
        out.append(problem_at(cfg, ("team",), "no member of team: has role: admin, so alerts about failing or silent "
                                            "sources would go to nobody; set alerts.rules.source_recipients"))
    return out


def channel_problems(cfg: HearkenConfig, env: Mapping[str, str] | None = None) -> list[Problem]:
    """Channels a route or case_events uses whose URL or signing key is missing from the environment: their
    messages would wait in the outbox (retried, shown on the banner) until 'hearken run' gets them."""
    if not cfg.alerts.enabled:
        return []
    env = dict(os.environ if env is None else env)
    used = {n for rule in type(cfg.alerts.routes).model_fields for n in getattr(cfg.alerts.routes, rule)}
    out = []
    for name, ch in cfg.alerts.channels.items():
        if name not in used and not ch.case_events:
            continue
        missing = [f"${v} ({what})" for v, what in ((ch.url_env, "its webhook URL"), (ch.secret_env, "its signing key"))
                   if v and not env.get(v)]
        if missing:
            out.append(problem_at(cfg, ("alerts", "channels", name), f"channel {name}: {' and '.join(missing)} "
                                  "not set in this environment; give it to 'hearken run' too"))
        elif _clear_host(env.get(ch.url_env)):
            out.append(problem_at(cfg, ("alerts", "channels", name), f"warning: channel {name} posts to "
                                  f"{_clear_host(env.get(ch.url_env))} over plain http; use an https:// address"))
    return out


_SECRET_WORDS = ("key", "secret", "password", "token")


def _clear_host(url: object) -> str | None:
    """The host `url` reaches without encryption (http:// to another machine), else None."""
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
