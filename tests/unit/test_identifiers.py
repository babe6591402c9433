from datetime import date

import pytest

from events.identifiers import (
    mask_identifier,
    mask_name,
    resident_id_check_character,
    uscc_check_character,
    validate_resident_id,
    validate_uscc,
)

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
    with pytest.raises(ValueError, match=r"check character is '1', expected 'X'"):
        validate_resident_id(PERSON[:-1] + "1")


def test_resident_id_letter_in_body() -> None:
    with pytest.raises(ValueError, match=r"character 'A' at position 3 is not allowed"):
        validate_resident_id("11A10519491231002X")


def test_resident_id_impossible_birth_date() -> None:
    first17 = "11010519490230002"
    number = first17 + resident_id_check_character(first17)
    with pytest.raises(ValueError, match="'19490230' is not a real date"):
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
