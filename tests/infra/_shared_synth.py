"""Apps that several infrastructure modules synthesize, built once per test run, and facts of a cloud
assembly read from its manifest.

The onboarding tests (``stacks/test_onboarding.py``, ``stacks/test_onboarding_diff.py``) both compare an
app with the same app plus the customer :data:`NEW`, for S3 routing (the sample) and for EventBridge
routing with meetings (the ``multi`` fixture's shape): each of those apps is synthesized once for the
whole run (:func:`tests.support.synth.synthesize_shared`) instead of once per module.

A synthesis shared this way may reach a module as a cloud assembly read from disk, with no constructs
in that process; asking it for its ``pipeline`` would build the whole app again. What cdk deploy reads
about a stack besides its template (the account it deploys to, the stacks it waits for) is in the
assembly's ``manifest.json``: :func:`stack_accounts` and :func:`stack_dependencies` read it there.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.support.synth import MEETINGS, Synth, sample_context, synthesize_shared

NEW = {
    "code": "newco",
    "account": "555555555555",
    "from_address": "changes@newco.example.com",
    "sender_external_id": "ttp-newco-41d2",
}
"""The customer the onboarding tests add: a code and an account new to the sample."""


def with_customer(context: dict[str, Any], customer: dict[str, Any] = NEW) -> dict[str, Any]:
    """``context`` with one more customer (a copy: the argument is not changed)."""
    context = copy.deepcopy(context)
    context["ttp"]["customers"].append(dict(customer))
    return context


def multi_context() -> dict[str, Any]:
    """The ``multi`` fixture's shape (``tests/infra/conftest.py``): EventBridge routing, meetings on."""
    return sample_context(routing="eventbridge", meetings=MEETINGS)


def sample_onboarded(factory: pytest.TempPathFactory) -> Synth:
    """The sample plus :data:`NEW`, with cdk-nag (as an operator's synth of the onboarded app runs it)."""
    return synthesize_shared(factory, "sample-newco", with_customer(sample_context()))


def multi_onboarded(factory: pytest.TempPathFactory) -> Synth:
    """The ``multi`` shape plus :data:`NEW`."""
    return synthesize_shared(factory, "multi-newco", with_customer(multi_context()), nag=False)


def _stack_artifacts(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    """Stack name -> (artifact id, artifact) of the assembly's manifest."""
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    return {
        artifact["properties"].get("stackName", artifact_id): (artifact_id, artifact)
        for artifact_id, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }


def stack_accounts(synth: Synth) -> dict[str, str]:
    """Stack name -> the account cdk deploy deploys it to (its artifact's ``aws://account/region``)."""
    return {
        name: artifact["environment"].removeprefix("aws://").split("/")[0]
        for name, (_, artifact) in _stack_artifacts(synth).items()
    }


def stack_dependencies(synth: Synth, stack_name: str) -> set[str]:
    """The stacks cdk deploy deploys before ``stack_name`` (and destroys after it), by stack name."""
    artifacts = _stack_artifacts(synth)
    names_by_id = {artifact_id: name for name, (artifact_id, _) in artifacts.items()}
    _, artifact = artifacts[stack_name]
    return {names_by_id[dependency] for dependency in artifact.get("dependencies", []) if dependency in names_by_id}


OWN_CONFIGURATION_SET = "acme-tracking"
"""The configuration set customer ``hts`` brings in :func:`own_configuration_set_app`."""


def own_configuration_set_app(factory: pytest.TempPathFactory) -> Synth:
    """hts sends with its own configuration set (:data:`OWN_CONFIGURATION_SET`, attached to, not created);
    both customers share one account (one forwarding rule). The delivery-events tests read its templates,
    the bootstrap-policy tests deploy its customer account stack under the prescribed policy."""
    context = sample_context()
    customers = context["ttp"]["customers"]
    customers[0]["configuration_set"] = OWN_CONFIGURATION_SET
    customers[1]["account"] = customers[0]["account"]
    customers[0]["shares_ses_account_with"], customers[1]["shares_ses_account_with"] = ["htsnonprod"], ["hts"]
    return synthesize_shared(factory, "own-configuration-set", context)
