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
    cli.main(["lab", "--port", "4343", "--jupyter-port", "9999", "--db", str(tmp_path / "db"),
              "--no-browser"])
    assert seen == {"port": 4343, "jupyter": "9999"}


def test_the_help_names_jupyterlabs_port(capsys):
    with pytest.raises(SystemExit):
        cli.main(["lab", "--help"])
    assert "--jupyter-port" in capsys.readouterr().out
