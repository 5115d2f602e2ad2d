"""`lab --jupyter-port` moves JupyterLab (through JUPYTER_PORT, which it reads itself); `--port`
moves only the merchant server."""
from __future__ import annotations

import os

import pytest

from tutorial_server.lab import cli

pytestmark = pytest.mark.fast


def test_jupyter_port_reaches_jupyterlab_and_port_the_server(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setenv("JUPYTER_PORT", "8888")  # recorded, so the test leaves it as it was
    monkeypatch.setattr(cli, "run_lab", lambda settings, open_browser: seen.update(
        port=settings.port, jupyter=os.environ.get("JUPYTER_PORT")))
    # What `make lab` does around the lab, the lab command does too (tests/fast/test_course_folder.py)
    monkeypatch.setattr(cli, "install_settings_override", lambda: seen.update(settings=True))
    monkeypatch.setattr(cli, "build_shop", lambda: seen.update(shop=True))
    cli.main(["lab", "--port", "4343", "--jupyter-port", "9999", "--db", str(tmp_path / "db"),
              "--no-browser"])
    assert seen == {"port": 4343, "jupyter": "9999", "settings": True, "shop": True}
    seen.clear()
    cli.main(["lab", "--db", str(tmp_path / "db"), "--no-browser", "--no-shop-build"])
    assert "shop" not in seen and seen["settings"]


def test_the_help_names_jupyterlabs_port(capsys):
    with pytest.raises(SystemExit):
        cli.main(["lab", "--help"])
    assert "--jupyter-port" in capsys.readouterr().out
