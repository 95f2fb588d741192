"""The database tables, as SQLAlchemy 2 models. Schema changes go through Alembic (desk/migrations).

Times are stored timezone-aware UTC (`UtcDateTime`): SQLite keeps them as
naive UTC text, and they come back aware, so nothing downstream ever sees a
naive datetime.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from desk.store.columns import Base, UtcDateTime, now_utc, pack_vector, unpack_vector  # noqa: F401 - read from here too


class MentionRow(Base):
    """Every post a collector returned, once: unique on (platform, external_id)."""

    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("platform", "external_id", name="uq_mentions_platform_external_id"),
        Index("ix_mentions_unclassified", "classified", "id"),
        Index("ix_mentions_thread", "platform", "thread_id"),
        Index("ix_mentions_posted_at", "posted_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(100), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(200), default="")
    author_id: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    posted_at: Mapped[datetime]
    detected_at: Mapped[datetime] = mapped_column(default=now_utc)
    thread_id: Mapped[str | None] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(String(200))
    matched_terms: Mapped[list[Any]] = mapped_column(default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    classified: Mapped[bool] = mapped_column(Boolean, default=False)
    # ISO 639 code from classifier.language ("und": too short or unsure); set when the mention is classified
    language: Mapped[str | None] = mapped_column(String(16))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", use_alter=True, name="fk_mentions_case"), index=True)

    classification: Mapped["Classification | None"] = relationship(back_populates="mention", uselist=False)

    @property
    def text(self) -> str:
        """Title and body together, as the classifier read them (collectors.base.Mention.text)."""
        return f"{self.title}\n\n{self.body}".strip() if self.title else self.body


class Classification(Base):
    __tablename__ = "classifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"), unique=True)
    model_version: Mapped[str] = mapped_column(String(100))
    score: Mapped[float] = mapped_column(Float)
    is_complaint: Mapped[bool] = mapped_column(Boolean)
    severity: Mapped[int | None] = mapped_column(Integer)
    topic: Mapped[str | None] = mapped_column(String(50))
    # complaints only: the model's L2-normalised vector as float16 bytes (pack_vector below)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)

    mention: Mapped[MentionRow] = relationship(back_populates="classification")


CASE_STATUSES = ("open", "replied", "resolved", "dismissed")


class Case(Base):
    """A complaint to answer. The SLA clocks run from the customer's post (`customer_posted_at`)."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_queue", "status", "first_response_due"),
        Index("ix_cases_opened", "opened_at"),
        Index("ix_cases_thread", "platform", "thread_id"),  # a follow-up finds its case by thread
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id"), unique=True)
    platform: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(100))
    thread_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="open")
    severity: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    topic: Mapped[str | None] = mapped_column(String(50))
    assignee: Mapped[str | None] = mapped_column(String(200), index=True)
    customer_posted_at: Mapped[datetime]
    opened_at: Mapped[datetime] = mapped_column(default=now_utc)
    first_response_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolution_note: Mapped[str | None] = mapped_column(Text)
    root_cause: Mapped[str | None] = mapped_column(String(100))
    escalated_to: Mapped[str | None] = mapped_column(String(200))
    escalated_at: Mapped[datetime | None]
    escalation_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=now_utc, onupdate=now_utc)
    version: Mapped[int] = mapped_column(Integer, default=1)

    mention: Mapped[MentionRow] = relationship(foreign_keys=[mention_id])

    __mapper_args__ = {"version_id_col": version}


class Reply(Base):
    """A reply to a case: recorded before the platform call (`pending`), its result after.

    status: posting -> posted | failed (certainly not posted: safe to try again) | unknown (the
    call's outcome was lost: it may be up). Looking for it on the platform holds the row as
    `checking`; not finding it once the grace period is over makes it `not_found`, which still
    never posts again by itself: only a person's "post anyway" (with a reason) sends it again.
    kind: public (posted by Hearken) or elsewhere. `attempted_at` is the row's lease (set when
    a send or a check takes it); `sent_at` is when the latest platform call began.
    """

    __tablename__ = "replies"
    __table_args__ = (Index("ix_replies_external_id", "platform", "external_id"),)  # answers find our reply

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="public")
    platform: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    external_id: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    attempted_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    checked_at: Mapped[datetime | None]
    posted_at: Mapped[datetime | None]


