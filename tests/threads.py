"""Work started in several threads at the same instant, for the tests of races (joins, ticks)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connections

DEADLINE_SECONDS = 60


def run_in_threads(target: Callable[[int], object], count: int, timeout: float = DEADLINE_SECONDS) -> list:
    """Run `target(index)` in `count` threads at once (a barrier lines them up); return their results.

    Every thread closes its database connections (a transactional test could not drop its database
    otherwise), a thread that does not finish within `timeout` fails the test instead of hanging it,
    and the first exception raised in a thread is raised here.
    """
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[index] = target(index)
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a thread hung"
    if errors:
        raise errors[0]
    return results
