"""Running a coroutine from a test whatever the test process's event loop state.

A session-scoped Playwright browser (flight_fees_tests/browser) keeps an event loop running in
its xdist worker; ``asyncio.run`` there refuses to start. A fresh thread has no loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run(coro)`` in a thread of its own."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
