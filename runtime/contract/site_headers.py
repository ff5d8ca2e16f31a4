"""The submission site's Content-Security-Policy: what CloudFront's response headers policy sends
(``cdk_constructs/submission_site.py``) and the local site server sends too (``devtools/site_server.py``).

Here, not beside the construct, so that the local server reads it without importing aws-cdk-lib: that
import (and the jsii runtime it starts) cost each local site server ~2 CPU s, in every demo run."""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
