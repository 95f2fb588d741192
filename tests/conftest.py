"""Shared fixtures: a real database (SQLite file, and PostgreSQL where a URL is given), configs, paths.

`store` runs each test that uses it on SQLite and, when HEARKEN_TEST_PG_URL is
set (e.g. postgresql://postgres@127.0.0.1:5432/test), on PostgreSQL too, in a
schema of its own that is dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
DATA = SHARED / "data"
PG_URL = os.environ.get("HEARKEN_TEST_PG_URL", "")

MINIMAL_CONFIG = """\
brand:
  terms: ["Northwind", "@NorthwindHelp"]
  exclusions: ["Northwind Traders"]
accounts:
  demo: ["NorthwindHelp"]
sources:
  - {type: demo, name: demo, interval_seconds: 1}
team:
  - {name: Alex Admin, email: alex@example.com, role: admin}
  - {name: Morgan Manager, email: morgan@example.com, role: manager}
  - {name: Sam Agent, email: sam@example.com, role: agent}
"""


def pytest_report_header(config):
    return [f"PostgreSQL tests: {'on ' + PG_URL.split('@')[-1] if PG_URL else 'off (set HEARKEN_TEST_PG_URL)'}",
            f"shared fixtures: {'present' if FIXTURES.is_dir() else 'absent (those tests skip)'}"]


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose search_path is a fresh schema; skips without HEARKEN_TEST_PG_URL."""
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set HEARKEN_TEST_PG_URL")
    from sqlalchemy import create_engine, text

    from desk.store.db import make_engine

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    yield _pg_schema_url(schema)
    with admin.begin() as c:
        c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A database URL: a SQLite file, then PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hearken.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite file the migrations have brought to the newest revision, once a session; `store` and
    `sqlite_store` start from a copy of it instead of migrating an empty file for every test."""
    from desk.store.db import connect

    path = tmp_path_factory.mktemp("migrated") / "hearken.db"
    connect(f"sqlite:///{path}").close()
    assert not path.with_name(path.name + "-wal").exists(), "the template's WAL was not checkpointed on close"
    return path


def _sqlite_from(template: Path, path: Path):
    """A Store on a copy of the migrated template at `path` (connect() still checks the revision: a no-op)."""
    from desk.store.db import connect

    shutil.copyfile(template, path)
    return connect(f"sqlite:///{path}")


@pytest.fixture
def store(request, db_url):
    from desk.store.db import connect

    if db_url.startswith("sqlite:///"):
        s = _sqlite_from(request.getfixturevalue("migrated_sqlite"), Path(db_url.removeprefix("sqlite:///")))
    else:
        s = connect(db_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path, migrated_sqlite):
    s = _sqlite_from(migrated_sqlite, tmp_path / "hearken.db")
    yield s
    s.close()


@pytest.fixture
def config_text():
    return MINIMAL_CONFIG


@pytest.fixture
def cfg(tmp_path, config_text):
    """A small valid config (demo source, three team members) loaded from a file in tmp_path."""
    from desk.config.schema import load_config

    path = tmp_path / "hearken.yaml"
    path.write_text(config_text)
    return load_config(path)


@pytest.fixture(scope="session")
def model():
    """The shipped classifier, loaded once."""
    import classifier

    return classifier.load()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need_fixtures(*parts: str) -> Path:
    """Path under ../shared/fixtures, skipping the test with the reason when it is absent."""
    p = FIXTURES.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is absent (recorded traffic lives in ../shared beside the checkout)")
    return p
