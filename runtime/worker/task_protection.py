"""ECS task scale-in protection while messages are in flight, through the ECS agent's endpoint.

Why: the processor service scales in on queue depth; without protection a scale-in (or a deployment)
stops a task in the middle of a long send, and the drain has only the stop timeout (120 s) to end it.
A protected task is not chosen by scale-in or deployments; the worker protects its task when the first
message becomes in flight, renews the protection while it stays busy and releases it once it has been
idle for :data:`~runtime.contract.thresholds.TASK_PROTECTION_IDLE_SECONDS` (so it does not flap). The
protection carries an expiry (``ExpiresInMinutes``,
:data:`~runtime.contract.thresholds.TASK_PROTECTION_EXPIRES_MINUTES`): a worker that dies protected frees
its task within that.

The endpoint (AWS docs, "Amazon ECS task scale-in protection endpoint"): ``PUT
$ECS_AGENT_URI/task-protection/v1/state`` with ``{"ProtectionEnabled": bool, "ExpiresInMinutes": n}``
(1 to 2,880 minutes; 120 when absent); the agent calls ``UpdateTaskProtection`` for the task, which the
task role must allow. ECS injects ``ECS_AGENT_URI`` (so does the local runner, whose
``devtools/task_agent.py`` decides each call as the task role); without it (unit tests, a process run by
hand) there is nothing to protect and every call is a no-op. A failed call is logged and never stops processing:
protection only narrows a window, the drain and the message fate stay what keeps work safe.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

from runtime.contract.thresholds import TASK_PROTECTION_EXPIRES_MINUTES, TASK_PROTECTION_IDLE_SECONDS
from runtime.telemetry import logger

AGENT_URI_VARIABLE = "ECS_AGENT_URI"
"""Injected by the ECS agent into every container of a task (Fargate platform 1.4+)."""
STATE_PATH = "/task-protection/v1/state"
REQUEST_TIMEOUT_SECONDS = 3.0
"""The agent is local to the task: an answer takes milliseconds, and the receive loop waits for it."""
FAILURE_BACKOFF_SECONDS = 30.0
"""After a failed call, the next try waits this long (one warning per try, not one per loop iteration)."""
MAX_EXPIRES_IN_MINUTES = 2880
"""The endpoint's maximum (48 hours)."""


class TaskProtectionError(Exception):
    """The agent refused or could not be reached; the message says which."""


class TaskProtectionClient:
    """The agent's task-protection endpoint, nothing else of its API."""

    def __init__(self, agent_uri: str, *, timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.url = agent_uri.rstrip("/") + STATE_PATH
        self.timeout = timeout

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> TaskProtectionClient | None:
        """The client of this task's agent, or None outside ECS (no ``ECS_AGENT_URI``)."""
        uri = (os.environ if environ is None else environ).get(AGENT_URI_VARIABLE, "").strip()
        return cls(uri) if uri else None

    def set_protection(self, enabled: bool, expires_in_minutes: int) -> None:
        """PUT the protection state; raises :class:`TaskProtectionError` on any failure."""
        body: dict[str, object] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = expires_in_minutes
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), method="PUT", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = response.read()
        except urllib.error.HTTPError as exc:
            raise TaskProtectionError(f"agent answered HTTP {exc.code}: {exc.read()[:300]!r}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise TaskProtectionError(f"agent unreachable at {self.url}: {exc}") from exc
        try:
            document = json.loads(answer or b"{}")
        except ValueError:
            return  # a 2xx without JSON: nothing says it failed
        if isinstance(document, dict) and (document.get("failure") or document.get("error")):
            raise TaskProtectionError(f"agent refused: {document.get('failure') or document.get('error')}")


class ScaleInProtection:
    """When to call the agent: protect on busy, renew while busy, release after a quiet spell.

    The worker calls :meth:`update` on every loop iteration (and before it starts a message);
    :meth:`release` when it stops. With ``client=None`` (outside ECS) it never calls anything.
    """

    def __init__(
        self,
        client: TaskProtectionClient | None,
        *,
        expires_in_minutes: int = TASK_PROTECTION_EXPIRES_MINUTES,
        idle_seconds: float = TASK_PROTECTION_IDLE_SECONDS,
        renew_after_seconds: float | None = None,
        failure_backoff_seconds: float = FAILURE_BACKOFF_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= expires_in_minutes <= MAX_EXPIRES_IN_MINUTES:
            raise ValueError(
                f"expires_in_minutes={expires_in_minutes}: the ECS agent takes 1 to {MAX_EXPIRES_IN_MINUTES} minutes"
            )
        self.client = client
        self.expires_in_minutes = expires_in_minutes
        self.idle_seconds = idle_seconds
        # half the expiry: one missed renewal (the agent briefly away) still leaves the task protected
        self.renew_after_seconds = renew_after_seconds if renew_after_seconds is not None else expires_in_minutes * 30
        self.failure_backoff_seconds = failure_backoff_seconds
        self.clock = clock
        self.protected = False
        self._protected_at = 0.0
        self._idle_since: float | None = None
        self._next_try_at = 0.0

    def update(self, *, busy: bool) -> None:
        if self.client is None:
            return
        now = self.clock()
        if busy:
            self._idle_since = None
            if not self.protected or now - self._protected_at >= self.renew_after_seconds:
                self._set(True, now)
        elif self.protected:
            if self._idle_since is None:
                self._idle_since = now
            if now - self._idle_since >= self.idle_seconds:
                self._set(False, now)

    def release(self) -> None:
        """Unprotect now (the worker has stopped): a stopping task has nothing left to protect."""
        if self.client is not None and self.protected:
            self._next_try_at = 0.0
            self._set(False, self.clock())

    def _set(self, enabled: bool, now: float) -> None:
        assert self.client is not None
        if now < self._next_try_at:
            return
        try:
            self.client.set_protection(enabled, self.expires_in_minutes)
        except Exception as exc:  # protection narrows a window; it must never stop the work
            self._next_try_at = now + self.failure_backoff_seconds
            logger.warning(
                "task scale-in protection call failed; processing goes on",
                extra={"protection_enabled": enabled, "error": str(exc)},
            )
            return
        self.protected = enabled
        self._protected_at = now if enabled else 0.0
        self._idle_since = None
        logger.info(
            "task scale-in protection " + ("set" if enabled else "released"),
            extra={"expires_in_minutes": self.expires_in_minutes if enabled else None},
        )
