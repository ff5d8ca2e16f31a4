"""The local site server serves without aws-cdk-lib: it only needs the site's Content-Security-Policy
(``runtime.contract.site_headers``), and importing the CDK starts a jsii runtime in every demo run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import sys
from http.server import ThreadingHTTPServer

from devtools import site_server

def stop_at_once(self, *args, **kwargs):
    self.server_close()

ThreadingHTTPServer.serve_forever = stop_at_once
site_server.serve()
print(site_server.Handler.csp.startswith("default-src 'none'"), sorted({"aws_cdk", "jsii"} & set(sys.modules)))
"""


def test_the_site_server_serves_the_policy_without_importing_the_cdk() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env={"PYTHONPATH": str(ROOT)}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "True []"
