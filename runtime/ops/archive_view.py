"""The archive as the procedures read it: each change loaded once per command (missing and invalid ones
remembered too), and whether bucket versioning still holds a deleted archive's history."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from runtime.archive import ArchiveError, ArchiveInvalid, ArchiveStore, VersionedArchive
from runtime.contract import keys


class ArchiveCache:
    """Loads each change's archive once per command, with its folded results (``ArchiveStore.load_results``:
    inline entries and fold segments); remembers missing and invalid ones too."""

    def __init__(self, store: ArchiveStore) -> None:
        self._store = store
        self._cache: dict[str, VersionedArchive | ArchiveError | None] = {}

    def get(self, change_id: str) -> VersionedArchive | ArchiveError | None:
        if change_id not in self._cache:
            try:
                self._cache[change_id] = self._store.load_results(change_id)
            except ArchiveInvalid as exc:
                self._cache[change_id] = exc
        return self._cache[change_id]


def archive_has_history(s3: Any, bucket: str, change_id: str) -> bool:
    """Whether bucket versioning still holds earlier versions of a (deleted) archive object."""
    key = keys.archive_key(change_id)
    try:
        response = s3.list_object_versions(Bucket=bucket, Prefix=key, MaxKeys=10)
    except ClientError:
        return False
    return any(v["Key"] == key for v in response.get("Versions", []))
