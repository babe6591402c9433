"""What the blocklist builder relies on from a BlocklistStore.

Each check takes a `Lists` harness: the store, and the event ids it committed to its outbox
(not on the port: the relay reads them). Checks name their own measures, cases and
subjects, so they can share one database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from events.catalogue import Fact, Target
from events.land import LandClass
from services.blocklist.domain import ActiveBlock, ListedCase, ListHashes, Why
from services.blocklist.ports import (
    BlocklistStore,
    EndedBlock,
    ListWrites,
    MovedSite,
    NewBlock,
    Published,
)
from services.errors import DatabaseError
from services.outbox.ports import OutgoingEvent
from tests.contracts.claims import claim, claimed_once, fresh
from tests.contracts.registry import Boom

SINCE = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
WHY = Why(Target.site, "business_premises", (Fact.business_premises,), (LandClass.cultivated,))


@dataclass
class Lists:
    store: BlocklistStore
    outbox: Callable[[], Awaitable[list[str]]]  # committed event ids, in outbox order


def listed_case(subject: str | None = None, case_id: str | None = None) -> ListedCase:
    return ListedCase(
        case_id or fresh("RL"),
        subject or fresh("subject"),
        "enterprise",
        "某*司",
        ("site-a", "site-b"),
        (ListHashes("power", fresh("p"), ("ps",)), ListHashes("water", fresh("w"), ())),
    )


def writes(
    cases: Sequence[ListedCase] = (),
    applied: Sequence[NewBlock] = (),
    lifted: Sequence[EndedBlock] = (),
    sites: Sequence[MovedSite] = (),
) -> ListWrites:
    return ListWrites(
        cases=[(case, fresh("filed")) for case in cases],
        sites=list(sites),
        applied=list(applied),
        lifted=list(lifted),
        outgoing=[],
    )


def block(measure: str, case: ListedCase, since: datetime = SINCE, why: Why = WHY) -> NewBlock:
    return NewBlock(measure, "power_grid", case, "《条例》第三条", since, fresh("applied"), why)


def lift(measure: str, case: ListedCase) -> EndedBlock:
    return EndedBlock(measure, case.case_id, SINCE + timedelta(days=9), fresh("lifted"))


def active(new: NewBlock, case: ListedCase | None = None) -> ActiveBlock:
    """What `listed` and `active` give back for a block: its case as it stands now."""
    return ActiveBlock(
        new.measure,
        new.department,
        new.case.case_id,
        new.legal_basis,
        new.since,
        case or new.case,
        new.why,
    )


def outgoing(name: str) -> OutgoingEvent:
    return OutgoingEvent(fresh(name), "redline.blocklist.entry", "blocklist.power", name, b"{}")


async def an_event_is_claimed_once(lists: Lists) -> None:
    await claimed_once(lists.store.transaction)


async def nothing_stays_after_an_exception_and_versions_are_not_given_twice(
    lists: Lists,
) -> None:
    measure, case, event_id = fresh("m"), listed_case(), fresh("e")
    before = await lists.outbox()
    with pytest.raises(Boom):
        async with lists.store.transaction() as tx:
            await claim(tx, event_id)
            await tx.write(writes([case], [block(measure, case)]))
            await tx.enqueue([outgoing("lost")])
            taken = await tx.next_versions(2)
            await tx.record_published(
                [Published(measure, case.subject_hash, 0, taken[0], True)], {(measure, 0): (1, "d")}
            )
            assert await tx.cases([case.case_id]) == {case.case_id: case}  # its own writes
            assert await lists.store.active(measure, case.subject_hash) == []  # not committed
            raise Boom
    assert await lists.outbox() == before
    assert await lists.store.active(measure, case.subject_hash) == []
    async with lists.store.transaction() as tx:
        assert await claim(tx, event_id) == {event_id}  # the claim was not kept
        assert await tx.cases([case.case_id]) == {}
        assert await tx.active_on([case.case_id]) == set()
        assert await tx.published([(measure, case.subject_hash)]) == {}
        assert await tx.heads([(measure, 0)]) == {}
        # A sequence is not rolled back: a version is never handed out again.
        assert min(await tx.next_versions(1)) > max(taken)


async def versions_come_as_many_as_asked_and_increasing(lists: Lists) -> None:
    async with lists.store.transaction() as tx:
        first = await tx.next_versions(3)
        assert await tx.next_versions(0) == []
    async with lists.store.transaction() as tx:
        second = await tx.next_versions(2)
    assert len(first) == 3 and len(second) == 2
    assert first == sorted(set(first)) and second == sorted(set(second))
    assert max(first) < min(second)


async def a_case_is_kept_as_first_written_until_its_site_moves(lists: Lists) -> None:
    case = listed_case()
    unsorted = replace(case, lists=tuple(reversed(case.lists)))
    async with lists.store.transaction() as tx:
        await tx.write(writes([unsorted]))
        await tx.write(writes([replace(case, masked_name="另*司", site_hashes=())]))
        assert await tx.cases([case.case_id, "RL-none"]) == {case.case_id: case}
    moved_lists = (ListHashes("power", case.lists[0].subject_hash, ("new-ps",)),)
    moved = MovedSite(case.case_id, ("site-c",), fresh("corrected"), moved_lists)
    async with lists.store.transaction() as tx:
        await tx.write(writes(sites=[moved, MovedSite("RL-none", ("x",), fresh("c"))]))
    async with lists.store.transaction() as tx:
        assert await tx.cases([case.case_id, "RL-none"]) == {
            case.case_id: replace(case, site_hashes=("site-c",), lists=moved_lists)
        }


async def a_block_holds_until_lifted_and_holds_again_when_applied_again(lists: Lists) -> None:
    measure, case = fresh("m"), listed_case()
    first = block(measure, case)
    async with lists.store.transaction() as tx:
        await tx.write(writes([case], [first]))
        assert await tx.active_on([case.case_id]) == {(measure, case.case_id)}
        assert await tx.listed([(measure, case.subject_hash)]) == [active(first)]
    assert await lists.store.active(measure, case.subject_hash) == [active(first)]
    assert await lists.store.active(measure, "another") == []
    async with lists.store.transaction() as tx:
        await tx.write(writes(lifted=[lift(measure, case), lift(fresh("never"), case)]))
        assert await tx.active_on([case.case_id]) == set()
        assert await tx.listed([(measure, case.subject_hash)]) == []
    assert await lists.store.active(measure, case.subject_hash) == []
    again = block(measure, case, SINCE + timedelta(days=20), Why(Target.subject, "again"))
    async with lists.store.transaction() as tx:
        await tx.write(writes(applied=[again]))
    assert await lists.store.active(measure, case.subject_hash) == [active(again)]


async def a_batch_writes_cases_sites_applies_then_lifts(lists: Lists) -> None:
    measure, case = fresh("m"), listed_case()
    held, ended = block(measure, case), block(fresh("m"), case)
    moved = MovedSite(case.case_id, ("site-z",), fresh("corrected"), case.lists)
    async with lists.store.transaction() as tx:
        await tx.write(writes([case], [held, ended], [lift(ended.measure, case)], sites=[moved]))
    now = replace(case, site_hashes=("site-z",))
    async with lists.store.transaction() as tx:
        assert await tx.active_on([case.case_id]) == {(measure, case.case_id)}
        listed = await tx.listed([(measure, case.subject_hash), (ended.measure, case.subject_hash)])
    assert listed == [active(held, now)]  # the case as the batch left it: moved


async def a_block_on_a_case_never_written_is_refused_with_its_batch(lists: Lists) -> None:
    measure, case, stray = fresh("m"), listed_case(), listed_case()
    with pytest.raises(DatabaseError):
        async with lists.store.transaction() as tx:
            await tx.write(writes([case], [block(measure, case), block(measure, stray)]))
    async with lists.store.transaction() as tx:
        assert await tx.cases([case.case_id]) == {}
        assert await tx.active_on([case.case_id, stray.case_id]) == set()


async def the_blocks_of_a_subject_are_read_by_measure_in_order_of_since(lists: Lists) -> None:
    measure, subject = fresh("m"), fresh("subject")
    late, early = listed_case(subject), listed_case(subject)
    other = listed_case()
    blocks = [
        block(measure, late, SINCE + timedelta(days=2)),
        block(measure, early, SINCE),
        block(measure, other, SINCE),
        block(fresh("m"), early, SINCE),
    ]
    async with lists.store.transaction() as tx:
        await tx.write(writes([late, early, other], blocks))
        listed = await tx.listed([(measure, subject)])
    assert sorted(listed, key=lambda b: b.since) == [active(blocks[1]), active(blocks[0])]
    assert await lists.store.active(measure, subject) == [active(blocks[1]), active(blocks[0])]


async def a_subject_is_named_by_its_first_case(lists: Lists) -> None:
    subject, alone = fresh("subject"), fresh("subject")
    first = listed_case(subject, case_id=fresh("RL-1"))
    second = listed_case(subject, case_id=first.case_id.replace("RL-1", "RL-2"))
    only = listed_case(alone)
    async with lists.store.transaction() as tx:
        await tx.write(writes([second, first, only]))
    async with lists.store.transaction() as tx:
        assert await tx.subjects([subject, alone, "nobody"]) == {subject: first, alone: only}


async def what_was_published_and_the_heads_read_back_as_last_recorded(lists: Lists) -> None:
    measure, subject = fresh("m"), fresh("key")
    async with lists.store.transaction() as tx:
        await tx.record_published(
            [Published(measure, subject, 2, 7, True)], {(measure, 2): (1, "aa")}
        )
    async with lists.store.transaction() as tx:
        assert await tx.published([(measure, subject), (measure, "other")]) == {
            (measure, subject): Published(measure, subject, 2, 7, True)
        }
        await tx.record_published(
            [Published(measure, subject, 2, 9, False)],
            {(measure, 2): (0, "bb"), (measure, 3): (4, "cc")},
        )
    async with lists.store.transaction() as tx:
        assert await tx.published([(measure, subject)]) == {
            (measure, subject): Published(measure, subject, 2, 9, False)
        }
        assert await tx.heads([(measure, 2), (measure, 3), (measure, 4)]) == {
            (measure, 2): (0, "bb"),
            (measure, 3): (4, "cc"),
        }


async def an_event_enqueued_twice_is_kept_once_in_enqueue_order(lists: Lists) -> None:
    first, second = outgoing("a"), outgoing("b")
    async with lists.store.transaction() as tx:
        await tx.enqueue([first, second, first])
        await tx.enqueue([])
    async with lists.store.transaction() as tx:
        await tx.enqueue([second])
    ids = await lists.outbox()
    assert ids[-2:] == [first.event_id, second.event_id]
    assert ids.count(first.event_id) == ids.count(second.event_id) == 1


async def the_first_subject_key_recorded_stays(lists: Lists) -> None:
    recorded = await lists.store.claim_subject_key(fresh("key"))
    assert await lists.store.claim_subject_key(fresh("key")) == recorded
    assert await lists.store.claim_subject_key(recorded) == recorded


CHECKS = [
    an_event_is_claimed_once,
    nothing_stays_after_an_exception_and_versions_are_not_given_twice,
    versions_come_as_many_as_asked_and_increasing,
    a_case_is_kept_as_first_written_until_its_site_moves,
    a_block_holds_until_lifted_and_holds_again_when_applied_again,
    a_batch_writes_cases_sites_applies_then_lifts,
    a_block_on_a_case_never_written_is_refused_with_its_batch,
    the_blocks_of_a_subject_are_read_by_measure_in_order_of_since,
    a_subject_is_named_by_its_first_case,
    what_was_published_and_the_heads_read_back_as_last_recorded,
    an_event_enqueued_twice_is_kept_once_in_enqueue_order,
    the_first_subject_key_recorded_stays,
]
