"""What each figure of the weekly report means: the text printed with every output, and the figures' labels.

The definitions travel with the report (`WeeklyReport.definitions`), so a reader of the HTML, the CSV's
companion JSON or the email sees exactly how each number was counted.
"""

from __future__ import annotations

THEME_SIMILARITY = 0.6

DEFINITIONS: dict[str, str] = {
    "week": "An ISO week in sla.timezone: Monday 00:00 to the following Monday 00:00, local time (DST-correct). "
            "Every figure below counts posts and complaints whose customer post time falls in the week, "
            "measured as of the moment the report was built (generated_at).",
    "mentions": "Mentions: posts collected from the sources (our own accounts excluded) whose posted time "
                "falls in the week.",
    "complaints": "Complaints: cases (one per complaint thread) whose customer_posted_at falls in the week, "
                  "excluding cases staff dismissed as not a complaint.",
    "dismissed": "Dismissed: cases from the week that staff marked as not a complaint; left out of every other figure.",
    "answered_publicly": "Answered publicly: complaints with a public reply by generated_at. A public reply is a reply "
                         "Hearken posted on the platform (replies.kind = 'public', status 'posted'), or a reply recorded "
                         "as made elsewhere (kind 'elsewhere') that has a link and whose 'where' does not say it was "
                         "private (DM, direct, private, phone, call, email, message, chat); for a case with no reply "
                         "recorded at all, cases.first_response_at (a reply of ours found in the thread). "
                         "The first public reply is the earliest of these.",
    "answered_share": "Share answered publicly: answered publicly / complaints.",
    "first_reply_hours": "Time to first public reply (from the post): over complaints answered publicly, "
                         "first public reply time - customer_posted_at, in wall-clock hours. "
                         "Median and 90th percentile.",
    "detect_reply_hours": "Time to first public reply (from detection): over complaints answered publicly, "
                          "first public reply time - the time Hearken collected the post (mentions.detected_at), "
                          "wall-clock hours, 0 when we replied before we collected it. Median and 90th percentile.",
    "resolution_hours": "Time to resolution: over complaints resolved by generated_at (status 'resolved'), "
                        "resolved_at - customer_posted_at, wall-clock hours. Median and 90th percentile.",
    "first_response_sla": "Within first-response SLA: share of complaints with a verdict whose first response "
                          "(cases.first_response_at: the first reply posted by Hearken or recorded as made elsewhere) "
                          "came at or before cases.first_response_due. The due time counts from the customer's post, "
                          "in business hours when sla.business_hours is set. A complaint still unanswered after its due "
                          "time counts as missed; one unanswered and not yet due, or closed without a reply before its "
                          "due time, has no verdict and is left out.",
    "resolution_sla": "Within resolution SLA: the same for resolution: resolved_at at or before cases.resolution_due; "
                      "unresolved past the due time counts as missed; unresolved and not yet due is left out.",
    "still_open": "Still open: complaints whose case is open or replied (not resolved) at generated_at.",
    "change": "Change: this week's figure minus the previous ISO week's, both measured at generated_at "
              "(shares in percentage points, times in hours).",
    "percentiles": "Median and 90th percentile use linear interpolation between the closest ranks: for n sorted "
                   "values x[0..n-1], the p-th percentile is at rank (n-1)*p.",
    "themes": "Recurring themes: the week's complaints grouped by the classifier's embeddings of their text "
              f"(title and body): groups merge while the mean cosine similarity between their members is at least "
              f"{THEME_SIMILARITY} (average linkage). A theme has two or more complaints; its example is the complaint closest to the "
              "centroid; its words are the most common words across its complaints; root causes are the tags staff "
              "gave when resolving them.",
    "sla_clock_minutes": "CSV sla_clock_minutes_to_first_response: minutes the SLA clock ran from the customer's post "
                         "to the first response (business minutes when business hours are set).",
}


FIGURE_LABELS: list[tuple[str, str, str]] = [
    # (attribute, label, unit: n = count, % = share, h = hours)
    ("mentions", "Mentions", "n"),
    ("complaints", "Complaints", "n"),
    ("answered_share", "Answered publicly", "%"),
    ("first_reply_hours_median", "Median time to first public reply (from post)", "h"),
    ("first_reply_hours_p90", "90th percentile time to first public reply (from post)", "h"),
    ("detect_reply_hours_median", "Median time to first public reply (from detection)", "h"),
    ("detect_reply_hours_p90", "90th percentile time to first public reply (from detection)", "h"),
    ("resolution_hours_median", "Median time to resolution", "h"),
    ("first_response_sla_share", "Within first-response SLA", "%"),
    ("resolution_sla_share", "Within resolution SLA", "%"),
    ("still_open", "Cases still open", "n"),
    ("dismissed", "Dismissed (not complaints)", "n"),
]
