"""Issue 19, upgrades: every resource of the sample two-customer deployment keeps its stack, logical id,
type and physical name (queues hold messages, buckets hold data). The committed list
(``sample_resource_names.json``) is the deployed state; a change to any row is a replacement or a move
that needs a documented deploy order, so it must be deliberate: regenerate the list with
``.venv/bin/python -m tests.infra.stacks.test_upgrade_names`` and say why in the commit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.support.synth import Synth, synthesize
from tests.support.template_diff import names_file_text, resource_names

NAMES_FILE = Path(__file__).with_name("sample_resource_names.json")


def test_every_logical_id_and_physical_name_of_the_sample_is_unchanged(sample: Synth) -> None:
    committed = json.loads(NAMES_FILE.read_text())
    current = resource_names(sample.templates)
    missing = [row for row in committed if row not in current]
    added = [row for row in current if row not in committed]
    assert (missing, added) == ([], []), "resources replaced, moved or renamed (see the module docstring)"


def test_the_list_covers_every_stack_and_names_the_stateful_resources() -> None:
    rows = json.loads(NAMES_FILE.read_text())
    assert {row[0] for row in rows} == {
        "TtpStorage",
        "TtpPlatform",
        "TtpCustomer-hts",
        "TtpCustomer-htsnonprod",
        "TtpCustomerAccount-hts",
        "TtpCustomerAccount-htsnonprod",
    }
    named = {(row[2], row[3]) for row in rows}
    assert ("AWS::S3::Bucket", "ttp-metadata-111111111111-us-east-1") in named
    assert ("AWS::SQS::Queue", "customer-hts-changes") in named
    assert ("AWS::IAM::Role", "ttp-ses-sender-htsnonprod") in named


if __name__ == "__main__":  # regenerate the committed list (a deliberate rename only)
    import tempfile

    synth = synthesize(Path(tempfile.mkdtemp()), nag=False, read_metadata=False)
    NAMES_FILE.write_text(names_file_text(resource_names(synth.templates)))
    print(f"wrote {NAMES_FILE}", file=sys.stderr)
