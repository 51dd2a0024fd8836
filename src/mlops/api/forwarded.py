"""The client's address behind trusted proxies (``MLOPS_TRUSTED_PROXIES``).

uvicorn's own proxy handling is off (``cli/serve.py``): the app decides, from one
setting, whose ``X-Forwarded-For`` counts, so uvicorn and the login throttle can
never disagree. Each proxy appends the address it received the request from, so
the list is read from the right: the first address that is not a trusted proxy is
the client. Entries to its left were written by the client and may be made up.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

from mlops.bounded import BoundedDict
from mlops.config import IPNetwork

_SCHEMES = {"http": "http", "https": "https", "ws": "ws", "wss": "wss"}
_WEBSOCKET = {"http": "ws", "https": "wss"}


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from an ``X-Forwarded-For`` entry (``1.2.3.4``, ``1.2.3.4:80``,
    ``[::1]:80``, ``::1``), or None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class ClientAddressResolver:
    """Rewrites ``scope["client"]`` (and ``scope["scheme"]``) of a request that came
    through a trusted proxy, as uvicorn's proxy-headers middleware would."""

    def __init__(self, trusted: Sequence[IPNetwork]) -> None:
        self._trusted = tuple(trusted)
        # Peers repeat (a sidecar, a few gateway pods), and so does a client's header:
        # remember both, since parsing addresses costs more than the rest of the request's
        # routing.
        self._verdicts: BoundedDict[str, bool] = BoundedDict(4096)
        self._clients: BoundedDict[tuple[str, tuple[str, ...]], str] = BoundedDict(16384)

    def is_trusted(self, host: str) -> bool:
        verdict = self._verdicts.get(host)
        if verdict is None:
            address = parse_address(host)
            verdict = address is not None and any(address in net for net in self._trusted)
            self._verdicts[host] = verdict
        return verdict

    def client_of(self, peer: str, forwarded_for: Sequence[str]) -> str:
        """The client: the right-most address that is not a trusted proxy."""
        if not self.is_trusted(peer):
            return peer
        client = peer
        hops = [hop for header in forwarded_for for hop in header.split(",")]
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                # A trusted proxy wrote something that is no address: stop at that proxy.
                return client
            client = str(address)
            if not self.is_trusted(client):
                return client
        return client  # every hop is a trusted proxy: the left-most one is as far as we see

    def __call__(self, scope: Scope) -> None:
        peer = scope.get("client")
        if peer is None or not self.is_trusted(peer[0]):
            return
        forwarded_for: list[str] = []
        proto: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[-1].strip().lower()
        if forwarded_for:
            key = (peer[0], tuple(forwarded_for))
            client = self._clients.get(key)
            if client is None:
                client = self.client_of(peer[0], forwarded_for)
                self._clients[key] = client
            scope["client"] = (client, 0)
        if proto in _SCHEMES:
            scheme = _SCHEMES[proto]
            scope["scheme"] = (
                _WEBSOCKET.get(scheme, scheme) if scope["type"] == "websocket" else scheme
            )
