"""The sanction service's gRPC face: servicers, proto <-> domain conversion, access control, metrics."""
