"""Sources: the email outbox, then each source's state as the runner last recorded it.

Every state is said in a word (OK, FAILING, DISABLED, ...) in a box of its own kind, never by an icon or
a colour alone; each error is printed once; what a person must do is said next to it.
"""

from __future__ import annotations

import streamlit as st

from dashboard import components as ui
from desk.notify import outbox
from desk.intake import set_aside
from desk.intake import source_warnings
from desk.intake.languages import set_aside_by_language
from desk.config.schema import key_location
from desk.notify.channel_health import LABELS, channel_delivery, channel_trouble
from desk.notify.health import describe_problem, email_trouble
from desk.store.models import now_utc
from desk.cases.publishing import can_post
from desk.intake.sources import SourceHealth, source_health

actor = ui.require_actor()
cfg = ui.config()
store = ui.store()
now = now_utc()

st.title("Sources")
ui.show_flash("sources")

# --- the outbox -------------------------------------------------------------------------------------------

with st.container(border=True, key="outbox"):
    st.subheader("Email alerts (outbox)")
    smtp = cfg.alerts.smtp
    st.caption(f"Sent through alerts.smtp: {ui.md_escape(smtp.host)}:{smtp.port}, security {smtp.security} "
               f"({ui.md_escape(key_location(cfg, 'alerts', 'smtp'))})")
    box = st.container(key="outbox-state")
    ob = outbox.outbox_health(store)
    trouble = email_trouble(store, cfg, now=now)
    if not cfg.alerts.enabled:
        box.info("**OFF**: alerts.enabled is false; no alert emails are written.", icon=":material/mail:")
    elif trouble:
        box.error(f"**NOT DELIVERING**: {ui.md_escape(trouble.headline)}", icon=":material/error:")
    elif ob["pending"]:  # not delivered yet, and nothing has failed: say no more than that
        box.info(f"**SENDING**: {ob['pending']} email(s) waiting for the runner's next pass (every 15 seconds); "
                 "none has failed" + (f"; last email sent {ui.fmt_time(ob['last_sent_at'])}." if ob["last_sent_at"]
                                      else ", none has been sent yet."), icon=":material/schedule_send:")
    elif ob["last_sent_at"]:
        box.success(f"**DELIVERING**: nothing is waiting; last email sent {ui.fmt_time(ob['last_sent_at'])}.",
                    icon=":material/check_circle:")
    else:
        box.info("**NOTHING SENT YET**: no alert has needed an email so far.", icon=":material/mail:")
    a, b, c, d, e = st.columns(5)
    a.metric("Waiting to send", ob["pending"])
    b.metric("Retrying", ob["retrying"])
    c.metric("Failed for good", ob["failed"])
    d.metric("May not have arrived", ob["unknown"],
             help="The SMTP server hung up after receiving the whole email, so it may hold it. Hearken does not "
                  "send it again by itself (nobody gets an alert twice); Retry sends it again.")
    e.metric("Sent", ob["sent"])
    last = ob["last_error"]
    if last:
        nxt = (f"next try {ui.fmt_time(last['next_attempt_at'])}" if last["status"] == "pending"
               else f"status {last['status']}")
        st.text(f"Last error (email #{last['id']}, {last['attempts']} attempt(s), {nxt}): {last['error']}")
    if ob["recent_failures"]:
        st.dataframe([{"email": f"#{r['id']}", "kind": r["kind"].replace("_", " "), "status": r["status"],
                       "attempts": r["attempts"],
                       "next try": ui.fmt_time(r["next_attempt_at"]) if r["status"] == "pending" else "—",
                       "to": ", ".join(r["recipients"]),
                       "refused for": ", ".join(r["refused"]) or "—",
                       "may not have reached": ", ".join(r["unknown_to"]) or "—",
                       "subject": r["subject"], "error": r["error"]}
                      for r in ob["recent_failures"]], hide_index=True, width="stretch", key="outbox-failures")
    if (ob["failed"] or ob["unknown"]) and actor.at_least("manager") \
            and st.button("Retry failed emails" + (" and those that may not have arrived" if ob["unknown"] else ""),
                          key="outbox-retry"):
        n = outbox.retry_failed(store)
        ui.flash("sources", "success", f"{n} failed email(s) queued again; the runner sends them within a minute.")
        st.rerun()

