"""The upload form: the file checks the pipeline applies, run before anything is stored."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from . import services
from .parsing import SUPPORTED_EXTENSIONS


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Django's documented multiple-file field: cleans every file of the input, returns a list."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None) -> list[UploadedFile]:
        single_file_clean = super().clean
        if isinstance(data, list | tuple) and data:
            return [single_file_clean(item, initial) for item in data]
        return [single_file_clean(data or None, initial)]  # nothing chosen: the "required" error


class UploadForm(forms.Form):
    # Empty files pass the field so that upload_check gives the one message for them.
    file = MultipleFileField(
        allow_empty_file=True,
        error_messages={"required": "Choose a CSV or Excel file to upload."},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = services.upload_rules()

    @property
    def accept(self) -> str:
        """The file picker's `accept` attribute: the extensions the parser reads."""
        return ",".join(SUPPORTED_EXTENSIONS)

    @property
    def max_files(self) -> int:
        return settings.MAX_UPLOAD_FILES

    @property
    def direct_upload(self) -> bool:
        """Whether the card's script sends files straight to S3 (processing.direct_upload)."""
        return settings.S3_DIRECT_UPLOAD

    def clean_file(self) -> list[UploadedFile]:
        """At most MAX_UPLOAD_FILES files. Refused only when every file is: a refused file among
        accepted ones becomes a failed import with its reason (import_start), the others go ahead."""
        uploads = self.cleaned_data["file"]
        if len(uploads) > settings.MAX_UPLOAD_FILES:
            raise forms.ValidationError(
                f"Choose at most {settings.MAX_UPLOAD_FILES} files at once; you chose {len(uploads)}.",
                code="too_many",
            )
        refusals = []
        for upload in uploads:
            try:
                services.upload_check(filename=upload.name, size=upload.size)
            except services.ImportRejected as exc:
                refusals.append(str(exc) if len(uploads) == 1 else f"{upload.name}: {exc}")
        if len(refusals) == len(uploads):
            raise forms.ValidationError(
                [forms.ValidationError(refusal, code="rejected") for refusal in refusals]
            )
        return uploads
