/* The upload card (templates/processing/_upload_card.html).
 *
 * Drag-and-drop: highlight the drop zone, put the dropped files into the form's file input and
 * submit the form, which htmx sends when it is loaded and the browser posts when it is not. Files
 * dropped anywhere else on a page that has the card (the lead page, where it sits behind the
 * "Upload leads" button) are uploaded the same way; the page shows a drop hint while files are
 * dragged over it. Each file becomes its own import (the server answers one status panel per file).
 *
 * Direct-to-S3 (the form has data-direct-upload, processing/direct_upload.py): each file is sent
 * straight to the bucket with a presigned POST the server issues, then the server is told to import
 * it; its panel is added like htmx adds the form's answer. When the bucket cannot be reached (no
 * CORS, blocked), the form is posted the ordinary way instead. */
(function () {
  "use strict";
  if (window.easycrmUploadReady) return; // the card may be rendered more than once per page
  window.easycrmUploadReady = true;

  function dropzoneOf(event) {
    var own = event.target instanceof Element ? event.target.closest("[data-dropzone]") : null;
    return own || document.querySelector("[data-dropzone]");
  }

  function carriesFiles(event) {
    return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") !== -1;
  }

  document.addEventListener("dragover", function (event) {
    if (!carriesFiles(event)) return;
    // Also outside the zone: a file dropped next to it must not replace the page.
    event.preventDefault();
    var zone = dropzoneOf(event);
    event.dataTransfer.dropEffect = zone ? "copy" : "none";
    if (zone) zone.classList.add("dragover");
    if (zone) document.body.classList.add("file-dragover");
  });

  document.addEventListener("dragleave", function (event) {
    var zone = dropzoneOf(event);
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dragover");
    if (!event.relatedTarget) document.body.classList.remove("file-dragover"); // left the window
  });

  document.addEventListener("drop", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    document.body.classList.remove("file-dragover");
    var zone = dropzoneOf(event);
    if (!zone || !event.dataTransfer.files.length) return;
    zone.classList.remove("dragover");
    var input = zone.querySelector("input[type=file]");
    input.files = event.dataTransfer.files; // all of them: one import per file
    input.form.requestSubmit();
  });

  // --- Direct-to-S3 upload --------------------------------------------------------------------

  // Capture phase on the document: runs before htmx's own submit listener on the form.
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement) || !form.dataset.directUpload) return;
      if (!window.fetch || !window.htmx) return;
      var input = form.querySelector("input[type=file]");
      if (!input.files.length || input.files.length > Number(form.dataset.maxFiles || 0)) return; // the server says why
      event.preventDefault();
      event.stopPropagation();
      uploadDirect(form, Array.prototype.slice.call(input.files));
    },
    true
  );

  function csrfToken(form) {
    return form.querySelector("input[name=csrfmiddlewaretoken]").value;
  }

  function postForm(url, form, values) {
    var body = new FormData();
    Object.keys(values).forEach(function (key) {
      body.append(key, values[key]);
    });
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(form), "HX-Request": "true" },
    });
  }

  // Insert the answer as the form's hx-target/hx-swap would, then fire its HX-Trigger events.
  function addPanel(html, triggers) {
    htmx.swap("#active-imports", html, { swapStyle: "afterbegin" });
    var events = {};
    try {
      events = JSON.parse(triggers || "{}");
    } catch (notJson) {
      (triggers || "").split(",").forEach(function (name) {
        events[name.trim()] = null;
      });
    }
    Object.keys(events).forEach(function (name) {
      htmx.trigger(document.body, name, events[name]);
    });
  }

  function showErrors(form, errors) {
    var list = form.querySelector("[data-direct-errors]");
    if (!list) return;
    list.replaceChildren();
    errors.forEach(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    });
    list.hidden = errors.length === 0;
  }

  function busy(form, on) {
    form.classList.toggle("htmx-request", on);
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = on;
  }

  // The ordinary upload for these files: through the web server, as without direct upload.
  function fallBack(form) {
    delete form.dataset.directUpload;
    form.requestSubmit();
  }

  async function uploadDirect(form, files) {
    var errors = [];
    var sentAny = false;
    busy(form, true);
    showErrors(form, []);
    try {
      for (var index = 0; index < files.length; index += 1) {
        var file = files[index];
        var signed = await postForm(form.dataset.directUpload, form, { filename: file.name, size: file.size });
        var answer = await signed.json();
        if (!signed.ok) {
          errors.push(file.name + ": " + (answer.error || "refused"));
          continue;
        }
        var body = new FormData();
        Object.keys(answer.fields).forEach(function (key) {
          body.append(key, answer.fields[key]);
        });
        body.append("file", file); // S3 wants the file after the policy fields
        var sent;
        try {
          sent = await fetch(answer.url, { method: "POST", body: body, credentials: "omit" });
        } catch (unreachable) {
          if (!sentAny) {
            busy(form, false);
            fallBack(form);
            return;
          }
          errors.push(file.name + ": the file storage could not be reached. Upload it again.");
          continue;
        }
        if (!sent.ok) {
          errors.push(file.name + ": the file storage refused it (" + sent.status + ").");
          continue;
        }
        sentAny = true;
        var done = await postForm(form.dataset.directComplete, form, {
          name: answer.name,
          filename: file.name,
          token: answer.token,
        });
        if (!done.ok) {
          errors.push(file.name + ": " + (await done.text()));
          continue;
        }
        addPanel(await done.text(), done.headers.get("HX-Trigger"));
      }
    } catch (failure) {
      errors.push("The upload stopped: " + failure.message);
    } finally {
      busy(form, false);
    }
    form.reset();
    showErrors(form, errors);
  }
})();
