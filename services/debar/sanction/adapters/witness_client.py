"""The Witnesses port over HTTP: c2sp.org/tlog-witness add-checkpoint, as the log's integrator asks it.

- Every witness is asked at once; each request has DEBAR_LOG_WITNESS_TIMEOUT_S in all (connecting, sending,
  reading the answer), so one slow witness delays a checkpoint's cosignatures by at most twice that (a 409 retry)
  and a dead one costs a refused connection.
- Old size: the size this client last saw the witness cosign, else the caller's `old_size` (after a restart).
  A 409 names the size the witness knows; the client asks once more from there with a proof from
  `proof_from(size)`. A witness that knows a size beyond the checkpoint's is a CONFLICT: the log's tree is smaller
  than one the witness cosigned, which is what a rollback or a fork looks like, and worth an alarm.
- A 200 is trusted only after its cosignature verifies with the witness's key (tlog.witness.add_cosignatures);
  lines from other keys are dropped. Answers are read up to MAX_ANSWER_BYTES; redirects are not followed and no
  proxy is taken from the environment: a witness is where DEBAR_LOG_WITNESSES says.
- A witness's fault never raises: it is a WitnessFailure in the Cosigning, for the integrator to count
  (debar_log_witness_failures_total) and show in health details, while the checkpoint is stored regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from types import TracebackType

import httpx

from debar.common.witnesses import WitnessEndpoint
from debar.sanction.app.ports import Cosigning, ProofFrom, WitnessFailure, WitnessFailureKind
from debar.tlog.checkpoint import parse_checkpoint
from debar.tlog.note import Note, NoteError, Signature
from debar.tlog.witness import AddCheckpointRequest, add_cosignatures, parse_size_body

MAX_ANSWER_BYTES = 64 * 1024
_DETAIL_CHARS = 200


class _AnswerTooLarge(Exception):
    pass


def _detail(body: bytes) -> str:
    """The first line of a witness's error text, printable and short."""
    first = body.decode("utf-8", "replace").strip().split("\n", 1)[0]
    printable = "".join(ch if ch.isprintable() else "?" for ch in first)
    return printable[:_DETAIL_CHARS] or "(no reason given)"


class HttpWitnesses:
    """Implements sanction.app.ports.Witnesses. Open it with `async with` (or call aclose()): it holds one
    keep-alive connection pool for all witnesses."""

    def __init__(
        self,
        witnesses: Sequence[WitnessEndpoint],
        timeout_s: float,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._witnesses = tuple(witnesses)
        self._timeout_s = timeout_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._known: dict[str, int] = {}  # witness name -> the size it last cosigned, as seen here
        self._locks = {w.name: asyncio.Lock() for w in self._witnesses}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(w.name for w in self._witnesses)

    async def __aenter__(self) -> HttpWitnesses:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def warm(self) -> None:
        """Builds the HTTP client and loads what its first request would (TLS context, the async backend): in a
        freshly started integrator process on a loaded machine, that first request took most of the witness
        timeout before a byte was sent."""
        if self._witnesses:
            self._http()
            with contextlib.suppress(ImportError):
                import anyio  # noqa: F401  (httpx's transport loads it on its first connection)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout_s),
                follow_redirects=False,
                trust_env=False,
                transport=self._transport,
            )
        return self._client

    async def cosign(self, note: Note, old_size: int, proof_from: ProofFrom) -> Cosigning:
        size = parse_checkpoint(note.text).size
        outcomes = await asyncio.gather(*(self._ask(w, note, size, old_size, proof_from) for w in self._witnesses))
        signatures: list[Signature] = []
        cosigned_by: list[str] = []
        failures: list[WitnessFailure] = []
        for witness, outcome in zip(self._witnesses, outcomes, strict=True):
            if isinstance(outcome, WitnessFailure):
                failures.append(outcome)
            else:
                signatures += outcome
                cosigned_by.append(witness.name)
        return Cosigning(note.with_signatures(*signatures), tuple(cosigned_by), tuple(failures))

    async def _ask(
        self, witness: WitnessEndpoint, note: Note, size: int, old_size: int, proof_from: ProofFrom
    ) -> tuple[Signature, ...] | WitnessFailure:
        def failure(kind: WitnessFailureKind, detail: str, status: int | None = None) -> WitnessFailure:
            return WitnessFailure(witness.name, kind, detail, status)

        async with self._locks[witness.name]:
            start = self._known.get(witness.name, old_size)
            if start > size:  # what this client remembers is beyond this checkpoint: let the witness say
                start = min(old_size, size)
            for attempt in (1, 2):
                try:
                    proof = () if start == 0 else tuple(await proof_from(start))
                except Exception as error:  # the caller's storage: whatever it raises, this witness is skipped
                    return failure(WitnessFailureKind.NO_PROOF, f"no consistency proof from size {start}: {error}")
                request = AddCheckpointRequest(start, proof, note.to_bytes())
                try:
                    status, body = await self._post(witness, request.to_bytes())
                except (TimeoutError, httpx.TimeoutException):
                    return failure(WitnessFailureKind.TIMEOUT, f"no answer within {self._timeout_s:g}s")
                except _AnswerTooLarge:
                    return failure(WitnessFailureKind.BAD_ANSWER, f"an answer over {MAX_ANSWER_BYTES} bytes")
                except httpx.HTTPError as error:
                    return failure(WitnessFailureKind.UNREACHABLE, f"{type(error).__name__}: {error}")
                if status == 200:
                    try:
                        cosigned = add_cosignatures(note, body, witness.verifier)
                    except NoteError as error:
                        return failure(WitnessFailureKind.BAD_ANSWER, str(error), status)
                    self._known[witness.name] = size
                    return tuple(s for s in cosigned.signatures if s not in note.signatures)
                if status != 409:
                    return failure(WitnessFailureKind.REFUSED, _detail(body), status)
                try:
                    known = parse_size_body(body)
                except ValueError:
                    return failure(WitnessFailureKind.BAD_ANSWER, "a 409 without a size", status)
                self._known[witness.name] = known
                if known > size:
                    return failure(
                        WitnessFailureKind.CONFLICT,
                        f"the witness has cosigned size {known}, beyond this checkpoint's {size}: "
                        "the log's tree is smaller than one it showed before (a rollback or a fork)",
                        status,
                    )
                if attempt == 2 or known == start:
                    return failure(WitnessFailureKind.CONFLICT, f"409 again, from size {start}", status)
                start = known
        raise AssertionError("unreachable: the loop returns")

    async def _post(self, witness: WitnessEndpoint, body: bytes) -> tuple[int, bytes]:
        async with asyncio.timeout(self._timeout_s):
            async with self._http().stream(
                "POST", witness.add_checkpoint_url, content=body, headers={"content-type": "text/plain"}
            ) as response:
                answer = bytearray()
                async for chunk in response.aiter_bytes():
                    answer += chunk
                    if len(answer) > MAX_ANSWER_BYTES:
                        raise _AnswerTooLarge
                return response.status_code, bytes(answer)
