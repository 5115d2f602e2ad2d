"""Without make: `python -m tutorial_server.lab lab` after a plain `pip install .` (the package in
site-packages, the notebooks and the shop's sources in the clone it is started in) finds the
clone's notebooks and shop build, puts JupyterLab's settings override in place, and builds the
shop once with npm (tutorial_server/lab/course_folder.py)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask

from tutorial_server.config import PROJECT_ROOT
from tutorial_server.lab import course_folder, shop

pytestmark = pytest.mark.fast


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The package as a plain install has it (no notebooks beside it), started in a clone."""
    site = tmp_path / "site-packages"
    site.mkdir()
    clone = tmp_path / "clone"
    (clone / "notebooks").mkdir(parents=True)
    (clone / "pyproject.toml").write_text("[project]\n")
    (clone / "jupyterlab-settings").mkdir()
    (clone / "jupyterlab-settings" / course_folder.SETTINGS_OVERRIDE).write_text(
        (PROJECT_ROOT / "jupyterlab-settings" / course_folder.SETTINGS_OVERRIDE).read_text())
    (clone / "client").mkdir()
    (clone / "client" / "package.json").write_text("{}")
    monkeypatch.setattr(course_folder, "PROJECT_ROOT", site)
    monkeypatch.chdir(clone)
    return clone


def test_a_clone_or_an_editable_install_uses_its_own_folder():
    assert course_folder.course_folder() == PROJECT_ROOT
    assert course_folder.notebook_folder() == PROJECT_ROOT / "notebooks"


def test_a_plain_install_uses_the_clone_it_is_started_in(installed):
    assert course_folder.course_folder() == installed
    assert course_folder.notebook_folder() == installed / "notebooks"


def test_started_anywhere_else_it_says_where_to_start(installed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert course_folder.course_folder() is None
    with pytest.raises(SystemExit, match="course's folder.*tutorial_server.lab notebooks"):
        course_folder.notebook_folder()


def test_a_learners_copy_of_the_notebooks_is_opened(installed, tmp_path, monkeypatch):
    """`python -m tutorial_server.lab notebooks` copies them into ./stripe-payments-lab."""
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / course_folder.COPY_FOLDER
    copy.mkdir()
    (copy / "00_how_a_stripe_payment_works.ipynb").write_text("{}")
    assert course_folder.notebook_folder() == copy
    monkeypatch.chdir(copy)
    assert course_folder.notebook_folder() == copy


def test_the_settings_override_is_put_in_place_once(installed, tmp_path):
    prefix = tmp_path / "venv"
    course_folder.install_settings_override(str(prefix))
    target = prefix / "share/jupyter/lab/settings/overrides.d" / course_folder.SETTINGS_OVERRIDE
    settings = json.loads(target.read_text())
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    target.write_text("{}")  # one already there (a plain install's) is left as it is
    course_folder.install_settings_override(str(prefix))
    assert target.read_text() == "{}"


def test_a_read_only_environment_keeps_jupyterlabs_default(installed, tmp_path, monkeypatch):
    def refuse(source, target):
        raise PermissionError(13, "Permission denied", str(target))
    monkeypatch.setattr(course_folder.shutil, "copyfile", refuse)
    course_folder.install_settings_override(str(tmp_path / "venv"))  # no error: the lab starts
    assert not list((tmp_path / "venv").rglob("*.json"))


def test_the_shop_is_built_once_with_npm_and_mermaid_beside_it(installed, monkeypatch):
    client = installed / "client"
    mermaid = client / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
    steps = []

    def npm(argv, cwd):
        steps.append((Path(argv[0]).name, argv[1:3], cwd))
        if "build" in argv:
            (client / "dist").mkdir()
            (client / "dist" / "index.html").write_text("<!doctype html>")
        else:
            mermaid.parent.mkdir(parents=True)
            mermaid.write_text("mermaid")
        return SimpleNamespace(returncode=0)

    monkeypatch.setattr(course_folder.shutil, "which", lambda name: "/usr/bin/npm")
    assert course_folder.build_shop(run=npm) is None
    assert steps == [("npm", ["ci", "--no-audit"], client), ("npm", ["run", "--silent"], client)]
    assert (client / "dist" / "vendor" / "mermaid.min.js").read_text() == "mermaid"
    assert course_folder.build_shop(run=npm) is None and len(steps) == 2  # built: nothing to do
    with Flask(__name__).app_context():  # the server serves the clone's build
        monkeypatch.setattr(shop, "DIST", installed / "site-packages-has-none")
        assert shop.dist_folder() == client / "dist"


def test_without_npm_or_when_the_build_fails_it_says_how(installed, monkeypatch):
    monkeypatch.setattr(course_folder.shutil, "which", lambda name: None)
    assert course_folder.build_shop() == course_folder.SHOP_BUILD_HINT
    monkeypatch.setattr(course_folder.shutil, "which", lambda name: "/usr/bin/npm")
    assert course_folder.build_shop(run=lambda argv, cwd: SimpleNamespace(returncode=1)) \
        == course_folder.SHOP_BUILD_HINT
    assert "npm ci" in course_folder.SHOP_BUILD_HINT and "Node.js" in course_folder.SHOP_BUILD_HINT
