"""The contract is language-neutral: the Node subscriber (connectors/node-subscriber, on
kafkajs) and the Python connector follow the same blocklist on the real broker and must
give the same answers: blocked, lifted, forged records refused, stale once the builder's
heartbeats stop. The test plays the builder, signing v2 entries and heartbeats itself and
publishing them through the services' own producer (KafkaPublisher)."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.subscriber.config import SubscriberConfig
from connectors.subscriber.errors import InvalidInput
from connectors.subscriber.results import Blocked, CheckResult, Clear, Stale
from connectors.subscriber.subscriber import Subscriber
from connectors.subscriber.testing import RecordFactory
from events.codec import encode_signed
from events.envelope import canonical_json
from events.identifiers import resident_id_check_character
from events.models import BlocklistHeartbeat
from events.privacy import SubjectHasher
from events.signing import Signer, TrustedKey, TrustStore
from events.topics import HEARTBEAT_KEY, blocklist_topic
from services.adapters.kafka import ensure_topics
from services.adapters.publisher import KafkaPublisher
from services.outbox.ports import PendingEvent
from services.runtime.embedded import EmbeddedBroker
from tests.integration.connectors import started
from tests.support import dead_letters, eventually, new_uscc

# Longer than the suite's 30 s per test: Node and Python subscribers read the same list.
pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "connectors" / "node-subscriber"
LOANS = "refuse_loans"
TOPIC = blocklist_topic(LOANS)
BUILDER_SOURCE = "/authorities/blocklist_builder"
SUBSCRIBER = "banks_node_compare"
BOUND = 3.0  # seconds: short, so "stale once heartbeats stop" is quick to see
LEGAL_BASIS = "金融机构对违法主体不得提供贷款 (seed §三)"


def _node() -> str:
    node = shutil.which("node")
    assert node, "node is not installed: `make test` installs it (see the Makefile)"
    assert (NODE_DIR / "node_modules" / "kafkajs").is_dir(), (
        f"{NODE_DIR}/node_modules is missing: `make node-subscriber` runs npm ci "
        "(`make test` does it first)"
    )
    return node


def new_resident_id() -> str:
    body = f"14118119{uuid.uuid4().int % 90 + 10:02d}0101{uuid.uuid4().int % 1000:03d}"
    return body + resident_id_check_character(body)


@dataclass
class Keys:
    """What an operator hands a subscriber: the subject key, a trust store with the
    builder's key and the subscriber's own, and the subscriber's signing key."""

    directory: Path
    subject_key: Path
    trust_store: Path
    builder: Signer
    subscriber: Signer
    hasher: SubjectHasher


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    directory = tmp_path_factory.mktemp("node-keys")
    subject_key = directory / "subject.key"
    SubjectHasher.create_file(subject_key)
    builder = Signer.generate("blocklist_builder-node-test")
    subscriber = Signer.generate(f"{SUBSCRIBER}-test")
    trust_store = directory / "truststore.yaml"
    TrustStore(
        [
            TrustedKey(
                builder.key_id,
                "blocklist_builder",
                BUILDER_SOURCE,
                builder.public_key_b64(),
                ("redline.blocklist.*",),
            ),
            TrustedKey(
                subscriber.key_id,
                SUBSCRIBER,
                f"/authorities/{SUBSCRIBER}",
                subscriber.public_key_b64(),
                ("redline.measure.applied.*", "redline.deadletter.*"),
            ),
        ]
    ).dump(trust_store)
    (directory / "subscriber.pem").write_bytes(subscriber.private_pem())
    return Keys(
        directory,
        subject_key,
        trust_store,
        builder,
        subscriber,
        SubjectHasher.from_file(subject_key),
    )


