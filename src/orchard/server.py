"""The HTTP server process that ``orchard serve`` becomes.

``orchard serve`` loads the settings and migrates the database, then replaces
itself (``os.execv``, same PID) with ``python -m orchard.server``, so that
the process left serving never holds typer, rich or Alembic.

With one worker (the default) granian runs in this very process: no
supervisor beside the worker, one copy of the application in memory. With
``--workers N`` granian's supervisor stays as light as this module (it never
imports the application) and forks N workers that each build it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

APP_FACTORY = "orchard.server:create_app"

# glibc's mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 1024 * 1024
ARENA_MAX = 2
# granian's Rust side allocates from its own jemalloc (linked in, configured
# by this variable, read once when granian's extension loads). By default it
# returns freed pages only after 10 s, and only while it is being called: the
# pages of a burst of traffic stay resident once the server goes quiet. A
# background thread purges them after about a second, without the cost in
# throughput of purging at once (dirty_decay_ms:0 halves it).
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000"

MIN_BACKLOG = 128  # granian refuses less
MAX_HEADER_TIMEOUT_MS = 60_000  # granian refuses more
# hyper's HTTP/1 buffers grow up to this per connection. granian's default
# (408 KiB) made 1,000 slow readers of a large download hold 680 MB; with
# 64 KiB they hold about 320 MB (8 KiB saved little more and reads uploads
# in 8 KiB messages). See docs/operations.md, "Connection limits".
HTTP1_BUFFER_SIZE = 64 * 1024


def tune_malloc() -> None:
    """Let freed memory leave the process (glibc only; elsewhere a no-op).

    glibc raises its mmap threshold each time a large block is freed; from
    then on big, short-lived buffers (response bodies, file chunks) come from
    the heap and stay resident once freed. A fixed threshold hands blocks of
    1 MiB and more back at once. Two arenas bound what the server's threads
    (granian's runtime, anyio's worker threads, one per SQLite connection)
    keep in memory of their own. glibc's own ``MALLOC_*`` environment
    variables, when set, take precedence; so does ``_RJEM_MALLOC_CONF``
    over ``JEMALLOC_CONF``. Call it before granian is imported.
    """
    os.environ.setdefault("_RJEM_MALLOC_CONF", JEMALLOC_CONF)
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        mallopt(_M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD)
    if "MALLOC_ARENA_MAX" not in os.environ:
        mallopt(_M_ARENA_MAX, ARENA_MAX)


TRIM_INTERVAL = 1.0  # seconds between two looks at whether to trim
TRIM_AFTER_CPU = 0.005  # CPU seconds used since the last trim that make another worth it


async def release_freed_memory_forever(
    interval: float = TRIM_INTERVAL, clock: Callable[[], float] = time.process_time
) -> None:
    """Every ``interval`` seconds in which the process did some work, give
    the pages of freed heap memory back to the system (glibc's
    ``malloc_trim``; elsewhere this returns at once).

    glibc only shrinks its heaps from the top: buffers freed below a block
    still in use (request bodies, file chunks under the mmap threshold, SQL
    compilation scratch) stay resident, several MB after a burst of traffic.
    ``malloc_trim`` releases every free page wherever it lies; on this
    process's heap (some 30 MB) it takes well under a millisecond. An idle
    process has nothing new to release and is left alone.
    """
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    used = clock()
    while True:
        await asyncio.sleep(interval)
        now = clock()
        if now - used >= TRIM_AFTER_CPU:
            trim(0)
            used = clock()


def create_app() -> Any:
    """The ASGI application, for granian's ``factory`` loading."""
    from orchard.app import app_from_env

    app = app_from_env()
    # Everything built so far (modules, routes, models) lives as long as the
    # process: keep the collector from walking it again on every full
    # collection under load.
    gc.collect()
    gc.freeze()
    return app


class _DropExperimentalNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "experimental" not in record.getMessage()


def _configure_granian_logging() -> None:
    from granian.log import LogLevels, configure_logging

    configure_logging(LogLevels.info)
    logging.getLogger("_granian").addFilter(_DropExperimentalNotice())


async def _serve_here(options: dict[str, Any]) -> int:
    """One worker: granian's embedded server on this process's event loop."""
    from granian.errors import FatalError
    from granian.server.embed import Server

    server = Server(create_app, factory=True, **options)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.stop)
    try:
        await server.serve()
    except FatalError:  # the application's start-up failed; granian logged why
        return 1
    return 0


@dataclass(frozen=True)
class Limits:
    """What one slow or idle client may hold, from the ``ORCHARD_SERVER_*`` settings.

    granian's embedded server otherwise listens with a backlog of 128 and
    handles as many requests at once: 128 slow clients (readers of a large
    download, senders of headers a line a second, trickling uploads) then
    held every slot and ``/health`` waited behind them.
    """

    backlog: int = 2048  # connections the kernel queues before they are accepted
    backpressure: int = 8192  # requests handled at once per worker process
    header_timeout: float = 10.0  # seconds to send a request's headers
    # Seconds an idle keep-alive connection stays open. granian's HTTP/1 has
    # no timer of its own for it: hyper's header read timer also runs while
    # a kept-alive connection waits for its next request, so the shorter of
    # the two closes an idle connection.
    keepalive_timeout: float = 30.0

    def http1(self) -> Any:
        from granian.http import HTTP1Settings

        seconds = min(self.header_timeout, self.keepalive_timeout)
        milliseconds = min(MAX_HEADER_TIMEOUT_MS, max(1, round(seconds * 1000)))
        return HTTP1Settings(
            header_read_timeout=milliseconds,
            keep_alive=True,
            max_buffer_size=HTTP1_BUFFER_SIZE,
        )


def serve(
    host: str, port: int, workers: int = 1, io_threads: int = 2, limits: Limits | None = None
) -> int:
    """Serve Orchard on ``host:port``; returns the process exit code.

    ``io_threads``: granian's threads for blocking I/O, such as reading the
    files it sends straight from disk (granian's own default is 512, each
    one a thread with its own stack kept for a while after use).
    """
    tune_malloc()
    from granian.constants import Interfaces

    limits = limits or Limits()
    options: dict[str, Any] = {
        "address": host,
        "port": port,
        "interface": Interfaces.ASGI,
        "log_access": False,
        "runtime_blocking_threads": max(1, io_threads),
        "backlog": max(MIN_BACKLOG, limits.backlog),
        "backpressure": max(1, limits.backpressure),
        "http1_settings": limits.http1(),
    }
    _configure_granian_logging()
    if workers <= 1:
        return asyncio.run(_serve_here(options))
    from granian.server import Server

    Server(
        APP_FACTORY, factory=True, workers=workers, respawn_failed_workers=False, **options
    ).serve()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchard.server",
        description="Serve Orchard over HTTP (granian); `orchard serve` migrates first, then "
        "runs this. Settings come from the ORCHARD_* environment as usual.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--io-threads", type=int, default=2)
    defaults = Limits()
    parser.add_argument("--backlog", type=int, default=defaults.backlog)
    parser.add_argument("--backpressure", type=int, default=defaults.backpressure)
    parser.add_argument("--header-timeout", type=float, default=defaults.header_timeout)
    parser.add_argument("--keepalive-timeout", type=float, default=defaults.keepalive_timeout)
    args = parser.parse_args(argv)
    limits = Limits(args.backlog, args.backpressure, args.header_timeout, args.keepalive_timeout)
    return serve(args.host, args.port, args.workers, args.io_threads, limits)


if __name__ == "__main__":
    sys.exit(main())
