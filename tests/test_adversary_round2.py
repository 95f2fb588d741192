"""Adversary, round 2: the fixes of issues 13 and 14 tried again (each finding xfail, strict).

Each test drives the real part (a real SQLite store, a real socket server on 127.0.0.1 speaking
PostgreSQL's wire protocol, the real `hearken` code paths) and asserts what a person would notice: a
password on the screen, a check that never ends, a post missing from the queue, a word changed in the
training data. Each is `xfail(strict=True)` with its finding in one line, so it turns red once fixed.
"""

from __future__ import annotations

import socket
import struct
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import MINIMAL_CONFIG, free_port

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def _config_with_database(tmp_path: Path, url: str):
    from desk.config.schema import load_config

    path = tmp_path / "hearken.yaml"
    path.write_text(MINIMAL_CONFIG + f"database:\n  url: '{url}'\n")
    return load_config(path)


# --- passwords in addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["s3cr/et-pw", "s3cr#et-pw", "s3cr?et-pw"])
def test_check_config_hides_a_database_password_sqlalchemy_reads_with_a_slash(tmp_path, password):
    """SQLAlchemy's URL grammar takes everything between ':' and the last '@' as the password, so
    postgresql://hearken:s3cr/et-pw@db/hearken connects with the password 's3cr/et-pw'. hide_passwords
    stops the password at the first / ? or #, finds no '@' after it and hides nothing."""
    from sqlalchemy.engine import make_url

    from desk.config.preflight import database_problems

    url = f"postgresql://hearken:{password}@127.0.0.1:{free_port()}/hearken"
    assert make_url(url).password == password  # the password the driver is given
    cfg = _config_with_database(tmp_path, url)
    problems = database_problems(cfg, env={})
    assert problems, "nothing listens on that port: the check must say the database does not answer"
    shown = "\n".join(str(p) for p in problems)
    assert "127.0.0.1" in shown, shown
    assert password not in shown and "s3cr" not in shown, shown


def test_check_config_hides_a_percent_encoded_password_parameter(tmp_path):
    from sqlalchemy.engine import make_url

    from desk.config.preflight import database_problems

    url = f"postgresql://hearken@127.0.0.1:{free_port()}/hearken?pass%77ord=hunter2-db"
    assert make_url(url).query.get("password") == "hunter2-db"
    cfg = _config_with_database(tmp_path, url)
    shown = "\n".join(str(p) for p in database_problems(cfg, env={}))
    assert "127.0.0.1" in shown, shown
    assert "hunter2-db" not in shown, shown


# --- check-config's database check: every wait has a deadline ---------------------------------------------


