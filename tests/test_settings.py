"""Settings from the environment: the secret key, and the production profile's checks."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "REPLAY_PRODUCTION": "1",
    "SECRET_KEY": "k" * 60 + "-not-a-real-key-but-long-and-varied-enough-1234567890",
    "ALLOWED_HOSTS": "replay.example",
}


def manage(*args: str, var_dir: Path, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh process with only the given settings in its environment."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **keep,
            "REPLAY_VAR_DIR": str(var_dir),
            "DATABASE_URL": f"sqlite:///{var_dir / 'db.sqlite3'}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_debug_or_a_key_one_is_made_under_var_readable_by_its_owner_only(tmp_path):
    assert manage("check", var_dir=tmp_path).returncode == 0
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    assert len(key) > 50
    assert manage("check", var_dir=tmp_path).returncode == 0
    assert key_file.read_text() == key  # kept: sessions survive a restart


def test_a_key_file_others_may_read_is_refused(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("x" * 60)
    key_file.chmod(0o644)
    done = manage("check", var_dir=tmp_path)
    assert done.returncode != 0
    assert "chmod 600" in done.stderr


@pytest.mark.parametrize(
    ("missing", "message"),
    [("SECRET_KEY", "SECRET_KEY is not set"), ("ALLOWED_HOSTS", "ALLOWED_HOSTS is not set")],
)
def test_production_refuses_to_start_without_its_settings(tmp_path, missing, message):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    done = manage("check", var_dir=tmp_path, **env)
    assert done.returncode != 0
    assert message in done.stderr
    assert not (tmp_path / "secret_key").exists()


def test_the_production_profile_passes_the_deployment_checks(tmp_path):
    done = manage("check", "--deploy", "--fail-level", "WARNING", var_dir=tmp_path, **PRODUCTION)
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


@pytest.mark.parametrize(
    ("env", "installed"),
    [
        ({}, False),
        ({"REPLAY_DEMO": "1"}, True),
        ({"DEBUG": "1"}, True),
        (PRODUCTION, False),
        ({**PRODUCTION, "REPLAY_DEMO": "1"}, True),
    ],
    ids=["default", "REPLAY_DEMO", "DEBUG", "production", "production-asked"],
)
def test_the_demo_app_is_installed_only_when_the_demo_is_on(tmp_path, env, installed):
    probe = "from django.apps import apps; print(apps.is_installed('demo'))"
    done = manage("shell", "-c", probe, var_dir=tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == str(installed)
