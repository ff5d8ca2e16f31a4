"""The change coordinator (DESIGN.md §1, §5): one platform service fed by ``archive/`` and ``processing/``
object events.

* :mod:`~runtime.coordinator.folding` — folds the customers' results (``processing/{c}/{id}.json``) into
  the archive's audit trail as ``processed`` modifications, many customers per compare-and-swap write;
* :mod:`~runtime.coordinator.handler` — the queue's message handler: routes each event to the fold or to
  the meeting (:mod:`runtime.notify.meetings`), anything else is poison;
* :mod:`~runtime.coordinator.composition` — builds the worker (``python -m runtime coordinator``).

It is the only writer of ``archive/*`` besides the submitter; customer processors only read it.
"""
