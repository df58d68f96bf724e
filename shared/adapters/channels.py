"""notify's delivery channels: Telegram, email (SMTP or Amazon SES) and signed webhooks.

Every channel has a ``name`` and one method::

    send(target: dict, card: Card, *, idempotency_key: str, timeout: float) -> SendResult

The contract, the same for all three:

* **It never raises.** Every failure is a :class:`~shared.domain.notify.cards.SendResult`
  with ``ok=False``: ``permanent=True`` when retrying cannot help (a refused chat, an invalid
  address, a 4xx, a payload too large, a refused URL), ``permanent=False`` when it may
  (timeouts, connection errors, 429, 5xx, SMTP 4xx). notify's core retries the transient
  ones with backoff; the channels themselves never retry and never sleep.
* **It never blocks longer than ``timeout`` seconds in total.** Every socket operation gets
  at most the time left of the budget, and the whole send runs in a worker thread that the
  caller stops waiting for when the budget is spent (which also bounds DNS lookups and a
  peer that trickles bytes). A send cut short this way is *transient*, and its outcome is
  unknown: the message may still have gone out, so a retry can duplicate it. Email and
  webhook receivers can dedupe on the idempotency key; Telegram has no such key.
  A ``timeout`` that is not a positive number is a transient "no time left".
* **It never logs, and never returns a credential.** ``detail`` is scrubbed of the bot token,
  the SMTP password and the webhook signing key; URLs in ``detail`` are reduced to
  ``scheme://host[:port]`` (webhooks, whose paths often carry secrets) or have the token
  masked (``.../bot***/sendMessage``). ``detail`` is at most 500 characters, one line.
* The idempotency key must be printable ASCII, 1-200 characters (else permanent).

Telegram: ``TelegramChannel(token, base_url="https://api.telegram.org")``
-------------------------------------------------------------------------
Target ``{"chat_id": 123456789}`` (an integer, or its string). Each send first calls the Bot
API's ``getChat`` and refuses (permanent) unless the chat's ``type`` is ``private``: signals
go to one person, never to a group, supergroup or channel. An unknown chat (``400 Bad
Request: chat not found``), a blocked bot (403) or a refused token (401/404) is permanent.
Then ``sendMessage`` (``parse_mode`` HTML: the bold title, a blank line, the card's text, all
HTML-escaped and cut to Telegram's 4,096 characters; link previews off) and, when the card
has an image, ``sendPhoto`` (multipart, the title as caption). 429, 5xx, timeouts and
connection errors are transient; a 429's ``parameters.retry_after`` is reported in ``detail``
(``retry_after=N s``), not slept. ``provider_id`` is the message's ``message_id``. If the
text went out but the photo failed, the result is still ``ok`` (retrying would post the text
twice) and ``detail`` says the photo was not sent.

Email: ``EmailChannel(SmtpSender(...) | SesSender(...))``
---------------------------------------------------------
Target ``{"to": "desk@example.com"}``: one plain ASCII address (no display name, no IDN),
checked before anything is sent (permanent if invalid). The message is
``multipart/alternative`` (the card's text and HTML, both UTF-8, 7-bit transfer encodings);
with an image it is wrapped in ``multipart/mixed`` with the PNG attached as
``payoff.png``. Headers: ``Subject`` (the title), ``From`` (the sender), ``To``, ``Date``,
``Message-ID: <qs-<first 32 hex of sha256(idempotency key)>@<sender's domain>>`` (the same
key always gives the same id, so receiving systems can spot a duplicate),
``X-Quantsentinel-Idempotency-Key: <key>``, ``X-Quantsentinel-Kind`` and
``Auto-Submitted: auto-generated`` (:func:`build_email` builds it). A backend is any
:class:`MailSender`: a ``sender`` address and ``deliver(message, *, to, timeout)`` that
never raises.

* ``SmtpSender(host, port, *, security="starttls"|"ssl"|"none", username=None,
  password=None, sender, tls_context=None)``: smtplib, each command bounded by the time
  left. ``starttls`` requires the server to offer STARTTLS (else permanent: credentials are
  never sent in clear); ``ssl`` is implicit TLS (port 465); ``none`` is for a local relay
  and refuses credentials. Certificates are verified (``tls_context`` for a private CA).
  Reply codes 5xx are permanent, 4xx transient; connection errors, disconnects and
  timeouts transient; an untrusted certificate permanent. ``provider_id`` is the
  ``Message-ID``.
* ``SesSender(region, sender, *, client=None)``: ``send_raw_email`` on a boto3 ``ses``
  client (boto3 imported on first use; without ``client``, one is made per budget with
  botocore's own retries off and its timeouts set to the budget). Throttling, 5xx and
  connection errors are transient; ``MessageRejected`` (unverified identity),
  ``MailFromDomainNotVerified``, other 4xx and missing credentials are permanent.
  ``provider_id`` is SES's ``MessageId``. SES replaces our ``Message-ID`` with its own; the
  ``X-Quantsentinel-Idempotency-Key`` header survives.

Webhooks: ``WebhookChannel(*, signing_key, allow_private=False, resolve=socket.getaddrinfo)``
-------------------------------------------------------------------------------------------
(Optional ``ca_certs``: a PEM bundle instead of certifi's, for a private CA; ``clock``: the
unix time source of ``X-QS-Timestamp``.)
Target ``{"url": "https://hooks.example.com/qs"}``. Refused (permanent): a scheme other than
``http``/``https``, a URL with credentials in it, and a host that resolves to any private,
loopback, link-local, carrier-grade-NAT (100.64/10), multicast, reserved or unspecified
address (IPv4-mapped IPv6 included) unless ``allow_private`` (local tests; refused by the
settings when deployed). The request goes to the address that was checked (the connection
is pinned to it, with the URL's host in ``Host``, TLS SNI and certificate check), so a DNS
answer that changes between check and connect (rebinding) cannot reach an internal host.
Redirects are never followed (a 3xx is permanent).

The request is ``POST`` with ``Content-Type: application/json`` and the UTF-8 JSON body
``{"kind", "title", "text", "data", "dry_run", "idempotency_key", "sent_at"}`` (``sent_at``
ISO 8601 UTC; in ``data`` non-finite floats become ``null``, ``Decimal`` a string,
``datetime``/``date`` ISO strings, ``UUID`` a string; anything else not JSON is permanent).
The image is **not** sent: webhooks stay small and receivers that want a chart draw it from
``data``. A body over 256 kB (262,144 bytes) is permanent ("payload too large"). Headers::

    X-QS-Timestamp: <unix seconds>
    X-QS-Idempotency-Key: <key>
    X-QS-Signature: sha256=<hex HMAC-SHA256(signing_key, f"{timestamp}.".encode() + body)>

2xx is delivered; 408 and 429 are transient (``Retry-After`` seconds reported in
``detail``); other 4xx and 3xx permanent; 5xx, timeouts, connection errors transient; a TLS
certificate that does not verify is permanent.

Receiving a webhook: call :func:`verify_webhook` (``verify_webhook(signing_key, body,
timestamp, signature, *, now, tolerance_s=300) -> bool``; :func:`sign_webhook` computes the
header value) with the raw body bytes (before any JSON
parsing), the ``X-QS-Timestamp`` and ``X-QS-Signature`` headers and the current time. It
checks the signature in constant time and rejects a timestamp more than ``tolerance_s``
(default 300 s) away from ``now``, so a captured request cannot be replayed later. Inside
the window, a replay (and our own retries, which re-sign with a fresh timestamp) carries
the same ``X-QS-Idempotency-Key`` (also in the signed body): receivers must store the keys
they have processed for at least the tolerance window (longer if they want to absorb our
retries) and drop a key they have seen.
"""

