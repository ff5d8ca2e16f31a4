"""Values rendered when the app is synthesized, not when a construct is created.

The platform's constructs (bucket routes, sweeper, coordinator) exist before the customers that register
with them (:class:`~cdk_constructs.customer.TtpCustomer`), so the lists they hold are read at synthesis:
``Lazy`` tokens whose producers read a registry that the customers filled in by then. No list of customers
is computed by hand at construction time, and a customer added after the platform still appears in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import jsii
from aws_cdk import IStableAnyProducer, IStableStringProducer, Lazy

V = TypeVar("V")


@jsii.implements(IStableAnyProducer)
class _AnyProducer:
    def __init__(self, produce: Callable[[], Any]) -> None:
        self._produce = produce

    def produce(self, context: Any = None) -> Any:
        return self._produce()


@jsii.implements(IStableStringProducer)
class _StringProducer:
    def __init__(self, produce: Callable[[], str]) -> None:
        self._produce = produce

    def produce(self, context: Any = None) -> str:
        return self._produce()


def lazy_any(produce: Callable[[], Any]) -> Any:
    """A token that renders ``produce()`` (any JSON value, tokens inside allowed) at synthesis."""
    return Lazy.any(_AnyProducer(produce))


def lazy_string(produce: Callable[[], str]) -> str:
    """A string token that renders ``produce()`` at synthesis."""
    return Lazy.string(_StringProducer(produce))


class LiveMapping(Mapping[str, V], Generic[V]):
    """A read-only view of a mapping that is still being filled (customers register after the platform).

    Reading it gives its current content; a task environment renders it lazily
    (:func:`cdk_support.environment.render` calls :meth:`rendered`), so the variable holds every entry
    registered before synthesis.
    """

    def __init__(self, source: Callable[[], Mapping[str, V]]) -> None:
        self._source = source

    def __getitem__(self, key: str) -> V:
        return self._source()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._source()))

    def __len__(self) -> int:
        return len(self._source())

    def rendered(self, render: Callable[[Any], str]) -> str:
        return lazy_string(lambda: render(dict(self._source())))
