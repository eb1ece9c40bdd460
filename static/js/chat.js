/* The chat panel (templates/chatbot/_panel.html): Enter sends and Shift+Enter adds a line, a live
 * character count, and the box is emptied once an answer has arrived. Without this file the form
 * still posts; the server checks the length too. */
(function () {
  "use strict";
  if (window.easycrmChatReady) return;
  window.easycrmChatReady = true;

  function isQuestionBox(element) {
    return element instanceof HTMLTextAreaElement && element.id === "chat-question";
  }

  function showCount(textarea) {
    var counter = document.getElementById("chat-count");
    if (counter) counter.textContent = textarea.value.length + " / " + textarea.maxLength;
  }

  document.addEventListener("keydown", function (event) {
    var textarea = event.target;
    if (!isQuestionBox(textarea) || event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    if (textarea.value.trim() && textarea.form) textarea.form.requestSubmit();
  });

  document.addEventListener("input", function (event) {
    if (isQuestionBox(event.target)) showCount(event.target);
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!(form instanceof HTMLFormElement) || form.id !== "chat-form") return;
    var xhr = event.detail.xhr;
    // An error message is retargeted under the box: keep the question so it can be fixed.
    if (xhr.status >= 300 || xhr.getResponseHeader("HX-Retarget")) return;
    form.reset();
    var textarea = form.querySelector("#chat-question");
    if (textarea) {
      showCount(textarea);
      textarea.focus();
    }
  });

  function init() {
    var textarea = document.getElementById("chat-question");
    if (textarea) showCount(textarea);
    var messages = document.getElementById("chat-messages");
    if (messages) messages.scrollTop = messages.scrollHeight;
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
