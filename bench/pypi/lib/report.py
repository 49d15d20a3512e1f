#!/usr/bin/env python3
"""Turn RUN_DIR/results/*.json into the markdown report (printed, and written to --out) and one
combined JSON (--json): absolute figures, ratios to nginx from the same run, issue 4's targets for
orchard (met / not met), server CPU per request, the spread of every repetition, notes, versions."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

Result = dict[str, Any]
Num = float | int
ORDER = ["nginx", "devpi", "proxpi", "pypiserver", "orchard", "orchard-nginx"]
SUBJECT = "orchard"  # the candidate the targets are about
DASH, TIMES = "\N{EN DASH}", "\N{MULTIPLICATION SIGN}"


def first_line(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return f"? ({e})"
    text = (p.stdout + p.stderr).strip()
    return text.splitlines()[0] if text else "?"


def machine() -> str:
    info = {}
    for path, key in (("/proc/cpuinfo", "model name"), ("/proc/meminfo", "MemTotal")):
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                info[key] = line.split(":", 1)[1].strip()
                break
    mem_gib = int(info.get("MemTotal", "0 kB").split()[0]) / 1024 / 1024
    return (
        f"{os.cpu_count()} cores ({info.get('model name', '?')}), {mem_gib:.1f} GiB RAM, "
        f"Linux {platform.release()}"
    )


def get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return DASH
    if isinstance(x, str):
        return x
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.{digits}f}"


def ratio_value(a: Any, b: Any) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or b == 0:
        return None
    return a / b


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return DASH
    return f"{r:.2f}{TIMES}" if r >= 0.1 else f"{r:.3f}{TIMES}"


def rate(series: Result | None) -> Num | str | None:
    """req/s of a wrk series; 'n/a' for JSON that the server does not speak."""
    if series is None:
        return None
    if "unsupported" in series:
        return "n/a"
    value: Num | None = series.get("req_s")
    return value


def merge_cold(r: Result, extra: list[Result]) -> None:
    """One cold figure from every cold download (each on a fresh server): the
    median of those that got every file right; all of them under ``runs``."""
    runs = [r["cold_pip"], *extra] if r.get("cold_pip") else list(extra)
    good = [x for x in runs if x.get("rc") == 0 and not x.get("mismatched")]
    pick = good or runs
    if not pick:
        return
    ordered = sorted(pick, key=lambda x: x.get("seconds") or 0.0)
    median = dict(ordered[(len(ordered) - 1) // 2])  # the lower middle of an even count
    median["seconds"] = round(statistics.median(x.get("seconds") or 0.0 for x in pick), 3)
    cpu = [x["server_cpu_s"] for x in pick if x.get("server_cpu_s") is not None]
    if cpu:
        median["server_cpu_s"] = round(statistics.median(cpu), 3)
    refs = [x["ref_seconds"] for x in pick if x.get("ref_seconds") is not None]
    median["ref_seconds"] = round(statistics.median(refs), 3) if refs else None
    median["runs"] = runs
    r["cold_pip"] = median


def cold_pip(r: Result) -> Num | str | None:
    if not r.get("cold_pip"):
        return None
    ok = get(r, "cold_pip", "rc") == 0 and not get(r, "cold_pip", "mismatched")
    return get(r, "cold_pip", "seconds") if ok else "fail"


# (column title, value getter, digits)
COLUMNS: list[tuple[str, Callable[[Result], Any], int]] = [
    ("cold pip download s", cold_pip, 2),
    ("warm pip download s", lambda r: get(r, "warm_pip", "seconds"), 2),
    ("simple HTML req/s", lambda r: rate(r.get("simple_html")), 1),
    ("HTML p99 ms", lambda r: get(r, "simple_html", "p99_ms"), 2),
    ("simple JSON req/s", lambda r: rate(r.get("simple_json")), 1),
    ("JSON p99 ms", lambda r: get(r, "simple_json", "p99_ms"), 2),
    ("large file MB/s", lambda r: get(r, "large_file", "mb_s"), 1),
    ("RSS MB", lambda r: r.get("rss_mb"), 1),
]


def paired(section: str) -> Callable[[Result], Any]:
    """The pip time of nginx measured next to a candidate's own (``--ref-url``), if any."""
    return lambda r: get(r, section, "ref_seconds")


