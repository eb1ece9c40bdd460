from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render


@login_required
@permission_required("leads.view_lead", raise_exception=True)
def lead_list(request):
    return render(request, "leads/list.html", {"nav": "leads"})
