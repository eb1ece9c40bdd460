from __future__ import annotations

from django.contrib import admin

from .models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("created_at", "role", "kind", "text", "plan")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "created_at")
    list_select_related = ("user",)
    readonly_fields = ("user", "created_at", "last_plan")
    inlines = [MessageInline]
