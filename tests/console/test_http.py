"""The console over plain HTTP (a real client against the real console process): what a browser cannot show,
status codes, headers and cookies, and the attacks: a forged identity header, many look-ups from one address, a
sanction service that is down."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest

from debar.local.embedded_redis import free_port
from debar.v1 import decision_pb2
from tests.console.records import objection_filed, refusal
from tests.support.console import REVIEWERS, start_console
from tests.support.servers import ServiceProcess
from tests.support.subjects import new_ric

Start = Callable[..., str]


@pytest.fixture
def another_console(console_system, tmp_path) -> Iterator[Start]:  # type: ignore[no-untyped-def]
    """Starts a console of the private system with settings changed; stops it after the test."""
    started: list[ServiceProcess] = []

    def start(**settings: str) -> str:
        process, url = start_console({**console_system.env, **settings}, tmp_path)
        started.append(process)
        return url

    yield start
    for process in started:
        process.stop()


def token(client: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found, path
    return found[1]


def signed_in(url: str, login: str = "li") -> httpx.Client:
    client = httpx.Client(base_url=url)
    answer = client.post(
        "/signin", data={"csrf_token": token(client, "/signin"), "login": login, "password": REVIEWERS[login]}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/queue"
    return client


def test_pages_carry_a_strict_policy_no_caching_and_a_safe_cookie(console_system):
    with httpx.Client(base_url=console_system.url) as client:
        answer = client.get("/lookup")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "'unsafe-inline'" not in policy
    assert "form-action 'self'" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # on loopback over plain HTTP; beyond loopback the cookie is Secure


def test_the_sanction_service_down_is_a_503_page_without_a_stack_trace(another_console):
    url = another_console(DEBAR_SANCTION_ADDRESS=f"127.0.0.1:{free_port()}", DEBAR_SANCTION_TIMEOUT_S="0.5")
    with httpx.Client(base_url=url) as client:
        answer = client.post(
            "/lookup",
            data={
                "csrf_token": token(client, "/lookup"),
                "decision_id": "aaaaaaaaaaaaaaaaaaaaaaaaaa",
                "id_number": new_ric(),
            },
        )
    assert answer.status_code == 503
    assert "The restriction service cannot be reached right now. Nothing was changed" in answer.text
    assert "Traceback" not in answer.text and "grpc" not in answer.text.lower()


def test_look_ups_from_one_address_are_limited(another_console):
    url = another_console(DEBAR_CONSOLE_LOOKUP_RATE="3")
    number = new_ric()
    with httpx.Client(base_url=url) as client:
        form = {
            "csrf_token": token(client, "/lookup"),
            "decision_id": "aaaaaaaaaaaaaaaaaaaaaaaaaa",
            "id_number": number,
        }
        codes = [client.post("/lookup", data=form).status_code for _ in range(4)]
        # Another address claimed in X-Forwarded-For is not believed: no proxy is trusted.
        claimed = client.post("/lookup", data=form, headers={"x-forwarded-for": "203.0.113.9"})
    assert codes == [404, 404, 404, 429]
    assert claimed.status_code == 429 and "Too many look-ups" in claimed.text


def test_a_reviewer_named_by_the_proxy_is_believed_only_from_the_proxy(another_console):
    trusted = another_console(DEBAR_CONSOLE_SIGN_IN="proxy", DEBAR_CONSOLE_TRUSTED_PROXIES="127.0.0.1")
    elsewhere = another_console(DEBAR_CONSOLE_SIGN_IN="proxy", DEBAR_CONSOLE_TRUSTED_PROXIES="10.0.0.0/8")
    named = {"x-forwarded-user": "li"}
    with httpx.Client(base_url=trusted) as client:
        answer = client.get("/queue", headers=named)
        assert answer.status_code == 200 and "reviewer:li" in answer.text
        assert client.get("/queue").status_code == 401  # the proxy named no one
        assert client.get("/queue", headers={"x-forwarded-user": "li@court"}).status_code == 401  # not a login
    with httpx.Client(base_url=elsewhere) as client:
        forged = client.get("/queue", headers=named)  # straight from a client, not through the proxy
    assert forged.status_code == 401 and "reviewer:li" not in forged.text


def test_a_wrong_password_and_an_unknown_login_read_the_same(console_system):
    with httpx.Client(base_url=console_system.url) as client:
        answers = [
            client.post("/signin", data={"csrf_token": token(client, "/signin"), "login": login, "password": "nope"})
            for login in ("li", "nobody")
        ]
    assert [a.status_code for a in answers] == [401, 401]
    assert all("That login and password do not match." in a.text for a in answers)


def test_reviewer_pages_need_a_sign_in(console_system):
    objection_id = objection_filed(console_system, new_ric())
    with httpx.Client(base_url=console_system.url) as client:
        assert client.get("/queue").headers["location"] == "/signin"
        assert client.get(f"/objections/{objection_id}").headers["location"] == "/signin"
        posted = client.post(
            f"/objections/{objection_id}/review", data={"csrf_token": token(client, "/lookup"), "state": "filed"}
        )
    assert posted.status_code == 303 and posted.headers["location"] == "/signin"
    stored = console_system.decisions.GetObjection(decision_pb2.GetObjectionRequest(objection_id=objection_id))
    assert stored.state == decision_pb2.OBJECTION_STATE_FILED


def test_a_confirmation_of_an_objection_not_awaiting_one_changes_nothing(console_system):
    s = console_system
    objection_id = objection_filed(s, new_ric())
    client = signed_in(s.url)
    try:
        form = {"csrf_token": token(client, "/queue"), "state": "awaiting_confirmation"}
        answer = client.post(f"/objections/{objection_id}/confirm", data=form)
    finally:
        client.close()
    assert answer.status_code == 409 and "has moved on" in answer.text
    stored = s.decisions.GetObjection(decision_pb2.GetObjectionRequest(objection_id=objection_id))
    assert stored.state == decision_pb2.OBJECTION_STATE_FILED and len(stored.history) == 1


async def test_the_client_fetches_a_receipt_and_checks_its_proof(console_system):
    """GetDecisionProof through the console's client: the receipt file verifies offline with the log's key, and
    the status the pages show says it is in the signed log (not ready yet: said so, never an error)."""
    from debar.common.settings import Settings
    from debar.console.sanction_client import NotAvailable, SanctionClient
    from debar.sanction.domain.receipts import verify_receipt
    from debar.tlog.keys import parse_verifier_key
    from tests.support.keys import TEST_LOG_VERIFIER_KEY

    decision_id = refusal(console_system, new_ric())
    client = SanctionClient.connect(Settings.from_env(console_system.env))
    try:
        for _ in range(100):
            status = await client.receipt_status(decision_id)
            if status.verified:
                break
            assert "not ready yet" in status.words
            await asyncio.sleep(0.1)
        assert status.verified and status.words.startswith("verified: leaf "), status.words
        data = await client.receipt(decision_id)
        assert verify_receipt(data, parse_verifier_key(TEST_LOG_VERIFIER_KEY)).decision.decision_id == decision_id
        not_ready = []
        for _ in range(10):  # right away: most often not integrated yet
            try:
                await client.receipt(refusal(console_system, new_ric()))
            except NotAvailable as missing:
                not_ready.append(str(missing))
                break
        assert not_ready and "not ready yet" in not_ready[0]
    finally:
        await client.close()


def test_a_person_downloads_the_receipt_and_sees_it_verified(console_system):
    s = console_system
    number = new_ric()
    decision_id = refusal(s, number)
    with httpx.Client(base_url=s.url) as client:
        found = client.post(
            "/lookup", data={"csrf_token": token(client, "/lookup"), "decision_id": decision_id, "id_number": number}
        )
        assert found.status_code == 303
        for _ in range(50):  # integrated into a signed checkpoint (normally well within a second)
            shown = client.get("/my-decision")
            if "verified: leaf" in shown.text:
                break
            time.sleep(0.2)
        assert '<span id="receipt-status">verified: leaf' in shown.text, shown.text
        answer = client.post("/my-decision/receipt", data={"csrf_token": token(client, "/my-decision")})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == f'attachment; filename="debar-receipt-{decision_id}.json"'
    assert b'"format": "debar-receipt/1"' in answer.content
    assert number not in answer.text


def test_the_health_port_answers_health_only(another_console):
    health = free_port()
    url = another_console(DEBAR_HEALTH_PORT=str(health))
    with httpx.Client() as client:
        assert client.get(f"http://127.0.0.1:{health}/healthz").text == "ok"
        ready = client.get(f"http://127.0.0.1:{health}/readyz").json()
        assert ready == {"console": "SERVING", "sanction": "SERVING"}
        assert client.get(f"http://127.0.0.1:{health}/lookup").status_code == 404
        assert client.get(f"http://127.0.0.1:{health}/queue").status_code == 404
        assert client.get(f"{url}/lookup").status_code == 200


def _tls(certs, name: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"DEBAR_TLS_CA": str(certs / "ca.pem"), "DEBAR_TLS_CERT": str(certs / f"{name}.pem"),
            "DEBAR_TLS_KEY": str(certs / f"{name}-key.pem")}  # fmt: skip


def test_over_mutual_tls_the_console_is_known_by_its_certificate(console_system, another_console, tmp_path):
    """As deployed: the console calls the sanction service with its own certificate (CN console, whose scopes let
    it read decisions); a console holding another service's certificate is refused, and says so without detail."""
    import grpc

    from debar.local.certs import write_dev_certs
    from tests.support.servers import start_service

    certs = tmp_path / "certs"
    write_dev_certs(certs, services=("sanction",), clients=("bench", "console", "registry"))
    env = {k: v for k, v in console_system.env.items() if k != "DEBAR_PLAINTEXT"}
    bench = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes(), (certs / "bench-key.pem").read_bytes(),
                                         (certs / "bench.pem").read_bytes())  # fmt: skip
    sanction = start_service("sanction", {**env, **_tls(certs, "sanction")}, tmp_path, credentials=bench)
    try:
        number = new_ric()
        decision_id = refusal(console_system, number)  # through the plaintext sanction service, on the same Redis
        lookup = {"decision_id": decision_id, "id_number": number}
        console = another_console(
            **_tls(certs, "console"), DEBAR_SANCTION_ADDRESS=sanction.address, DEBAR_PLAINTEXT="false"
        )
        with httpx.Client(base_url=console) as client:
            answer = client.post("/lookup", data={"csrf_token": token(client, "/lookup"), **lookup})
            assert answer.status_code == 303, answer.text
            assert "Your decision" in client.get("/my-decision").text
        impostor = another_console(
            **_tls(certs, "registry"), DEBAR_SANCTION_ADDRESS=sanction.address, DEBAR_PLAINTEXT="false"
        )
        with httpx.Client(base_url=impostor) as client:
            refused = client.post("/lookup", data={"csrf_token": token(client, "/lookup"), **lookup})
        assert refused.status_code == 403 and "refused this request" in refused.text
        assert "registry" not in refused.text and "scope" not in refused.text
    finally:
        sanction.stop()


