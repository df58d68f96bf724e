"""notify's channels against real local parts: an aiosmtpd SMTP server (plain and STARTTLS
with AUTH), SES through moto, a local HTTP server speaking the Telegram Bot API's JSON, and a
local webhook receiver (HTTP and HTTPS with a private CA) that verifies the signatures.

Nothing here touches the network. Stalls are cut short at teardown, so the suite is fast.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import http.client
import json
import logging
import socket
import ssl
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.channels import (
    MAX_WEBHOOK_BYTES,
    EmailChannel,
    SesSender,
    SmtpSender,
    TelegramChannel,
    WebhookChannel,
    build_email,
    sign_webhook,
    verify_webhook,
)
from shared.domain.notify.cards import Card, SendResult

pytestmark = pytest.mark.integration

TOKEN = "123456789:AAF-secret_TOKEN-value_0123456789abc"
SIGNING_KEY = "whsec-test-signing-key-0123456789"
PASSWORD = "s3cret-smtp-Passw0rd"
KEY = "dlv-7f3a9c:signal.approved:telegram"


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


PNG = tiny_png()


def card(*, image: bytes | None = None, data: dict | None = None) -> Card:
    return Card(kind="signal.approved", title="NIFTY iron condor <approved> & sized",
                text="DRY RUN - paper trading\nSell 24500 CE / buy 24600 CE\nCredit ₹ 3,250",
                html="<p><b>DRY RUN</b> NIFTY iron condor: credit &#8377; 3,250</p>",
                data=data if data is not None else {"symbol": "NIFTY", "credit": 3250.0},
                image=image, dry_run=True)


def assert_clean(result: SendResult, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.detail, result.detail


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- TLS material


@dataclass(frozen=True)
class Tls:
    ca: Path  # PEM of the private CA
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A private CA and a server certificate for hooks.example.test, localhost, 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "QS test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                        "hooks.example.test")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("hooks.example.test"), x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("tls")
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "cert.pem").write_bytes(cert.public_bytes(pem))
    (d / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return Tls(d / "ca.pem", d / "cert.pem", d / "key.pem")


# --------------------------------------------------------------------------- SMTP


class MailBox:
    """An aiosmtpd handler that records what it accepts, or answers scripted failures."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_reply:
            return self.data_reply
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued as QS123"


@contextmanager
def smtp_server(box: MailBox, **smtp_kwargs: Any) -> Iterator[int]:
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, **smtp_kwargs)
    log = logging.getLogger("mail.log")  # aiosmtpd logs the refused handshakes we provoke
    level = log.level
    log.setLevel(logging.CRITICAL)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
        log.setLevel(level)


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_smtp_delivers_text_and_html_with_the_idempotency_headers() -> None:
    box = MailBox()
    with smtp_server(box) as port:
        channel = EmailChannel(SmtpSender("127.0.0.1", port, security="none",
                                          sender="alerts@quantsentinel.example"))
        result = channel.send({"to": "desk@example.com"}, card(), idempotency_key=KEY,
                              timeout=5)
    assert result.ok and not result.permanent, result
    digest = hashlib.sha256(KEY.encode()).hexdigest()[:32]
    assert result.provider_id == f"<qs-{digest}@quantsentinel.example>"
    [(mail_from, rcpts, raw)] = box.messages
    assert mail_from == "alerts@quantsentinel.example" and rcpts == ["desk@example.com"]
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Message-ID"] == result.provider_id
    assert msg["X-Quantsentinel-Idempotency-Key"] == KEY
    assert msg["Subject"] == "NIFTY iron condor <approved> & sized"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "Credit ₹ 3,250" in msg.get_body(("plain",)).get_content()
    assert "<b>DRY RUN</b>" in msg.get_body(("html",)).get_content()
    assert not [p for p in msg.walk() if p.get_content_maintype() == "image"]


def test_smtp_attaches_the_png() -> None:
    box = MailBox()
    with smtp_server(box) as port:
        channel = EmailChannel(SmtpSender("127.0.0.1", port, security="none",
                                          sender="alerts@quantsentinel.example"))
        result = channel.send({"to": "desk@example.com"}, card(image=PNG), idempotency_key=KEY,
                              timeout=5)
    assert result.ok, result
    msg = parse(box.messages[0][2])
    assert msg.get_content_type() == "multipart/mixed"
    types = [p.get_content_type() for p in msg.walk()]
    assert types == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html",
                     "image/png"]
    [image] = list(msg.iter_attachments())
    assert image.get_filename() == "payoff.png"
    assert image.get_content() == PNG
    assert msg["X-Quantsentinel-Idempotency-Key"] == KEY


