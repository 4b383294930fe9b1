"""`debar up`: it uses the configured Redis when there is one, and it says so when its services did not start
instead of saying "ready" (a busy port answered SERVING by someone else's server is not a start)."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from debar.cli.services import available_services
from debar.cli.startup import start_failure
from debar.common.settings import Settings
from debar.common.witnesses import parse_log_witnesses
from debar.local.embedded_redis import free_port, running_url
from debar.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from debar.tlog.cosignature import parse_cosigner_key, parse_cosigner_signer_key
from debar.tlog.keys import parse_signer_key
from debar.tlog.merkle import EMPTY_ROOT
from debar.tlog.witness import AddCheckpointRequest, add_cosignatures
from debar.v1 import common_pb2, sanction_pb2_grpc
from tests.support.requests import check_request, impose_request
from tests.support.servers import wait_for
from tests.support.subjects import new_ric


@pytest.fixture
def other_server() -> Iterator[int]:
    """Someone else's server on a port: it answers SERVING to anyone who asks."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[("grpc.so_reuseport", 0)])
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


def _up_env(tmp_path: Path, env: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    """Free ports, and always a private data folder (tmp_path/data, whatever `env` says): what the tests assert
    about the data folder is about this one."""
    ports = {name: free_port() for name in [*available_services(), "witness"]}
    full_env = {
        "PATH": "/usr/bin:/bin", **{f"DEBAR_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        **{k: v for k, v in env.items() if k != "DEBAR_LOG_SIGNING_KEY"},  # `up` makes its own dev log key
        "DEBAR_DATA_DIR": str(tmp_path / "data"),
    }  # fmt: skip
    return full_env, ports


def _up(
    tmp_path: Path, env: dict[str, str], *args: str, demo: bool = False, up_args: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], dict[str, int], Path]:
    full_env, ports = _up_env(tmp_path, env)
    out = tmp_path / "up.out"
    command = [sys.executable, "-m", "debar.cli.main", *args, "up", *([] if demo else ["--no-demo"]), *up_args]
    with out.open("wb") as sink, (tmp_path / "up.err").open("wb") as errors:
        process = subprocess.Popen(command, env=full_env, stdout=sink, stderr=errors)
    return process, ports, out


def _stopped(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # `up` stops its services on SIGTERM
    return process.wait(timeout=60)


def test_up_uses_the_configured_redis_and_says_so(tmp_path, service_env, registry):
    env = {k: v for k, v in service_env.items() if k != "DEBAR_REDIS_URL"}
    url = service_env["DEBAR_REDIS_URL"]
    process, ports, out = _up(tmp_path, env, "--redis-url", url)
    try:
        assert wait_for(lambda: b"ready." in out.read_bytes() or process.poll() is not None, timeout_s=60)
        assert process.poll() is None, (tmp_path / "up.err").read_text()
        assert out.read_text().splitlines()[0].startswith(f"redis     {url} (configured")
        assert not (tmp_path / "data" / "redis").exists()  # no embedded server
        person = new_ric()
        registry.Impose(impose_request(person))  # through the suite's sanction service, on the configured Redis
        with grpc.insecure_channel(f"127.0.0.1:{ports['sanction']}") as channel:
            answer = sanction_pb2_grpc.SanctionServiceStub(channel).Check(check_request(person, "RAIL_G_TRAIN"))
        assert answer.outcome == common_pb2.OUTCOME_DENY
    finally:
        assert _stopped(process) == 0


def test_the_readme_first_run_up_on_the_embedded_redis_then_its_check_answers_deny(tmp_path):
    """README, "Two commands": `debar up` with no Redis configured starts the embedded one, loads the demo data and
    prints a ready-to-paste check, which answers DENY (exit code 3) for the demo's restricted person."""
    process, ports, out = _up(tmp_path, {}, demo=True)
    redis_folder = tmp_path / "data" / "redis"
    try:
        assert wait_for(lambda: b"ready." in out.read_bytes() or process.poll() is not None, timeout_s=90)
        assert process.poll() is None, (tmp_path / "up.err").read_text()
        printed = out.read_text().splitlines()
        assert printed[0].startswith("redis     redis://127.0.0.1:")
        assert printed[0].endswith(f"(embedded, data in {redis_folder})")
        assert running_url(redis_folder) == printed[0].split()[1]
        assert printed[1].startswith("demo data ")
        pasted = next(line.strip() for line in printed[printed.index("ready. Try:") + 1 :] if line.strip())
        argv = shlex.split(pasted)
        assert argv[0] == "debar", pasted
        # Pasted into the same shell: the ports `up` was given are in the environment; `debar` is the venv's.
        shell = {"PATH": "/usr/bin:/bin", **{f"DEBAR_{name.upper()}_PORT": str(port) for name, port in ports.items()}}
        answer = subprocess.run(
            [str(Path(sys.executable).parent / "debar"), *argv[1:]], env=shell, capture_output=True, timeout=60
        )
        assert answer.returncode == 3, answer.stderr.decode()
        decision = json.loads(answer.stdout)
        assert decision["outcome"] == "OUTCOME_DENY"
        assert decision["measure"] == "RAIL_G_TRAIN"
        assert decision["decisionId"]
        assert decision["grounds"]
        _signs_in_to_the_console(printed, ports["console"], tmp_path)
    finally:
        assert _stopped(process) == 0
    assert running_url(redis_folder) is None  # up stopped its embedded server


def _child_env(parent: int, *argv: str) -> dict[str, str]:
    """The environment `debar up` gave its child process running `argv` (read from /proc)."""
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            if ppid == parent and [a.encode() for a in argv] == cmdline[-len(argv) :]:
                pairs = (item.partition(b"=") for item in (proc / "environ").read_bytes().split(b"\0") if item)
                return {k.decode(): v.decode() for k, _, v in pairs}
        except (OSError, ValueError, IndexError):
            continue
    raise AssertionError(f"no child of {parent} runs {argv}")


def test_up_runs_a_witness_for_its_log_and_tells_the_services_where_it_is(tmp_path, service_env):
    """`debar up` starts one witness with its own key and state under the data folder, prints its address and
    key, and gives the services DEBAR_LOG_WITNESSES and the log key it follows; the witness cosigns that log."""
    no_key = {k: v for k, v in service_env.items() if k != "DEBAR_LOG_SIGNING_KEY"}  # up makes its dev key
    process, ports, out = _up(tmp_path, no_key)
    try:
        assert wait_for(lambda: b"ready." in out.read_bytes() or process.poll() is not None, timeout_s=60)
        assert process.poll() is None, (tmp_path / "up.err").read_text()
        url = f"http://127.0.0.1:{ports['witness']}"
        [line] = [line for line in out.read_text().splitlines() if line.startswith("witness ")]
        assert line.split()[1] == url
        printed_key = parse_cosigner_key(line.rsplit(" ", 1)[1].rstrip(")"))
        folder = tmp_path / "data" / "witness"
        assert parse_cosigner_signer_key((folder / "witness.key").read_text()).verifier() == printed_key
        sanction_env = _child_env(process.pid, "serve", "sanction")
        [witness] = parse_log_witnesses(sanction_env["DEBAR_LOG_WITNESSES"])
        assert (witness.url, witness.verifier) == (url, printed_key)
        log_key = parse_signer_key(Path(sanction_env["DEBAR_LOG_SIGNING_KEY"]).read_text())
        assert log_key.name == "debar.local/debar"
        # What the integrator will do: sign a checkpoint with that key and ask the witness it was given.
        note = sign_checkpoint(Checkpoint(log_key.name, 0, EMPTY_ROOT), log_key)
        answer = httpx.post(f"{url}/add-checkpoint", content=AddCheckpointRequest(0, (), note.to_bytes()).to_bytes())
        assert answer.status_code == 200, answer.text
        cosigned = add_cosignatures(note, answer.content, printed_key)
        open_checkpoint(cosigned.to_bytes(), log_key.verifier(), witnesses=[printed_key])
        assert (folder / "state.json").exists()
    finally:
        assert _stopped(process) == 0


def _signs_in_to_the_console(printed: list[str], port: int, tmp_path: Path) -> None:
    """`debar up` prints the console's address and two demo reviewers' sign-ins, which work."""
    import httpx

    assert f"console     http://127.0.0.1:{port}" in printed
    line = next(line for line in printed if line.startswith("console: "))
    found = re.search(
        r"http://(\S+)/ \(reviewers sign in at /signin as li / (\S+), zhang / (\S+); accounts in (\S+)\)", line
    )
    assert found, line
    assert Path(found[4]) == tmp_path / "data" / "console-accounts.json"
    for login, password in (("li", found[2]), ("zhang", found[3])):
        with httpx.Client(base_url=f"http://{found[1]}") as client:
            form = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text)
            assert form
            answer = client.post("/signin", data={"csrf_token": form[1], "login": login, "password": password})
            assert answer.status_code == 303 and answer.headers["location"] == "/queue", answer.text
            assert f"reviewer:{login}" in client.get("/queue").text


def test_up_with_a_port_in_use_stops_and_says_which(tmp_path, service_env, other_server):
    process, _, out = _up(tmp_path, {**service_env, "DEBAR_SANCTION_PORT": str(other_server)})
    try:
        assert process.wait(timeout=60) == 1
    finally:
        _stopped(process)
    errors = (tmp_path / "up.err").read_text()
    assert f"127.0.0.1:{other_server} (sanction)" in errors
    assert "ready" not in out.read_text()


def test_up_with_the_witness_port_in_use_says_so(tmp_path, service_env, other_server):
    process, _, out = _up(tmp_path, {**service_env, "DEBAR_WITNESS_PORT": str(other_server)})
    try:
        assert process.wait(timeout=60) == 1
    finally:
        _stopped(process)
    assert f"127.0.0.1:{other_server} (witness)" in (tmp_path / "up.err").read_text()
    assert "ready" not in out.read_text()


def test_up_notices_a_service_that_exits_during_start_up(tmp_path, service_env):
    started = time.monotonic()
    process, ports, out = _up(tmp_path, {**service_env, "DEBAR_SCOPES_FILE": str(tmp_path / "missing.json")})
    try:
        assert process.wait(timeout=60) == 1
    finally:
        _stopped(process)
    assert time.monotonic() - started < 15  # at once, not after the 20 s readiness timeout
    errors = (tmp_path / "up.err").read_text()
    assert "debar: DEBAR_SCOPES_FILE: cannot read" in errors  # the service's own words, then up's
    assert f"debar up: sanction exited with code 2 before serving on 127.0.0.1:{ports['sanction']}" in errors
    assert "ready" not in out.read_text()


def test_a_serving_answer_from_a_port_whose_process_exited_is_not_believed(other_server):
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    child.wait(timeout=30)
    failure = start_failure(child, "127.0.0.1", other_server, Settings(), timeout_s=5)
    assert (
        failure
        == f"exited with code 3 before serving on 127.0.0.1:{other_server}: the port is taken (another `debar up`?)"
    )


def test_up_with_certs_made_before_authz_existed_issues_its_certificate_and_serves_it_over_mtls(tmp_path, service_env):
    """`debar up --certs DIR` on a folder `debar certs dev` made before a service was added: the folder's CA issues
    the missing certificate, instead of the new service failing its start-up for want of one."""
    from envoy.service.auth.v3 import external_auth_pb2_grpc

    from debar.local.certs import write_dev_certs
    from tests.support.envoy import check_request as envoy_check

    certs = tmp_path / "certs"
    write_dev_certs(certs, services=("sanction", "railway", "hotel", "realestate", "procurement"),
                    clients=("registry", "reviewer", "portal", "bench"))  # fmt: skip
    ca_before = (certs / "ca.pem").read_bytes()
    env = {k: v for k, v in service_env.items() if k != "DEBAR_PLAINTEXT"}
    full_env, ports = _up_env(tmp_path, env)
    out = tmp_path / "up.out"
    with out.open("wb") as sink, (tmp_path / "up.err").open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "debar.cli.main", "up", "--no-demo", "--certs", str(certs)], env=full_env,
            stdout=sink, stderr=errors,
        )  # fmt: skip
    try:
        assert wait_for(lambda: b"ready." in out.read_bytes() or process.poll() is not None, timeout_s=90)
        assert process.poll() is None, (tmp_path / "up.err").read_text()
        assert (certs / "ca.pem").read_bytes() == ca_before and (certs / "authz.pem").exists()
        ca = (certs / "ca.pem").read_bytes()

        def as_caller(name: str) -> grpc.ChannelCredentials:
            return grpc.ssl_channel_credentials(ca, (certs / f"{name}-key.pem").read_bytes(),
                                                (certs / f"{name}.pem").read_bytes())  # fmt: skip

        route = {"debar.check": "rail-ticket", "debar.subject.header": "x-passenger-id", "debar.subject.type": "RIC"}
        with grpc.secure_channel(f"127.0.0.1:{ports['authz']}", as_caller("envoy")) as channel:
            answer = external_auth_pb2_grpc.AuthorizationStub(channel).Check(
                envoy_check(route, {"x-passenger-id": new_ric()}), timeout=10
            )
        assert answer.status.code == 0 and answer.ok_response.headers
        # Beyond local mode authz answers only its proxies: up names the dev envoy's certificate, nobody else's.
        bench = grpc.secure_channel(f"127.0.0.1:{ports['authz']}", as_caller("bench"))
        with bench, pytest.raises(grpc.RpcError) as not_a_proxy:
            external_auth_pb2_grpc.AuthorizationStub(bench).Check(
                envoy_check(route, {"x-passenger-id": new_ric()}), timeout=10
            )
        assert not_a_proxy.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # The sanction service requires people's proofs; the console's key (made in the folder) signs its reviewers'.
        from debar.rpc import tokens
        from debar.v1 import decision_pb2, decision_pb2_grpc

        key = tokens.load_signing_key(str(certs / "console-reviewers-key.pem"))
        proof = tokens.mint(key, "console-reviewers", "reviewer:li", tokens.audience_of("sanction"), time.time())
        console = grpc.ssl_channel_credentials(
            ca, (certs / "console-key.pem").read_bytes(), (certs / "console.pem").read_bytes()
        )
        with grpc.secure_channel(f"127.0.0.1:{ports['sanction']}", console) as channel:
            listing = decision_pb2_grpc.DecisionServiceStub(channel).ListObjections
            on_behalf = [("x-debar-on-behalf-of", "reviewer:li")]
            listing(decision_pb2.ListObjectionsRequest(), metadata=[*on_behalf, ("x-debar-on-behalf-of-token", proof)],
                    timeout=10)  # fmt: skip
            with pytest.raises(grpc.RpcError) as refused:
                listing(decision_pb2.ListObjectionsRequest(), metadata=on_behalf, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        assert _stopped(process) == 0


def test_up_with_a_sentinel_topology_serves_on_the_master_the_sentinels_name(tmp_path):
    """`debar up --topology sentinel`: a master, 2 replicas and 3 Sentinels of its own; the demo data is loaded
    and every service finds the master through the Sentinels (a check's answer waits for a replica)."""
    process, ports, out = _up(tmp_path, {}, demo=True, up_args=("--topology", "sentinel"))
    try:
        assert wait_for(lambda: b"ready." in out.read_bytes() or process.poll() is not None, timeout_s=120)
        assert process.poll() is None, (tmp_path / "up.err").read_text()
        printed = out.read_text().splitlines()
        assert printed[0].startswith("redis     Sentinel: master 127.0.0.1:"), printed[0]
        assert printed[1].startswith("demo data ")
        with grpc.insecure_channel(f"127.0.0.1:{ports['sanction']}") as channel:
            answer = sanction_pb2_grpc.SanctionServiceStub(channel).Check(
                check_request("11010519491231002X", "RAIL_G_TRAIN"), timeout=10
            )
        assert answer.outcome == common_pb2.OUTCOME_DENY
    finally:
        assert _stopped(process) == 0
