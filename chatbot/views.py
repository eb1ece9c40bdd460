"""The chat page and the chat panel's posts (ask, new conversation). HTMX posts get the new messages
only; plain posts redirect back to the page they came from (the lead list or the chat page)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from .forms import QuestionForm
from .models import Message
from .services import ChatRateLimited, chat_ask, chat_history, chat_reset


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_GET
def chat_page(request: HttpRequest) -> HttpResponse:
    return render(request, "chatbot/page.html", _page_context(request, QuestionForm()))


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_POST
def chat_ask_view(request: HttpRequest) -> HttpResponse:
    form = QuestionForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            answer = chat_ask(user=request.user, text=form.cleaned_data["text"])
        except ChatRateLimited as exc:
            form.add_error("text", str(exc))
            status = 429
        else:
            if not request.htmx:
                return redirect(_back_url(request))
            question = Message(
                role=Message.Role.USER, kind=Message.Kind.QUESTION, text=form.cleaned_data["text"]
            )
            return render(request, "chatbot/page.html#exchange", {"chat_messages": [question, answer]})
    if request.htmx:
        # 200, so htmx swaps it: the error goes under the box and the typed question stays.
        response = render(request, "chatbot/page.html#error", {"chat_form": form})
        return reswap(retarget(response, "#chat-error"), "outerHTML")
    return render(request, "chatbot/page.html", _page_context(request, form), status=status)


@login_required
@permission_required("leads.view_lead", raise_exception=True)
@require_POST
def chat_new(request: HttpRequest) -> HttpResponse:
    chat_reset(user=request.user)
    if request.htmx:
        return render(request, "chatbot/page.html#messages", {"chat_messages": []})
    return redirect(_back_url(request))


def _page_context(request: HttpRequest, form: QuestionForm) -> dict:
    return {"nav": "chat", "chat_form": form, "chat_messages": chat_history(user=request.user)}


def _back_url(request: HttpRequest) -> str:
    """Where a plain form post returns to: the page the panel was on, if it is one of ours."""
    next_url = request.POST.get("next", "")
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return f"{next_url}#chat"
    return f"{reverse('chatbot:page')}#chat"