class BuilderStandIn:
    """Signs entries and heartbeats as the blocklist builder does and publishes them with
    the services' producer, so every record carries the CloudEvents header."""

    def __init__(self, publisher: KafkaPublisher, keys: Keys) -> None:
        self.publisher = publisher
        self.keys = keys
        self.position = 0

        # The builder's records, hashed under the loans list's own key (derived from the
        # master key the subscribers here are given), with versions and list heads.
        master = bytes.fromhex(keys.subject_key.read_text().strip())
        self.factory = RecordFactory(master, keys.builder)

    def subject_hash(self, subject_id: str) -> str:
        return self.factory.subject_hash(subject_id, LOANS)

    def entry(
        self,
        subject_id: str,
        *case_ids: str,
        signer: Signer | None = None,
        published: bool = True,
    ) -> bytes:
        """A signed entry; by `signer` to forge one; `published=False`: one the builder's
        heads do not count (it is to be altered on the way)."""
        factory = self.factory if signer is None else RecordFactory(self.factory.master_key, signer)
        _, raw, _ = factory.entry(
            LOANS,
            subject_id,
            case_ids=case_ids,
            since=datetime(2026, 10, 12, tzinfo=UTC),
            version=None if published and signer is None else 10**9,
        )
        return raw

    async def send(self, key: str, value: bytes | None, partition: int | None = None) -> None:
        self.position += 1
        event = PendingEvent(self.position, TOPIC.name, key, value, partition)
        await self.publisher.publish([event])

    async def block(self, subject_id: str, *case_ids: str) -> None:
        await self.send(self.subject_hash(subject_id), self.entry(subject_id, *case_ids))

    async def lift(self, subject_id: str) -> None:
        _, raw = self.factory.lift(LOANS, subject_id)
        await self.send(self.subject_hash(subject_id), raw)

    async def heartbeats(self) -> None:
        now = datetime.now(UTC)
        for partition in range(TOPIC.partitions):
            _, raw = self.factory.heartbeat(LOANS, partition, now)
            await self.send(HEARTBEAT_KEY, raw, partition)


# Every test here runs on `module_broker`, this module's own: the list holds only what these
# tests publish.


@pytest.fixture
async def builder(module_broker: EmbeddedBroker, keys: Keys) -> AsyncIterator[BuilderStandIn]:
    await ensure_topics(module_broker.bootstrap)
    publisher = KafkaPublisher(module_broker.bootstrap)
    try:
        yield BuilderStandIn(publisher, keys)
    finally:
        await publisher.close()


def _node_args(broker: EmbeddedBroker, keys: Keys) -> list[str]:
    return [
        _node(),
        str(NODE_DIR / "subscriber.js"),
        "--bootstrap",
        broker.bootstrap,
        "--topic",
        TOPIC.name,
        "--trust-store",
        str(keys.trust_store),
        "--subject-key",
        str(keys.subject_key),
        "--freshness-bound",
        str(BOUND),
    ]


