"""Modes and keys: offline by default, test mode with test keys, live keys refused."""
import subprocess
import sys

import pytest

from tutorial_server.config import ConfigError, load_settings

from .running_lab import ROOT, lab_env

FAKE = "0123456789abcdefghij"  # shorter than any real key: nothing here looks like a secret
TEST_MODE = {"STRIPE_SECRET_KEY": f"sk_test_{FAKE}", "STRIPE_PUBLISHABLE_KEY": f"pk_test_{FAKE}",
             "STRIPE_WEBHOOK_SECRET": f"whsec_{FAKE}"}


def test_offline_by_default():
    settings = load_settings({})
    assert settings.mode == "offline" and settings.offline
    assert settings.publishable_key.startswith("pk_test_")


def test_test_mode_with_test_keys():
    settings = load_settings(TEST_MODE)
    assert settings.mode == "test" and settings.webhook_secret == TEST_MODE["STRIPE_WEBHOOK_SECRET"]


def test_settings_repr_hides_secrets():
    text = repr(load_settings(TEST_MODE))
    assert FAKE not in text.replace(f"pk_test_{FAKE}", "")


@pytest.mark.parametrize("variable, value", [
    ("STRIPE_SECRET_KEY", f"sk_live_{FAKE}"),
    ("STRIPE_SECRET_KEY", f"rk_live_{FAKE}"),
    ("STRIPE_PUBLISHABLE_KEY", f"pk_live_{FAKE}"),
])
def test_live_keys_are_refused_naming_the_variable(variable, value):
    with pytest.raises(ConfigError, match=variable):
        load_settings({**TEST_MODE, variable: value})


@pytest.mark.parametrize("missing, named", [
    ("STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET"),
    ("STRIPE_PUBLISHABLE_KEY", "STRIPE_PUBLISHABLE_KEY"),
])
def test_test_mode_needs_every_key(missing, named):
    env = {k: v for k, v in TEST_MODE.items() if k != missing}
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_a_publishable_key_in_the_secret_key_variable_is_refused():
    with pytest.raises(ConfigError, match="STRIPE_SECRET_KEY"):
        load_settings({**TEST_MODE, "STRIPE_SECRET_KEY": f"pk_test_{FAKE}"})


@pytest.mark.parametrize("env, named", [
    ({"STRIPE_SECRET_KEY": f"sk_live_{FAKE}"}, "STRIPE_SECRET_KEY"),
    ({"STRIPE_SECRET_KEY": f"sk_test_{FAKE}", "STRIPE_PUBLISHABLE_KEY": f"pk_test_{FAKE}"},
     "STRIPE_WEBHOOK_SECRET"),
])
def test_serve_refuses_to_start_and_says_why(tmp_path, env, named):
    result = subprocess.run(
        [sys.executable, "-m", "tutorial_server.lab", "serve", "--port", "0"], cwd=ROOT,
        env=lab_env(tmp_path / "db.sqlite3", None, env), capture_output=True, text=True,
        timeout=60)
    assert result.returncode != 0
    assert named in result.stderr
    assert FAKE not in result.stdout + result.stderr  # the key itself is never echoed
    assert not (tmp_path / "db.sqlite3.lab.json").exists()
