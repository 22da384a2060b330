/* Starts Swagger UI from the vendored bundle (no inline script under the CSP). */
(function () {
  "use strict";

  function start() {
    var node = document.getElementById("swagger-ui");
    if (!node || typeof window.SwaggerUIBundle !== "function") { return; }
    var meta = document.querySelector('meta[name="csrf-token"]');
    window.ui = window.SwaggerUIBundle({
      url: node.getAttribute("data-spec-url"),
      domNode: node,
      deepLinking: true,
      validatorUrl: null, // never call the public validator: Accord works offline
      presets: [window.SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      requestInterceptor: function (request) {
        // "Try it out" with the browser session: writes need the session's CSRF token.
        if (meta && request.method && request.method.toUpperCase() !== "GET") {
          request.headers["X-CSRF-Token"] = meta.getAttribute("content");
        }
        return request;
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
