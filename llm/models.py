"""The permits that cap concurrent model calls across every process (see llm.client.permit)."""

from __future__ import annotations

from django.db import models


class LlmSlot(models.Model):
    """One of DEEPSEEK_CONCURRENCY permits to call the model; held under a lease so a dead
    process cannot keep it."""

    number = models.PositiveIntegerField(primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"LLM slot {self.number}"