def test_smtp_550_is_permanent_and_451_transient() -> None:
    box = MailBox()
    with smtp_server(box) as port:
        channel = EmailChannel(SmtpSender("127.0.0.1", port, security="none",
                                          sender="alerts@quantsentinel.example"))
        box.rcpt_reply = "550 5.1.1 <nobody@example.com>: Recipient address rejected"
        refused = channel.send({"to": "nobody@example.com"}, card(), idempotency_key=KEY,
                               timeout=5)
        box.rcpt_reply, box.data_reply = None, "451 4.3.0 Try again later"
        later = channel.send({"to": "desk@example.com"}, card(), idempotency_key=KEY, timeout=5)
    assert not refused.ok and refused.permanent and "550" in refused.detail, refused
    assert not later.ok and not later.permanent and "451" in later.detail, later
    assert box.messages == []


def test_smtp_closed_port_is_transient_and_a_bad_address_permanent() -> None:
    port = free_port()  # nothing listens there
    channel = EmailChannel(SmtpSender("127.0.0.1", port, security="none",
                                      sender="alerts@quantsentinel.example"))
    closed = channel.send({"to": "desk@example.com"}, card(), idempotency_key=KEY, timeout=3)
    assert not closed.ok and not closed.permanent, closed
    assert "cannot reach" in closed.detail
    for bad in ("not-an-address", "a@b", "x@example.com\r\nBcc: victim@example.com",
                "Desk <desk@example.com>", "a,b@example.com", None, 42):
        result = channel.send({"to": bad}, card(), idempotency_key=KEY, timeout=3)
        assert not result.ok and result.permanent, (bad, result)
    missing = channel.send({}, card(), idempotency_key=KEY, timeout=3)
    assert missing.permanent


