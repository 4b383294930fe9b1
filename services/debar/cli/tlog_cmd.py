"""The Merkle log's commands: `debar keys log-signing` (a log key pair), `debar log verify` (the tree rebuilt from
the entries against every stored checkpoint), `debar receipt get` (a decision's receipt from a running sanction
service) and `debar receipt verify` (a saved receipt, offline: no Redis, no network)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from debar.common.settings import Settings, SettingsError


def add_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="key pairs")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    signing = keys_commands.add_parser(
        "log-signing",
        help="make the log's signing key pair: the signer key into a new file, the verifier key printed",
        description="Writes the signer key (PRIVATE+KEY+<name>+..., mode 0600, never overwritten) to --out for "
        "DEBAR_LOG_SIGNING_KEY and prints the public key in note verifier form (<name>+<key id>+<key>) for "
        "auditors, witnesses (DEBAR_WITNESS_LOGS) and `debar receipt verify --log-key`.",
    )
    signing.add_argument(
        "--name", required=True, help="the log's origin, naming the deployment, e.g. debar.example.org/log"
    )
    signing.add_argument("--out", required=True, help="the new file for the signer key")
    signing.set_defaults(run=_keygen)

    receipt = commands.add_parser("receipt", help="a decision's receipt: fetch one, or verify one offline")
    receipt_commands = receipt.add_subparsers(dest="receipt_command", required=True)
    get = receipt_commands.add_parser(
        "get", help="print a decision's receipt (GetDecisionProof): debar receipt get ID > FILE"
    )
    get.add_argument("decision_id")
    get.add_argument("--address", help="sanction service address (default: $DEBAR_SANCTION_ADDRESS)")
    get.add_argument("--caller", help="local mode: the identity to ask as (needs decisions:read)")
    get.add_argument("--id-type", choices=["RIC", "USCC"], help="the subject's identifier type (a portal must name it)")
    get.add_argument("--id", help="the subject's identifier (a caller without objections:review must name it)")
    get.set_defaults(run=_receipt_get)
    check = receipt_commands.add_parser(
        "verify", help="check a saved receipt offline with the public keys; exit 1 naming what broke"
    )
    check.add_argument("file")
    check.add_argument("--log-key", required=True, help="the log's verifier key (debar keys log-signing printed it)")
    check.add_argument(
        "--witness-key", action="append", default=[], help="a witness's verifier key whose cosignature is required"
    )
    check.set_defaults(run=_receipt_verify)


def add_log_verify(log_commands: Any) -> None:
    verify = log_commands.add_parser(
        "verify",
        help="rebuild the Merkle tree from the entries and check it against every stored checkpoint; exit 1 naming "
        "what broke, 2 when it cannot run",
    )
    verify.add_argument("--archive", help="the archive folder of records trimmed from Redis")
    verify.add_argument("--checkpoints", help="the checkpoint folder (default: $DEBAR_LOG_CHECKPOINTS_DIR)")
    verify.add_argument("--log-key", help="the log's verifier key (default: from DEBAR_LOG_SIGNING_KEY)")
    verify.add_argument(
        "--witness-key", action="append", help="a witness's verifier key (default: those of DEBAR_LOG_WITNESSES)"
    )
    verify.add_argument(
        "--require-signatures", action="store_true",
        help="an unsigned entry of debar import or rekey is broken too (where they always run with the log's key, "
        "as in deploy/: a registry entry naming the caller import is then no longer anyone's to forge)",
    )  # fmt: skip
    verify.set_defaults(run=_log_verify)


# -- keys ----------------------------------------------------------------------------------------------------


def _keygen(args: argparse.Namespace, settings: Settings) -> int:
    from debar.local.dev_keys import write_new_secret
    from debar.tlog.keys import Ed25519Signer, InvalidKey

    try:
        signer = Ed25519Signer.generate(args.name)
    except InvalidKey as error:
        print(f"debar keys log-signing: --name: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        write_new_secret(out, signer.signer_key())
    except FileExistsError:
        print(f"debar keys log-signing: {out} exists; not overwritten", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"debar keys log-signing: cannot write {out}: {error.strerror}", file=sys.stderr)
        return 2
    print(signer.verifier().verifier_key())
    return 0


# -- receipts ------------------------------------------------------------------------------------------------


def _receipt_get(args: argparse.Namespace, settings: Settings) -> int:
    import grpc

    from debar.common.identifiers import IdKind
    from debar.rpc import tls, wire
    from debar.rpc.callers import CALLER_HEADER
    from debar.v1 import common_pb2, decision_pb2, decision_pb2_grpc

    metadata = ((CALLER_HEADER, args.caller),) if args.caller and not settings.tls else ()
    with tls.channel(settings, args.address or settings.sanction_address) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        try:
            request = decision_pb2.GetDecisionProofRequest(decision_id=args.decision_id)
            if args.id:
                request.subject.CopyFrom(
                    common_pb2.Subject(id_type=wire.id_type(IdKind(args.id_type or "RIC")), id=args.id)
                )
            proof = stub.GetDecisionProof(
                request,
                metadata=metadata,
                timeout=settings.sanction_timeout_s,
            )
        except grpc.RpcError as error:
            print(f"debar receipt get: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    sys.stdout.buffer.write(proof.receipt)
    return 0


def _receipt_verify(args: argparse.Namespace, settings: Settings) -> int:
    from debar.sanction.domain.receipts import InvalidReceipt, verify_receipt
    from debar.tlog.cosignature import parse_cosigner_key
    from debar.tlog.keys import InvalidKey, parse_verifier_key

    try:
        log_key = parse_verifier_key(args.log_key)
    except InvalidKey as error:
        print(f"debar receipt verify: --log-key: {error}", file=sys.stderr)
        return 2
    witness_keys = []
    for text in args.witness_key:
        try:
            witness_keys.append(parse_cosigner_key(text))
        except InvalidKey as error:
            print(f"debar receipt verify: --witness-key: {error}", file=sys.stderr)
            return 2
    try:
        data = Path(args.file).read_bytes()
    except OSError as error:
        print(f"debar receipt verify: cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        verified = verify_receipt(data, log_key, witness_keys)
    except InvalidReceipt as error:
        print(f"debar receipt verify: INVALID: {error}", file=sys.stderr)
        return 1
    d = verified.decision
    cp = verified.checkpoint
    print(f"receipt verified: decision {d.decision_id} is leaf {verified.receipt.leaf_index} of {cp.origin}'s tree")
    print(f"checkpoint: size {cp.size}, signed by {log_key.name}", end="")
    print(f", cosigned by {', '.join(verified.cosigned_by)}" if verified.cosigned_by else ", no witness key given")
    grounds = "; ".join(f"{g.restriction_id} ({g.legal_basis}, {g.authority}, {g.case_number})" for g in d.grounds)
    print(f"decision: {d.outcome} {d.measure} for {d.id_type} {d.subject}, asked by {d.caller}", end="")
    print(f" for {d.on_behalf_of}" if d.on_behalf_of else "")
    print(f"decided at (ms): {d.at_ms}; checked at: {d.checked_at}; catalogue {d.catalogue_version}")
    if grounds:
        print(f"grounds: {grounds}")
    if d.exemption is not None:
        print(f"exemption: {d.exemption.exemption_id}")
    return 0


# -- log verify ----------------------------------------------------------------------------------------------


def _log_verify(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    return asyncio.run(verify(settings, args))


async def verify(settings: Settings, args: argparse.Namespace) -> int:
    from debar.cli.sanction_core import sanction_core
    from debar.sanction.adapters.checkpoint_dir import DirectoryCheckpoints
    from debar.sanction.app.log_audit import audit_log
    from debar.sanction.app.ports import ListedDecisions, StoredRecords
    from debar.sanction.domain.decision_seals import seal_key
    from debar.tlog.cosignature import parse_cosigner_key
    from debar.tlog.keys import InvalidKey, parse_verifier_key

    def cannot(message: str) -> int:
        print(f"debar log verify: {message}", file=sys.stderr)
        return 2

    if args.archive and not Path(args.archive).is_dir():  # else it would read as an empty archive
        return cannot(f"no archive folder: {args.archive}")
    async with sanction_core(settings, Path(args.archive) if args.archive else None) as core:
        await core.adapters.sequenced_log.streams()  # Redis first: unreachable is one line, as for every command
        try:
            log_key = parse_verifier_key(args.log_key) if args.log_key else settings.log_signer().verifier()
            if args.witness_key is not None:
                witness_keys = [parse_cosigner_key(k) for k in args.witness_key]
            else:
                witness_keys = [w.verifier for w in settings.log_witness_list()]
        except (InvalidKey, SettingsError) as error:
            return cannot(str(error))
        folder = Path(args.checkpoints) if args.checkpoints else settings.checkpoints_path
        notes = DirectoryCheckpoints(folder).all()
        if not notes:
            return cannot(f"no stored checkpoint in {folder}: nothing to verify the log against")
        archived = await _archived_records(core) if args.archive else []
        try:
            tiles = core.adapters.archive.read_tiles() if args.archive else {}
        except ValueError as error:
            return cannot(f"archived tiles unreadable: {error}")
        try:
            order = core.adapters.archive.read_order() if args.archive else []
        except ValueError as error:
            return cannot(f"archived leaf order unreadable: {error}")
        report = await audit_log(
            core.adapters.sequenced_log, core.adapters.tree, notes, log_key, witness_keys, archived,
            held=core.adapters.store if isinstance(core.adapters.store, StoredRecords) else None,
            tools_sign=args.require_signatures, archived_tiles=tiles, archived_order=order,
            lists=core.adapters.decision_log if isinstance(core.adapters.decision_log, ListedDecisions) else None,
            seal_key=seal_key(settings.bucket_key),
        )  # fmt: skip
    for line in report.broken:
        print(f"BROKEN {line}", file=sys.stderr)
    print(
        f"{report.checkpoints} checkpoints (newest: size {report.newest_size}), {report.records} records holding "
        f"{report.leaves} entries rebuilt ({report.from_archive} records from the archive), {report.pending} "
        f"records pending integration, {report.missing_cosignatures} cosignatures missing, {report.signed} "
        f"registry, objection and rekey entries signed by their writer ({report.unsigned_by_tools} unsigned, of "
        f"debar import or rekey run without the log's key), {report.held_records} restrictions and permits held "
        f"compared with their registry entries, {report.sealed} decisions sealed by the service, "
        f"{len(report.broken)} broken"
    )
    return 1 if report.broken else 0


async def _archived_records(core: Any) -> list[Any]:
    """The records `debar log archive` moved out of Redis, as the sequenced log would give them."""
    return list(await core.adapters.sequenced_log.archived_records(core.adapters.archive))
