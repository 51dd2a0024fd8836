"""``BoundedDict``: a plain dict that forgets its oldest entries beyond a size.

The per-request caches (verified tokens, the in-process key-value store) are read
on every request. ``cachetools``' LRU and TTL caches keep their order in Python
code on every read, which profiled at several percent of a prediction's time; a
dict read is one C call. Eviction here is by age of insertion (FIFO), not by last
use: these caches only need a bound, so that unknown keys cannot exhaust memory,
and an evicted entry is simply recomputed.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedDict(dict[K, V]):
    """Write with ``d[key] = value`` only (``update``/``setdefault`` skip the bound)."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        super().__init__()
        self.maxsize = maxsize

    def __setitem__(self, key: K, value: V) -> None:
        if len(self) >= self.maxsize and key not in self:
            del self[next(iter(self))]
        super().__setitem__(key, value)