class Event(Base):
    """The audit trail: who did what, when, to which case."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_case", "case_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=now_utc)


class Outbox(Base):
    """An alert to send, written in the same transaction as its cause. `dedupe_key` makes each event alert once.

    `channel` is None for an email (to `recipients`); otherwise the name of the alerts.channels entry it goes
    to (Slack, Teams, a webhook), with `body_text` the JSON body to post and `subject` what the dashboard shows.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    recipients: Mapped[list[Any]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    next_attempt_at: Mapped[datetime] = mapped_column(default=now_utc)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None]
    # per recipient (desk/notify/mailer.py): who the server accepted it for, who it refused for good (address ->
    # reason), and who it may or may not have reached (the line dropped after the whole message was sent)
    delivered_to: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    refused: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    unknown_to: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    channel: Mapped[str | None] = mapped_column(String(100))


class SourceState(Base):
    """Per source: its cursor, health, backoff, lease and read count."""

    __tablename__ = "source_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="new")  # new, ok, failing, auth_failed, disabled, capped
    status_reason: Mapped[str | None] = mapped_column(Text)
    last_poll_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_mention_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None]
    backoff_until: Mapped[datetime | None]
    next_poll_at: Mapped[datetime | None]
    mentions_total: Mapped[int] = mapped_column(Integer, default=0)
    reads_month: Mapped[str | None] = mapped_column(String(7))
    reads_count: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]


class RunnerState(Base):
    """One `hearken run` process as it last reported itself: the dashboard's banner reads these.

    `seen_at` moves every few seconds while the runner can write to the database; a row whose runner
    did not stop (`stopped_at` empty) and has not been seen for a while is a runner that cannot reach
    the database or died. `outage` describes the last time it could not use the database, once it can again.
    """

    __tablename__ = "runners"

    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=now_utc)
    seen_at: Mapped[datetime] = mapped_column(default=now_utc)
    stopped_at: Mapped[datetime | None]
    outage: Mapped[str | None] = mapped_column(Text)
    outage_ended_at: Mapped[datetime | None]


class SetAsideItem(Base):
    """An item a platform sent that could not be read or stored, kept with its raw payload and the reason.

    The rest of its page is stored and the source's cursor moves past it, so one hostile post never
    stops a source; this table is where a person finds what was left out (the Sources page counts it).
    `item_key` (a hash of the external id, or of the payload when there is none) makes a re-read
    item update its row instead of adding another.
    """

    __tablename__ = "set_aside"
    __table_args__ = (
        UniqueConstraint("source", "item_key", name="uq_set_aside_source_item"),
        Index("ix_set_aside_source_open", "source", "cleared_at", "last_seen_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(20))
    item_key: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)  # as the platform sent it, capped (collectors.clean.RAW_LIMIT)
    first_seen_at: Mapped[datetime] = mapped_column(default=now_utc)
    last_seen_at: Mapped[datetime] = mapped_column(default=now_utc)
    times_seen: Mapped[int] = mapped_column(Integer, default=1)
    cleared_at: Mapped[datetime | None]
    cleared_by: Mapped[str | None] = mapped_column(String(200))


class Label(Base):
    """A staff correction of the classifier: `hearken export-labels` writes them for `hearken train --extra-labels`."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id"), index=True)
    is_complaint: Mapped[bool] = mapped_column(Boolean)
    severity: Mapped[int | None] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class User(Base):
    """A team member as the dashboard knows them. After their first verified OIDC sign-in they are bound
    to that provider's (issuer, subject): later sign-ins match on it, never on the email again."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc_identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="agent")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    last_seen_at: Mapped[datetime | None]
    oidc_issuer: Mapped[str | None] = mapped_column(String(500))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))
    bound_at: Mapped[datetime | None]


class DashboardSession(Base):
    """One OIDC sign-in, kept on the server: the browser's cookie is only honoured while its row is live.

    `id` is a hash of the signed-in identity's claims (unique per sign-in: they carry its nonce and
    issue time). Signing out or leaving the team sets `ended_at` on every row of that person.
    """

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    last_seen_at: Mapped[datetime] = mapped_column(default=now_utc)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(200))


class ApiToken(Base):
    """A personal API token (desk/api/tokens.py): only the SHA-256 of its secret is kept; it acts as its owner."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    shown_prefix: Mapped[str] = mapped_column(String(16))  # "hk_" and the secret's first characters
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class ApiCall(Base):
    """One call to the HTTP API, answered or refused: who (the token and its owner), what, and the status."""

    __tablename__ = "api_calls"
    __table_args__ = (Index("ix_api_calls_token_at", "token_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"))
    actor: Mapped[str | None] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    status: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=now_utc)
