#!/usr/bin/env python3
"""Benchmark (not a test): one large file through Orchard, next to a plain ``cp``.

What it does, all on this machine and bounded in time:

1. writes a file of random bytes (``--size-mb``, default 2048 MiB) into a
   fresh temporary directory and hashes it;
2. times ``cp`` of that file to the same directory (same disk);
3. starts ``orchard serve`` on the embedded default (SQLite, blobs on disk) in
   a subprocess, with ``ORCHARD_DATA_DIR`` in the same temporary directory, on a
   free loopback port;
4. uploads the file with a streamed ``PUT`` (httpx, 1 MiB chunks,
   ``X-Checksum-Sha256``), downloads it streamed into a file and checks its
   SHA-256, downloads it once more with ``curl`` when curl is installed (to
   tell the Python client's share from the server's; ``--no-curl`` skips it),
   then uploads the same bytes again as another version (the deduplication
   path: hashed, not stored);
5. samples the resident memory (RSS) of the server process and all its
   children (granian runs the app in a worker subprocess) every 0.1 s;
6. prints a table (seconds, MB/s, throughput relative to ``cp``) and the peak
   RSS growth of the server over its idle, warmed-up baseline, with PASS/FAIL
   against ``--rss-limit-mb`` (50 MB);
7. stops the server (its own process group, by id) and removes every file.

Between operations it runs ``sync`` (not timed), so that no operation pays
for writing back the previous one's dirty pages. The source file is in the
page cache for every operation, ``cp`` included. MB = 10^6 bytes.

    .venv/bin/python bench/transfer_2gb.py                 # 2 GiB, a few minutes
    .venv/bin/python bench/transfer_2gb.py --size-mb 256   # a quick run
    make bench BENCH_ARGS="--size-mb 256 --json /tmp/t.json"

Exit status: 0 when every transfer verified and the RSS growth is within the
limit, 1 otherwise, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

try:  # optional: more precise process-tree accounting
    import psutil
except ImportError:  # pragma: no cover - depends on the environment
    psutil = None

MiB = 1024 * 1024
MB = 1_000_000
CHUNK = MiB
PROJECT = "bench"
PACKAGE = "blob"
FILENAME = "random.bin"


class BenchError(Exception):
    """The benchmark could not run (not a measured failure)."""


class Deadline(Exception):
    """The overall time limit (--timeout) was reached."""


# --- memory of a process tree ----------------------------------------------------------------


def _children_proc(pid: int) -> list[int]:
    """Direct children of pid, from /proc (no psutil)."""
    kids: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        tasks = list(task_dir.iterdir())
    except OSError:
        return kids
    for task in tasks:
        try:
            kids.extend(int(x) for x in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return kids


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            return [pid] + [c.pid for c in root.children(recursive=True)]
        except psutil.Error:
            return []
    seen: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        todo.extend(_children_proc(current))
    return seen


def _rss_one(pid: int) -> int:
    if psutil is not None:
        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_rss(pid: int) -> tuple[int, int]:
    """(sum of RSS in bytes, number of processes) over pid's process tree."""
    pids = process_tree(pid)
    return sum(_rss_one(p) for p in pids), len(pids)


