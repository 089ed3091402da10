"""Loaded by every Python process the tests start (via PYTHONPATH).

No test name may ever reach the machine's resolver, which is not on loopback:
any lookup of a name that is not an IP literal fails here instead.
"""

import ipaddress
import socket

_real_getaddrinfo = socket.getaddrinfo


def _literal(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    try:
        ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return False
    return True


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if not _literal(host):
        raise socket.gaierror(socket.EAI_NONAME, f"test guard: no system lookup of {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _guarded_getaddrinfo
