"""The change managers' submission site (issue 23): a private S3 site behind CloudFront, the API Lambda
behind the same distribution, and OIDC authentication at the edge in front of every page and API call.

* **Site**: a private bucket (all public access blocked, TLS only), read by CloudFront through origin
  access control; the pages are ``runtime/web/static`` (``BucketDeployment``). HTTPS only; every response
  carries a strict Content-Security-Policy (``'self'`` only, no inline script or style, no framing), HSTS,
  ``nosniff`` and ``no-referrer`` (a response-headers policy).
* **API**: ``runtime.web.app.handler`` (Powertools' event handler on the runtime's own submit code) behind
  ``/api/*``, a function URL with ``AWS_IAM`` auth reached through origin access control, so only this
  distribution can invoke it. No caching.
* **Authentication**: a Lambda@Edge viewer-request function (``runtime/web/edge_auth.py``) on every
  behaviour runs the OIDC authorization-code flow with PKCE (state, nonce and code verifier in
  short-lived HttpOnly cookies; the callback ``/auth/callback`` exchanges the code and checks state,
  nonce, issuer, audience, expiry and the RS256 signature against the provider's JWKS), keeps the ID token
  as an HttpOnly session cookie, strips any ``x-ttp-user`` the viewer sent and sets it to the signed-in
  identity, which the API records as the submitter. This is the pattern of AWS's authorization@edge
  samples (Cognito, or any OIDC provider; IAM Identity Center through one that federates it);
  docs/infrastructure.md says what an operator configures.
* **Least privilege**: the API's role may write ``archive/*`` and ``drafts/*`` only conditionally
  (``If-Match`` / ``If-None-Match``, as ``submit`` writes them), create triggers under ``customers/*``,
  read what the change page shows (archive and its versions, processing, delivery, triggers and their
  tags), and nothing else. The metadata bucket's explicit denies (compare-and-swap only on ``archive/``)
  hold for it too; it is in the bucket's own account, so its identity policy is enough.

Bundled without Docker: the API's asset is ``runtime/`` plus ``pip install --require-hashes -r
runtime/requirements.txt`` for the Lambda platform (``--platform manylinux2014_*``, ``--only-binary``),
run locally at synthesis (:class:`PipBundling`); a synthesis that skips bundling (context
``aws:cdk:bundling-stacks``) hashes the sources instead. The edge function's asset is ``edge_auth.py`` and
its ``config.json`` only (Lambda@Edge has no environment variables; 128 MB, 5 s: the viewer-request limits).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, Duration, ILocalBundling, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from cdk_support.lazy import lazy_string
from cdk_support.log_retention import DEFAULT_LOG_RETENTION_DAYS, retention
from cdk_support.nag import acknowledge, acknowledge_wildcard_resources, nag_string
from runtime.contract import keys, names
from runtime.contract.site_headers import CONTENT_SECURITY_POLICY

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_DIR = ROOT / "runtime"
STATIC_DIR = RUNTIME_DIR / "web" / "static"
EDGE_SOURCE = RUNTIME_DIR / "web" / "edge_auth.py"
API_HANDLER = "runtime.web.app.handler"
BUCKET_VARIABLE = "TTP_BUCKET_NAME"
CUSTOMERS_VARIABLE = "TTP_SITE_CUSTOMERS"
LAMBDA_BASIC_EXECUTION = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
)
"""cdk-nag's finding for the AWS managed policy that lets a function write its own log streams."""
PAGE_PREFIXES = (
    keys.ARCHIVE_PREFIX,
    keys.DRAFTS_PREFIX,
    keys.CUSTOMERS_PREFIX,
    keys.PROCESSING_PREFIX,
    keys.DELIVERY_PREFIX,
)
"""What the change page reads (drafts and archive also written, conditionally; customers/ created)."""
EDGE_RUNTIME = lambda_.Runtime.PYTHON_3_13
"""The newest Python runtime Lambda@Edge supports (it lags the regional Lambda's)."""
_IGNORED = ("__pycache__", "*.pyc", "Dockerfile", "requirements.in")
CALLBACK_PATH = "/auth/callback"
"""Where the provider returns the browser: the redirect URI's path, handed to the edge function in its
``config.json`` (it is bundled alone)."""


