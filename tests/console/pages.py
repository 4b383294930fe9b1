"""What a person does in the browser, step by step, by the labels and buttons they see."""

from __future__ import annotations

from collections.abc import Callable

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.console import REVIEWERS


def fill(driver: WebDriver, label: str, value: str) -> None:
    """Types into the control that the label with this text names (every control has one)."""
    found = driver.find_element(By.XPATH, f"//label[normalize-space()={_quoted(label)}]")
    control = driver.find_element(By.ID, found.get_attribute("for") or "")
    control.clear()
    control.send_keys(value)


def choose(driver: WebDriver, label: str) -> None:
    found = driver.find_element(By.XPATH, f"//label[normalize-space()={_quoted(label)}]")
    driver.find_element(By.ID, found.get_attribute("for") or "").click()


def press(driver: WebDriver, button: str) -> None:
    """Clicks the button and waits for the next page, loaded. Starts once the current page has loaded: a button
    found while the page before is still being replaced belongs to a document that is going away (Chrome then
    refuses the click: "Node with given id does not belong to the document")."""
    loaded(driver)
    next_page(driver, driver.find_element(By.XPATH, f"//button[normalize-space()={_quoted(button)}]").click)


def next_page(driver: WebDriver, go: Callable[[], object]) -> None:
    """Does `go` and waits until a new document has replaced this one and loaded. The current document is marked
    and the wait is for a loaded document without the mark: asking whether an element of the old one is stale
    races the navigation, and chromedriver then answers with a bare WebDriverException ("Node with given id does
    not belong to the document") instead of a stale element, which is "not yet" here, like any error of a
    document being torn down."""
    driver.execute_script("window.__debarLeaving = true")
    go()
    WebDriverWait(driver, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script("return !window.__debarLeaving && document.readyState === 'complete'")
    )


def loaded(driver: WebDriver) -> None:
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")


def text(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "main").text)


def _quoted(value: str) -> str:
    return f'"{value}"' if '"' not in value else f"'{value}'"


def look_up(driver: WebDriver, url: str, decision_id: str, id_number: str) -> None:
    driver.get(f"{url}/lookup")
    fill(driver, "Decision id", decision_id)
    fill(driver, "Your ID number", id_number)
    press(driver, "Look up")


def sign_in(driver: WebDriver, url: str, login: str) -> None:
    driver.get(f"{url}/signin")
    fill(driver, "Login", login)
    fill(driver, "Password", REVIEWERS[login])
    press(driver, "Sign in")
