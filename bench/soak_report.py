"""The soak benchmark's summary: per-route figures, memory, state growth, and its goals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchlib import LoadResult, percentile
from soak_state import growth

if TYPE_CHECKING:
    from soak_bench import AliasMove, Options, ShapeResult

GOAL_ERROR_PCT = 0.1
GUIDE_ERROR_PCT = 1.0  # the deployment guide's alert threshold
GOAL_RSS_GROWTH_PCT = 10.0
MIB = 1024 * 1024

SHAPE_TITLES = {
    "embedded": "mlops up (SQLite, in-process cache, local files)",
    "postgres": "mlops api + mlops model-server (PostgreSQL, Redis, S3 on SeaweedFS)",
}


def moves_as_load(moves: list[AliasMove], visible: bool) -> LoadResult:
    """The alias moves as a route: the PUT's time, or the time until predictions follow."""
    times = [m.visible_ms if visible else m.put_ms for m in moves if not m.error]
    clean = [t for t in times if t is not None]
    errors = sum(1 for m in moves if m.error)
    return LoadResult(
        requests=len(moves), errors=errors, seconds=float("nan"),
        p50_ms=percentile(clean, 50), p95_ms=percentile(clean, 95),
        p99_ms=percentile(clean, 99), max_ms=max(clean, default=float("nan")),
        error_detail="; ".join(m.error for m in moves if m.error),
    )  # fmt: skip


