"""A small TTL cache for attribute-source lookups."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic

from flight_fees.lib.charging.attributes.normalise import K, V

# -- TTL cache -----------------------------------------------------------------------------

_MISSING: Any = object()


class TTLCache(Generic[K, V]):
    """A small thread-safe mapping whose entries expire ``ttl_s`` seconds after being set.

    ``clock`` returns seconds (default :func:`time.monotonic`; inject a fake in tests). ``None``
    is a cacheable value (a negative lookup). Past ``max_entries`` the expired entries are
    dropped, then the oldest ones.
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
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K, default: Any = None) -> V | Any:
        """The cached value of ``key`` or ``default`` (counts a hit or a miss)."""
        found, missing = self.get_many([key])
        return default if missing else found[key]

    def get_many(self, keys: Iterable[K]) -> tuple[dict[K, V], list[K]]:
        """``(found, missing)``: live cached values, and the keys to fetch (in order, unique)."""
        now = self.clock()
        found: dict[K, V] = {}
        missing: list[K] = []
        with self._lock:
            for key in dict.fromkeys(keys):
                entry = self._data.get(key, _MISSING)
                if entry is not _MISSING and entry[0] > now:
                    found[key] = entry[1]
                    self.hits += 1
                else:
                    if entry is not _MISSING:
                        del self._data[key]
                    missing.append(key)
                    self.misses += 1
        return found, missing

    def set(self, key: K, value: V) -> None:
        self.set_many({key: value})

    def set_many(self, items: Mapping[K, V]) -> None:
        now = self.clock()
        expires = now + self.ttl_s
        with self._lock:
            for key, value in items.items():
                self._data.pop(key, None)
                self._data[key] = (expires, value)
            if len(self._data) > self.max_entries:
                for key in [k for k, (exp, _) in self._data.items() if exp <= now]:
                    del self._data[key]
                while len(self._data) > self.max_entries:
                    self._data.popitem(last=False)

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