@contextmanager
def silent_tcp_server() -> Iterator[int]:
    """Accepts connections and never says a word (a stalled SMTP server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


def test_smtp_silent_server_times_out_within_the_budget() -> None:
    with silent_tcp_server() as port:
        channel = EmailChannel(SmtpSender("127.0.0.1", port, security="none",
                                          sender="alerts@quantsentinel.example"))
        start = time.monotonic()
        result = channel.send({"to": "desk@example.com"}, card(), idempotency_key=KEY,
                              timeout=0.8)
        elapsed = time.monotonic() - start
    assert not result.ok and not result.permanent, result
    assert "timed out" in result.detail
    assert 0.5 < elapsed < 1.1, elapsed


def test_smtp_starttls_with_auth_and_a_refused_password(tls: Tls) -> None:
    from aiosmtpd.smtp import AuthResult

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        return AuthResult(success=auth_data.login == b"qs-bot"
                          and auth_data.password == PASSWORD.encode(), handled=False)

    box = MailBox()
    with smtp_server(box, tls_context=tls.server_context(), require_starttls=True,
                     authenticator=authenticator, auth_required=True,
                     auth_exclude_mechanism=["LOGIN"]) as port:
        def sender(password: str, context: ssl.SSLContext | None) -> EmailChannel:
            return EmailChannel(SmtpSender("127.0.0.1", port, security="starttls",
                                           username="qs-bot", password=password,
                                           sender="alerts@quantsentinel.example",
                                           tls_context=context))

        ok = sender(PASSWORD, tls.client_context()).send(
            {"to": "desk@example.com"}, card(image=PNG), idempotency_key=KEY, timeout=5)
        wrong = sender(PASSWORD + "-wrong", tls.client_context()).send(
            {"to": "desk@example.com"}, card(), idempotency_key=KEY, timeout=5)
        untrusted = sender(PASSWORD, None).send(  # the system CAs do not know our test CA
            {"to": "desk@example.com"}, card(), idempotency_key=KEY, timeout=5)
    assert ok.ok, ok
    assert len(box.messages) == 1
    assert not wrong.ok and wrong.permanent and "535" in wrong.detail, wrong
    assert not untrusted.ok and untrusted.permanent and "not trusted" in untrusted.detail
    for result in (ok, wrong, untrusted):
        assert_clean(result, PASSWORD)
    assert PASSWORD not in repr(sender(PASSWORD, None))


def test_smtp_implicit_tls(tls: Tls) -> None:
    box = MailBox()
    with smtp_server(box, ssl_context=tls.server_context()) as port:
        result = EmailChannel(SmtpSender("127.0.0.1", port, security="ssl",
                                         sender="alerts@quantsentinel.example",
                                         tls_context=tls.client_context())).send(
            {"to": "desk@example.com"}, card(), idempotency_key=KEY, timeout=5)
    assert result.ok, result
    assert parse(box.messages[0][2])["X-Quantsentinel-Idempotency-Key"] == KEY


def test_smtp_starttls_required_but_not_offered_is_permanent() -> None:
    box = MailBox()
    with smtp_server(box) as port:
        channel = EmailChannel(SmtpSender("127.0.0.1", port, security="starttls",
                                          username="qs-bot", password=PASSWORD,
                                          sender="alerts@quantsentinel.example"))
        result = channel.send({"to": "desk@example.com"}, card(), idempotency_key=KEY,
                              timeout=5)
    assert not result.ok and result.permanent and "STARTTLS" in result.detail, result
    assert box.messages == []
    with pytest.raises(ValueError, match="TLS"):
        SmtpSender("127.0.0.1", 25, security="none", username="u", password=PASSWORD,
                   sender="alerts@quantsentinel.example")


# --------------------------------------------------------------------------- SES (moto)


def test_ses_sends_through_a_verified_identity() -> None:
    import boto3
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    with mock_aws():
        boto3.client("ses", region_name="us-east-1").verify_email_identity(
            EmailAddress="alerts@quantsentinel.example")
        channel = EmailChannel(SesSender("us-east-1", "alerts@quantsentinel.example"))
        result = channel.send({"to": "desk@example.com"}, card(image=PNG), idempotency_key=KEY,
                              timeout=5)
        unverified = EmailChannel(SesSender("us-east-1", "other@elsewhere.example")).send(
            {"to": "desk@example.com"}, card(), idempotency_key=KEY, timeout=5)
        sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
        assert result.ok, result
        assert result.provider_id
        [message] = sent
        assert message.id == result.provider_id
        assert message.source == "alerts@quantsentinel.example"
        assert set(message.destinations) == {"desk@example.com"}  # moto adds the To header
        raw = message.raw_data.encode() if isinstance(message.raw_data, str) \
            else message.raw_data
        msg = parse(raw)
        assert msg["X-Quantsentinel-Idempotency-Key"] == KEY
        assert [p.get_content_type() for p in msg.walk()][-1] == "image/png"
    assert not unverified.ok and unverified.permanent, unverified
    assert "MessageRejected" in unverified.detail


def test_ses_throttling_is_transient_and_bad_requests_permanent() -> None:
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("ses", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    channel = EmailChannel(SesSender("us-east-1", "alerts@quantsentinel.example",
                                     client=client))
    results = []
    with Stubber(client) as stub:
        stub.add_client_error("send_raw_email", service_error_code="Throttling",
                              service_message="Maximum sending rate exceeded.",
                              http_status_code=400)
        stub.add_client_error("send_raw_email", service_error_code="ServiceUnavailable",
                              http_status_code=503)
        stub.add_client_error("send_raw_email", service_error_code="InvalidParameterValue",
                              http_status_code=400)
        for _ in range(3):
            results.append(channel.send({"to": "desk@example.com"}, card(),
                                        idempotency_key=KEY, timeout=5))
    assert [(r.ok, r.permanent) for r in results] == [(False, False), (False, False),
                                                      (False, True)], results


# --------------------------------------------------------------------------- HTTP servers


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    """What a local server does; ``release`` cuts stalls short at teardown."""

    hits: list[Hit] = field(default_factory=list)
    mode: str = "ok"
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    extra: dict[str, Any] = field(default_factory=dict)


Responder = Callable[[BaseHTTPRequestHandler, Script, Hit], None]


class LocalServer:
    def __init__(self, respond: Responder, *, context: ssl.SSLContext | None = None) -> None:
        self.script = Script()
        script = self.script

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                hit = Hit(self.path, dict(self.headers.items()), self.rfile.read(length))
                with script.lock:
                    script.hits.append(hit)
                with suppress(OSError):  # the client gave up (a stall, a trickle)
                    respond(self, script, hit)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        scheme = "https" if context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.script.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def reply_json(handler: BaseHTTPRequestHandler, status: int, doc: Any,
               headers: dict[str, str] | None = None) -> None:
    body = json.dumps(doc).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(body)


# --------------------------------------------------------------------------- Telegram

CHATS = {111: "private", 222: "group", 333: "supergroup", 444: "channel"}


def telegram(handler: BaseHTTPRequestHandler, script: Script, hit: Hit) -> None:
    """The Bot API's JSON shapes (getChat, sendMessage, sendPhoto) plus scripted failures."""
    _, bot, method = hit.path.split("/", 2)
    if bot != f"bot{TOKEN}":
        return reply_json(handler, 401, {"ok": False, "error_code": 401,
                                         "description": "Unauthorized"})
    mode = script.extra.get(method, script.mode)
    if mode == "stall":
        script.release.wait(10)
        return None
    if mode == "trickle":  # headers at once, then one byte every 0.2 s: no read ever times out
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.flush()
        for _ in range(50):
            if script.release.wait(0.2):
                return None
            handler.wfile.write(b" ")
            handler.wfile.flush()
        return None
    if mode == "429":
        return reply_json(handler, 429, {"ok": False, "error_code": 429,
                                         "description": "Too Many Requests: retry after 7",
                                         "parameters": {"retry_after": 7}})
    if mode == "500":
        return reply_json(handler, 502, {"ok": False, "error_code": 502,
                                         "description": "Bad Gateway"})
    if method == "getChat":
        chat_id = json.loads(hit.body)["chat_id"]
        if chat_id not in CHATS:
            return reply_json(handler, 400, {"ok": False, "error_code": 400,
                                             "description": "Bad Request: chat not found"})
        return reply_json(handler, 200, {"ok": True, "result": {
            "id": chat_id, "type": CHATS[chat_id], "first_name": "Desk"}})
    if method in ("sendMessage", "sendPhoto"):
        return reply_json(handler, 200, {"ok": True, "result": {
            "message_id": 1000 + len(script.hits), "date": int(time.time()),
            "chat": {"id": 111, "type": "private"}}})
    return reply_json(handler, 404, {"ok": False, "error_code": 404,
                                     "description": "Not Found"})


