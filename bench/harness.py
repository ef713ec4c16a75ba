"""What tests and benchmarks share to run the project for real: Daphne and Chromium."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Debian's chromium, never a downloaded browser; without the background-networking flags
# it keeps trying to reach hosts a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_executable() -> str | None:
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DaphneProcess:
    """A Daphne process serving an ASGI application on a port, to start, kill and restart."""

    def __init__(
        self,
        port: int,
        env: dict[str, str],
        *,
        application: str = "replay.asgi:application",
        log: Path | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.port = port
        self.env = env
        self.application = application
        self.log = log
        self.args = list(args)  # more daphne options, e.g. its WebSocket message limit
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 20) -> None:
        """Start the process and return once it listens."""
        output = open(self.log, "a") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            # The project's own entry point: Daphne with the limits production has.
            [sys.executable, "-m", "replay.serve", "-b", "127.0.0.1", "-p", str(self.port)]
            + self.args
            + [self.application],
            cwd=ROOT,
            env=self.env,
            stdout=output,
            stderr=output,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"daphne did not start listening within {timeout:g} s")

    def kill(self) -> None:
        """End the process at once, as a crash would: nothing is flushed or closed cleanly."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """End the process as an operator would, then make sure it is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class WorkerProcess:
    """A `manage.py ingest_worker` process, to start and kill like a server."""

    def __init__(self, env: dict[str, str], *, log: Path | None = None) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        output = open(self.log, "a") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "ingest_worker"],
            cwd=ROOT,
            env=self.env,
            stdout=output,
            stderr=output,
        )

    kill = DaphneProcess.kill
    stop = DaphneProcess.stop


def scratch_database() -> tuple[str, str, Callable[[], None]]:
    """A fresh, empty database for a benchmark: (its DATABASE_URL, a label, a cleanup).

    With DATABASE_URL pointing at PostgreSQL, a temporary database is created beside the
    one named (which is left untouched); otherwise a SQLite file in a temporary folder.
    """
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        folder = tempfile.mkdtemp(prefix="bench-")
        return f"sqlite:///{folder}/bench.sqlite3", "SQLite", lambda: None
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{url.rpartition('/')[0]}/{name}", f"PostgreSQL ({name})", drop


def scratch_postgres_django(script: str, purpose: str) -> tuple[str, Callable[[], None]]:
    """For a benchmark at scale: a scratch PostgreSQL database, with Django set up on it.

    Exits with `purpose` unless DATABASE_URL names PostgreSQL. Returns (a label, a cleanup).
    """
    print(f"command: DATABASE_URL=postgres://... .venv/bin/python bench/{script}")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit(f"bench/{script} {purpose}: set DATABASE_URL")
    url, label, cleanup = scratch_database()
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "replay.settings"
    import django

    django.setup()
    return label, cleanup


def scratch_project(env: dict[str, str]) -> tuple[str, str, Callable[[], None]]:
    """A scratch database, migrated, with an ingest key, for a benchmark's server processes.

    Sets DATABASE_URL in `env` and in this process, whose Django it sets up too (so the
    benchmark can read what the servers stored). Returns (the raw key, a label, a cleanup).
    """
    url, label, cleanup = scratch_database()
    env["DATABASE_URL"] = os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "replay.settings")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    created = subprocess.run(
        [*manage, "create_ingest_key", f"bench-{uuid.uuid4().hex[:8]}"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    import django

    django.setup()
    return created.stdout.strip().splitlines()[-1], label, cleanup


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of `values` lie (nearest rank); NaN for none."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
