"""Rules over the whole, validated config that no single key can check (each returns (key path, message)
pairs, which the loader turns into problems naming file and line), and the helpers they share with the CLI
and the dashboard: is an address loopback, may a dashboard without sign-in listen there, one person's email."""

from __future__ import annotations

from desk.config.sections import Dashboard, HearkenConfig


LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """True when `host` listens only on this machine (127.0.0.0/8, ::1, localhost); '' and 0.0.0.0 are every address."""
    import ipaddress

    host = (host or "").strip().strip("[]")
    if host.casefold() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_mode_exposure(dashboard: "Dashboard", host: str | None = None) -> str | None:
    """Why a dashboard without sign-in must not listen on `host` (default dashboard.host), or None when it may."""
    host = dashboard.host if host is None else host
    if dashboard.auth != "local" or is_loopback(host) or dashboard.insecure_local_on_network:
        return None
    return (f"host: {host}, auth: local would let everyone who can reach {host or 'this machine'} act as the "
            "local user (an admin) and post public replies as the brand; use host: 127.0.0.1, or auth: oidc "
            "to sign people in (README 'Sign-in and roles'), or set dashboard.insecure_local_on_network: true "
            "if the network in front of it is yours alone")


def _local_mode_on_loopback(cfg: HearkenConfig) -> list[tuple[tuple[str, ...], str]]:
    why = local_mode_exposure(cfg.dashboard)
    return [(("dashboard", "host"), why)] if why else []


def email_key(email: str) -> str:
    """What two addresses must share to be one person's: the address with its ASCII letters in lower case and
    nothing else changed. Not casefold() or lower(), which make "ß" "ss" and the Kelvin sign "k": a provider
    may verify alex@straße.example (another domain) or a Unicode mailbox name, and neither is the member's."""
    return str(email).strip().translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _distinct_members(cfg: HearkenConfig) -> list[tuple[tuple[str, ...], str]]:
    """Names are looked up in any letter case (Assign, alert recipients) and addresses matched in any ASCII
    case (sign-in, the users table): two entries that differ in nothing else would be mixed up."""
    out: list[tuple[tuple[str, ...], str]] = []
    names: dict[str, tuple[int, str]] = {}
    emails: dict[str, tuple[int, str]] = {}
    for i, m in enumerate(cfg.team):
        first = names.setdefault(m.name.casefold(), (i, m.name))
        if first[0] != i:
            out.append((("team", str(i), "name"), f"{m.name!r} is the name of team.{first[0]} ({first[1]}) "
                        "too; names are looked up in any letter case, so each member needs a name of their own"))
        first = emails.setdefault(email_key(m.email), (i, m.name))
        if first[0] != i:
            out.append((("team", str(i), "email"), f"{m.email!r} is the address of team.{first[0]} ({first[1]}) "
                        "too; addresses are matched in any letter case, so each member needs one of their own"))
    return out


def _recipients_name_someone(cfg: HearkenConfig) -> list[tuple[tuple[str, ...], str]]:
    """An alert recipient is a team member's name or an address; anything else reaches nobody, silently."""
    names = {m.name.casefold() for m in cfg.team}
    out: list[tuple[tuple[str, ...], str]] = []
    lists = [(("alerts", "rules", key), getattr(cfg.alerts.rules, key))
             for key in ("severe_recipients", "escalation_managers", "source_recipients", "digest_recipients")]
    lists.append((("report", "recipients"), cfg.report.recipients))
    for key, entries in lists:
        for i, entry in enumerate(entries):
            if "@" not in entry and entry.strip().casefold() not in names:
                known = ", ".join(m.name for m in cfg.team) or "none"
                out.append(((*key, str(i)), f"{entry!r} is neither a member of team: nor an email address, so "
                            f"these emails would go to nobody (team members: {known})"))
    return out


def _local_user_is_on_the_team(cfg: HearkenConfig) -> list[tuple[tuple[str, ...], str]]:
    user = cfg.dashboard.local_user
    if user is None or any(m.name.casefold() == user.casefold() for m in cfg.team):
        return []
    known = ", ".join(m.name for m in cfg.team) or "none"
    return [(("dashboard", "local_user"), f"{user!r} is not a member of team: (members: {known}); the dashboard "
             "acts as this person in local mode")]


WHOLE_CONFIG_RULES = [_local_mode_on_loopback, _distinct_members, _recipients_name_someone,
                      _local_user_is_on_the_team]

