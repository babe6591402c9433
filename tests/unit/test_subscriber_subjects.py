"""The connector's fast ID validation and HMAC agree exactly with the reference ones."""

from __future__ import annotations

import hmac
import secrets
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.subscriber.errors import ConfigError, InvalidInput
from connectors.subscriber.subjects import SubjectIds
from events.errors import InvalidEvent
from events.identifiers import (
    USCC_ALPHABET,
    resident_id_check_character,
    uscc_check_character,
)
from events.privacy import SubjectHasher, parse_subject_id

KEY = bytes(range(32))
IDS = SubjectIds(KEY)
REFERENCE = SubjectHasher(KEY)
USCC = "91350100M000100Y43"
PERSON = "11010519491231002X"


def _reference(raw: str) -> str | InvalidEvent:
    try:
        return parse_subject_id(raw)[1]
    except InvalidEvent as exc:
        return exc


def _fast(raw: str) -> str | InvalidInput:
    try:
        return IDS.normalise(raw)
    except InvalidInput as exc:
        return exc


def _same_verdict(raw: str) -> None:
    expected, got = _reference(raw), _fast(raw)
    if isinstance(expected, InvalidEvent):
        assert isinstance(got, InvalidInput), raw
        assert (got.field, got.reason) == (expected.field, expected.reason)
        with pytest.raises(InvalidInput):
            IDS.digest_of(raw)
    else:
        assert got == expected
        assert IDS.digest_of(raw) == REFERENCE.digest(expected)


def test_key_id_and_digest_equal_the_reference_hasher() -> None:
    assert IDS.key_id == REFERENCE.key_id
    for value in (USCC, PERSON, "X" * 18):
        assert IDS.digest(value) == REFERENCE.digest(value)
        assert IDS.digest(value) == hmac.digest(KEY, value.encode(), "sha256")


def test_a_key_longer_than_a_block_is_hashed_first_as_hmac_says() -> None:
    key = secrets.token_bytes(100)
    assert SubjectIds(key).digest(USCC) == hmac.digest(key, USCC.encode(), "sha256")


def test_a_short_key_is_refused_naming_the_subject_key() -> None:
    with pytest.raises(ConfigError) as refused:
        SubjectIds(b"short")
    assert refused.value.field == "subject_key"


def test_the_key_file_is_read_as_the_core_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "subject.key"
    SubjectHasher.create_file(path)
    assert SubjectIds.from_file(path).key_id == SubjectHasher.from_file(path).key_id
    with pytest.raises(ConfigError, match="subject_key"):
        SubjectIds.from_file(tmp_path / "missing.key")


@pytest.mark.parametrize(
    "raw",
    [
        USCC,
        USCC.lower(),
        f"  {USCC} ",
        PERSON,
        PERSON.lower(),
        "11010518991231" + "001" + resident_id_check_character("11010518991231001"),  # 1899
        "11010520270101" + "001" + resident_id_check_character("11010520270101001"),  # future
        "11010519490231" + "001" + resident_id_check_character("11010519490231001"),  # 31 Feb
        USCC[:-1] + "2",  # wrong check character
        PERSON[:-1] + "1",
        USCC[:4] + "I" + USCC[5:],  # a letter USCC never uses
        USCC[:17],
        "",
        "   ",
        "９１３５０１００Ｍ０００１００Ｙ４３",  # full-width digits: not ASCII
        "٩" * 18,  # Arabic-Indic digits, which int() would accept
        "1_" * 9,  # underscores, which int() would accept
        "+" + USCC[1:],
        "#" * 18,
    ],
)
def test_the_fast_path_gives_the_reference_verdict(raw: str) -> None:
    _same_verdict(raw)


def test_a_wrong_check_character_is_refused_naming_subject_and_why() -> None:
    with pytest.raises(InvalidInput) as refused:
        IDS.digest_of(USCC[:-1] + "2")
    assert refused.value.field == "subject"
    assert "check character is '2', expected '3'" in refused.value.reason


def test_every_possible_last_character_of_a_uscc_gets_the_reference_verdict() -> None:
    """The check character is looked up in a table of residues: every byte, not a sample."""
    for body in (USCC[:17], "91" + "0" * 15, "9" + "Y" * 16):
        for last in map(chr, range(1, 128)):
            _same_verdict(body + last)


def test_a_missing_or_non_text_subject_is_required() -> None:
    for raw in ("", None, 42):
        with pytest.raises(InvalidInput) as refused:
            IDS.digest_of(raw)  # type: ignore[arg-type]
        assert refused.value.field == "subject"
        assert refused.value.reason.startswith("required")


@settings(max_examples=400, deadline=None)
@given(body=st.text(alphabet=USCC_ALPHABET + "IOSVZabc ", min_size=17, max_size=17))
def test_any_uscc_body_with_its_check_character_agrees(body: str) -> None:
    try:
        code = body + uscc_check_character(body)
    except ValueError:
        code = body + "0"
    _same_verdict(code)
    _same_verdict(code[:-1] + "Y")


@settings(max_examples=400, deadline=None)
@given(
    born=st.dates(min_value=date(1850, 1, 1), max_value=date(2030, 12, 31)),
    region=st.integers(110000, 659999),
    serial=st.integers(0, 999),
)
def test_any_resident_id_agrees(born: date, region: int, serial: int) -> None:
    first17 = f"{region:06d}{born:%Y%m%d}{serial:03d}"
    code = first17 + resident_id_check_character(first17)
    _same_verdict(code)
    _same_verdict(first17 + ("0" if code[-1] != "0" else "1"))


@settings(max_examples=300, deadline=None)
@given(raw=st.text(min_size=0, max_size=20))
def test_any_text_agrees(raw: str) -> None:
    _same_verdict(raw)


def test_an_id_born_after_the_fast_table_was_made_takes_the_reference_path() -> None:
    made_yesterday = SubjectIds(KEY, today=date.fromordinal(date.today().toordinal() - 1))
    first17 = f"110105{date.today():%Y%m%d}001"
    born_today = first17 + resident_id_check_character(first17)
    assert made_yesterday.normalise(born_today) == born_today
    assert made_yesterday.digest_of(born_today) == REFERENCE.digest(born_today)