from __future__ import annotations

import email.policy
import hashlib
import hmac
import html
import ipaddress
import json
import math
import re
import smtplib
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from shared.domain.notify.cards import Card, SendResult

__all__ = [
    "MAX_WEBHOOK_BYTES",
    "EmailChannel",
    "MailSender",
    "SesSender",
    "SmtpSender",
    "TelegramChannel",
    "WebhookChannel",
    "build_email",
    "sign_webhook",
    "verify_webhook",
]

MAX_WEBHOOK_BYTES = 256 * 1024
MAX_DETAIL = 500
TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024
TELEGRAM_PHOTO_LIMIT = 10 * 1024 * 1024

_KEY = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?$")
_CHAT_ID = re.compile(r"^-?\d{1,20}$")
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]"
    r"(?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT


# --------------------------------------------------------------------------- shared plumbing


class _OutOfTime(Exception):
    """The budget is spent (raised by :meth:`_Deadline.left`)."""


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; raises :class:`_OutOfTime` when none are."""
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise _OutOfTime
        return remaining


def _fail(detail: str, *, permanent: bool) -> SendResult:
    return SendResult(ok=False, permanent=permanent, detail=detail)


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL - 1] + "…"


def _valid_timeout(timeout: Any) -> bool:
    return isinstance(timeout, int | float) and not isinstance(timeout, bool) \
        and math.isfinite(timeout) and timeout > 0


def _bounded(what: str, timeout: float, work: Callable[[_Deadline], SendResult],
             secrets: Iterable[str]) -> SendResult:
    """Run ``work`` in a daemon thread and wait at most ``timeout`` seconds for its result.

    ``work`` gets a deadline a little inside the budget so that its own socket timeouts
    normally fire first (with a precise ``detail``); the join is the hard bound.
    """
    secrets = tuple(secrets)
    box: list[SendResult] = []

    def run() -> None:
        try:
            box.append(work(deadline))
        except _OutOfTime:
            box.append(_fail(f"{what}: timed out (budget {timeout:g} s spent)", permanent=False))
        except Exception as exc:  # noqa: BLE001 - a channel never raises
            box.append(_fail(f"{what}: unexpected {type(exc).__name__}: {exc}", permanent=False))

    margin = min(0.25, timeout * 0.05)
    deadline = _Deadline(timeout - margin)
    worker = threading.Thread(target=run, name=f"qs-notify-{what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not box:
        return _fail(f"{what}: no answer within {timeout:g} s (timed out; the outcome is "
                     "unknown)", permanent=False)
    r = box[0]
    return SendResult(ok=r.ok, permanent=r.permanent, detail=_scrub(r.detail, secrets),
                      provider_id=r.provider_id)


def _precheck(what: str, idempotency_key: Any, timeout: Any) -> SendResult | None:
    if not _valid_timeout(timeout):
        return _fail(f"{what}: no time left (timeout={timeout!r})", permanent=False)
    if not isinstance(idempotency_key, str) or not _KEY.match(idempotency_key):
        return _fail(f"{what}: invalid idempotency key (printable ASCII, 1-200 characters)",
                     permanent=True)
    return None


def _one_line(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --------------------------------------------------------------------------- Telegram


def _escape_within(text: str, budget: int) -> str:
    """``text`` HTML-escaped, cut (between characters, never inside an entity) to ``budget``."""
    out: list[str] = []
    used = 0
    for ch in text:
        piece = html.escape(ch, quote=False)
        if used + len(piece) > budget - 1:
            out.append("…")
            break
        out.append(piece)
        used += len(piece)
    return "".join(out)


class TelegramChannel:
    """Telegram Bot API, private chats only (see the module docstring)."""

    name = "telegram"

    def __init__(self, token: str, *, base_url: str = "https://api.telegram.org") -> None:
        if not token or not isinstance(token, str) or any(c.isspace() or c in "/?#" for c in token):
            raise ValueError("TelegramChannel: the bot token is empty or malformed")
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError("TelegramChannel: base_url must be http(s)")
        self._token = token
        self._base = base_url.rstrip("/")
        self._secrets = tuple({token, quote(token, safe=""), quote(token)})

    def __repr__(self) -> str:
        return f"TelegramChannel(base_url={self._base!r}, token=***)"

    def send(self, target: dict, card: Card, *, idempotency_key: str,
             timeout: float) -> SendResult:
        try:
            early = _precheck(self.name, idempotency_key, timeout)
            if early:
                return early
            chat = target.get("chat_id") if isinstance(target, dict) else None
            if isinstance(chat, bool) or not (
                    isinstance(chat, int) or (isinstance(chat, str) and _CHAT_ID.match(chat))):
                return _fail("telegram: invalid chat_id (an integer chat id is required)",
                             permanent=True)
            chat_id = int(chat)
            return _bounded(self.name, float(timeout),
                            lambda dl: self._send(chat_id, card, dl), self._secrets)
        except Exception as exc:  # noqa: BLE001 - a channel never raises
            return _fail(_scrub(f"telegram: unexpected {type(exc).__name__}: {exc}",
                                self._secrets), permanent=False)

    # -- internals

    def _url(self, method: str) -> str:
        return f"{self._base}/bot{self._token}/{method}"

    def _shown(self, method: str) -> str:
        return f"{self._base}/bot***/{method}"

    def _send(self, chat_id: int, card: Card, dl: _Deadline) -> SendResult:
        import requests

        with requests.Session() as session:
            session.headers["User-Agent"] = "quantsentinel-notify/1.0"
            chat, err = self._call(session, "getChat", {"chat_id": chat_id}, dl)
            if err:
                return err
            ctype = chat.get("type") if isinstance(chat, dict) else None
            if ctype != "private":
                return _fail(f"chat {chat_id} is a {ctype or 'chat of unknown type'}, "
                             "not a private chat", permanent=True)

            text = "<b>" + _escape_within(card.title, 512) + "</b>\n\n"
            text += _escape_within(card.text, TELEGRAM_TEXT_LIMIT - 64 - len(text))
            sent, err = self._call(session, "sendMessage", {
                "chat_id": chat_id, "text": text, "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": True}}, dl)
            if err:
                return err
            message_id = sent.get("message_id") if isinstance(sent, dict) else None
            provider_id = None if message_id is None else str(message_id)
            if not card.image:
                return SendResult(ok=True, provider_id=provider_id, detail="message sent")
            if len(card.image) > TELEGRAM_PHOTO_LIMIT:
                return SendResult(ok=True, provider_id=provider_id,
                                  detail="message sent; photo not sent: larger than 10 MB")
            try:
                caption = "<b>" + _escape_within(card.title, TELEGRAM_CAPTION_LIMIT - 16) + "</b>"
                photo, err = self._call(
                    session, "sendPhoto",
                    {"chat_id": str(chat_id), "caption": caption, "parse_mode": "HTML"}, dl,
                    files={"photo": ("payoff.png", card.image, "image/png")})
            except _OutOfTime:
                err = _fail("sendPhoto: timed out", permanent=False)
            if err:
                return SendResult(ok=True, provider_id=provider_id,
                                  detail=f"message sent; photo not sent: {err.detail}")
            photo_id = photo.get("message_id") if isinstance(photo, dict) else None
            return SendResult(ok=True, provider_id=provider_id,
                              detail=f"message and photo sent (photo message {photo_id})")

    def _call(self, session: Any, method: str, payload: dict, dl: _Deadline, *,
              files: dict | None = None) -> tuple[Any, SendResult | None]:
        """One Bot API call: ``(result, None)`` or ``(None, failure)``."""
        import requests

        left = dl.left()
        try:
            if files:
                resp = session.post(self._url(method), data=payload, files=files,
                                    timeout=(left, left), allow_redirects=False)
            else:
                resp = session.post(self._url(method), json=payload, timeout=(left, left),
                                    allow_redirects=False)
            status = resp.status_code
            body = resp.content
        except requests.Timeout:
            return None, _fail(f"{method}: timed out after {left:.3g} s ({self._shown(method)})",
                               permanent=False)
        except requests.RequestException as exc:
            return None, _fail(f"{method}: connection to {self._shown(method)} failed "
                               f"({type(exc).__name__})", permanent=False)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            doc = {}
        if 200 <= status < 300 and doc.get("ok") is True:
            return doc.get("result"), None

        code = doc.get("error_code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else status
        desc = _one_line(doc.get("description") or f"HTTP {status}", 200)
        params = doc.get("parameters") if isinstance(doc.get("parameters"), dict) else {}
        if code == 429 or status == 429:
            ra = params.get("retry_after") or resp.headers.get("Retry-After")
            hint = f"; retry_after={ra} s" if ra is not None else ""
            return None, _fail(f"{method}: rate limited by Telegram (429){hint}",
                               permanent=False)
        if code >= 500 or status >= 500:
            return None, _fail(f"{method}: Telegram error {code}: {desc}", permanent=False)
        if 300 <= status < 400:
            return None, _fail(f"{method}: unexpected redirect (HTTP {status}) from "
                               f"{self._shown(method)}", permanent=True)
        if 400 <= code < 500:
            what = {401: "bot token refused", 404: "bot token refused or unknown method"}
            return None, _fail(f"{method}: {what.get(code, 'refused by Telegram')} ({code}): "
                               f"{desc}", permanent=True)
        return None, _fail(f"{method}: unexpected answer (HTTP {status}) from "
                           f"{self._shown(method)}", permanent=False)


# --------------------------------------------------------------------------- email

_MAIL_POLICY = email.policy.SMTP.clone(cte_type="7bit")


def _valid_address(address: Any) -> bool:
    if not isinstance(address, str) or len(address) > 254 or not _EMAIL.match(address):
        return False
    return len(address.rpartition("@")[0]) <= 64


def build_email(card: Card, *, sender: str, to: str, idempotency_key: str,
                date_ts: float | None = None) -> EmailMessage:
    """The message :class:`EmailChannel` sends (see the module docstring)."""
    domain = sender.rpartition("@")[2] or "quantsentinel.local"
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    msg = EmailMessage(policy=_MAIL_POLICY)
    msg["Subject"] = _one_line(card.title, 200)
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = formatdate(date_ts, usegmt=True)
    msg["Message-ID"] = f"<qs-{digest}@{domain}>"
    msg["X-Quantsentinel-Idempotency-Key"] = idempotency_key
    msg["X-Quantsentinel-Kind"] = re.sub(r"[^A-Za-z0-9._-]", "_", card.kind)[:64] or "unknown"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(card.text, subtype="plain", charset="utf-8")
    msg.add_alternative(card.html, subtype="html", charset="utf-8")
    if card.image:
        msg.add_attachment(bytes(card.image), maintype="image", subtype="png",
                           filename="payoff.png")
    return msg


class MailSender(Protocol):
    """What :class:`EmailChannel` needs from a backend: the From address and one delivery
    that never raises and takes at most ``timeout`` seconds."""

    sender: str

    def deliver(self, message: EmailMessage, *, to: str, timeout: float) -> SendResult: ...


def _reply(code: int, text: Any, what: str) -> SendResult:
    """An SMTP reply as a failure: 5xx permanent, anything else transient."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return _fail(f"smtp {what}: {code} {_one_line(str(text), 200)}",
                 permanent=500 <= code <= 599)


