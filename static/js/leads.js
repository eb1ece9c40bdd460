/* The lead workspace (templates/leads/list.html): select a page of rows, keep the focus on a sort
 * header across the table swap, announce the new row count, close the chat drawer (× or Escape),
 * close the upload card after an upload, and dismiss finished import panels into the
 * "Recent imports" line. Without this file every control still works as a plain link or form. */
(function () {
  "use strict";
  if (window.easycrmLeadsReady) return;
  window.easycrmLeadsReady = true;

  var focusedSort = null;

  // Typing in a box of the filter form reloads the table (its hx-trigger listens for "filter-input"):
  // the row checkboxes and bulk fields sit inside that form but belong to the bulk and save-view
  // forms. Told apart here rather than in an hx-trigger filter, which htmx would have to eval.
  document.addEventListener("input", function (event) {
    var field = event.target;
    if (field instanceof Element && field.form && field.form.id === "lead-filters") {
      field.dispatchEvent(new CustomEvent("filter-input", { bubbles: true }));
    }
  });

  // The "could not load the leads" line: hidden when a request of the filter form or the table
  // starts, shown when one fails.
  function showLoadError(event, failed) {
    var error = document.getElementById("lead-error");
    if (error && event.target instanceof Element && event.target.closest("#lead-filters")) error.hidden = !failed;
  }
  document.addEventListener("htmx:beforeRequest", function (event) { showLoadError(event, false); });
  document.addEventListener("htmx:responseError", function (event) { showLoadError(event, true); });
  document.addEventListener("htmx:sendError", function (event) { showLoadError(event, true); });

  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region) return;
    region.textContent = "";
    // A new text node on the next frame, so screen readers read it even when it repeats.
    window.requestAnimationFrame(function () { region.textContent = text; });
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLInputElement)) return;
    if (box.matches("[data-select-page]")) {
      document.querySelectorAll('#lead-table input[name="ids"]').forEach(function (row) {
        row.checked = box.checked;
      });
    } else if (box.name === "ids") {
      var all = document.querySelector("#lead-table [data-select-page]");
      var rows = document.querySelectorAll('#lead-table input[name="ids"]');
      var checked = document.querySelectorAll('#lead-table input[name="ids"]:checked');
      if (all) {
        all.checked = rows.length > 0 && checked.length === rows.length;
        all.indeterminate = checked.length > 0 && checked.length < rows.length;
      }
    }
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    focusedSort = elt instanceof Element && elt.matches("a.sort") && document.activeElement === elt
      ? elt.getAttribute("data-sort") : null;
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var table = document.getElementById("lead-table");
    // An outerHTML swap reports the replaced element, which keeps its id.
    if (!table || event.detail.target.id !== "lead-table") return;
    if (focusedSort) {
      var header = table.querySelector('a.sort[data-sort="' + focusedSort + '"]');
      if (header) header.focus();
      focusedSort = null;
    }
    var count = document.getElementById("lead-count");
    if (count) announce(count.textContent.trim().replace(/\s+/g, " "));
  });

  var uploading = null;

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt instanceof Element && elt.closest(".upload-toggle")) uploading = elt;
  });

  // Before the swap: afterwards the used form is detached (swapped out of band) and its events no
  // longer reach the document.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var config = event.detail.requestConfig;
    if (!uploading || !config || config.elt !== uploading) return;
    uploading = null;
    var toggle = document.querySelector(".upload-toggle");
    // A refused file comes back as the card with its error (retargeted): keep that open.
    var ok = event.detail.xhr.status < 300 && !event.detail.xhr.getResponseHeader("HX-Retarget");
    if (toggle && ok) toggle.open = false;
  });

  // A click outside an open pop-over (upload card, more filters, save view) closes it.
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    document.querySelectorAll("details.popover[open]").forEach(function (popover) {
      if (target && !popover.contains(target)) popover.open = false;
    });
  });

  function closeDrawer() {
    var drawer = document.getElementById("chat-drawer");
    if (drawer && drawer.open) {
      drawer.open = false;
      drawer.querySelector("summary").focus();
    }
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    if (target.closest("[data-close-drawer]")) {
      closeDrawer();
      return;
    }
    if (target.closest("[data-close-bulk]") && target.closest("#bulk-dialog")) {
      event.preventDefault();
      closeBulkDialog();
      return;
    }
    var dismiss = target.closest("[data-dismiss-import]");
    if (dismiss) {
      var panel = dismiss.closest(".import-status");
      var line = document.getElementById("recent-imports");
      if (line && panel) {
        var link = panel.querySelector("h3 a");
        var badge = panel.querySelector(".badge");
        var list = line.querySelector("[data-recent-list]");
        var entry = document.createElement("span");
        if (list.childNodes.length) entry.append(" · ");
        var copy = link.cloneNode(true);
        entry.append(copy, " (" + (badge ? badge.textContent.trim().toLowerCase() : "finished") + ")");
        list.prepend(entry);
        line.hidden = false;
      }
      if (panel) panel.remove();
      announce("Import panel dismissed.");
    }
  });

  function closeBulkDialog() {
    var dialog = document.getElementById("bulk-dialog");
    if (dialog && dialog.firstElementChild) {
      dialog.replaceChildren();
      var first = document.querySelector("#lead-table .bulk-bar input, #lead-table .bulk-bar button");
      if (first) first.focus();
      return true;
    }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !closeBulkDialog()) closeDrawer();
  });

  // "Export selected" is a file download: the browser posts it, not htmx. Stopped here, in the
  // capture phase, the submit event never reaches htmx's listener on the form.
  document.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    if (event.target.id === "bulk-form" && submitter && submitter.value === "export") event.stopPropagation();
  }, true);

  // The confirmation opened above the table: move the focus into it.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "bulk-dialog") return;
    var confirm = event.detail.target.querySelector("button[type=submit], a");
    if (confirm) confirm.focus();
  });

  // Opening the chat drawer puts the cursor in the question box ("toggle" does not bubble: capture).
  document.addEventListener("toggle", function (event) {
    var drawer = event.target;
    if (drawer.id === "chat-drawer" && drawer.open) {
      var box = document.getElementById("chat-question");
      if (box) box.focus();
    }
  }, true);

  // Choosing a file opens the upload card, so the "Upload and import" button is in view.
  document.addEventListener("change", function (event) {
    if (event.target instanceof HTMLInputElement && event.target.id === "upload-file") {
      var toggle = event.target.closest(".upload-toggle");
      if (toggle) toggle.open = true;
    }
  });
})();
