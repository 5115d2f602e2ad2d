"""The book's launch settings (book/launch.ini) and the links made from them: a chapter opened on
a class's JupyterHub through nbgitpuller, and a repository file that is not in the book.
Standard library only: the book's renderer and the tests import it."""
from __future__ import annotations

import configparser
import os
from pathlib import Path
from urllib.parse import urlencode

KEYS = {"hub_url": "BOOK_HUB_URL", "repository": "BOOK_REPOSITORY", "branch": "BOOK_BRANCH"}


def read_launch_config(path: Path, environ=os.environ) -> dict[str, str]:
    """hub_url, repository and branch from the [launch] section; an environment variable
    (BOOK_HUB_URL, BOOK_REPOSITORY, BOOK_BRANCH) overrides its key."""
    parser = configparser.ConfigParser()
    parser.read(path, encoding="utf-8")
    section = parser["launch"] if parser.has_section("launch") else {}
    config = {key: environ.get(var, section.get(key, "")).strip() for key, var in KEYS.items()}
    config["branch"] = config["branch"] or "main"
    return config


def repository_name(repository: str) -> str:
    """The folder nbgitpuller clones into: the repository URL's last part, without `.git`."""
    name = repository.rstrip("/").rsplit("/", 1)[-1]
    return name[:-4] if name.endswith(".git") else name


def launch_url(hub_url: str, repository: str, branch: str, notebook: str) -> str | None:
    """The nbgitpuller link that pulls `repository` (at `branch`) into the learner's home on the
    hub and opens `notebook` (a path inside the repository, e.g. notebooks/05_x.ipynb) in
    JupyterLab; None without a hub address or a repository."""
    if not hub_url or not repository:
        return None
    query = urlencode({"repo": repository, "branch": branch,
                       "urlpath": f"lab/tree/{repository_name(repository)}/{notebook}"})
    return f"{hub_url.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def repository_file_url(repository: str, branch: str, path: str,
                        is_dir: bool = False) -> str | None:
    """A file or folder of the repository on its web page (GitHub's and GitLab's shape)."""
    if not repository:
        return None
    base = repository[:-4] if repository.endswith(".git") else repository.rstrip("/")
    return f"{base}/{'tree' if is_dir else 'blob'}/{branch}/{path.strip('/')}"
