"""The port the example's fake Stripe listens on: its own when free, else any free one.

``make demo`` and ``make serve`` both ask (``python -m saas.ports 12111`` prints the port), so
either runs beside anything that holds 12111. The Stripe objects live in the saved state file,
not at an address, so ``make serve`` serves the demo's objects on whatever port it gets.
"""

from __future__ import annotations

import socket
import sys

DEFAULT_PORT = 12111


def pick(preferred: int = DEFAULT_PORT, host: str = "127.0.0.1") -> int:
    """``preferred`` if nothing listens there, else a port the system says is free."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the fake's server does
        try:
            sock.bind((host, preferred))
        except OSError:
            sock.bind((host, 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    print(pick(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PORT))
