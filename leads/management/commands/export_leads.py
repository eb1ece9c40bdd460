"""Write every lead as CSV (the same writer as the web export)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from leads.models import Lead
from leads.services import leads_export_write


class Command(BaseCommand):
    help = "Export all leads as CSV (UTF-8 with BOM) to --output or standard output."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, *args, **options) -> None:
        queryset = Lead.objects.order_by("id")
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8", newline="") as out:
                count = leads_export_write(out, queryset)
            self.stderr.write(f"{count} leads written to {options['output']}")
        else:
            leads_export_write(sys.stdout, queryset)
