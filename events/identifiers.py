"""Subject identifiers with check characters: a typo must be refused, not stored.

USCC: GB 32100-2015 (统一社会信用代码). Resident ID: GB 11643-1999 (公民身份号码).

A resident ID's errors name positions, never characters: an error goes to logs, API
answers and dead letters, and must not show more of a person's number than its masked
form does (first 4 and last 2). A USCC is a public registration, so its errors quote it.
"""

from __future__ import annotations

from datetime import date

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_CHECKS = "10X98765432"
LENGTH = 18


def _normalise(value: str) -> str:
    return value.strip().upper()


def _check_length(value: str, expected: int) -> None:
    if len(value) != expected:
        raise ValueError(f"must be {expected} characters, got {len(value)}")


def _check_alphabet(value: str, alphabet: str) -> None:
    for position, char in enumerate(value, start=1):
        if char not in alphabet:
            raise ValueError(f"character {char!r} at position {position} is not allowed")


def uscc_check_character(first17: str) -> str:
    """The 18th character of a USCC, computed from the first 17."""
    first17 = _normalise(first17)
    _check_length(first17, LENGTH - 1)
    _check_alphabet(first17, USCC_ALPHABET)
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def resident_id_check_character(first17: str) -> str:
    """The 18th character of a resident ID number, computed from the first 17."""
    first17 = _normalise(first17)
    _check_length(first17, LENGTH - 1)
    _check_alphabet(first17, "0123456789")
    total = sum(int(c) * w for c, w in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    return RESIDENT_ID_CHECKS[total % 11]


def validate_uscc(code: str) -> str:
    """Return the normalised USCC or raise ValueError saying exactly what is wrong."""
    code = _normalise(code)
    _check_length(code, LENGTH)
    _check_alphabet(code, USCC_ALPHABET)
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        raise ValueError(f"check character is {code[17]!r}, expected {expected!r}")
    return code


def validate_resident_id(number: str, *, today: date | None = None) -> str:
    """Return the normalised resident ID or raise ValueError saying what is wrong, by
    position only: no character, birth date or expected check character is repeated."""
    number = _normalise(number)
    _check_length(number, LENGTH)
    for position, char in enumerate(number, start=1):
        if char not in "0123456789" and not (position == LENGTH and char == "X"):
            allowed = "a digit or X" if position == LENGTH else "a digit"
            raise ValueError(f"character at position {position} must be {allowed}")
    birth = number[6:14]
    try:
        born = date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        raise ValueError("birth date (characters 7 to 14) is not a real date") from None
    if born > (today or date.today()):
        raise ValueError("birth date (characters 7 to 14) is in the future")
    if number[17] != resident_id_check_character(number[:17]):
        raise ValueError("check character is wrong: it does not match the first 17 characters")
    return number


def looks_like_resident_id(value: str) -> bool:
    """17 digits then a digit or X: the shape of a person's number, whatever its checks say.
    Errors about such a value must not quote it, even when read as a USCC."""
    value = _normalise(value)
    return (
        len(value) == LENGTH
        and value[:17].isascii()
        and value[:17].isdigit()
        and (value[17] in "0123456789X")
    )


def mask_identifier(value: str) -> str:
    """Keep the first 4 and last 2 characters: enough to tell records apart in a log."""
    value = value.strip()
    if len(value) <= 6:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 6) + value[-2:]


def mask_name(name: str) -> str:
    """Keep the first character only, as public notices do (张**)."""
    name = name.strip()
    return name[:1] + "*" * (len(name) - 1)
