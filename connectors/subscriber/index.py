"""The in-memory side of the replica: who is blocked and how fresh each measure is.

Per measure, a set of 32-byte subject digests and the latest heartbeat per partition,
from which the watermark and the moment the measure turns stale follow. Pure state, no
I/O: the view loads it from SQLite and the consumer updates it after each commit.

Checks read `hot[measure]`, a tuple replaced whole on every change, so a check never sees
a watermark without its deadline; the sets are shared and updated in place (set add,
discard and membership are atomic under the GIL). The tuple also says whether the
measure is held against sites, so a check knows at once that it needs a `site`.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping

from connectors.subscriber.freshness import Freshness, fresh_until, watermark
from connectors.subscriber.results import Clear

Hot = tuple[Container[bytes], float, Clear, bool]


class BlockIndex:
    """Membership and freshness of the measures one replica serves; `by_site` are those
    held against a site (catalogue target `site`)."""

    def __init__(self, measures: Iterable[str], bound: float, by_site: Iterable[str] = ()) -> None:
        self.bound = bound
        self.hot: dict[str, Hot] = {}
        """Per measure: (members, the moment it turns stale, its Clear answer, whether it
        is held against sites)."""
        self._clear = {measure: Clear(measure) for measure in measures}
        self._elsewhere = {
            measure: Clear(measure, blocked_elsewhere=True) for measure in self._clear
        }
        self._by_site = frozenset(by_site) & frozenset(self._clear)
        self._members: dict[str, Container[bytes]] = {}
        self._heartbeats: dict[str, dict[int, float | None]] = {}
        self._partitions: dict[str, frozenset[int]] = {}
        self._watermarks: dict[str, float | None] = dict.fromkeys(self._clear)

    @property
    def measures(self) -> tuple[str, ...]:
        return tuple(self._clear)

    def serves(self, measure: str) -> bool:
        return measure in self._clear

    def clear(self, measure: str) -> Clear:
        return self._clear[measure]

    def elsewhere(self, measure: str) -> Clear:
        """Clear here, blocked at another site."""
        return self._elsewhere[measure]

    def by_site(self, measure: str) -> bool:
        """Whether the measure is held against sites, so a check must name one."""
        return measure in self._by_site

    def load_members(self, measure: str, members: Container[bytes]) -> None:
        """Replace a measure's members: a set, or any container that answers `in`."""
        self._members[measure] = members
        self._publish(measure)

    def load_heartbeats(
        self, measure: str, heartbeats: Mapping[int, float | None], partitions: Iterable[int]
    ) -> None:
        """Replace a measure's partitions and the latest heartbeat of each."""
        self._heartbeats[measure] = dict(heartbeats)
        self._partitions[measure] = frozenset(partitions)
        self._watermarks[measure] = watermark(self._heartbeats[measure], self._partitions[measure])
        self._publish(measure)

    def vouch(self, measure: str, partition: int, at: float) -> None:
        """A heartbeat was applied: it may move the measure's watermark."""
        heartbeats = self._heartbeats.setdefault(measure, {})
        heartbeats[partition] = at
        self._watermarks[measure] = watermark(heartbeats, self._partitions.get(measure, ()))
        self._publish(measure)

    def unvouch(self, measure: str, partition: int) -> None:
        """The partition diverged from the builder's signed head: it vouches for nothing."""
        heartbeats = self._heartbeats.setdefault(measure, {})
        heartbeats[partition] = None
        self._watermarks[measure] = watermark(heartbeats, self._partitions.get(measure, ()))
        self._publish(measure)

    def add(self, measure: str, digest: bytes) -> None:
        members = self._members.get(measure)
        if isinstance(members, set):
            members.add(digest)

    def discard(self, measure: str, digest: bytes) -> None:
        members = self._members.get(measure)
        if isinstance(members, set):
            members.discard(digest)

    def count(self, measure: str) -> int | None:
        """Blocked subjects of a measure, when its members are held in memory."""
        members = self._members.get(measure)
        return len(members) if isinstance(members, set) else None

    def watermark(self, measure: str) -> float | None:
        return self._watermarks[measure]

    def freshness(self, now: float, measure: str | None = None) -> Freshness:
        """Of one measure, or of them all (the least fresh decides)."""
        if measure is not None:
            return Freshness.judge(now, self._watermarks[measure], self.bound)
        marks = list(self._watermarks.values())
        oldest = None if None in marks else min(m for m in marks if m is not None)
        return Freshness.judge(now, oldest, self.bound)

    def _publish(self, measure: str) -> None:
        members = self._members.get(measure)
        if members is not None:
            deadline = fresh_until(self._watermarks[measure], self.bound)
            self.hot[measure] = (
                members,
                deadline,
                self._clear[measure],
                measure in self._by_site,
            )