@pytest.fixture
def tg() -> Iterator[LocalServer]:
    with LocalServer(telegram) as server:
        yield server


def methods(server: LocalServer) -> list[str]:
    return [h.path.rsplit("/", 1)[1] for h in server.script.hits]


def test_telegram_private_chat_gets_the_message_and_the_photo(tg: LocalServer) -> None:
    channel = TelegramChannel(TOKEN, base_url=tg.url)
    result = channel.send({"chat_id": 111}, card(image=PNG), idempotency_key=KEY, timeout=5)
    assert result.ok, result
    assert methods(tg) == ["getChat", "sendMessage", "sendPhoto"]
    assert result.provider_id == "1002"
    sent = json.loads(tg.script.hits[1].body)
    assert sent["chat_id"] == 111 and sent["parse_mode"] == "HTML"
    assert sent["text"].startswith("<b>NIFTY iron condor &lt;approved&gt; &amp; sized</b>\n\n")
    assert "Credit ₹ 3,250" in sent["text"]
    photo = tg.script.hits[2]
    assert photo.headers["Content-Type"].startswith("multipart/form-data")
    assert PNG in photo.body and b'name="photo"; filename="payoff.png"' in photo.body
    assert_clean(result, TOKEN)

    tg.script.hits.clear()
    text_only = channel.send({"chat_id": "111"}, card(), idempotency_key=KEY, timeout=5)
    assert text_only.ok and methods(tg) == ["getChat", "sendMessage"]


@pytest.mark.parametrize("chat_id", [222, 333, 444])
def test_telegram_refuses_groups_supergroups_and_channels(tg: LocalServer, chat_id: int) -> None:
    result = TelegramChannel(TOKEN, base_url=tg.url).send(
        {"chat_id": chat_id}, card(), idempotency_key=KEY, timeout=5)
    assert not result.ok and result.permanent
    assert result.detail == f"chat {chat_id} is a {CHATS[chat_id]}, not a private chat"
    assert methods(tg) == ["getChat"]


