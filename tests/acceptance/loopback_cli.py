"""Command line shared by the slixmpp acceptance scripts: loopback only,
common options, one asyncio run, PASS or FAIL with exit status 1."""

import argparse
import asyncio
import logging
import sys


def run_main(description, add_options, run):
    """Parses --host/--port/--domain/--timeout/-v plus what `add_options`
    adds to the parser, then runs `run(args)` to completion."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5222)
    parser.add_argument("--domain", default="localhost")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    parser.add_argument("-v", "--verbose", action="store_true", help="slixmpp debug log")
    add_options(parser)
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("loopback only")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.ERROR)
    try:
        asyncio.run(run(args))
    except (asyncio.TimeoutError, RuntimeError) as e:
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print("PASS")
