"""What a long-running process built to start is kept out of the cyclic garbage collector's reach."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """What the process built to start (modules, protobuf descriptors, the catalogue, the policy: some 65,000
    objects that live as long as it does) is moved out of the cyclic collector's reach. Otherwise every
    oldest-generation collection walks all of it again: in the sanction server under Check load on a busy machine,
    60-130 ms a pause of the event loop, about one every 6 s (frozen, about 1 ms); in the log integrator's child
    process, whose steps make many short-lived objects, a fifth of its CPU under BatchCheck load (py-spy;
    frozen, 7 % less server CPU a BatchCheck of 100 in all). gc.freeze() keeps alive only what lives anyway;
    objects made later are collected as before."""
    gc.collect()
    gc.freeze()


# The youngest generation is collected after this many more allocations than deallocations of tracked objects
# (CPython's default: 700). See collect_young_objects_less_often.
YOUNG_THRESHOLD = 50_000


def collect_young_objects_less_often() -> None:
    """A collection of the youngest generation walks every young object still alive, and in a server those are the
    calls in flight (16 BatchChecks of 100 hold some 10,000 of them), and at CPython's default, one every 700
    allocations, they were walked again and again: 5.4 % of the sanction server's samples under BatchCheck(100) at
    16 in flight went to the collector, 0.4 % at 50,000 (py-spy), and its CPU a call fell 8 % (4 alternating pairs).
    The calls' objects die with their call, unwalked, so walking less often costs little memory: only cyclic garbage
    waits longer, so a server must not make cycles per call that hold a caller's bytes (a refused call did:
    rpc/interceptors.freeing_refused). `debar import` and its workers too, whose chunks in flight hold thousands
    of objects."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
