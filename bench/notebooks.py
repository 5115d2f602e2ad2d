"""Benchmark 4: the nbval run over every notebook (what `make test` spends on notebooks).

    python bench/notebooks.py

Runs `pytest notebooks/` once, with the project's own nbval settings (pyproject.toml), and
reads the per-cell times from its JUnit report: the total, and each notebook's share (kernel
start and the notebook's own lab included), slowest first.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from common import ROOT, heading


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook files (default: all)")
    args = parser.parse_args(argv)
    heading("4. nbval over the notebooks")
    targets = args.notebooks or sorted(str(p.relative_to(ROOT))
                                       for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
    folder = Path(tempfile.mkdtemp(prefix="bench-nbval-"))
    report = folder / "junit.xml"
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             f"--junitxml={report}", *targets], cwd=ROOT,
                            capture_output=True, text=True, timeout=3600)
    total = time.perf_counter() - started
    per_notebook: dict[str, float] = defaultdict(float)
    cells: dict[str, int] = defaultdict(int)
    failures = 0
    root = ET.parse(report).getroot()
    shutil.rmtree(folder, ignore_errors=True)
    for case in root.iter("testcase"):
        name = (case.get("file") or case.get("classname") or "?").split("::")[0]
        per_notebook[name] += float(case.get("time") or 0)
        cells[name] += 1
        failures += len(case.findall("failure")) + len(case.findall("error"))
    print(f"{len(per_notebook)} notebooks, {sum(cells.values())} cells checked, {failures} "
          f"failed; total {total:.1f} s (pytest process, start-up included)")
    for name, seconds in sorted(per_notebook.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds:6.1f} s  {name}  ({cells[name]} cells)")
    if result.returncode != 0:
        print(result.stdout[-2000:])
    slowest = max(per_notebook.items(), key=lambda kv: kv[1]) if per_notebook else (None, 0.0)
    return {"total_s": total, "slowest": slowest[0], "slowest_s": slowest[1]}


if __name__ == "__main__":
    main()