# For the pip targets the ratio is to nginx's downloads interleaved with the candidate's own
# (one before each), when the run has them; everything else is to nginx's own measurement.
PAIRED: dict[str, Callable[[Result], Any]] = {
    "warm `pip download` s": paired("warm_pip"),
    "cold `pip download` s": paired("cold_pip"),
}

# Issue 4's targets: (what, value getter, limit, "min" = at least / "max" = at most, vs nginx?)
TARGETS: list[tuple[str, Callable[[Result], Any], float, str, bool]] = [
    ("warm index page, HTML req/s", lambda r: rate(r.get("simple_html")), 0.10, "min", True),
    ("warm index page, JSON req/s", lambda r: rate(r.get("simple_json")), 0.10, "min", True),
    ("large file MB/s", lambda r: get(r, "large_file", "mb_s"), 0.80, "min", True),
    ("warm `pip download` s", lambda r: get(r, "warm_pip", "seconds"), 1.10, "max", True),
    ("cold `pip download` s", cold_pip, 1.5, "max", True),
    ("server RSS MB (process tree, after the run)", lambda r: r.get("rss_mb"), 80, "max", False),
]


def target_rows(res: dict[str, Result]) -> list[str]:
    base = res.get("nginx", {})
    subject = res.get(SUBJECT)
    rows = []
    for what, value, limit, sense, relative in TARGETS:
        sign = "≥" if sense == "min" else "≤"
        bound = f"{sign} {limit:.2f}{TIMES} nginx" if relative else f"{sign} {limit:g}"

        def measure(
            r: Result,
            value: Callable[[Result], Any] = value,
            rel: bool = relative,
            what: str = what,
        ) -> Any:
            v = value(r)
            if not rel:
                return v
            ref = PAIRED[what](r) if what in PAIRED else None
            return ratio_value(v, ref if ref is not None else value(base))

        def show(x: Any, rel: bool = relative) -> str:
            return fmt_ratio(x) if rel else fmt(x)

        others = ", ".join(
            f"{n} {show(measure(res[n]))}" for n in res if n not in ("nginx", SUBJECT)
        )
        if subject is None:
            got, verdict = DASH, "not measured"
        else:
            m = measure(subject)
            if m is None:
                got, verdict = fmt(value(subject)), "not met (no figure)"
            else:
                met = m >= limit if sense == "min" else m <= limit
                got, verdict = show(m), "**met**" if met else "not met"
        rows.append(f"| {what} {bound} | {got} | {verdict} | {others or DASH} |")
    return rows


def notes_for(name: str, r: Result) -> list[str]:
    notes = []
    if r.get("error"):
        notes.append(f"{name}: {r['error']}")
    pins = r.get("pins")
    cp = r.get("cold_pip") or {}
    if cp and (cp.get("rc") != 0 or cp.get("files") != pins or cp.get("mismatched")):
        notes.append(
            f"{name}: cold pip rc={cp.get('rc')}, {cp.get('files')}/{pins} files, mismatched "
            f"{cp.get('mismatched')}: {cp.get('stderr_tail', '')[-300:]}"
        )
    for wr in get(r, "warm_pip", "runs") or []:
        if wr.get("rc") != 0 or wr.get("files") != pins or wr.get("mismatched"):
            notes.append(f"{name}: warm pip rc={wr.get('rc')}, {wr.get('files')}/{pins} files")
    for k in ("simple_html", "simple_json", "large_file"):
        s = r.get(k) or {}
        if s.get("unsupported"):
            notes.append(f"{name}: {k} not measured: the server answered {s['unsupported']}")
        if s.get("error"):
            notes.append(f"{name}: {k}: {s['error']}")
        if s.get("error_rate"):
            notes.append(f"{name}: {k}: error rate {s['error_rate']:.2%} (non-2xx/3xx or socket)")
    if get(r, "large_probe", "url"):
        url, index = r["large_probe"]["url"], r.get("url", "")
        elsewhere = urllib.parse.urlsplit(url).netloc != urllib.parse.urlsplit(index).netloc
        warn = (
            " -- WARNING: not the candidate's host:port, it did not serve it" if elsewhere else ""
        )
        notes.append(f"{name}: large-file URL {url}{warn}")
    return notes


