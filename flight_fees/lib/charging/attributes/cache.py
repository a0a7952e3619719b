"""The TTL cache of attribute-source lookups: :class:`cachetools.TTLCache` (expiry, then
least-recently-used eviction past ``max_entries``) behind a lock, read and written by batches
of keys, with hit / miss counters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import cachetools

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING: Any = object()


class TTLCache(Generic[K, V]):
    """A thread-safe mapping whose entries expire ``ttl_s`` seconds after being set.

    ``clock`` returns seconds (default :func:`time.monotonic`; inject a fake in tests).
    ``None`` is a cacheable value (a negative lookup). Expired entries are neither returned
    nor counted; past ``max_entries`` the least recently used entries are dropped.
    """

    def __init__(
        self,
        ttl_s: float = 300.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 1_000_000,
    ) -> None:
        if ttl_s < 0:
            raise ValueError(f"ttl_s must be >= 0, got {ttl_s}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.ttl_s = float(ttl_s)
        self.clock = clock
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._data: cachetools.TTLCache[K, V] = cachetools.TTLCache(
            maxsize=max_entries, ttl=self.ttl_s, timer=clock
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def get(self, key: K, default: Any = None) -> V | Any:
        """The cached value of ``key`` or ``default`` (counts a hit or a miss)."""
        found, missing = self.get_many([key])
        return default if missing else found[key]

    def get_many(self, keys: Iterable[K]) -> tuple[dict[K, V], list[K]]:
        """``(found, missing)``: live cached values, and the keys to fetch (in order, unique)."""
        found: dict[K, V] = {}
        missing: list[K] = []
        with self._lock:
            for key in dict.fromkeys(keys):
                value = self._data.get(key, _MISSING)
                if value is _MISSING:
                    missing.append(key)
                else:
                    found[key] = value
            self.hits += len(found)
            self.misses += len(missing)
        return found, missing

    def set(self, key: K, value: V) -> None:
        self.set_many({key: value})

    def set_many(self, items: Mapping[K, V]) -> None:
        with self._lock:
            for key, value in items.items():
                self._data[key] = value

    def get_or_load(self, key: K, loader: Callable[[], V]) -> V:
        """The cached value, or ``loader()`` (then cached)."""
        found, missing = self.get_many([key])
        if not missing:
            return found[key]
        value = loader()
        self.set(key, value)
        return value

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
