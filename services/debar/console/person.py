"""The refused person's pages: look up a decision by its id and one's own ID number, read why, object, ask for
reconsideration, download the receipt.

A lookup that matches opens the decision's page for PERSON_GRANT_S, by a grant in the signed session cookie (the
decision id, never the ID number). Every failed match answers the same "not found"; the ID number is never shown
back beyond its mask, never logged, never put in a URL (every form is a POST) and never kept."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from debar.common.identifiers import mask_identifier
from debar.console import views
from debar.console.sanction_client import Conflict, InvalidInput, NotAvailable, NotFound, subject_of
from debar.console.web import (
    MAX_CONTACT,
    MAX_DECISION_ID,
    MAX_STATEMENT,
    PERSON_GRANT_S,
    FormRefused,
    address_of,
    console_of,
    form,
    notice,
    page,
    too_long,
)

_DECISION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*\Z")
NOT_FOUND = (
    "No decision with this id was found for this ID number. Check both against the refusal you were given "
    "and try again."
)
RECEIPT_VERIFY = (
    "Anyone can check a receipt offline, without trusting this site: debar receipt verify FILE --log-key KEY, "
    "with the log's public key that the operator publishes."
)


def _lookup_page(request: Request, status: int = 200, error: str = "", decision_id: str = "") -> Response:
    return page(request, "lookup.html", status, error=error, decision_id=decision_id)


def _redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


async def lookup_form(request: Request) -> Response:
    return _lookup_page(request)


def decision_id_problem(value: str) -> str | None:
    if not value:
        return "Enter the decision id from the refusal."
    if len(value) > MAX_DECISION_ID or not _DECISION_ID.match(value):
        return "That is not a decision id: it has only letters and digits, like 2r5nyeewxs5qxh4yjlzzmt5tua."
    return None


async def lookup(request: Request) -> Response:
    console = console_of(request)
    try:
        fields = await form(request)
    except FormRefused as refused:
        return _lookup_page(request, refused.status, refused.message)
    if not console.lookups.allow(address_of(request)):
        minutes = max(1, round(console.lookups.retry_after() / 60))
        return _lookup_page(request, 429, f"Too many look-ups from your network; try again in {minutes} minute(s).")
    decision_id = fields.get("decision_id", "").strip()
    problem = decision_id_problem(decision_id)
    if problem:
        return _lookup_page(request, 400, problem, decision_id[:MAX_DECISION_ID])
    try:
        subject = subject_of(fields.get("id_number", ""))
    except InvalidInput as bad:
        return _lookup_page(request, 400, f"That ID number is not valid: it {bad.reason}.", decision_id)
    try:
        decision = await console.client.decision_of(decision_id, subject)
    except NotFound:
        return _lookup_page(request, 404, NOT_FOUND, decision_id)
    except InvalidInput as bad:
        if bad.field == "decision_id":
            return _lookup_page(request, 400, f"That is not a decision id: {bad.reason}.", decision_id)
        raise
    objection = await console.client.objection_on(decision.decision_id)
    request.session["person"] = {
        "decision_id": decision.decision_id,
        "objection_id": objection.objection_id if objection else "",
        "masked": f"{subject.kind.value} {mask_identifier(subject.number)}",
        "until": console.now() + PERSON_GRANT_S,
    }
    return _redirect("/my-decision")


def _grant(request: Request) -> dict[str, str] | None:
    grant = request.session.get("person")
    if not isinstance(grant, dict) or int(grant.get("until", 0)) < console_of(request).now():
        request.session.pop("person", None)
        return None
    return grant


def _expired(request: Request) -> Response:
    notice(request, "Look up your decision again: for your privacy the page closes after 15 minutes.")
    return _redirect("/lookup")


async def _person_page(
    request: Request, grant: dict[str, str], status: int = 200, error: str = "", statement: str = "", contact: str = ""
) -> Response:
    console = console_of(request)
    decision = await console.client.decision(grant["decision_id"])
    objection = await console.client.objection(grant["objection_id"]) if grant.get("objection_id") else None
    catalogue = await console.client.catalogue()
    return page(
        request,
        "person.html",
        status,
        decision=decision,
        objection=objection,
        catalogue=catalogue,
        guide=catalogue.guide_for(decision),
        masked=grant.get("masked", ""),
        error=error,
        statement=statement,
        contact=contact,
        receipt_verify=RECEIPT_VERIFY,
        receipt=await console.client.receipt_status(grant["decision_id"]),
        can_reconsider=_can_reconsider(objection, console.now()),
    )


def _can_reconsider(objection: views.Objection | None, now: int) -> bool:
    return (
        objection is not None
        and objection.state == views.UPHELD
        and not objection.reconsidered
        and now <= objection.reconsideration_request_due
    )


async def my_decision(request: Request) -> Response:
    grant = _grant(request)
    if grant is None:
        return _expired(request)
    return await _person_page(request, grant)


async def file_objection(request: Request) -> Response:
    grant = _grant(request)
    if grant is None:
        return _expired(request)
    try:
        fields = await form(request)
    except FormRefused as refused:
        return await _person_page(request, grant, refused.status, refused.message)
    statement, contact = fields.get("statement", ""), fields.get("contact", "")
    if grant.get("objection_id"):
        return await _person_page(
            request, grant, 409, "An objection on this decision was already filed (below); nothing was changed."
        )
    problem = _objection_problem(statement, contact)
    if problem:
        return await _person_page(request, grant, 400, problem, statement, contact)
    client = console_of(request).client
    try:
        objection = await client.file_objection(grant["decision_id"], statement.strip(), contact.strip())
    except InvalidInput as bad:
        return await _person_page(request, grant, 400, _field_words(bad), statement, contact)
    except Conflict as conflict:
        return await _person_page(request, grant, 409, str(conflict), statement, contact)
    request.session["person"] = {**grant, "objection_id": objection.objection_id}
    notice(request, f"Your objection was filed. Its number is {objection.objection_id}.")
    return _redirect("/my-decision")


def _objection_problem(statement: str, contact: str) -> str | None:
    if not statement.strip():
        return "Say why you object: the statement is required."
    if too_long(statement, MAX_STATEMENT):
        return (
            f"Your statement has {len(statement.strip())} characters; at most {MAX_STATEMENT} are accepted. "
            "Shorten it and send it again: nothing was filed."
        )
    if not contact.strip():
        return "Give a way to reach you (e-mail or postal address): the contact is required."
    if too_long(contact, MAX_CONTACT):
        return f"The contact has more than {MAX_CONTACT} characters; nothing was filed."
    return None


def _field_words(bad: InvalidInput) -> str:
    names = {"statement": "The statement", "contact": "The contact", "decision_id": "The decision id"}
    return f"{names.get(bad.field, 'What you sent')} {bad.reason}; nothing was filed."


async def request_reconsideration(request: Request) -> Response:
    grant = _grant(request)
    if grant is None:
        return _expired(request)
    try:
        fields = await form(request)
    except FormRefused as refused:
        return await _person_page(request, grant, refused.status, refused.message)
    statement = fields.get("statement", "")
    if not statement.strip() or too_long(statement, MAX_STATEMENT):
        problem = f"Say why the decision should be looked at again, in at most {MAX_STATEMENT} characters."
        return await _person_page(request, grant, 400, problem, statement)
    client = console_of(request).client
    objection_id = grant.get("objection_id", "")
    current = await client.objection(objection_id) if objection_id else None
    if not _can_reconsider(current, console_of(request).now()):
        return await _person_page(
            request,
            grant,
            409,
            "Reconsideration cannot be asked now (see the state of your objection below); nothing was changed.",
        )
    try:
        await client.request_reconsideration(objection_id, statement.strip())
    except (Conflict, InvalidInput) as refused:
        return await _person_page(request, grant, 409, f"{refused}; nothing was changed.", statement)
    notice(request, "Your request for reconsideration was filed.")
    return _redirect("/my-decision")


async def receipt(request: Request) -> Response:
    grant = _grant(request)
    if grant is None:
        return _expired(request)
    try:
        await form(request)
    except FormRefused as refused:
        return await _person_page(request, grant, refused.status, refused.message)
    try:
        data = await console_of(request).client.receipt(grant["decision_id"])
    except NotAvailable as missing:
        return await _person_page(request, grant, 503, f"Sorry: {missing}.")
    name = f"debar-receipt-{grant['decision_id']}.json"
    return Response(
        data, media_type="application/json", headers={"content-disposition": f'attachment; filename="{name}"'}
    )


async def forget(request: Request) -> Response:
    try:
        await form(request)
    except FormRefused as refused:
        return _lookup_page(request, refused.status, refused.message)
    request.session.pop("person", None)
    notice(request, "The decision's page is closed.")
    return _redirect("/lookup")