class SmtpSender:
    """SMTP delivery (see the module docstring)."""

    def __init__(self, host: str, port: int, *, security: str = "starttls",
                 username: str | None = None, password: str | None = None, sender: str,
                 tls_context: ssl.SSLContext | None = None) -> None:
        if security not in ("starttls", "ssl", "none"):
            raise ValueError("SmtpSender: security must be starttls, ssl or none")
        if (username is None) != (password is None):
            raise ValueError("SmtpSender: give both username and password, or neither")
        if username is not None and security == "none":
            raise ValueError("SmtpSender: credentials need TLS (security starttls or ssl)")
        if not _valid_address(sender):
            raise ValueError("SmtpSender: sender is not a valid address")
        self.host, self.port, self.security = host, int(port), security
        self.sender = sender
        self._username, self._password = username, password
        self._tls = tls_context
        self._scrub_values = (password,) if password else ()

    def __repr__(self) -> str:
        return (f"SmtpSender(host={self.host!r}, port={self.port}, security={self.security!r}, "
                f"username={self._username!r}, password={'***' if self._password else None})")

    def deliver(self, message: EmailMessage, *, to: str, timeout: float) -> SendResult:
        dl = _Deadline(timeout)
        smtp: smtplib.SMTP | None = None
        try:
            smtp = self._session(dl)
            if isinstance(smtp, SendResult):
                return smtp
            self._tick(smtp, dl)
            code, resp = smtp.mail(self.sender)
            if code != 250:
                return _reply(code, resp, "MAIL FROM")
            self._tick(smtp, dl)
            code, resp = smtp.rcpt(to)
            if code not in (250, 251):
                return _reply(code, resp, "RCPT TO")
            self._tick(smtp, dl)
            code, resp = smtp.data(message.as_bytes(policy=_MAIL_POLICY))
            if code != 250:
                return _reply(code, resp, "DATA")
            return SendResult(ok=True, provider_id=str(message["Message-ID"]),
                              detail=_one_line(f"smtp: {code} {resp.decode('utf-8', 'replace')}",
                                               200))
        except _OutOfTime:
            return _fail("smtp: timed out", permanent=False)
        except smtplib.SMTPNotSupportedError as exc:
            return _fail(f"smtp: {exc} (server {self.host}:{self.port})", permanent=True)
        except smtplib.SMTPResponseException as exc:
            return _reply(exc.smtp_code, exc.smtp_error, type(exc).__name__)
        except smtplib.SMTPServerDisconnected as exc:  # smtplib's name for a read timeout too
            what = "timed out talking to" if "timed out" in str(exc) else "disconnected:"
            return _fail(f"smtp: {what} {self.host}:{self.port} ({exc})", permanent=False)
        except smtplib.SMTPException as exc:  # e.g. no usable AUTH mechanism
            return _fail(f"smtp: {type(exc).__name__}: {exc}", permanent=True)
        except ssl.SSLCertVerificationError as exc:
            return _fail(f"smtp: TLS certificate of {self.host} not trusted: "
                         f"{exc.verify_message}", permanent=True)
        except TimeoutError:
            return _fail(f"smtp: timed out talking to {self.host}:{self.port}", permanent=False)
        except OSError as exc:
            return _fail(f"smtp: cannot reach {self.host}:{self.port}: "
                         f"{type(exc).__name__}: {exc.strerror or exc}", permanent=False)
        finally:
            if isinstance(smtp, smtplib.SMTP):
                self._close(smtp, dl)

    def _session(self, dl: _Deadline) -> smtplib.SMTP | SendResult:
        context = self._tls or ssl.create_default_context()
        if self.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=dl.left(),
                                                  context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=dl.left())
        try:
            self._tick(smtp, dl)
            smtp.ehlo_or_helo_if_needed()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    self._close(smtp, dl)
                    return _fail(f"smtp: {self.host}:{self.port} does not offer STARTTLS",
                                 permanent=True)
                self._tick(smtp, dl)
                code, resp = smtp.starttls(context=context)
                if code != 220:  # pragma: no cover - smtplib raises on a refused STARTTLS
                    self._close(smtp, dl)
                    return _reply(code, resp, "STARTTLS")
                self._tick(smtp, dl)
                smtp.ehlo()
            if self._username is not None and self._password is not None:
                self._tick(smtp, dl)
                smtp.login(self._username, self._password)
        except BaseException:
            self._close(smtp, dl)
            raise
        return smtp

    @staticmethod
    def _tick(smtp: smtplib.SMTP, dl: _Deadline) -> None:
        if smtp.sock is not None:
            smtp.sock.settimeout(dl.left())

    @staticmethod
    def _close(smtp: smtplib.SMTP, dl: _Deadline) -> None:
        try:
            if smtp.sock is not None:
                smtp.sock.settimeout(max(0.01, min(1.0, dl.end - time.monotonic())))
                smtp.quit()
        except Exception:  # noqa: BLE001, S110 - politeness only
            pass
        finally:
            smtp.close()


