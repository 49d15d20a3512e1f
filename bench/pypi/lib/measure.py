#!/usr/bin/env python3
"""Measure one running PyPI index server and write a JSON result.

  cold_pip     pip download --no-deps of every pinned file, the first fetch through the server
               (--cold-only: just this, for the extra cold runs on a freshly started server)
  warm_pip     the same again, everything cached (median of --reps)
  simple_html  wrk -t2 -c32 on <url>requests/, Accept: text/html: req/s, p99 ms (median of --reps)
  simple_json  the same with Accept: application/vnd.pypi.simple.v1+json, if the server answers JSON
  large_file   wrk -t2 -c8 on the biggest wheel at the URL the server's own simple page links: MB/s
  rss_mb       VmRSS summed over the server's process tree after the run
  cpu          server CPU seconds per phase (the whole process tree)

Standard library only; shells out to wrk and pip, every external command bounded by a timeout.
MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
CLK = os.sysconf("SC_CLK_TCK")
Result = dict[str, Any]


def log(*parts: object) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] measure:", *parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc
def proc_tree(root: int) -> list[int]:
    """root and all its descendants (by parent PID)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def rss_kb(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += sum(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except OSError:
            pass
    return total


def cpu_s(pids: Iterable[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, ValueError, IndexError):
            pass
    return ticks / CLK


class CpuMeter:
    """CPU seconds the server tree spent inside the with block (None without a PID)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.start = 0.0
        self.used: float | None = None

    def __enter__(self) -> CpuMeter:
        if self.pid:
            self.start = cpu_s(proc_tree(self.pid))
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.pid:
            self.used = round(cpu_s(proc_tree(self.pid)) - self.start, 3)


def quiesce(pid: int | None, max_wait: float = 30.0, window: float = 0.5) -> float:
    """Wait (bounded) until the server tree uses < 10 % of a core: a server still working off
    requests queued by the previous wrk run would otherwise eat into the next measurement."""
    if not pid:
        return 0.0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait:
        c0 = cpu_s(proc_tree(pid))
        time.sleep(window)
        if (cpu_s(proc_tree(pid)) - c0) / window < 0.10:
            break
    else:
        log(f"server still busy after {max_wait:.0f} s, measuring anyway")
    return round(time.perf_counter() - t0, 1)


# ---------------------------------------------------------------- HTTP
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(NoRedirect)


def http_get(url: str, accept: str | None = None, timeout: float = 60) -> tuple[int, str, bytes]:
    """(status, content type, body); redirects are not followed."""
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with _opener.open(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", "") if e.headers else "", b""


# ---------------------------------------------------------------- wrk
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _ms(value: str) -> float | None:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", value)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def run_wrk(url: str, conns: int, duration: int, accept: str | None = None) -> Result:
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if accept:
        cmd += ["-H", f"Accept: {accept}"]
    cmd.append(url)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    out = p.stdout
    res: Result = {"rc": p.returncode}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB|TB) read", out)
    if not m:
        res["error"] = (out + p.stderr)[-400:]
        return res
    secs = float(m.group(2)) * _UNITS[m.group(3)] / 1000.0
    n_bytes = float(m.group(4)) * _BYTES[m.group(5)]
    res["requests"] = int(m.group(1))
    res["seconds"] = secs
    res["req_s"] = round(int(m.group(1)) / secs, 1)
    res["mb_s"] = round(n_bytes / secs / 1e6, 1)
    for pct in ("50", "99"):
        mm = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.MULTILINE)
        if mm:
            res[f"p{pct}_ms"] = _ms(mm.group(1))
    mm = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(mm.group(1)) if mm else 0
    mm = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in mm.groups()) if mm else 0
    return res


def wrk_series(
    label: str, url: str, conns: int, args: argparse.Namespace, accept: str | None = None
) -> Result:
    """--reps wrk runs; medians of req/s, MB/s and latencies; server CPU per run."""
    runs = []
    for i in range(args.reps):
        waited = quiesce(args.pid)
        with CpuMeter(args.pid) as cm:
            r = run_wrk(url, conns, args.duration, accept=accept)
        r["server_cpu_s"] = cm.used
        r["quiesce_wait_s"] = waited
        runs.append(r)
        log(
            f"{label} rep {i + 1}/{args.reps}: {r.get('req_s')} req/s, {r.get('mb_s')} MB/s, "
            f"p99 {r.get('p99_ms')} ms, non2xx {r.get('non2xx')}, "
            f"sockerr {r.get('socket_errors')}, server cpu {cm.used} s"
        )
    out: Result = {
        "url": url,
        "connections": conns,
        "duration_s": args.duration,
        "accept": accept,
        "runs": runs,
    }
    ok = [r for r in runs if "req_s" in r]
    if not ok:
        return out
    for k in ("req_s", "mb_s", "p99_ms", "p50_ms"):
        vals = [r[k] for r in ok if r.get(k) is not None]
        if vals:
            out[k] = round(statistics.median(vals), 2)
    errors = sum(r["non2xx"] + r["socket_errors"] for r in ok)
    requests = sum(r["requests"] for r in ok)
    out["error_rate"] = round(errors / requests, 4) if requests else None
    cpu = [
        r["server_cpu_s"] / r["requests"] * 1000
        for r in ok
        if r["server_cpu_s"] is not None and r["requests"]
    ]
    if cpu:
        out["server_cpu_ms_per_req"] = round(statistics.median(cpu), 3)
    return out


# ---------------------------------------------------------------- pip
def pip_env() -> dict[str, str]:
    """This machine's pip configuration must not leak into the measured downloads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_CACHE_DIR="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_DEFAULT_TIMEOUT="60",
    )
    return env


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def pip_download(args: argparse.Namespace, label: str) -> Result:
    target = Path(tempfile.mkdtemp(prefix=f"bench-pip-{label}-", dir="/tmp"))
    cmd = [
        args.python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--progress-bar", "off", "-q", "-d", str(target), "--index-url", args.url, "-r", args.pins,
    ]  # fmt: skip
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=args.pip_timeout,
            env=pip_env(),
            check=False,
        )
        rc: int | str = p.returncode
        err = p.stderr
    except subprocess.TimeoutExpired:
        rc, err = "timeout", f"pip download exceeded {args.pip_timeout}s"
    secs = time.perf_counter() - t0
    files = sorted(target.iterdir())
    bad = []
    for got in files:
        ref = args.wheels / got.name
        same = ref.is_file() and ref.stat().st_size == got.stat().st_size
        if not same or sha256(ref) != sha256(got):
            bad.append(got.name)
    shutil.rmtree(target, ignore_errors=True)
    res: Result = {"seconds": round(secs, 3), "rc": rc, "files": len(files), "mismatched": bad}
    if rc != 0:
        res["stderr_tail"] = err[-800:]
    log(f"pip {label}: {res['seconds']} s, rc {rc}, {len(files)} files, {len(bad)} mismatched")
    return res


# ---------------------------------------------------------------- the suite
def biggest_wheel(wheels: Path) -> Path:
    return max((p for p in wheels.iterdir() if p.is_file()), key=lambda p: p.stat().st_size)


def find_file_url(index_url: str, project: str, filename: str) -> str:
    """The URL of FILENAME as linked from the server's own simple page."""
    page = urllib.parse.urljoin(index_url, f"{project}/")
    status, _, body = http_get(page, accept="text/html")
    if status != 200:
        raise RuntimeError(f"simple page {page} -> {status}")
    hrefs: list[str] = re.findall(r'href="([^"]+)"', body.decode("utf-8", "replace"))
    for href in hrefs:
        u = urllib.parse.urldefrag(urllib.parse.urljoin(page, href.replace("&amp;", "&")))[0]
        if urllib.parse.unquote(urllib.parse.urlparse(u).path).endswith("/" + filename):
            return u
    raise RuntimeError(f"{filename} not linked from {page}")


def reference(args: argparse.Namespace, label: str) -> float | None:
    """One pip download of the set from the reference (nginx) right before the candidate's
    own: pip's time on this machine moves by up to 2x within minutes, so each pip figure is
    paired with one taken next to it."""
    if not args.ref_url:
        return None
    ref = pip_download(argparse.Namespace(**{**vars(args), "url": args.ref_url}), f"ref-{label}")
    return ref["seconds"] if ref["rc"] == 0 and not ref["mismatched"] else None


def pypi_suite(args: argparse.Namespace, res: Result) -> None:
    n_pins = sum(1 for line in args.pins.read_text().splitlines() if "==" in line)
    res["pins"] = n_pins
    # cold first: nothing may touch the server before (run.sh only checks that its port answers;
    # the reference download goes to nginx, not to this server)
    ref = reference(args, "cold")
    with CpuMeter(args.pid) as cm:
        res["cold_pip"] = pip_download(args, "cold")
    res["cold_pip"]["server_cpu_s"] = cm.used
    res["cold_pip"]["ref_seconds"] = ref
    if args.cold_only:
        return
    warm = []
    for i in range(args.reps):
        ref = reference(args, f"warm{i + 1}")
        with CpuMeter(args.pid) as cm:
            w = pip_download(args, f"warm{i + 1}")
        w["server_cpu_s"] = cm.used
        w["ref_seconds"] = ref
        warm.append(w)
    ok = [
        w["seconds"] for w in warm if w["rc"] == 0 and w["files"] == n_pins and not w["mismatched"]
    ]
    refs = [w["ref_seconds"] for w in warm if w["ref_seconds"] is not None]
    res["warm_pip"] = {
        "runs": warm,
        "seconds": round(statistics.median(ok), 3) if ok else None,
        "ref_seconds": round(statistics.median(refs), 3) if refs else None,
    }

    # the simple page must answer 200 itself (wrk would count a redirect as a success)
    page = urllib.parse.urljoin(args.url, "requests/")
    status, ctype, body = http_get(page, accept="text/html")
    res["probe"] = {"status": status, "content_type": ctype, "bytes": len(body)}
    if status != 200:
        res["error"] = f"simple page probe returned {status}"
        return
    res["simple_html"] = wrk_series("simple html", page, 32, args, accept="text/html")
    status, ctype, body = http_get(page, accept=JSON_ACCEPT)
    res["json_probe"] = {"status": status, "content_type": ctype, "bytes": len(body)}
    if status == 200 and ctype.split(";")[0].strip() == JSON_ACCEPT:
        res["simple_json"] = wrk_series("simple json", page, 32, args, accept=JSON_ACCEPT)
    else:
        res["simple_json"] = {"unsupported": f"status {status}, content-type {ctype!r}"}

    big = biggest_wheel(args.wheels)
    size = big.stat().st_size
    project = re.sub(r"[-_.]+", "-", big.name.split("-")[0]).lower()
    try:
        url = find_file_url(args.url, project, big.name)
        status, _, body = http_get(url, timeout=120)
        res["large_probe"] = {"url": url, "status": status, "bytes": len(body), "expected": size}
        if status == 200 and len(body) == size:
            res["large_file"] = wrk_series("large file", url, 8, args)
            res["large_file"].update(file=big.name, size=size)
        else:
            res["large_file"] = {"error": f"GET {url} -> {status}, {len(body)} of {size} bytes"}
    except (OSError, RuntimeError) as e:
        res["large_file"] = {"error": str(e)}


def main() -> None:
    ap = argparse.ArgumentParser(description="Measure one PyPI index server (see the docstring).")
    ap.add_argument("--name", required=True)
    ap.add_argument("--kind", default="proxy", help="static, proxy or hosted")
    ap.add_argument("--url", required=True, help="the simple index URL")
    ap.add_argument("--pid", type=int, default=None, help="server PID (its tree is measured)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--pins", required=True, type=Path)
    ap.add_argument("--wheels", default=Path("/tmp/bench-wheels"), type=Path)
    ap.add_argument("--python", default=sys.executable, help="the python whose pip is the client")
    ap.add_argument("--pip-timeout", type=int, default=300)
    ap.add_argument("--version", default="", help="the server's version, for the report")
    ap.add_argument("--cold-only", action="store_true", help="measure the cold download only")
    ap.add_argument(
        "--ref-url", default="", help="nginx's index: a pip download from it precedes each own one"
    )
    a = ap.parse_args()
    if not a.url.endswith("/"):
        a.url += "/"
    res: Result = {
        "name": a.name,
        "kind": a.kind,
        "version": a.version,
        "url": a.url,
        "pid": a.pid,
        "reps": a.reps,
        "duration_s": a.duration,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    t0 = time.perf_counter()
    try:
        pypi_suite(a, res)
    except Exception as e:  # keep partial results
        res["error"] = f"{type(e).__name__}: {e}"
        log("ERROR", res["error"])
    if a.pid:
        tree = proc_tree(a.pid)
        res["rss_mb"] = round(rss_kb(tree) / 1024, 1)
        res["processes"] = len(tree)
        res["server_cpu_total_s"] = round(cpu_s(tree), 2)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    a.out.write_text(json.dumps(res, indent=1))
    log(f"{a.name}: done in {res['wall_s']} s, rss {res.get('rss_mb')} MB")


if __name__ == "__main__":
    main()
