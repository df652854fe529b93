"""``python -m amr.gateway --home DIR``: run the gateway for an AMR_HOME."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from amr.errors import AmrError
from amr.gateway.main import run_gateway
from amr.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m amr.gateway", description="Run the amr gateway.")
    parser.add_argument("--home", required=True, help="AMR_HOME directory")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(Path(args.home))
    except AmrError as e:
        print(f"amr gateway: {e}", file=sys.stderr)
        return 2
    run_gateway(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
