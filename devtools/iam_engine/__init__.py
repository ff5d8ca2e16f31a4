"""IAM decisions as AWS makes them, by an established engine (``@cloud-copilot/iam-simulate``, pinned in
package.json; AGPL-3.0, so a development and test tool only: never in the wheel or the runtime image).

``engine`` runs the engine (one node process, a JSON-lines pipe) and decides requests; ``templates``
turns a synthesized cloud assembly's roles, bucket, queue and key policies into plain policy documents
with concrete ARNs, which is what the engine reads.
"""

from devtools.iam_engine.engine import (
    ALLOWS,
    DENIES,
    Decision,
    PolicyEngine,
    PolicyEngineError,
    PolicyEngineUnavailable,
    Principal,
)

__all__ = ["ALLOWS", "DENIES", "Decision", "PolicyEngine", "PolicyEngineError", "PolicyEngineUnavailable", "Principal"]
