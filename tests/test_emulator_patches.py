"""The emulator's patches of moto's hot spots keep its answers and drop the per-request work (issue 21).

Measured in `make bench` before the patches: the dispatcher listed moto's package directory under its
global lock on every request, each S3 notification's SendMessage asked every message of the target
queue for the clock (three times), and moto's clock built two naive datetimes per reading. Profiled
again (``TTP_EMULATOR_PROFILE``, second issue 21 round): each message ReceiveMessage returned built every
queue attribute three times for its retention check, action and attribute names were converted to
snake case character by character on every request, and each request id drew its 52 characters one
``choice()`` at a time.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from moto.core import utils
from moto.sqs import models as sqs_models

from devtools.emulator import LocalAws, local_aws


@pytest.fixture(scope="module")
def server() -> Iterator[LocalAws]:
    with local_aws() as running:
        yield running


@pytest.fixture
def sqs(server: LocalAws) -> Any:
    return boto3.client("sqs")


def counted_choices(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one for every ``mock_random.choice`` draw (one character at a time) from here on."""
    from moto.moto_api._internal import mock_random

    draws: list[int] = []
    choice = mock_random.choice

    def counted(seq: Any) -> Any:
        draws.append(1)
        return choice(seq)

    monkeypatch.setattr(mock_random, "choice", counted)
    return draws


def test_requests_do_not_list_motos_package(server: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    package = os.path.dirname(moto.__file__)
    listed: list[str] = []
    original = os.listdir

    def listdir(path: Any = ".") -> list[str]:
        if str(path) == package and sys._getframe(1).f_code.co_name == "list_of_moto_modules":
            listed.append(str(path))  # the dispatcher routing a request (botocore's loader lists it once)
        return original(path)

    monkeypatch.setattr(os, "listdir", listdir)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="patches")
    for n in range(5):
        s3.put_object(Bucket="patches", Key=f"k{n}", Body=b"x")
    assert listed == []


def test_an_s3_notification_does_not_ask_every_queued_message_for_the_clock(
    server: LocalAws, sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqs.create_queue(QueueName="patches-busy")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for _ in range(20):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(10)])
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="patches-notified")
    s3.put_bucket_notification_configuration(
        Bucket="patches-notified",
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    asked: list[int] = []
    visible = sqs_models.Message.visible

    def counting(self: Any) -> bool:
        asked.append(1)
        return bool(visible.fget(self))  # type: ignore[attr-defined]

    monkeypatch.setattr(sqs_models.Message, "visible", property(counting))
    s3.put_object(Bucket="patches-notified", Key="a.json", Body=b"{}")
    assert asked == []
    monkeypatch.undo()
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "202"  # 200 + the test event + the notification


def test_a_fifo_queue_still_deduplicates_by_content(sqs: Any) -> None:
    url = sqs.create_queue(
        QueueName="patches.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"] == {
        "ApproximateNumberOfMessages": "1"
    }
    plain = sqs.create_queue(QueueName="patches-plain.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    with pytest.raises(sqs.exceptions.ClientError, match="MessageDeduplicationId"):
        sqs.send_message(QueueUrl=plain, MessageBody="same", MessageGroupId="g")


def test_motos_clock_reads_time_time(server: LocalAws) -> None:
    before = time.time()
    reading = utils.unix_time()
    assert before <= reading <= time.time()
    moment = datetime.datetime(2026, 12, 7, 15, 30, 1, 250000)
    assert utils.unix_time(moment) == moment.replace(tzinfo=datetime.UTC).timestamp()
    assert getattr(sqs_models, "unix_time_millis")(moment) == 1000 * utils.unix_time(moment)  # noqa: B009
    assert abs((utils.utcnow() - datetime.datetime.now(datetime.UTC).replace(tzinfo=None)).total_seconds()) < 1
    assert utils.utcfromtimestamp(0) == datetime.datetime(1970, 1, 1)


def _counting(monkeypatch: pytest.MonkeyPatch, cls: Any, name: str) -> list[int]:
    """Count reads of the property ``cls.name`` (every other behaviour kept)."""
    calls: list[int] = []
    original = getattr(cls, name)

    def counted(self: Any) -> Any:
        calls.append(1)
        return original.fget(self)

    monkeypatch.setattr(cls, name, property(counted))
    return calls


def test_receiving_a_message_does_not_count_the_queue(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqs.create_queue(QueueName="patches-receive")["QueueUrl"]
    for _ in range(5):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(10)])
    counted = _counting(monkeypatch, sqs_models.Queue, "approximate_number_of_messages_delayed")
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    assert len(received) == 10
    assert counted == []  # the retention check of each message reads MessageRetentionPeriod alone
    monkeypatch.undo()
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("40", "10")


def test_named_queue_attributes_answer_as_all_does(sqs: Any) -> None:
    dead = sqs.create_queue(QueueName="patches-dead")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    statement = {"Effect": "Allow", "Principal": "*", "Action": "sqs:*"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    urls = [
        sqs.create_queue(
            QueueName="patches-full",
            Attributes={
                "Policy": policy,
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 3}),
                "DelaySeconds": "2",
            },
        )["QueueUrl"],
        sqs.create_queue(
            QueueName="patches-named.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )["QueueUrl"],
        sqs.create_queue(QueueName="patches-kms", Attributes={"KmsMasterKeyId": "alias/aws/sqs"})["QueueUrl"],
    ]
    sqs.send_message(QueueUrl=urls[0], MessageBody="delayed")
    sqs.send_message(QueueUrl=urls[2], MessageBody="visible")
    names = [*sqs_models.Queue.BASE_ATTRIBUTES, *sqs_models.Queue.FIFO_ATTRIBUTES, *sqs_models.Queue.KMS_ATTRIBUTES]
    for url in urls:
        everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        for name in names:
            named = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name]).get("Attributes", {})
            assert named == {k: v for k, v in everything.items() if k == name}, (url, name)
        some = ["QueueArn", "ApproximateNumberOfMessagesDelayed", "ContentBasedDeduplication", "Policy"]
        named = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=some).get("Attributes", {})
        assert named == {k: v for k, v in everything.items() if k in some}
    assert sqs.get_queue_attributes(QueueUrl=urls[0], AttributeNames=["DelaySeconds"])["Attributes"] == {
        "DelaySeconds": "2"
    }


def test_pure_name_conversions_are_cached_with_the_same_answers(server: LocalAws) -> None:
    from moto.core import responses as core_responses
    from moto.s3.responses import S3Response

    convert: Any = getattr(core_responses, "camelcase_to_underscores")  # noqa: B009 (imported by name, not exported)
    original = convert.__wrapped__
    for name in ["ReceiveMessage", "ApproximateNumberOfMessagesNotVisible", "KmsMasterKeyId", "ListObjectsV2", ""]:
        assert convert(name) == original(name)
    before = convert.cache_info().hits
    convert("ReceiveMessage")
    assert convert.cache_info().hits == before + 1
    methods = getattr(core_responses, "method_names_from_class")  # noqa: B009
    assert methods(S3Response) == methods.__wrapped__(S3Response)
    assert methods(S3Response) is methods(S3Response)
    assert convert is utils.camelcase_to_underscores is getattr(sqs_models, "camelcase_to_underscores")  # noqa: B009


def test_random_strings_keep_their_alphabet_length_and_seed(server: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    import string

    from moto.moto_api._internal import mock_random

    draws = counted_choices(monkeypatch)
    request_id = mock_random.get_random_string(length=52)
    assert len(request_id) == 52 and set(request_id) <= set(string.ascii_letters + string.digits)
    assert draws == []  # one draw of 52 characters, not 52 draws
    assert set(mock_random.get_random_string(200, include_digits=False)) <= set(string.ascii_letters)
    assert mock_random.get_random_string(200, lower_case=True).islower()
    mock_random.seed(21)
    first = mock_random.get_random_string()
    mock_random.seed(21)
    assert mock_random.get_random_string() == first  # moto's seed API still makes its ids reproducible


def test_the_emulator_profiles_the_requests_it_serves_when_asked(tmp_path: Any) -> None:
    import pstats

    path = tmp_path / "emulator.prof"
    profiled = LocalAws(profile=str(path)).start()
    try:
        boto3.client("s3", endpoint_url=profiled.endpoint).list_buckets()
    finally:
        profiled.stop()
    functions = {name for _, _, name in pstats.Stats(str(path)).stats}  # type: ignore[attr-defined]
    assert "list_buckets" in functions  # moto's handler, run in a request thread of its own


# ---- issue 21, third round: kept connections and the per-request work of moto's server ----------------


def _raw_exchange(endpoint: str, requests: list[bytes]) -> list[bytes]:
    """Send each request on one connection, reading each answer (by its Content-Length) before the next."""
    import socket

    host, port = endpoint.removeprefix("http://").split(":")
    answers: list[bytes] = []
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        stream = connection.makefile("rb")
        for request in requests:
            connection.sendall(request)
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += stream.readline()
            fields = dict(line.lower().partition(b":")[::2] for line in head.split(b"\r\n")[1:] if line)
            length = int(fields.get(b"content-length", b"0"))
            bodiless = request.startswith(b"HEAD ") or head.split(b" ", 2)[1] in (b"204", b"304")
            answers.append(head + (b"" if bodiless else stream.read(length)))
    return answers


def _signed(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"", service: str = "s3"
) -> bytes:
    """A request as botocore signs it (moto answers an unsigned S3 request as an anonymous one)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method, f"http://localhost{path}", data=body, headers=headers or {})
    request.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    SigV4Auth(Credentials("testing", "testing", "testing"), service, "us-east-1").add_auth(request)
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    return "\r\n".join([*lines, "", ""]).encode() + body


def test_a_client_keeps_its_connection_across_requests(server: LocalAws) -> None:
    """werkzeug's server closed every connection after one answer: each botocore call opened a new one
    (and the server a thread for it). A client's pool now keeps one connection for its calls."""
    assert server._requests is not None
    before = server._requests.accepted()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="patches-kept")
    for n in range(5):
        s3.put_object(Bucket="patches-kept", Key=f"k{n}", Body=b"x")
        s3.get_object(Bucket="patches-kept", Key=f"k{n}")["Body"].read()
    assert server._requests.accepted() - before == 1


def test_kept_connections_answer_as_werkzeugs_server_does(server: LocalAws) -> None:
    """The same requests, one connection each on moto's own server and all on one kept connection here:
    the same status, headers (but the connection's and the per-request ids and clocks) and bodies."""
    from moto.server import ThreadedMotoServer

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="patches-same")
    etag = s3.put_object(Bucket="patches-same", Key="k", Body=b"0123456789")["ETag"]
    requests = [
        _signed("GET", "/patches-same/k"),
        _signed("HEAD", "/patches-same/k"),
        _signed("GET", "/patches-same/k", {"If-None-Match": etag}),
        _signed("GET", "/patches-same/missing"),
        _signed("PUT", "/patches-same/p", body=b"abc"),
        _signed("GET", "/patches-same?list-type=2"),
        _signed("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, b"Action=ListQueues", "sqs"),
    ]
    plain = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    plain.start()
    try:
        host, port = plain.get_host_and_port()
        theirs = [_raw_exchange(f"http://{host}:{port}", [request])[0] for request in requests]
    finally:
        plain.stop()
    ours = _raw_exchange(server.endpoint, requests)

    def comparable(answer: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
        head, _, body = answer.partition(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        varying = {b"date", b"last-modified", b"connection", b"transfer-encoding", b"x-amzn-requestid", b"x-amz-id-2"}
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)}
        body = re.sub(rb"<(RequestId|LastModified)>[^<]*</", b"<", body)
        return status, {k: v for k, v in headers.items() if k not in varying}, body

    for mine, werkzeugs in zip(ours, theirs, strict=True):
        status, headers, body = comparable(mine)
        their_status, their_headers, their_body = comparable(werkzeugs)
        if b"content-length" not in their_headers and status.split()[1] not in (b"304", b"204"):
            their_headers[b"content-length"] = str(len(their_body)).encode()  # werkzeug chunked it
        assert (status, headers, body) == (their_status, their_headers, their_body)


def test_a_chunked_request_body_is_read_and_its_connection_closed(server: LocalAws) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="patches-chunked")
    request = (
        b"PUT /patches-chunked/c HTTP/1.1\r\nHost: s3.amazonaws.com\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    (answer,) = _raw_exchange(server.endpoint, [request])
    assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in answer
    assert s3.get_object(Bucket="patches-chunked", Key="c")["Body"].read() == b"abcde"


def test_settle_waits_for_a_request_sent_on_a_kept_connection(
    server: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request on a kept connection is in no accept queue: settle() must still wait until it is answered."""
    import threading

    from moto.s3.models import S3Backend

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="patches-settle")
    s3.put_object(Bucket="patches-settle", Key="warm", Body=b"x")  # the client's connection is open and idle
    put = S3Backend.put_object
    gate = threading.Event()

    def slow_put(self: Any, *args: Any, **kwargs: Any) -> Any:
        gate.wait(5)
        return put(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", slow_put)
    writer = threading.Thread(target=lambda: s3.put_object(Bucket="patches-settle", Key="late", Body=b"y"))
    writer.start()
    time.sleep(0.3)  # the request is on the kept connection, being served (held at the gate)
    threading.Timer(0.5, gate.set).start()
    server.settle(timeout=10)
    assert gate.is_set()  # settle returned only after the request it found was answered
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="patches-settle")["Contents"]] == ["late", "warm"]
    writer.join(10)


def test_settle_does_not_wait_for_requests_sent_after_it(server: LocalAws) -> None:
    """Busy clients keep sending on their kept connections (workers long-polling their queues, as in the
    SIGKILL chaos test): settle() waits for the requests in flight when it was called, not for a moment
    when every connection is idle at once, which such clients may never leave."""
    import threading

    url = boto3.client("sqs").create_queue(QueueName="patches-busy-polls")["QueueUrl"]
    stop = threading.Event()

    def poll() -> None:
        client = boto3.client("sqs")
        while not stop.is_set():
            client.receive_message(QueueUrl=url, WaitTimeSeconds=1)

    pollers = [threading.Thread(target=poll) for _ in range(4)]
    for n, poller in enumerate(pollers):
        poller.start()
        time.sleep(0.25 * (n + 1) / len(pollers))  # staggered: at every moment some poll is in flight
    time.sleep(1.5)
    try:
        started = time.monotonic()
        server.settle(timeout=6)
        assert time.monotonic() - started < 3  # the polls in flight at the call (1 s each), not more
    finally:
        stop.set()
        for poller in pollers:
            poller.join(10)


def test_settle_passes_over_a_connection_closed_but_not_yet_forgotten() -> None:
    """socketserver closes a finished connection's socket before its thread reports it closed: settle()
    in between must take it as having nothing waiting (polling its descriptor, -1, raised ValueError)."""
    import socket

    from devtools.emulator_http import ConnectionTracker

    tracker = ConnectionTracker()
    with socket.create_server(("127.0.0.1", 0)) as listening:
        theirs = socket.create_connection(listening.getsockname())
        ours, _ = listening.accept()
    try:
        tracker.opened(ours)
        tracker.served(ours)  # its first request answered: idle
        ours.close()
        assert tracker.wait_served(tracker.accepted(), timeout=1)
    finally:
        theirs.close()


def test_routing_matches_a_hosts_url_patterns_once(server: LocalAws) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    dispatcher = DomainDispatcherApplication(lambda service: None)  # type: ignore[arg-type,return-value]
    scanned: list[int] = []

    class Counting(list):  # type: ignore[type-arg]
        def __iter__(self) -> Any:
            scanned.append(1)
            return super().__iter__()

    dispatcher.backend_url_patterns = Counting(dispatcher.backend_url_patterns)
    hosts = ("s3.us-east-1.amazonaws.com", "sqs.eu-west-1.amazonaws.com")
    first = [dispatcher.get_backend_for_host(host) for host in hosts]
    assert first == ["s3", "sqs"]
    scanned.clear()
    again = [dispatcher.get_backend_for_host(host) for host in hosts]
    assert again == first and scanned == []
    assert dispatcher.get_backend_for_host("nothing.example.com") is None


def test_flasks_debug_files_error_without_a_class_per_request(server: LocalAws) -> None:
    from flask import Flask, debughelpers, request

    app = Flask("patches")
    app.debug = True
    classes = []
    for _ in range(2):
        with app.test_request_context("/", method="POST", data={"file": "name.txt"}):
            assert request.form["file"] == "name.txt"
            classes.append(type(request.files))
            with pytest.raises(debughelpers.DebugFilesKeyError, match=r"(?s)'file'.*'name\.txt'"):
                request.files["file"]
            with pytest.raises(KeyError):
                request.files["other"]
    assert classes[0] is classes[1]


def test_receipt_handles_and_message_ids_are_drawn_in_one_call(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import string

    from moto.ses import utils as ses_utils

    draws = counted_choices(monkeypatch)
    url = sqs.create_queue(QueueName="patches-handles")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    draws.clear()
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    handle = message["ReceiptHandle"]
    message_id = ses_utils.get_random_message_id()
    assert draws == []
    assert len(handle) == 185 and set(handle) <= set(string.ascii_lowercase)
    assert [len(part) for part in message_id.split("-")] == [16, 8, 4, 4, 4, 12, 6]
    assert set(message_id.replace("-", "")) <= set(string.ascii_lowercase)


@pytest.mark.parametrize(
    "block",
    [
        b"Host: localhost\r\nX-Amz-Date: 20261207T000000Z\r\nContent-Length: 0\r\n\r\n",
        b"A: 1\r\nA: 2\r\nempty:\r\nspaced:   v  \r\ntab:\tv\r\nlatin: caf\xe9\r\n\r\n",
        b"Unix-lines: yes\nOther: 2\n\n",
        b"Folded: one\r\n two\r\nAfter: x\r\n\r\n",
        b": no name\r\nA: 1\r\n\r\n",
        b"No colon here\r\nA: 1\r\n\r\n",
        b"From someone\r\nA: 1\r\n\r\n",
        b"Bare: a\rb\r\nA: 1\r\n\r\n",
        b"Content-Type: multipart/form-data; boundary=x\r\n\r\n",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n",
        b"A: cut short\r\n",
        b"\r\n",
    ],
)
def test_headers_parse_as_the_feed_parser_parses_them(server: LocalAws, block: bytes) -> None:
    import http.client
    import io

    fast, original = http.client.parse_headers, http.client.parse_headers.__wrapped__  # type: ignore[attr-defined]
    assert fast is not original
    ours, theirs = io.BytesIO(block + b"BODY"), io.BytesIO(block + b"BODY")
    mine, expected = fast(ours), original(theirs)
    assert type(mine) is type(expected)
    assert mine.items() == expected.items()
    assert [type(d) for d in mine.defects] == [type(d) for d in expected.defects]
    assert mine.is_multipart() == expected.is_multipart()
    if expected.is_multipart():  # message/*: the sub-message the feed parser built
        assert [m.items() for m in mine.get_payload()] == [m.items() for m in expected.get_payload()]
    else:
        assert mine.get_payload() == expected.get_payload()
    assert ours.read() == theirs.read()  # the stream is left at the same byte


def test_header_limits_are_kept(server: LocalAws) -> None:
    import http.client
    import io

    with pytest.raises(http.client.LineTooLong):
        http.client.parse_headers(io.BytesIO(b"A: " + b"x" * 70000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        http.client.parse_headers(io.BytesIO(b"A: 1\r\n" * 101 + b"\r\n"))


class _Switching:
    """Threads that switch every microsecond (``sys.setswitchinterval``) while the block runs: a race
    between two of moto's Python loops shows in a second instead of once a benchmark."""

    def __enter__(self) -> None:
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)

    def __exit__(self, *_: object) -> None:
        sys.setswitchinterval(self._interval)


def _backend_queue(sqs: Any, name: str, messages: int) -> tuple[Any, Any]:
    """A queue of ``messages`` messages, created through the emulator, and its backend in this process."""
    sqs.create_queue(QueueName=name)
    backend = sqs_models.sqs_backends["123456789012"]["us-east-1"]
    for n in range(messages):
        backend.send_message(name, f"m{n}")
    return backend, backend.get_queue(name)


def test_receives_from_many_threads_on_one_queue_never_break_off(sqs: Any) -> None:
    """moto's ``receive_message`` lists the message groups of the queue's in-flight messages by iterating
    their set while other threads' receives change it: ``RuntimeError: Set changed size during
    iteration`` in a fan-out run at N = 1,000 (issue 21). It iterates a copy now."""
    backend, _queue = _backend_queue(sqs, "patches-race-receive", 1000)
    errors: list[BaseException] = []
    until = time.monotonic() + 2.0  # it broke off within 0.2-1.0 s before the patch

    def receive(visibility: int) -> None:  # 0: back at once, so the next receive takes it out of the set
        try:
            while time.monotonic() < until and not errors:
                backend.receive_message("patches-race-receive", 10, 0, visibility)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=receive, args=(30 * (n % 2),)) for n in range(4)]
    with _Switching():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []


def test_concurrent_deletes_of_one_queue_each_take_effect(sqs: Any) -> None:
    """moto's ``Queue.delete_message`` rebuilds the queue's message list and assigns it back without a
    lock: two deletes at once keep one of the two lists, and a deleted message comes back (redelivered
    after its visibility timeout); a message sent meanwhile can be lost the same way. The worker
    deletes each message from its handler's thread. Deletes hold the queue's own lock now."""
    backend, queue = _backend_queue(sqs, "patches-race-delete", 600)
    handles = [m.receipt_handle for _ in range(60) for m in backend.receive_message("patches-race-delete", 10, 0, 300)]
    assert len(handles) == 600

    def delete(part: list[str]) -> None:
        for handle in part:
            backend.delete_message("patches-race-delete", handle)

    def send() -> None:
        for n in range(200):
            backend.send_message("patches-race-delete", f"new{n}")

    threads = [threading.Thread(target=delete, args=(handles[k::3],)) for k in range(3)]
    threads.append(threading.Thread(target=send))
    with _Switching():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert sorted(m.body for m in queue._messages) == sorted(f"new{n}" for n in range(200))
