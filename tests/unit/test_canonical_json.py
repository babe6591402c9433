"""The fast canonical encoder writes exactly what RFC 8785 (the rfc8785 package) writes."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from events.envelope import canonical_json

SAMPLES: list[Any] = [
    {"b": 1, "a": [True, False, None], "c": {"z": "x", "y": ""}},
    {"name": "孝义市某建材有限公司", "quote": '引号"与反斜杠\\', "ctl": "\x00\x1f\b\f\n\r\t\x7f"},
    {"sep": "\u2028\u2029", "emoji": "🌾", "big": 2**53 - 1, "neg": -7},
    {"é": 1, "e": 2, "E": 3, "ü": {"ß": [1, {"k": "v"}]}},
    {"float": 1.5, "exp": 1e21},  # takes the full JCS path
    {"𝒜": 1, "B": 2},  # an astral key: UTF-16 order, full JCS path
]


@pytest.mark.parametrize("value", SAMPLES)
def test_same_bytes_as_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53 - 1), 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_same_bytes_as_rfc8785_for_any_document(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_an_integer_beyond_i_json_is_refused_as_rfc8785_refuses_it() -> None:
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json({"n": 2**53})
