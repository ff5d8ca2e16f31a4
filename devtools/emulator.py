"""An embedded AWS emulator (moto's server) on a loopback port, for the demo, tests and benchmarks.

moto checks S3's ``If-Match`` / ``If-None-Match`` preconditions and then writes in two separate steps;
real S3 does both atomically. Under concurrent writers that gap would lose updates that S3 never
loses, so :func:`make_conditional_writes_atomic` serialises moto's object writes and deletes — the
emulator then has S3's compare-and-swap semantics, which is what the pipeline relies on. Reads are
serialised too: moto closes an overwritten object's buffer, which a concurrent GET may still be reading.
The same patch gives moto's object answers the ``Date`` header real S3 sends (the storage clock).
:func:`devtools.emulator_queues.make_queues_thread_safe` closes two races of moto's SQS queue between
the server's threads.

:func:`speed_up_moto` removes three costs moto pays on every request, which made the emulator, not the
code under test, the bottleneck of the benchmarks (issue 21): the server's dispatcher lists moto's
package directory (a ``listdir`` and ~180 ``stat`` calls) under its global lock to route each request;
SQS's ``SendMessage`` (S3's notifications send one per event, under the S3 lock above) builds every
queue attribute just to read ``ContentBasedDeduplication``, which counts the queue's messages by
asking each for the clock; and moto reads the clock by building naive datetimes (``utcnow`` minus
``utcfromtimestamp(0)``) instead of ``time.time()``. A second profile (``TTP_EMULATOR_PROFILE``) found
three more: a named ``GetQueueAttributes`` (and ``ReceiveMessage``'s retention check, once per message
it returns) built every attribute, message counts included, three times; action and attribute names
were converted to snake case character by character on every request (now cached, as are a response
class's method names); and request ids drew their 52 characters one ``choice()`` at a time.

The server keeps its connections (:mod:`devtools.emulator_http`: werkzeug's closed each after one answer)
and :mod:`devtools.emulator_speedups` drops more per-request work (routing, Flask's debug helper,
random identifiers, header parsing), answers unchanged (issue 21, fourth round).

:meth:`LocalAws.settle` waits until every request that reached the server before the call has been
answered: a test that SIGKILLs a client can then read what the client's last requests did (a request
already on the wire when its client died is still served).
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devtools.enforcement import Enforcement

_LOCK = threading.RLock()
PROFILE_VARIABLE = "TTP_EMULATOR_PROFILE"
"""``python -m devtools.emulator`` writes a cProfile of the requests it served to this path when it stops
(``python -m pstats PATH``): how its hot spots are found under a benchmark's load."""
_patched = False

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def _with_date(answer: Any) -> Any:
    """Give an object answer the ``Date`` header real S3 sends (moto omits it in process): the pipeline's
    storage clock (runtime.archive.processing_store) reads it. Behind moto's HTTP server werkzeug adds a
    second one, which botocore joins to the first ("d GMT, d GMT"); the storage clock reads that as GMT."""
    if isinstance(answer, tuple) and len(answer) == 3 and isinstance(answer[1], dict):
        answer[1].setdefault("date", formatdate(usegmt=True))
    return answer


def make_conditional_writes_atomic() -> None:
    global _patched
    if _patched:
        return
    from moto.s3.responses import S3Response

    for name in ("key_response", "put_object", "delete_object", "_key_response_put"):
        original = getattr(S3Response, name)

        @functools.wraps(original)
        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _LOCK:
                return _with_date(__original(self, *args, **kwargs))

        setattr(S3Response, name, locked)
    _patched = True


_sped_up = False
_EPOCH = datetime.datetime(1970, 1, 1)
_wanted_attributes = threading.local()


def _unix_time(dt: datetime.datetime | None = None) -> float:
    """moto's ``unix_time`` (seconds since the epoch of a naive UTC datetime; now without one)."""
    if dt is None:
        return time.time()
    delta = dt - _EPOCH
    return (delta.days * 86400) + (delta.seconds + (delta.microseconds / 1e6))


