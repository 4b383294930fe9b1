"""Callers, as every debar server and the access rules see them. Plain data, for the access rules and the
interceptors alike.

A caller's name (certificate CN, token subject, or x-debar-caller in local mode) matches CALLER_NAME: it is used
inside log records and metric labels, so it must not carry separators or spaces. Health and reflection are open to
every caller that got through the transport (probes and tools must not need a scope)."""

import re

CALLER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

PUBLIC_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                   "/grpc.reflection.v1.ServerReflection/")  # fmt: skip
