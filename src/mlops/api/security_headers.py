"""Response headers against sniffing, referrer leaks and framing, on every answer.

JSON answers get a policy that lets them load nothing and be framed by nobody;
HTML pages (the API docs) get one that allows the platform's own scripts, styles
and images only, and no inline script. ``ObservabilityMiddleware`` applies them
to everything FastAPI answers; the predict fast path adds ``SECURITY_HEADERS``.
"""

from __future__ import annotations

from collections.abc import Iterable

API_CSP = b"default-src 'none'; frame-ancestors 'none'"
HTML_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'"
)
_COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    *_COMMON,
    (b"content-security-policy", API_CSP),
)
HTML_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    *_COMMON,
    (b"content-security-policy", HTML_CSP),
)
_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


def with_security_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ours in place of any the route set itself."""
    kept = []
    html = False
    for name, value in headers:
        if name.lower() in _NAMES:
            continue
        if name.lower() == b"content-type" and value.startswith(b"text/html"):
            html = True
        kept.append((name, value))
    kept.extend(HTML_HEADERS if html else SECURITY_HEADERS)
    return kept
