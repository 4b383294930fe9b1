"""The embedded server keeps its address across runs on one data folder (its fail-open spool is a folder per Redis
URL: a new port each run would strand decisions spooled in the last one), unless the port has been taken."""

from __future__ import annotations

import socket

import redis

from debar.local.embedded_redis import EmbeddedRedis


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
