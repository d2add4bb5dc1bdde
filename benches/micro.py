#!/usr/bin/env python3
"""Runs the criterion micro-benchmarks and writes their medians into BENCHMARKS.md.

    python3 benches/micro.py            # all of them, a few minutes

The table goes between the `micro:begin` and `micro:end` markers; the rest of the file is
left as it is. Criterion keeps its estimates under target/criterion, which this clears
before the run (so no earlier result can show up) and reads after it: the median time per iteration, and per alert (or per byte) where the
benchmark counts a throughput, which shows whether cost stays linear in alerts.
"""

import datetime
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
BEGIN, END = "<!-- micro:begin -->", "<!-- micro:end -->"
BENCHES = ["pipeline", "delivery"]
CRITERION_FLAGS = ["--warm-up-time", "1", "--measurement-time", "3"]
# Issue 5's targets for single benchmarks: id -> most nanoseconds per iteration.
TARGETS = {
    "render/default/1000": 2_000_000,
    "route/50_strategies/1000": 1_000_000,
}


def main():
    criterion_dir = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "criterion"
    shutil.rmtree(criterion_dir, ignore_errors=True)
    command = ["cargo", "bench", "--locked"]
    for bench in BENCHES:
        command += ["--bench", bench]
    subprocess.run([*command, "--", *CRITERION_FLAGS], cwd=ROOT, check=True)
    write_section(report("python3 benches/micro.py", read_results(criterion_dir)))
    print(f"micro.py: wrote {BENCHMARKS_MD}")


def read_results(criterion_dir):
    """(id, median ns, throughput kind, throughput amount) of every benchmark run."""
    results = []
    for path in criterion_dir.glob("**/new/benchmark.json"):
        benchmark = json.loads(path.read_text())
        estimates = json.loads(path.with_name("estimates.json").read_text())
        throughput = benchmark.get("throughput") or {}
        kind, amount = next(iter(throughput.items()), (None, None))
        results.append(
            (benchmark["full_id"], estimates["median"]["point_estimate"], kind, amount)
        )
    return sorted(results, key=sort_key)


def sort_key(result):
    group, _, size = result[0].rpartition("/")
    return (group, int(size)) if size.isdigit() else (result[0], 0)


def duration(ns):
    for unit, scale in (("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.0f} ns"


def per_unit(ns, kind, amount):
    if kind == "Elements":
        return f"{duration(ns / amount)} per alert"
    if kind == "Bytes":
        return f"{amount / ns * 1e9 / 2**20:.0f} MiB/s ({amount} bytes)"
    return ""


def report(command, results):
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"Command: `{command}`",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; load average {load} when written",
        f"- Criterion flags: `{' '.join(CRITERION_FLAGS)}`; figures are medians",
        "",
        "| benchmark | median | cost | target |",
        "| --- | --- | --- | --- |",
    ]
    for full_id, ns, kind, amount in results:
        limit = TARGETS.get(full_id)
        verdict = ""
        if limit is not None:
            verdict = f"≤ {duration(limit)} {'✅' if ns <= limit else '❌'}"
        lines.append(
            f"| `{full_id}` | {duration(ns)} | {per_unit(ns, kind, amount)} | {verdict} |"
        )
    return "\n".join(lines)


def write_section(section):
    text = BENCHMARKS_MD.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
    else:
        head, tail = text.rstrip("\n") + "\n\n## Micro-benchmarks\n\n", "\n"
    BENCHMARKS_MD.write_text(f"{head}{BEGIN}\n{section}\n{END}{tail}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(__doc__)
    main()
