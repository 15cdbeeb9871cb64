"""``python -m billflow_usage.testing.fake_stripe --port 12111``: serve in the foreground so
workers and benchmarks in other processes can use the fake."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from .fake import FakeStripe


def main(argv: Sequence[str] | None = None) -> None:
    """Run until interrupted (Ctrl-C or SIGTERM)."""
    parser = argparse.ArgumentParser(prog="python -m billflow_usage.testing.fake_stripe")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0, help="seed for random faults")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with FakeStripe(args.host, args.port, seed=args.seed) as fake:
        print(fake.url, flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
