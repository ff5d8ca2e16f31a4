"""Per-request work moto's server repeats for the same answer, dropped (issue 21, third round).

Timed layer by layer under one client (``thread_time`` around each of the server's, Flask's and moto's
steps), each request paid for three things whose answers never change between requests:

* routing: moto's dispatcher matched the request's host (``s3.us-east-1.amazonaws.com``) against every
  service's URL patterns, a few hundred regular expressions, under its global lock;
* Flask's debug helper: moto runs its Flask apps in debug mode, where every request's form parsing
  built a new class (``attach_enctype_error_multidict``) so that a missing file field names the form's
  encoding in its error;
* random identifiers drawn one character per ``choice()`` call: each message SQS returns gets a
  185-character receipt handle, each email SES accepts a 54-character message id;
* headers parsed by the ``email`` package's feed parser (``http.client.parse_headers``, which
  ``http.server`` calls for every request), a general MIME parser, where each of botocore's header lines
  is ``Name: value``: such blocks are now split directly, into the same ``HTTPMessage``; any other
  block (folded or odd lines, a MIME type the parser looks into) still goes through the feed parser.

Each patch keeps the answer: the same backend for the same host, the same error class and message for a
missing file field, identifiers of the same length and alphabet from the same seedable generator
(``tests/test_emulator_patches.py``).
"""

from __future__ import annotations

import functools
import http.client
import re
import string
from typing import Any

_patched = False


def _route_once() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    routes: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        # the patterns and moto's module list do not change while serving; an unknown host is not cached,
        # so moto still prints its hint for each request to a host it cannot route
        if host in routes:
            return routes[host]
        backend = original(self, host)
        if backend:
            routes[host] = backend
        return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


def _debug_files_class_once() -> None:
    from flask import debughelpers

    subclasses: dict[type, type] = {}

    def attach_enctype_error_multidict(request: Any) -> None:
        old = request.files.__class__
        if old not in subclasses:

            class newcls(old):  # type: ignore[valid-type,misc]
                """``request.files`` whose missing key raises Flask's debug error for the request it belongs to."""

                def __getitem__(self, key: str) -> Any:
                    try:
                        return super().__getitem__(key)
                    except KeyError as e:
                        request = self.__dict__["ttp_request"]
                        if key not in request.form:
                            raise
                        raise debughelpers.DebugFilesKeyError(request, key).with_traceback(e.__traceback__) from None

            subclasses[old] = newcls
        request.files.__class__ = subclasses[old]
        request.files.__dict__["ttp_request"] = request

    debughelpers.attach_enctype_error_multidict = attach_enctype_error_multidict


def _identifiers_in_one_draw() -> None:
    from moto.moto_api._internal import mock_random
    from moto.ses import utils as ses_utils
    from moto.sqs import models as sqs_models
    from moto.sqs import utils as sqs_utils

    def generate_receipt_handle() -> str:
        return "".join(mock_random.choices(string.ascii_lowercase, k=185))

    def random_hex(length: int) -> str:
        return "".join(mock_random.choices(string.ascii_lowercase, k=length))

    sqs_utils.generate_receipt_handle = generate_receipt_handle
    sqs_models.generate_receipt_handle = generate_receipt_handle  # type: ignore[attr-defined]
    ses_utils.random_hex = random_hex  # get_random_message_id reads it from its module


# a header line the feed parser takes as ``name: value`` alone: a name of the characters email.feedparser's
# headerRE accepts, a colon, and no carriage return or line feed before the line's end
_SIMPLE_HEADER = re.compile(r"[\041-\071\073-\176]+:[^\r\n]*\r?\n\Z")
_PARSED_MIME = ("multipart/", "message/")


def _headers_directly() -> None:
    original = http.client.parse_headers

    @functools.wraps(original)
    def parse_headers(fp: Any, _class: Any = http.client.HTTPMessage) -> Any:
        lines = http.client._read_headers(fp)  # type: ignore[attr-defined]  # the same reads and limits
        text = [line.decode("iso-8859-1") for line in lines[:-1]]
        if lines[-1] in (b"\r\n", b"\n") and all(_SIMPLE_HEADER.match(line) for line in text):
            message = _class()
            for line in text:
                name, value = line.split(":", 1)
                message.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))  # the feed parser's header_source_parse
            if not message.get_content_type().startswith(_PARSED_MIME):
                message.set_payload("")  # what the feed parser leaves after the blank line
                return message
        return original(_Replay(b"".join(lines)), _class)

    http.client.parse_headers = parse_headers


class _Replay:
    """The header lines already read, for the feed parser's fallback."""

    def __init__(self, data: bytes) -> None:
        import io

        self.readline = io.BytesIO(data).readline


def speed_up_requests() -> None:
    """Install the patches (module docstring). Idempotent; call before serving."""
    global _patched
    if _patched:
        return
    _route_once()
    _debug_files_class_once()
    _identifiers_in_one_draw()
    _headers_directly()
    _patched = True
