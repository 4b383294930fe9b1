"""The console in a real Chromium against the real services: a refused person looks up the refusal, reads why and
objects; reviewer A reviews and overturns; A's own confirmation is refused; reviewer B confirms; the person's page
shows the outcome and the next check allows. Plus what goes wrong: a wrong ID number, an overdue objection, bad
input and stale forms."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from stdnum.cn import ric

from debar.v1 import common_pb2, decision_pb2
from tests.console.pages import choose, fill, look_up, next_page, press, sign_in, text
from tests.console.records import objection_filed, objections_on, refusal
from tests.support.requests import check_request
from tests.support.subjects import new_ric

pytestmark = pytest.mark.browser
NOT_FOUND = "No decision with this id was found for this ID number."
DOCS = Path(__file__).resolve().parents[2] / "docs"


def screenshot(driver, name: str, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The whole page as PNG: into docs/ when SCREENSHOTS_DIR says so (to refresh the README's pictures), else
    beside the test's other files."""
    folder = Path(os.environ.get("SCREENSHOTS_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path = folder / name
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def test_a_refused_person_objects_a_reviewer_overturns_and_the_next_check_allows(
    console_system, person, reviewer, tmp_path
):
    s = console_system
    number = new_ric()
    decision_id = refusal(s, number)

    # The person looks up the refusal and reads why, in plain words.
    look_up(person, s.url, decision_id, number)
    assert person.current_url == f"{s.url}/my-decision"
    page = text(person)
    assert "a request for Any seat on a G-prefix (high-speed) train was refused" in page
    assert "Legal basis\nSPC Provisions on Restricting High Consumption, Art. 3" in page
    assert "Authority\nBeijing Chaoyang District People's Court" in page
    assert re.search(r"Case number\n\(2026\) Jing 0105 Zhi \d+", page)
    assert "until lifted" in page
    assert "the authority must decide within 15 days" in page
    assert f"RIC {number[:3]}{'*' * 14}{number[-1]}" in page  # the mask, never the number
    assert number not in person.page_source and number not in person.current_url

    # ... and objects.
    fill(person, "Why you object", "The debt was paid in full on 2026-01-10; the court has the receipt.")
    fill(person, "How to reach you", "zhang.san@example.com")
    press(person, "File my objection")
    filed = re.search(r"Your objection was filed\. Its number is (O[0-9a-f]+)\.", text(person))
    assert filed, text(person)
    objection_id = filed[1]
    assert person.find_element(By.ID, "objection-state").text == "filed, not yet taken under review"
    assert re.search(r"decision due .* UTC: due in 1[45] days", text(person))  # 15 days from filing
    screenshot(person, "console-person.png", tmp_path)

    # Reviewer A takes it under review and overturns it, as themself.
    sign_in(reviewer, s.url, "li")
    assert reviewer.current_url == f"{s.url}/queue"
    reviewer.find_element(By.LINK_TEXT, objection_id).click()
    assert "That is not me" not in text(reviewer)
    assert "The debt was paid in full" in text(reviewer)
    press(reviewer, "Start review")
    assert "Taken under review." in text(reviewer)
    assert reviewer.find_element(By.ID, "state").text == "under review"
    choose(reviewer, "Overturn: the record is corrected")
    fill(reviewer, "Reason (shown to the person, kept in the history)", "The payment receipt is genuine.")
    press(reviewer, "Resolve")
    assert reviewer.find_element(By.ID, "state").text == "overturned, awaiting a second reviewer's confirmation"
    assert "Overturned by reviewer:li." in text(reviewer)

    # Four eyes: the overturn does not take effect yet, and A cannot confirm it.
    assert (
        reviewer.find_element(By.ID, "own-overturn").text
        == "You overturned it yourself: another reviewer must confirm."
    )
    assert not reviewer.find_elements(By.XPATH, "//button[normalize-space()='Confirm the overturn']")
    _post_confirmation(reviewer, objection_id)  # as a hand-made form would: refused all the same
    assert "You overturned this objection yourself: another reviewer must confirm it." in text(reviewer)
    assert s.checks.Check(check_request(number, "RAIL_G_TRAIN")).outcome == common_pb2.OUTCOME_DENY
    person.get(f"{s.url}/my-decision")
    assert "a second reviewer must confirm it" in person.find_element(By.ID, "outcome").text

    # Reviewer B confirms: now the record is corrected.
    sign_in(reviewer, s.url, "zhang")
    reviewer.get(f"{s.url}/objections/{objection_id}")
    press(reviewer, "Confirm the overturn")
    assert "Confirmed: the overturn takes effect" in text(reviewer)
    assert reviewer.find_element(By.ID, "state").text == "overturned: the record was corrected"
    stored = s.decisions.GetObjection(decision_pb2.GetObjectionRequest(objection_id=objection_id))
    # Who did each step: the signed-in reviewers, never a typed name.
    assert [t.actor for t in stored.history] == ["subject", "reviewer:li", "reviewer:li", "reviewer:zhang"]
    assert (stored.resolved_by, stored.confirmed_by) == ("reviewer:li", "reviewer:zhang")

    # The person's page shows the outcome, and the next check allows.
    person.get(f"{s.url}/my-decision")
    assert person.find_element(By.ID, "objection-state").text == "overturned: the record was corrected"
    assert "Your objection was accepted" in person.find_element(By.ID, "outcome").text
    assert "The payment receipt is genuine." in text(person)
    assert "reviewer:" not in person.page_source  # the person sees the reasons, not the reviewers' names
    assert s.checks.Check(check_request(number, "RAIL_G_TRAIN")).outcome == common_pb2.OUTCOME_ALLOW
    assert number not in s.console.log()


def _post_confirmation(driver, objection_id: str) -> None:  # type: ignore[no-untyped-def]
    """Posts the confirmation form that the page did not offer, with the page's own CSRF token."""
    next_page(
        driver,
        lambda: driver.execute_script(
            """const form = document.createElement('form');
        form.method = 'post'; form.action = arguments[0];
        for (const [name, value] of [['csrf_token', document.querySelector('input[name=csrf_token]').value],
                                     ['state', 'awaiting_confirmation']]) {
          const field = document.createElement('input');
          field.type = 'hidden'; field.name = name; field.value = value; form.appendChild(field);
        }
        document.body.appendChild(form); form.submit();""",
            f"/objections/{objection_id}/confirm",
        ),
    )


def test_a_wrong_id_number_and_an_unknown_decision_both_show_the_same_not_found(console_system, person):
    s = console_system
    number, someone_else = new_ric(), new_ric()
    decision_id = refusal(s, number)
    look_up(person, s.url, decision_id, someone_else)
    assert NOT_FOUND in text(person)
    assert person.current_url == f"{s.url}/lookup"
    assert someone_else not in person.page_source  # not even typed back into the form
    wrong = person.page_source.replace(decision_id, "ID")
    look_up(person, s.url, "aaaaaaaaaaaaaaaaaaaaaaaaaa", number)
    assert NOT_FOUND in text(person)
    unknown = person.page_source.replace("aaaaaaaaaaaaaaaaaaaaaaaaaa", "ID")
    strip = re.compile(r'name="csrf_token" value="[^"]*"')  # the one part that differs: the form's token
    assert strip.sub("", wrong) == strip.sub("", unknown)
    person.get(f"{s.url}/my-decision")  # no lookup matched: nothing opened
    assert person.current_url == f"{s.url}/lookup"
    assert someone_else not in s.console.log() and number not in s.console.log()


def test_an_overdue_objection_is_marked_overdue_with_how_late(console_system, reviewer, tmp_path):
    s = console_system
    late = objection_filed(s, new_ric(), days_ago=17)  # court lists are reviewed within 15 days
    objection_filed(s, new_ric(), days_ago=9)
    objection_filed(s, new_ric())
    sign_in(reviewer, s.url, "li")
    row = reviewer.find_element(By.ID, f"row-{late}")
    assert "late" in (row.get_attribute("class") or "")
    assert "overdue by 2 days" in row.text
    red = row.find_element(By.CSS_SELECTOR, ".overdue").value_of_css_property("color")
    assert red in ("rgba(179, 38, 30, 1)", "rgb(179, 38, 30)")
    counts = reviewer.find_element(By.CSS_SELECTOR, "ul.counts").text
    assert re.search(r"[1-9]\d* overdue now", counts)
    chart = reviewer.find_element(By.CSS_SELECTOR, "svg.chart desc").get_attribute("textContent") or ""
    assert re.search(r"[1-9]\d* overdue", chart)
    reviewer.get(f"{s.url}/queue?state=filed&overdue=1")
    assert reviewer.find_elements(By.ID, f"row-{late}")
    assert all("overdue" in r.text for r in reviewer.find_elements(By.CSS_SELECTOR, "table.queue tbody tr"))
    reviewer.get(f"{s.url}/queue")
    screenshot(reviewer, "console-queue.png", tmp_path)
    reviewer.find_element(By.LINK_TEXT, late).click()
    assert "overdue by 2 days" in text(reviewer)


def test_bad_input_says_what_is_wrong_and_changes_nothing(console_system, person):
    s = console_system
    number = new_ric()
    decision_id = refusal(s, number)
    look_up(person, s.url, "not a decision!", number)
    assert "That is not a decision id" in text(person)
    # A wrong check character: any but the number's own. (python-stdnum's is_valid is False for every candidate when
    # its region table lacks the region, so "the first it calls invalid" was once the number itself: CI saw it shown.)
    wrong = number[:-1] + next(c for c in "0123456789X" if c != ric.calc_check_digit(number))
    look_up(person, s.url, decision_id, wrong)
    assert "That ID number is not valid: it " in text(person)

    look_up(person, s.url, decision_id, number)
    # A statement over the limit (the page's maxlength taken off, as a script could): refused, nothing filed.
    person.execute_script("document.getElementById('statement').removeAttribute('maxlength')")
    person.execute_script("document.getElementById('statement').value = 'x'.repeat(4001)")
    fill(person, "How to reach you", "me@example.com")
    press(person, "File my objection")
    assert "Your statement has 4001 characters; at most 4000 are accepted." in text(person)
    assert objections_on(s, decision_id) == []

    # A form without its CSRF token (as a forged cross-site post would be): refused, nothing filed.
    fill(person, "Why you object", "That is not me.")
    person.execute_script(
        "document.querySelector('form[action=\"/my-decision/objection\"] input[name=csrf_token]').remove()"
    )
    press(person, "File my objection")
    assert "security token is missing or does not match" in text(person)
    assert objections_on(s, decision_id) == []


def test_a_stale_form_changes_nothing(console_system, reviewer):
    s = console_system
    objection_id = objection_filed(s, new_ric())
    sign_in(reviewer, s.url, "li")
    reviewer.get(f"{s.url}/objections/{objection_id}")
    # Meanwhile another reviewer takes it under review.
    s.decisions.ReviewObjection(
        decision_pb2.ReviewObjectionRequest(objection_id=objection_id),
        metadata=[("x-debar-caller", "reviewer:zhang")],  # local mode: the caller names itself
    )
    press(reviewer, "Start review")
    assert "This objection has moved on since the page was shown (it is now under review)" in text(reviewer)
    stored = s.decisions.GetObjection(decision_pb2.GetObjectionRequest(objection_id=objection_id))
    assert [t.actor for t in stored.history] == ["subject", "reviewer:zhang"]
