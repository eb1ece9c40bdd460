"""A user's conversation with the lead assistant: the questions, the answers and the plan behind each;
and the count of a user's questions per minute, for the rate limit."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.db.models import F
from django.urls import reverse

from leads.filters import CONDITION_FIELDS


class Conversation(models.Model):
    # One per user: "New conversation" deletes it, the next question creates another.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_conversation"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The last plan that was answered: a follow-up question ("and of them…") refines it.
    last_plan = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Conversation {self.pk} of {self.user}"

    def remember_plan(self, plan: dict) -> None:
        self.last_plan = plan
        self.save(update_fields=["last_plan"])


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Kind(models.TextChoices):
        QUESTION = "question", "Question"
        ANSWER = "answer", "Answer"
        CLARIFICATION = "clarification", "Clarification"
        ERROR = "error", "Error"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=Role.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    text = models.TextField()
    # The validated plan an answer ran (None for questions, clarifications and errors).
    plan = models.JSONField(null=True, blank=True)
    # What the database said, kept small: total, lead ids of a list, rows of a group, the plan in words
    # and the lead table's query string ("Show in table").
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.text[:60]}"

    @property
    def table_url(self) -> str:
        """The lead table showing exactly the leads this answer counted or listed."""
        querystring = (self.result or {}).get("querystring", "")
        return f"{reverse('leads:list')}?{querystring}" if querystring else reverse("leads:list")

    @property
    def chart_items(self) -> list[dict]:
        """A group answer's rows for the bar chart (templates/_bar_chart.html): label, count, table link."""
        base = reverse("leads:list")
        return [
            {
                "label": row.get("value") or "(empty)",
                "count": row.get("count", 0),
                "url": f"{base}?{row['querystring']}" if row.get("querystring") else "",
            }
            for row in (self.result or {}).get("groups") or []
        ]

    @property
    def group_label(self) -> str:
        """The heading of a group answer's value column ("Company")."""
        group_by = (self.result or {}).get("group_by", "")
        return CONDITION_FIELDS.get(group_by, group_by).capitalize()


class QuestionCounterQuerySet(models.QuerySet):
    def count_question(self, *, user: AbstractBaseUser, minute: int) -> int:
        """Count one more question of `user` in clock minute `minute` (minutes since the epoch) and return
        the minute's count, this question included. Exact when the user's questions arrive at once: the
        row is locked while it changes. The user's earlier minutes are deleted on the way."""
        with transaction.atomic():
            self.filter(user=user, minute__lt=minute).delete()
            counter, created = self.select_for_update().get_or_create(user=user, minute=minute)
            if not created:
                counter.questions = F("questions") + 1
                counter.save(update_fields=["questions"])
                counter.refresh_from_db(fields=["questions"])
            return counter.questions


class QuestionCounter(models.Model):
    """How many questions a user asked in one clock minute. A database row rather than a cache key:
    the database cache's incr is a read and a write, which concurrent questions race past."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    minute = models.PositiveIntegerField()
    questions = models.PositiveIntegerField(default=1)

    objects = QuestionCounterQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "minute"], name="question_counter_user_minute")
        ]

    def __str__(self) -> str:
        return f"{self.questions} questions of {self.user} in minute {self.minute}"
