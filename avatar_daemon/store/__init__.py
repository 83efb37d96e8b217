"""The store: the only package that speaks SQL, on SQLite (one machine) or PostgreSQL (several)."""

from .contract import (
    LEASE_SECONDS, PUBLISHING, CampaignRow, Clock, Job, Leadership, NewJob, NewPublication, Node, Pick, Publication,
    ResearchJob, RunBasis, RunConflict, SlotTaken, Store, busy, describe, while_busy,
)

__all__ = [
    "LEASE_SECONDS", "PUBLISHING", "CampaignRow", "Clock", "Job", "Leadership", "NewJob", "NewPublication", "Node",
    "Pick", "Publication", "ResearchJob", "RunBasis", "RunConflict", "SlotTaken", "Store", "busy", "describe",
    "while_busy",
]
