"""The embedded server keeps its address across runs on one data folder (its fail-open spool is a folder per Redis
URL: a new port each run would strand decisions spooled in the last one), unless the port has been taken."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest
import redis

from debar.local.embedded_redis import EmbeddedRedis, EmbeddedRedisError, free_port


def test_the_embedded_server_comes_back_on_its_last_port(tmp_path):
    first = EmbeddedRedis(tmp_path / "redis").start()
    client = redis.Redis.from_url(first.url)
    client.ping()  # a client connected when the server stops leaves the port in TIME_WAIT: no owner, still ours
    first.stop()
    client.close()
    again = EmbeddedRedis(tmp_path / "redis").start()
    try:
        assert again.url == first.url
    finally:
        again.stop()
    with socket.socket() as squatter:  # the old port taken meanwhile: a free one instead
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", first.port))
        squatter.listen()
        moved = EmbeddedRedis(tmp_path / "redis").start()
        try:
            assert moved.port != first.port
        finally:
            moved.stop()


def test_a_chosen_port_taken_before_the_server_binds_it_is_chosen_again(tmp_path):
    """Tests start many servers side by side: a port found free can be taken before the server binds it."""
    server = EmbeddedRedis(tmp_path / "redis")
    with _listening_on(server.port):  # taken between the choice and the start
        taken = server.port
        server.start()
        try:
            assert server.port != taken
            assert redis.Redis(port=server.port).ping()
        finally:
            server.stop()


def test_a_cluster_node_whose_bus_port_is_taken_starts_on_another_port(tmp_path):
    server = EmbeddedRedis(tmp_path / "node", extra_args=("--cluster-enabled", "yes"), choose_port=_below_bus_limit)
    with _listening_on(server.port + 10000):
        taken = server.port
        server.start()
        try:
            assert server.port != taken
            assert redis.Redis(port=server.port).info("cluster")["cluster_enabled"] == 1
        finally:
            server.stop()


def test_a_port_given_and_taken_is_an_error_saying_so(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        _listening_on(port),
        pytest.raises(EmbeddedRedisError, match=f"could not bind port {port}.*Address already in use"),
    ):
        EmbeddedRedis(tmp_path / "redis", port).start()


def _below_bus_limit() -> int:
    while (port := free_port()) + 10000 >= 65536:
        pass
    return port


@contextlib.contextmanager
def _listening_on(port: int) -> Iterator[None]:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        yield