class RssSampler(threading.Thread):
    """Samples the tree RSS every ``interval`` s; keeps the peak per phase."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.pid = pid
        self.interval = interval
        self.phase = "idle"
        self.peaks: dict[str, int] = {}
        self.samples = 0
        self.max_processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            rss, count = tree_rss(self.pid)
            self.samples += 1
            self.max_processes = max(self.max_processes, count)
            phase = self.phase
            self.peaks[phase] = max(self.peaks.get(phase, 0), rss)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


# --- helpers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    remaining = size
    with path.open("wb") as fh:
        while remaining:
            block = os.urandom(min(CHUNK, remaining))
            fh.write(block)
            digest.update(block)
            remaining -= len(block)
        fh.flush()
        os.fsync(fh.fileno())
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(8 * MiB):
            digest.update(block)
    return digest.hexdigest()


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            yield block


def orchard_command() -> list[str]:
    beside = Path(sys.executable).with_name("orchard")
    if beside.exists():
        return [str(beside)]
    try:
        import orchard.cli.main  # noqa: F401
    except ImportError as exc:
        raise BenchError(
            "orchard is not installed in this Python; run scripts/setup.sh and use "
            ".venv/bin/python (or `make bench`)"
        ) from exc
    return [sys.executable, "-m", "orchard.cli.main"]


@dataclass
class Row:
    operation: str
    seconds: float
    size: int
    phase: str | None = None  # RSS phase name, None for operations outside the server
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float:
        return self.size / MB / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM to the server's own process group, SIGKILL if it lingers."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(15)
        # Children (granian's worker) may outlive the parent briefly.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def start_server(workdir: Path, max_upload: int) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHARD_")}
    env.update(
        ORCHARD_DATA_DIR=str(workdir / "data"),
        ORCHARD_MAX_UPLOAD_SIZE=str(max_upload),
        ORCHARD_LOG_LEVEL="WARNING",
    )
    log = workdir / "server.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [*orchard_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,  # no orchard.toml from the caller's directory
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped by its id
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"orchard serve exited with {process.returncode}:\n{server.tail()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise BenchError(f"orchard serve did not become healthy within 60 s:\n{server.tail()}")


def file_path(version: str, filename: str = FILENAME) -> str:
    return f"/api/v1/project/{PROJECT}/packages/{PACKAGE}/versions/{version}/files/{filename}"


def put_file(
    http: httpx.Client, path: Path, size: int, sha256: str, version: str
) -> dict[str, Any]:
    response = http.put(
        file_path(version),
        content=file_chunks(path),
        headers={
            "X-Checksum-Sha256": sha256,
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
        },
    )
    if response.status_code not in (200, 201):
        raise BenchError(f"upload failed: HTTP {response.status_code}: {response.text[:500]}")
    body: dict[str, Any] = response.json()
    if body.get("sha256") != sha256 or body.get("size") != size:
        raise BenchError(f"upload stored something else: {body}")
    return body


def get_file(http: httpx.Client, version: str, target: Path) -> int:
    received = 0
    with http.stream("GET", file_path(version)) as response:
        if response.status_code != 200:
            response.read()
            raise BenchError(f"download failed: HTTP {response.status_code}: {response.text[:500]}")
        with target.open("wb") as out:
            for block in response.iter_raw(CHUNK):
                out.write(block)
                received += len(block)
    return received


def _sample_after(pid: int, delay: float) -> int:
    time.sleep(delay)
    return tree_rss(pid)[0]


def sync() -> None:
    os.sync()


# --- the benchmark ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    size = args.size_mb * MiB
    base = Path(args.tmp_dir) if args.tmp_dir else None
    workdir = Path(tempfile.mkdtemp(prefix="orchard-bench-", dir=base))
    server: Server | None = None
    sampler: RssSampler | None = None
    try:
        need = 4 * size + 512 * MiB  # source, cp copy, blob, downloaded copy (+ staging)
        free = shutil.disk_usage(workdir).free
        if free < need:
            raise BenchError(
                f"{workdir} has {free / MB:.0f} MB free, the benchmark needs {need / MB:.0f} MB"
            )
        source = workdir / "source.bin"
        print(f"writing {args.size_mb} MiB of random bytes to {source} ...", flush=True)
        started = time.perf_counter()
        sha256 = write_random_file(source, size)
        print(f"  {time.perf_counter() - started:.1f} s, sha256 {sha256}", flush=True)

        rows: list[Row] = []

        # cp on the same disk
        sync()
        copy = workdir / "copy.bin"
        started = time.perf_counter()
        subprocess.run(["cp", str(source), str(copy)], check=True)
        rows.append(Row("cp (same disk)", time.perf_counter() - started, size))
        copy.unlink()
        sync()

        print("starting orchard serve (embedded default) ...", flush=True)
        server = start_server(workdir, max_upload=size + 1024 * MiB)
        timeout = httpx.Timeout(60.0, read=600.0, write=600.0)
        with httpx.Client(base_url=server.url, timeout=timeout) as http:
            created = http.post("/api/v1/projects", json={"name": PROJECT})
            if created.status_code != 201:
                raise BenchError(
                    f"cannot create project: HTTP {created.status_code} {created.text}"
                )
            # Warm up the code paths (imports, first queries) with a small file,
            # so the baseline is the idle server that has served an upload.
            warm = workdir / "warm.bin"
            warm_sha = write_random_file(warm, MiB)
            put_file(http, warm, MiB, warm_sha, "warm")
            get_file(http, "warm", workdir / "warm.out")
            warm.unlink()
            (workdir / "warm.out").unlink()
            time.sleep(1.0)
            baseline = min(_sample_after(server.process.pid, 0.1) for _ in range(5))

            sampler = RssSampler(server.process.pid, interval=0.1)
            sampler.start()
            sync()

            print("upload (PUT, streamed) ...", flush=True)
            sampler.phase = "upload"
            started = time.perf_counter()
            body = put_file(http, source, size, sha256, "1")
            rows.append(
                Row(
                    "upload PUT (new bytes)",
                    time.perf_counter() - started,
                    size,
                    "upload",
                    {"created": body.get("created")},
                )
            )
            sampler.phase = "idle"
            sync()

            print("download (GET, streamed to a file) ...", flush=True)
            target = workdir / "download.bin"
            sampler.phase = "download"
            started = time.perf_counter()
            received = get_file(http, "1", target)
            rows.append(
                Row("download GET -> file", time.perf_counter() - started, received, "download")
            )
            sampler.phase = "idle"
            got = sha256_of(target)
            target.unlink()
            if received != size or got != sha256:
                raise BenchError(f"download mismatch: {received} bytes, sha256 {got}")
            sync()

            curl = shutil.which("curl")
            if curl and not args.no_curl:
                # The same download with curl: shows how much of the figure above
                # is the Python client rather than the server.
                print("download (GET with curl, to a file) ...", flush=True)
                sampler.phase = "download-curl"
                started = time.perf_counter()
                subprocess.run(
                    [
                        curl,
                        "--silent",
                        "--show-error",
                        "--fail",
                        "--output",
                        str(target),
                        server.url + file_path("1"),
                    ],
                    check=True,
                    timeout=args.timeout,
                )
                rows.append(
                    Row(
                        "download GET -> file, curl",
                        time.perf_counter() - started,
                        target.stat().st_size,
                        "download-curl",
                    )
                )
                sampler.phase = "idle"
                got = sha256_of(target)
                target.unlink()
                if got != sha256:
                    raise BenchError(f"curl download mismatch: sha256 {got}")
                sync()

            print("upload again as another version (deduplicated) ...", flush=True)
            sampler.phase = "dedup"
            started = time.perf_counter()
            body = put_file(http, source, size, sha256, "2")
            rows.append(
                Row(
                    "upload PUT (dedup)",
                    time.perf_counter() - started,
                    size,
                    "dedup",
                    {"created": body.get("created")},
                )
            )
            sampler.phase = "idle"
            # The upload answer does not tell; the administrator's artifact view does.
            refs = http.get(f"/api/v1/artifacts/{sha256}").json().get("ref_count")
            if refs != 2:
                raise BenchError(f"the same bytes twice should be one artifact of 2 files: {refs}")
            time.sleep(0.3)
        sampler.stop()
        return report(args, rows, sampler, baseline, sha256)
    finally:
        if sampler is not None:
            sampler.stop()
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def report(
    args: argparse.Namespace, rows: list[Row], sampler: RssSampler, baseline: int, sha256: str
) -> int:
    cp = rows[0]
    limit = args.rss_limit_mb
    print()
    print(
        f"Orchard transfer benchmark: {args.size_mb} MiB ({rows[0].size / MB:.0f} MB) "
        f"of random bytes, embedded default, {os.cpu_count()} CPUs"
    )
    header = f"{'operation':<28} {'seconds':>8} {'MB/s':>8} {'vs cp':>7} {'peak RSS +MB':>13}"
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = row.mb_per_s / cp.mb_per_s
        growth = "-"
        if row.phase is not None:
            growth = f"{(sampler.peaks.get(row.phase, baseline) - baseline) / MB:.1f}"
        print(
            f"{row.operation:<28} {row.seconds:>8.2f} {row.mb_per_s:>8.0f} "
            f"{ratio:>6.2f}x {growth:>13}"
        )
    peak = max(sampler.peaks.values(), default=baseline)
    growth_mb = (peak - baseline) / MB
    verdict = "PASS" if growth_mb <= limit else "FAIL"
    print()
    print(
        f"server RSS (all {sampler.max_processes} processes): baseline {baseline / MB:.1f} MB, "
        f"peak {peak / MB:.1f} MB, {sampler.samples} samples every 0.1 s"
    )
    print(f"peak RSS growth: {growth_mb:.1f} MB (limit {limit} MB): {verdict}")
    print("vs cp = throughput relative to cp (higher is better); MB = 10^6 bytes")
    if args.json:
        result = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
            "size_bytes": rows[0].size,
            "sha256": sha256,
            "rss_sampler": "psutil" if psutil is not None else "/proc VmRSS",
            "operations": [
                {
                    "operation": r.operation,
                    "seconds": round(r.seconds, 3),
                    "mb_per_s": round(r.mb_per_s, 1),
                    "vs_cp": round(r.mb_per_s / cp.mb_per_s, 3),
                    **r.extra,
                }
                for r in rows
            ],
            "rss_baseline_mb": round(baseline / MB, 1),
            "rss_peak_growth_mb": round(growth_mb, 1),
            "rss_peak_growth_by_phase_mb": {
                k: round((v - baseline) / MB, 1) for k, v in sampler.peaks.items()
            },
            "rss_limit_mb": limit,
            "verdict": verdict,
        }
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0 if verdict == "PASS" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=2048, help="file size in MiB (2048)")
    parser.add_argument(
        "--rss-limit-mb",
        type=float,
        default=50.0,
        help="allowed peak RSS growth of the server in MB (50)",
    )
    parser.add_argument(
        "--tmp-dir", default=None, help="where the temporary directory goes (default: the system's)"
    )
    parser.add_argument(
        "--timeout", type=int, default=1800, help="give up after this many seconds (1800)"
    )
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--no-curl", action="store_true", help="skip the extra download with curl")
    args = parser.parse_args(argv)
    if args.size_mb < 1:
        parser.error("--size-mb must be at least 1")

    def on_signal(signum: int, _frame: object) -> None:
        raise Deadline(
            "time limit reached" if signum == signal.SIGALRM else f"stopped by signal {signum}"
        )

    signal.signal(signal.SIGALRM, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.alarm(args.timeout)
    try:
        return run(args)
    except (BenchError, Deadline, OSError, httpx.HTTPError, subprocess.CalledProcessError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)


if __name__ == "__main__":
    sys.exit(main())