def test_telegram_chat_not_found_and_bad_ids_are_permanent(tg: LocalServer) -> None:
    channel = TelegramChannel(TOKEN, base_url=tg.url)
    result = channel.send({"chat_id": 999}, card(), idempotency_key=KEY, timeout=5)
    assert not result.ok and result.permanent and "chat not found" in result.detail, result
    assert_clean(result, TOKEN)
    for target in ({}, {"chat_id": None}, {"chat_id": True}, {"chat_id": "@somechannel"},
                   {"chat_id": "12; drop"}, "not a dict"):
        bad = channel.send(target, card(), idempotency_key=KEY, timeout=5)  # type: ignore[arg-type]
        assert not bad.ok and bad.permanent, (target, bad)
    assert methods(tg) == ["getChat"]


def test_telegram_wrong_token_is_permanent_and_never_shown(tg: LocalServer) -> None:
    other = "987654321:ZZZ-another-secret-token-xyz"
    result = TelegramChannel(other, base_url=tg.url).send(
        {"chat_id": 111}, card(), idempotency_key=KEY, timeout=5)
    assert not result.ok and result.permanent and "401" in result.detail, result
    assert_clean(result, other)
    assert other not in repr(TelegramChannel(other, base_url=tg.url))


def test_telegram_stall_is_transient_within_the_timeout(tg: LocalServer) -> None:
    tg.script.mode = "stall"
    start = time.monotonic()
    result = TelegramChannel(TOKEN, base_url=tg.url).send(
        {"chat_id": 111}, card(), idempotency_key=KEY, timeout=1.0)
    elapsed = time.monotonic() - start
    assert not result.ok and not result.permanent, result
    assert "timed out" in result.detail
    assert 0.7 < elapsed < 1.3, elapsed
    assert_clean(result, TOKEN)
    assert "bot***" in result.detail  # the URL is shown with the token masked


def test_telegram_trickling_server_cannot_stretch_the_budget(tg: LocalServer) -> None:
    tg.script.mode = "trickle"
    start = time.monotonic()
    result = TelegramChannel(TOKEN, base_url=tg.url).send(
        {"chat_id": 111}, card(), idempotency_key=KEY, timeout=1.0)
    elapsed = time.monotonic() - start
    assert not result.ok and not result.permanent, result
    assert elapsed < 1.3, elapsed
    assert_clean(result, TOKEN)


def test_telegram_429_and_5xx_are_transient(tg: LocalServer) -> None:
    channel = TelegramChannel(TOKEN, base_url=tg.url)
    tg.script.mode = "429"
    limited = channel.send({"chat_id": 111}, card(), idempotency_key=KEY, timeout=5)
    assert not limited.ok and not limited.permanent and "retry_after=7" in limited.detail
    tg.script.mode = "500"
    down = channel.send({"chat_id": 111}, card(), idempotency_key=KEY, timeout=5)
    assert not down.ok and not down.permanent and "502" in down.detail
    tg.script.mode = "ok"
    tg.script.extra["sendMessage"] = "429"  # getChat passes, the send is rate limited
    late = channel.send({"chat_id": 111}, card(), idempotency_key=KEY, timeout=5)
    assert not late.ok and not late.permanent and late.detail.startswith("sendMessage")
    for result in (limited, down, late):
        assert_clean(result, TOKEN)


def test_telegram_photo_failure_keeps_the_sent_message(tg: LocalServer) -> None:
    tg.script.extra["sendPhoto"] = "500"
    result = TelegramChannel(TOKEN, base_url=tg.url).send(
        {"chat_id": 111}, card(image=PNG), idempotency_key=KEY, timeout=5)
    assert result.ok and result.provider_id == "1002", result
    assert "photo not sent" in result.detail


def test_telegram_unreachable_is_transient_without_the_token() -> None:
    result = TelegramChannel(TOKEN, base_url=f"http://127.0.0.1:{free_port()}").send(
        {"chat_id": 111}, card(), idempotency_key=KEY, timeout=2)
    assert not result.ok and not result.permanent, result
    assert_clean(result, TOKEN)


