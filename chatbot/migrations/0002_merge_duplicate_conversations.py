"""Before a user may have only one conversation (0003): merge a user's conversations into the newest,
the one the chat showed, keeping every message and the newest one's last plan.

A migration of its own: on PostgreSQL the rows it moves and deletes leave deferred foreign-key checks
pending until commit, and the table cannot be altered in the same transaction.
"""

from django.db import migrations
from django.db.models import Count


def merge_conversations(apps, schema_editor):
    Conversation = apps.get_model("chatbot", "Conversation")
    Message = apps.get_model("chatbot", "Message")
    shared = Conversation.objects.values("user").annotate(conversations=Count("id")).filter(conversations__gt=1)
    for user_id in shared.values_list("user", flat=True):
        kept, *merged = Conversation.objects.filter(user_id=user_id).order_by("-created_at", "-id")
        Message.objects.filter(conversation__in=merged).update(conversation=kept)
        Conversation.objects.filter(pk__in=[conversation.pk for conversation in merged]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("chatbot", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(merge_conversations, migrations.RunPython.noop),
    ]
