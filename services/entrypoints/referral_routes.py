"""`/v1/referrals`: send, accept or refuse, answer and read referrals (issue #17).

The access table (services/access.py) lets the roles reach these paths; the handlers then
check the body behind the token against the referral: who may send its kind, that only
its receiver answers it, that only sender, receiver and operators read it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request

from services.access import Principal
from services.bootstrap import referrals_for
from services.entrypoints.refusals import answer_refusals, documented
from services.entrypoints.request_parts import IdempotencyKey
from services.referrals.domain import (
    AlreadyPending,
    IllegalReferralStep,
    NoSuchReferral,
    NotAllowed,
)
from services.referrals.handlers import (
    Acceptance,
    Outcome,
    ReferralPage,
    ReferralQuery,
    Referrals,
    ReferralView,
    Refusal,
    SendReferral,
)

ON_A_REFERRAL: dict[int | str, dict[str, Any]] = {
    403: documented("Only the referral's receiver answers it (the receiver is named)."),
    404: documented("No such referral."),
    409: documented("The referral's state does not allow this step (both named)."),
}


def service(request: Request) -> Referrals:
    """The app's referral service: given (tests inject one with their own clock), or made
    on first use over the registry's store."""
    found: Referrals | None = getattr(request.app.state, "referrals", None)
    if found is None:
        found = referrals_for(request.app.state.registry)
        request.app.state.referrals = found
    return found


def principal(request: Request) -> Principal:
    who: Principal = request.state.principal
    return who


def referral_router() -> APIRouter:
    router = APIRouter(prefix="/v1/referrals", tags=["referrals"])
    _add_sending(router)
    _add_answering(router)
    return router


def _add_sending(router: APIRouter) -> None:
    """Sending a referral, and finding those sent or received."""

    @router.post(
        "",
        status_code=201,
        response_model=ReferralView,
        responses={
            403: documented("The caller's body does not send this kind."),
            404: documented("No such case."),
            409: documented("The case has this kind of referral waiting already."),
        },
    )
    async def send(
        request: Request, details: SendReferral, key: IdempotencyKey = None
    ) -> ReferralView:
        """Send a referral by hand (a case officer for natural resources, a department or
        party for itself); the threshold's referrals are sent by the registry itself."""
        return await service(request).send(principal(request), details, key)

    @router.get("", response_model=ReferralPage)
    async def find(request: Request, query: Annotated[ReferralQuery, Query()]) -> ReferralPage:
        """A receiver lists what was sent to it (`to=me`, the default for a department or
        party), a sender what it sent (`from=me`)."""
        return await service(request).find(principal(request), query)


def _add_answering(router: APIRouter) -> None:
    """One referral: read, accepted, refused, its outcome recorded."""

    @router.get("/{referral_id}", response_model=ReferralView, responses=ON_A_REFERRAL)
    async def get(request: Request, referral_id: str) -> ReferralView:
        return await service(request).get(principal(request), referral_id)

    @router.post("/{referral_id}/acceptance", response_model=ReferralView, responses=ON_A_REFERRAL)
    async def accept(
        request: Request, referral_id: str, details: Acceptance, key: IdempotencyKey = None
    ) -> ReferralView:
        """Accept (受理/立案) under the receiver's own reference number."""
        return await service(request).accept(principal(request), referral_id, details, key)

    @router.post("/{referral_id}/refusal", response_model=ReferralView, responses=ON_A_REFERRAL)
    async def refuse(
        request: Request, referral_id: str, details: Refusal, key: IdempotencyKey = None
    ) -> ReferralView:
        """Refuse (不予受理), saying why."""
        return await service(request).refuse(principal(request), referral_id, details, key)

    @router.post("/{referral_id}/outcome", response_model=ReferralView, responses=ON_A_REFERRAL)
    async def outcome(
        request: Request, referral_id: str, details: Outcome, key: IdempotencyKey = None
    ) -> ReferralView:
        """The outcome, one of the kind's (e.g. case_opened, enforcement_granted)."""
        return await service(request).record_outcome(principal(request), referral_id, details, key)


def serve_referrals(app: FastAPI) -> None:
    """The referral routes and the answers to their refusals."""
    app.include_router(referral_router())

    answer_refusals(
        app, {NotAllowed: 403, NoSuchReferral: 404, IllegalReferralStep: 409, AlreadyPending: 409}
    )
