"""environment.yml (conda, Binder) must install what pyproject.toml pins. conda cannot run
here, so this checks it statically: the YAML parses, every conda spec parses, the Python spec
admits exactly the supported Pythons (pyproject.toml's classifiers, from requires-python on), and
the pip pins are exactly pyproject's (a pin for some Pythons only keeps its marker)."""
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
    """{(name, marker): version} for requirements that are exact pins ("pkg==1.2; marker")."""
    pins = {}
    for requirement in requirements:
        pin, _, marker = requirement.partition(";")
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([0-9][0-9A-Za-z.\-+]*)", pin.strip())
        assert match, f"not an exact pin: {requirement!r}"
        name = match.group(1).lower().replace("_", "-")
        pins[name, " ".join(marker.replace('"', "'").split())] = match.group(2)
    return pins


def _environment():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _supported():
    classifiers = _pyproject()["classifiers"]
    return [c.rsplit(" :: ", 1)[1] for c in classifiers
            if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]


def test_conda_specs_parse_and_python_is_a_supported_one():
    deps = _environment()["dependencies"]
    specs = {MatchSpec(d).name.normalized: MatchSpec(d) for d in deps if isinstance(d, str)}
    assert {"python", "pip"} <= specs.keys()
    python = VersionSpec(specs["python"].version)
    supported = _supported()
    assert supported[0] == "3.10" and _pyproject()["requires-python"] == f">={supported[0]}"
    for version in supported:
        assert python.matches(Version(f"{version}.0")), version
    oldest, newest = (tuple(int(p) for p in v.split(".")) for v in (supported[0], supported[-1]))
    assert not python.matches(Version(f"{oldest[0]}.{oldest[1] - 1}.18"))
    assert not python.matches(Version(f"{newest[0]}.{newest[1] + 1}.0"))
    assert "%d.%d" % sys.version_info[:2] in supported


def test_mypy_checks_for_the_oldest_supported_python():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["python_version"] == _supported()[0]


def test_pip_pins_match_pyproject_exactly():
    pip_sections = [d["pip"] for d in _environment()["dependencies"] if isinstance(d, dict)]
    assert len(pip_sections) == 1
    project = _pyproject()
    expected = _pins(project["dependencies"] + project["optional-dependencies"]["test"])
    assert _pins(pip_sections[0]) == expected


def test_the_required_packages_are_pinned():
    pins = _pins(_pyproject()["dependencies"] + _pyproject()["optional-dependencies"]["test"])
    assert {name for name, _marker in pins} >= {"jupyterlab", "stripe", "ipywidgets", "flask",
                                                "pytest", "nbval", "localstripe", "python-dotenv"}