def _proofs_system(console_system, tmp_path):  # type: ignore[no-untyped-def]
    """A sanction service over mutual TLS that requires people's proofs (its trust file: the identity provider
    `idp` for reviewer:*, the console's own `console-reviewers` key likewise), on the private system's Redis."""
    from debar.local.certs import write_dev_certs
    from debar.rpc import tokens
    from debar.rpc.trust import trust_entry
    from tests.support.servers import start_service

    certs = tmp_path / "certs"
    write_dev_certs(certs, services=("sanction",), clients=("bench", "console"))
    keys = {name: tokens.new_signing_key() for name in ("idp", "console-reviewers")}
    trust = {"issuers": {name: trust_entry(key.public_key(), ["reviewer:*"]) for name, key in keys.items()}}
    (tmp_path / "trust.json").write_text(json.dumps(trust))
    tokens.write_signing_key(tmp_path / "console-reviewers.pem", keys["console-reviewers"])
    env = {k: v for k, v in console_system.env.items() if k != "DEBAR_PLAINTEXT"}
    bench = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes(), (certs / "bench-key.pem").read_bytes(),
                                         (certs / "bench.pem").read_bytes())  # fmt: skip
    sanction = start_service("sanction", {**env, **_tls(certs, "sanction"), "DEBAR_DELEGATION_PROOF": "required",
                                          "DEBAR_TOKEN_TRUST_FILE": str(tmp_path / "trust.json")}, tmp_path,
                             credentials=bench)  # fmt: skip
    console_env = {**_tls(certs, "console"), "DEBAR_SANCTION_ADDRESS": sanction.address, "DEBAR_PLAINTEXT": "false"}
    return sanction, console_env, keys


