"""How the HTTP API refuses: one error shape, and one table from each refusal to its status.

Every refusal is `{"error", "errors": [{"field", "reason"}]}`; a router that brings refusals
of its own registers them with `answer_refusals`, so no handler is written twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    error: str
    errors: list[FieldError] = []


def documented(description: str) -> dict[str, Any]:
    """An OpenAPI `responses` entry in the error shape."""
    return {"model": ErrorBody, "description": description}


def error(status: int, message: str, errors: list[FieldError] | None = None) -> JSONResponse:
    body = ErrorBody(error=message, errors=errors or [])
    return JSONResponse(status_code=status, content=body.model_dump())


def answer_refusals(app: FastAPI, statuses: Mapping[type[Exception], int]) -> None:
    """Answer each exception type with its status and its message. One that names a
    `field` and a `reason` (bad input, a refused party) names them in `errors` too."""

    async def refuse(request: Request, exc: Exception) -> JSONResponse:
        status = next(statuses[kind] for kind in type(exc).__mro__ if kind in statuses)
        field, reason = getattr(exc, "field", None), getattr(exc, "reason", None)
        named = [FieldError(field=field, reason=reason)] if field and reason else None
        return error(status, str(exc), named)

    for kind in statuses:
        app.add_exception_handler(kind, refuse)
