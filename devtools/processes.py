"""What every child process the devtools start has in common: it ends when the process that started it dies."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def terminate_with(parent: int) -> Callable[[], None] | None:
    """For ``Popen(preexec_fn=…)``: the child gets SIGTERM (and drains) when its parent dies, even by
    SIGKILL or by a Ctrl-C that lands before the parent armed its own cleanup; otherwise a worker would retry
    a dead emulator forever, or a policy engine outlive its user. Linux only (``prctl(PR_SET_PDEATHSIG)``)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGTERM)

    return arm
