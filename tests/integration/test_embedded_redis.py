"""The embedded server keeps its address across runs on one data folder (its fail-open spool is a folder per Redis
URL: a new port each run would strand decisions spooled in the last one), unless the port has been taken."""

from __future__ import annotations

import socket

from debar.common.embedded_redis import EmbeddedRedis


def test_the_embedded_server_comes_back_on_its_last_port(tmp_path):
    first = EmbeddedRedis(tmp_path / "redis").start()
    first.stop()
    again = EmbeddedRedis(tmp_path / "redis").start()
    try:
        assert again.url == first.url
    finally:
        again.stop()
    with socket.socket() as squatter:  # the old port taken meanwhile: a free one instead
        squatter.bind(("127.0.0.1", first.port))
        squatter.listen()
        moved = EmbeddedRedis(tmp_path / "redis").start()
        try:
            assert moved.port != first.port
        finally:
            moved.stop()
