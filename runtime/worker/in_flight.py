"""The messages a worker is working on: the in-flight registry, the visibility heartbeat, and the
return of a message to the queue.

The heartbeat extends the visibility of every in-flight message (in batches of SQS's maximum), so
slow work is never handed to a second consumer; a refused extension is logged, since that message may
be delivered again. A message leaves the registry only when its work has ended (its handler settles
it): nothing here ever makes a message visible while its work still runs.

After a drain's time is up the worker calls :meth:`InFlight.shorten`: the work still running keeps
its messages invisible with short, frequent extensions, so that if the task is killed before that
work ends (SIGKILL at the ECS stop timeout) its messages come back within seconds, as soon as a
returned message would have.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from runtime.contract.sqs_limits import MAX_BATCH_SIZE
from runtime.telemetry import logger


@dataclass
class InFlightMessage:
    message_id: str
    receipt_handle: str
    received_at: float = field(default_factory=time.monotonic)


class InFlight:
    """Thread-safe registry of in-flight messages of one queue, and their visibility."""

    def __init__(self, sqs: Any, queue_url: str, *, visibility_timeout: int, heartbeat_seconds: float) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self.visibility_timeout = visibility_timeout
        self.heartbeat_seconds = heartbeat_seconds
        self._messages: dict[str, InFlightMessage] = {}
        self._lock = threading.Lock()
        self._extending = threading.Lock()
        """Held for a whole heartbeat round: :meth:`remove` waits for it, so no extension is still on
        its way for a message once it is removed (and then settled)."""
        self._wake = threading.Event()
        self._stopped = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def add(self, message_id: str, receipt_handle: str) -> None:
        with self._lock:
            self._messages[message_id] = InFlightMessage(message_id, receipt_handle)

    def remove(self, message_id: str) -> None:
        """Forget the message; returns only once no heartbeat extension of it can still land, so the
        caller may then settle it (delete it, or make it visible) without a late extension hiding it
        again for a whole visibility timeout."""
        with self._extending, self._lock:
            self._messages.pop(message_id, None)

    def snapshot(self) -> list[InFlightMessage]:
        with self._lock:
            return list(self._messages.values())

    def return_to_queue(self, receipt_handle: str, delay: int) -> None:
        """Make the message visible again after ``delay`` seconds (0: at once)."""
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=delay
            )
        except Exception as exc:
            logger.warning("could not change message visibility", extra={"error": str(exc)})

    def shorten(self, visibility_timeout: int, heartbeat_seconds: float) -> None:
        """From now on extend visibility by ``visibility_timeout`` every ``heartbeat_seconds``, starting
        at once: the last extension may keep a message hidden for a whole (long) visibility timeout."""
        with self._lock:
            self.visibility_timeout = visibility_timeout
            self.heartbeat_seconds = heartbeat_seconds
        self._wake.set()

    def heartbeat_loop(self) -> None:
        """Extend the visibility of every in-flight message until :meth:`stop_heartbeat`."""
        while True:
            with self._lock:
                every = self.heartbeat_seconds
            self._wake.wait(every)
            self._wake.clear()
            if self._stopped:
                return
            self.extend_visibility()

    def stop_heartbeat(self) -> None:
        self._stopped = True
        self._wake.set()

    def extend_visibility(self) -> None:
        with self._extending:
            self._extend_visibility()

    def _extend_visibility(self) -> None:
        with self._lock:
            items, visibility = list(self._messages.values()), self.visibility_timeout
        for start in range(0, len(items), MAX_BATCH_SIZE):
            chunk = items[start : start + MAX_BATCH_SIZE]
            entries = [
                {"Id": str(i), "ReceiptHandle": it.receipt_handle, "VisibilityTimeout": visibility}
                for i, it in enumerate(chunk)
            ]
            try:
                response = self._sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as exc:
                logger.warning("visibility heartbeat failed", extra={"error": str(exc)})
                continue
            for failed in response.get("Failed", []):
                item = chunk[int(failed["Id"])]
                logger.warning(
                    "visibility heartbeat refused; the message may be delivered again",
                    extra={
                        "message_id": item.message_id,
                        "error": f"{failed.get('Code')}: {failed.get('Message')}",
                    },
                )
