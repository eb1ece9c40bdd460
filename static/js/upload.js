/* Drag-and-drop for the upload card (templates/processing/_upload_card.html): highlight the drop
 * zone, put the dropped file into the form's file input and submit the form, which htmx sends
 * when it is loaded and the browser posts when it is not. */
(function () {
  "use strict";
  if (window.easycrmUploadReady) return; // the card may be rendered more than once per page
  window.easycrmUploadReady = true;

  function dropzoneOf(event) {
    return event.target instanceof Element ? event.target.closest("[data-dropzone]") : null;
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
  });

  document.addEventListener("dragleave", function (event) {
    var zone = dropzoneOf(event);
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dragover");
  });

  document.addEventListener("drop", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
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
