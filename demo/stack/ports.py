"""Free loopback ports for components started by the demo and the tests."""
import random
import socket

# Ports are picked below the kernel's ephemeral range (where outgoing connections get their local port), so a
# port chosen now and bound later (a slot started minutes after the stack) is not taken meanwhile by some
# process's connection; random, so that test runs side by side rarely pick the same one (and a bind checks).
PICK_FROM = (20000, 32767)


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            lo, hi = (int(x) for x in fh.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host="127.0.0.1", tries=200):
    """Return a TCP port on ``host`` that nothing listens on right now, outside the ephemeral port range."""
    lo, hi = PICK_FROM
    eph_lo, eph_hi = _ephemeral_range()
    for dummy in range(tries):
        port = random.randint(lo, hi)
        if not eph_lo <= port <= eph_hi and _bindable(host, port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # the kernel's choice, as a last resort
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(port, host="127.0.0.1", timeout=0.2):
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