class _StallingPostgres:
    """A server on 127.0.0.1 that completes PostgreSQL's start-up (no TLS, trust authentication, ready
    for query) and then never answers a query: a database that hangs after accepting the connection
    (locked catalog, a stuck pooler, a server out of memory)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.queried = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _read(self, conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        try:
            while True:  # SSLRequest / GSSENCRequest first, answered "no"; then the StartupMessage
                length, code = struct.unpack("!ii", self._read(conn, 8))
                rest = self._read(conn, length - 8)
                if code in (80877103, 80877104):
                    conn.sendall(b"N")
                    continue
                break
            del rest
            out = struct.pack("!cii", b"R", 8, 0)  # AuthenticationOk
            for k, v in (("server_version", "16.4"), ("client_encoding", "UTF8"), ("server_encoding", "UTF8"),
                         ("standard_conforming_strings", "on"), ("integer_datetimes", "on"),
                         ("DateStyle", "ISO, MDY"), ("TimeZone", "UTC")):
                body = k.encode() + b"\0" + v.encode() + b"\0"
                out += b"S" + struct.pack("!i", len(body) + 4) + body
            out += struct.pack("!ciii", b"K", 12, 4242, 77) + struct.pack("!ci", b"Z", 5) + b"I"
            conn.sendall(out)
            conn.recv(65536)  # the first query: never answered
            self.queried.set()
            self._stop.wait(30)
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.sock.close()


def test_database_check_ends_when_the_server_stops_answering_after_connecting(tmp_path):
    pytest.importorskip("psycopg")
    from desk.config.preflight import database_problems

    server = _StallingPostgres()
    try:
        cfg = _config_with_database(
            tmp_path, f"postgresql+psycopg://hearken:pw@127.0.0.1:{server.port}/hearken?connect_timeout=1")
        result: list = []
        worker = threading.Thread(target=lambda: result.append(database_problems(cfg, env={})), daemon=True)
        worker.start()
        worker.join(4.0)  # connect_timeout=1 asked for; a "few seconds" check is over by now
        assert server.queried.is_set(), "the stand-in server was never asked a query"
        assert not worker.is_alive(), "check-config's database check is still waiting after 4 s"
        assert result and result[0], "a database that does not answer must be a problem, named"
    finally:
        server.close()


# --- post identity under reused ids ------------------------------------------------------------------------


def _forum_post(post_id: str, author: str, at: datetime, body: str):
    from collectors.base import Mention

    return Mention(platform="forum", source="board", external_id=f"forum.example#{post_id}",
                   url=f"https://forum.example/t/1#{post_id}", author=author, body=body, posted_at=at)


@pytest.mark.parametrize("author", ["", "Guest"])
def test_a_new_post_under_a_reused_id_is_stored_when_authors_are_not_told_apart(sqlite_store, author):
    """The forum was restored from a backup and gave id 102 to a new post three days later. With no
    author to compare (the selector is optional; guests all show as 'Guest'), `same_post`'s "same author
    OR same time" rule says same author, so the new complaint never reaches the queue."""
    from collectors.base import PollResult
    from desk.store.models import MentionRow
    from desk.intake.storing import store_poll

    first = _forum_post("102", author, T0, "Northwind lost my parcel")
    store_poll(sqlite_store, "board", "forum", PollResult([first], None), now=T0)
    later = T0 + timedelta(days=3)
    second = _forum_post("102", author, later, "Northwind charged my card twice and nobody answers")
    store_poll(sqlite_store, "board", "forum", PollResult([second], None), now=later)
    with sqlite_store.session() as s:
        bodies = sorted(m.body for m in s.query(MentionRow))
    assert bodies == sorted([first.body, second.body]), bodies


# --- export-labels round trip -----------------------------------------------------------------------------


def test_a_leading_apostrophe_in_a_labelled_text_survives_export_and_load(tmp_path, cfg):
    """csv_cell leaves a text beginning with "'" alone, and load_extra_labels strips an apostrophe before
    = + - @ wherever it came from: a customer's "'--- worst service ever" comes back as "--- worst ...",
    and "'@Northwind" as "@Northwind". The fix is to escape a leading apostrophe too."""
    import classifier
    from classifier.data import load_extra_labels
    from classifier.text import normalise
    from collectors.base import Mention, PollResult
    from desk.cli.labels import export_labels
    from desk.store.db import connect
    from desk.store.models import Label, MentionRow
    from desk.intake.storing import store_poll

    store = connect(cfg.database_url())
    texts = ["'--- worst Northwind service ever", "'@Northwind is the worst", "'=( Northwind refund please"]
    posts = [Mention(platform="demo", source="demo", external_id=f"q{i}", url="", author="a", body=t, posted_at=T0)
             for i, t in enumerate(texts)]
    store_poll(store, "demo", "demo", PollResult(posts, None), now=T0)
    with store.session() as s:
        for m in s.query(MentionRow):
            s.add(Label(mention_id=m.id, is_complaint=True, severity=2, author="sam", created_at=T0))
    out = tmp_path / "labels.csv"
    with out.open("w", newline="", encoding="utf-8") as fh:
        assert export_labels(store, fh) == 3
    store.close()
    read = sorted(e.text for e in load_extra_labels(out))
    expected = sorted(normalise(classifier.prepare_text("", t)) for t in texts)
    assert read == expected, read


# --- the cookie secret ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["0123456789" * 4, "abcdefghijklmnopqrstuvwxyz0123456789",
                                    "a long random string, a long random string"])
def test_check_config_refuses_a_sequential_cookie_secret(tmp_path, secret):
    from desk.config.preflight import auth_problems

    cfg = _config_with_database(tmp_path, "sqlite:///hearken.db")
    cfg.dashboard.auth = "oidc"
    cfg.dashboard.public_url = "https://hearken.example.com"
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        "[auth]\nredirect_uri = \"https://hearken.example.com/oauth2callback\"\n"
        f"cookie_secret = \"{secret}\"\nclient_id = \"hearken\"\nclient_secret = \"s\"\n"
        "server_metadata_url = \"https://idp.example.com/.well-known/openid-configuration\"\n")
    problems = auth_problems(cfg, files=[secrets])
    assert any("cookie_secret" in str(p) for p in problems), problems
