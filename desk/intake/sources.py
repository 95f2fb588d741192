"""Source health for the Sources page: each configured source with what the runner last recorded for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

import collectors

from desk.config.schema import HearkenConfig
from desk.store.db import Store
from desk.store.models import SourceState, now_utc
from desk.periods import month_key


@dataclass(frozen=True)
class SourceHealth:
    name: str
    type: str
    enabled: bool
    read_only: bool
    status: str  # new, ok, failing, auth_failed, disabled, capped, or "not configured" when it has no state yet
    status_reason: str | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    backoff_until: datetime | None
    next_poll_at: datetime | None
    mentions_total: int
    last_mention_at: datetime | None
    reads_this_month: int | None  # sources on a platform with a monthly read cap: posts read this calendar month
    read_cap: int | None
    platform_label: str = ""
    failing_since: datetime | None = None
    interval_seconds: float | None = None

    @property
    def backing_off(self) -> bool:
        return self.backoff_until is not None and self.backoff_until > now_utc()

    @property
    def budget_used(self) -> float | None:
        if self.read_cap is None or self.reads_this_month is None or not self.read_cap:
            return None
        return self.reads_this_month / self.read_cap


def source_health(store: Store, cfg: HearkenConfig, *, now: datetime | None = None) -> list[SourceHealth]:
    """One row per configured source (and per source that has state but has left the config)."""
    now = now or now_utc()
    with store.session() as s:
        states = {st.name: st for st in s.scalars(select(SourceState))}
        s.expunge_all()
    out: list[SourceHealth] = []
    seen: set[str] = set()
    for src in cfg.sources:
        seen.add(src.name)
        out.append(_row(src.name, src.type, src.enabled, src.read_only, states.get(src.name),
                        _read_cap(src), now, interval=src.interval_seconds))
    for name, st in states.items():
        if name not in seen:
            out.append(_row(name, st.platform, False, True, st, None, now, gone=True))
    return out


def _read_cap(src) -> int | None:
    """The source's monthly read cap, as its platform reads it from the source's settings (None: no cap)."""
    return collectors.platform(src.type).read_cap(src) if src.type in collectors.PLATFORMS else None


def _label(type_: str) -> str:
    return collectors.PLATFORMS[type_].label if type_ in collectors.PLATFORMS else type_


def _row(name: str, type_: str, enabled: bool, read_only: bool, st: SourceState | None, cap: int | None,
         now: datetime, *, gone: bool = False, interval: float | None = None) -> SourceHealth:
    reads = None
    if st is not None and (cap is not None or (gone and st.reads_month)):
        reads = st.reads_count if st.reads_month == month_key(now) else 0
    status = "removed from config" if gone else ("disabled" if not enabled else (st.status if st else "new"))
    return SourceHealth(
        name=name, type=type_, enabled=enabled, read_only=read_only, status=status,
        status_reason=st.status_reason if st else None,
        last_poll_at=st.last_poll_at if st else None, last_success_at=st.last_success_at if st else None,
        last_error=st.last_error if st else None, last_error_at=st.last_error_at if st else None,
        consecutive_failures=st.consecutive_failures if st else 0,
        backoff_until=st.backoff_until if st else None, next_poll_at=st.next_poll_at if st else None,
        mentions_total=st.mentions_total if st else 0, last_mention_at=st.last_mention_at if st else None,
        reads_this_month=reads, read_cap=cap, platform_label=_label(type_),
        failing_since=st.failing_since if st else None, interval_seconds=interval)
