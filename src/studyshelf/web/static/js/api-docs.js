// Start the vendored Swagger UI against our OpenAPI document (no CDN, no inline script).
import { swaggerUIBundle } from "./vendor.js";

const root = document.getElementById("swagger-ui");
const SwaggerUIBundle = swaggerUIBundle();
if (root && SwaggerUIBundle) {
  SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
}
