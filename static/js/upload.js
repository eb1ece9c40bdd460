/* Drag-and-drop for the upload card (templates/processing/_upload_card.html): highlight the drop
 * zone, put the dropped file into the form's file input and submit the form, which htmx sends
 * when it is loaded and the browser posts when it is not. A file dropped anywhere else on a page
 * that has the card (the lead page, where it sits behind the "Upload leads" button) is uploaded
 * the same way; the page shows a drop hint while a file is dragged over it. */
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
    var chosen = new DataTransfer();
    chosen.items.add(event.dataTransfer.files[0]); // one import per file
    input.files = chosen.files;
    input.form.requestSubmit();
  });
})();
