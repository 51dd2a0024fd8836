"""The metric names a PromQL expression reads, for our own rules and dashboards.

Not a full PromQL parser: it removes what is not a metric name (strings, label
matchers, grouping clauses, durations, numbers, function calls and keywords) and keeps
the identifiers left. Every expression also goes through promtool, which parses it for
real (test_promql.py), so a construct this misreads still fails loudly there.
"""

from __future__ import annotations

import re

KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "bool", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_CALL = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*\s*\(")
_NAME = re.compile(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub("", text)
    text = _CALL.sub("(", text)
    text = re.sub(r"\b\d+(\.\d+)?(e[+-]?\d+)?\b", " ", text)
    return {name for name in _NAME.findall(text) if name.lower() not in KEYWORDS}
