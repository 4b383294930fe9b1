"""A server's shutdown must not hang on a task that swallowed its cancellation. On Python 3.11 a redis-py command
does: its socket write runs under asyncio.wait_for, which returns the write's result instead of raising when the
cancellation lands as the write completes (CPython gh-86296). The sanction judge loop, cancelled so, went on
polling and the process never exited (about one SIGTERM in ten in tests/integration/test_health.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from debar.rpc.server import stop_tasks


async def test_a_task_that_swallowed_its_first_cancellation_gets_a_second():
    swallowed = 0

    async def poll() -> None:  # like the judge loop after the swallowed cancellation: it polls on
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    task = asyncio.create_task(poll())
    await asyncio.sleep(0.02)
    await stop_tasks([task], "test", wait_s=0.5)
    assert task.cancelled() and swallowed == 1


async def test_one_that_never_ends_is_left_after_the_bound(caplog):
    stop = asyncio.Event()

    async def deaf() -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.01)

    task = asyncio.create_task(deaf())
    await asyncio.sleep(0.02)  # (cancelled before its first step, it would end)
    started = time.monotonic()
    await stop_tasks([task], "test", wait_s=0.1)
    assert time.monotonic() - started < 1.0
    assert not task.done()
    assert "still running after cancellation" in caplog.text
    stop.set()  # (the exit deadline ends such a process; here the test's loop must not keep it)
    await task


async def test_redis_py_write_under_wait_for_is_where_it_is_swallowed():
    """The mechanism itself, without Redis: wait_for around a coroutine that completes at once (the socket write)
    and a cancellation in the same turn of the loop. On 3.12+ it is raised; on 3.11 wait_for may return."""
    import sys

    async def write() -> None:
        return None

    async def send() -> str:
        await asyncio.wait_for(write(), 30)
        return "returned"

    outcomes = set()
    for _ in range(20):
        task = asyncio.create_task(send())
        await asyncio.sleep(0)  # send() is now waiting on wait_for; write() runs in the next turn
        loop = asyncio.get_running_loop()
        loop.call_soon(task.cancel)  # lands after write() completed, before send() resumes
        try:
            outcomes.add(await task)
        except asyncio.CancelledError:
            outcomes.add("cancelled")
    if sys.version_info < (3, 12):
        assert "returned" in outcomes
    else:
        assert outcomes == {"cancelled"}
