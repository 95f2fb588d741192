"""What every table shares: the declarative base, the UTC time column, and packed embedding vectors."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlalchemy.orm import DeclarativeBase


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def pack_vector(v) -> bytes:
    """A stored embedding (Classification.embedding): float16 bytes (768 for 384 dimensions)."""
    import numpy as np

    return np.asarray(v, dtype=np.float16).tobytes()


def unpack_vector(b: bytes):
    import numpy as np

    return np.frombuffer(b, dtype=np.float16).astype(np.float32)


class UtcDateTime(TypeDecorator):
    """A DateTime that refuses naive values and always returns aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}
