"""The connector's backoff is the one in events/backoff.py (shipped in its distribution too),
kept importable here for the connector's modules."""

from __future__ import annotations

from events.backoff import Backoff

__all__ = ["Backoff"]
