from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render


@login_required
@permission_required("processing.view_importjob", raise_exception=True)
def import_list(request):
    return render(request, "processing/list.html", {"nav": "imports"})