def route_table(result: ShapeResult, opts: Options) -> tuple[list[str], int, int]:
    """The table's lines, and the total requests and errors."""
    head = (
        f"{'route':32} {'conns':>5} {'requests':>10} {'errors':>7} {'error %':>8} "
        f"{'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    lines = [head, "-" * len(head)]

    def row(name: str, conns: str, r: LoadResult, rate: str) -> None:
        lines.append(
            f"{name:32} {conns:>5} {r.requests:>10,} {r.errors:>7,} {r.error_pct:>8.3f} "
            f"{rate:>8} {r.p50_ms:>8.1f} {r.p95_ms:>8.1f} {r.p99_ms:>8.1f} {r.max_ms:>8.1f}"
        )

    total = errors = 0
    for name, r in result.routes.items():
        label = f"{name} ({opts.login_rate}/s per conn)" if name == "login" else name
        row(label, str(result.connections[name]), r, f"{r.requests / r.seconds:,.1f}")
        total, errors = total + r.requests, errors + r.errors
    moves = moves_as_load(result.moves, visible=False)
    row(f"alias move (every {opts.alias_every} s): PUT", "1", moves, "-")
    row("  until predictions follow", "", moves_as_load(result.moves, visible=True), "-")
    total, errors = total + moves.requests, errors + moves.errors
    lines.append(f"{'all':32} {sum(result.connections.values()):>5} {total:>10,} {errors:>7,} "
                 f"{100 * errors / max(total, 1):>8.3f}")  # fmt: skip
    for name, r in result.routes.items():
        if r.error_detail:
            lines.append(f"  {name} errors: {r.error_detail}")
    if moves.error_detail:
        lines.append(f"  alias move errors: {moves.error_detail}")
    return lines, total, errors


def count_changes(title: str, before: dict[str, int], after: dict[str, int]) -> list[str]:
    pairs = growth(before, after)
    changed = [f"{k} {a:,} -> {b:,} ({b - a:+,})" for k, (a, b) in pairs.items() if a != b]
    same = [f"{k} {a:,}" for k, (a, b) in pairs.items() if a == b]
    return [
        f"{title}: " + ("; ".join(changed) if changed else "no change"),
        "  unchanged: " + ("; ".join(same) if same else "-"),
    ]


def grown_beyond(before: dict[str, int], after: dict[str, int], writes: int) -> list[str]:
    return [f"{k} {b - a:+,}" for k, (a, b) in growth(before, after).items() if b - a > writes]


def shape_section(result: ShapeResult, opts: Options) -> tuple[list[str], bool]:
    lines = [
        f"== {result.shape}: {SHAPE_TITLES[result.shape]} ==",
        f"code: {result.source}",
        "settings other than the shipped defaults: "
        + ", ".join(f"{k}={v}" for k, v in result.settings.items()),
        "; ".join(f"{when}: {load}" for when, load in result.load.items()),
        "",
    ]
    table, total, errors = route_table(result, opts)
    lines += table
    start, end = result.start, result.end
    statuses = growth(start.statuses, end.statuses)
    lines += ["", "the servers' own count of answers during the soak (/metrics):"]
    lines += [f"  {k}: {b - a:,}" for k, (a, b) in statuses.items() if b != a]

    lines += ["", "RSS, after the warm-up -> end (largest of the samples every 10 s):"]
    rss_growth: dict[str, float] = {}
    for name, first in start.rss.items():
        last = end.rss.get(name, 0)
        top = max([s.get(name, 0) for _, s in result.timeline] + [first, last])
        rss_growth[name] = 100 * (last - first) / first if first else float("inf")
        lines.append(f"  {name}: {first / MIB:.1f} -> {last / MIB:.1f} MiB "
                     f"({rss_growth[name]:+.1f} %), largest {top / MIB:.1f} MiB; before the "
                     f"warm-up {result.rss_before_warmup.get(name, 0) / MIB:.1f} MiB")  # fmt: skip
        every_minute = [f"{s.get(name, 0) / MIB:.0f}" for t, s in result.timeline if t % 60 < 5]
        lines.append(f"    at 0, 60, 120... s: {' '.join(every_minute)} MiB")
    lines += [""] + count_changes("table rows, start -> end", start.rows, end.rows)
    if start.redis_keys is not None and end.redis_keys is not None:
        lines += count_changes("Redis keys of the namespace", start.redis_keys, end.redis_keys)
        used = [(snap.redis_memory or 0) / MIB for snap in (start, end)]
        lines.append(f"  Redis used_memory (the whole server): {used[0]:.1f} -> {used[1]:.1f} MiB")
    else:
        lines.append("Redis: none (the in-process store's size is not exposed)")
    lines += count_changes("files and objects in storage", start.objects, end.objects)
    for name, count in result.log_lines.items():
        lines.append(
            f"{name} log: {count['access']:,} access lines ({count['access, not 2xx']:,} "
            f"not 2xx, kept), {count['other']:,} others"
        )

    writes = sum(1 for m in result.moves if not m.error)
    if "login" in result.routes:
        writes += result.routes["login"].requests - result.routes["login"].errors
    grown = grown_beyond(start.rows, end.rows, writes)
    grown += grown_beyond(start.redis_keys or {}, end.redis_keys or {}, writes)
    grown += grown_beyond(start.objects, end.objects, writes)
    error_pct = 100 * errors / max(total, 1)
    big = {name: g for name, g in rss_growth.items() if g >= GOAL_RSS_GROWTH_PCT}
    checks = [
        (f"errors < {GOAL_ERROR_PCT} % of requests", error_pct < GOAL_ERROR_PCT,
         f"{error_pct:.3f} %: {errors:,} of {total:,}; the guide's < {GUIDE_ERROR_PCT:g} %: "
         f"{'met' if error_pct < GUIDE_ERROR_PCT else 'MISSED'}"),
        (f"RSS growth < {GOAL_RSS_GROWTH_PCT:g} %", not big,
         ", ".join(f"{n} {g:+.1f} %" for n, g in rss_growth.items())),
        (f"nothing grows by more than the writes ({writes:,}: alias moves and logins)",
         not grown, ", ".join(grown) or "tables, Redis key families, storage prefixes"),
    ]  # fmt: skip
    lines += ["", "goals:"]
    lines += [f"  {name}: {'met' if ok else 'MISSED'} ({why})" for name, ok, why in checks]
    return lines, not all(ok for _, ok, _ in checks)


def report(shapes: list[ShapeResult], opts: Options) -> tuple[str, bool]:
    """The summary text, and whether any goal was missed."""
    lines = [
        f"Soak benchmark: {opts.duration} s per shape after a {opts.warmup} s warm-up; "
        f"platform pinned to core {opts.server_cpu}, load generators to core {opts.load_cpu}",
        f"mix: predictions wrk -c{opts.predict_connections} (closed loop, 1 row, API key); "
        f"registry reads wrk, {opts.read_connections} connections over 3 routes (login token); "
        f"logins hey -c{opts.login_connections} -q{opts.login_rate}; an alias move every "
        f"{opts.alias_every} s (production between versions 1 and 2)",
        "",
    ]
    missed = False
    for result in shapes:
        section, shape_missed = shape_section(result, opts)
        lines += section + [""]
        missed = missed or shape_missed
    return "\n".join(lines).rstrip(), missed
