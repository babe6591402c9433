"""Answering checks from the replica: the hot path of the connector.

Membership lives in memory (per measure, a set of 32-byte subject digests), so the
common answer, "clear", costs an ID validation, one HMAC and one set lookup, with no
SQLite I/O; only a listed subject's cases are read from the file. The watermark per
measure is kept in memory too, updated by the consumer right after each commit.

A measure held against a site (supply) answers for the subject AT the site the check
names: blocked when one of its cases' site hashes is among the site's, else clear with
`blocked_elsewhere` (and nothing about the other site). The site is hashed only for a
listed subject, so a clear check costs what it did. A measure held against the subject
(loans) ignores the site: blocked wherever the subject asks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Container, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from connectors.subscriber.errors import ConfigError, InvalidInput
from connectors.subscriber.export import write_csv
from connectors.subscriber.freshness import Freshness
from connectors.subscriber.index import BlockIndex
from connectors.subscriber.replica import Replica
from connectors.subscriber.results import Blocked, CheckResult, Clear, Stale
from connectors.subscriber.subjects import SubjectIds
from events.catalogue import Target, load_catalogue
from events.privacy import MAX_SITE_CHARS
from events.topics import blocklist_topic

Clock = Callable[[], float]
# A check's `site` is a code or an address: longer is not a site (events.privacy agrees).


class Check(Protocol):
    def __call__(self, measure: str, subject: str, site: str | None = None) -> CheckResult: ...


def held_against_sites(measures: tuple[str, ...]) -> frozenset[str]:
    """The measures whose catalogue target is a site: a check of one must name the site."""
    known = load_catalogue().measures()
    return frozenset(m for m in measures if m in known and known[m].targets is Target.site)


def iso_time(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def keyring_id(ids: Mapping[str, SubjectIds]) -> str:
    """What the replica records as the keys it was built under: each measure's key id."""
    return ",".join(f"{measure}:{ids[measure].key_id}" for measure in sorted(ids))


class _OnDisk:
    """Membership read from the replica per lookup: for one-shot checks (the CLI), where
    loading a million digests would cost more than the single query it saves."""

    def __init__(self, view: BlocklistView, measure: str) -> None:
        self._view = view
        self._measure = measure

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, bytes) and self._view.replica().contains(self._measure, digest)


