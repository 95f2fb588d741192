"""The sections of Hearken's config file as pydantic models, with their defaults and what each key means.

`HearkenConfig` is the whole file; desk/config/schema.py loads and validates it. config/example.yaml
shows every key with a comment (tests/test_config.py holds the two together). The source types, and the
platforms `sla.platforms` and `accounts` accept, come from the platform registry (collectors/__init__.py),
so a new platform package needs no edit here. Secrets are never in the YAML: keys ending in `_env` name
the environment variable that holds them.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from collectors import NAMES, SourceSettings
from desk.config.api import Api
from desk.config.channels import Channel, Routes, check_routes
from desk.config.environment import database_url_from_env
from desk.config.lines import line_for

PlatformName = Literal[NAMES]  # type: ignore[valid-type]  # every package under collectors/, from its registry


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Brand(_Model):
    terms: list[str] = Field(min_length=1, description="Words and phrases that name the company or product.")
    exclusions: list[str] = Field(default_factory=list, description="A post naming any of these is ignored.")


Source = SourceSettings  # one model per platform, picked by `type`

Severity = Literal[1, 2, 3, 4]


class SlaTargets(_Model):
    """Minutes allowed, per severity (1 mild ... 4 severe)."""

    first_response: dict[Severity, float] = Field(
        default_factory=lambda: {1: 480, 2: 240, 3: 120, 4: 60},
        description="Minutes from the customer's post to our first public reply.")
    resolution: dict[Severity, float] = Field(
        default_factory=lambda: {1: 4320, 2: 2880, 3: 1440, 4: 480},
        description="Minutes from the customer's post to resolution.")

    @field_validator("first_response", "resolution")
    @classmethod
    def _positive(cls, v: dict[int, float]) -> dict[int, float]:
        for sev, minutes in v.items():
            if minutes <= 0:
                raise ValueError(f"severity {sev}: minutes must be greater than 0")
        return v


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessHours(_Model):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    start: str = Field("09:00", description="HH:MM, local time in sla.timezone.")
    end: str = Field("17:30", description="HH:MM, local time in sla.timezone; after start.")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(str(v)):
            raise ValueError(f"expected a time as HH:MM (24-hour), got {v!r}")
        return v

    @model_validator(mode="after")
    def _order(self) -> "BusinessHours":
        if self.start_time >= self.end_time:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    @property
    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    @property
    def end_time(self) -> time:
        return time.fromisoformat(self.end)

    @property
    def weekdays(self) -> set[int]:
        return {_DAYS.index(d) for d in self.days}


def _check_zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r}; expected an IANA name such as Europe/London") from None
    return v


class Sla(_Model):
    timezone: str = Field("UTC", description="IANA time zone for business hours and report weeks.")
    business_hours: BusinessHours | None = Field(None, description="Count only these hours; omit for round-the-clock.")
    targets: SlaTargets = Field(default_factory=SlaTargets)
    platforms: dict[PlatformName, SlaTargets] = Field(
        default_factory=dict, description="Per-platform targets that replace the defaults for that platform.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _check_zone(v)

    def targets_for(self, platform: str) -> SlaTargets:
        return self.platforms.get(platform, self.targets)  # type: ignore[call-overload]


class Smtp(_Model):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "none"
    username_env: str | None = Field(None, description="Environment variable with the SMTP login.")
    password_env: str | None = Field(None, description="Environment variable with the SMTP password.")
    sender: str = "Hearken <hearken@localhost>"
    timeout_seconds: float = Field(10, gt=0, description="How long one SMTP read or write may wait.")
    session_deadline_seconds: float = Field(
        60, gt=0, description="Wall-clock limit of one SMTP session (connect, greeting, login, every message).")


class AlertRules(_Model):
    severe_complaint: bool = Field(True, description="Email at once when a complaint of min_severity or above arrives.")
    min_severity: Severity = 3
    severe_recipients: list[str] = Field(default_factory=list, description="Emails or team-member names; empty = managers.")
    sla_warning_minutes: float = Field(30, ge=0, description="Warn the assignee this long before an SLA runs out.")
    sla_breach_to_managers: bool = Field(True, description="Escalate a breached SLA to the named managers.")
    escalation_managers: list[str] = Field(default_factory=list, description="Team-member names; empty = every manager.")
    source_silent_minutes: float = Field(120, gt=0, description="Alert when a source failed or found nothing this long.")
    source_recipients: list[str] = Field(default_factory=list, description="Empty = admins.")
    read_budget_warn_fraction: float = Field(
        0.9, gt=0, le=1, validation_alias=AliasChoices("read_budget_warn_fraction", "x_budget_warn_fraction"),
        description="Warn when this share of a source's monthly read cap (X's) is used; the old name still reads.")
    daily_digest: bool = False
    digest_hour: int = Field(8, ge=0, le=23)
    digest_recipients: list[str] = Field(default_factory=list)
    throttle_minutes: float = Field(0, ge=0, description="At most one alert of a kind per recipient in this many minutes.")


class Alerts(_Model):
    enabled: bool = Field(True, description="False writes no alerts at all.")
    smtp: Smtp = Field(default_factory=Smtp)
    rules: AlertRules = Field(default_factory=AlertRules)
    channels: dict[str, Channel] = Field(default_factory=dict, description="Named Slack, Teams and webhook channels.")
    routes: Routes = Field(default_factory=Routes, description="Per rule: \"email\" and/or channel names.")

    @model_validator(mode="after")
    def _routes_known(self) -> Alerts:
        check_routes(self.channels, self.routes)
        return self


class Report(_Model):
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = Field("mon", description="Day the weekly report is sent.")
    hour: int = Field(9, ge=0, le=23, description="Local hour (sla.timezone) it is sent.")
    recipients: list[str] = Field(default_factory=list, description="Emails or team-member names; empty = no email.")
    output_dir: str = Field("var/reports", description="Where HTML, CSV and JSON reports are written.")


class TeamMember(_Model):
    name: str
    email: str
    role: Literal["agent", "manager", "admin"] = "agent"

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        if not re.match(r"^[^@\s]+@[^@\s]+$", v):
            raise ValueError(f"expected an email address, got {v!r}")
        return v


class Database(_Model):
    url: str = Field("sqlite:///var/hearken.db", description="SQLAlchemy URL; a relative SQLite path is relative to the config file.")
    url_env: str | None = Field(None, description="Environment variable holding the URL (with password); wins over url.")


class ClassifierSettings(_Model):
    model_path: str | None = Field(None, description="Folder of a trained model; empty = the one shipped with Hearken.")
    threshold: float | None = Field(None, gt=0, lt=1, description="Complaint threshold; empty = the model's recall-first operating point.")
    batch_size: int = Field(64, ge=1)
    threads: int | None = Field(None, ge=1, description="ONNX Runtime's intra-op threads; empty = 2 (1 on a one-core "
                                                      "machine). On a busy machine one can do more than two.")
    languages: list[str] = Field(
        default_factory=lambda: ["en"], min_length=1,
        description="Languages the complaint model scores (ISO 639-1 codes). A mention detected in another "
                    "language is never scored by it: other_languages decides what happens to it.")
    other_languages: Literal["queue", "drop"] = Field(
        "queue", description="queue: a case for a reader, flagged with its language and no score; "
                             "drop: kept in the database and set aside on the Sources page, no case.")

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        codes = [str(v).strip().lower() for v in value]
        if codes != ["en"]:  # the default needs no look-up; anything else is checked against the detector
            from classifier.language import known_codes

            unknown = [c for c in codes if c not in known_codes()]
            if unknown:
                raise ValueError(f"unknown language code {unknown[0]!r}; expected ISO 639-1 codes such as "
                                 "en, de, fr, es (the codes classifier.language detects)")
        return codes


def served_url(host: str, port: int) -> str:
    """The address of a dashboard served on host:port (a wildcard host is reached by this machine's name)."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()  # no DNS lookup: loading a config must not wait on a resolver
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Dashboard(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8501, ge=0, le=65535, description="0 = any free port.")
    public_url: str | None = Field(None, description="Address people reach the dashboard at, for links in emails; "
                                   "empty = the host and port it is served on.")
    auth: Literal["local", "oidc"] = Field("local", description="local: one user, no sign-in (own machine only); oidc: st.login.")
    local_user: str | None = Field(None, description="Team member name used in local mode; default the first admin.")
    refresh_seconds: int = Field(30, ge=5)
    session_hours: float = Field(12, gt=0, le=720, description="oidc: a sign-in lasts this long, then sign in again.")
    insecure_local_on_network: bool = Field(
        False, description="Let a local-mode dashboard (no sign-in) listen on a non-loopback address. Anyone who "
                           "reaches it acts as the local user and can post public replies as the brand.")

    _url_follows_server: bool = PrivateAttr(False)

    @field_validator("public_url")
    @classmethod
    def _web_address(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from urllib.parse import urlsplit

        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected the dashboard's web address, http:// or https:// with a host name, such "
                             "as https://hearken.example.com (alert emails link to cases there)")
        return v.strip()

    def model_post_init(self, context: Any) -> None:
        if self.public_url is None:
            self._url_follows_server = True
            self.public_url = served_url(self.host, self.port)

    def served_at(self, url: str) -> None:
        """Where the dashboard is actually served (`hearken up` may be given another port): an unset
        public_url follows it."""
        if self._url_follows_server:
            self.public_url = url


class RunnerSettings(_Model):
    jitter: float = Field(0.1, ge=0, le=0.5, description="Random share of the interval added or taken off each poll.")
    max_backoff_seconds: float = Field(3600, gt=0)
    lease_seconds: float = Field(120, gt=0, description="How long a process holds a source between polls (scale-out).")
    shutdown_seconds: float = Field(
        10, gt=0, le=300, description="SIGTERM/Ctrl+C stops the runner within this long: polls still running are abandoned.")


class Replies(_Model):
    """How a public reply is posted exactly once: deadlines, and when a lost answer may be settled."""

    publish_deadline_seconds: float = Field(
        20, gt=0, le=300, description="Wall-clock limit of one publish call, connecting to the last byte; "
                                      "past it the outcome is unknown.")
    check_deadline_seconds: float = Field(
        60, gt=0, le=300, description="Wall-clock limit of one look on the platform for a reply whose answer was lost.")
    stale_after_seconds: float = Field(
        120, gt=0, description="A reply left 'posting' this long was left by a process that died; "
                               "longer than both deadlines.")
    check_grace_seconds: float = Field(
        300, ge=0, description="Not finding our reply is not conclusive until this long after it was sent "
                               "(a platform can store or show a post late).")
    clock_skew_seconds: float = Field(
        600, ge=0, description="How far the platform's clock may be from ours, either way, when reading back "
                               "our posts since an attempt.")

    @model_validator(mode="after")
    def _stale_after_outlasts_deadlines(self) -> "Replies":
        longest = max(self.publish_deadline_seconds, self.check_deadline_seconds)
        if self.stale_after_seconds <= longest:
            raise ValueError(f"stale_after_seconds ({self.stale_after_seconds:g}) must be longer than the publish "
                             f"and check deadlines ({longest:g}), or a reply still being posted would be taken "
                             "for one whose process died")
        return self


class HearkenConfig(_Model):
    brand: Brand
    accounts: dict[PlatformName, list[str]] = Field(
        default_factory=dict, description="Our own accounts per platform: never ingested, used to find our replies.")
    sources: list[Source] = Field(default_factory=list)
    sla: Sla = Field(default_factory=Sla)
    alerts: Alerts = Field(default_factory=Alerts)
    report: Report = Field(default_factory=Report)
    team: list[TeamMember] = Field(default_factory=list)
    database: Database = Field(default_factory=Database)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    dashboard: Dashboard = Field(default_factory=Dashboard)
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    replies: Replies = Field(default_factory=Replies)
    api: Api = Field(default_factory=Api)

    path: Path | None = Field(None, exclude=True, description="The file this was loaded from (set by load_config).")
    _lines: dict[tuple[str, ...], int] = PrivateAttr(default_factory=dict)

    def line_of(self, *key: str | int) -> int | None:
        """The line of a key in the file this was parsed from (its parent's where it is not written)."""
        return line_for(self._lines, key)

    @model_validator(mode="after")
    def _unique_names(self) -> "HearkenConfig":
        seen: set[str] = set()
        for s in self.sources:
            if s.name in seen:
                raise ValueError(f"two sources are named {s.name!r}; names must be unique")
            seen.add(s.name)
        return self

    def database_url(self, env: Mapping[str, str] | None = None) -> str:
        """The SQLAlchemy URL: HEARKEN_DATABASE_URL, else database.url_env's variable, else database.url; a
        relative SQLite path is taken relative to the config file."""
        env = os.environ if env is None else env
        url_env = self.database.url_env
        url = database_url_from_env(env) or (env.get(url_env) if url_env else None) or self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            rel = url[len(prefix):]
            base = self.path.parent if self.path else Path.cwd()
            url = prefix + str((base / rel).resolve())
        return url

    def members(self, role: str | None = None) -> list[TeamMember]:
        return [m for m in self.team if role is None or m.role == role]

    def resolve_recipients(self, names_or_emails: list[str], fallback_role: str | None = None) -> list[str]:
        """Turn team-member names (or plain addresses) into email addresses; empty = everyone of `fallback_role`."""
        by_name = {m.name.casefold(): m.email for m in self.team}
        if not names_or_emails:
            return [m.email for m in self.members(fallback_role)] if fallback_role else []
        return [by_name.get(n.casefold(), n) for n in names_or_emails]

