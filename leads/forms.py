"""Forms of the people working on leads: the lead edit form, notes, bulk actions and saved views.

Email and phone go through the import's own validation (processing.standardize.validate_lead), so a
lead typed in by a person is stored exactly as the same values in an uploaded file would be.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from processing.standardize import validate_lead

from .models import LEAD_FIELDS, Lead, LeadNote, SavedView, lead_statuses
from .services import normalize_email

BULK_ACTIONS = {
    "status": "Set status",
    "owner": "Assign owner",
    "export": "Export selected",
    "delete": "Delete",
}
# The owner field's value meaning "nobody" in the bulk form.
UNASSIGNED = "none"


def status_choices() -> list[tuple[str, str]]:
    return [(status, status.capitalize()) for status in lead_statuses()]


def owner_queryset():
    return get_user_model().objects.filter(is_active=True).order_by("username")


class LeadForm(forms.ModelForm):
    status = forms.ChoiceField(choices=status_choices)
    owner = forms.ModelChoiceField(queryset=owner_queryset(), required=False, empty_label="Nobody")

    class Meta:
        model = Lead
        fields = [*LEAD_FIELDS, "status", "owner"]
        widgets = {"remarks": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("auto_id", "lead-%s")
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owner_queryset()
        self.fields["owner"].label_from_instance = lambda user: user.get_username()

    def clean_email(self) -> str:
        value = self.cleaned_data["email"].strip()
        if not value:
            return ""
        email = validate_lead({"email": value}, {"email": value}).fields["email"]
        if not email:
            raise forms.ValidationError("Enter a valid email address, like ada@example.com.", code="invalid")
        email = normalize_email(email)
        taken = Lead.objects.filter(email=email).exclude(email="").exclude(pk=self.instance.pk).first()
        if taken:
            raise forms.ValidationError(f"Another lead ({taken}) already has this email.", code="duplicate")
        return email

    def clean_phone(self) -> str:
        value = self.cleaned_data["phone"].strip()
        if not value:
            return ""
        phone = validate_lead({"phone": value}, {"phone": value}).fields["phone"]
        if not phone:
            raise forms.ValidationError("Enter a phone number, like +49 30 1234567.", code="invalid")
        return phone

    def changed_values(self) -> dict[str, object]:
        """The cleaned values of the fields this form holds, for leads.editing.lead_update."""
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class NoteForm(forms.ModelForm):
    class Meta:
        model = LeadNote
        fields = ["text"]
        labels = {"text": "Add a note"}
        error_messages = {"text": {"required": "Write something first."}}
        widgets = {"text": forms.Textarea(attrs={"rows": 2, "maxlength": 5000})}

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("auto_id", "note-%s")
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean_text(self) -> str:
        text = self.cleaned_data["text"].strip()
        if not text:
            raise forms.ValidationError("Write something first.", code="required")
        return text


class BulkForm(forms.Form):
    """What to do with which leads: the checked rows (`ids`) or every lead of the table (`all_matching`,
    with the table's query string in `query`)."""

    action = forms.ChoiceField(choices=BULK_ACTIONS.items())
    ids = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=())
    all_matching = forms.BooleanField(required=False)
    query = forms.CharField(required=False, max_length=4000)
    status = forms.ChoiceField(choices=[("", "—"), *status_choices()], required=False)
    owner = forms.CharField(required=False, max_length=20)
    confirmed = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "—"), *status_choices()]
        # Any integers: the ids are looked up in the database, which ignores those that do not exist.
        self.fields["ids"].valid_value = lambda value: True

    def clean_owner(self):
        value = self.cleaned_data["owner"]
        if value in ("", UNASSIGNED):
            return value
        user = owner_queryset().filter(pk=int(value)).first() if value.isdigit() else None
        if user is None:
            raise forms.ValidationError("Choose an owner from the list.", code="invalid")
        return user

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if not data.get("ids") and not data.get("all_matching"):
            raise forms.ValidationError("Select at least one lead first.", code="empty")
        if action == "status" and not data.get("status"):
            self.add_error("status", "Choose the status to set.")
        if action == "owner" and data.get("owner") in (None, ""):
            self.add_error("owner", "Choose who owns the leads (or Nobody).")
        return data


class SavedViewForm(forms.ModelForm):
    class Meta:
        model = SavedView
        fields = ["name"]
        labels = {"name": "Name of this view"}

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if SavedView.objects.filter(user=self.user, name=name).exists():
            raise forms.ValidationError("You already have a view with this name.", code="duplicate")
        return name
