/* Accord UI behaviour. Loaded as a file: the Content-Security-Policy forbids inline script. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every HTMX request that changes something carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (event) {
    var verb = String(event.detail.verb || "get").toLowerCase();
    if (verb !== "get") {
      event.detail.headers["X-CSRF-Token"] = csrfToken();
    }
  });

  // Destructive forms ask first: <form data-confirm="Really?">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm &&
        !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // A form sent back with errors puts the cursor in the first field to correct, on a full page
  // load and after an HTMX swap (e.g. "Log interaction" on the 360 page).
  function focusFirstInvalid(root) {
    var field = root.querySelector('form [aria-invalid="true"]');
    if (field) {
      var details = field.closest("details");
      if (details) { details.open = true; }
      field.focus();
    }
  }
  document.addEventListener("DOMContentLoaded", function () { focusFirstInvalid(document); });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.elt instanceof Element) { focusFirstInvalid(event.detail.elt); }
  });

  // A failed HTMX request (network or server error) says so instead of doing nothing.
  document.addEventListener("htmx:responseError", function (event) {
    var target = event.detail.target;
    if (!target) { return; }
    var note = document.createElement("div");
    note.className = "alert alert-error";
    note.setAttribute("role", "alert");
    note.textContent = "Something went wrong (" + event.detail.xhr.status + "). Reload the page and try again.";
    target.replaceChildren(note);
  });
  document.addEventListener("htmx:sendError", function (event) {
    var target = event.detail.target;
    if (!target) { return; }
    var note = document.createElement("div");
    note.className = "alert alert-error";
    note.setAttribute("role", "alert");
    note.textContent = "Accord could not be reached. Check your connection and try again.";
    target.replaceChildren(note);
  });
})();
