"""The compacted blocklist topics a utility's or bank's connector replicates: entries, lifts
and heartbeats, with their earlier versions for upcasting."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import (
    AwareDatetime,
    Field,
    StringConstraints,
)

from events.catalogue import Fact, Target
from events.models.values import Id, Name, NonEmptyText, Payload, SubjectKind, Text, _Frozen

SubjectHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]


class BlocklistCaseV1(_Frozen):
    case_id: Id
    legal_basis: NonEmptyText
    since: AwareDatetime


class BlocklistEntryV1(Payload):
    """blocklist.entry before targets and sites; kept only for upcasting."""

    event_type: ClassVar[str] = "redline.blocklist.entry.v1"

    measure: Name
    department: Name
    subject_hash: SubjectHash
    key_id: KeyId
    subject_kind: SubjectKind
    masked_name: Name
    cases: list[BlocklistCaseV1] = Field(min_length=1)


class BlocklistCase(_Frozen):
    """One case behind a block: its legal basis, the facts that started it and, for a
    measure held against a site, the keyed hashes of that site's identifiers."""

    case_id: Id
    legal_basis: NonEmptyText
    since: AwareDatetime
    rule: Text = ""
    facts: tuple[Fact, ...] = ()
    site_hashes: list[SubjectHash] = Field(default_factory=list, max_length=8)


class _BlocklistEntryFields(Payload):
    """What an entry says of a block, in v2 and since (v3 adds the list version)."""

    measure: Name
    department: Name
    target: Target
    subject_hash: SubjectHash
    key_id: KeyId
    subject_kind: SubjectKind
    masked_name: Name
    cases: list[BlocklistCase] = Field(min_length=1)


class BlocklistEntryV2(_BlocklistEntryFields):
    """blocklist.entry before list versions; kept only for upcasting."""

    event_type: ClassVar[str] = "redline.blocklist.entry.v2"


ListVersion = Annotated[int, Field(ge=0, le=2**63 - 1)]


class BlocklistEntry(_BlocklistEntryFields):
    """The active blocks of one measure on one subject.

    The subject travels as an HMAC of its ID under the measure's subject key (`key_id`
    names that key) and a masked name, so a leaked replica exposes no ID numbers. Where
    the measure targets a site (supply), each case lists its site's hashed identifiers:
    a check answers blocked only at those sites, and "blocked at another site" elsewhere.
    `version` grows with every record the builder publishes, so a replayed older record
    of the same subject (entry or lift) is recognised and ignored.
    """

    event_type: ClassVar[str] = "redline.blocklist.entry.v3"

    version: ListVersion


class BlocklistLifted(Payload):
    """The builder lifts one subject from one measure's list: a signed record that takes
    the entry's place under its key. A bare tombstone (null value) is unsigned, so anyone
    who can write the topic could write one; subscribers ignore those and believe only
    this. Never followed by a tombstone: compaction keeps it, so a subscriber that was
    offline for any time still learns of the lift."""

    event_type: ClassVar[str] = "redline.blocklist.lifted.v1"

    measure: Name
    subject_hash: SubjectHash
    key_id: KeyId
    version: ListVersion


class BlocklistHeartbeatV1(Payload):
    """blocklist.heartbeat before list heads; kept only for upcasting."""

    event_type: ClassVar[str] = "redline.blocklist.heartbeat.v1"

    measure: Name
    partition: int = Field(ge=0)
    key_id: KeyId
    as_of: AwareDatetime


class BlocklistHeartbeat(Payload):
    """The builder vouches that this partition held every block it knew of at `as_of`,
    and exactly these: `entries` listed subjects whose items XOR to `digest`
    (events.blocklist_head). A replica whose own sums differ has diverged from the list.

    Sent only while the builder is caught up, so a quiet list stays fresh and a dead or
    lagging builder lets its subscribers' replicas go stale. A heartbeat without a head
    (upcast from v1) vouches for nothing: a replica cannot tell it holds the list.
    """

    event_type: ClassVar[str] = "redline.blocklist.heartbeat.v2"

    measure: Name
    partition: int = Field(ge=0)
    key_id: KeyId
    as_of: AwareDatetime
    entries: int | None = Field(default=None, ge=0)
    digest: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
