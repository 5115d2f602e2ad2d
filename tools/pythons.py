"""Which Pythons the course supports, and which of them this machine has.

The supported versions are pyproject.toml's classifiers ("Programming Language :: Python ::
3.X"); `requires-python` starts at the oldest of them. An interpreter counts as found when
`python3.X` on the PATH runs (a pyenv shim of a version that is not active does not), or when
pyenv has it ($PYENV_ROOT or ~/.pyenv, versions/3.X.*/bin/python3.X).

    python3 tools/pythons.py pick        # the interpreter `make` builds .venv with
    PYTHON tools/pythons.py check        # is PYTHON supported? If not, say what to install
    python3 tools/pythons.py found       # each supported version and where it is (or "-")
    python3 tools/pythons.py others      # the oldest and newest found, besides this Python
    python3 tools/pythons.py setup 3.X   # .venv-3.X: that Python with the package + test tools

`pick` prefers Python 3.11 (the version the stored outputs are made on and the whole suite
runs on in CI), then the newest supported one found, then `python3` itself if it is supported.
Written to run on any Python 3, so an old one can still say what is needed.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFERRED = "3.11"


def supported():
    """["3.10", "3.11", ...] from pyproject.toml's classifiers, oldest first."""
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    found = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text)
    return sorted(set(found), key=lambda v: tuple(int(p) for p in v.split(".")))


def _run(path):
    """(version "3.X", the interpreter's own path) of the Python at `path`, or (None, None)."""
    try:
        out = subprocess.run(
            [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True,
            timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None, None
    parts = out.stdout.strip().split(" ", 1)
    return (parts[0], parts[1]) if out.returncode == 0 and len(parts) == 2 else (None, None)


def _version_of(path):
    return _run(path)[0]


def find(version):
    """The path of a working Python `version` ("3.12"), or None. A pyenv shim is resolved to
    the interpreter it runs."""
    on_path = shutil.which("python" + version)
    if on_path:
        got, executable = _run(on_path)
        if got == version:
            return executable
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    builds = glob.glob(os.path.join(pyenv, "versions", version + ".*", "bin", "python" + version))
    builds = [b for b in builds if re.search(r"/%s\.\d+/bin/" % re.escape(version), b)]
    for build in sorted(builds, key=lambda b: int(b.split(os.sep)[-3].split(".")[2]), reverse=True):
        if _version_of(build) == version:
            return build
    return None


def found():
    """{version: path or None} for every supported version."""
    return {version: find(version) for version in supported()}


def pick():
    versions = supported()
    for version in [PREFERRED] + versions[::-1]:
        path = find(version)
        if path:
            return path
    python3 = shutil.which("python3")
    return python3 if python3 and _version_of(python3) in versions else None


def check():
    """Run by the interpreter being checked: exit 0 if it is supported (a note if it is newer
    than any tested), else say which Python this is and which are needed."""
    versions = supported()
    mine = "%d.%d" % sys.version_info[:2]
    as_tuple = lambda v: tuple(int(p) for p in v.split("."))  # noqa: E731
    if mine in versions:
        return 0
    if as_tuple(mine) > as_tuple(versions[-1]):
        print("Note: Python %s is newer than the versions the course is tested on (%s to %s); "
              "trying it." % (sys.version.split()[0], versions[0], versions[-1]))
        return 0
    print("Python %s (%s) is too old: the course needs Python %s to %s." % (
        sys.version.split()[0], sys.executable, versions[0], versions[-1]))
    print("Install one (python.org, your package manager, or pyenv), then run make again, or "
          "point make at it: make PYTHON=/path/to/python3.12 ...")
    return 1


def venv(version):
    return os.path.join(ROOT, ".venv-" + version)


def marker(version):
    """Written when .venv-3.X holds the package and its test tools as pyproject.toml pins them."""
    return os.path.join(venv(version), ".test-installed")


def is_set_up(version):
    pyproject = os.path.join(ROOT, "pyproject.toml")
    return (os.path.exists(marker(version))
            and os.path.getmtime(marker(version)) >= os.path.getmtime(pyproject))


def setup(version):
    """Make .venv-3.X (if missing) and install the package and its test tools into it (if
    pyproject.toml changed since). Returns an exit status; says why on failure."""
    if is_set_up(version):
        return 0
    python = os.path.join(venv(version), "bin", "python")
    if not os.path.exists(python):
        base = find(version)
        if base is None:
            print("No Python %s found (python%s on the PATH, or pyenv's)." % (version, version))
            return 1
        subprocess.check_call([base, "-m", "venv", venv(version)])
    # This Python's pip installs into the other environment when it can (pip 22.3 and later:
    # --python): a new venv's own pip may be old (Python 3.10's: 23.0, about 1.6 times the CPU
    # time). --no-compile: the tests import a small part of what is installed, compiled then
    # (about half the install's CPU time).
    pip = [sys.executable, "-m", "pip", "--python", python]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    if subprocess.call(pip + ["--version"], **quiet) != 0:
        pip = [python, "-m", "pip"]
    status = subprocess.call(pip + ["install", "--quiet", "--no-compile",
                                    "--disable-pip-version-check", "-e", ROOT + "[test]"],
                             cwd=ROOT)
    if status == 0:
        open(marker(version), "w").close()
    return status


def others(main):
    """The oldest and the newest supported version found, leaving out `main`."""
    have = [v for v, path in found().items() if path and v != main]
    return sorted(set(have[:1] + have[-1:]), key=lambda v: tuple(int(p) for p in v.split(".")))


def main(args):
    command = args[0] if args else "found"
    if command == "pick":
        path = pick()
        if path:
            print(path)
        return 0 if path else 1
    if command == "check":
        return check()
    if command == "others":
        print(" ".join(others(args[1] if len(args) > 1 else "%d.%d" % sys.version_info[:2])))
        return 0
    if command == "setup":
        return max([setup(version) for version in args[1:]] or [0])
    if command == "find":
        path = find(args[1])
        if path:
            print(path)
        return 0 if path else 1
    for version, path in found().items():
        print(version, path or "-")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
