"""The witness's HTTP interface (c2sp.org/tlog-witness) as an ASGI app, and the one critical section behind it.

Routes, on the witness port:
- `POST /add-checkpoint`: the body as the spec gives it (tlog.witness.parse_add_checkpoint_request). 200 with the
  cosignature line(s), text/plain; 409 with the size last cosigned, `text/x.tlog.size`; 400, 403, 404 and 422 as
  the library's Refusal says, with the reason as text; 413 a body over MAX_REQUEST_BYTES; 503 when the state
  could not be written (nothing was cosigned). Any other method: 405.
- `GET /<hex SHA-256 of the origin>/checkpoint`: the latest note cosigned for that log (the spec's monitor
  retrieval), 404 when none.
- `GET /readyz`: 200 `ok`, or 503 naming the problem while the last state write failed (readiness).
- `GET /healthz`: 200 while the server answers, whatever its disk does (liveness: restarting fixes no disk).
  The same two paths as the web console's.
On the health port (DEBAR_HEALTH_PORT) only these two; on the metrics port (DEBAR_METRICS_PORT) only
`GET /metrics` (Prometheus): `debar_witness_requests_total{status}`, `debar_witness_cosigned_size{origin}`.

Decide-and-store is one critical section (WitnessCore.add_checkpoint, under one lock, in a worker thread so that
signature checks and fsyncs never stall the event loop): read the state, decide with tlog.witness.Witness,
compare-and-set the new state durably, and only then answer. Two requests from the same size are serialized: the
first advances the state, the second finds its old size stale and gets 409.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from debar.common import logs
from debar.tlog.witness import (
    SIZE_CONTENT_TYPE,
    Conflict,
    Refusal,
    Witness,
    parse_add_checkpoint_request,
)
from debar.witness.state_store import StateFolder, StateStoreError

# A checkpoint note with a hundred signature lines is under 16 KiB; the proof adds at most 63 short lines.
MAX_REQUEST_BYTES = 64 * 1024
TEXT = "text/plain; charset=utf-8"

log = logs.get_logger("debar.witness")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = TEXT


def _refused(refusal: Refusal) -> Answer:
    if isinstance(refusal, Conflict):
        return Answer(refusal.status, refusal.body(), SIZE_CONTENT_TYPE)
    return Answer(refusal.status, refusal.reason.encode() + b"\n")


class WitnessCore:
    """The witness's decisions against its state folder, one at a time."""

    def __init__(
        self,
        witness: Witness,
        store: StateFolder,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._witness, self._store, self._clock = witness, store, clock
        self._lock = threading.Lock()
        self.write_failure: str | None = None
        registry = registry or CollectorRegistry()
        self._requests = Counter(
            "debar_witness_requests", "add-checkpoint requests answered, by HTTP status", ["status"], registry=registry
        )
        self._sizes = Gauge(
            "debar_witness_cosigned_size", "size of the last checkpoint cosigned, by log", ["origin"], registry=registry
        )
        for origin, record in store.read()[0].records.items():
            self._sizes.labels(origin).set(record.size)

    @property
    def store(self) -> StateFolder:
        return self._store

    def add_checkpoint(self, body: bytes) -> Answer:
        answer = self._add_checkpoint(body)
        self._requests.labels(str(answer.status)).inc()
        return answer

    def _add_checkpoint(self, body: bytes) -> Answer:
        try:
            request = parse_add_checkpoint_request(body)
        except Refusal as refusal:
            log.info("refused", status=refusal.status, reason=refusal.reason)
            return _refused(refusal)
        with self._lock:
            try:
                state, read_from = self._store.read()
                cosigned = self._witness.add_checkpoint(state, request, int(self._clock()))
            except Refusal as refusal:
                log.info("refused", status=refusal.status, reason=refusal.reason)
                return _refused(refusal)
            except StateStoreError as error:
                return self._failed(error)
            origin = cosigned.checkpoint.origin
            try:
                self._store.commit(read_from, cosigned.state, origin, cosigned.note.to_bytes())
            except StateStoreError as error:
                return self._failed(error)
            self.write_failure = None
        self._sizes.labels(origin).set(cosigned.checkpoint.size)
        log.info("cosigned", origin=origin, size=cosigned.checkpoint.size, old_size=request.old_size)
        return Answer(200, cosigned.response_body())

    def _failed(self, error: StateStoreError) -> Answer:
        self.write_failure = str(error)
        log.error("not cosigned: the state could not be stored", error=str(error))
        return Answer(503, b"the witness could not store its state; nothing was cosigned\n")


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is over `limit` bytes (reading stops there)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _respond(answer: Answer) -> Response:
    # The content type exactly as given: the spec names text/x.tlog.size, with no charset parameter.
    return Response(answer.body, status_code=answer.status, headers={"content-type": answer.content_type})


def build_app(core: WitnessCore, registry: CollectorRegistry, health_port: int = 0, metrics_port: int = 0) -> ASGIApp:
    """The ASGI app for every socket the server listens on; which routes answer depends on the local port."""

    async def add_checkpoint(request: Request) -> Response:
        body = await _read_body(request, MAX_REQUEST_BYTES)
        if body is None:
            return PlainTextResponse(f"request: larger than {MAX_REQUEST_BYTES} bytes\n", status_code=413)
        return _respond(await asyncio.to_thread(core.add_checkpoint, body))

    async def cosigned_checkpoint(request: Request) -> Response:
        note = await asyncio.to_thread(core.store.cosigned_note, request.path_params["origin_hash"])
        if note is None:
            return PlainTextResponse("this witness has cosigned no checkpoint of that log\n", status_code=404)
        return Response(note, media_type=TEXT)

    async def ready(request: Request) -> Response:
        if core.write_failure is not None:
            return PlainTextResponse(f"state not writable: {core.write_failure}\n", status_code=503)
        return PlainTextResponse("ok\n")

    async def alive(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    api = Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/readyz", ready, methods=["GET"]),
            Route("/healthz", alive, methods=["GET"]),
            Route("/{origin_hash}/checkpoint", cosigned_checkpoint, methods=["GET"]),
        ]
    )
    by_port: dict[int, ASGIApp] = {}
    if health_port:
        by_port[health_port] = Starlette(
            routes=[Route("/readyz", ready, methods=["GET"]), Route("/healthz", alive, methods=["GET"])]
        )
    if metrics_port:
        by_port[metrics_port] = Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        _, port = scope.get("server") or ("", 0)
        await by_port.get(int(port or 0), api)(scope, receive, send)

    return app
