"""Audit checkpoints: a chain's head (sequence number and hash), signed and kept outside
the database, so a tail deleted or rewritten by someone who controls the database (the
chain itself needs no secret to recompute) is still found.

As Certificate Transparency logs publish signed tree heads: the head is signed by the
registry's authority and written to a Kafka topic only the anchor's identity may write;
`redline audit verify` holds the database's chain to the latest valid head per schema.
The anchor itself never signs a head that does not extend the one before it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from events.envelope import canonical_json
from events.signing import Signer, TrustStore
from services.audit.domain import AuditRow

# The authority whose key may sign checkpoints: the registry's, which owns the case record.
CHECKPOINT_ISSUER = "natural_resources"


@dataclass(frozen=True)
class Head:
    """The last entry of one chain as the database has it now."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    database: str
    schema: str
    seq: int
    hash: str
    at: str  # ISO 8601, when it was signed
    key_id: str
    signature: str  # base64 Ed25519 over `signed_bytes`

    @property
    def key(self) -> str:
        return f"{self.database}/{self.schema}"

    def signed_bytes(self) -> bytes:
        return canonical_json(
            {
                "database": self.database,
                "schema": self.schema,
                "seq": self.seq,
                "hash": self.hash,
                "at": self.at,
            }
        )

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()


def sign_checkpoint(signer: Signer, database: str, schema: str, head: Head, at: str) -> Checkpoint:
    unsigned = Checkpoint(database, schema, head.seq, head.hash, at, signer.key_id, "")
    signature = base64.b64encode(signer.sign_bytes(unsigned.signed_bytes())).decode("ascii")
    return Checkpoint(database, schema, head.seq, head.hash, at, signer.key_id, signature)


class CheckpointRejected(ValueError):
    """A record on the checkpoint topic that is not a checkpoint the registry signed."""


def decode_checkpoint(value: bytes | None, trust: TrustStore) -> Checkpoint:
    """Parse and verify one record; CheckpointRejected names why it does not count."""
    try:
        fields = json.loads(value or b"")
        checkpoint = Checkpoint(
            database=str(fields["database"]),
            schema=str(fields["schema"]),
            seq=int(fields["seq"]),
            hash=str(fields["hash"]),
            at=str(fields["at"]),
            key_id=str(fields["key_id"]),
            signature=str(fields["signature"]),
        )
        signature = base64.b64decode(checkpoint.signature, validate=True)
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise CheckpointRejected(f"malformed checkpoint: {type(exc).__name__}") from None
    key = trust.get(checkpoint.key_id)
    if key is None:
        raise CheckpointRejected(f"checkpoint signed by unknown key {checkpoint.key_id!r}")
    if key.issuer != CHECKPOINT_ISSUER:
        raise CheckpointRejected(
            f"checkpoint signed by {key.issuer!r}; only {CHECKPOINT_ISSUER} signs checkpoints"
        )
    if not key.verifies(signature, checkpoint.signed_bytes()):
        raise CheckpointRejected(f"checkpoint {checkpoint.key} has a bad signature")
    return checkpoint


def latest_checkpoints(
    values: Iterable[bytes | None], trust: TrustStore, database: str
) -> tuple[dict[str, Checkpoint], list[str]]:
    """Per schema of `database`, the highest valid checkpoint in the topic; and why each
    record that does not count was refused (a forged or garbled record is not a head)."""
    found: dict[str, Checkpoint] = {}
    refused: list[str] = []
    for value in values:
        try:
            checkpoint = decode_checkpoint(value, trust)
        except CheckpointRejected as exc:
            refused.append(str(exc))
            continue
        if checkpoint.database != database:
            continue
        held = found.get(checkpoint.schema)
        if held is None or checkpoint.seq >= held.seq:
            found[checkpoint.schema] = checkpoint
    return found, refused


def anchor_problems(rows: Sequence[AuditRow], checkpoint: Checkpoint) -> list[str]:
    """How the database's chain falls short of, or disagrees with, the anchored head."""
    anchored = f"the checkpoint anchored at {checkpoint.at} holds {checkpoint.seq} entries"
    last = rows[-1].seq if rows else 0
    if last < checkpoint.seq:
        return [f"entries {last + 1}..{checkpoint.seq} are missing (truncated tail): {anchored}"]
    at_head = next((row for row in rows if row.seq == checkpoint.seq), None)
    if at_head is None:
        return [f"entry {checkpoint.seq}, the anchored head, is missing: {anchored}"]
    if at_head.hash != checkpoint.hash:
        return [
            f"entry {checkpoint.seq} disagrees with the anchored head (hash "
            f"{at_head.hash[:12]}, anchored {checkpoint.hash[:12]}): history was rewritten"
        ]
    return []


@dataclass(frozen=True)
class Due:
    """What the anchor does about one schema this round."""

    publish: bool
    refusal: str | None = None


def checkpoint_due(
    head: Head | None,
    anchored: Checkpoint | None,
    hash_at_anchor: str | None,
    seconds_since: float,
    *,
    entries: int,
    seconds: float,
) -> Due:
    """Publish when the head has moved `entries` past the last checkpoint, or moved at all
    and `seconds` have passed. Never sign a head that does not extend the anchored one: a
    chain shorter than, or different at, its checkpoint is reported, not re-anchored."""
    if anchored is not None:
        if head is None or head.seq < anchored.seq:
            have = head.seq if head else 0
            return Due(
                False,
                f"{anchored.schema}: the chain ends at {have} but {anchored.seq} entries are "
                "anchored; not signing a shorter head",
            )
        if hash_at_anchor != anchored.hash:
            return Due(
                False,
                f"{anchored.schema}: entry {anchored.seq} no longer matches its checkpoint; "
                "not signing a rewritten history",
            )
        if head.seq == anchored.seq:
            return Due(False)
        return Due(head.seq - anchored.seq >= entries or seconds_since >= seconds)
    return Due(head is not None)


def missing_in(heads: Mapping[str, Head], checkpoints: Mapping[str, Checkpoint]) -> list[str]:
    """Schemas anchored but no longer in the database at all (a dropped trail)."""
    return sorted(schema for schema in checkpoints if schema not in heads)