class NodeSubscriber:
    """The Node program in follow mode: an ID on its stdin, one JSON answer on stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self._reading = asyncio.create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.events.append(json.loads(line))

    async def ask(self, subject_id: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(subject_id.encode() + b"\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), 10)
        assert line, f"the Node subscriber ended: {self.events[-5:]}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def refusals(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == "refused"]

    async def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        await asyncio.wait_for(self.process.wait(), 30)
        await self._reading


@pytest.fixture
async def node(module_broker: EmbeddedBroker, keys: Keys) -> AsyncIterator[NodeSubscriber]:
    process = await asyncio.create_subprocess_exec(
        *_node_args(module_broker, keys),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    subscriber = NodeSubscriber(process)
    try:
        yield subscriber
    finally:
        if process.returncode is None:
            await subscriber.close()
    assert process.returncode == 0, subscriber.events[-5:]


@pytest.fixture
def python(module_broker: EmbeddedBroker, keys: Keys, tmp_path: Path) -> Iterator[Subscriber]:
    subscriber = Subscriber(
        SubscriberConfig(
            name=SUBSCRIBER,
            measures=(LOANS,),
            bootstrap=module_broker.bootstrap,
            replica=tmp_path / "loans.sqlite3",
            trust_store=keys.trust_store,
            subject_key=keys.subject_key,
            signing_key=keys.directory / "subscriber.pem",
            signing_key_id=keys.subscriber.key_id,
            freshness_bound=BOUND,
        )
    )
    with started(subscriber):
        yield subscriber


def _python_answer(result: CheckResult) -> dict[str, Any]:
    """The Python connector's answer in the Node program's terms."""
    if isinstance(result, Stale):
        return {"status": "stale", "last_known": _python_answer(result.last_known)}
    if isinstance(result, Blocked):
        return {"status": "blocked", "cases": [c.case_id for c in result.cases]}
    assert isinstance(result, Clear)
    return {"status": "clear"}


def _node_answer(answer: dict[str, Any]) -> dict[str, Any]:
    if answer["status"] == "stale":
        return {"status": "stale", "last_known": _node_answer(answer["last_known"])}
    if answer["status"] == "blocked":
        return {"status": "blocked", "cases": [c["case_id"] for c in answer["cases"]]}
    return {"status": answer["status"]}


async def _both_say(
    node: NodeSubscriber, python: Subscriber, expected: dict[str, dict[str, Any]], what: str
) -> None:
    """Poll until both answer every subject as `expected` (subject -> answer)."""
    seen: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    async def agree() -> bool:
        for subject, answer in expected.items():
            ours = _python_answer(python.check(LOANS, subject))
            theirs = _node_answer(await node.ask(subject))
            seen[subject] = (ours, theirs)
            if ours != answer or theirs != answer:
                return False
        return True

    try:
        await eventually(agree, timeout=45, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; (python, node) answers: {seen}") from None


async def test_node_and_python_give_the_same_answers_on_the_same_list(
    builder: BuilderStandIn,
    node: NodeSubscriber,
    python: Subscriber,
    keys: Keys,
    module_broker: EmbeddedBroker,
) -> None:
    org, person, lifted, never = new_uscc(), new_resident_id(), new_uscc(), new_uscc()
    forged_by_stranger, tampered = new_uscc(), new_uscc()
    org_cases = (f"case-{uuid.uuid4().hex}", f"case-{uuid.uuid4().hex}")
    person_case, lifted_case = f"case-{uuid.uuid4().hex}", f"case-{uuid.uuid4().hex}"

    # Before any heartbeat neither can vouch for the list: both fail closed.
    await _both_say(
        node,
        python,
        {never: {"status": "stale", "last_known": {"status": "clear"}}},
        "stale before the first heartbeat",
    )

    await builder.block(org, *org_cases)
    await builder.block(person, person_case)
    await builder.block(lifted, lifted_case)
    # Forged: signed by a key no trust store holds, and a genuine entry altered after signing.
    stranger = Signer.generate(keys.builder.key_id)  # claims the builder's key id, too
    stranger_entry = builder.entry(forged_by_stranger, "case-forged", signer=stranger)
    await builder.send(builder.subject_hash(forged_by_stranger), stranger_entry)
    unknown = Signer.generate("somebody-else")
    await builder.send(
        builder.subject_hash(forged_by_stranger),
        builder.entry(forged_by_stranger, "case-unknown-key", signer=unknown),
    )
    genuine = json.loads(builder.entry(tampered, "case-tampered", published=False))
    genuine["data"]["cases"][0]["case_id"] = "case-altered"
    await builder.send(builder.subject_hash(tampered), json.dumps(genuine).encode())

    heartbeats = asyncio.create_task(_beat(builder))
    try:
        blocked_and_clear: dict[str, dict[str, Any]] = {
            org: {"status": "blocked", "cases": list(org_cases)},
            person: {"status": "blocked", "cases": [person_case]},
            lifted: {"status": "blocked", "cases": [lifted_case]},
            never: {"status": "clear"},
            forged_by_stranger: {"status": "clear"},
            tampered: {"status": "clear"},
        }
        await _both_say(node, python, blocked_and_clear, "the same list at both")

        # #18 item 4: whoever can write the topic writes a tombstone and a forged lift
        # for org; neither lifts anything, at either subscriber.
        await builder.send(builder.subject_hash(org), None)
        _, forged_lift = RecordFactory(builder.factory.master_key, stranger).lift(
            LOANS, org, version=10**9
        )
        await builder.send(builder.subject_hash(org), forged_lift)
        await builder.lift(lifted)
        await _both_say(
            node,
            python,
            {lifted: {"status": "clear"}, org: {"status": "blocked", "cases": list(org_cases)}},
            "only the builder's signed lift lifts, at both",
        )
        assert any(e.get("reason") == "unsigned_tombstone" for e in node.events)
    finally:
        heartbeats.cancel()
        with pytest.raises(asyncio.CancelledError):
            await heartbeats

    # Both refused the four forged records, for the same reasons.
    reasons = ["signature_bad_signature", "signature_unknown_key", "signature_bad_signature"]
    reasons.append("signature_bad_signature")  # the forged lift

    async def python_dead_lettered() -> bool:
        trust = TrustStore.load(keys.trust_store)
        letters = await dead_letters(module_broker.bootstrap, trust)
        return sorted(letter.reason for letter in letters) == sorted(reasons)

    await eventually(python_dead_lettered, what="the Python connector's dead letters")
    assert sorted(r["reason"] for r in node.refusals()) == sorted(reasons)

    # The builder stops: once its last heartbeat is older than the bound, both say stale
    # and what they last knew, never "clear".
    await _both_say(
        node,
        python,
        {
            org: {"status": "stale", "last_known": {"status": "blocked", "cases": list(org_cases)}},
            lifted: {"status": "stale", "last_known": {"status": "clear"}},
            never: {"status": "stale", "last_known": {"status": "clear"}},
        },
        "stale once the heartbeats stop",
    )

    # A typo in an ID is bad input at both, naming the field.
    typo = org[:-1] + ("0" if org[-1] != "0" else "1")
    with pytest.raises(InvalidInput) as refused:
        python.check(LOANS, typo)
    assert refused.value.field == "subject"
    answer = await node.ask(typo)
    assert answer["status"] == "invalid" and answer["field"] == "subject"
    assert "check character" in answer["reason"]

    # IDs on the command line: read the list to its end, answer, exit.
    once = await asyncio.create_subprocess_exec(
        *_node_args(module_broker, keys),
        org,
        lifted,
        never,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(once.communicate(), 60)
    assert once.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    answers = [_node_answer(json.loads(line)) for line in lines]
    assert answers == [
        {"status": "stale", "last_known": {"status": "blocked", "cases": list(org_cases)}},
        {"status": "stale", "last_known": {"status": "clear"}},
        {"status": "stale", "last_known": {"status": "clear"}},
    ]
    masked = json.loads(lines[0])["subject"]
    assert masked == org[:4] + "*" * 12 + org[-2:]  # the ID itself is never echoed


async def _beat(builder: BuilderStandIn) -> None:
    """The builder's heartbeats while it is caught up (the real one sends them every few s)."""
    while True:
        await builder.heartbeats()
        await asyncio.sleep(0.5)


