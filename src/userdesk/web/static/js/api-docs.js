// Starts Swagger UI on /api/v1/docs (a static file: the Content-Security-Policy allows no
// inline script). Swagger UI's validator badge would load an image from elsewhere: off.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