_SES_TRANSIENT = frozenset({
    "Throttling", "ThrottlingException", "TooManyRequestsException", "ServiceUnavailable",
    "ServiceUnavailableException", "InternalFailure", "InternalError", "RequestTimeout",
    "RequestTimeoutException"})


class SesSender:
    """Amazon SES delivery through ``send_raw_email`` (see the module docstring)."""

    def __init__(self, region: str, sender: str, *, client: Any = None) -> None:
        if not _valid_address(sender):
            raise ValueError("SesSender: sender is not a valid address")
        self.region = region
        self.sender = sender
        self._client = client
        self._clients: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._scrub_values: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"SesSender(region={self.region!r}, sender={self.sender!r})"

    def _client_for(self, timeout: float) -> Any:
        if self._client is not None:
            return self._client
        seconds = max(1, math.ceil(timeout))
        with self._lock:
            client = self._clients.get(seconds)
            if client is None:
                import boto3
                from botocore.config import Config

                if len(self._clients) >= 8:
                    self._clients.clear()
                client = boto3.session.Session().client(
                    "ses", region_name=self.region,
                    config=Config(connect_timeout=seconds, read_timeout=seconds,
                                  retries={"total_max_attempts": 1, "mode": "standard"}))
                self._clients[seconds] = client
            return client

    def deliver(self, message: EmailMessage, *, to: str, timeout: float) -> SendResult:
        try:
            from botocore.exceptions import (
                BotoCoreError,
                ClientError,
                NoCredentialsError,
                NoRegionError,
                ParamValidationError,
                PartialCredentialsError,
            )
        except ImportError:  # pragma: no cover - boto3 is a dependency
            return _fail("ses: boto3 is not installed", permanent=True)
        try:
            client = self._client_for(timeout)
            answer = client.send_raw_email(Source=self.sender, Destinations=[to],
                                           RawMessage={"Data": message.as_bytes(
                                               policy=_MAIL_POLICY)})
            message_id = answer.get("MessageId") if isinstance(answer, dict) else None
            return SendResult(ok=True, provider_id=message_id, detail="ses: accepted")
        except ClientError as exc:
            err = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
            code = str(err.get("Code", "Unknown"))
            status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
            transient = code in _SES_TRANSIENT or status >= 500 or status == 429
            return _fail(f"ses: {code}: {_one_line(err.get('Message', ''), 200)}",
                         permanent=not transient)
        except (NoCredentialsError, PartialCredentialsError, NoRegionError,
                ParamValidationError) as exc:
            return _fail(f"ses: {type(exc).__name__}: {exc}", permanent=True)
        except BotoCoreError as exc:  # connect/read timeouts, endpoint unreachable
            return _fail(f"ses: {type(exc).__name__}: {exc}", permanent=False)


