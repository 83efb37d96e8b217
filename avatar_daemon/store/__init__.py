"""The store: the only package that speaks SQL, on SQLite (one machine) or PostgreSQL (several)."""

from .contract import (
    LEASE_SECONDS, CampaignRow, Clock, Job, Leadership, NewJob, Node, Pick, ResearchJob, RunBasis, RunConflict,
    SlotTaken, Store, busy, describe, while_busy,
)
from .postgres import PostgresStore
from .sqlite import SqliteStore

__all__ = [
    "LEASE_SECONDS", "CampaignRow", "Clock", "Job", "Leadership", "NewJob", "Node", "Pick", "ResearchJob", "RunBasis",
    "RunConflict", "SlotTaken", "Store", "busy", "describe", "while_busy", "PostgresStore", "SqliteStore",
]
