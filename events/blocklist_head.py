"""The signed head of a blocklist partition: how many entries it holds and a digest of
them, so a replica can prove it holds exactly the list the builder vouches for.

Like a TUF snapshot or CRLite's filter of a whole revocation list, the builder does not
only sign each entry: every heartbeat signs, per partition, the count of listed subjects
and the XOR of SHA-256("<subject hash>:<version>") over them. A replica keeps the same
sums as it applies records; when they differ from a heartbeat's, the replica has lost,
missed or been fed something (a truncated or re-created topic, an unsigned tombstone
compacted into the log, a subscriber offline past the retention), and the heartbeat
vouches for nothing: the replica answers stale, never clear. XOR lets both sides keep
the sums incrementally (adding and removing an item are the same operation); forging a
collision would need records signed by the builder, which is what an attacker lacks.

Pure: no I/O. The partition of a subject is the one Kafka's default partitioner picks
(murmur2 of the key, as the Java client, aiokafka and kafka-python compute it), so the
builder knows which partition's head each entry counts in.
"""

from __future__ import annotations

import hashlib

EMPTY_DIGEST = "0" * 64


def item_digest(subject_hash: str, version: int) -> bytes:
    """What one listed entry adds to (and removes from) its partition's digest."""
    return hashlib.sha256(f"{subject_hash}:{version}".encode("ascii")).digest()


def xor(digest: str, item: bytes) -> str:
    """`digest` (hex) with `item` added or, equally, removed."""
    value = int(digest, 16) ^ int.from_bytes(item, "big")
    return f"{value:064x}"


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's Utils.murmur2), as an unsigned 32-bit int."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    extra = length % 4
    tail = length & ~3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record with this key."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions
