"""The class-progress view as a JupyterHub service: the hub starts it, gives it a token, and lets
in only those allowed to use it (the hub's admins, and anyone given the scope
`access:services!service=class-progress`); a learner's login or token gets 403.

    GET <hub>/services/class-progress/       the page (refreshes itself)
    GET <hub>/services/class-progress/api    the same rows as JSON

jupyterhub_config.py (docs/jupyterhub.md, "The class's progress"):

    c.JupyterHub.services = [{"name": "class-progress", "url": "http://127.0.0.1:10101",
        "command": [sys.executable, "-m", "tutorial_server.lab.class_progress_service",
                    "--hub-url", "https://class.example.edu"]}]
    c.JupyterHub.load_roles = [{"name": "class-progress", "services": ["class-progress"],
        "scopes": ["list:users", "read:users", "read:servers", "access:servers"]}]

Its own token (JUPYTERHUB_API_TOKEN) lists the learners and asks each running learner's lab for
their progress (class_progress.py); it never reaches their files. What it last saw of each
learner is kept in memory (and with `--remember FILE` in that file too), so a stopped server
still shows its learner's progress. Needs the `jupyterhub` package (the hub's environment has it).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import ioloop, web

from .class_progress import as_html, class_progress

CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                           "form-action 'none'; frame-ancestors 'none'")


class _ClassView(HubOAuthenticated, web.RequestHandler):
    def initialize(self, hub_url: str, remembered: dict) -> None:
        self.hub_url, self.remembered = hub_url, remembered

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    async def rows(self) -> list[dict]:
        rows = await ioloop.IOLoop.current().run_in_executor(
            None, lambda: class_progress(self.hub_url, self.hub_auth.api_token,
                                         api_url=self.hub_auth.api_url,
                                         remembered=self.remembered))
        if self.settings.get("remember_file"):
            _save(self.settings["remember_file"], self.remembered)
        return rows


class ClassPage(_ClassView):
    @web.authenticated
    async def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(as_html(await self.rows()))


class ClassJSON(_ClassView):
    @web.authenticated
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"learners": await self.rows()}))


def _load(path: Path | None) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path, remembered: dict) -> None:
    """What was last seen of each learner (names, counts, times: no secrets), mode 600."""
    try:
        fd, temporary = tempfile.mkstemp(prefix=".class-progress-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(remembered, out)
        os.replace(temporary, path)
    except OSError:
        pass  # the page still shows what it sees now


def make_app(hub_url: str, remember_file: Path | None = None) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/class-progress/")
    shared = {"hub_url": hub_url, "remembered": _load(remember_file)}
    return web.Application([
        (prefix, ClassPage, shared),
        (url_path_join(prefix, "api"), ClassJSON, shared),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32), remember_file=remember_file)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tutorial_server.lab.class_progress_service",
                                     description="The class-progress view, as a JupyterHub service.")
    parser.add_argument("--hub-url", default=os.environ.get("JUPYTERHUB_PUBLIC_URL", ""),
                        help="the hub's public address, where learners' servers are reached "
                        "(https://class.example.edu); default $JUPYTERHUB_PUBLIC_URL")
    parser.add_argument("--remember", metavar="FILE", type=Path,
                        help="keep what was last seen of each learner in FILE (mode 600), so a "
                        "stopped learner's progress still shows after the service restarts")
    args = parser.parse_args(argv)
    if not args.hub_url:
        parser.error("--hub-url is needed (the hub's public address)")
    hub = urlsplit(args.hub_url)
    service = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])  # set by the hub for its services
    make_app(f"{hub.scheme}://{hub.netloc}", args.remember).listen(service.port or 80,
                                                                    service.hostname)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
