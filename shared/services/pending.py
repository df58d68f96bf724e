"""Services whose issue has not landed yet.

The entry points, subscriptions and schedules exist from the foundation on, so the local
cloud and terraform have their final shape; until a function's own issue lands, its events
are rejected (acked, recorded, dead-lettered) with a clear reason instead of being silently
accepted or retried forever. (Only notify, issue #8, is still pending.)
"""

from __future__ import annotations

from collections.abc import Callable

from shared.contracts import Message
from shared.errors import NotBuiltYet
from shared.runtime import EventContext, Outcome, Runtime


def pending_event_service(function: str, issue: int) -> Callable[[Runtime], Callable[[Message, EventContext], Outcome]]:
    def build(_: Runtime) -> Callable[[Message, EventContext], Outcome]:
        def handle(message: Message, ctx: EventContext) -> Outcome:
            raise NotBuiltYet(f"{function} does not process {ctx.topic} yet (issue #{issue})")

        return handle

    return build
