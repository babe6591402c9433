"""The check API's OpenAPI document, written out as there is no framework to derive it;
served at /openapi.json and /docs, and fuzzed in the tests (test_api_fuzz.py)."""

from __future__ import annotations

from typing import Any

# A check's body: three fields, a site of at most 4000 characters of up to 3 UTF-8 bytes.
MAX_BODY = 16 * 1024


def _error_schema() -> dict[str, Any]:
    field = {
        "type": "object",
        "required": ["field", "reason"],
        "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
    }
    return {
        "type": "object",
        "required": ["errors"],
        "properties": {"errors": {"type": "array", "items": field, "minItems": 1}},
    }


def _json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_REFUSED = _json_answer("Bad input, each field named with the reason.", _error_schema())
_TIME = {"type": ["string", "null"], "format": "date-time"}
_AGE = {"type": ["number", "null"]}
_QUERY = {"style": "form", "explode": True}
_NON_BLANK = {"type": "string", "minLength": 1, "pattern": r"\S"}
_CLEAR_OR_BLOCKED = {
    "type": "object",
    "required": ["status", "measure"],
    "properties": {
        "status": {"enum": ["blocked", "clear"]},
        "measure": {"type": "string"},
        "blocked_elsewhere": {
            "type": "boolean",
            "description": "Clear at this site; the subject is blocked at another one.",
        },
        "target": {"enum": ["subject", "site", "project"]},
        "subject_hash": {"type": "string"},
        "subject_kind": {"type": "string"},
        "masked_name": {"type": "string"},
        "department": {"type": "string"},
        "legal_basis": {"type": "array", "items": {"type": "string"}},
        "cases": {"type": "array", "items": {"type": "object"}},
        "watermark": _TIME,
        "age_seconds": _AGE,
    },
}
_STALE = {
    "type": "object",
    "required": ["status", "measure", "watermark", "age_seconds", "bound_seconds", "reason"],
    "properties": {
        "status": {"const": "stale"},
        "measure": {"type": "string"},
        "watermark": _TIME,
        "age_seconds": _AGE,
        "bound_seconds": {"type": "number"},
        "reason": {"type": "string"},
        "last_known": _CLEAR_OR_BLOCKED,
    },
}
_HEALTH = {
    "type": "object",
    "required": ["status", "watermark", "age_seconds", "bound_seconds", "measures"],
    "properties": {
        "status": {"enum": ["fresh", "stale"]},
        "watermark": _TIME,
        "age_seconds": _AGE,
        "bound_seconds": {"type": "number"},
        "measures": {"type": "object"},
    },
}
_CHECK_BODY = {
    "type": "object",
    "required": ["measure", "subject"],
    "additionalProperties": False,
    "properties": {
        "measure": {**_NON_BLANK, "description": "A measure this subscriber serves."},
        "subject": {**_NON_BLANK, "description": "USCC or resident ID number, as presented."},
        "site": {
            "type": ["string", "null"],
            "description": "As the query parameter `site` of GET /v1/checks.",
        },
    },
}
_UNAUTHORIZED = _json_answer(
    "No bearer token, or one this connector does not know (the reason says which).",
    _error_schema(),
)
_LIMITED = {
    **_json_answer(
        "Too many checks for this token: retry after Retry-After seconds.", _error_schema()
    ),
    "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
}
_CHECK_ANSWERS = {
    "200": _json_answer("Blocked or clear, as of the watermark.", _CLEAR_OR_BLOCKED),
    "401": _UNAUTHORIZED,
    "422": _REFUSED,
    "429": _LIMITED,
    "503": _json_answer("Stale: the replica cannot vouch for now.", _STALE),
}
_MEASURE = {
    "name": "measure",
    "in": "query",
    "required": True,
    "description": "A measure this subscriber serves, e.g. refuse_power_supply.",
    "schema": _NON_BLANK,
    **_QUERY,
}

# The check API's OpenAPI document: written out, as there is no framework to derive it.
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Redline subscriber check API", "version": "1"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearer": []}],
    "paths": {
        "/v1/checks": {
            "post": {
                "summary": "Whether a subject is blocked under a measure (at a site, for a "
                "measure held against sites), from the local replica. Preferred to GET: the "
                "ID number stays out of URLs, proxies' and servers' logs.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _CHECK_BODY}},
                },
                "responses": {
                    **_CHECK_ANSWERS,
                    "413": _json_answer(f"The body is over {MAX_BODY} bytes.", _error_schema()),
                },
            },
            "get": {
                "summary": "The same check, its fields in the query string (for callers that "
                "can only GET; prefer POST, which keeps the ID number out of URLs and logs).",
                "parameters": [
                    _MEASURE,
                    {
                        "name": "subject",
                        "in": "query",
                        "required": True,
                        "description": "USCC or resident ID number, as presented.",
                        "schema": _NON_BLANK,
                        **_QUERY,
                    },
                    {
                        "name": "site",
                        "in": "query",
                        "required": False,
                        "description": (
                            "Where the supply is asked for: the real-estate unit code, else "
                            "the parcel code, else the address. Required for a measure held "
                            "against sites (water, power, gas); ignored for loans."
                        ),
                        "schema": {"type": "string"},
                        **_QUERY,
                    },
                ],
                "responses": _CHECK_ANSWERS,
            },
        },
        "/v1/health": {
            "get": {
                "summary": "Watermarks, offsets, counts and queues (no token needed).",
                "security": [],
                "responses": {
                    "200": _json_answer("Every list is fresh.", _HEALTH),
                    "503": _json_answer("Some list is stale.", _HEALTH),
                },
            }
        },
        "/v1/blocks.csv": {
            "get": {
                "summary": "The current list of a measure as CSV.",
                "parameters": [_MEASURE],
                "responses": {
                    "200": {
                        "description": "The list; X-Redline-Status says fresh or stale.",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    "401": _UNAUTHORIZED,
                    "422": _REFUSED,
                },
            }
        },
    },
}