def test_budget_and_key_are_checked_first(tg: LocalServer) -> None:
    channel = TelegramChannel(TOKEN, base_url=tg.url)
    for timeout in (0, -1, float("nan"), float("inf")):
        r = channel.send({"chat_id": 111}, card(), idempotency_key=KEY, timeout=timeout)
        assert not r.ok and not r.permanent and "no time left" in r.detail
    for key in ("", " padded ", "line\nbreak", "k" * 201, "ключ", None):
        r = channel.send({"chat_id": 111}, card(), idempotency_key=key,  # type: ignore[arg-type]
                         timeout=5)
        assert not r.ok and r.permanent and "idempotency key" in r.detail
    assert tg.script.hits == []


# --------------------------------------------------------------------------- webhooks


def receiver(handler: BaseHTTPRequestHandler, script: Script, hit: Hit) -> None:
    """A receiver as the docs tell it to be: verify, then dedupe on the idempotency key."""
    mode = script.mode
    if mode == "stall":
        script.release.wait(10)
        return None
    if mode.isdigit():
        headers = {"Location": "/elsewhere"} if mode.startswith("3") else {}
        if mode in ("408", "429"):
            headers["Retry-After"] = "30"
        return reply_json(handler, int(mode), {"error": mode}, headers)
    h = {k.lower(): v for k, v in hit.headers.items()}
    if not verify_webhook(SIGNING_KEY, hit.body, h.get("x-qs-timestamp", ""),
                          h.get("x-qs-signature", ""), now=time.time()):
        return reply_json(handler, 401, {"error": "bad signature"})
    key = h["x-qs-idempotency-key"]
    seen = script.extra.setdefault("keys", [])
    duplicate = key in seen
    if not duplicate:
        seen.append(key)
    return reply_json(handler, 200, {"ok": True, "duplicate": duplicate})


@pytest.fixture
def hook() -> Iterator[LocalServer]:
    with LocalServer(receiver) as server:
        yield server


def local_hooks(**kwargs: Any) -> WebhookChannel:
    return WebhookChannel(signing_key=SIGNING_KEY, allow_private=True, **kwargs)


def test_webhook_is_signed_verified_and_deduped_by_the_receiver(hook: LocalServer) -> None:
    data = {"symbol": "NIFTY", "credit": Decimal("3250.50"), "iv": float("nan"),
            "at": dt.datetime(2025, 7, 16, 10, 0, tzinfo=dt.UTC), "id": uuid.UUID(int=7),
            "legs": ({"strike": 24500, "side": "SELL"},)}
    channel = local_hooks()
    result = channel.send({"url": f"{hook.url}/hooks/qs?tenant=t1"}, card(image=PNG, data=data),
                          idempotency_key=KEY, timeout=5)
    assert result.ok and not result.permanent, result
    [hit] = hook.script.hits
    assert hook.script.extra["keys"] == [KEY]
    assert hit.path == "/hooks/qs?tenant=t1"
    body = json.loads(hit.body)
    assert set(body) == {"kind", "title", "text", "data", "dry_run", "idempotency_key",
                         "sent_at"}  # no image: see the module docstring
    assert body["idempotency_key"] == KEY and body["dry_run"] is True
    assert body["data"] == {"symbol": "NIFTY", "credit": "3250.50", "iv": None,
                            "at": "2025-07-16T10:00:00+00:00",
                            "id": "00000000-0000-0000-0000-000000000007",
                            "legs": [{"strike": 24500, "side": "SELL"}]}
    h = {k.lower(): v for k, v in hit.headers.items()}
    assert h["x-qs-idempotency-key"] == KEY
    assert h["content-type"] == "application/json"
    assert abs(int(h["x-qs-timestamp"]) - time.time()) < 5
    assert dt.datetime.fromisoformat(body["sent_at"]).timestamp() == int(h["x-qs-timestamp"])
    assert h["x-qs-signature"] == sign_webhook(SIGNING_KEY, hit.body, h["x-qs-timestamp"])

    again = channel.send({"url": f"{hook.url}/hooks/qs?tenant=t1"}, card(data=data),
                         idempotency_key=KEY, timeout=5)
    assert again.ok and hook.script.extra["keys"] == [KEY]  # the retry was deduped
    assert_clean(result, SIGNING_KEY)


