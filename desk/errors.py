"""The root of every error desk/ raises on purpose, so a caller can choose the level to catch::

    HearkenError                 Hearken refused or failed at something; str(exc) is one line a person can act on
     +-- UserError               what a person asked for, or wrote in the config, cannot be done as it stands
     |    +-- ConfigError        (desk.config.schema) the config file is missing or wrong; each problem names file, line, key
     |    +-- NotAllowed         (desk.team.users) the member's role does not allow the action
     |    +-- SignInRefused      (desk.team.users) this sign-in does not let its holder in
     |    +-- CaseError          (desk.cases.actions) the action does not fit the case as it is now
     |    |    +-- CaseNotFound
     |    |    +-- ReplyConflict (desk.cases.replies) posting now could make a second public reply
     |    |    +-- PlaceholderError (desk.cases.templates) the reply holds a {word} Hearken does not fill in
     |    +-- PortError          (desk.cli.serve) the dashboard cannot listen where it was told to
     |    +-- SmtpSetupError     (desk.notify.smtp) the SMTP settings cannot work as they are
     |    +-- WeekError          (desk.periods) not an ISO week
     |    +-- ReportError        (desk.reports.weekly) a report that cannot be made as asked (a format it lacks)
     +-- SourceError             a poll's result could not be kept
     |    +-- LeaseLost          (desk.intake.source_state) another process took the source over meanwhile
     |    +-- StoreFailed        (desk.intake.storing) the database refused the whole poll
     +-- PostingError            a public reply could not be posted
          +-- PostFailed         (desk.cases.publishing) the subclass says whether it went out: NotPosted, MaybePosted,
                                 CannotPost, ReadOnly

The dashboard catches `HearkenError` in one place (`dashboard.components.refusals`) and shows the message;
anything else is a bug and surfaces as one.

What a platform package raises while reading or posting (`collectors.errors.PlatformError`) is not in this
tree: collectors/ imports nothing of desk/. The runner records those on the source's state, and a publisher
turns them into a `PostFailed` before they reach a person.
"""

from __future__ import annotations


class HearkenError(Exception):
    """Something Hearken refused or could not do; the message says what, in one line."""


class UserError(HearkenError):
    """A request or a setting that cannot work as it stands; changing it (not retrying) is the fix."""


class SourceError(HearkenError):
    """A poll of a source could not be kept; the source is polled again later."""


class PostingError(HearkenError):
    """A public reply could not be posted (or it is not known whether it was)."""
