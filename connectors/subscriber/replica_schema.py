"""The replica file's tables, and the upgrades that bring an older file up to them."""

from __future__ import annotations

import sqlite3

from events.blocklist_head import EMPTY_DIGEST

# 2: entries record their target, and their cases the rule, facts and site hashes (#16).
# 3: list versions, signed lifts and each partition's head (#18): read again from the start.
SCHEMA_VERSION = "3"
BUSY_TIMEOUT_S = 10.0
CACHE_KIB = 64 * 1024

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    measure TEXT NOT NULL,
    subject BLOB NOT NULL,
    subject_kind TEXT NOT NULL,
    masked_name TEXT NOT NULL,
    department TEXT NOT NULL,
    cases TEXT NOT NULL,
    event_id TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT 'subject',
    kafka_partition INTEGER NOT NULL,
    kafka_offset INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (measure, subject)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lifts (
    measure TEXT NOT NULL,
    subject BLOB NOT NULL,
    version INTEGER NOT NULL,
    kafka_partition INTEGER NOT NULL,
    PRIMARY KEY (measure, subject)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_partition ON entries (measure, kafka_partition);
CREATE TABLE IF NOT EXISTS partitions (
    topic TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    measure TEXT NOT NULL,
    next_offset INTEGER,
    heartbeat_at REAL,
    heartbeat_as_of TEXT,
    held_entries INTEGER NOT NULL DEFAULT 0,
    held_digest TEXT NOT NULL DEFAULT '{EMPTY_DIGEST}',
    PRIMARY KEY (topic, kafka_partition)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    queued_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL,
    queued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS outbox_quarantine (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    queued_at REAL NOT NULL,
    quarantined_at REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks_quarantine (
    seq INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    queued_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    quarantined_at REAL NOT NULL,
    reason TEXT NOT NULL
);
"""
# What the broker or the receiver refused for good (#18) is moved to the *_quarantine
# tables, keeping its seq, instead of blocking its queue for ever: never deleted, never
# sent again until released (Replica.release_quarantined, which puts it back in place).
# Created by the daemon's open (CREATE TABLE IF NOT EXISTS), so older replicas gain them.
QUARANTINES = {
    "events": ("outbox", "outbox_quarantine"),
    "webhooks": ("webhooks", "webhooks_quarantine"),
}


def columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def upgrade_in_place(db: sqlite3.Connection) -> None:
    """Columns and tables of the current schema on a replica written before (then emptied)."""
    if "target" not in columns(db, "entries"):
        db.execute("ALTER TABLE entries ADD COLUMN target TEXT NOT NULL DEFAULT 'subject'")
        db.execute(
            "CREATE TABLE IF NOT EXISTS lifts (measure TEXT NOT NULL, subject BLOB NOT NULL, "
            "version INTEGER NOT NULL, kafka_partition INTEGER NOT NULL, "
            "PRIMARY KEY (measure, subject)) WITHOUT ROWID"
        )
        if "version" not in columns(db, "entries"):
            db.execute("ALTER TABLE entries ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
        if "held_entries" not in columns(db, "partitions"):
            db.execute("ALTER TABLE partitions ADD COLUMN held_entries INTEGER NOT NULL DEFAULT 0")
            db.execute(
                f"ALTER TABLE partitions ADD COLUMN held_digest TEXT NOT NULL "
                f"DEFAULT '{EMPTY_DIGEST}'"
            )
