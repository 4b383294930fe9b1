"""Proofs from the stored tree, and the receipts and checkpoints the API gives (GetCheckpoint, GetDecisionProof,
GetConsistencyProof): a receipt is a decision's canonical entry bytes, its leaf index, the inclusion proof to the
latest signed checkpoint, and that checkpoint, so that anyone can check it offline with the log's public key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from debar.common.errors import Conflict, InvalidField, NotFound, Unavailable
from debar.sanction.app.ports import NodesArchived, SequencedLog, TreeStore
from debar.sanction.app.unavailable import unavailable_as
from debar.sanction.domain.receipts import Receipt
from debar.tlog.checkpoint import Checkpoint, parse_checkpoint
from debar.tlog.nodes import MissingNodes
from debar.tlog.note import parse_note
from debar.tlog.proofs import ProofPlan, consistency_plan, inclusion_plan

RETRY_AFTER_S = 1


class NotYetIntegrated(Unavailable):
    """The decision is sequenced but not yet in a signed checkpoint (normally within 2 s): ask again shortly."""

    def __init__(self, message: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ProofArchived(Conflict):
    """The proof needs leaf hashes moved to the archive (`debar log archive`): FAILED_PRECONDITION, never a wrong
    proof."""


class ProofNodesMissing(Conflict):
    """The proof needs leaf hashes the store holds neither in Redis nor marked archived (a tile deleted, or the
    archived bitmap rewritten, behind the service's back): FAILED_PRECONDITION naming it, never a wrong proof or an
    internal error; `debar log verify` names the tile."""


def _missing(what: str, error: MissingNodes) -> ProofNodesMissing:
    return ProofNodesMissing(
        f"{what} needs leaf hashes that are neither in Redis nor marked archived ({error}): the tree's store was "
        "changed behind the service's back; `debar log verify` names what is missing"
    )


async def read_proof(tree: TreeStore, plan: ProofPlan) -> list[bytes]:
    nodes = plan.nodes
    hashes = await tree.read_nodes(nodes) if nodes else []
    return plan.assemble(dict(zip(nodes, hashes, strict=True)))


async def consistency_proof(tree: TreeStore, old_size: int, new_size: int) -> list[bytes]:
    return await read_proof(tree, consistency_plan(old_size, new_size))


async def inclusion_proof(tree: TreeStore, index: int, size: int) -> list[bytes]:
    return await read_proof(tree, inclusion_plan(index, size))


@dataclass(frozen=True)
class SignedTreeHead:
    note: bytes  # the signed checkpoint with its cosignatures
    checkpoint: Checkpoint

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        return self.checkpoint.root_hash


@dataclass(frozen=True)
class DecisionProof:
    """A decision's entry, its place in the tree and the signed head it is proved against; `receipt()` is the
    same as the offline file a person keeps (debar-receipt/1)."""

    decision_id: str
    entry: bytes
    leaf_index: int
    inclusion_proof: tuple[bytes, ...]
    head: SignedTreeHead

    def receipt(self) -> Receipt:
        return Receipt(self.decision_id, self.entry, self.leaf_index, self.inclusion_proof, self.head.note)


class LogProofs:
    def __init__(self, log: SequencedLog, tree: TreeStore) -> None:
        self._log = log
        self._tree = tree

    @unavailable_as("the decision log")
    async def checkpoint(self) -> SignedTreeHead:
        note = await self._tree.latest_checkpoint()
        if note is None:
            raise NotYetIntegrated("no checkpoint has been signed yet; try again shortly")
        return SignedTreeHead(note, parse_checkpoint(parse_note(note).text))

    @unavailable_as("the decision log")
    async def decision_proof(self, decision_id: str) -> DecisionProof:
        if not decision_id:
            raise InvalidField("decision_id", "required")
        found = await self._log.locate(decision_id)
        if found is None:
            raise NotFound(f"no decision {decision_id}")
        stream, record_id, index = found
        record = await self._log.read(stream, record_id)
        if record is None or index >= len(record.entries):
            raise NotFound(f"no decision {decision_id}")
        first = await self._tree.first_leaf(stream, record_id)
        head = await self.checkpoint()
        if first is None or first + index >= head.size:
            raise NotYetIntegrated(f"decision {decision_id} is not in a signed checkpoint yet; try again shortly")
        leaf = first + index
        try:
            proof = await inclusion_proof(self._tree, leaf, head.size)
        except NodesArchived as error:
            raise ProofArchived(f"decision {decision_id}: its leaf hashes are archived ({error})") from error
        except MissingNodes as error:
            raise _missing(f"decision {decision_id}'s inclusion proof", error) from error
        return DecisionProof(decision_id, record.entries[index], leaf, tuple(proof), head)

    @unavailable_as("the decision log")
    async def consistency(self, from_size: int, to_size: int) -> Sequence[bytes]:
        if from_size > to_size:
            raise InvalidField("from_size", f"{from_size} is larger than to_size {to_size}")
        head = await self.checkpoint()
        if to_size > head.size:
            raise InvalidField("to_size", f"{to_size} is beyond the latest checkpoint's size {head.size}")
        try:
            return await consistency_proof(self._tree, from_size, to_size)
        except NodesArchived as error:
            raise ProofArchived(
                f"a consistency proof from size {from_size} to {to_size} needs leaf hashes moved to the archive "
                f"({error}); ask from a newer checkpoint's size"
            ) from error
        except MissingNodes as error:
            raise _missing(f"a consistency proof from size {from_size} to {to_size}", error) from error
