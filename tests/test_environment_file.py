"""environment.yml (conda, Binder) must install what pyproject.toml pins. conda cannot run
here, so this checks it statically: the YAML parses, every conda spec parses, the Python spec
admits Python 3.11, and the pip pins are exactly pyproject's."""
import re
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (tomli, a test extra)
    import tomli as tomllib

import yaml
from rattler import MatchSpec, Version, VersionSpec

from .running_lab import ROOT


def _pins(requirements):
    pins = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([0-9][0-9A-Za-z.\-+]*)", requirement.strip())
        assert match, f"not an exact pin: {requirement!r}"
        pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def _environment():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_conda_specs_parse_and_python_is_3_11():
    deps = _environment()["dependencies"]
    specs = {MatchSpec(d).name.normalized: MatchSpec(d) for d in deps if isinstance(d, str)}
    assert {"python", "pip"} <= specs.keys()
    python = VersionSpec(specs["python"].version)
    assert python.matches(Version("3.11.0")) and python.matches(Version("3.11.7"))
    assert not python.matches(Version("3.12.0"))
    assert sys.version_info[:2] == (3, 11)


def test_pip_pins_match_pyproject_exactly():
    pip_sections = [d["pip"] for d in _environment()["dependencies"] if isinstance(d, dict)]
    assert len(pip_sections) == 1
    project = _pyproject()
    expected = _pins(project["dependencies"] + project["optional-dependencies"]["test"])
    assert _pins(pip_sections[0]) == expected


def test_the_required_packages_are_pinned():
    pins = _pins(_pyproject()["dependencies"] + _pyproject()["optional-dependencies"]["test"])
    assert {"jupyterlab", "stripe", "ipywidgets", "flask", "pytest", "nbval", "localstripe",
            "python-dotenv"} <= pins.keys()
