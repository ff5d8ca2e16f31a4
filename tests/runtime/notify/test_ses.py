"""SES: topic subscribers (the client-side filter) and the shared rate limiter."""

from __future__ import annotations

import pytest

from runtime.notify.ses import RateLimiter, topic_subscribers

# ---- subscribers (client-side filter) -----------------------------------------------------------


class FakeSes:
    """An SES that ignores TopicFilter, like moto: the client-side filter must still be right."""

    def __init__(self, contacts: list[dict], default: str = "OPT_IN") -> None:
        self.contacts = contacts
        self.default = default

    def get_contact_list(self, ContactListName: str) -> dict:
        return {"Topics": [{"TopicName": "t", "DefaultSubscriptionStatus": self.default}]}

    def list_contacts(self, **kwargs: object) -> dict:
        start = int(str(kwargs.get("NextToken", "0")))
        page = self.contacts[start : start + 2]
        token = str(start + 2) if start + 2 < len(self.contacts) else None
        return {"Contacts": page, **({"NextToken": token} if token else {})}


def test_subscribers_honour_preferences_defaults_unsubscribe_all_and_pages() -> None:
    contacts = [
        {"EmailAddress": "a@x.com"},
        {"EmailAddress": "B@x.com", "TopicPreferences": [{"TopicName": "t", "SubscriptionStatus": "OPT_IN"}]},
        {"EmailAddress": "b@X.com"},
        {"EmailAddress": "c@x.com", "TopicPreferences": [{"TopicName": "t", "SubscriptionStatus": "OPT_OUT"}]},
        {"EmailAddress": "d@x.com", "UnsubscribeAll": True},
        {"EmailAddress": "e@x.com", "TopicDefaultPreferences": [{"TopicName": "t", "SubscriptionStatus": "OPT_OUT"}]},
    ]
    assert topic_subscribers(FakeSes(contacts), "list", "t") == ["a@x.com", "B@x.com"]
    assert topic_subscribers(FakeSes(contacts, default="OPT_OUT"), "list", "t") == ["B@x.com"]


# ---- rate limiter -------------------------------------------------------------------------------


def test_rate_limiter_paces_to_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(5.0, clock=lambda: now[0])

    def sleep(seconds: float) -> None:
        now[0] += seconds

    for _ in range(51):
        limiter.acquire(sleep)
    assert now[0] == pytest.approx(10.0, rel=0.01)  # 50 intervals of 1/5 s after the first token
