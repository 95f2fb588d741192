"""The sign-in settings `dashboard.auth: oidc` needs, checked before the dashboard starts: Streamlit's
secrets.toml has a complete [auth] section, a cookie secret nobody can guess, and a redirect URI on the
dashboard's own address."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from desk.config.schema import HearkenConfig, Problem

SIGN_IN_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")


def secrets_files() -> list[Path]:
    """Where Streamlit reads secrets.toml, in its order: its `secrets.files` option where the user's
    ~/.streamlit/config.toml or the working directory's .streamlit/config.toml sets it (the later file wins),
    else its default, ~/.streamlit/secrets.toml then .streamlit/secrets.toml. Found from those files as
    Streamlit reads them, without importing Streamlit (desk/ never does); a config.toml that cannot be read
    is passed over."""
    folders = [Path.home() / ".streamlit", Path.cwd() / ".streamlit"]
    files = [folder / "secrets.toml" for folder in folders]
    for config in dict.fromkeys(folder / "config.toml" for folder in folders):
        try:
            section = tomllib.loads(config.read_text(encoding="utf-8")).get("secrets")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        option = section.get("files") if isinstance(section, dict) else None
        if isinstance(option, str):
            option = [option]
        if isinstance(option, list) and option:
            files = [Path(str(p)).expanduser() for p in option]
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