def _unix_time_millis(dt: datetime.datetime | None = None) -> float:
    return _unix_time(dt) * 1000.0


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _utcfromtimestamp(value: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(value, datetime.UTC).replace(tzinfo=None)


_CLOCKS = {
    "unix_time": _unix_time,
    "unix_time_millis": _unix_time_millis,
    "utcnow": _utcnow,
    "utcfromtimestamp": _utcfromtimestamp,
}


def _queue_attributes(queue: Any, wanted: frozenset[str]) -> dict[str, Any]:
    """moto 5.2.5's ``Queue.attributes`` restricted to ``wanted``: the same values, computed only for those
    names (the message counts scan the whole queue, asking every message for the clock)."""
    from moto.core.utils import camelcase_to_underscores

    names = [*queue.BASE_ATTRIBUTES]
    if queue.fifo_queue:
        names += queue.FIFO_ATTRIBUTES
    if queue.kms_master_key_id:
        names += queue.KMS_ATTRIBUTES
    result = {name: getattr(queue, camelcase_to_underscores(name)) for name in names if name in wanted}
    if queue.policy and "Policy" in wanted:
        result["Policy"] = queue.policy
    if queue.redrive_policy and "RedrivePolicy" in wanted:
        result["RedrivePolicy"] = json.dumps(queue.redrive_policy)
    return {key: str(value).lower() if isinstance(value, bool) else value for key, value in result.items()}


def _asking_for(names: frozenset[str] | None, original: Any) -> Any:
    """``original`` (an SQS backend method) with ``Queue.attributes`` computing only ``names`` (from the
    call's attribute names when ``None``) for as long as it runs."""

    @functools.wraps(original)
    def restricted(self: Any, *args: Any, **kwargs: Any) -> Any:
        wanted = names
        if wanted is None:
            asked = kwargs["attribute_names"] if "attribute_names" in kwargs else args[1]
            wanted = None if not asked or "All" in asked else frozenset(asked)
        outer = getattr(_wanted_attributes, "names", None)
        _wanted_attributes.names = wanted if outer is None else outer
        try:
            return original(self, *args, **kwargs)
        finally:
            _wanted_attributes.names = outer

    return restricted


def _rebind(originals: dict[str, Any], fast: dict[str, Any]) -> None:
    """Point every loaded moto module's name for each original function at its fast version (modules
    imported later take them from ``moto.core.utils``, which is patched too)."""
    import sys

    for module in [m for name, m in list(sys.modules.items()) if name.startswith("moto") and m is not None]:
        for name, function in fast.items():
            if getattr(module, name, None) is originals[name]:
                setattr(module, name, function)


def speed_up_moto() -> None:
    """Same answers, less work per request (module docstring). Idempotent; call before serving."""
    global _sped_up
    if _sped_up:
        return
    from moto import backends
    from moto.core import utils
    from moto.moto_api._internal.moto_random import MotoRandom
    from moto.sqs.models import Queue, SQSBackend

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # the installed package does not change while serving

    _rebind({name: getattr(utils, name) for name in _CLOCKS}, _CLOCKS)
    # pure functions of their argument, recomputed on every request: a name (an action, an attribute),
    # and a response class's methods (the classes are complete, patches included, before serving)
    pure = {name: getattr(utils, name) for name in ("camelcase_to_underscores", "method_names_from_class")}
    _rebind(pure, {name: functools.lru_cache(maxsize=4096)(function) for name, function in pure.items()})

    def get_random_string(self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False) -> str:
        # moto draws each of a request id's 52 characters with its own choice() call; choices() draws the same
        # distribution over the same alphabet from the same (seedable) generator in one call
        pool = string.ascii_letters + (string.digits if include_digits else "")
        drawn = "".join(self.choices(pool, k=length))
        return drawn.lower() if lower_case else drawn

    MotoRandom.get_random_string = get_random_string  # type: ignore[method-assign]

    all_attributes: Any = vars(Queue)["attributes"].fget

    def attributes(self: Any) -> dict[str, Any]:
        wanted = getattr(_wanted_attributes, "names", None)
        if wanted is None:
            full: dict[str, Any] = all_attributes(self)
            return full
        return _queue_attributes(self, wanted)

    from devtools.emulator_speedups import speed_up_requests

    speed_up_requests()
    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]
    # SendMessage (and its validation) reads ContentBasedDeduplication alone; a named GetQueueAttributes
    # (and ReceiveMessage's retention check, once per message received) reads the names it asks for
    SQSBackend.send_message = _asking_for(frozenset({"ContentBasedDeduplication"}), SQSBackend.send_message)  # type: ignore[method-assign]
    SQSBackend.get_queue_attributes = _asking_for(None, SQSBackend.get_queue_attributes)  # type: ignore[method-assign]
    _sped_up = True


