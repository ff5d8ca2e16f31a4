"""moto's ``ListObjectVersions`` reads only the keys under the request's prefix (same answers, issue 21).

moto answers ``ListObjectVersions`` by deep-copying every version of every key in the bucket, sorting them
all, and only then skipping the names outside the prefix. A submission asks for the versions of one
``archive/{id}.json`` (:meth:`runtime.archive.store.ArchiveStore.revision_in_history`), so on the emulator
each submission cost time in proportion to everything the bucket ever stored (archives, processing
objects, triggers and their versions): the SIGKILL chaos test's hundredth submission copied thousands of
versions, and its submissions took about a third of the emulator's CPU.

Leaving out the keys that do not start with the prefix before the copy changes no answer: moto drops
them anyway, one by one, and it orders, marks ``IsLatest`` and paginates per key name, so removing other
names changes neither the order nor the markers of the ones it returns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

_listing = threading.local()
"""The prefix of the ``ListObjectVersions`` this thread is serving ("" outside one: every key)."""
_installed = False


def install() -> None:
    """Patch moto's S3 backend (idempotent; before serving)."""
    global _installed
    if _installed:
        return
    from moto.s3.models import S3Backend
    from moto.s3.utils import _VersionedKeyStore

    every_key = _VersionedKeyStore.iterlists

    def iterlists(self: Any) -> Iterator[tuple[str, list[Any]]]:
        prefix: str = getattr(_listing, "prefix", "")
        for key, versions in every_key(self):
            if key.startswith(prefix):
                yield key, versions

    list_versions = S3Backend.list_object_versions

    def list_object_versions(
        self: Any,
        bucket_name: str,
        delimiter: str | None = None,
        key_marker: str | None = None,
        max_keys: int | None = 1000,
        prefix: str = "",
        version_id_marker: str | None = None,
    ) -> Any:
        _listing.prefix = prefix or ""
        try:
            return list_versions(
                self,
                bucket_name,
                delimiter=delimiter,
                key_marker=key_marker,
                max_keys=max_keys,
                prefix=prefix,
                version_id_marker=version_id_marker,
            )
        finally:
            _listing.prefix = ""

    _VersionedKeyStore.iterlists = iterlists
    S3Backend.list_object_versions = list_object_versions  # type: ignore[method-assign]
    _installed = True