@dataclass(frozen=True)
class SiteOidc:
    """The OIDC provider the edge function checks ID tokens against (docs/infrastructure.md)."""

    issuer: str
    """The provider's issuer URL (the tokens' ``iss``). Required."""
    client_id: str
    """The site's client id at the provider (the tokens' ``aud``). Required."""
    authorize_url: str
    """The provider's authorization endpoint a signed-out viewer is sent to. Required."""
    jwks_url: str
    """The provider's signing keys (JWKS). Required."""
    token_url: str
    """The provider's token endpoint, where the edge exchanges the authorization code (with the PKCE
    verifier; the client is public, no secret). Required."""


@dataclass(frozen=True)
class SubmissionSiteProps:
    """Props of :class:`SubmissionSite`."""

    bucket_name: str
    """The metadata bucket the API reads and writes (archive, drafts, triggers). Required."""
    oidc: SiteOidc
    """The OIDC provider of the edge authentication. Required."""
    customers: Callable[[], Sequence[str]] = tuple
    """The published customer list the page offers (rendered at synthesis, so customers registered
    later are listed). Default: none (the API then reads the ``/ttp/customers`` registry in its own
    account and region, which its role may read)."""
    architecture: str = "X86_64"
    """The API function's CPU architecture (``X86_64`` or ``ARM64``). Default: ``X86_64``."""
    memory_mb: int = 512
    """The API function's memory. Default: 512."""
    timeout_seconds: int = 20
    """The API function's timeout (the change page reads every customer's objects). Default: 20."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Days the API's log group keeps its logs.
    Default: ``cdk_support.log_retention.DEFAULT_LOG_RETENTION_DAYS``."""


@jsii.implements(ILocalBundling)
class PipBundling:
    """``runtime/`` plus its hash-locked requirements for the Lambda platform, without Docker."""

    def __init__(self, architecture: str) -> None:
        self.platform = "manylinux2014_aarch64" if architecture == "ARM64" else "manylinux2014_x86_64"

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        out = Path(output_dir)
        shutil.copytree(RUNTIME_DIR, out / "runtime", ignore=shutil.ignore_patterns(*_IGNORED), dirs_exist_ok=True)
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--require-hashes", "--no-deps",
            "-r", str(RUNTIME_DIR / "requirements.txt"), "--target", str(out),
            "--platform", self.platform, "--implementation", "cp", "--python-version", "3.14",
            "--only-binary=:all:",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"bundling the site API failed (pip install for {self.platform}): {result.stderr[-2000:]}; "
                "the packages come from PyPI, or skip bundling with the context aws:cdk:bundling-stacks"
            )
        return True


def edge_code(oidc: SiteOidc) -> lambda_.Code:
    """``edge_auth.py`` + ``config.json`` in a directory of their own (the asset hash is their content)."""
    folder = Path(tempfile.mkdtemp(prefix="ttp-edge-auth-"))
    shutil.copy(EDGE_SOURCE, folder / "edge_auth.py")
    config = {"issuer": oidc.issuer, "client_id": oidc.client_id}
    config |= {"authorize_url": oidc.authorize_url, "token_url": oidc.token_url, "jwks_url": oidc.jwks_url}
    config["callback_path"] = CALLBACK_PATH
    (folder / "config.json").write_text(json.dumps(config, sort_keys=True))
    return lambda_.Code.from_asset(str(folder))


