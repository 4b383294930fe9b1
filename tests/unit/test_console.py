"""The console's pure parts: deadlines as they read, the weekly chart, CSRF tokens, the accounts file, the
per-address limit and who the client is behind a proxy, and the four-eyes part of the objection page."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date
from ipaddress import ip_network
from pathlib import Path

import pytest

from debar.console import chart, csrf, views
from debar.console.accounts import Accounts, AccountsError, Reviewer, add_reviewer, reviewer_of, write_demo_reviewers
from debar.console.deadlines import DAY, HOUR, deadline, duration, when
from debar.console.throttle import RateLimiter, client_address
from debar.console.web import TEMPLATES

NOW = 1_780_000_000  # 2026-05-28 (a Thursday)


def objection(state: str = views.FILED, **changes: object) -> views.Objection:
    base = views.Objection(
        objection_id="O3ab000000000001", decision_id="1-0-3ab-0", state=state, statement="That is not me.",
        contact="me@example.com", filed_at=NOW - 2 * DAY, review_due=NOW + 13 * DAY, correction_due=0,
        reconsideration_request_due=0, overdue=False,
        history=(views.Transition("", views.FILED, "subject", "objection filed", NOW - 2 * DAY),),
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


# --- deadlines --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "less than a minute"), (59, "less than a minute"), (60, "1 minute"), (7200, "2 hours"),
     (DAY, "1 day"), (2 * DAY + 23 * HOUR, "2 days")],
)  # fmt: skip
def test_a_duration_reads_in_its_largest_whole_unit(seconds, words):
    assert duration(seconds) == words


def test_an_open_objection_is_due_by_its_review_deadline():
    shown = deadline(objection(), NOW)
    assert shown is not None
    assert (shown.label, shown.due_at, shown.overdue, shown.words) == ("decision due", NOW + 13 * DAY, False,
                                                                      "due in 13 days")  # fmt: skip


def test_an_overdue_objection_says_how_late():
    late = objection(review_due=NOW - 2 * DAY - 5 * HOUR, overdue=True)
    shown = deadline(late, NOW)
    assert shown is not None and shown.overdue and shown.words == "overdue by 2 days"


def test_the_services_judgement_of_overdue_is_kept():
    """Past its deadline but not overdue (an overturned objection corrected at once): nothing is due any more."""
    corrected = objection(views.OVERTURNED, correction_due=NOW - DAY, overdue=False)
    assert deadline(corrected, NOW) is None
    uncorrected = objection(views.OVERTURNED, correction_due=NOW - DAY, overdue=True)
    shown = deadline(uncorrected, NOW)
    assert shown is not None and shown.label == "correction due" and shown.words == "overdue by 1 day"


def test_an_upheld_objection_shows_the_persons_own_deadline_never_as_overdue():
    upheld = objection(views.UPHELD, reconsideration_request_due=NOW + 3 * DAY)
    shown = deadline(upheld, NOW)
    assert shown is not None and shown.persons and not shown.overdue and shown.words == "3 days left"
    passed = deadline(upheld, NOW + 4 * DAY)
    assert passed is not None and passed.words == "passed" and not passed.overdue


def test_moments_are_shown_in_utc_saying_so():
    assert when(NOW) == "2026-05-28 20:26 UTC"
    assert when(0) == "-"


# --- the chart --------------------------------------------------------------------------------------------------


def test_objections_are_counted_by_the_week_they_were_filed():
    filed = [
        objection(filed_at=NOW),
        objection(filed_at=NOW - 3 * DAY, overdue=True),  # Monday of this week
        objection(filed_at=NOW - 7 * DAY, overdue=True),
        objection(filed_at=NOW - 70 * DAY),  # before the chart's weeks
    ]
    weeks = chart.weekly(filed, NOW, weeks=4)
    assert [w.monday for w in weeks] == [date(2026, 5, 4), date(2026, 5, 11), date(2026, 5, 18), date(2026, 5, 25)]
    assert [(w.filed, w.overdue) for w in weeks] == [(0, 0), (0, 0), (1, 1), (2, 1)]


def test_the_chart_is_well_formed_svg_naming_every_figure_without_style_or_script():
    weeks = [chart.Week(date(2026, 5, 18), 3, 1), chart.Week(date(2026, 5, 25), 7, 0)]
    drawn = chart.svg(weeks)
    root = ET.fromstring(drawn)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and root.get("role") == "img"
    desc = root.find(f"{ns}desc")
    assert desc is not None
    assert desc.text == "week of 2026-05-18: 3 filed, 1 overdue; week of 2026-05-25: 7 filed, 0 overdue"
    bars = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    heights = {r.find(f"{ns}title").text: float(r.get("height", "0")) for r in bars}  # type: ignore[union-attr]
    assert heights["7 filed"] > heights["3 filed"] > heights["1 overdue"] > 0 == heights["0 overdue"]
    assert "style" not in drawn and "<script" not in drawn
    assert '">10</text>' in drawn  # the axis top: the next round number at or above the highest bar


def test_an_empty_chart_still_draws():
    root = ET.fromstring(chart.svg(chart.weekly([], NOW)))
    assert root.find("{http://www.w3.org/2000/svg}title") is not None


# --- CSRF -------------------------------------------------------------------------------------------------------


def test_a_form_token_is_the_sessions_own():
    session: dict[str, object] = {}
    issued = csrf.token(session)
    assert len(issued) >= 40 and csrf.token(session) == issued  # one per session
    assert csrf.valid(session, issued)
    assert not csrf.valid(session, None) and not csrf.valid(session, "") and not csrf.valid(session, issued[:-1] + "x")
    assert not csrf.valid({}, issued)  # a session without one accepts none
    other: dict[str, object] = {}
    assert not csrf.valid(other, issued) and csrf.token(other) != issued


def test_a_new_owner_of_the_session_gets_a_new_token():
    session: dict[str, object] = {}
    before = csrf.token(session)
    after = csrf.renew(session)
    assert after != before and not csrf.valid(session, before) and csrf.valid(session, after)


# --- accounts ---------------------------------------------------------------------------------------------------


def test_a_reviewer_signs_in_with_their_own_password_only(tmp_path: Path):
    path = tmp_path / "accounts.json"
    add_reviewer(path, "li", "a long password for li", "Judge Li")
    add_reviewer(path, "zhang", "another long password", "")
    accounts = Accounts.load(path)
    assert accounts.sign_in("li", "a long password for li") == Reviewer("li", "Judge Li")
    assert accounts.sign_in("li", "another long password") is None
    assert accounts.sign_in("nobody", "a long password for li") is None
    assert accounts.sign_in("li", "a long password for li" + "x" * 2000) is None
    assert accounts.sign_in("zhang", "another long password") == Reviewer("zhang", "zhang")
    stored = path.read_text()
    assert "a long password" not in stored and stored.count("$argon2id$") == 2
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_identity_at_the_sanction_service_is_the_reviewers_own():
    assert Reviewer("li", "Judge Li").identity == "reviewer:li"
    assert reviewer_of(" li ") == Reviewer("li", "li")
    assert reviewer_of("li@court.example") is None and reviewer_of("") is None and reviewer_of("Li") is None


def test_demo_reviewers_get_fresh_passwords_and_other_accounts_stay(tmp_path: Path):
    path = tmp_path / "accounts.json"
    add_reviewer(path, "wang", "wang's own password")
    first = write_demo_reviewers(path)
    second = write_demo_reviewers(path)
    assert [r.login for r, _ in first] == ["li", "zhang"]
    assert first[0][1] != second[0][1]
    accounts = Accounts.load(path)
    assert accounts.sign_in("li", second[0][1]) and not accounts.sign_in("li", first[0][1])
    assert accounts.sign_in("wang", "wang's own password")


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("{", "cannot read"),
        ('{"people": {}}', "expected"),
        ('{"reviewers": {"Li": {"password_hash": "$argon2id$x"}}}', "login 'Li'"),
        ('{"reviewers": {"li": {"password_hash": "secret"}}}', "no argon2 password_hash"),
    ],
)
def test_a_bad_accounts_file_is_named_with_what_is_wrong(tmp_path: Path, content: str, complaint: str):
    path = tmp_path / "accounts.json"
    path.write_text(content)
    with pytest.raises(AccountsError, match=re.escape(complaint)) as raised:
        Accounts.load(path)
    assert str(path) in str(raised.value) and "secret" not in str(raised.value)


def test_weak_passwords_and_bad_logins_are_refused(tmp_path: Path):
    with pytest.raises(AccountsError, match="12 to"):
        add_reviewer(tmp_path / "a.json", "li", "short")
    with pytest.raises(AccountsError, match="must match"):
        add_reviewer(tmp_path / "a.json", "reviewer:li", "long enough password")
    assert not (tmp_path / "a.json").exists()


# --- who is asking, how often -----------------------------------------------------------------------------------


def test_each_address_gets_its_own_count_per_minute():
    clock = [60.0 * 1000]
    limiter = RateLimiter(2, clock=lambda: clock[0])
    assert [limiter.allow("198.51.100.1") for _ in range(3)] == [True, True, False]
    assert limiter.allow("198.51.100.2")
    clock[0] += 30
    assert not limiter.allow("198.51.100.1") and limiter.retry_after() == 30
    clock[0] += 30
    assert limiter.allow("198.51.100.1")


def test_a_full_table_makes_new_addresses_wait_rather_than_forgetting_the_others(monkeypatch):
    from debar.console import throttle

    monkeypatch.setattr(throttle, "MAX_TRACKED", 2)
    limiter = RateLimiter(1, clock=lambda: 0.0)
    assert limiter.allow("a") and limiter.allow("b")
    assert not limiter.allow("c")
    assert not limiter.allow("a")  # still counted


PROXIES = [ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("198.51.100.7", None, "198.51.100.7"),
        ("198.51.100.7", "203.0.113.1", "198.51.100.7"),  # not from the proxy: the header is not believed
        ("10.1.2.3", "203.0.113.1", "203.0.113.1"),
        ("10.1.2.3", "192.0.2.66, 203.0.113.1", "203.0.113.1"),  # the client may have sent one of its own
        ("10.1.2.3", "203.0.113.1, 10.9.9.9", "203.0.113.1"),  # through two proxies
        ("10.1.2.3", "", "10.1.2.3"),
    ],
)
def test_the_client_behind_a_trusted_proxy_is_the_last_untrusted_hop(peer, forwarded, client):
    assert client_address(peer, forwarded, PROXIES) == client


# --- the objection page: four eyes ------------------------------------------------------------------------------


def _objection_page(shown: views.Objection, reviewer: str) -> str:
    decision = views.Decision("1-0-3ab-0", NOW, NOW, "railway", "RIC", "RAIL_G_TRAIN", True, ())
    return TEMPLATES.get_template("objection.html").render(
        objection=shown, decision=decision, catalogue=views.Catalogue(), now=NOW, csrf_field="",
        receipt=views.ReceiptStatus(False, words="not available"), reviewer=Reviewer(reviewer, reviewer),
        own_overturn=shown.resolved_by == f"reviewer:{reviewer}",
    )  # fmt: skip


def test_an_overturn_awaiting_confirmation_names_who_overturned_and_refuses_their_own_confirmation():
    overturned = views.Transition(views.UNDER_REVIEW, views.AWAITING_CONFIRMATION, "reviewer:li", "genuine", NOW)
    awaiting = objection(views.AWAITING_CONFIRMATION, history=(*objection().history, overturned),
                         resolved_by="reviewer:li")  # fmt: skip
    own = _objection_page(awaiting, "li")
    assert "Overturned by <strong>reviewer:li</strong>" in own
    assert "You overturned it yourself: another reviewer must confirm." in own and "/confirm" not in own
    other = _objection_page(awaiting, "zhang")
    assert 'action="/objections/O3ab000000000001/confirm"' in other and "Confirm the overturn" in other
    assert "Uphold instead" in own and "Uphold instead" in other  # keeping the record needs one reviewer


def test_each_state_offers_only_its_own_action():
    assert "Start review" in _objection_page(objection(views.FILED), "li")
    resolving = _objection_page(objection(views.UNDER_REVIEW), "li")
    assert "Resolve" in resolving and "Start review" not in resolving
    assert "Nothing is left to do here." in _objection_page(objection(views.OVERTURNED), "li")
