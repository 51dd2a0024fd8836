"""What a model library's error may tell the client, and what only the log sees.

Native libraries put their build paths, source lines, stack traces and memory
addresses into exception texts (XGBoost appends a whole backtrace). The client
gets the first meaningful line with those removed; the full text is logged
with the request id.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger("mlops.modelformats")

MAX_MESSAGE_CHARS = 300
# XGBoost: "[20:30:46] /workspace/src/common/json.cc:409: Unknown construct ..."
_TIME_PREFIX = re.compile(r"^\[\d{1,2}:\d{2}:\d{2}\]\s*")
_SOURCE_PREFIX = re.compile(r"^\S+\.(?:cc|cpp|cu|cuh|c|h|hpp):\d+:\s*")
# LightGBM: "Check failed: (a) == (b) at /__w/LightGBM/.../common.h, line 1173 ."
_AT_SOURCE = re.compile(r"\s+at\s+\S+,\s+line\s+\d+\s*\.?\s*$")
_TRACE_START = re.compile(r"^\s*(?:Stack trace:|\[bt\]|Traceback \(most recent call last\))")
# A word holding a slash (an absolute or relative path) and hexadecimal addresses.
_PATH = re.compile(r"[^\s'\"(),;\[\]<>]*/[^\s'\"(),;\[\]<>]*")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def client_message(exc: BaseException, *, library: str) -> str:
    """The first meaningful line of ``exc`` without paths or addresses; logs the rest."""
    text = str(exc)
    log.info(
        "%s refused a model file",
        library,
        extra={"library": library, "error_type": type(exc).__name__, "library_error": text},
    )
    return first_line(text) or type(exc).__name__


def first_line(text: str) -> str:
    """The first line of ``text`` that says what is wrong, cleaned for a client."""
    for raw in text.splitlines():
        if _TRACE_START.match(raw):
            break
        line = _TIME_PREFIX.sub("", raw.strip())
        line = _SOURCE_PREFIX.sub("", line)
        line = _AT_SOURCE.sub("", line)
        line = _ADDRESS.sub("<address>", _PATH.sub("<path>", line)).strip()
        if line:
            return line[:MAX_MESSAGE_CHARS]
    return ""