CANONICAL_SAMPLES: list[Any] = [
    {"b": 1, "a": [True, False, None], "c": {"z": "", "y": {}}},
    {"s": '\u0000\u0001\b\t\n\f\r\u001f"\\/\u007f\u2028\u2029é中文😀'},
    {"n": [0.1, 1e21, 1e-7, -0.0, 123456789012345, 1.5e300, 5e-324, 1.0, -1.5, 1e20, 1e-6]},
    {"n": [2**53 - 1, -(2**53 - 1), 333333333.33333329, 4.35, 0.000001, 1e23]},
    # UTF-16 order puts the astral 😀 (D83D…) before U+E000; code-point order would not.
    {"\ue000": 1, "😀": 2, "a": 3, "é": 4, "A": 5, "": 6, "aa": 7},
    {"deep": [[[[{"x": [1, {"y": "z"}]}]]]]},
]


def test_canonical_json_is_byte_identical_in_node_and_python(keys: Keys) -> None:
    """What a signature covers (RFC 8785) is the same bytes in both languages, for the
    events Redline signs and for the corners of the scheme (numbers, escapes, key order)."""
    heartbeat = BlocklistHeartbeat(
        measure=LOANS, partition=2, key_id=keys.hasher.key_id, as_of=datetime.now(UTC)
    )
    _, raw = encode_signed(heartbeat, keys.builder, source=BUILDER_SOURCE, subject=HEARTBEAT_KEY)
    samples = [*CANONICAL_SAMPLES, json.loads(raw)]
    lines = "".join(json.dumps(sample, ensure_ascii=True) + "\n" for sample in samples)
    lines += '{"lone": "\\ud800"}\n'  # not a character: both refuse to canonicalise it
    done = subprocess.run(
        [_node(), str(NODE_DIR / "lib" / "canonical.js")],
        input=lines.encode(),
        capture_output=True,
        timeout=30,
        check=True,
    )
    out = done.stdout.decode().splitlines()
    assert len(out) == len(samples) + 1
    for sample, line in zip(samples, out, strict=False):
        assert base64.b64decode(line) == canonical_json(json.loads(json.dumps(sample))), sample
    assert out[-1].startswith("error:")
    with pytest.raises(UnicodeEncodeError):
        canonical_json(json.loads('{"lone": "\\ud800"}'))
