"""`python -m devhost start`: the local stand-in for `func start`; `python -m devhost pool`:
worker hosts scaled from zero on a queue (devhost/pool.py).

Exit codes: 0 after a clean stop (Ctrl-C / SIGTERM), 1 when the app cannot be loaded or the
host cannot start (the reason, with the app's traceback when there is one, goes to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from devhost.app_loader import AppLoadError, apply_local_settings, load_app
from devhost.host import Host, HostOptions

log = logging.getLogger("devhost")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m devhost", description="Run an Azure Functions Python app locally.")
    commands = root.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="load DIR/function_app.py and serve it until Ctrl-C")
    start.add_argument("--app-dir", type=Path, default=Path("."), help="folder with function_app.py (default: .)")
    start.add_argument("--port", type=int, default=7071, help="HTTP port (default 7071; 0 picks a free one)")
    start.add_argument("--store", type=Path, default=None,
                       help="task hub database (default: <app-dir>/.devhost/taskhub.sqlite)")
    start.add_argument("--require-keys", action="store_true",
                       help="`function` and `admin` routes and the management API need FUNCTIONS_KEY")
    start.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    start.add_argument("--verbose", action="store_true", help="log debug detail")
    pool = commands.add_parser("pool", help="start worker hosts of DIR while QUEUE has messages, stop them once "
                                            "it has stayed empty (scale from zero, as in Azure)")
    pool.add_argument("--app-dir", type=Path, default=Path("."), help="folder with function_app.py (default: .)")
    pool.add_argument("--queue", required=True, help="the queue whose length scales the workers")
    pool.add_argument("--connection", default="AzureWebJobsStorage",
                      help="app setting with the queue's storage connection (default AzureWebJobsStorage)")
    pool.add_argument("--max-workers", type=int, default=1, help="most workers at once (default 1)")
    pool.add_argument("--per-worker", type=int, default=1, help="messages waiting per worker (default 1)")
    pool.add_argument("--cooldown", type=float, default=300.0,
                      help="seconds the queue stays empty before the workers stop (default 300)")
    pool.add_argument("--state-dir", type=Path, default=None,
                      help="the workers' task hubs and logs (default: <app-dir>/.devhost/pool)")
    pool.add_argument("--verbose", action="store_true", help="log debug detail")
    return root


async def serve(host: Host) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await host.start()
    except Exception as problem:  # noqa: BLE001 - report why, stop what started, exit 1
        log.debug("start failed", exc_info=True)
        print(f"devhost could not start: {problem}", file=sys.stderr, flush=True)
        await host.stop()
        return 1
    print("\nFunctions:\n", flush=True)
    for line in host.describe():
        print(f"        {line}", flush=True)
    print(f"\ndevhost ready on {host.public_url}", flush=True)
    await stop.wait()
    print("devhost stopping", flush=True)
    await host.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:
        # The Azure SDKs log every request and response header at INFO: too loud for a dev console.
        logging.getLogger("azure").setLevel(logging.WARNING)
    if args.command == "pool":
        return run_pool(args)
    try:
        loaded = load_app(args.app_dir)
        host = Host(loaded, HostOptions(port=args.port, store=args.store, require_keys=args.require_keys,
                                        bind=args.bind))
    except AppLoadError as problem:
        if problem.detail:
            print(problem.detail, file=sys.stderr)
        print(f"devhost: {problem}", file=sys.stderr, flush=True)
        return 1
    except ValueError as problem:  # a route template or setting we cannot use
        print(f"devhost: {problem}", file=sys.stderr, flush=True)
        return 1
    return asyncio.run(serve(host))


def run_pool(args: argparse.Namespace) -> int:
    from devhost.host import storage_connection
    from devhost.pool import Pool, PoolOptions

    try:
        apply_local_settings(args.app_dir)  # the workers' settings, as `start` reads them
        pool = Pool(PoolOptions(app_dir=args.app_dir.resolve(), queue=args.queue, max_workers=args.max_workers,
                                per_worker=args.per_worker, cooldown=args.cooldown,
                                state_dir=args.state_dir),
                    storage_connection(args.connection))
    except (AppLoadError, KeyError, ValueError) as problem:
        print(f"devhost pool: {problem}", file=sys.stderr, flush=True)
        return 1

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print(f"devhost pool ready: workers of {pool.options.app_dir} while {pool.options.queue} has messages",
              flush=True)
        await pool.run(stop)
        return 0

    return asyncio.run(serve())
