"""The question box."""

from __future__ import annotations

from django import forms

from .services import MAX_QUESTION_CHARS


class QuestionForm(forms.Form):
    text = forms.CharField(
        max_length=MAX_QUESTION_CHARS,
        error_messages={
            "required": "Type a question first.",
            "max_length": "A question can have at most %(limit_value)d characters (this one has %(show_value)d).",
        },
    )
