"""A log made with the tlog library (a test signing key, every node kept), and `debar witness` run as a real
process on a free port with a private key and state folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from debar.local.embedded_redis import free_port
from debar.tlog.checkpoint import Checkpoint, sign_checkpoint
from debar.tlog.compact import CompactRange
from debar.tlog.cosignature import CosignatureSigner, CosignatureVerifier
from debar.tlog.keys import Ed25519Signer
from debar.tlog.merkle import EMPTY_ROOT, NodeId, leaf_hash
from debar.tlog.note import Note
from debar.tlog.proofs import consistency_proof
from debar.tlog.witness import AddCheckpointRequest
from tests.support.servers import wait_for

ORIGIN = "debar.test/log"


class TestLog:
    """A log as an integrator keeps it: the leaves' tree, every node, and the log's signing key."""

    __test__ = False  # not a pytest class

    def __init__(self, signer: Ed25519Signer, entries: int = 0, tag: bytes = b"") -> None:
        self.signer = signer
        self.tag = tag
        self.roots = [EMPTY_ROOT]
        self.nodes: dict[NodeId, bytes] = {}
        self._tree = CompactRange()
        self.append(entries)

    @property
    def size(self) -> int:
        return self._tree.size

    def append(self, count: int) -> TestLog:
        for _ in range(count):
            self.nodes.update(self._tree.append(leaf_hash(b"entry %d%s" % (self._tree.size, self.tag))))
            self.roots.append(self._tree.root())
        return self

    def note(self, size: int | None = None) -> Note:
        size = self.size if size is None else size
        return sign_checkpoint(Checkpoint(self.signer.name, size, self.roots[size]), self.signer)

    def checkpoint(self, size: int | None = None) -> bytes:
        return self.note(size).to_bytes()

    def proof(self, old: int, new: int | None = None) -> tuple[bytes, ...]:
        new = self.size if new is None else new
        return tuple(consistency_proof(old, new, lambda nodes: [self.nodes[n] for n in nodes]))

    def request(self, old: int, new: int | None = None) -> bytes:
        new = self.size if new is None else new
        return AddCheckpointRequest(old, self.proof(old, new), self.checkpoint(new)).to_bytes()


def log_signer(origin: str = ORIGIN) -> Ed25519Signer:
    return Ed25519Signer.generate(origin)


@dataclass
class WitnessProcess:
    """`debar witness` with its own key file and state folder under `folder`."""

    folder: Path
    follows: list[Ed25519Signer]
    name: str = "witness.test/w1"
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    cosigner: CosignatureSigner = field(init=False)
    starts: int = 0

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cosigner = CosignatureSigner.generate(self.name)
        self.key_file.write_text(self.cosigner.signer_key() + "\n")

    @property
    def key_file(self) -> Path:
        return self.folder / "witness.key"

    @property
    def state_dir(self) -> Path:
        return self.folder / "state"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def verifier(self) -> CosignatureVerifier:
        return self.cosigner.verifier()

    @property
    def log_path(self) -> Path:
        return self.folder / f"witness-{self.starts}.log"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DEBAR_HOST": "127.0.0.1",
            "DEBAR_WITNESS_PORT": str(self.port),
            "DEBAR_WITNESS_KEY": str(self.key_file),
            "DEBAR_WITNESS_STATE_DIR": str(self.state_dir),
            "DEBAR_WITNESS_LOGS": ",".join(s.verifier().verifier_key() for s in self.follows),
            "DEBAR_HEALTH_PORT": "0",
            "DEBAR_METRICS_PORT": "0",
            **self.extra_env,
        }

    def start(self) -> WitnessProcess:
        self.starts += 1
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "debar.cli.main", "witness"], env=self.env(), stdout=log, stderr=log
            )
        process = self.process
        if not wait_for(lambda: self.healthy() or process.poll() is not None, timeout_s=60):
            self.kill()
            raise RuntimeError(f"the witness did not start:\n{self.log()}")
        if process.poll() is not None:
            raise RuntimeError(f"the witness exited at start:\n{self.log()}")
        return self

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; what survives is what was durable."""
        self.stop(signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=15)
        self.process = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def add_checkpoint(self, body: bytes) -> httpx.Response:
        return httpx.post(f"{self.url}/add-checkpoint", content=body, timeout=30)
