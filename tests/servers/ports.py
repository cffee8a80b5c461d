"""Loopback ports for the self-tests' servers, chosen so that nothing else takes them first."""

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A loopback port free now, from below the kernel's ephemeral range.

    The process that listens on it starts later (the suite binds its sink seconds later), and
    meanwhile a port from that range can become the local end of any of the many loopback
    connections a busy machine opens, or another test's port 0: then the listener cannot bind.
    """
    try:
        lowest_ephemeral = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        lowest_ephemeral = 32768  # Linux's default
    while True:
        port = random.randrange(10000, lowest_ephemeral)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def free_ports(count: int) -> list[int]:
    """``count`` different ports, each as `free_port` chooses them."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)
