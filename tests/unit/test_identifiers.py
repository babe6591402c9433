from datetime import date

import pytest

from events.errors import InvalidEvent
from events.identifiers import (
    looks_like_resident_id,
    mask_identifier,
    mask_name,
    resident_id_check_character,
    uscc_check_character,
    validate_resident_id,
    validate_uscc,
)
from events.privacy import parse_subject_id

REAL_USCC = "91350100M000100Y43"
PERSON = "11010519491231002X"


def test_real_uscc_is_valid() -> None:
    assert validate_uscc(REAL_USCC) == REAL_USCC


def test_computed_uscc_is_valid_and_normalised() -> None:
    first17 = "91140000MA0GRXQ10"
    code = first17 + uscc_check_character(first17)
    assert validate_uscc(f"  {code.lower()} ") == code


def test_uscc_wrong_check_character_names_the_expected_one() -> None:
    with pytest.raises(ValueError, match=r"check character is '2', expected '3'"):
        validate_uscc(REAL_USCC[:-1] + "2")


@pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z"])
def test_uscc_forbidden_letters(letter: str) -> None:
    code = REAL_USCC[:4] + letter + REAL_USCC[5:]
    with pytest.raises(ValueError, match=rf"character '{letter}' at position 5 is not allowed"):
        validate_uscc(code)


def test_uscc_length() -> None:
    with pytest.raises(ValueError, match="must be 18 characters, got 17"):
        validate_uscc(REAL_USCC[:17])


def test_resident_id_valid_with_x_check_character() -> None:
    assert resident_id_check_character(PERSON[:17]) == "X"
    assert validate_resident_id(PERSON.lower()) == PERSON


def test_resident_id_valid_with_digit_check_character() -> None:
    first17 = "14118119800101001"
    number = first17 + resident_id_check_character(first17)
    assert validate_resident_id(number) == number


def test_resident_id_wrong_check_character() -> None:
    with pytest.raises(ValueError, match=r"check character is wrong") as refused:
        validate_resident_id(PERSON[:-1] + "1")
    assert "'X'" not in str(refused.value)  # the expected one is derived from hidden digits


def test_resident_id_letter_in_body() -> None:
    with pytest.raises(ValueError, match=r"character at position 3 must be a digit") as refused:
        validate_resident_id("11A10519491231002X")
    assert "A" not in str(refused.value).replace("a digit", "")


def test_resident_id_impossible_birth_date() -> None:
    first17 = "11010519490230002"
    number = first17 + resident_id_check_character(first17)
    with pytest.raises(ValueError, match=r"birth date .* is not a real date"):
        validate_resident_id(number)


def test_resident_id_future_birth_date() -> None:
    first17 = "11010520300101002"
    number = first17 + resident_id_check_character(first17)
    with pytest.raises(ValueError, match="in the future"):
        validate_resident_id(number, today=date(2025, 1, 1))
    assert validate_resident_id(number, today=date(2030, 1, 1)) == number


def test_masking() -> None:
    assert mask_identifier(REAL_USCC) == "9135************43"
    assert mask_identifier("12345") == "*****"
    assert mask_name("张三丰") == "张**"
    assert mask_name("孝义市某公司") == "孝*****"
    assert mask_name("") == ""


# --- issue #18 item 12(a): an error shows no more of a person's number than its mask ----


def _hidden_parts(number: str) -> list[str]:
    """Every run of 3 or more characters that the masked form (first 4, last 2) hides."""
    hidden = number[4:16]
    return [hidden[i : i + 3] for i in range(len(hidden) - 2)]


def _person(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


@pytest.mark.parametrize(
    "number",
    [
        _person("11010519490230002"),  # 30 February
        _person("11010520990101002"),  # born in the future
        _person("11010519491231002")[:-1] + "1",  # wrong check character
        "1101051949123100AX",  # a letter in the body
        "11010519491231002Z",  # a letter that is not X at the end
    ],
)
def test_a_refused_resident_id_is_not_echoed_in_its_error(number: str) -> None:
    """The attack: a clerk's typo in a person's number lands in an API answer, a log line
    and a dead letter; none of them may show the birth date or any other hidden digit."""
    with pytest.raises(ValueError) as direct:
        validate_resident_id(number, today=date(2026, 1, 1))
    with pytest.raises(InvalidEvent) as parsed:
        parse_subject_id(number)
    for message in (str(direct.value), parsed.value.reason):
        assert "19491231" not in message and "19490230" not in message
        assert "20990101" not in message
        for part in _hidden_parts(number):
            assert part not in message, (part, message)


def test_a_person_shaped_number_gets_no_uscc_detail() -> None:
    wrong = _person("11010519491231002")[:-1] + "1"
    assert looks_like_resident_id(wrong)
    assert not looks_like_resident_id(REAL_USCC)
    with pytest.raises(InvalidEvent) as parsed:
        parse_subject_id(wrong)
    assert parsed.value.reason == (
        "not a valid USCC nor resident ID number "
        "(check character is wrong: it does not match the first 17 characters)"
    )


def test_an_organisations_code_is_still_quoted_in_its_error() -> None:
    with pytest.raises(InvalidEvent) as parsed:
        parse_subject_id(REAL_USCC[:-1] + "2")
    assert "check character is '2', expected '3'" in parsed.value.reason