def _act(client: httpx.Client, objection_id: str, action: str, **form: str) -> httpx.Response:
    return client.post(f"/objections/{objection_id}/{action}", data={"csrf_token": token(client, "/lookup"), **form})


def test_in_proxy_sign_in_the_reviewers_own_token_is_their_proof_and_the_console_alone_has_none(
    console_system, another_console, tmp_path
):
    """Before: the console's certificate alone acted for whichever reviewer the proxy named (or a thief did, with its
    key): a court's restriction lifted by one credential. Now each reviewer's own token, as the proxy passes it, goes
    with their actions; without it the sanction service refuses and nothing changes."""
    from debar.rpc import tokens

    sanction, console_env, keys = _proofs_system(console_system, tmp_path)
    try:
        url = another_console(**console_env, DEBAR_CONSOLE_SIGN_IN="proxy", DEBAR_CONSOLE_TRUSTED_PROXIES="127.0.0.1")
        objection_id = objection_filed(console_system, new_ric())

        def proxied(login: str, proof: bool = True) -> httpx.Client:
            headers = {"X-Forwarded-User": login}
            if proof:
                minted = tokens.mint(
                    keys["idp"], "idp", f"reviewer:{login}", tokens.audience_of("sanction"), time.time()
                )
                headers["X-Debar-Reviewer-Token"] = minted
            return httpx.Client(base_url=url, headers=headers)

        def stored() -> decision_pb2.Objection:
            return console_system.decisions.GetObjection(decision_pb2.GetObjectionRequest(objection_id=objection_id))

        with proxied("li", proof=False) as bare:
            refused = _act(bare, objection_id, "review", state="filed")
            assert refused.status_code == 403 and "refused this request" in refused.text, refused.text
        assert stored().state == decision_pb2.OBJECTION_STATE_FILED and len(stored().history) == 1
        with proxied("li") as li:
            assert _act(li, objection_id, "review", state="filed").status_code == 303
            overturned = _act(li, objection_id, "resolve", state="under_review", outcome="overturned", reason="not him")
            assert overturned.status_code == 303, overturned.text
        with proxied("zhang", proof=False) as bare:
            assert _act(bare, objection_id, "confirm", state="awaiting_confirmation").status_code == 403
        assert stored().state == decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION
        with proxied("zhang") as zhang:
            assert _act(zhang, objection_id, "confirm", state="awaiting_confirmation").status_code == 303
        done = stored()
        assert done.state == decision_pb2.OBJECTION_STATE_OVERTURNED
        assert [t.actor for t in done.history] == ["subject", "reviewer:li", "reviewer:li", "reviewer:zhang"]
        # In accounts sign-in the console signs its reviewers' proofs with a key of its own (a reviewer credential).
        accounts = another_console(**console_env, DEBAR_CONSOLE_REVIEWER_KEY=str(tmp_path / "console-reviewers.pem"))
        for console, status in ((accounts, 200), (another_console(**console_env), 403)):  # the second signs none
            li = signed_in(console, "li")
            try:
                assert li.get("/queue").status_code == status
            finally:
                li.close()
    finally:
        sanction.stop()


