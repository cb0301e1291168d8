"""``python -m crm_pipeline.sandbox``: run the sandbox platforms and gateways in the foreground."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from crm_pipeline.sandbox.server import SandboxServer
from crm_pipeline.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m crm_pipeline.sandbox")
    parser.add_argument("--port", type=int, default=settings.sandbox_port)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 inside a container)")
    parser.add_argument("--persons", type=int, default=settings.sandbox_persons)
    parser.add_argument("--log-dir", type=Path, default=settings.home / "sandbox")
    parser.add_argument("--no-throttle", action="store_true",
                        default=os.environ.get("CRM_SANDBOX_THROTTLE", "1") in ("0", "false", "False", "no"),
                        help="disable rate limits (benchmarks; default from CRM_SANDBOX_THROTTLE)")
    parser.add_argument("--clean", action="store_true", help="no deliberately malformed records")
    args = parser.parse_args(argv)
    server = SandboxServer(port=args.port, persons=args.persons, log_dir=args.log_dir,
                           throttle=not args.no_throttle, dirty=not args.clean, host=args.host)
    # SystemExit unwinds serve_forever in this thread (shutdown() from here would deadlock)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"sandbox listening on {server.url} ({len(server.state.world.orders)} orders)", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
