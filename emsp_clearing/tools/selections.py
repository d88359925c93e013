"""Selections and tables shared by several models, each written once."""

from ..clearing_core.ocpi import DAYS_OF_WEEK

# States of a clearing.dispute.
DISPUTE_STATES = [
    ("open", "Open"),
    ("info", "Information Requested"),
    ("accepted", "Accepted"),
    ("rejected", "Rejected"),
]
# A session's dispute state (clearing.cdr.dispute_state): the state of its latest dispute, or
# "none"; the same keys as DISPUTE_STATES, labelled for a list of sessions.
_CDR_DISPUTE_LABELS = {
    "open": "Disputed",
    "accepted": "Dispute Accepted",
    "rejected": "Dispute Rejected",
}
CDR_DISPUTE_STATES = [("none", "Not Disputed")] + [
    (key, _CDR_DISPUTE_LABELS.get(key, label)) for key, label in DISPUTE_STATES
]
# OCPI DayOfWeek (Monday first, as date.weekday()) and the weekday flags of a price line.
WEEKDAYS = DAYS_OF_WEEK
WEEKDAY_FIELDS = tuple(zip(DAYS_OF_WEEK, (
    "day_mon", "day_tue", "day_wed", "day_thu", "day_fri", "day_sat", "day_sun")))
