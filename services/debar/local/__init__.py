"""What runs debar on one machine: the embedded Redis-compatible server, a private Redis Cluster, development
certificates. Used by `debar up`, the tests and the benchmarks; a deployment configures its own."""
