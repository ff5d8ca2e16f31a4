"""The submission site (cdk_constructs.submission_site) in the storage stack: distribution, origin access,
headers policy, edge authentication, API role; synthesized with cdk-nag (a finding fails the synthesis)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from cdk_constructs.submission_site import CALLBACK_PATH, CONTENT_SECURITY_POLICY
from runtime.contract.names import CUSTOMER_REGISTRY_PATH
from tests.support.synth import Synth, as_list, sample_context, statements, synthesize

SITE = {
    "issuer": "https://idp.example.com",
    "client_id": "ttp-site",
    "authorize_url": "https://idp.example.com/authorize",
    "token_url": "https://idp.example.com/token",
    "jwks_url": "https://idp.example.com/jwks",
}
STACK = "TtpStorage"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    context = sample_context(site=SITE)
    context["aws:cdk:bundling-stacks"] = []  # no pip download at test time; the asset hashes the sources
    return synthesize(tmp_path_factory.mktemp("site"), context)


def _distribution(site: Synth) -> dict[str, Any]:
    return site.only(STACK, "AWS::CloudFront::Distribution")["Properties"]["DistributionConfig"]


def test_https_only_behaviours_with_the_edge_check_on_every_one(site: Synth) -> None:
    config = _distribution(site)
    behaviours = [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
    assert [b.get("PathPattern") for b in behaviours] == [None, "/api/*"]
    for behaviour in behaviours:
        assert behaviour["ViewerProtocolPolicy"] == "https-only"
        (association,) = behaviour["LambdaFunctionAssociations"]
        assert association["EventType"] == "viewer-request"
    assert config["DefaultRootObject"] == "index.html"


def test_both_origins_use_origin_access_control(site: Synth) -> None:
    kinds = sorted(
        oac["Properties"]["OriginAccessControlConfig"]["OriginAccessControlOriginType"]
        for oac in site.resources(STACK, "AWS::CloudFront::OriginAccessControl").values()
    )
    assert kinds == ["lambda", "s3"]
    origins = _distribution(site)["Origins"]
    assert all("OriginAccessControlId" in origin for origin in origins), origins
    url = site.only(STACK, "AWS::Lambda::Url")["Properties"]
    assert url["AuthType"] == "AWS_IAM"
    bucket = site.resources(STACK, "AWS::S3::Bucket")
    site_bucket = next(b for logical_id, b in bucket.items() if logical_id.startswith("SiteBucket"))
    assert site_bucket["Properties"]["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }


def test_headers_policy_has_the_strict_csp(site: Synth) -> None:
    config = site.only(STACK, "AWS::CloudFront::ResponseHeadersPolicy")["Properties"]["ResponseHeadersPolicyConfig"]
    security = config["SecurityHeadersConfig"]
    assert security["ContentSecurityPolicy"]["ContentSecurityPolicy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] == 31536000


def test_edge_function_carries_the_oidc_config_and_the_api_its_settings(site: Synth) -> None:
    functions = site.resources(STACK, "AWS::Lambda::Function")
    handlers = {f["Properties"]["Handler"]: f["Properties"] for f in functions.values()}
    assert handlers["edge_auth.handler"]["Runtime"] == "python3.13"
    api = handlers["runtime.web.app.handler"]
    env = api["Environment"]["Variables"]
    assert env["TTP_BUCKET_NAME"] == site.config.bucket_name or env["TTP_BUCKET_NAME"].startswith("ttp-metadata-")
    assert env["TTP_SITE_CUSTOMERS"] == ",".join(sorted(c.code for c in site.config.customers))


def test_the_edge_function_is_bundled_alone_with_the_code_flows_settings(site: Synth) -> None:
    """Lambda@Edge has no environment variables: the provider's endpoints are baked into the asset at
    synthesis, beside the standard-library handler (no client secret: the client is public, PKCE)."""
    (edge,) = [
        f for f in site.resources(STACK, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "edge_auth.handler"
    ]  # fmt: skip
    asset = site.outdir / f"asset.{edge['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    assert sorted(p.name for p in asset.iterdir()) == ["config.json", "edge_auth.py"]
    assert json.loads((asset / "config.json").read_text()) == {**SITE, "callback_path": CALLBACK_PATH}
    assert (edge["Properties"]["MemorySize"], edge["Properties"]["Timeout"]) == (128, 5)
    assert "Environment" not in edge["Properties"]


def test_api_role_writes_archive_and_drafts_only_conditionally(site: Synth) -> None:
    found = [
        s
        for policy in site.resources(STACK, "AWS::IAM::Policy").values()
        if policy["Properties"]["PolicyName"].startswith("SiteApiPolicy")
        for s in statements(policy)
    ]
    puts = [s for s in found if "s3:PutObject" in as_list(s["Action"])]
    unconditional = [r for s in puts if "Condition" not in s for r in as_list(s["Resource"])]
    assert [str(r).rsplit("/", 1)[-1] if isinstance(r, str) else r for r in unconditional] == ["*"]
    assert all(str(r).endswith("/customers/*") for r in unconditional)
    conditional = {
        str(r).split(":::")[-1].split("/", 1)[-1] for s in puts if "Condition" in s for r in as_list(s["Resource"])
    }
    assert conditional == {"archive/*", "drafts/*"}
    assert sorted(next(iter(s["Condition"]["Null"])) for s in puts if "Condition" in s) == [
        "s3:if-match",
        "s3:if-none-match",
    ]
    actions = {a for s in found for a in as_list(s["Action"]) if a.startswith("s3:")}
    assert actions == {
        "s3:PutObject",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectTagging",
        "s3:ListBucket",
        "s3:ListBucketVersions",
    }


def test_api_role_lists_only_the_prefixes_the_page_reads(site: Synth) -> None:
    """A listing without one of the page's prefixes (the whole bucket, another writer's objects) is not
    allowed: ``s3:prefix`` must name one (absent, as in an unprefixed listing, it does not match)."""
    found = [
        s
        for policy in site.resources(STACK, "AWS::IAM::Policy").values()
        if policy["Properties"]["PolicyName"].startswith("SiteApiPolicy")
        for s in statements(policy)
    ]
    (listing,) = [s for s in found if "s3:ListBucket" in as_list(s["Action"])]
    assert listing["Condition"] == {
        "StringLike": {"s3:prefix": ["archive/*", "drafts/*", "customers/*", "processing/*", "delivery/*"]}
    }


def test_api_role_may_read_the_customer_registry_the_api_falls_back_to(site: Synth) -> None:
    """Without a published list (the construct used alone), the API lists the registry in its account:
    read-only, that path only."""
    found = [
        s
        for policy in site.resources(STACK, "AWS::IAM::Policy").values()
        if policy["Properties"]["PolicyName"].startswith("SiteApiPolicy")
        for s in statements(policy)
    ]
    (registry,) = [s for s in found if any(a.startswith("ssm:") for a in as_list(s["Action"]))]
    assert sorted(as_list(registry["Action"])) == ["ssm:GetParameters", "ssm:GetParametersByPath"]
    paths = sorted(json.dumps(r).rsplit(":parameter", 1)[-1].rstrip('"]}') for r in as_list(registry["Resource"]))
    assert paths == [CUSTOMER_REGISTRY_PATH, f"{CUSTOMER_REGISTRY_PATH}/*"]


def test_the_sample_without_ttp_site_has_no_site(sample: Synth) -> None:
    assert sample.resources(STACK, "AWS::CloudFront::Distribution") == {}


def test_only_cloudfront_may_invoke_the_api_and_nag_passed(site: Synth) -> None:
    """The fixture synthesized with cdk-nag registered (a finding raises); the function URL's permission
    names CloudFront as its only principal."""
    permissions = site.resources(STACK, "AWS::Lambda::Permission")
    url_permissions = [
        p["Properties"] for p in permissions.values() if p["Properties"]["Action"] == "lambda:InvokeFunctionUrl"
    ]
    assert url_permissions and all(p["Principal"] == "cloudfront.amazonaws.com" for p in url_permissions)
    template = site.template(STACK)
    template.has_resource_properties(
        "AWS::Lambda::Permission", {"Principal": "cloudfront.amazonaws.com", "Action": Match.any_value()}
    )
