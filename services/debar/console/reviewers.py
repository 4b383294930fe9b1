"""The reviewers' pages: sign-in, the queue (soonest deadline first, overdue marked, counts and a weekly chart),
an objection's page and its actions. Every action is done as the signed-in reviewer's own identity."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from debar.console import chart, csrf, views
from debar.console.accounts import Reviewer
from debar.console.sanction_client import (
    Conflict,
    InvalidInput,
    NotAvailable,
    NotFound,
    Refused,
    known_states,
)
from debar.console.web import (
    MAX_REASON,
    FormRefused,
    address_of,
    console_of,
    form,
    notice,
    page,
    signed_in,
    too_long,
)

QUEUE_PAGE = 25
OPEN_VIEW_MAX_PAGES = 5  # the "open" view filters pages of every state: at most this many per screen
COUNTS_CACHE_S = 15.0
_OBJECTION_ID = re.compile(r"^O[0-9a-f]{1,40}\Z")


def _redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def _must_sign_in(request: Request) -> Response:
    if console_of(request).sign_in == "proxy":
        message = "This console is reached through your organisation's sign-in; it did not name you."
        return page(request, "message.html", 401, title="Not signed in", message=message)
    notice(request, "Sign in to work on objections.")
    return _redirect("/signin")


# --- sign-in ----------------------------------------------------------------------------------------------------


async def sign_in_form(request: Request) -> Response:
    return page(request, "signin.html")


async def sign_in(request: Request) -> Response:
    console = console_of(request)
    if console.sign_in != "accounts" or console.accounts is None:
        return page(request, "signin.html", 404)
    try:
        fields = await form(request)
    except FormRefused as refused:
        return page(request, "signin.html", refused.status, error=refused.message)
    if not console.sign_ins.allow(address_of(request)):
        return page(request, "signin.html", 429, error="Too many sign-in attempts; wait a minute and try again.")
    login, password = fields.get("login", ""), fields.get("password", "")
    reviewer = await run_in_threadpool(console.accounts.sign_in, login, password)  # argon2 takes CPU time
    if reviewer is None:
        return page(request, "signin.html", 401, error="That login and password do not match.", login=login[:64])
    request.session.clear()  # a new owner: nothing of the session before carries over
    request.session["reviewer"] = {"login": reviewer.login, "stamp": console.accounts.stamp(reviewer.login)}
    csrf.renew(request.session)
    return _redirect("/queue")


async def sign_out(request: Request) -> Response:
    try:
        await form(request)
    except FormRefused as refused:
        return page(request, "message.html", refused.status, title="Not signed out", message=refused.message)
    request.session.clear()
    notice(request, "You are signed out.")
    return _redirect("/")


# --- the queue --------------------------------------------------------------------------------------------------


def _views() -> list[tuple[str, str]]:
    return [("open", "open (filed, under review, awaiting confirmation, reconsideration)"), ("", "every state")] + [
        (state, views.state_words(state)) for state in known_states()
    ]


async def _every_objection(request: Request, reviewer: Reviewer) -> tuple[list[views.Objection], bool]:
    """Every objection, for the counts and the chart; kept COUNTS_CACHE_S (each view of the queue would else read
    the whole listing)."""
    console = console_of(request)
    cached = console.cache.get("every")
    if cached and console.clock() - cached[0] < COUNTS_CACHE_S:
        found: tuple[list[views.Objection], bool] = cached[1]
        return found
    found = await console.client.every_objection(acting_for=reviewer)
    console.cache["every"] = (console.clock(), found)
    return found


async def queue(request: Request) -> Response:
    reviewer = signed_in(request)
    if reviewer is None:
        return _must_sign_in(request)
    console = console_of(request)
    state = request.query_params.get("state", "open")
    overdue_only = request.query_params.get("overdue") == "1"
    token = request.query_params.get("page", "")
    choices = _views()
    if state not in dict(choices):
        return page(request, "message.html", 400, title="Unknown filter", message=f"No such state: {state[:40]!r}.")
    try:
        shown, next_token = await _queue_page(request, reviewer, state, overdue_only, token)
    except InvalidInput:
        return page(
            request,
            "message.html",
            400,
            title="Stale page link",
            message="That page link is not valid any more; start again from the first page.",
        )
    everything, complete = await _every_objection(request, reviewer)
    counts = Counter(o.state for o in everything)
    weeks = chart.weekly(everything, console.now())
    query = {"state": state, **({"overdue": "1"} if overdue_only else {})}
    return page(
        request,
        "queue.html",
        objections=shown,
        state=state,
        overdue_only=overdue_only,
        choices=choices,
        counts=[(s, counts.get(s, 0)) for s in known_states()],
        overdue_count=sum(o.overdue for o in everything),
        complete=complete,
        chart=chart.svg(weeks),
        weeks=weeks,
        next_link=f"/queue?{urlencode({**query, 'page': next_token})}" if next_token else "",
        first_link=f"/queue?{urlencode(query)}" if token else "",
    )


async def _queue_page(
    request: Request, reviewer: Reviewer, state: str, overdue_only: bool, token: str
) -> tuple[list[views.Objection], str]:
    client = console_of(request).client
    if state != "open":
        return await client.objections(state, overdue_only, QUEUE_PAGE, token, acting_for=reviewer)
    # The API filters by one state: the open ones are read from the listing of every state, page by page.
    shown: list[views.Objection] = []
    for _ in range(OPEN_VIEW_MAX_PAGES):
        found, token = await client.objections("", overdue_only, QUEUE_PAGE, token, acting_for=reviewer)
        shown += [o for o in found if o.is_open]
        if len(shown) >= QUEUE_PAGE or not token:
            break
    return shown, token


# --- one objection ----------------------------------------------------------------------------------------------


async def _objection_page(
    request: Request, reviewer: Reviewer, objection_id: str, status: int = 200, error: str = "", reason: str = ""
) -> Response:
    client = console_of(request).client
    if not _OBJECTION_ID.match(objection_id):
        return page(
            request,
            "message.html",
            400,
            title="Not an objection id",
            message="Objection ids look like O3a7f0c1d2e3b4a59.",
        )
    try:
        objection = await client.objection(objection_id, acting_for=reviewer)
    except (NotFound, InvalidInput):
        return page(request, "message.html", 404, title="No such objection", message=f"No objection {objection_id}.")
    decision = await client.decision(objection.decision_id, acting_for=reviewer)
    catalogue = await client.catalogue()
    return page(
        request,
        "objection.html",
        status,
        objection=objection,
        decision=decision,
        catalogue=catalogue,
        error=error,
        reason=reason,
        receipt=await client.receipt_status(objection.decision_id),
        own_overturn=objection.state == views.AWAITING_CONFIRMATION and objection.resolved_by == reviewer.identity,
    )


async def objection(request: Request) -> Response:
    reviewer = signed_in(request)
    if reviewer is None:
        return _must_sign_in(request)
    return await _objection_page(request, reviewer, request.path_params["objection_id"])


_ACTIONS = {
    "review": (views.FILED,),
    # From awaiting confirmation only to uphold: any reviewer may keep the record in force.
    "resolve": (views.UNDER_REVIEW, views.RECONSIDERATION, views.AWAITING_CONFIRMATION),
    "confirm": (views.AWAITING_CONFIRMATION,),
}


async def act(request: Request) -> Response:
    """POST /objections/{id}/{review|resolve|confirm}. The form carries the state it was shown in: a form from
    before the objection moved on changes nothing."""
    reviewer = signed_in(request)
    if reviewer is None:
        return _must_sign_in(request)
    objection_id, action = request.path_params["objection_id"], request.path_params["action"]
    if action not in _ACTIONS or not _OBJECTION_ID.match(objection_id):
        return page(request, "message.html", 404, title="No such page", message="There is no such action.")
    try:
        fields = await form(request)
    except FormRefused as refused:
        return await _objection_page(request, reviewer, objection_id, refused.status, refused.message)
    client = console_of(request).client
    try:
        current = await client.objection(objection_id, acting_for=reviewer)
    except (NotFound, InvalidInput):
        return page(request, "message.html", 404, title="No such objection", message=f"No objection {objection_id}.")
    shown_as = fields.get("state", "")
    if shown_as != current.state or current.state not in _ACTIONS[action]:
        moved = (
            f"This objection has moved on since the page was shown (it is now {views.state_words(current.state)})"
            "; nothing was changed. Here is where it stands."
        )
        return await _objection_page(request, reviewer, objection_id, 409, moved)
    reason = fields.get("reason", "")
    try:
        if action == "review":
            await client.review(objection_id, reviewer)
            done = "Taken under review."
        elif action == "resolve":
            outcome = fields.get("outcome", "")
            problem = _resolution_problem(outcome, reason, current.state)
            if problem:
                return await _objection_page(request, reviewer, objection_id, 400, problem, reason)
            resolved = await client.resolve(objection_id, outcome, reviewer, reason.strip())
            done = f"Resolved: {views.state_words(resolved.state)}."
        else:
            if current.resolved_by == reviewer.identity:
                own = "You overturned this objection yourself: another reviewer must confirm it."
                return await _objection_page(request, reviewer, objection_id, 403, own)
            await client.confirm_resolution(objection_id, reviewer)
            done = "Confirmed: the overturn takes effect and the record is corrected."
    except InvalidInput as bad:
        return await _objection_page(request, reviewer, objection_id, 400, f"{bad}; nothing was changed.", reason)
    except Conflict as conflict:
        return await _objection_page(request, reviewer, objection_id, 409, f"{conflict}; nothing was changed.")
    except NotAvailable as missing:
        return await _objection_page(request, reviewer, objection_id, 501, f"{missing}; nothing was changed.")
    except Refused as refused:  # e.g. a reviewer confirming their own overturn, by another spelling of their name
        return await _objection_page(request, reviewer, objection_id, 403, f"{refused}; nothing was changed.")
    console_of(request).cache.pop("every", None)
    notice(request, done)
    return _redirect(f"/objections/{objection_id}")


def _resolution_problem(outcome: str, reason: str, state: str) -> str | None:
    if state == views.AWAITING_CONFIRMATION and outcome != "upheld":
        return "It is overturned already, awaiting confirmation: confirm it, or uphold it instead."
    if outcome not in ("upheld", "overturned"):
        return "Choose the outcome: uphold (the record stands) or overturn (the record is corrected)."
    if not reason.strip():
        return "Give the reason for the outcome: it is shown to the person and kept in the history."
    if too_long(reason, MAX_REASON):
        return f"The reason has more than {MAX_REASON} characters; shorten it. Nothing was changed."
    return None
