"""gRPC plumbing every debar server and client shares: the server (health, reflection, graceful stop), its
interceptors, who the caller is (mTLS, tokens, local), TLS, RPC metrics, and domain errors as gRPC statuses."""