# --- Slack, Teams and webhook channels -------------------------------------------------------------------

if cfg.alerts.channels:
    with st.container(border=True, key="channels"):
        st.subheader("Alert channels (Slack, Teams, webhooks)")
        st.caption(f"alerts.channels and alerts.routes ({ui.md_escape(key_location(cfg, 'alerts', 'channels'))})")
        deliveries = channel_delivery(store, cfg, now=now)
        troubled = {t.name: t for t in channel_trouble(store, cfg, now=now, rows=deliveries)}
        for d in deliveries:
            label = f"{LABELS.get(d.type, 'Channel')} {d.name}"
            box = st.container(key=f"channel-{d.name}")
            if d.name in troubled:
                t = troubled[d.name]
                box.error(f"**NOT DELIVERING**: {ui.md_escape(t.headline)}"
                          + (f"  \n{ui.md_escape(t.detail)}" if t.detail else "") + f"  \nFix: {ui.md_escape(t.fix)}",
                          icon=":material/error:")
            elif d.pending:
                box.info(f"**SENDING**: {label}: {d.pending} waiting for the runner (every few seconds).",
                         icon=":material/schedule_send:")
            elif d.last_sent_at:
                box.success(f"**DELIVERING**: {label}: last message {ui.fmt_time(d.last_sent_at)}, {d.sent} sent.",
                            icon=":material/check_circle:")
            else:
                box.info(f"**NOTHING SENT YET**: {label}.", icon=":material/forum:")
        if any(d.failed_recently for d in deliveries) and actor.at_least("manager") \
                and st.button("Retry failed channel messages", key="channels-retry"):
            n = outbox.retry_failed(store, channels=True)
            ui.flash("sources", "success", f"{n} failed message(s) queued again; the runner sends them within seconds.")
            st.rerun()

# --- each source ------------------------------------------------------------------------------------------

# state -> (word a person reads, kind of box)
STATES = {"ok": ("OK", "success"), "new": ("NOT POLLED YET", "info"), "failing": ("FAILING", "error"),
          "auth_failed": ("SIGN-IN REFUSED", "error"), "capped": ("PAUSED: READ CAP REACHED", "warning"),
          "disabled": ("DISABLED", "warning"), "removed from config": ("REMOVED FROM THE CONFIG", "info")}
ICONS = {"success": ":material/check_circle:", "info": ":material/info:", "warning": ":material/warning:",
         "error": ":material/error:"}


def state_of(h: SourceHealth) -> tuple[str, str, str]:
    """(word, box kind, sentence) for one source."""
    problem = describe_problem(h, cfg, now) if h.enabled else None
    if not h.enabled and h.status != "removed from config":
        return "OFF", "info", "Switched off in the config (enabled: false)."
    if h.status == "disabled":
        return "DISABLED: CANNOT START", "warning", f"{h.status_reason or 'Its settings are incomplete.'}"
    if h.status == "failing":
        return "FAILING", "error", problem[0] if problem else "The last poll failed."
    if h.status == "auth_failed":
        return "SIGN-IN REFUSED", "error", "The platform refused this source's credentials."
    if problem:  # silent, or not polled for a long time
        word = "SILENT" if "silent" in problem[0] else "NOT POLLED"
        return word, "warning", problem[0]
    word, kind = STATES.get(h.status, (h.status.upper(), "info"))
    if h.status == "new":
        return word, kind, "Waiting for its first poll by 'hearken run' (which polls every enabled source)."
    if h.status == "ok":
        return word, kind, (f"Polling every {h.interval_seconds:g}s; last success {ui.fmt_time(h.last_success_at)}."
                            if h.interval_seconds else f"Last success {ui.fmt_time(h.last_success_at)}.")
    return word, kind, h.status_reason or ""


