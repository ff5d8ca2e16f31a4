"""The change managers' web API (issue 23): the submission site's Lambda, on the runtime's own code.

* :mod:`runtime.web.service` — what the page can do (validate, drafts, submit, read a change, the
  customer list), as plain functions over boto3 clients: the same model and messages as ``submit``.
* :mod:`runtime.web.app` — the HTTP routes (Powertools' ``LambdaFunctionUrlResolver``: CloudFront in
  front of a function URL with origin access control) and the Lambda ``handler``.
* :mod:`runtime.web.edge_auth` — the Lambda@Edge viewer-request check of the OIDC ID token, standard
  library only (it is bundled alone, without this package).
"""

from runtime.web.service import IDENTITY_HEADER, Conflict, NotFound, SiteService, Unauthenticated

__all__ = ["IDENTITY_HEADER", "Conflict", "NotFound", "SiteService", "Unauthenticated"]
