"""The book's launch link (book/theme/launch.py): the nbgitpuller shape a class hub expects."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from book.theme.launch import launch_url, read_launch_config, repository_name

pytestmark = pytest.mark.fast


def test_a_launch_link_pulls_the_repository_and_opens_the_notebook_in_jupyterlab():
    url = launch_url("https://hub.example.edu/",
                     "https://github.com/school/stripe-payments-lab.git", "main",
                     "notebooks/05_the_customer_pays.ipynb")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "hub.example.edu",
                                                        "/hub/user-redirect/git-pull")
    assert parse_qs(parts.query) == {
        "repo": ["https://github.com/school/stripe-payments-lab.git"], "branch": ["main"],
        "urlpath": ["lab/tree/stripe-payments-lab/notebooks/05_the_customer_pays.ipynb"]}
    assert parts.query.startswith("repo=https%3A%2F%2Fgithub.com%2F")


def test_no_hub_or_no_repository_means_no_launch_link():
    assert launch_url("", "https://github.com/a/b", "main", "notebooks/x.ipynb") is None
    assert launch_url("https://hub.example.edu", "", "main", "notebooks/x.ipynb") is None


def test_the_clone_folder_is_the_repository_name_without_git():
    assert repository_name("https://gitlab.example.org/group/course.git/") == "course"
    assert repository_name("https://github.com/a/course") == "course"


def test_the_config_file_is_read_and_the_environment_overrides_it(tmp_path):
    ini = tmp_path / "launch.ini"
    ini.write_text("[launch]\nhub_url = https://hub.a\nrepository = https://github.com/a/b\n")
    assert read_launch_config(ini, {}) == {"hub_url": "https://hub.a",
                                           "repository": "https://github.com/a/b", "branch": "main"}
    assert read_launch_config(ini, {"BOOK_HUB_URL": "", "BOOK_BRANCH": "class"})["hub_url"] == ""
    assert read_launch_config(ini, {"BOOK_BRANCH": "class"})["branch"] == "class"
