"""What the API's routes take from a request besides its body: the Idempotency-Key header
(every command's: cases, clues, referrals, townships), and the registry the app was built or
bootstrapped with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request

from services.registry.handlers import Registry

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="A retried call with this key returns the first answer, writes nothing new.",
    ),
]


def registry_of(request: Request) -> Registry:
    """The app's registry: given to create_app, or made in its lifespan."""
    found: Registry = request.app.state.registry
    return found
