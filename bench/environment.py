"""The machine, interpreter and library versions that a benchmark run reports next to its figures."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import sqlalchemy as sa

LIBRARIES = (
    "cryptography", "Flask", "Werkzeug", "Jinja2", "Flask-SQLAlchemy", "SQLAlchemy", "Flask-WTF", "Flask-Login",
    "psycopg", "SQLAlchemy-Utils", "gunicorn", "pyinstrument",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def postgres_server_version(url: str) -> str:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("SHOW server_version")).scalar_one()
    except sa.exc.OperationalError:
        return "not reachable"
    finally:
        engine.dispose()


def git_commit(folder: Path) -> str:
    try:
        completed = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=folder, capture_output=True, text=True, check=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return completed.stdout.strip()


def load_average() -> str:
    one_minute, five_minutes, fifteen_minutes = os.getloadavg()
    return f"{one_minute:.2f} {five_minutes:.2f} {fifteen_minutes:.2f}"


def describe(project_root: Path, postgres_url: str | None) -> list[tuple[str, str]]:
    """Return (item, value) pairs for the report: machine, load, interpreter, databases and libraries."""
    pairs = [
        ("date (UTC)", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")),
        ("commit", git_commit(project_root)),
        ("CPU", f"{cpu_model()}, {os.cpu_count()} logical cores"),
        ("load average at start (1, 5, 15 min)", load_average()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("SQLite library", sqlite3.sqlite_version),
        ("PostgreSQL server", postgres_server_version(postgres_url) if postgres_url else "not used"),
    ]
    pairs += [(name, library_version(name)) for name in LIBRARIES]
    return pairs
