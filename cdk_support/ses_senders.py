"""The checks across the customers that send through SES, in one place: the ``cdk.json`` model
(``stacks.config.PlatformConfig``) runs them on its customers, :class:`~cdk_constructs.platform.TtpPlatform`
on the customers registered by synthesis, with the same messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SesSender:
    """What the checks need of one customer."""

    code: str
    """The customer code. Required."""
    account: str
    """The account it sends from. Required."""
    ses_region: str | None = None
    """Its SES region. Default: None (the platform's region)."""
    configuration_set: str | None = None
    """Its own configuration set. Default: None (the platform's ``ttp-<code>``)."""
    shares_ses_account_with: tuple[str, ...] = ()
    """The other customers allowed to send from its SES account. Default: none."""


def check_ses_senders(customers: Sequence[SesSender], region: str) -> None:
    """Raise ``ValueError`` naming the customers and the fix (``region``: the platform's)."""
    _check_delivery_events(customers, region)
    _check_shared_ses_accounts(customers, region)


def ses_account_of(customer: SesSender, region: str) -> tuple[str, str]:
    """The SES account the customer sends from: its account and SES's region."""
    return customer.account, customer.ses_region or region


def _check_delivery_events(customers: Sequence[SesSender], region: str) -> None:
    """The customer account stack (in ``accounts.region``) creates the SES configuration set and its
    EventBridge destination, which must live in the region SES sends from; and one set takes the
    platform's event destination (fixed name) once."""
    for customer in customers:
        if customer.ses_region is not None and customer.ses_region != region:
            raise ValueError(
                f"customer {customer.code!r}: ses_region {customer.ses_region!r} differs from accounts.region "
                f"{region!r}; SES delivery events need the configuration set and its EventBridge "
                "destination in SES's region, which the customer account stack (in accounts.region) cannot "
                "create: send from accounts.region (remove ses_region)"
            )
    seen: dict[tuple[str, str], str] = {}
    for customer in customers:
        if customer.configuration_set is None:
            continue
        other = seen.setdefault((customer.account, customer.configuration_set), customer.code)
        if other != customer.code:
            raise ValueError(
                f"customers {other!r} and {customer.code!r} name the same configuration_set "
                f"{customer.configuration_set!r} in account {customer.account}: give each its own (or none)"
            )


def _check_shared_ses_accounts(customers: Sequence[SesSender], platform_region: str) -> None:
    """An SES account has one contact list per region (the SES quota), so customers sending from the
    same one could each read, and mail, the other's recipients: refused unless both name each other."""
    by_code = {customer.code: customer for customer in customers}
    for customer in customers:
        account, region = ses_account_of(customer, platform_region)
        for named in customer.shares_ses_account_with:
            other = by_code.get(named)
            if named == customer.code:
                raise ValueError(f"customer {customer.code!r}: shares_ses_account_with names itself; remove it")
            if other is None:
                raise ValueError(
                    f"customer {customer.code!r}: shares_ses_account_with names {named!r}, which is not a "
                    "customer; remove it"
                )
            if ses_account_of(other, platform_region) != (account, region):
                other_account, other_region = ses_account_of(other, platform_region)
                raise ValueError(
                    f"customer {customer.code!r}: shares_ses_account_with names {named!r}, which sends from "
                    f"SES account {other_account} in {other_region}, not {account} in {region}; remove it"
                )
    groups: dict[tuple[str, str], list[SesSender]] = {}
    for customer in customers:
        groups.setdefault(ses_account_of(customer, platform_region), []).append(customer)
    for (account, region), group in groups.items():
        codes = {customer.code for customer in group}
        if all(codes - {c.code} <= set(c.shares_ses_account_with) for c in group):
            continue  # every pair names each other: set arithmetic, not a scan per pair (1,000 customers)
        for index, first in enumerate(group):
            for second in group[index + 1 :]:
                missing = [
                    f"{a.code!r} does not name {b.code!r}"
                    for a, b in ((first, second), (second, first))
                    if b.code not in a.shares_ses_account_with
                ]
                if missing:
                    raise ValueError(
                        f"customers {first.code!r} and {second.code!r} both send from SES account {account} in "
                        f"{region}, whose one contact list each could read, with the other's recipients "
                        f"({'; '.join(missing)}): give each its own SES account, or, if they may see each "
                        f"other's recipients, let both name each other in shares_ses_account_with "
                        f"({first.code}: [{second.code}], {second.code}: [{first.code}])"
                    )