class EmailChannel:
    """Email through an SMTP or SES :class:`MailSender` (see the module docstring)."""

    name = "email"

    def __init__(self, sender: MailSender) -> None:
        self._sender = sender

    def __repr__(self) -> str:
        return f"EmailChannel({self._sender!r})"

    def send(self, target: dict, card: Card, *, idempotency_key: str,
             timeout: float) -> SendResult:
        secrets: tuple[str, ...] = tuple(getattr(self._sender, "_scrub_values", ()))
        try:
            early = _precheck(self.name, idempotency_key, timeout)
            if early:
                return early
            to = target.get("to") if isinstance(target, dict) else None
            if not _valid_address(to):
                return _fail("email: invalid recipient address", permanent=True)
            try:
                message = build_email(card, sender=self._sender.sender, to=to,
                                      idempotency_key=idempotency_key)
            except (ValueError, TypeError) as exc:
                return _fail(f"email: cannot build the message: {exc}", permanent=True)
            return _bounded(self.name, float(timeout),
                            lambda dl: self._sender.deliver(message, to=to, timeout=dl.left()),
                            secrets)
        except Exception as exc:  # noqa: BLE001 - a channel never raises
            return _fail(_scrub(f"email: unexpected {type(exc).__name__}: {exc}", secrets),
                         permanent=False)


