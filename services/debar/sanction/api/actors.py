"""Who acts in a call that changes the record (review, resolve, confirm; lift, confirm a lift, grant and confirm a
permit): the name four eyes compare and the objection log and the record keep. Every servicer asks `actor_of`, so
that how the actor is found is decided in this one place."""

from __future__ import annotations

from typing import Any

from debar.sanction.api.access import current_grant

REVIEWER_FIELD = "reviewer"


def actor_of(request: Any, context: Any) -> str:
    """The identity acting in this call. Today: the request's `reviewer` when it has that field and it is set (how
    reviewers are named until identities land, issue 11 part A), else the authenticated caller (the certificate
    CN, the token's caller, or x-debar-caller in local mode); registry requests have no such field. `context` is
    taken so that the identity accessor that replaces this one line can read the call's metadata."""
    return getattr(request, REVIEWER_FIELD, "") or current_grant().caller  # the switch to the identity accessor
