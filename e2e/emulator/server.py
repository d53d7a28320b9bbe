"""Runs the AWS emulator: moto plus EKS Pod Identity, faults and a call log.

    python e2e/emulator/server.py --host 127.0.0.1 --port 0

Prints `emulator ready on http://HOST:PORT` once it accepts connections, and
exits 0 on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from pathlib import Path

# Run as a script, so make the `emulator` package importable from e2e/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# moto reads these when imported, so they are set before anything imports it.
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
for _name, _value in (
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
):
    os.environ.setdefault(_name, _value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--log-requests", action="store_true", help="log each HTTP request to stderr")
    args = parser.parse_args(argv)

    # Installed first, so a signal during the slow start-up also ends cleanly.
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    from werkzeug.serving import make_server

    from emulator import moto_bridge
    from emulator.app import EmulatorApp

    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    app = EmulatorApp()
    moto_bridge.warm_up(app.moto_app)
    # Startup leaves a large, long-lived heap (moto's managed policies);
    # freezing it keeps the garbage collector from rescanning it mid-request.
    gc.freeze()
    server = make_server(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=moto_bridge.MotoRequestHandler,
    )

    if stop.is_set():
        server.server_close()
        return 0

    # Serve from a worker thread: shutdown() must not run on the serving
    # thread, and the main thread must stay free to receive signals.
    worker = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="emulator-http", daemon=True
    )
    worker.start()
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"emulator ready on http://{host}:{server.server_port}", flush=True)
    # A launcher may stop reading stdout after the ready line; anything moto
    # prints later goes to stderr so it cannot fill that pipe and stall us.
    sys.stdout = sys.stderr

    while not stop.wait(timeout=1.0):
        if not worker.is_alive():
            return 1
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
