"""Identities, as every debar server and the access rules see them. Plain data, for the access rules and the
interceptors alike.

An identity is one person, platform or service: `kind:name` (`reviewer:li`, `clerk:wang`, `platform:12306`) or a
bare name (a debar service: `railway`; a tool: `bench`). It comes from the client certificate's common name
(mTLS), a signed token's subject (token mode) or the x-debar-caller header (local mode only), and must match
CALLER_NAME, or the call is UNAUTHENTICATED: the name is written into log records, metric labels and an
objection's history, so it carries no separators, spaces or capitals, and at most 128 characters (the longest
actor an objection's history keeps).

A group is every identity of one kind, written `kind:*` (`reviewer:*`): the scopes file and the token trust file
grant or allow by exact name or by group. Health and reflection are open to every caller that got through the
transport (probes and tools must not need a scope)."""

from __future__ import annotations

import re

CALLER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}(:[a-z0-9][a-z0-9_.-]{0,62})?\Z")
GROUP = re.compile(r"^([a-z0-9][a-z0-9_-]{0,63}):\*\Z")

# The identity of local mode (plaintext on loopback, `debar up`): every scope, there and nowhere else.
LOCAL = "local"

PUBLIC_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                   "/grpc.reflection.v1.ServerReflection/")  # fmt: skip


def is_identity(name: object) -> bool:
    return isinstance(name, str) and CALLER_NAME.match(name) is not None


# Kinds of identity that are machines (a platform, asking through a domain service), not people.
MACHINE_KINDS = frozenset({"platform"})


def is_person(identity: str) -> bool:
    """A person (`reviewer:li`, `clerk:wang`): a `kind:name` identity of a kind that is not a machine's. A delegate
    acts for a person only with that person's own proof (rpc/callers.py: PrincipalProof)."""
    kind, colon, _ = identity.partition(":")
    return bool(colon) and kind not in MACHINE_KINDS


def group_of(identity: str) -> str | None:
    """`kind:*` for a `kind:name` identity; None for a bare name (it belongs to no group)."""
    kind, colon, _ = identity.partition(":")
    return f"{kind}:*" if colon else None


def is_name_or_group(pattern: object) -> bool:
    """An exact identity or a group (`kind:*`): what the scopes and trust files may name."""
    return is_identity(pattern) or (isinstance(pattern, str) and GROUP.match(pattern) is not None)


def covers(pattern: str, identity: str) -> bool:
    """Whether an exact name or a group names `identity`."""
    return pattern == identity or pattern == group_of(identity)
