"""A small HTTP client on the standard library: the guide runs these scripts with a
plain ``python`` (the CI deploy job installs nothing), so they need no packages.

The subset of httpx's interface the scripts use: ``get/post/put/delete`` with
``json=``, ``files=`` (multipart) and ``headers=``, answers with ``status_code``,
``headers``, ``text``, ``content`` and ``json()``. ``SSL_CERT_FILE`` names a private CA.
"""

from __future__ import annotations

import json as jsonlib
import os
import ssl
import uuid
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen


class HTTPFailure(Exception):
    """No answer: refused, unreachable, timed out, or a TLS failure."""


@dataclass
class Reply:
    status_code: int
    headers: Message
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class Client:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        body = None
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent["Content-Type"] = "application/json"
        elif files is not None:
            body, sent["Content-Type"] = _multipart(files)
        request = Request(url, data=body, headers=sent, method=method)
        try:
            with urlopen(request, timeout=self.timeout, context=self.context) as answer:
                return Reply(answer.status, answer.headers, answer.read())
        except HTTPError as error:
            return Reply(error.code, error.headers, error.read())
        except (URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HTTPFailure(f"{method} {url}: {reason}") from None

    def get(self, url: str, **kwargs: Any) -> Reply:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Reply:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Reply:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Reply:
        return self.request("DELETE", url, **kwargs)


def _multipart(files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for field, (filename, data, content_type) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )
