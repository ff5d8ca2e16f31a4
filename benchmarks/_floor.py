"""The throughput section's floor: the worker's calls with no logic (not a benchmark: tests/test_benchmarks.py
skips ``_*.py``). ``processing_bench.py --floor-child`` runs :func:`floor_child` in a process of its own."""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import botocore.exceptions

from benchmarks._measure import count_calls
from benchmarks._worker_process import CONCURRENCY
from devtools import sandbox as sb
from runtime.contract.names import configuration_set_name
from runtime.contract.settings import SenderSettings


class CachedContacts:
    """The customer's subscribed addresses, as the worker's notifier (runtime.notify.ses) caches them: one
    thread lists them while the cache is cold and the others wait for its answer (one listing per cache
    period, as the worker makes)."""

    def __init__(self, ses: Callable[[], Any]) -> None:
        self.ses = ses
        self.cache_seconds = SenderSettings.model_fields["contact_cache_seconds"].default
        self._contacts: list[tuple[float, list[str]]] = []
        self._lock = threading.Lock()

    def subscribers(self) -> list[str]:
        with self._lock:
            cached = self._contacts[0] if self._contacts else None
            if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
                return cached[1]
            return self._listed_now()

    def _listed_now(self) -> list[str]:
        read_at = time.monotonic()
        self.ses().get_contact_list(ContactListName=sb.DEFAULT_CONTACT_LIST_NAME)
        listed = self.ses().list_contacts(
            ContactListName=sb.DEFAULT_CONTACT_LIST_NAME,
            Filter={
                "FilteredStatus": "OPT_IN",
                "TopicFilter": {"TopicName": sb.DEFAULT_TOPIC, "UseDefaultIfPreferenceUnavailable": True},
            },
            PageSize=1000,
        )["Contacts"]
        addresses = [c["EmailAddress"] for c in listed]
        self._contacts[:] = [(read_at, addresses)]
        return addresses


class SenderClient:
    """The customer's SES client as the worker's CustomerSes builds it: the sender role assumed and the
    client built on first use, inside the timed run."""

    def __init__(self, role: str, external_id: str) -> None:
        self.role, self.external_id = role, external_id
        self._client: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._client is None:
                assumed = boto3.client("sts").assume_role(
                    RoleArn=self.role, RoleSessionName="floor", ExternalId=self.external_id
                )
                creds = assumed["Credentials"]
                self._client = boto3.client(
                    "sesv2",
                    aws_access_key_id=creds["AccessKeyId"],
                    aws_secret_access_key=creds["SecretAccessKey"],
                    aws_session_token=creds["SessionToken"],
                )
            return self._client


def floor_child(bucket: str, queue_url: str, count: int, code: str, sender: str, role: str, external_id: str) -> None:
    """The worker's calls, with the same parameters and no logic: the emulator's ceiling for this workload.

    Per trigger, as ``api-calls`` traces the processor: GET archive, PUT the processing object
    (``IfNoneMatch``), per recipient a GET ``IfNoneMatch`` of it (a 304) and a SendEmail
    with the list-management options, tags and configuration set, PUT it again (``IfMatch``), DELETE the
    trigger (``IfMatch`` the ETag its event carries: no HEAD); the contact list is read once per
    ``TTP_CONTACT_CACHE_SECONDS``, and every message is deleted from the queue."""
    calls: collections.Counter[str] = collections.Counter()
    count_calls(calls)  # every call from here on, its AssumeRole included, as the worker's are counted
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    ses = SenderClient(role, external_id)
    contacts = CachedContacts(ses)

    def one(pair: tuple[int, str], trigger_etag: str) -> None:
        n, receipt = pair
        trigger, archive = f"customers/{code}/F-{n}.json", f"archive/F-{n}.json"
        processing = f"processing/{code}/F-{n}.json"
        body = s3.get_object(Bucket=bucket, Key=archive)["Body"].read()
        etag = s3.put_object(Bucket=bucket, Key=processing, Body=body, IfNoneMatch="*")["ETag"]
        for address in contacts.subscribers():
            try:
                s3.get_object(Bucket=bucket, Key=processing, IfNoneMatch=etag)
            except botocore.exceptions.ClientError as exc:
                if exc.response["ResponseMetadata"]["HTTPStatusCode"] != 304:
                    raise
            ses().send_email(
                FromEmailAddress=sender,
                Destination={"ToAddresses": [address]},
                Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}, "Html": {"Data": "h"}}}},
                ListManagementOptions={"ContactListName": sb.DEFAULT_CONTACT_LIST_NAME, "TopicName": sb.DEFAULT_TOPIC},
                EmailTags=[{"Name": "ttp-change-id", "Value": f"F-{n}"}, {"Name": "ttp-customer-code", "Value": code}],
                ConfigurationSetName=configuration_set_name(code),
            )
        s3.put_object(Bucket=bucket, Key=processing, Body=body, IfMatch=etag)
        s3.delete_object(Bucket=bucket, Key=trigger, IfMatch=f'"{trigger_etag}"')
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)

    elapsed, cpu, made = receive_as_the_worker(sqs, queue_url, count, one, calls)
    print(json.dumps({"elapsed": elapsed, "cpu": cpu, "calls": made}))


def receive_as_the_worker(
    sqs: Any, queue_url: str, count: int, one: Callable[[tuple[int, str], str], None], calls: dict[str, int]
) -> tuple[float, float, dict[str, int]]:
    """Wall and CPU seconds to hand ``count`` trigger messages to ``one``, and the ``calls`` made by then,
    received as the worker receives: as many messages as it has free slots (threads), each one handled and
    deleted in a thread of its own, the slot freed when it is done. The clock and the count stop at the last
    trigger handled, not at the idle receives after it (the worker's run is counted to its last one too)."""
    slots = threading.BoundedSemaphore(CONCURRENCY)
    numbers = iter(range(count))
    done = threading.Semaphore(0)
    handled: list[int] = []
    handled_lock = threading.Lock()
    last: dict[str, Any] = {}

    def handle(message: dict[str, Any]) -> None:
        try:
            if "Records" in message["Body"]:
                record = json.loads(message["Body"])["Records"][0]
                one((next(numbers), message["ReceiptHandle"]), record["s3"]["object"]["eTag"])
                with handled_lock:
                    handled.append(1)
                    if len(handled) == count:
                        last.update(at=time.monotonic(), cpu=time.process_time(), calls=dict(calls))
                done.release()
            else:  # S3's test event
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        finally:
            slots.release()

    started = time.monotonic()
    cpu = time.process_time()
    finished = 0
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        while finished < count:
            if not slots.acquire(timeout=1.0):
                continue
            free = 1
            while free < CONCURRENCY and slots.acquire(blocking=False):
                free += 1
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=free,
                WaitTimeSeconds=1,
                VisibilityTimeout=60,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
            for _ in range(free - len(messages)):
                slots.release()
            for message in messages:
                pool.submit(handle, message)
            while done.acquire(blocking=False):
                finished += 1
    return last["at"] - started, last["cpu"] - cpu, last["calls"]
