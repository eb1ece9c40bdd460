"""The upload form: the file checks the pipeline applies, run before anything is stored."""

from __future__ import annotations

from django import forms
from django.core.files.uploadedfile import UploadedFile

from . import services
from .parsing import SUPPORTED_EXTENSIONS


class UploadForm(forms.Form):
    # Empty files pass the field so that upload_check gives the one message for them.
    file = forms.FileField(
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

    def clean_file(self) -> UploadedFile:
        upload = self.cleaned_data["file"]
        try:
            services.upload_check(filename=upload.name, size=upload.size)
        except services.ImportRejected as exc:
            raise forms.ValidationError(str(exc), code="rejected") from exc
        return upload