def spread(name: str, r: Result) -> str:
    parts = []
    for k in ("simple_html", "simple_json", "large_file"):
        runs = get(r, k, "runs")
        if runs:
            key = "mb_s" if k == "large_file" else "req_s"
            parts.append(f"{k} {[x.get(key) for x in runs]}")
    cold = get(r, "cold_pip", "runs")
    if cold:
        parts.append(f"cold pip s {[x.get('seconds') for x in cold]}")
    warm = get(r, "warm_pip", "runs")
    if warm:
        parts.append(f"warm pip s {[x.get('seconds') for x in warm]}")
    return f"- {name}: " + "; ".join(parts)


def cpu_row(name: str, r: Result) -> str:
    warm = sorted(
        x["server_cpu_s"]
        for x in get(r, "warm_pip", "runs") or []
        if x.get("server_cpu_s") is not None
    )
    return (
        f"| {name} | {fmt(get(r, 'simple_html', 'server_cpu_ms_per_req'), 3)} | "
        f"{fmt(get(r, 'simple_json', 'server_cpu_ms_per_req'), 3)} | "
        f"{fmt(get(r, 'large_file', 'server_cpu_ms_per_req'), 2)} | "
        f"{fmt(get(r, 'cold_pip', 'server_cpu_s'), 2)} | "
        f"{fmt(warm[len(warm) // 2] if warm else None, 2)} | {r.get('processes', DASH)} |"
    )


