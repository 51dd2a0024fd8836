"""Whose X-Forwarded-For counts: the right-most address that is not a trusted proxy."""

from __future__ import annotations

import pytest

from mlops.api.forwarded import ClientAddressResolver
from mlops.config import load_settings, parse_networks
from mlops.errors import ConfigError

SIDECAR_AND_GATEWAYS = ClientAddressResolver(parse_networks("127.0.0.6/32, 10.8.0.0/16, ::6"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # Not from a trusted proxy: its header is ignored.
        ("203.0.113.5", ["198.51.100.7"], "203.0.113.5"),
        # Through the sidecar: the gateway appended the client.
        ("127.0.0.6", ["198.51.100.7"], "198.51.100.7"),
        # The client made up the left part; the right-most untrusted address counts.
        ("127.0.0.6", ["1.1.1.1, 2.2.2.2, 198.51.100.7"], "198.51.100.7"),
        # Several trusted hops are skipped, over several headers.
        ("127.0.0.6", ["198.51.100.7, 10.8.1.2", "10.8.3.4"], "198.51.100.7"),
        # Ports and IPv6 brackets are read; addresses come back normalised.
        ("127.0.0.6", ["198.51.100.7:5123"], "198.51.100.7"),
        ("::6", ["[2001:DB8::1]:443"], "2001:db8::1"),
        # No header: the proxy itself.
        ("127.0.0.6", [], "127.0.0.6"),
        # Every hop trusted: the left-most is as far as we can see.
        ("127.0.0.6", ["10.8.0.9, 10.8.0.1"], "10.8.0.9"),
        # A trusted hop reported something that is no address: stop at that hop.
        ("127.0.0.6", ["198.51.100.7, not-an-ip, 10.8.0.1"], "10.8.0.1"),
    ],
)
def test_client_of(peer: str, forwarded_for: list[str], client: str) -> None:
    assert SIDECAR_AND_GATEWAYS.client_of(peer, forwarded_for) == client


def test_the_scope_is_rewritten_only_for_a_trusted_peer() -> None:
    headers = [(b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-proto", b"https")]
    for _ in range(2):  # the second answer comes from the resolver's memory: the same
        trusted = {"type": "http", "client": ("127.0.0.6", 1), "headers": headers}
        SIDECAR_AND_GATEWAYS(trusted)
        assert trusted["client"] == ("198.51.100.7", 0)
        assert trusted["scheme"] == "https"
    direct = {"type": "http", "client": ("203.0.113.5", 1), "headers": headers, "scheme": "http"}
    SIDECAR_AND_GATEWAYS(direct)
    assert direct["client"] == ("203.0.113.5", 1)
    assert direct["scheme"] == "http"


def test_the_setting_takes_cidrs_and_names_a_bad_one() -> None:
    settings = load_settings(trusted_proxies=" 127.0.0.6/32 ,10.0.0.0/8,::1")
    assert settings.trusted_proxies == "127.0.0.6/32,10.0.0.0/8,::1/128"
    assert load_settings().trusted_proxy_networks == ()
    for bad, reason in (("10.1.2.3/8", "host bits set"), ("*", "not a CIDR")):
        with pytest.raises(ConfigError) as refused:
            load_settings(trusted_proxies=bad)
        assert "MLOPS_TRUSTED_PROXIES" in str(refused.value)
        assert reason in str(refused.value)
