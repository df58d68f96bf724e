"""The values notify's core and its channels pass around."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Card", "SendResult"]


@dataclass(frozen=True, slots=True)
class Card:
    """One rendered notification, ready for any channel.

    Attributes
    ----------
    kind
        What it is about: ``signal.approved``, ``signal.blocked``, ``killswitch.tripped``,
        ``killswitch.reset``, ``model.promoted``, ``model.rejected``, ``notify.dead``.
    title
        One line (an email subject, the first line of a chat message).
    text
        Plain text (Telegram, the email's text part, the webhook's ``text``).
    html
        The email's HTML part.
    data
        The structured content for webhooks (JSON-serialisable).
    image
        A PNG (the payoff diagram of a signal), or None.
    dry_run
        The tenant is in the paper-trading lock: every rendering says so.
    """

    kind: str
    title: str
    text: str
    html: str
    data: dict
    image: bytes | None = None
    dry_run: bool = True


@dataclass(frozen=True, slots=True)
class SendResult:
    """A channel's answer: ``ok``; else ``permanent`` (retrying cannot help: a refused
    chat, a 4xx) or not (retry with backoff); ``detail`` never holds a credential."""

    ok: bool
    permanent: bool = False
    detail: str = ""
    provider_id: str | None = None