# --------------------------------------------------------------------------- webhooks


def sign_webhook(signing_key: str, body: bytes, timestamp: str | int) -> str:
    """``sha256=<hex HMAC-SHA256 over f"{timestamp}.".encode() + body>``."""
    mac = hmac.new(signing_key.encode(), f"{timestamp}.".encode() + bytes(body),
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(signing_key: str, body: bytes, timestamp: str, signature: str, *,
                   now: float, tolerance_s: int = 300) -> bool:
    """Whether a received webhook is ours and fresh (see the module docstring). Pure, never
    raises: a malformed header is simply ``False``."""
    try:
        if not signing_key or not isinstance(body, bytes | bytearray):
            return False
        ts = str(timestamp).strip()
        if not re.fullmatch(r"\d{1,12}", ts) or not math.isfinite(now):
            return False
        if abs(now - int(ts)) > tolerance_s:
            return False
        expected = sign_webhook(signing_key, bytes(body), ts).encode()
        return hmac.compare_digest(expected, str(signature).strip().encode("utf-8"))
    except Exception:  # noqa: BLE001 - verification answers, it does not raise
        return False


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
            or ip.is_multicast or ip.is_unspecified or not ip.is_global
            or (ip.version == 4 and ip in _SHARED))


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


class WebhookChannel:
    """Signed JSON webhooks (see the module docstring).

    ``ca_certs`` (a PEM file) replaces the certifi bundle for HTTPS (a private CA, tests);
    ``clock`` gives the unix time of ``X-QS-Timestamp`` (tests).
    """

    name = "webhook"

    def __init__(self, *, signing_key: str, allow_private: bool = False,
                 resolve: Callable[..., Any] = socket.getaddrinfo,
                 ca_certs: str | None = None, clock: Callable[[], float] = time.time) -> None:
        if not signing_key or not isinstance(signing_key, str):
            raise ValueError("WebhookChannel: a signing key is required")
        self._key = signing_key
        self._allow_private = allow_private
        self._resolve = resolve
        self._ca_certs = ca_certs
        self._clock = clock

    def __repr__(self) -> str:
        return f"WebhookChannel(allow_private={self._allow_private}, signing_key=***)"

    def send(self, target: dict, card: Card, *, idempotency_key: str,
             timeout: float) -> SendResult:
        secrets = (self._key,)
        try:
            early = _precheck(self.name, idempotency_key, timeout)
            if early:
                return early
            url = target.get("url") if isinstance(target, dict) else None
            parsed = self._parse(url)
            if isinstance(parsed, SendResult):
                return parsed
            scheme, host, port, path, netloc = parsed
            shown = f"{scheme}://{netloc}"
            ts = int(self._clock())
            try:
                body = json.dumps({
                    "kind": card.kind, "title": card.title, "text": card.text,
                    "data": _jsonable(card.data), "dry_run": bool(card.dry_run),
                    "idempotency_key": idempotency_key,
                    "sent_at": datetime.fromtimestamp(ts, UTC).isoformat(),
                }, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            except (TypeError, ValueError) as exc:
                return _fail(f"webhook: card data is not JSON: {exc}", permanent=True)
            if len(body) > MAX_WEBHOOK_BYTES:
                return _fail(f"webhook: payload too large ({len(body)} bytes > "
                             f"{MAX_WEBHOOK_BYTES})", permanent=True)
            headers = {
                "Host": netloc,
                "Content-Type": "application/json",
                "User-Agent": "quantsentinel-webhook/1.0",
                "X-QS-Timestamp": str(ts),
                "X-QS-Idempotency-Key": idempotency_key,
                "X-QS-Signature": sign_webhook(self._key, body, ts),
            }
            return _bounded(self.name, float(timeout),
                            lambda dl: self._post(scheme, host, port, path, shown, headers,
                                                  body, dl), secrets)
        except Exception as exc:  # noqa: BLE001 - a channel never raises
            return _fail(_scrub(f"webhook: unexpected {type(exc).__name__}: {exc}", secrets),
                         permanent=False)

    @staticmethod
    def _parse(url: Any) -> tuple[str, str, int, str, str] | SendResult:
        if not isinstance(url, str) or not url or len(url) > 2048 \
                or any(c.isspace() or ord(c) < 32 for c in url):
            return _fail("webhook: the target has no valid url", permanent=True)
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return _fail("webhook: the url does not parse", permanent=True)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            return _fail(f"webhook: refused a {scheme or 'scheme-less'} URL (http or https "
                         "only)", permanent=True)
        if parts.username is not None or parts.password is not None:
            return _fail("webhook: refused a URL with credentials in it (receivers check "
                         "the signature instead)", permanent=True)
        host = (parts.hostname or "").lower()
        if not host:
            return _fail("webhook: the url has no host", permanent=True)
        port = port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return scheme, host, port, path, parts.netloc.rpartition("@")[2]

    def _pick_address(self, host: str, port: int, shown: str) -> str | SendResult:
        try:
            infos = self._resolve(host, port)
        except socket.gaierror as exc:
            gone = exc.errno in {getattr(socket, n, None) for n in ("EAI_NONAME", "EAI_NODATA")}
            return _fail(f"webhook: {shown} does not resolve ({exc.strerror or exc})",
                         permanent=gone)
        except OSError as exc:
            return _fail(f"webhook: resolving {shown} failed ({exc})", permanent=False)
        addresses: list[str] = []
        for info in infos:
            if info[0] in (socket.AF_INET, socket.AF_INET6):
                address = str(info[4][0]).split("%", 1)[0]
                if address not in addresses:
                    addresses.append(address)
        if not addresses:
            return _fail(f"webhook: {shown} resolves to no address", permanent=True)
        if not self._allow_private:
            internal = sorted(a for a in addresses if _internal(a))
            if internal:
                return _fail(f"webhook: refused {shown}: resolves to private/internal "
                             f"address(es) {internal}", permanent=True)
        return addresses[0]

    def _post(self, scheme: str, host: str, port: int, path: str, shown: str,
              headers: dict[str, str], body: bytes, dl: _Deadline) -> SendResult:
        import urllib3
        from urllib3.exceptions import (
            HTTPError,
            NewConnectionError,
            ProtocolError,
            SSLError,
        )
        from urllib3.exceptions import TimeoutError as Urllib3Timeout

        address = self._pick_address(host, port, shown)
        if isinstance(address, SendResult):
            return address
        left = dl.left()
        timeout = urllib3.Timeout(connect=left, read=left)
        pool: urllib3.HTTPConnectionPool
        if scheme == "https":
            import certifi

            pool = urllib3.HTTPSConnectionPool(
                address, port, timeout=timeout, retries=False, maxsize=1,
                cert_reqs="CERT_REQUIRED", ca_certs=self._ca_certs or certifi.where(),
                server_hostname=host, assert_hostname=host)
        else:
            pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False,
                                              maxsize=1)
        try:
            resp = pool.urlopen("POST", path, body=body, headers=headers, redirect=False,
                                retries=False, preload_content=False, assert_same_host=False)
            try:
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
            finally:
                resp.release_conn()
        except SSLError as exc:
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "match" in text.lower():
                return _fail(f"webhook: TLS certificate of {shown} not trusted", permanent=True)
            return _fail(f"webhook: TLS failure with {shown}", permanent=False)
        except NewConnectionError:
            return _fail(f"webhook: cannot connect to {shown}", permanent=False)
        except Urllib3Timeout:
            return _fail(f"webhook: timed out after {left:.3g} s ({shown})", permanent=False)
        except (ProtocolError, HTTPError, OSError) as exc:
            return _fail(f"webhook: connection to {shown} failed ({type(exc).__name__})",
                         permanent=False)
        finally:
            pool.close()

        if 200 <= status < 300:
            return SendResult(ok=True, detail=f"webhook: HTTP {status} from {shown}")
        if status in (408, 429):
            hint = f"; retry_after={retry_after} s" if retry_after and retry_after.isdigit() \
                else ""
            return _fail(f"webhook: HTTP {status} from {shown}{hint}", permanent=False)
        if 300 <= status < 400:
            return _fail(f"webhook: HTTP {status} from {shown} (redirects are not followed)",
                         permanent=True)
        if 400 <= status < 500:
            return _fail(f"webhook: HTTP {status} from {shown}", permanent=True)
        return _fail(f"webhook: HTTP {status} from {shown}", permanent=False)
