"""desk/errors.py: every error desk/ raises on purpose has one root, so the dashboard can catch one thing."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import desk
from desk.errors import HearkenError, PostingError, SourceError, UserError

# raised and caught inside one module, never shown to a person: they stay out of the tree on purpose
# raised and caught inside one module, never shown to a person as such:
INTERNAL = {"desk.notify.smtp.SessionDeadline",  # a platform call's deadline is collectors/net/deadline.py's
            "desk.notify.channels.Final", "desk.notify.channels.Again",  # a receiver's answer, kept on its row
            "desk.api.auth.ApiRefusal"}  # an HTTP answer (401, 429) the API's handler turns it into


def _desk_exceptions() -> dict[str, type[BaseException]]:
    found = {}
    for info in pkgutil.walk_packages(desk.__path__, "desk."):
        if ".migrations" in info.name or info.name.endswith(".__main__"):  # __main__ runs the command
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_every_error_desk_defines_is_a_hearken_error():
    found = _desk_exceptions()
    assert "desk.cases.actions.CaseError" in found and "desk.config.schema.ConfigError" in found  # the walk did find them
    assert INTERNAL <= set(found), f"no longer defined, drop from INTERNAL: {sorted(INTERNAL - set(found))}"
    outside = sorted(name for name, cls in found.items() if name not in INTERNAL and not issubclass(cls, HearkenError))
    assert outside == [], f"these errors are not under desk.errors.HearkenError: {outside}"


def test_each_error_sits_on_its_branch():
    from desk.cases.actions import CaseError
    from desk.config.schema import ConfigError
    from desk.intake.source_state import LeaseLost
    from desk.intake.storing import StoreFailed
    from desk.cases.publishing import CannotPost, ReadOnly, NotPosted, MaybePosted
    from desk.cases.replies import ReplyConflict
    from desk.team.users import NotAllowed, SignInRefused

    for cls in (ConfigError, CaseError, ReplyConflict, NotAllowed, SignInRefused):
        assert issubclass(cls, UserError), cls
    for cls in (LeaseLost, StoreFailed):
        assert issubclass(cls, SourceError), cls
    for cls in (NotPosted, MaybePosted, CannotPost, ReadOnly):
        assert issubclass(cls, PostingError) and not issubclass(cls, UserError), cls
