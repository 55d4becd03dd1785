"""`python -m elt_demo.api`: serve the landing folder's tables until interrupted."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from elt_demo.api.faults import FaultPlan
from elt_demo.api.server import TOKEN_ENV, DemoApi


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--drop-rate", type=float, default=0.0)
    parser.add_argument("--slow-rate", type=float, default=0.0)
    parser.add_argument("--slow-seconds", type=float, default=1.0)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    plan = FaultPlan(
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
        slow_rate=args.slow_rate,
        slow_seconds=args.slow_seconds,
        retry_after=args.retry_after,
        seed=args.seed,
    )
    api = DemoApi(args.data_dir, port=args.port, token=os.environ.get(TOKEN_ENV), faults=plan)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(api.url, flush=True)
    try:
        api.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()


if __name__ == "__main__":
    main()