def test_a_session_outlives_neither_its_reviewers_account_nor_their_password(console_system, another_console, tmp_path):
    """Before: the signed cookie alone named the reviewer, and the console signed in accounts mode whatever login a
    valid cookie named. A reviewer removed from the accounts file (or a thief of their cookie, after the password
    was changed) kept acting as reviewer:li until the cookie's 8 hours ended, on every console sharing the session
    key, restarts included. Now a session names the account as it was at sign-in, and ends when it is gone or
    has a new password."""
    import secrets

    from debar.console.accounts import add_reviewer
    from tests.support.console import write_accounts

    key = tmp_path / "session-key"
    key.write_text(secrets.token_urlsafe(32))
    as_signed_in = write_accounts(tmp_path / "accounts.json")
    without_li = tmp_path / "without-li.json"
    add_reviewer(without_li, "zhang", REVIEWERS["zhang"])
    new_password = write_accounts(tmp_path / "new-password.json")
    add_reviewer(new_password, "li", "li-has-a-new-password-now")

    def console(accounts) -> str:  # type: ignore[no-untyped-def]
        return another_console(DEBAR_CONSOLE_SESSION_KEY_FILE=str(key), DEBAR_CONSOLE_ACCOUNTS_FILE=str(accounts))

    li = signed_in(console(as_signed_in), "li")
    cookie = li.cookies["debar_console"]
    li.close()
    objection_id = objection_filed(console_system, new_ric())
    for accounts in (without_li, new_password):  # the operator removes li, or resets her password, and restarts
        with httpx.Client(base_url=console(accounts), cookies={"debar_console": cookie}) as old:
            assert old.get("/queue").headers.get("location") == "/signin"
            posted = _act(old, objection_id, "review", state="filed")
            assert posted.status_code == 303 and posted.headers["location"] == "/signin", posted.text
    stored = console_system.decisions.GetObjection(decision_pb2.GetObjectionRequest(objection_id=objection_id))
    assert stored.state == decision_pb2.OBJECTION_STATE_FILED and len(stored.history) == 1
    with httpx.Client(base_url=console(as_signed_in), cookies={"debar_console": cookie}) as same:  # nothing changed
        assert same.get("/queue").status_code == 200