def test_verify_webhook_rejects_tampering_old_timestamps_and_wrong_keys(
        hook: LocalServer) -> None:
    assert local_hooks().send({"url": hook.url}, card(), idempotency_key=KEY, timeout=5).ok
    [hit] = hook.script.hits
    h = {k.lower(): v for k, v in hit.headers.items()}
    ts, sig, body = h["x-qs-timestamp"], h["x-qs-signature"], hit.body
    now = int(ts) + 10
    assert verify_webhook(SIGNING_KEY, body, ts, sig, now=now)
    tampered = body.replace(b'"dry_run":true', b'"dry_run":false')
    assert tampered != body
    assert not verify_webhook(SIGNING_KEY, tampered, ts, sig, now=now)
    assert not verify_webhook(SIGNING_KEY, body, str(int(ts) + 1), sig, now=now)
    assert not verify_webhook("another-key", body, ts, sig, now=now)
    assert not verify_webhook(SIGNING_KEY, body, ts, sig, now=int(ts) + 301)  # too old
    assert not verify_webhook(SIGNING_KEY, body, ts, sig, now=int(ts) - 301)  # from the future
    assert verify_webhook(SIGNING_KEY, body, ts, sig, now=int(ts) + 300)
    for bad_ts, bad_sig in (("", sig), ("abc", sig), ("-5", sig), (ts, ""), (ts, "sha256="),
                            (ts, sig.upper()), (ts, "sha1=" + sig[7:]), (ts, "ü" * 71)):
        assert not verify_webhook(SIGNING_KEY, body, bad_ts, bad_sig, now=now)

    # Replays through the receiver: the same request again is a duplicate; a request
    # signed an hour ago (a captured one, replayed late) is refused.
    def post(body: bytes, ts: str, sig: str) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", hook.port, timeout=5)
        try:
            conn.request("POST", "/", body=body, headers={
                "Content-Type": "application/json", "X-QS-Timestamp": ts,
                "X-QS-Signature": sig, "X-QS-Idempotency-Key": KEY})
            resp = conn.getresponse()
            return {"status": resp.status, **json.loads(resp.read())}
        finally:
            conn.close()

    assert post(body, ts, sig) == {"status": 200, "ok": True, "duplicate": True}
    old = str(int(time.time()) - 3600)
    assert post(body, old, sign_webhook(SIGNING_KEY, body, old))["status"] == 401
    assert post(tampered, ts, sig)["status"] == 401


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1",
                                     "100.64.0.1", "169.254.169.254", "0.0.0.0", "::1",
                                     "fd00::1", "fe80::1", "::ffff:127.0.0.1", "224.0.0.1"])
def test_webhook_refuses_internal_addresses(hook: LocalServer, address: str) -> None:
    def resolve(host: str, port: int, *args: Any) -> list:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    channel = WebhookChannel(signing_key=SIGNING_KEY, resolve=resolve)
    result = channel.send({"url": "https://hooks.example.com/qs"}, card(), idempotency_key=KEY,
                          timeout=5)
    assert not result.ok and result.permanent and "private/internal" in result.detail, result


def test_webhook_refuses_a_local_receiver_unless_allowed(hook: LocalServer) -> None:
    refused = WebhookChannel(signing_key=SIGNING_KEY).send(
        {"url": f"{hook.url}/qs"}, card(), idempotency_key=KEY, timeout=5)
    assert not refused.ok and refused.permanent and "127.0.0.1" in refused.detail
    assert hook.script.hits == []
    allowed = local_hooks().send({"url": f"{hook.url}/qs"}, card(), idempotency_key=KEY,
                                 timeout=5)
    assert allowed.ok


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "file:///etc/passwd",
                                 "gopher://hooks.example.com", "hooks.example.com/x",
                                 "https://user:pw@hooks.example.com/x", "https:///x",
                                 "https://hooks.example.com:99999/x", "https://a b.com/",
                                 "", None, 42])
def test_webhook_refuses_bad_urls(url: Any) -> None:
    result = WebhookChannel(signing_key=SIGNING_KEY).send(
        {"url": url}, card(), idempotency_key=KEY, timeout=5)
    assert not result.ok and result.permanent, (url, result)
    assert "user:pw" not in result.detail


@pytest.mark.parametrize(("status", "permanent"), [
    ("400", True), ("401", True), ("404", True), ("410", True), ("302", True),
    ("408", False), ("429", False), ("500", False), ("503", False)])