class _Profiler:
    """cProfile (in CPU time) of every request the server serves, summed (``TTP_EMULATOR_PROFILE``).

    A ``cProfile.Profile`` sees only the thread that enabled it, and the server serves each connection in
    a thread of its own: each gets its own profile, added to the sum when it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: Any = None

    def wrap(self, serve: Any) -> Any:
        import cProfile
        import pstats

        def profiled(*args: Any) -> Any:
            profile = cProfile.Profile(time.thread_time)  # CPU, not the waits for the GIL or the socket
            profile.enable()
            try:
                return serve(*args)
            finally:
                profile.disable()
                with self._lock:
                    if self._stats is None:
                        self._stats = pstats.Stats(profile)
                    else:
                        self._stats.add(profile)

        return profiled

    def dump(self, path: str) -> None:
        with self._lock:
            if self._stats is not None:
                self._stats.dump_stats(path)


class _RequestTracker:
    """Runs each accepted connection in a thread of its own (as werkzeug's threaded server does), numbered
    and watched by a :class:`devtools.emulator_http.ConnectionTracker` (:meth:`LocalAws.settle`)."""

    def __init__(self, server: Any, profiler: _Profiler | None = None) -> None:
        from devtools.emulator_http import ConnectionTracker

        self.connections = ConnectionTracker()
        server.ttp_tracker = self.connections
        serve = server.process_request_thread if profiler is None else profiler.wrap(server.process_request_thread)

        def process_request(request: Any, client_address: Any) -> None:  # runs in the accepting thread
            number = self.connections.opened(request)

            def run() -> None:
                try:
                    serve(request, client_address)
                finally:
                    self.connections.closed(number)

            threading.Thread(target=run, name=f"emulator-connection-{number}", daemon=True).start()

        server.process_request = process_request

    def accepted(self) -> int:
        return self.connections.accepted()

    def wait_served(self, through: int, timeout: float) -> bool:
        """Wait until every request sent on a connection numbered up to ``through`` has been answered."""
        return self.connections.wait_served(through, timeout)


class LocalAws:
    """moto's ThreadedMotoServer bound to 127.0.0.1 on a free port.

    ``enforce``: an :class:`devtools.enforcement.Enforcement` that decides every request with the policy
    engine before moto serves it (off by default: a test that deploys no policies needs none)."""

    def __init__(self, port: int = 0, *, enforce: Enforcement | None = None, profile: str = "") -> None:
        import logging

        from devtools.emulator_http import KeepAliveMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        make_conditional_writes_atomic()
        from devtools.emulator_queues import make_queues_thread_safe

        make_queues_thread_safe()
        speed_up_moto()
        from devtools import botocore_data, cfn_speedups, s3_versions, ses_events

        botocore_data.share_parsed_data()  # moto, the deployer and the sandbox build many botocore sessions
        s3_versions.install()  # ListObjectVersions copies only the prefix it lists, not the whole bucket
        cfn_speedups.install()  # a deploy builds no AMI catalogue and reads JSON templates as JSON
        ses_events.install()  # SES publishes the events of each email it accepts, routed by EventBridge as deployed
        self._server = KeepAliveMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint = ""
        self.enforcement = enforce
        self._profile_path = profile
        self._profiler = _Profiler() if profile else None
        self._requests: _RequestTracker | None = None

    def start(self) -> LocalAws:
        """Start the server (and the policy engine); whatever interrupts the start (Ctrl-C included)
        stops what it had started, since the caller's ``stop`` is not armed yet."""
        self._server.start()
        try:
            self._requests = _RequestTracker(self._server._server, self._profiler)
            if self.enforcement is not None:
                self.enforcement.start()
                wsgi = self._server._server
                assert wsgi is not None
                wsgi.app = self.enforcement.wrap(wsgi.app)
            from devtools.local_deploy.event_routing import router

            router.enforcement = self.enforcement  # EventBridge's targets are decided as the requests are
            host, port = self._server.get_host_and_port()
            self.endpoint = f"http://{host}:{port}"
            self.reset()  # moto's backends are per process: start every emulator empty
        except BaseException:
            self.stop()
            raise
        return self

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")).read()

    def settle(self, timeout: float = 30.0) -> None:
        """Return once every request that reached the server before this call has been served.

        A marker request queues behind every connection opened before it; once it is answered, the
        server has accepted them all, and this waits until none of those is serving a request or has
        one waiting (a kept connection's next request is in no accept queue).
        """
        import urllib.request

        urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=timeout).read()  # a static page: cheap
        assert self._requests is not None, "settle() before start()"
        if not self._requests.wait_served(self._requests.accepted(), timeout):
            raise TimeoutError(f"the emulator still serves requests opened before settle() after {timeout}s")

    def stop(self) -> None:
        self._server.stop()
        if self._requests is not None:
            # close the kept connections; a profile waits for their threads to end (each adds its profile then)
            self._requests.connections.stop(timeout=10.0 if self._profiler is not None else 0.0)
        if self._profiler is not None:
            self._profiler.dump(self._profile_path)
        from devtools.local_deploy.event_routing import router

        if router.enforcement is self.enforcement:
            router.enforcement = None
        if self.enforcement is not None:
            self.enforcement.close()

    def env(self) -> dict[str, str]:
        """Environment for a child process (a worker) that must talk to this emulator."""
        return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}


