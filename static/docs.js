// Starts Swagger UI (swagger-ui-bundle.js, loaded before this file) on the
// OpenAPI document named by the page. A file rather than an inline script:
// the page's Content-Security-Policy only runs scripts served by this origin.
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // Swagger UI would otherwise send the document to an online validator.
    validatorUrl: null,
  });
});