class SubmissionSite(Construct):
    """Attributes: ``bucket`` (the site), ``distribution``, ``api`` (function), ``api_role``, ``auth``
    (the edge function), ``url`` (``https://<distribution domain>``)."""

    def __init__(self, scope: Construct, construct_id: str, props: SubmissionSiteProps) -> None:
        super().__init__(scope, construct_id)
        self.bucket = self._site_bucket()
        self.api_role, self.api, url = self._api(props)
        self.auth = self._edge_auth(props)
        self.distribution = self._distribution(url)
        self.deployment = self._pages(props)
        self._acknowledge_deployment()
        self.url = f"https://{self.distribution.distribution_domain_name}"

    def _site_bucket(self) -> s3.Bucket:
        """The private bucket of the static pages; only CloudFront reads it (origin access control)."""
        bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "The site bucket holds only the static pages deployed from the repository; every viewer request "
            "reaches it through CloudFront, whose requests the API and the edge check see",
        )
        return bucket

    def _api(self, props: SubmissionSiteProps) -> tuple[iam.Role, lambda_.Function, lambda_.FunctionUrl]:
        """The API function (the runtime's own submit code), its least-privilege role and its IAM-auth URL."""
        self.api_role = iam.Role(
            self,
            "ApiRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Submission site API: conditional archive/drafts writes, trigger creation, reads",
        )
        self._grant(props.bucket_name)
        api = lambda_.Function(
            self,
            "Api",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64 if props.architecture == "ARM64" else lambda_.Architecture.X86_64,
            handler=API_HANDLER,
            code=lambda_.Code.from_asset(
                str(RUNTIME_DIR),
                asset_hash_type=AssetHashType.SOURCE,
                exclude=list(_IGNORED),
                bundling=BundlingOptions(
                    image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
                    local=PipBundling(props.architecture),
                ),
            ),
            role=self.api_role,
            log_group=logs.LogGroup(self, "ApiLogs", retention=retention(props.log_retention_days)),
            memory_size=props.memory_mb,
            timeout=Duration.seconds(props.timeout_seconds),
            environment={
                BUCKET_VARIABLE: props.bucket_name,
                CUSTOMERS_VARIABLE: lazy_string(lambda: ",".join(sorted(props.customers()))),
            },
        )
        return self.api_role, api, api.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)

    def _edge_auth(self, props: SubmissionSiteProps) -> cloudfront.experimental.EdgeFunction:
        """The viewer-request function that signs every page and API call in (OIDC code flow with PKCE)."""
        auth = cloudfront.experimental.EdgeFunction(
            self,
            "Auth",
            runtime=EDGE_RUNTIME,
            handler="edge_auth.handler",
            code=edge_code(props.oidc),
            log_group=logs.LogGroup(self, "AuthLogs", retention=retention(props.log_retention_days)),
            memory_size=128,
            timeout=Duration.seconds(5),
        )
        for construct, rule, reason in (
            (auth.node.default_child or auth, "AwsSolutions-L1",
             "Lambda@Edge supports Python runtimes up to 3.13 (EDGE_RUNTIME); the regional API runs the latest"),
            (auth, LAMBDA_BASIC_EXECUTION,
             "The edge function's role only writes its own CloudWatch log streams in the regions it runs in"),
        ):  # fmt: skip
            acknowledge(construct, rule, reason)
        return auth

    def _distribution(self, url: lambda_.FunctionUrl) -> cloudfront.Distribution:
        """CloudFront in front of the pages and the API, HTTPS only, strict headers, sign-in on every path."""
        edge = [
            cloudfront.EdgeLambda(
                function_version=self.auth.current_version, event_type=cloudfront.LambdaEdgeEventType.VIEWER_REQUEST
            )
        ]
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            comment="Submission site: strict CSP, HSTS, no framing, no sniffing, no referrer",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=CONTENT_SECURITY_POLICY, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365), include_subdomains=True, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
            ),
        )
        distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Transient Trigger Pipeline: change submission site",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                response_headers_policy=headers,
                edge_lambdas=edge,
            ),
            additional_behaviors={
                "/api/*": cloudfront.BehaviorOptions(
                    origin=origins.FunctionUrlOrigin.with_origin_access_control(url),
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                    response_headers_policy=headers,
                    edge_lambdas=edge,
                )
            },
        )
        acknowledge(
            distribution,
            "AwsSolutions-CFR1",
            "Change managers are authenticated by their OIDC provider at the edge; a country allow-list would "
            "only lock out travelling staff",
        )
        acknowledge(
            distribution,
            "AwsSolutions-CFR2",
            "Every request needs a valid ID token checked at the edge before any origin is reached; a WAF web "
            "ACL is the operator's choice (cost), not needed for this internal site",
        )
        acknowledge(
            distribution,
            "AwsSolutions-CFR3",
            "The API records who submitted in the archive's audit trail and logs every request in CloudWatch; "
            "CloudFront access logs would need an ACL-enabled log bucket",
        )
        acknowledge(
            distribution,
            "AwsSolutions-CFR4",
            "The distribution uses its default *.cloudfront.net certificate, whose TLS floor CloudFront sets; "
            "a custom domain with TLSv1.2_2021 is the operator's addition",
        )
        return distribution

    def _pages(self, props: SubmissionSiteProps) -> s3deploy.BucketDeployment:
        """The static pages copied into the site bucket, the distribution's cache invalidated."""
        return s3deploy.BucketDeployment(
            self,
            "Pages",
            sources=[s3deploy.Source.asset(str(STATIC_DIR))],
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
            memory_limit=256,
            log_group=logs.LogGroup(self, "PagesLogs", retention=retention(props.log_retention_days)),
        )

    def _grant(self, bucket_name: str) -> None:
        arn = f"arn:{Stack.of(self).partition}:s3:::{bucket_name}"

        def objects(prefix: str) -> str:
            return f"{arn}/{prefix}*"

        archive, drafts = objects(keys.ARCHIVE_PREFIX), objects(keys.DRAFTS_PREFIX)
        statements = [
            iam.PolicyStatement(
                sid=f"WriteArchiveAndDrafts{name}",
                actions=["s3:PutObject"],
                resources=[archive, drafts],
                conditions={"Null": {header: "false"}},
            )
            for name, header in (("IfMatch", "s3:if-match"), ("IfNoneMatch", "s3:if-none-match"))
        ]
        statements += [
            iam.PolicyStatement(
                sid="CreateTriggers", actions=["s3:PutObject"], resources=[objects(keys.CUSTOMERS_PREFIX)]
            ),
            iam.PolicyStatement(
                sid="ReadWhatThePageShows",
                actions=["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging"],
                resources=[objects(p) for p in PAGE_PREFIXES],
            ),
            iam.PolicyStatement(
                sid="ListWhatThePageShows",
                actions=["s3:ListBucket", "s3:ListBucketVersions"],
                resources=[arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in PAGE_PREFIXES]}},
            ),
        ]
        stack = Stack.of(self)
        registry = f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter{names.CUSTOMER_REGISTRY_PATH}"
        statements.append(
            iam.PolicyStatement(
                sid="ReadTheCustomerRegistry",
                actions=["ssm:GetParameters", "ssm:GetParametersByPath"],
                resources=[registry, f"{registry}/*"],
            )
        )
        policy = iam.Policy(self, "ApiPolicy", statements=statements)
        policy.attach_to_role(self.api_role)
        self.api_role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole")
        )
        acknowledge_wildcard_resources(
            policy,
            [objects(p) for p in PAGE_PREFIXES],
            "The page's objects are keyed by change id and customer code under these prefixes; writes to archive/ "
            "and drafts/ need If-Match or If-None-Match (the Null conditions), as submit writes them",
        )  # fmt: skip
        acknowledge_wildcard_resources(
            policy,
            [f"{registry}/*"],
            "The customer registry holds one parameter per customer code; without a published list the API "
            "offers the registered customers (read only)",
        )
        acknowledge(
            self.api_role,
            LAMBDA_BASIC_EXECUTION,
            "AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch log streams, the "
            "minimum a Lambda function needs to log",
        )

    def _acknowledge_deployment(self) -> None:
        """CDK's own ``BucketDeployment`` provider (one per stack): its findings are its design, not ours."""
        role = self.deployment.handler_role
        reason = (
            "CDK's BucketDeployment provider copies the site's pages from the CDK asset bucket into the site "
            "bucket and invalidates the distribution; its policy is CDK's, scoped to those two buckets"
        )
        rules = [
            LAMBDA_BASIC_EXECUTION,
            *(
                f"AwsSolutions-IAM5[Action::{action}]"
                for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*")
            ),
            "AwsSolutions-IAM5[Resource::*]",
            f"AwsSolutions-IAM5[Resource::{nag_string(Stack.of(self), self.bucket.bucket_arn)}/*]",
        ]  # fmt: skip
        stack = Stack.of(self)
        # The bootstrap's file-asset bucket (the default synthesizer's qualifier), as the policy names it.
        assets_bucket = f"arn:{stack.partition}:s3:::cdk-hnb659fds-assets-{stack.account}-{stack.region}/*"
        rules.append(f"AwsSolutions-IAM5[Resource::{nag_string(stack, assets_bucket)}]")
        for rule in rules:
            acknowledge(role, rule, reason)
        provider = role.node.scope
        assert provider is not None  # the provider function owns its role
        reason = "CDK's BucketDeployment provider function sets its own runtime version (CDK's choice, not ours)"
        acknowledge(provider, "AwsSolutions-L1", reason)