@contextmanager
def local_aws(*, enforce: Enforcement | None = None) -> Iterator[LocalAws]:
    """Start the emulator (deciding every request with ``enforce``, if given) and point this process's
    boto3 at it for the duration of the block."""
    server = LocalAws(enforce=enforce).start()
    saved = {k: os.environ.get(k) for k in [*FAKE_CREDENTIALS, "AWS_ENDPOINT_URL"]}
    os.environ.update(server.env())
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@contextmanager
def emulator_process() -> Iterator[str]:
    """The emulator in a process of its own (``python -m devtools.emulator``) for benchmarks, so it does not
    share this interpreter's GIL with the load; this process's AWS settings point at it until the end."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.emulator"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.stdout is not None
    endpoint = proc.stdout.readline().strip()
    os.environ.update({**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint})
    try:
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(30)  # a loaded machine can take its time to stop the server's threads
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def reset(endpoint: str) -> None:
    """Empty every backend of a running emulator (moto's reset API)."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()


def exports(variables: dict[str, str]) -> list[str]:
    """``export NAME=value`` lines a POSIX shell can paste (values quoted where needed)."""
    import shlex

    return [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]


def main() -> None:
    """``python -m devtools.emulator [--port N]``: serve a bare emulator until Ctrl-C or SIGTERM.

    The first line printed is the endpoint alone (benchmarks read it); then the variables to export in
    another shell so that boto3 talks to this emulator. It holds no platform: ``make emulator``
    (``python -m devtools.local_run``) deploys the sample assembly and prints an operator's exports.
    Benchmarks use it so the emulator does not share an interpreter (and its GIL) with the load. With
    ``TTP_EMULATOR_PROFILE=PATH`` in its environment it profiles every request and writes the sum to PATH
    when it stops (``python -m pstats PATH``).
    """
    import argparse
    import signal
    import threading

    parser = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="loopback port (0: any free port)")
    parser.add_argument("--sandbox", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sandbox:
        parser.error(
            "--sandbox (the hand-built layout) is retired: run `make emulator` (python -m devtools.local_run), "
            "which deploys the sample assembly on the emulator and prints the exports of an operator and of "
            "every service"
        )
    stop = threading.Event()  # handlers before the first line: a reader may signal as soon as it has read it
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = LocalAws(args.port, profile=os.environ.get(PROFILE_VARIABLE, "")).start()
    print(server.endpoint, flush=True)
    print("# Point boto3 (python -m runtime …) at this emulator: in another shell, paste", flush=True)
    print("\n".join(exports(server.env())), flush=True)
    print("# Ctrl-C (or SIGTERM) stops the emulator; its data lives in memory only.", flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
