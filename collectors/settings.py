"""The keys every source has under `sources:` in the YAML; each platform's model adds its own.

A platform's settings model (collectors/<platform>/settings.py) subclasses
`SourceBase` and fixes `type`. desk/config/schema.py validates the whole file, `type`
picking the model from the registry (collectors/__init__.py). Secrets never
appear here: a field ending in `_env` names the environment variable that
holds the secret.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SourceBase(BaseModel):
    """Keys every source has."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Unique name of this source, shown on the dashboard.")
    enabled: bool = Field(True, description="Set false to stop polling this source without deleting it.")
    interval_seconds: float = Field(300, gt=0, description="How often to poll, before jitter.")
    read_only: bool = Field(False, description="Collect, but never post replies through this source.")
    terms: list[str] = Field(default_factory=list, description="Extra terms for this source only, added to brand.terms.")
    poll_deadline_seconds: float = Field(120, gt=0, description="A poll still running after this long is abandoned and recorded as a failure.")
    request_deadline_seconds: float = Field(30, gt=0, description="Wall-clock limit of one request to the platform, redirects included.")
    max_response_bytes: int = Field(10_000_000, ge=1024, description="Stop reading an answer larger than this many bytes (after decompression).")

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("a source needs a non-empty name")
        return v