def render(a: argparse.Namespace, res: dict[str, Result]) -> str:
    run_dir: Path = a.run_dir

    def read_run_file(name: str) -> str:
        try:
            return (run_dir / name).read_text().strip()
        except OSError:
            return "?"

    sizes = {p.name: p.stat().st_size for p in a.wheels.iterdir() if p.is_file()}
    big = max(sizes, key=lambda n: sizes[n])
    any_r = next(iter(res.values()), {})
    base = res.get("nginx", {})
    names = [n for n in ORDER if n in res] + sorted(n for n in res if n not in ORDER)
    out: list[str] = []
    w = out.append
    cold_reps = max((len(get(r, "cold_pip", "runs") or [0]) for r in res.values()), default=1)
    w("# PyPI caching proxy benchmark")
    w("")
    w(
        f"Generated {time.strftime('%Y-%m-%d %H:%M %Z')} by `{a.command}` "
        f"(wall time {read_run_file('wall_s')} s). Machine: {machine()}. "
        f"Load average at start / end: `{read_run_file('loadavg.start')}` / "
        f"`{read_run_file('loadavg.end')}`."
    )
    w("")
    w(
        "**The machine is shared and noisy, and the load generators (wrk, pip) run on the same "
        "cores as the server**, so absolute numbers move by 10 to 30 % between runs; compare "
        "through the ratio to nginx measured in the same run. Throughput figures are the median "
        f"of {any_r.get('reps')} run(s) of {any_r.get('duration_s')} s each, and the cold "
        f"`pip download` is the median of {cold_reps} download(s), each through a server started "
        "afresh on empty state (every run is listed under *Spread*)."
    )
    w("")
    w(
        f"Corpus: {len(sizes)} wheels ({sum(sizes.values()) / 1e6:.1f} MB), the dependency "
        "closure of 25 popular packages (`bench/pypi/packages.txt`, pinned in "
        f"`bench/pypi/pins.txt`); biggest wheel `{big}` ({sizes[big] / 1e6:.1f} MB). Upstream: "
        "nginx serving a static PEP 503/691 index of them on "
        f"127.0.0.1:{a.nginx_port}; every proxy mirrors it. MB/s: 10^6 bytes; RSS: MiB."
    )
    w("")
    w("## Absolute")
    w("")
    w("| candidate | kind | " + " | ".join(c[0] for c in COLUMNS) + " |")
    w("|---|---|" + "---:|" * len(COLUMNS))
    for n in names:
        cells = " | ".join(fmt(get_(res[n]), d) for _, get_, d in COLUMNS)
        w(f"| {n} | {res[n].get('kind')} | {cells} |")
    w("")
    w("## Ratio to nginx (static, the limit; same run)")
    w("")
    w(
        f"Times, latencies and RSS: candidate ÷ nginx (above 1{TIMES} = slower / bigger). "
        f"Rates: candidate ÷ nginx (below 1{TIMES} = slower)."
    )
    w("")
    w("| candidate | " + " | ".join(c[0] for c in COLUMNS) + " |")
    w("|---|" + "---:|" * len(COLUMNS))
    for n in names:
        cells = " | ".join(fmt_ratio(ratio_value(g(res[n]), g(base))) for _, g, _ in COLUMNS)
        w(f"| {n} | {cells} |")
    w("")
    w(f"## Issue 4's targets for {SUBJECT} (ratios to nginx in this run)")
    w("")
    w(f"| target | {SUBJECT} | | others, for comparison |")
    w("|---|---:|---|---|")
    out.extend(target_rows(res))
    w("")
    pairs = [
        f"{n}: cold {fmt(cold_pip(r))} s next to nginx {fmt(paired('cold_pip')(r))} s, "
        f"warm {fmt(get(r, 'warm_pip', 'seconds'))} s next to nginx "
        f"{fmt(paired('warm_pip')(r))} s"
        for n, r in res.items()
        if n != "nginx" and paired("cold_pip")(r) is not None
    ]
    if pairs:
        w(
            "The `pip download` ratios above divide by nginx's downloads interleaved with the "
            "candidate's own (one right before each, the same median), because pip's own time "
            "on this machine moves by up to 2x within minutes; the ratio table above that "
            "divides by nginx's measurement at the start of the run. Paired medians: "
            + "; ".join(pairs)
            + "."
        )
        w("")
    w("## Server CPU (median over runs; the whole server process tree)")
    w("")
    w(
        "| candidate | CPU ms / simple HTML request | CPU ms / simple JSON request "
        "| CPU ms / large-file request | CPU s, cold pip | CPU s, warm pip | processes |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|")
    out.extend(cpu_row(n, res[n]) for n in names)
    w("")
    w("## Spread (every run; req/s, MB/s, s)")
    w("")
    out.extend(spread(n, res[n]) for n in names)
    w("")
    notes = [x for n in names for x in notes_for(n, res[n])]
    if notes:
        w("## Notes from this run")
        w("")
        out.extend(f"- {x}" for x in notes)
        w("")
    w("## Versions")
    w("")
    tools = [
        f"python {platform.python_version()}",
        first_line([a.python, "-m", "pip", "--version"]).split(" from ")[0],
        first_line(["wrk", "-v"]).split(" [")[0].replace("wrk debian/", "wrk "),
    ]
    w(", ".join(tools) + ".")
    w("")
    out.extend(f"- {n}: {res[n].get('version') or '?'}" for n in names)
    w("")
    w("Method, exact server commands and caveats: `bench/README.md`, `bench/pypi/README.md`.")
    w("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", default=Path("/tmp/bench-run"), type=Path)
    ap.add_argument("--wheels", default=Path("/tmp/bench-wheels"), type=Path)
    ap.add_argument("--nginx-port", default="18000")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--json", required=True, type=Path)
    ap.add_argument("--python", default="python3", help="the python whose pip was the client")
    ap.add_argument("--command", default=os.environ.get("BENCH_COMMAND", "bash bench/pypi/run.sh"))
    a = ap.parse_args()
    res: dict[str, Result] = {}
    extra_cold: dict[str, list[Result]] = {}
    for p in sorted((a.run_dir / "results").glob("*.json")):
        r = json.loads(p.read_text())
        if ".cold" in p.stem:
            extra_cold.setdefault(r["name"], []).append(r.get("cold_pip") or {})
        else:
            res[r["name"]] = r
    for name, runs in extra_cold.items():
        if name in res:
            merge_cold(res[name], runs)
    text = render(a, res)
    a.out.write_text(text)
    a.json.write_text(json.dumps({"machine": machine(), "results": res}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
