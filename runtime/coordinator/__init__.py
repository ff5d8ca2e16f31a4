"""The change coordinator (docs/design.md §1, §5): one platform service fed by ``archive/`` and ``processing/``
object events.

* :mod:`~runtime.coordinator.folding` — folds the customers' results (``processing/{c}/{id}.json``) into
  the archive's audit trail as ``processed`` modifications, many customers per compare-and-swap write;
* :mod:`~runtime.coordinator.handler` — the queue's message handler: routes each event to the fold or to
  the meeting (:mod:`runtime.notify.meetings`), anything else is poison;
* :mod:`~runtime.coordinator.delivery` — the delivery-event consumer: SES events of the customers' accounts
  (``TTP_DELIVERY_QUEUE_URL``) → per-recipient status in ``delivery/{c}/{id}.json``;
  :mod:`~runtime.coordinator.delivery_fold` folds its counts into the archive's ``delivery`` field;
* :mod:`~runtime.coordinator.composition` — builds the workers (``python -m runtime coordinator``).

It is the only writer of ``archive/*`` besides the submitter, and the only writer of ``delivery/*``;
customer processors only read the archive.

Other packages import the names below from ``runtime.coordinator`` itself (``tests/test_layout.py``).
"""

from runtime.coordinator.composition import build_coordinator
from runtime.coordinator.delivery import DeliveryHandler
from runtime.coordinator.folding import FoldBatcher, Folder
from runtime.coordinator.handler import CoordinatorHandler

__all__ = [
    "CoordinatorHandler",
    "DeliveryHandler",
    "FoldBatcher",
    "Folder",
    "build_coordinator",
]
