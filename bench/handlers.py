"""The handlers every section runs, as source text, and the zips that carry them."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

TRIVIAL = """\
def handler(event, context):
    return {"ok": True}
"""

# The goal's "handler that imports boto3".
BOTO3 = """\
import boto3


def handler(event, context):
    return {"ok": True, "boto3": boto3.__version__}
"""

# What most real functions do at init: import the SDK and build a client once, outside the handler.
BOTO3_CLIENT = """\
import os

import boto3

S3 = boto3.client("s3", region_name=os.environ.get("AWS_REGION", "us-east-1"))


def handler(event, context):
    return {"ok": True, "region": S3.meta.region_name}
"""


@dataclass(frozen=True)
class Handler:
    key: str  # short name used in function names and tables
    title: str
    source: str

    def zip(self, salt: str = "") -> bytes:
        """The function package; a `salt` comment gives a distinct SHA-256 (a fresh code unpack)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("app.py", self.source + (f"# {salt}\n" if salt else ""))
        return buffer.getvalue()


TRIVIAL_HANDLER = Handler("trivial", 'trivial (`return {"ok": True}`)', TRIVIAL)
BOTO3_HANDLER = Handler("boto3", "boto3 (`import boto3` at init)", BOTO3)
BOTO3_CLIENT_HANDLER = Handler("boto3-client", '`import boto3` + `boto3.client("s3")` at init', BOTO3_CLIENT)
HANDLERS = (TRIVIAL_HANDLER, BOTO3_HANDLER, BOTO3_CLIENT_HANDLER)
