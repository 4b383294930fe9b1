"""gRPC servicer of WatchService: proto in, the Watch use case, proto out. The owner of every call is the
authenticated caller (for its principal when delegated): a platform never names, sees or changes another's
subscriptions. A subscription tells its owner what a check would (restricted, with every ground; no longer), so each
measure of each item subscribed counts one against the caller's rate (as a checked item does), goes into its
distinct subjects and is audited, as a read is (api/access.py: ReadGate); else a platform could watch a million
people it walks through, unmetered, or every domain's measures of one for the price of one check."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.rpc import status_pb2

from debar.common.errors import DomainError, InvalidField
from debar.rpc import wire
from debar.rpc.status import abort_with, status_code_of
from debar.sanction.api import convert
from debar.sanction.api.access import ReadGate, current_grant
from debar.sanction.app.watch import Heartbeat, Watch
from debar.sanction.domain.catalogue import Catalogue
from debar.sanction.domain.watch import ChangeKind, Subscription, SubscriptionInput, Told, owner_of
from debar.v1 import watch_pb2, watch_pb2_grpc

_KINDS = {
    ChangeKind.BECAME_RESTRICTED: watch_pb2.CHANGE_KIND_BECAME_RESTRICTED,
    ChangeKind.NO_LONGER_RESTRICTED: watch_pb2.CHANGE_KIND_NO_LONGER_RESTRICTED,
}


def _owner() -> str:
    grant = current_grant()
    return owner_of(grant.caller, grant.on_behalf_of)


def _input(request: watch_pb2.SubscribeRequest, field: str) -> SubscriptionInput:
    prefix = f"{field}." if field else ""
    return SubscriptionInput(
        kind=wire.id_kind(request.subject.id_type),
        id=request.subject.id,
        measures=list(request.measures),
        until=wire.seconds(request.until, request.HasField("until"), f"{prefix}until"),
        tag=request.tag,
    )


def _cost(measures: Iterable[str]) -> int:
    """What a subscription counts against the rate: one per measure it names (at least one), as a check of each
    would; it tells each one's changes. Counted before the measures are validated, as a BatchCheck's items are."""
    return max(1, len(set(measures)))


def _subscription(sub: Subscription) -> watch_pb2.Subscription:
    return watch_pb2.Subscription(subscription_id=sub.id, until=wire.timestamp(sub.until))


class WatchServicer(watch_pb2_grpc.WatchServiceServicer):
    def __init__(self, watch: Watch, catalogue: Catalogue, max_batch_items: int, reads: ReadGate) -> None:
        self._watch = watch
        self._catalogue = catalogue
        self._max_batch = max_batch_items
        self._reads = reads

    async def Subscribe(self, request, context):  # type: ignore[no-untyped-def]
        async def subscribe(_: Any) -> tuple[Subscription, list[str]]:
            [result] = await self._watch.subscribe(_owner(), [_input(request, "")])
            if isinstance(result, DomainError):
                raise result
            return result, [result.subject.pseudonym]

        cost = _cost(request.measures)
        return _subscription(await self._reads.serve(context, "Subscribe", subscribe, cost=cost))

    async def SubscribeBatch(self, request, context):  # type: ignore[no-untyped-def]
        if len(request.items) > self._max_batch:
            await abort_with(
                context, InvalidField("items", f"at most {self._max_batch} per batch, got {len(request.items)}")
            )
        inputs: list[SubscriptionInput | DomainError] = []
        for i, item in enumerate(request.items):
            try:
                inputs.append(_input(item, f"items[{i}]"))
            except DomainError as error:
                inputs.append(error)
        valid = [(i, x) for i, x in enumerate(inputs) if isinstance(x, SubscriptionInput)]

        async def subscribe(_: Any) -> tuple[list[Subscription | DomainError], list[str]]:
            done = await self._watch.subscribe(_owner(), [x for _, x in valid], field="items[{i}]")
            return done, [d.subject.pseudonym for d in done if isinstance(d, Subscription)]

        cost = sum(_cost(x.measures) for _, x in valid)
        done = await self._reads.serve(context, "SubscribeBatch", subscribe, cost=cost)
        # Field names: subscribe numbers the valid items; give each error its place in the request.
        results: list[Any] = list(inputs)
        for (i, _), result in zip(valid, done, strict=True):
            results[i] = result
        response = watch_pb2.SubscribeBatchResponse()
        for result in results:
            if isinstance(result, DomainError):
                response.results.add(
                    error=status_pb2.Status(code=status_code_of(result).value[0], message=result.message)
                )
            else:
                response.results.add(subscription=_subscription(result))
        return response

    async def Unsubscribe(self, request, context):  # type: ignore[no-untyped-def]
        try:
            await self._watch.unsubscribe(_owner(), request.subscription_id)
        except DomainError as error:
            await abort_with(context, error)
        return watch_pb2.UnsubscribeResponse()

    async def Changes(self, request, context):  # type: ignore[no-untyped-def]
        stream = self._watch.follow(_owner(), request.after_cursor)
        try:
            first = await anext(stream)
        except DomainError as error:
            await abort_with(context, error)
        yield self._message(first)
        async for item in stream:
            yield self._message(item)

    def _message(self, item: Told | Heartbeat) -> watch_pb2.Change:
        if isinstance(item, Heartbeat):
            return watch_pb2.Change(
                cursor=item.cursor, kind=watch_pb2.CHANGE_KIND_HEARTBEAT, changed_at=wire.timestamp_of_ms(item.at_ms)
            )
        change = watch_pb2.Change(
            cursor=item.cursor, subscription_id=item.subscription_id, tag=item.tag, measure=item.measure,
            kind=_KINDS[item.kind], decision_id=item.decision_id, changed_at=wire.timestamp_of_ms(item.changed_at_ms),
        )  # fmt: skip
        if item.kind is ChangeKind.BECAME_RESTRICTED:
            change.grounds.extend(convert.ground(g, item.measure) for g in item.grounds)
            source = self._catalogue.sources.get(item.grounds[0].source) if item.grounds else None
            if source:
                change.objection.CopyFrom(convert.objection_guide(source.objection))
        return change
