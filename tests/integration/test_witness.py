"""`debar witness` as a real process over real HTTP on loopback: it cosigns a log that only grows, refuses a fork
and never moves on from it, answers a stale old size with 409 and the size it knows, keeps its word across a
kill -9, lets exactly one of several concurrent requests from one size win, and refuses bad requests, unknown logs
and bad signatures with the spec's status codes. It will not start without its key, or on a folder another
witness holds, or on a state file it cannot read."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from debar.local.embedded_redis import free_port
from debar.tlog.checkpoint import open_checkpoint
from debar.tlog.cosignature import cosignature_timestamp
from debar.tlog.encoding import encode_base64
from debar.tlog.keys import Ed25519Signer
from debar.tlog.note import BadSignature, Note, UnverifiedNote, parse_note, parse_signature_lines
from debar.tlog.witness import AddCheckpointRequest
from tests.conftest import ON_CLUSTER
from tests.support.witness import ORIGIN, TestLog, WitnessProcess, log_signer

# No Redis here: the suite runs once, not again on the cluster pass.
pytestmark = pytest.mark.skipif(ON_CLUSTER, reason="the witness involves no Redis")

SIGNER = log_signer()


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[WitnessProcess]:
    process = WitnessProcess(tmp_path / "witness", [SIGNER]).start()
    yield process
    process.stop()


def cosign(witness: WitnessProcess, log: TestLog, old: int) -> Note:
    """Asks the witness to cosign `log` at its size from `old`; the note with the verified cosignature."""
    answer = witness.add_checkpoint(log.request(old))
    assert answer.status_code == 200, answer.text
    lines = parse_signature_lines(answer.content.decode())
    assert [s.name for s in lines] == [witness.name]
    merged = log.note().with_signatures(*lines)
    # What an auditor checks, with nothing but the two public keys.
    opened = open_checkpoint(merged.to_bytes(), SIGNER.verifier(), witnesses=[witness.verifier])
    assert (opened.checkpoint.size, opened.checkpoint.root_hash) == (log.size, log.roots[log.size])
    return merged


def stored_size(witness: WitnessProcess, origin: str = ORIGIN) -> int:
    state = json.loads((witness.state_dir / "state.json").read_bytes())
    return int(state["logs"][origin]["size"])


def test_cosigns_the_first_checkpoint_and_each_consistent_extension(witness: WitnessProcess):
    log = TestLog(SIGNER, 5)
    first = cosign(witness, log, 0)
    [cosignature] = [s for s in first.signatures if s.name == witness.name]
    assert abs(cosignature_timestamp(cosignature) - time.time()) < 60
    for more, old in [(3, 5), (0, 8), (13, 8), (1000, 21)]:
        log.append(more)
        cosign(witness, log, old)
        assert stored_size(witness) == log.size
    # The answer is durable before it is given: the state on disk already says so.
    assert stored_size(witness) == 1021


def test_a_cosignature_does_not_verify_with_another_key_or_over_another_checkpoint(witness: WitnessProcess):
    log = TestLog(SIGNER, 4)
    merged = cosign(witness, log, 0)
    [cosignature] = [s for s in merged.signatures if s.name == witness.name]
    # Another key under the same name has another key id: the line is not its cosignature.
    impostor = WitnessProcess(witness.folder.parent / "impostor", [SIGNER], name=witness.name)
    with pytest.raises(UnverifiedNote):
        open_checkpoint(merged.to_bytes(), SIGNER.verifier(), witnesses=[impostor.verifier])
    other = TestLog(SIGNER, 5).note().with_signatures(cosignature)
    with pytest.raises(BadSignature):
        open_checkpoint(other.to_bytes(), SIGNER.verifier(), witnesses=[witness.verifier])


def test_refuses_a_fork_with_422_and_never_moves_on_from_what_it_cosigned(witness: WitnessProcess):
    honest = TestLog(SIGNER, 10)
    cosign(witness, honest, 0)
    # The same log key, the first ten entries rewritten, then grown: a proof from 10 on the forked tree.
    forked = TestLog(SIGNER, 15, tag=b" rewritten")
    refused = witness.add_checkpoint(forked.request(10))
    assert refused.status_code == 422, refused.text
    assert "not consistent" in refused.text
    # A proof copied from the honest tree does not carry the forked root either.
    spliced = AddCheckpointRequest(10, honest.append(5).proof(10), forked.checkpoint()).to_bytes()
    assert witness.add_checkpoint(spliced).status_code == 422
    # Same size, another root.
    assert witness.add_checkpoint(TestLog(SIGNER, 10, tag=b" x").request(10)).status_code == 422
    assert stored_size(witness) == 10
    # The honest log goes on from where the witness stood.
    cosign(witness, honest, 10)
    assert stored_size(witness) == 15


def test_a_wrong_old_size_gets_409_with_the_size_it_knows(witness: WitnessProcess):
    log = TestLog(SIGNER, 7)
    cosign(witness, log, 0)
    log.append(5)
    for stale in (0, 3, 11):
        answer = witness.add_checkpoint(log.request(stale))
        assert answer.status_code == 409
        assert answer.headers["content-type"] == "text/x.tlog.size"
        assert answer.content == b"7\n"
    cosign(witness, log, 7)


def test_its_state_survives_kill_9_between_requests(witness: WitnessProcess):
    log = TestLog(SIGNER, 9)
    cosign(witness, log, 0)
    witness.kill()
    witness.start()
    log.append(4)
    answer = witness.add_checkpoint(log.request(0))
    assert (answer.status_code, answer.content) == (409, b"9\n")
    forked = TestLog(SIGNER, 13, tag=b" after restart")
    assert witness.add_checkpoint(forked.request(9)).status_code == 422
    cosign(witness, log, 9)
    witness.kill()
    witness.start()
    assert witness.add_checkpoint(log.request(9)).content == b"13\n"
    leftovers = [p.name for p in witness.state_dir.rglob(".*.tmp")]
    assert leftovers == []


async def test_of_concurrent_requests_from_the_same_size_exactly_one_wins(witness: WitnessProcess):
    base = TestLog(SIGNER, 20)
    cosign(witness, base, 0)
    # Twelve different extensions of the same tree, each consistent with 20 on its own.
    rivals = [TestLog(SIGNER, 20).append(1 + i) for i in range(12)]
    async with httpx.AsyncClient(timeout=30) as client:
        answers = await asyncio.gather(
            *(client.post(f"{witness.url}/add-checkpoint", content=rival.request(20)) for rival in rivals)
        )
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 1, statuses
    assert statuses.count(409) == len(rivals) - 1, statuses
    winner = rivals[statuses.index(200)]
    assert stored_size(witness) == winner.size
    assert {a.content for a in answers if a.status_code == 409} == {b"%d\n" % winner.size}


BAD_BODIES = {
    "empty": b"",
    "no empty line": b"old 0\n",
    "no old line": b"\n\n",
    "old size with a leading zero": b"old 01\n\n",
    "negative old size": b"old -1\n\n",
    "old size beyond 2**64-1": b"old 18446744073709551616\n\n",
    "proof line not base64": b"old 3\n!!!!\n\n",
    "proof line not a 32-byte hash": b"old 3\n" + encode_base64(b"x" * 31).encode() + b"\n\n",
    "64 proof lines": b"old 3\n" + (encode_base64(b"x" * 32).encode() + b"\n") * 64 + b"\n",
    "not a note": b"old 0\n\nhello\n",
}


def test_a_malformed_request_gets_400(witness: WitnessProcess):
    checkpoint = TestLog(SIGNER, 3).checkpoint()
    for case, body in BAD_BODIES.items():
        answer = witness.add_checkpoint(body + checkpoint if body.endswith(b"\n\n") else body)
        assert answer.status_code == 400, (case, answer.status_code, answer.text)
    assert not (witness.state_dir / "state.json").exists()


def test_old_size_above_the_checkpoint_is_400_and_nothing_is_stored(witness: WitnessProcess):
    log = TestLog(SIGNER, 3)
    answer = witness.add_checkpoint(AddCheckpointRequest(4, (), log.checkpoint()).to_bytes())
    assert answer.status_code == 400 and "above" in answer.text
    assert not (witness.state_dir / "state.json").exists()


def test_unknown_logs_and_bad_signatures_are_refused_as_the_spec_says(witness: WitnessProcess):
    stranger = TestLog(Ed25519Signer.generate("someone.else/log"), 3)
    assert witness.add_checkpoint(stranger.request(0)).status_code == 404
    # Our origin, signed by another key: no signature from a key the witness trusts.
    impostor = TestLog(Ed25519Signer.generate(ORIGIN), 3)
    assert witness.add_checkpoint(impostor.request(0)).status_code == 403
    # Our key's name and id, a broken signature.
    note = TestLog(SIGNER, 3).note()
    [sig] = note.signatures
    broken = Note(note.text, (type(sig)(sig.name, sig.key_id, bytes(64)),))
    answer = witness.add_checkpoint(AddCheckpointRequest(0, (), broken.to_bytes()).to_bytes())
    assert answer.status_code == 403
    assert not (witness.state_dir / "state.json").exists()


def test_a_huge_body_is_413_and_other_methods_405(witness: WitnessProcess):
    assert witness.add_checkpoint(b"old 0\n\n" + b"x" * 70_000).status_code == 413
    assert httpx.get(f"{witness.url}/add-checkpoint").status_code == 405


def test_monitors_get_the_latest_cosigned_checkpoint(witness: WitnessProcess):
    log = TestLog(SIGNER, 6)
    origin_hash = hashlib.sha256(ORIGIN.encode()).hexdigest()
    assert httpx.get(f"{witness.url}/{origin_hash}/checkpoint").status_code == 404
    cosign(witness, log, 0)
    log.append(2)
    cosign(witness, log, 6)
    served = httpx.get(f"{witness.url}/{origin_hash}/checkpoint")
    assert served.status_code == 200
    opened = open_checkpoint(served.content, SIGNER.verifier(), witnesses=[witness.verifier])
    assert opened.checkpoint.size == 8
    assert httpx.get(f"{witness.url}/{'0' * 64}/checkpoint").status_code == 404


def test_health_and_metrics_on_their_own_ports(tmp_path: Path):
    health, metrics = free_port(), free_port()
    process = WitnessProcess(
        tmp_path / "w", [SIGNER], extra_env={"DEBAR_HEALTH_PORT": str(health), "DEBAR_METRICS_PORT": str(metrics)}
    ).start()
    try:
        log = TestLog(SIGNER, 2)
        cosign(process, log, 0)
        assert process.add_checkpoint(b"").status_code == 400
        assert httpx.get(f"http://127.0.0.1:{health}/readyz").text == "ok\n"
        assert httpx.get(f"http://127.0.0.1:{health}/healthz").status_code == 200
        # The health port answers health only.
        assert httpx.post(f"http://127.0.0.1:{health}/add-checkpoint", content=log.request(2)).status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{metrics}/metrics").text
        assert 'debar_witness_requests_total{status="200"} 1.0' in scraped
        assert 'debar_witness_requests_total{status="400"} 1.0' in scraped
        assert f'debar_witness_cosigned_size{{origin="{ORIGIN}"}} 2.0' in scraped
    finally:
        process.stop()


def _start_failure(env: dict[str, str]) -> tuple[int, str]:
    run = subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "witness"], env=env, capture_output=True, text=True, timeout=90
    )
    return run.returncode, run.stderr


@pytest.mark.parametrize(
    ("breakage", "setting"),
    [
        ("key file missing", "DEBAR_WITNESS_KEY"),
        ("key path is a folder", "DEBAR_WITNESS_KEY"),
        ("key file holds no key", "DEBAR_WITNESS_KEY"),
        ("key file holds a log key", "DEBAR_WITNESS_KEY"),
        ("key unset", "DEBAR_WITNESS_KEY"),
        ("no log followed", "DEBAR_WITNESS_LOGS"),
        ("a bad log key", "DEBAR_WITNESS_LOGS"),
        ("state file unreadable", "DEBAR_WITNESS_STATE_DIR"),
    ],
)
def test_refuses_to_start_with_one_line_naming_the_setting(tmp_path: Path, breakage: str, setting: str):
    witness = WitnessProcess(tmp_path / "w", [SIGNER])
    env = witness.env()
    if breakage == "key file missing":
        env["DEBAR_WITNESS_KEY"] = str(tmp_path / "nowhere.key")
    elif breakage == "key path is a folder":
        env["DEBAR_WITNESS_KEY"] = str(tmp_path)
    elif breakage == "key file holds no key":
        witness.key_file.write_text("not a key\n")
    elif breakage == "key file holds a log key":
        witness.key_file.write_text(SIGNER.signer_key() + "\n")
    elif breakage == "key unset":
        del env["DEBAR_WITNESS_KEY"]
    elif breakage == "no log followed":
        env["DEBAR_WITNESS_LOGS"] = ""
    elif breakage == "a bad log key":
        env["DEBAR_WITNESS_LOGS"] = "debar.test/log+00000000+AAAA"
    else:
        witness.state_dir.mkdir()
        (witness.state_dir / "state.json").write_text('{"version": 1, "logs": {"x": {"size": "7"}}}')
    code, stderr = _start_failure(env)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0], stderr
    for signer_key in (witness.cosigner.signer_key(), SIGNER.signer_key()):
        seed = signer_key.split("+", 4)[4]  # PRIVATE+KEY+<name>+<key id>+<base64 seed>
        assert len(seed) == 44 and seed not in stderr


def test_a_second_witness_on_the_same_state_folder_refuses_to_start(witness: WitnessProcess):
    env = {**witness.env(), "DEBAR_WITNESS_PORT": str(free_port())}
    code, stderr = _start_failure(env)
    assert code == 2 and "DEBAR_WITNESS_STATE_DIR" in stderr and "another witness" in stderr
    assert witness.healthy()


def test_a_taken_port_is_one_line_and_exit_1(witness: WitnessProcess, tmp_path: Path):
    other = WitnessProcess(tmp_path / "other", [SIGNER], port=witness.port)
    code, stderr = _start_failure(other.env())
    assert code == 1 and f"127.0.0.1:{witness.port}" in stderr and len(stderr.strip().splitlines()) == 1


def test_sigterm_stops_it_cleanly(witness: WitnessProcess):
    assert witness.stop() == 0


def test_keygen_writes_a_private_file_once_and_prints_the_verifier_key(tmp_path: Path):
    out = tmp_path / "w.key"
    made = subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "witness", "keygen", "--name", "witness.test/k", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert made.returncode == 0, made.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    from debar.tlog.cosignature import parse_cosigner_key, parse_cosigner_signer_key

    key = out.read_text()
    assert parse_cosigner_key(made.stdout.strip()) == parse_cosigner_signer_key(key).verifier()
    assert "PRIVATE" not in made.stdout
    again = subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "witness", "keygen", "--name", "witness.test/k", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert again.returncode == 1 and "not overwritten" in again.stderr
    assert out.read_text() == key


def test_parse_note_of_an_answer_is_the_log_note_plus_one_line(witness: WitnessProcess):
    log = TestLog(SIGNER, 1)
    answer = witness.add_checkpoint(log.request(0))
    merged = parse_note(log.checkpoint() + answer.content)
    assert len(merged.signatures) == 2
