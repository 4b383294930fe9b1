"""Who acts in a call that changes the record (review, resolve, confirm; lift, confirm a lift, grant and confirm a
permit): the name four eyes compare and the objection log and the record keep. Every servicer asks `actor_of`, so
that how the actor is found is decided in this one place."""

from __future__ import annotations

from typing import Any

from debar.sanction.api.access import acting_identity

REVIEWER_FIELD = "reviewer"


def actor_of(request: Any, context: Any) -> str:
    """The identity acting in this call (api/access.py: acting_identity): the authenticated identity, or the
    principal a delegate acts for; never a name from the request. A request's `reviewer` (registry requests have
    none) may be empty or that identity; any other name is INVALID_ARGUMENT naming `reviewer`. `context` is taken
    for the call's metadata, should the accessor ever need it beyond the grant."""
    return acting_identity(getattr(request, REVIEWER_FIELD, ""), REVIEWER_FIELD)
