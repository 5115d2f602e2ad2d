"""The course's notebooks as the package ships them, and the copy a learner works in.

A wheel (or `pip install .`) installs notebooks/*.ipynb and their Markdown pages as data, under
`<environment>/share/stripe-payments-lab/notebooks/` (pyproject.toml, data-files); an editable
install or a clone uses the checkout's own notebooks/. `python -m tutorial_server.lab notebooks
[DEST]` copies them into DEST (default ./stripe-payments-lab), and never overwrites a file that
is there: a learner's edited notebook stays theirs.
"""
from __future__ import annotations

import filecmp
import shutil
import site
import sys
import sysconfig
from pathlib import Path

SHARED = Path("share") / "stripe-payments-lab" / "notebooks"
PATTERNS = ("*.ipynb", "*.md")
DEFAULT_DESTINATION = "stripe-payments-lab"


def _has_notebooks(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.ipynb"))


def shipped_notebooks() -> Path | None:
    """Where the installed notebooks are: the environment's data folder (a plain install, a
    `--user` install), else the checkout this package runs from (editable, or a clone)."""
    candidates = [Path(sysconfig.get_path("data")) / SHARED, Path(sys.prefix) / SHARED,
                  Path(site.USER_BASE or "~").expanduser() / SHARED,
                  Path(__file__).resolve().parents[2] / "notebooks"]
    return next((c for c in candidates if _has_notebooks(c)), None)


def copy_notebooks(destination: Path, source: Path | None = None) -> dict[str, list[str]]:
    """Copy every shipped notebook (and page) missing from `destination`. Returns the file
    names by what happened: copied, already there (the same), kept (yours differs)."""
    source = source or shipped_notebooks()
    if source is None:
        raise FileNotFoundError("this installation ships no notebooks")
    destination.mkdir(parents=True, exist_ok=True)
    done: dict[str, list[str]] = {"copied": [], "same": [], "kept": []}
    for path in sorted(p for pattern in PATTERNS for p in source.glob(pattern)):
        target = destination / path.name
        if not target.exists():
            shutil.copyfile(path, target)  # the learner's umask decides its mode
            done["copied"].append(path.name)
        elif target.is_file() and filecmp.cmp(path, target, shallow=False):
            done["same"].append(path.name)
        else:
            done["kept"].append(path.name)
    return done


def cmd_notebooks(args) -> None:
    destination = Path(args.destination).expanduser()
    try:
        done = copy_notebooks(destination)
    except FileNotFoundError as e:
        raise SystemExit(f"No notebooks to copy: {e}. Install the package with pip (not only "
                         "its dependencies), or get the notebooks with git clone.") from None
    except OSError as e:
        raise SystemExit(f"Could not copy the notebooks into {destination}: {e}") from None
    print(f"Notebooks in {destination.resolve()}:")
    if done["copied"]:
        print(f"  copied  {len(done['copied'])}: {', '.join(done['copied'])}")
    if done["same"]:
        print(f"  already there, unchanged  {len(done['same'])}")
    if done["kept"]:
        print(f"  kept yours (they differ from the course's; not overwritten)  "
              f"{len(done['kept'])}: {', '.join(done['kept'])}")
        print("  For a fresh copy of one, rename yours and run this command again.")
    print(f"Open them in JupyterLab: jupyter lab {destination}")
