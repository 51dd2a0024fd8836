"""What the soak benchmark measures of a platform's state, before and after the load:
the memory of each platform process, the rows of every table, the Redis keys of the
run's namespace, the objects in artifact storage and the servers' own request counts.

A ``Probe`` knows where one platform keeps its state; ``Probe.snapshot()`` reads it all.
Every read is a count: nothing is changed.
"""

from __future__ import annotations

import re
import sqlite3
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import descendants, prometheus_counters, rss_bytes

# A key or object path is grouped by its leading word segments ("login:pair",
# "drift/samples"): ids, hashes and timestamps after them would make every key a group.
_WORD = re.compile(r"^[A-Za-z_.-]+$")


def family(name: str, separator: str, depth: int) -> str:
    words: list[str] = []
    for part in name.split(separator)[:depth]:
        if not _WORD.match(part):
            break
        words.append(part)
    return separator.join(words) or "(other)"


@dataclass
class Snapshot:
    at: float  # time.time()
    rss: dict[str, int]  # process -> bytes
    rows: dict[str, int]  # table -> rows
    redis_keys: dict[str, int] | None  # key family -> keys (None: no Redis)
    redis_memory: int | None  # used_memory of the whole Redis, bytes
    objects: dict[str, int]  # storage path family -> objects
    statuses: dict[str, int] = field(default_factory=dict)  # "METHOD route status" -> count


@dataclass
class Probe:
    processes: Mapping[str, int]  # name -> pid
    metrics: Mapping[str, tuple[str, Mapping[str, str]]]  # name -> (/metrics URL, headers)
    database_url: str | None  # PostgreSQL; None: SQLite at sqlite_path
    sqlite_path: Path | None
    redis_url: str | None
    redis_namespace: str
    list_objects: Callable[[], list[str]]

    def rss(self) -> dict[str, int]:
        """Each platform process's RSS, and any child process it started (by pid)."""
        found: dict[str, int] = {}
        for name, pid in self.processes.items():
            found[name] = rss_bytes(pid) or 0
            for child in descendants(pid):
                found[f"{name}, child {child}"] = rss_bytes(child) or 0
        return found

    def rows(self) -> dict[str, int]:
        if self.database_url is not None:
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.database_url) as conn:
                tables = [
                    str(row[0])
                    for row in conn.execute(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                    )
                ]
                count = sql.SQL("SELECT count(*) FROM {}")
                return {
                    table: int(conn.execute(count.format(sql.Identifier(table))).fetchone()[0])  # type: ignore[index]
                    for table in sorted(tables)
                }
        assert self.sqlite_path is not None
        # Read-only: the server keeps writing (WAL) while this counts.
        with sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True) as conn:
            tables = [
                str(row[0])
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
            return {
                table: int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
                for table in sorted(tables)
            }

    def redis(self) -> tuple[dict[str, int] | None, int | None]:
        if self.redis_url is None:
            return None, None
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            families: Counter[str] = Counter()
            for key in client.scan_iter(match=f"{self.redis_namespace}*", count=1000):
                name = key.decode(errors="replace").removeprefix(self.redis_namespace)
                families[family(name, ":", 2)] += 1
            memory = int(client.info("memory")["used_memory"])
            return dict(sorted(families.items())), memory
        finally:
            client.close()

    def statuses(self) -> dict[str, int]:
        """The servers' own count of answers by method, route template and status."""
        counts: Counter[str] = Counter()
        for url, headers in self.metrics.values():
            request = urllib.request.Request(url, headers=dict(headers))
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
            for labels, value in prometheus_counters(text, "mlops_http_requests_total").items():
                label = dict(labels)
                counts[f"{label['method']} {label['route']} {label['status']}"] += int(value)
        return dict(counts)

    def snapshot(self) -> Snapshot:
        keys, memory = self.redis()
        objects = Counter(family(name, "/", 4) for name in self.list_objects())
        return Snapshot(
            at=time.time(),
            rss=self.rss(),
            rows=self.rows(),
            redis_keys=keys,
            redis_memory=memory,
            objects=dict(sorted(objects.items())),
            statuses=self.statuses(),
        )


def local_files(root: Path, prefix: str) -> list[str]:
    """The files under ``root`` (a data dir), as ``prefix/path relative to root``."""
    return sorted(f"{prefix}/{p.relative_to(root)}" for p in root.rglob("*") if p.is_file())


def growth(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """Every name in either, with its (before, after) counts."""
    return {name: (before.get(name, 0), after.get(name, 0)) for name in sorted({*before, *after})}
