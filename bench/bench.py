"""`make bench`: the performance users feel, in one run, written to docs/performance.md.

Sections (each prints as it goes, then the whole report is printed as Markdown):

1. throughput: backup, incremental backup and restore through the BSLS server against
   kopia straight to the same storage, filesystem and S3 (`bench/throughput.py`);
2. growth: the server's memory and start time and the user-sync Job as the repository
   grows in users, snapshots and files (`bench/growth.py`);
3. calls: the function beside a no-op and an echo floor over real gRPC
   (`bench/calls.py`);
4. end to end: apply to first backup, password rotation, a new user
   (`bench/e2e.py`; on the stand-in cluster);
5. node: the same on the real single-node cluster, from the node suite's own stories
   (`bench/node.py`; needs root).

Every figure is a median of repeated runs with its min-max, and every section notes the
load average it saw: other work on the machine shows up in both.

Usage: python -m bench.bench [--quick] [--only SECTION ...] [--write docs/performance.md]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from crossplane.function import logging as fnlogging

from bench import calls, common, e2e, growth, node, sizing, throughput, variants
from tests.e2e.conftest import KOPIA_VERSION

SECTIONS = ("throughput", "growth", "calls", "e2e", "node")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SIZING_BEGIN, SIZING_END = "<!-- sizing:begin -->", "<!-- sizing:end -->"


def check_kopia() -> None:
    """The pinned kopia must be there (`make bench` builds it)."""
    kopia = common.ROOT / ".tools" / "bin" / "kopia"
    if not os.access(kopia, os.X_OK):
        sys.exit(f"{kopia} is missing: run `make tools` (or `hack/tools.sh kopia`)")
    done = subprocess.run([kopia, "--version"], capture_output=True, text=True, check=False)
    if not done.stdout.startswith(KOPIA_VERSION + " "):
        sys.exit(f"{kopia} is {done.stdout.strip()!r}, not kopia {KOPIA_VERSION}")


def arguments() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, few calls: a smoke run")
    parser.add_argument("--only", nargs="*", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each timed run")
    parser.add_argument("--write", help="write the report into this Markdown file")
    parser.add_argument("--sizing", help="write the sizing table into this Markdown file")
    parser.add_argument("--workdir", help="where the data, clusters and repositories go")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        nargs="+",
        default=[],
        help="the calls section also runs the function as it was at these git commits",
    )
    parser.add_argument(
        "--tune", action="store_true", help="measure every candidate variant (bench/variants.py)"
    )
    return parser.parse_args()


@contextlib.contextmanager
def baseline_trees(revs: list[str], work: pathlib.Path) -> Iterator[dict[str, pathlib.Path]]:
    """A detached git worktree of each commit, by label (removed afterwards)."""
    git = ["git", "-C", str(common.ROOT)]
    trees: dict[str, pathlib.Path] = {}
    try:
        for rev in revs:
            short = subprocess.run(
                [*git, "rev-parse", "--short", f"{rev}^{{commit}}"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            tree = work / f"baseline-{short}"
            subprocess.run([*git, "worktree", "add", "--detach", str(tree), short], check=True)
            trees[f"commit {short}"] = tree
        yield trees
    finally:
        for tree in trees.values():
            subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=True)


class Report:
    """The report's parts as the sections finish."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.targets: list[tuple[str, str, bool]] = []
        self.sizing = ""
        self.stages: list[growth.StageResult] = []
        self.growth_load = ""

    def add(self, title: str, text: str, targets: list[tuple[str, str, bool]]) -> None:
        """A section's text and targets."""
        self.parts.append(f"### {title}\n\n{text}")
        self.targets += targets


def run_sections(args: argparse.Namespace, sections: list[str], work: pathlib.Path) -> Report:
    """Run the sections in order (the end-to-end one reads the growth section's figures)."""
    report = Report()
    if "throughput" in sections:
        print("# 1. backup and restore: through the server against direct", flush=True)
        tp = throughput.measure(
            work / "throughput",
            reps=args.reps,
            quick=args.quick,
            variants=variants.CANDIDATES if args.tune else variants.RECOMMENDED,
        )
        throughput.profile_misses(work / "throughput", tp, quick=args.quick)
        text, found = throughput.render(tp, args.quick, args.reps)
        report.add("1. Backup and restore through the server against direct", text, found)
    if "growth" in sections:
        print("# 2. the server as the repository grows", flush=True)
        with common.LoadWatch() as load:
            report.stages = growth.measure(work / "growth", quick=args.quick)
        report.growth_load = load.summary()
        report.sizing = sizing.render(report.stages)
        text = growth.render(report.stages) + "\n\n" + report.sizing
        report.add("2. The server as the repository grows (filesystem)", text, [])
    if "calls" in sections:
        print("# 3. the function beside the floors", flush=True)
        with baseline_trees(args.baseline, work) as trees:
            result = calls.measure(quick=args.quick, baselines=trees)
        text, found = calls.render(result)
        report.add("3. The function beside the no-op and echo floors", text, found)
    if "e2e" in sections:
        print("# 4. end to end", flush=True)
        timeline, load = e2e.measure(work / "e2e", reps=args.reps)
        latencies = growth.latencies(report.stages)
        text, found = e2e.render(timeline, load, latencies, report.growth_load)
        report.add("4. End to end", text, found)
    if "node" in sections:
        print("# 5. end to end on the real node", flush=True)
        text, found = node.render(node.measure(work / "node"))
        report.add("5. End to end on the real node", text, found)
    return report


def main() -> int:
    args = arguments()
    sections = args.only or list(SECTIONS)
    if {"throughput", "growth", "e2e"} & set(sections):
        check_kopia()
    fnlogging.configure(fnlogging.Level.DISABLED)  # the in-process function's own logs
    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="bsls-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        report = run_sections(args, sections, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    minutes = (time.monotonic() - started) / 60
    header = (
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} with `make bench`"
        f"{' BENCH_ARGS=--quick' if args.quick else ''} on {common.machine()}, kopia "
        f"{KOPIA_VERSION}; the run took {minutes:.0f} min. Sections: {', '.join(sections)}."
    )
    summary = "### Targets\n\n" + common.table(
        ("target", "result", ""),
        [(what, got, common.verdict(ok)) for what, got, ok in report.targets],
    )
    text = "\n\n".join([header, summary, *report.parts])
    print("\n" + text)
    if args.write:
        replace_between(pathlib.Path(args.write), BEGIN, END, text)
    if args.sizing and report.sizing:
        replace_between(pathlib.Path(args.sizing), SIZING_BEGIN, SIZING_END, report.sizing)
    return 0


def replace_between(path: pathlib.Path, begin: str, end: str, body: str) -> None:
    """Replace the generated part of a Markdown file, keeping the prose around it."""
    text = path.read_text() if path.exists() else f"{begin}\n{end}\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{begin}\n{body}\n{end}{tail}")


if __name__ == "__main__":
    sys.exit(main())
