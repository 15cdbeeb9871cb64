"""``python -m billflow_usage.testing.fake_stripe --port 12111``: serve in the foreground so
workers and benchmarks in other processes can use the fake.

``--state FILE`` carries Stripe's objects across runs: they are loaded from FILE when it exists
(as ``FakeStripe.save_state`` wrote it) and saved back to it on exit.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .fake import FakeStripe


def main(argv: Sequence[str] | None = None) -> None:
    """Run until interrupted (Ctrl-C or SIGTERM)."""
    parser = argparse.ArgumentParser(prog="python -m billflow_usage.testing.fake_stripe")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0, help="seed for random faults")
    parser.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="load Stripe's objects from FILE when it exists, save them to it on exit",
    )
    args = parser.parse_args(argv)
    fake = FakeStripe(args.host, args.port, seed=args.seed)
    if args.state is not None and args.state.exists():
        try:
            fake.load_state(args.state)
        except ValueError as exc:
            parser.error(f"{exc}; delete the file to start empty")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with fake:
        print(fake.url, flush=True)
        stop.wait()
    if args.state is not None:
        fake.save_state(args.state)


if __name__ == "__main__":
    main()