class BlocklistView:
    """Checks, health and CSV export over one replica file; safe to call from any thread."""

    def __init__(
        self,
        replica_path: Path,
        ids: Mapping[str, SubjectIds],
        measures: tuple[str, ...] | None = None,
        freshness_bound: float = 30.0,
        *,
        preload: bool = True,
        clock: Clock = time.time,
    ) -> None:
        self.replica_path = replica_path
        self.bound = float(freshness_bound)
        self._clock = clock
        self._local = threading.local()
        replica = self.replica()
        meta = replica.meta()
        self.measures: tuple[str, ...] = measures if measures is not None else replica.measures()
        if not self.measures:
            raise ConfigError("replica", f"{replica_path} serves no measure yet")
        missing = [m for m in self.measures if m not in ids]
        if missing:
            raise ConfigError("subject_key", f"no subject key for measure {missing[0]!r}")
        # One key per measure (events.subject_keys): a list's hashes confirm nothing on
        # another list.
        self._ids = {m: ids[m] for m in self.measures}
        self.key_id = keyring_id(self._ids)
        if meta.get("key_id") not in (None, self.key_id):
            raise ConfigError(
                "subject_key",
                f"the replica {replica_path} was built under subject keys {meta['key_id']}, "
                f"these keys are {self.key_id}",
            )
        self.index = BlockIndex(self.measures, self.bound, held_against_sites(self.measures))
        self._hot = self.index.hot  # the same dict, looked up once per check
        self.check = self._checker()
        self._preload = preload
        for measure in self.measures:
            self.reload(measure)

    def replica(self) -> Replica:
        """This thread's connection to the replica (SQLite connections are per thread)."""
        replica: Replica | None = getattr(self._local, "replica", None)
        if replica is None:
            replica = Replica.open(self.replica_path)
            self._local.replica = replica
        return replica

    def reload(self, measure: str) -> None:
        """(Re)read one measure's heartbeats and members from the replica."""
        self.reload_freshness(measure)
        members: Container[bytes] = (
            self.replica().members(measure) if self._preload else _OnDisk(self, measure)
        )
        self.index.load_members(measure, members)

    def reload_freshness(self, measure: str) -> None:
        """(Re)read one measure's partitions and heartbeats, e.g. after a new partition."""
        heartbeats: dict[int, float | None] = {}
        partitions = set(range(blocklist_topic(measure).partitions))
        for state in self.replica().partitions():
            if state.measure == measure:
                partitions.add(state.partition)
                heartbeats[state.partition] = state.heartbeat_at
        self.index.load_heartbeats(measure, heartbeats, partitions)

    # -- the hot path -----------------------------------------------------------------

    check: Check
    """Blocked, clear or stale for a raw USCC or resident ID number, at `site` where the
    measure is held against sites: `check(measure, id, site)`.

    Raises InvalidInput naming `measure` (not served here), `site` (missing for a measure
    held against sites, or not a site) or `subject` (not a valid ID, and why). Never
    answers clear when the watermark is missing or too old.
    """

    def _checker(self) -> Check:
        """`check` as a closure over what it reads: on a path of about a microsecond, each
        attribute lookup on `self` costs a few percent."""
        hot_of, clock = self._hot.get, self._clock
        digest_of_measure = {m: ids.digest_of for m, ids in self._ids.items()}

        def check(measure: str, subject: str, site: str | None = None) -> CheckResult:
            hot = hot_of(measure)
            if hot is None:
                raise self.unserved(measure)
            members, deadline, clear, by_site = hot
            if not by_site:
                site = None  # held against the subject: wherever it asks
            elif not site or site.isspace() or len(site) > MAX_SITE_CHARS:
                raise self.bad_site(measure, site)
            digest = digest_of_measure[measure](subject)
            if clock() > deadline:  # freshness.is_stale, with `mark + bound` precomputed
                return self._stale(measure, digest, members, site)
            if digest in members:
                return self._listed(measure, digest, site) or clear
            return clear

        return check

    def _listed(self, measure: str, digest: bytes, site: str | None) -> Blocked | Clear | None:
        """A listed subject's answer: its cases at `site` (all of them without one)."""
        blocked = self.replica().blocked(measure, digest)
        if blocked is None or site is None or blocked.target is not Target.site:
            return blocked  # no site to match: an entry held against sites blocks (fail closed)
        here = self._ids[measure].site_hashes(site)
        cases = tuple(case for case in blocked.cases if case.held_at(here))
        if cases:
            return replace(blocked, cases=cases)
        return self.index.elsewhere(measure)

    def _stale(
        self, measure: str, digest: bytes, members: Container[bytes], site: str | None
    ) -> Stale:
        mark = self.index.watermark(measure)
        last_known: Blocked | Clear = self.index.clear(measure)
        if digest in members:
            last_known = self._listed(measure, digest, site) or last_known
        return Stale(
            measure,
            None if mark is None else datetime.fromtimestamp(mark, UTC),
            None if mark is None else self._clock() - mark,
            self.bound,
            last_known,
        )

    def subject_problem(self, subject: str) -> InvalidInput | None:
        """Why `subject` is not a valid ID, or None: for reporting every bad field at once."""
        try:
            next(iter(self._ids.values())).digest_of(subject)
        except InvalidInput as exc:
            return exc
        return None

    def by_site(self, measure: str) -> bool:
        """Whether `measure` is held against sites, so its checks must name the site."""
        return self.index.by_site(measure)

    def bad_site(self, measure: str, site: str | None) -> InvalidInput:
        if site is not None and len(site) > MAX_SITE_CHARS:
            return InvalidInput("site", f"at most {MAX_SITE_CHARS} characters, got {len(site)}")
        return InvalidInput(
            "site",
            f"required for {measure}: it is held against the site of the illegal project or "
            "premises, not the subject everywhere; give the real-estate unit code "
            "(不动产单元代码), the parcel code (宗地代码) or the address of the supply asked for",
        )

    def serves(self, measure: str) -> bool:
        return self.index.serves(measure)

    def unserved(self, measure: str) -> InvalidInput:
        return InvalidInput(
            "measure",
            f"{measure!r} is not served by this subscriber; it serves {', '.join(self.measures)}",
        )

    # -- state ------------------------------------------------------------------------

    def freshness(self, measure: str | None = None) -> Freshness:
        """Of one measure, or of the whole replica (its least fresh measure)."""
        return self.index.freshness(self._clock(), measure)

    def health(self) -> dict[str, Any]:
        """Watermarks, ages, offsets, counts and queues: what an operator looks at."""
        replica = self.replica()
        now = self._clock()
        # In memory when the index is loaded: COUNT(*) over a million rows would stall
        # the event loop that serves the checks.
        counts: dict[str, int | None] = {m: self.index.count(m) for m in self.measures}
        if None in counts.values():
            counts = dict(replica.counts())
        partitions = replica.partitions()
        events, webhooks = replica.queue_sizes()
        measures: dict[str, Any] = {}
        for measure in self.measures:
            fresh = self.freshness(measure)
            measures[measure] = {
                "stale": fresh.stale,
                "watermark": iso_time(fresh.watermark),
                "age_seconds": None if fresh.age_seconds is None else round(fresh.age_seconds, 3),
                "entries": counts.get(measure) or 0,
                "partitions": [
                    {
                        "topic": p.topic,
                        "partition": p.partition,
                        "next_offset": p.next_offset,
                        "heartbeat_as_of": p.heartbeat_as_of,
                        "heartbeat_age_seconds": None
                        if p.heartbeat_at is None
                        else round(now - p.heartbeat_at, 3),
                    }
                    for p in partitions
                    if p.measure == measure
                ],
            }
        overall = self.freshness()
        return {
            "status": "stale" if overall.stale else "fresh",
            "watermark": iso_time(overall.watermark),
            "age_seconds": None if overall.age_seconds is None else round(overall.age_seconds, 3),
            "bound_seconds": self.bound,
            "measures": measures,
            "queued_events": events,
            "queued_webhooks": webhooks,
        }

    def offsets(self) -> dict[tuple[str, int], int | None]:
        """The next offset to read per (topic, partition), as stored with the data."""
        return {(p.topic, p.partition): p.next_offset for p in self.replica().partitions()}

    def export_csv(self, measure: str, out: TextIO) -> int:
        """Write the current list of `measure` as CSV; returns the number of rows."""
        if not self.serves(measure):
            raise self.unserved(measure)
        return write_csv(self.replica().export_rows(measure), out)

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        replica: Replica | None = getattr(self._local, "replica", None)
        if replica is not None:
            replica.close()
            self._local.replica = None
