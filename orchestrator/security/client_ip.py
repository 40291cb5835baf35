"""The client's address behind reverse proxies, for the login throttle and the audit log (settings wire it)."""

from __future__ import annotations

import ipaddress


def plain_address(value: str) -> str | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [IPv6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # IPv4:port
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_address_from(meta_key: str, proxy_count: int):
    """Where the login throttle reads a client's address when the console sits behind proxies.

    Each proxy appends the address it saw to the header, so the client's own address is
    ``proxy_count`` entries from the right; anything further left came from the client and
    could be anything. A request without that many entries did not come through the proxies,
    and is counted by the address of its connection.
    """

    def client_address(request) -> str | None:
        peer = request.META.get("REMOTE_ADDR")
        entries = [entry for entry in request.META.get(meta_key, "").split(",") if entry.strip()]
        if len(entries) < proxy_count:
            return peer
        return plain_address(entries[-proxy_count]) or peer

    return client_address
