"""Hearken's configuration: one YAML file, validated as a whole on load.

config/example.yaml shows every key with a comment. A mistake is reported as
`ConfigError` listing every problem at once, each naming the file, the line,
the key and what was expected. Secrets are never in the YAML: keys ending in
`_env` name the environment variable that holds them.

The rest of Hearken imports the config from here; the parts live beside it:
sections.py (the models and their defaults), lines.py (where a key is
written), rules.py (rules over the whole file), environment.py (the few
things read from the environment).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from collectors import NAMES
from desk.config.environment import SERVED_URL_ENV, config_path_from_env
from desk.config.lines import line_for, line_map
from desk.config.rules import WHOLE_CONFIG_RULES, email_key, is_loopback, local_mode_exposure
from desk.config.sections import (
    AlertRules, Alerts, BusinessHours, ClassifierSettings, Dashboard, Database, HearkenConfig, TeamMember, Replies,
    Report, RunnerSettings, Sla, SlaTargets, Smtp, served_url,
)
from desk.errors import UserError

__all__ = [
    "DEFAULT_CONFIG", "SERVED_URL_ENV", "ConfigError", "Problem", "problem_at", "load_config", "parse_config", "key_location",
    "email_key", "is_loopback", "local_mode_exposure", "served_url", "HearkenConfig", "Alerts", "AlertRules",
    "BusinessHours", "ClassifierSettings", "Dashboard", "Database", "TeamMember", "Replies", "Report", "RunnerSettings", "Sla",
    "SlaTargets", "Smtp",
]

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "example.yaml"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(UserError):
    """The configuration file is missing or wrong. `problems` lists every mistake found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def problem_at(cfg: HearkenConfig, key: tuple[str, ...], message: str) -> Problem:
    """A problem with the key `key` of the file `cfg` was loaded from, at its line."""
    return Problem(str(cfg.path or "<config>"), cfg.line_of(*key), ".".join(key), message)


def _friendly(err: dict[str, Any]) -> str:
    kind, msg = err.get("type", ""), err.get("msg", "")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling against config/example.yaml)"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"unknown source type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return "each source needs a 'type' (" + " or ".join(filter(None, [", ".join(NAMES[:-1]), NAMES[-1]])) + ")"
    msg = msg.removeprefix("Value error, ")
    if "input" in err and kind not in ("missing",) and not isinstance(err["input"], (dict, list)):
        return f"{msg} (got {err['input']!r})"
    return msg


def _clean_loc(loc: tuple) -> tuple:
    # pydantic puts the union member's tag in the location: sources.0.reddit.subreddits
    out: list = []
    for i, part in enumerate(loc):
        if i > 0 and out and out[0] == "sources" and len(out) == 2 and part in NAMES:
            continue
        out.append(part)
    return tuple(out)


def parse_config(text: str, file: str = "<config>") -> HearkenConfig:
    """Validate YAML text. Raises ConfigError naming file, line and key for every problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(file, line, "", f"not valid YAML: {problem}")]) from None
    if data is None:
        raise ConfigError([Problem(file, 1, "", "the file is empty; see config/example.yaml")])
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, 1, "", "expected a mapping of keys (brand:, sources:, ...) at the top")])
    lines = line_map(node) if node is not None else {}
    try:
        cfg = HearkenConfig.model_validate(data)
        cfg._lines = lines
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _clean_loc(tuple(err["loc"]))
            key = ".".join(str(p) for p in loc)
            problems.append(Problem(file, line_for(lines, loc), key, _friendly(err)))
        raise ConfigError(problems) from None
    problems = [Problem(file, line_for(lines, loc), ".".join(loc), message)
                for rule in WHOLE_CONFIG_RULES for loc, message in rule(cfg)]
    if problems:
        raise ConfigError(problems)
    return cfg



def key_location(cfg: HearkenConfig, *path: str | int) -> str:
    """'file:line' of a key in the file `cfg` was loaded from (its parent's line when it is not written)."""
    if cfg.path is None:
        return "the configuration"
    try:
        node = yaml.compose(cfg.path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return str(cfg.path)
    lines = line_map(node) if node is not None else {}
    key = tuple(str(p) for p in path)
    if key not in lines:
        return f"{cfg.path} (not written there: the defaults apply)"
    return f"{cfg.path}:{lines[key]}"


def load_config(path: str | os.PathLike | None = None) -> HearkenConfig:
    """Load and validate a config file (default: $HEARKEN_CONFIG, else config/example.yaml)."""
    path = Path(path or config_path_from_env() or DEFAULT_CONFIG)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), None, "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(str(path), None, "", f"cannot read the file: {exc}")]) from None
    cfg = parse_config(text, str(path))
    cfg.path = path.resolve()
    if os.environ.get(SERVED_URL_ENV):  # set by `hearken up` / `hearken dashboard` for the dashboard they start
        cfg.dashboard.served_at(os.environ[SERVED_URL_ENV])
    return cfg
