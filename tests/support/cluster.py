"""A real 3-master Redis Cluster for tests; it lives in the package so that `debar bench import` can use it too."""

from debar.local.local_cluster import SLOT_RANGES, LocalCluster

__all__ = ["SLOT_RANGES", "LocalCluster"]
