"""Use cases of the sanction service and the ports they need. No Redis, no gRPC."""
