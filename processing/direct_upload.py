"""Direct-to-S3 browser upload: the file goes from the browser to the bucket, never through the web
server (docs/importing.md, "Uploading").

1. `presign`: for a file the importer would accept (name, declared size), a presigned POST for a fresh
   key under uploads/ whose policy caps the body at MAX_UPLOAD_MB and expires after
   S3_DIRECT_UPLOAD_EXPIRY_SECONDS, and a token signing (key, user, filename).
2. The browser POSTs the file to S3 with that policy (the bucket needs CORS: docs/deployment.md).
3. `complete`: the token must be this user's for this key and filename, the object must exist and be
   imported once; the import then starts from the stored object (services.import_start_stored).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from botocore.exceptions import ClientError
from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.utils import timezone

from . import services
from .models import ImportJob

SALT = "processing.direct_upload"
# An issued key may be completed this long after it was signed: room for a slow upload of a large file.
TOKEN_MAX_AGE_SECONDS = 3600


class DirectUploadRefused(Exception):
    """The completion is not a direct upload this user started; str() is shown to the user."""


def presign(*, filename: str, size: int, user) -> dict:
    """The presigned POST (url, fields) for one file, its storage name and the completion token.

    Raises services.ImportRejected for a file the importer refuses anyway (type, size, empty)."""
    filename = Path(filename).name[:255]
    services.upload_check(filename=filename, size=size)
    name = f"uploads/{timezone.now():%Y/%m/%d}/{secrets.token_urlsafe(18)}{Path(filename).suffix.lower()}"
    post = _client().generate_presigned_post(
        Bucket=default_storage.bucket_name,
        Key=_object_key(name),
        Conditions=[["content-length-range", 1, settings.MAX_UPLOAD_MB * 1024 * 1024]],
        ExpiresIn=settings.S3_DIRECT_UPLOAD_EXPIRY_SECONDS,
    )
    token = signing.dumps({"name": name, "user": user.pk, "filename": filename}, salt=SALT)
    return {"url": post["url"], "fields": post["fields"], "name": name, "token": token}


def complete(*, name: str, filename: str, token: str, user) -> ImportJob:
    """Start the import of a directly uploaded object; DirectUploadRefused when the token was not
    issued to this user for this name, the object is missing, or it was imported already."""
    try:
        issued = signing.loads(token, salt=SALT, max_age=TOKEN_MAX_AGE_SECONDS)
    except signing.BadSignature as exc:  # also SignatureExpired
        raise DirectUploadRefused(
            "This upload was not started here or has expired. Upload the file again."
        ) from exc
    if issued != {"name": name, "user": user.pk, "filename": filename}:
        raise DirectUploadRefused("This upload was not started by you. Upload the file again.")
    if ImportJob.objects.filter(file=name).exists():
        raise DirectUploadRefused("This upload has already been imported.")
    size = stored_size(name)
    if size is None:
        raise DirectUploadRefused("The file did not arrive in storage. Upload it again.")
    return services.import_start_stored(
        name=name, filename=filename, size=size, user=user, review_mode=settings.IMPORT_REVIEW
    )


def stored_size(name: str) -> int | None:
    """The object's size in bytes as S3 reports it, None when there is no such object."""
    try:
        head = _client().head_object(Bucket=default_storage.bucket_name, Key=_object_key(name))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise
    return int(head["ContentLength"])


def _client():
    """The boto3 client of the default S3Storage: its endpoint, credentials and addressing style."""
    return default_storage.connection.meta.client


def _object_key(name: str) -> str:
    """The S3 key of a storage name (the storage's `location` prefix, if one is set)."""
    return default_storage._normalize_name(name)
