"""Issue 17, item 3: a withdrawn change whose archive was deleted, submitted again under the same id, is
mailed and audited as the new content it is — through the real submit, processor and coordinator."""

from __future__ import annotations

from runtime.contract import keys
from runtime.contract.keys import TriggerRef
from runtime.contract.names import COORDINATOR_METRICS_DIMENSION_VALUE
from runtime.pipeline import Outcome
from tests.runtime.coordinator.conftest import make_handler, processed, result, s3_event, write_processing
from tests.support.aws_platform import Platform


def test_a_withdrawn_change_deleted_and_submitted_again_is_mailed_and_audited_as_new(
    platform: Platform, change_id: str
) -> None:
    ref = TriggerRef("hts", change_id)
    body = s3_event(platform.bucket, keys.processing_key("hts", change_id))
    handler = make_handler(platform)

    platform.submit(change_id, customers=["hts"], summary="the old content")
    assert platform.processor("hts").process(ref, "sqs:m1").outcome is Outcome.PROCESSED
    platform.submit(change_id, customers=["hts"], summary="withdrawn", status="cancelled")
    assert platform.processor("hts").process(ref, "sqs:m2").outcome is Outcome.PROCESSED
    [folded] = handler(body, "sqs:c1", None)
    assert folded.outcome is Outcome.PROCESSED
    platform.s3.delete_object(Bucket=platform.bucket, Key=keys.archive_key(change_id))  # the runbook allows it
    emails_before = len(platform.emails("hts"))

    platform.submit(change_id, customers=["hts"], summary="the new content")
    again = platform.processor("hts").process(ref, "sqs:m3")
    assert again.outcome is Outcome.PROCESSED and again.revision == 3 and again.emails_sent > 0
    new_emails = platform.emails("hts")[emails_before:]
    assert len(new_emails) == again.emails_sent and all("the new content" in str(m["body"]) for m in new_emails)

    [res] = handler(body, "sqs:c2", None)
    assert res.outcome is Outcome.PROCESSED and res.reason == "folded revision 3"
    trail = processed(platform, change_id)
    assert [(e["customer_code"], e["revision"], e["emails_sent"]) for e in trail] == [("hts", 3, again.emails_sent)]
    assert platform.archive(change_id)["revision"] == 3
    # the old submission's results (revisions 1 and 2) were skipped quietly: not folded, no security event
    assert platform.metric_total("ResultsRefused", COORDINATOR_METRICS_DIMENSION_VALUE) == 0


def test_an_old_result_of_a_customer_the_new_submission_never_notified_stays_a_security_event(
    platform: Platform, change_id: str
) -> None:
    """Only the notified customer's own history is skipped quietly; anyone else's result is refused."""
    platform.submit(change_id, customers=["hts", "htsnonprod"])
    platform.s3.delete_object(Bucket=platform.bucket, Key=keys.archive_key(change_id))
    platform.submit(change_id, customers=["hts"], summary="the new content")  # revision 2, hts only
    write_processing(platform, "htsnonprod", change_id, result(1, sent=5000))
    [res] = make_handler(platform)(
        s3_event(platform.bucket, keys.processing_key("htsnonprod", change_id)), "sqs:c1", None
    )
    assert res.outcome is Outcome.PERMANENT_ERROR and "did not target" in res.reason
    assert platform.metric_total("ResultsRefused", COORDINATOR_METRICS_DIMENSION_VALUE) == 1
    assert processed(platform, change_id) == []
