"""moto's SQS queue made safe for the emulator's concurrent requests (:class:`devtools.emulator.LocalAws`)."""

from __future__ import annotations

import functools
from typing import Any

_queues_safe = False


def make_queues_thread_safe() -> None:
    """moto 5.2.5's SQS queue under the server's concurrent requests (one thread per connection; issue 21).

    ``Queue.pending_message_groups``, which every ``ReceiveMessage`` reads, iterates the set of in-flight
    messages that other threads' receives and deletes change: ``RuntimeError: Set changed size during
    iteration`` broke off a receive in a fan-out run at N = 1,000. It iterates a copy (``set.copy`` runs in
    C, under the GIL). ``Queue.delete_message`` rebuilds the message list and assigns it back: two at once
    kept one of the two lists (a deleted message came back) and a message sent meanwhile could be lost.
    It holds the queue's own lock, the one ``add_message`` appends under (a condition whose long-poll wait
    releases it)."""
    global _queues_safe
    if _queues_safe:
        return
    from moto.sqs.models import Queue

    def pending_message_groups(self: Any) -> set[str]:
        return {m.group_id for m in self._pending_messages.copy() if m.group_id is not None}

    delete = Queue.delete_message

    @functools.wraps(delete)
    def delete_message(self: Any, receipt_handle: str) -> None:
        with self._messages_lock:
            delete(self, receipt_handle)

    Queue.pending_message_groups = property(pending_message_groups)  # type: ignore[method-assign,assignment]
    Queue.delete_message = delete_message  # type: ignore[method-assign]
    _queues_safe = True
