"""The one reader of v1 documents: what a v1 processor left inside the archive, in the v2 model's terms.

A v1 processor kept its lease inside the archive document (``leases``, keyed by customer code) and
recorded its ``processed`` entry there itself; v2 keeps both in the processing object
(``processing/{C}/{id}.json``). Deployed archives may still hold a v1 lease, so the sweeper, ``stuck``
and ``verify`` must still honour it — they read it here, as an :class:`ArchivedLease` that says where it
came from, and otherwise handle only the v2 model. A v1 ``processed`` entry needs no conversion: it has
the shape of a folded entry, so readers treat both alike. ``tests/test_layout.py`` checks that no other
module of ``runtime/`` mentions the v1 format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from runtime.archive.documents import ArchiveDocument

ARCHIVE_ORIGIN = "v1, in the archive"
"""Where an :class:`ArchivedLease` came from, as operators read it (``verify``'s lease column)."""


@dataclass(frozen=True)
class ArchivedLease:
    """A v1 processor's lease held in the archive, read as a v2 lease (owner, revision, expiry).

    ``emails_checkpointed`` is the v1 lease's own progress (v2 progress is in the processing object).
    """

    owner: str
    revision: int
    expires_at: datetime
    emails_checkpointed: int
    origin: str = ARCHIVE_ORIGIN

    def is_live(self, now: datetime) -> bool:
        return self.expires_at > now

    def describe(self) -> str:
        """One line for ``stuck``'s details."""
        return (
            f"v1 lease in the archive: lease of {self.owner} for revision {self.revision} until "
            f"{self.expires_at.isoformat()}, {self.emails_checkpointed} email(s) checkpointed"
        )


def archive_lease(doc: ArchiveDocument, customer_code: str) -> ArchivedLease | None:
    """The v1 lease ``doc`` holds for ``customer_code``, if a v1 processor left one."""
    lease = doc.leases.get(customer_code)
    if lease is None:
        return None
    return ArchivedLease(lease.owner, lease.revision, lease.expires_at, len(lease.emails_sent))