def test_webhook_status_codes(hook: LocalServer, status: str, permanent: bool) -> None:
    hook.script.mode = status
    result = local_hooks().send({"url": f"{hook.url}/hooks/SECRET-PATH-TOKEN"}, card(),
                                idempotency_key=KEY, timeout=5)
    assert not result.ok and result.permanent is permanent, result
    assert f"HTTP {status}" in result.detail
    assert "SECRET-PATH-TOKEN" not in result.detail  # paths often carry secrets
    assert [h.path for h in hook.script.hits] == ["/hooks/SECRET-PATH-TOKEN"]  # no redirect
    if status in ("408", "429"):
        assert "retry_after=30" in result.detail


def test_webhook_payload_too_large(hook: LocalServer) -> None:
    big = card(data={"blob": "x" * MAX_WEBHOOK_BYTES})
    result = local_hooks().send({"url": hook.url}, big, idempotency_key=KEY, timeout=5)
    assert not result.ok and result.permanent and "payload too large" in result.detail
    assert hook.script.hits == []
    not_json = local_hooks().send({"url": hook.url}, card(data={"x": object()}),
                                  idempotency_key=KEY, timeout=5)
    assert not not_json.ok and not_json.permanent


def test_webhook_stall_and_closed_port_are_transient(hook: LocalServer) -> None:
    hook.script.mode = "stall"
    start = time.monotonic()
    stalled = local_hooks().send({"url": hook.url}, card(), idempotency_key=KEY, timeout=1.0)
    elapsed = time.monotonic() - start
    assert not stalled.ok and not stalled.permanent and "timed out" in stalled.detail
    assert 0.7 < elapsed < 1.3, elapsed
    closed = local_hooks().send({"url": f"http://127.0.0.1:{free_port()}/"}, card(),
                                idempotency_key=KEY, timeout=2)
    assert not closed.ok and not closed.permanent, closed
    assert_clean(stalled, SIGNING_KEY)
    assert_clean(closed, SIGNING_KEY)


def test_webhook_connects_to_the_address_it_checked(hook: LocalServer) -> None:
    """The name is resolved once, by the injected resolver; the connection goes to that
    address (no second lookup that a rebinding DNS could answer differently)."""
    lookups: list[str] = []

    def resolve(host: str, port: int, *args: Any) -> list:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    url = f"http://hooks.example.test:{hook.port}/qs"  # .test never resolves for real
    result = local_hooks(resolve=resolve).send({"url": url}, card(), idempotency_key=KEY,
                                               timeout=5)
    assert result.ok, result
    assert lookups == ["hooks.example.test"]
    assert hook.script.hits[0].headers["Host"] == f"hooks.example.test:{hook.port}"


def test_webhook_https_pins_the_address_and_checks_the_certificate(tls: Tls) -> None:
    def resolve(host: str, port: int, *args: Any) -> list:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    with LocalServer(receiver, context=tls.server_context()) as server:
        url = f"https://hooks.example.test:{server.port}/qs"
        ok = local_hooks(resolve=resolve, ca_certs=str(tls.ca)).send(
            {"url": url}, card(), idempotency_key=KEY, timeout=5)
        untrusted = local_hooks(resolve=resolve).send(  # certifi does not know our CA
            {"url": url}, card(), idempotency_key=KEY, timeout=5)
        wrong_name = local_hooks(resolve=resolve, ca_certs=str(tls.ca)).send(
            {"url": f"https://other.example.test:{server.port}/qs"}, card(),
            idempotency_key=KEY, timeout=5)
        assert server.script.extra["keys"] == [KEY]
    assert ok.ok, ok
    assert not untrusted.ok and untrusted.permanent and "not trusted" in untrusted.detail
    assert not wrong_name.ok and wrong_name.permanent, wrong_name


def test_build_email_is_deterministic_per_key() -> None:
    a = build_email(card(), sender="a@quantsentinel.example", to="d@example.com",
                    idempotency_key=KEY, date_ts=0)
    b = build_email(card(), sender="a@quantsentinel.example", to="d@example.com",
                    idempotency_key=KEY, date_ts=0)
    c = build_email(card(), sender="a@quantsentinel.example", to="d@example.com",
                    idempotency_key=KEY + "-2", date_ts=0)
    assert a["Message-ID"] == b["Message-ID"] != c["Message-ID"]
    assert all(ord(ch) < 128 for ch in a.as_string())  # 7-bit clean for any relay
