"""``python -m amr.gateway --home DIR``: run the gateway for an AMR_HOME (the supervisor runs
``python -m amr gateway``; this form is for running one gateway by hand, with its own log level)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from amr.errors import AmrError
from amr.gateway.main import run_gateway
from amr.logcontext import configure_logging
from amr.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m amr.gateway", description="Run the amr gateway.")
    parser.add_argument("--home", required=True, help="AMR_HOME directory")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    args = parser.parse_args(argv)
    try:
        configure_logging("gateway", args.log_level)
        settings = load_settings(Path(args.home))
    except AmrError as e:
        print(f"amr gateway: {e}", file=sys.stderr)
        return 2
    run_gateway(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