st.subheader("Each source, as the runner last saw it")
rows = source_health(store, cfg, now=now)
aside = set_aside.summary(store)
warned = source_warnings.recent(store, now=now)
dropped = set_aside_by_language(store)
if not rows:
    st.info("No sources are configured. Add some under sources: in the configuration.")
names = [s.name for s in cfg.sources]
for h in rows:
    word, kind, sentence = state_of(h)
    with st.container(border=True, key=f"source-{h.name}"):
        st.markdown(f"#### {ui.md_escape(h.name)} · {h.type} · {word}"
                    + (" · read-only (never posts)" if h.read_only else ""))
        getattr(st, kind)(f"**{word}**: {ui.md_escape(sentence)}", icon=ICONS[kind])
        waiting_for_person = h.status in ("disabled", "auth_failed") or not h.enabled
        if not waiting_for_person:
            a, b, c, d = st.columns(4)
            a.metric("Last success", ui.fmt_time(h.last_success_at))
            b.metric("Last new mention", ui.fmt_time(h.last_mention_at))
            c.metric("Mentions stored", h.mentions_total)
            if h.status == "failing":
                d.metric("Failed polls in a row", h.consecutive_failures)
            else:
                d.metric("Next poll", ui.fmt_time(h.next_poll_at))
            if h.backing_off:
                st.caption(f"Waiting until {ui.fmt_time(h.backoff_until)} before the next try"
                           + (" (the platform asked us to)" if h.status == "capped" else ""))
        if h.last_error and h.status in ("failing", "auth_failed"):
            st.text(f"Last error ({ui.fmt_time(h.last_error_at)}): {h.last_error}")
        elif h.status_reason and h.status_reason != sentence and h.status not in ("ok", "disabled"):
            st.text(f"Note: {h.status_reason}")
        if h.name in names:
            st.caption(f"Settings: sources[{names.index(h.name)}] at "
                       f"{ui.md_escape(key_location(cfg, 'sources', names.index(h.name)))}")
        if h.enabled:
            can, why = can_post(cfg, h.name)
            st.caption("Replies: posted publicly through this source" if can
                       else f"Replies: off · {ui.md_escape(why)}")
        for w in warned.get(h.name, [])[:3]:
            st.warning(f"**WARNING** ({ui.fmt_time(w.at)}): {ui.md_escape(w.text)}", icon=ICONS["warning"])
        if h.name in warned and actor.at_least("manager") and st.button("Mark the warnings as looked at",
                                                                        key=f"warnings-seen-{h.name}"):
            source_warnings.mark_seen(store, h.name, actor.name)
            ui.flash("sources", "success", f"The warnings of {h.name} were marked as looked at.")
            st.rerun()
        if h.name in aside:
            st.warning(ui.md_escape(aside[h.name].line()), icon=ICONS["warning"])
            with st.expander("What was set aside, and why"):
                st.dataframe([{"item": i.external_id or "(no id)", "reason": i.reason, "seen": ui.fmt_time(i.last_seen_at),
                               "times": i.times_seen, "as the platform sent it": i.raw[:500]}
                              for i in set_aside.items(store, h.name, limit=50)],
                             hide_index=True, width="stretch", key=f"aside-{h.name}")
                if actor.at_least("manager") and st.button("Mark these as looked at", key=f"aside-clear-{h.name}"):
                    n = set_aside.clear(store, h.name, actor.name)
                    ui.flash("sources", "success", f"{n} set-aside item(s) of {h.name} marked as looked at.")
                    st.rerun()
        if h.name in dropped:
            st.info(ui.md_escape(dropped[h.name].line()), icon=":material/translate:")
            with st.expander("Not scored: the newest of them"):
                st.dataframe([{"language": lang, "author": author, "text": text[:300]}
                              for lang, author, text in dropped[h.name].latest],
                             hide_index=True, width="stretch", key=f"languages-{h.name}")
        if h.read_cap is not None:
            used = h.budget_used or 0.0
            st.progress(min(used, 1.0), text=f"{h.platform_label} reads this month: {h.reads_this_month or 0} of {h.read_cap}")
