"""Shared parts for the alert, mailer and report tests: a real SMTP server (aiosmtpd), certificates,
configs and cases opened through the pipeline's own `open_case`. Holds no tests of its own."""

from __future__ import annotations

import copy
import datetime as dt
import email
import ipaddress
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from desk.config.schema import HearkenConfig
from desk.store.db import Store
from desk.store.models import Case, Classification, MentionRow
from desk.intake.case_rules import open_case
from tests.conftest import MINIMAL_CONFIG, free_port

UTC = dt.timezone.utc


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    authenticated: bool

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return body.get_content()


@dataclass
class SmtpSink:
    """aiosmtpd handler that keeps what arrived and can refuse chosen recipients with a 550 (`refuse`) or for
    now with a 450 (`defer`, greylisting), or keep a message and hang up before its 250 (`drop_after_data`)."""

    messages: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)
    drop_after_data: bool = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        if address in self.defer:
            return "450 4.2.0 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg, bool(session.authenticated)))
        if self.drop_after_data:
            server.transport.abort()  # the message is kept; its 250 never reaches the client
        return "250 Message accepted"


class SmtpServer:
    """A real SMTP server on 127.0.0.1; start() and stop() at will (a server that is down, then up)."""

    def __init__(self, port: int | None = None, **controller_kwargs: Any) -> None:
        self.port = port or free_port()
        self.sink = SmtpSink()
        self.kwargs = controller_kwargs
        self.controller: Controller | None = None

    def start(self) -> "SmtpServer":
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port, **self.kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[Received]:
        return self.sink.messages


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


@dataclass
class Certs:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Certs:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("certs")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return Certs(d / "cert.pem", d / "key.pem")


def password_authenticator(user: str, password: str):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
            and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)
    return check


def make_cfg(port: int = 25, **overrides: Any) -> HearkenConfig:
    """The tests' minimal config with SMTP on 127.0.0.1:`port` and dotted-key overrides ("alerts.rules.min_severity")."""
    data = yaml.safe_load(MINIMAL_CONFIG)
    data = copy.deepcopy(data)
    data.setdefault("alerts", {})["smtp"] = {"host": "127.0.0.1", "port": port, "timeout_seconds": 5}
    data["dashboard"] = {"public_url": "https://desk.example.com"}
    data["team"].append({"name": "Dana Director", "email": "dana@example.com", "role": "manager"})
    for dotted, value in overrides.items():
        node = data
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return HearkenConfig.model_validate(data)


_counter = iter(range(1, 10**9))


def new_case(store: Store, cfg: HearkenConfig, *, posted_at: dt.datetime, severity: int = 2,
             body: str = "Northwind broadband has been down all day", platform: str = "demo",
             author: str = "casey", assignee: str | None = None, detected_at: dt.datetime | None = None,
             topic: str | None = "outage", title: str = "") -> int:
    """Store a mention and open its case the way the pipeline does (due times, severe alert). Returns the case id."""
    n = next(_counter)
    with store.session() as s:
        m = MentionRow(platform=platform, source=platform, external_id=f"t{n}", url=f"https://{platform}.example.com/p/{n}",
                    author=author, title=title, body=body, posted_at=posted_at,
                    detected_at=detected_at or posted_at + dt.timedelta(minutes=5), matched_terms=["Northwind"],
                    extra={}, classified=True, thread_id=f"thread{n}")
        s.add(m)
        s.flush()
        c = Classification(mention_id=m.id, model_version="test", score=0.9, is_complaint=True,
                           severity=severity, topic=topic)
        s.add(c)
        case = open_case(s, cfg, m, c)
        if assignee:
            case.assignee = assignee
        return case.id


def update_case(store: Store, case_id: int, **values: Any) -> None:
    with store.session() as s:
        case = s.get(Case, case_id)
        for k, v in values.items():
            setattr(case, k, v)
