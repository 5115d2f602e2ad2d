"""`make mutation`: cosmic-ray over the modules in cosmic-ray.toml, against the fast tier.

Each module is mutated in a copy of the project (a temporary folder), never in the working
tree, and the modules run side by side. Prints one line per module:
    <module>: <score>% (<killed>/<run>)
where harmless (equivalent) mutants listed in equivalent.txt are left out of both numbers.
`--keep` leaves the session databases (cosmic-ray dump them) and prints the survivors.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (tomli, a test extra)
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
COPIED = ["tutorial_server", "tests", "pyproject.toml", "conftest.py"]


def equivalent() -> set[tuple[str, str, str]]:
    found = set()
    for line in (HERE / "equivalent.txt").read_text().splitlines():
        line = line.split("   #", 1)[0].strip()
        if line and not line.startswith("#"):
            module, operator, code = (part.strip() for part in line.split("|", 2))
            found.add((module, operator, code))
    return found


def run_module(module: str, tests: list[str], base: dict, work: Path) -> list[dict]:
    """cosmic-ray init + exec in a copy of the project; returns the dumped results."""
    folder = work / Path(module).stem
    folder.mkdir()
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", "static", "templates") if name == "tests" else
                shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, folder / name)
    # -x: the first failing test kills the mutant. No plugin autoload (nbval, hypothesis's
    # entry point...) and no addopts: a run costs seconds, not the whole project's start-up.
    command = (f"{sys.executable} -m pytest -x -q -p no:cacheprovider -o addopts= "
               + " ".join(tests))
    config = {"cosmic-ray": {**base, "module-path": module, "test-command": command}}
    (folder / "cr.toml").write_text(_toml(config))
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    cosmic = [sys.executable, "-m", "cosmic_ray.cli"]
    for step in (["init", "cr.toml", "session.sqlite"], ["exec", "cr.toml", "session.sqlite"]):
        if step[0] == "exec":
            _skip_annotations(folder / "session.sqlite", folder / module)
        done = subprocess.run(cosmic + step, cwd=folder, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"cosmic-ray {step[0]} failed for {module}:\n{done.stderr[-3000:]}")
    return _dump(folder)


def _dump(folder: Path) -> list:
    dump = subprocess.run([sys.executable, "-m", "cosmic_ray.cli", "dump", "session.sqlite"],
                          cwd=folder, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in dump.splitlines() if line.strip()]


ANNOTATION = "annotation (never evaluated: from __future__ import annotations)"


def annotation_spans(path: Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the module's type annotations are. With `from __future__ import annotations` they
    are never evaluated, so a mutant inside one (`dict | None` made `dict & None`) is harmless
    by construction: such mutants are marked skipped before the run and not counted."""
    tree = ast.parse(path.read_text())
    if not any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
               and any(a.name == "annotations" for a in n.names) for n in tree.body):
        return []
    spans = []
    for node in ast.walk(tree):
        notes = []
        if isinstance(node, ast.arg) and node.annotation is not None:
            notes.append(node.annotation)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            notes.append(node.returns)
        if isinstance(node, ast.AnnAssign):
            notes.append(node.annotation)
        spans += [((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset)) for n in notes]
    return spans


def _skip_annotations(session: Path, source: Path) -> None:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult
    spans = annotation_spans(source)
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            start = tuple(item.mutations[0].start_pos)
            if any(a <= start < b for a, b in spans):
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED,
                                                      output=ANNOTATION))


def _toml(config: dict) -> str:
    lines = []

    def table(name: str, values: dict) -> None:
        lines.append(f"[{name}]")
        nested = []
        for key, value in values.items():
            if isinstance(value, dict):
                nested.append((f"{name}.{key}", value))
            else:
                lines.append(f"{key} = {json.dumps(value)}")
        for sub, values in nested:
            table(sub, values)
    for name, values in config.items():
        table(name, values)
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the work folder; list survivors")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="only score the sessions a --keep run left in DIR (no new run)")
    parser.add_argument("modules", nargs="*", help="only these module paths")
    args = parser.parse_args()
    config = tomllib.loads((HERE / "cosmic-ray.toml").read_text())
    base = config["cosmic-ray"]
    modules = {m: t["tests"] for m, t in config["modules"].items()
               if not args.modules or m in args.modules}
    harmless = equivalent()
    work = args.report or Path(tempfile.mkdtemp(prefix="mutation-run-"))
    started = time.monotonic()
    try:
        if args.report:
            args.keep = True
            results = {m: _dump(work / Path(m).stem) for m in modules}
        else:
            with ThreadPoolExecutor(len(modules)) as pool:
                results = dict(zip(modules, pool.map(
                    lambda m: run_module(m, modules[m], base, work), modules)))
        failed = False
        for module, entries in results.items():
            source = (ROOT / module).read_text().splitlines()
            killed = run = excluded = 0
            survivors = []
            for job, result in entries:
                [mutation] = job["mutations"]
                line = mutation["start_pos"][0]
                code = source[line - 1].strip()
                if (module, mutation["operator_name"], code) in harmless:
                    excluded += 1
                    continue
                if result is not None and result.get("output") == ANNOTATION:
                    excluded += 1
                    continue
                if result is None or result.get("worker_outcome") != "normal":
                    continue  # not run (or the worker itself failed): not counted
                run += 1
                if result.get("test_outcome") == "killed":
                    killed += 1
                else:
                    survivors.append(f"    {module}:{line}: {mutation['operator_name']} "
                                     f"(occurrence {mutation['occurrence']}): {code}")
            score = 100.0 * killed / run if run else 0.0
            failed |= score < 95.0
            print(f"{module}: {score:.1f}% ({killed}/{run})"
                  + (f", {excluded} equivalent left out" if excluded else ""), flush=True)
            if args.keep or survivors:
                print("\n".join(survivors)) if survivors else None
        print(f"mutation run: {time.monotonic() - started:.0f} s", flush=True)
        return 1 if failed else 0
    finally:
        if args.keep:
            print(f"sessions kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
