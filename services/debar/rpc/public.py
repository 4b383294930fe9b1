"""Methods open to every caller that got through the transport, on every debar server: health and reflection
(probes and tools must not need a scope). Plain data, for the access rules and the interceptors alike."""

PUBLIC_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                   "/grpc.reflection.v1.ServerReflection/")  # fmt: skip
