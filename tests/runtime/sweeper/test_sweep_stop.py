"""A stop request (SIGTERM in ``python -m runtime sweep``) ends the pass at a trigger boundary."""

from __future__ import annotations

from runtime import services
from runtime.archive.documents import utcnow
from runtime.contract.exit_codes import EXIT_INTERRUPTED, EXIT_OK
from runtime.contract.settings import OpsSettings
from runtime.sweeper import Sweeper, SweepReport
from runtime.telemetry.metrics import MetricsFactory
from tests.support.aws_platform import Platform
from tests.support.ops_platform import backdate, queues

MIN = 60


def sweep(platform: Platform, stop_after_checks: int | None) -> SweepReport:
    checks = 0

    def stop_requested() -> bool:
        nonlocal checks
        checks += 1
        return stop_after_checks is not None and checks > stop_after_checks

    config = OpsSettings(bucket_name=platform.bucket, customer_queues=queues(platform))
    return Sweeper(
        platform.s3,
        platform.sqs,
        config,
        MetricsFactory("CustomMetrics", platform.metrics_stream),
        clock=utcnow,
        log=lambda *_: None,
        stop_requested=stop_requested,
    ).run()


def test_a_stop_request_ends_the_pass_between_triggers_and_keeps_what_was_done(light: Platform) -> None:
    platform = light
    for change in ("CHG-1", "CHG-2", "CHG-3"):
        platform.submit(change, ["customer-a"])
        backdate(platform, f"customers/customer-a/{change}.json", 20 * MIN)
    # checks: before customer-a, before each of its triggers: stop before the third trigger
    report = sweep(platform, stop_after_checks=3)
    assert report.interrupted
    assert [(a.change_id, a.action) for a in report.actions] == [("CHG-1", "redriven"), ("CHG-2", "redriven")]
    assert [c.customer for c in report.customers] == ["customer-a"]  # the customers after it: not reached
    assert sorted(blob["CustomerCode"] for blob in platform.metrics()) == ["customer-a"]  # no made-up zeros
    assert report.archives_checked == 0  # the repair of missing triggers did not start
    assert services.sweep_exit_code(report) == EXIT_INTERRUPTED
    assert services.sweep_document(report)["interrupted"] is True


def test_without_a_stop_request_the_pass_completes(light: Platform) -> None:
    platform = light
    platform.submit("CHG-1", ["customer-a"])
    backdate(platform, "customers/customer-a/CHG-1.json", 20 * MIN)
    report = sweep(platform, stop_after_checks=None)
    assert not report.interrupted and services.sweep_exit_code(report) == EXIT_OK
    assert len(report.customers) == len(queues(platform))
