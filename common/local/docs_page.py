"""The local front door's page to try the endpoint: Swagger UI (the swagger-ui-py package ships its assets; nothing
is fetched from a CDN) on the endpoint's own contract.

The page and its assets hold no secret and answer without a credential; what they show comes from GET
/swagger.json, behind the endpoint's auth like /score. The person types the endpoint's key or token into the page's
form: the page's script keeps it in memory and adds it as the Authorization header to its own requests to this
origin (the document, then "Try it out" on POST /score), so it is never in a URL (nor in the access log, which
records paths), in the browser's storage or in a cookie. A Content-Security-Policy keeps the page to its own
scripts.
"""

from __future__ import annotations

import functools
import html
import importlib.util
from pathlib import Path

from common.local.asgi import Reply
from common.local.refusals import NotFound

PAGE_PATH = "/docs"
# the files of the swagger-ui-py package the page loads, and the page's own script
ASSETS = {
    f"{PAGE_PATH}/swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    f"{PAGE_PATH}/swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
}
SCRIPT_PATH = f"{PAGE_PATH}/try.js"
ASSET_PATHS = (*ASSETS, SCRIPT_PATH)
HTML = "text/html; charset=utf-8"
HEADERS = (
    # Swagger UI sets style attributes; everything else comes from this origin only
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-store"),
)

SCRIPT = """\
"use strict";
// The endpoint's key or token lives in this variable only: never in a URL, the browser's storage or a cookie.
(function () {
  var secret = "";
  var deployment = "";
  document.getElementById("credential").addEventListener("submit", function (event) {
    event.preventDefault();
    var field = document.getElementById("key");
    secret = field.value.trim();
    field.value = "";
    deployment = document.getElementById("deployment").value.trim();
    document.getElementById("status").textContent = "Loading the contract...";
    window.ui = SwaggerUIBundle({
      url: "/swagger.json?version=3",
      dom_id: "#swagger-ui",
      persistAuthorization: false,
      tryItOutEnabled: true,
      requestInterceptor: function (request) {
        var target = new URL(request.url, window.location.href);
        if (target.origin === window.location.origin && secret) {
          request.headers["Authorization"] = "Bearer " + secret;
          if (deployment) {
            request.headers["azureml-model-deployment"] = deployment;
          }
        }
        return request;
      },
      onComplete: function () {
        document.getElementById("status").textContent = "Contract loaded: open POST /score, then Try it out.";
      }
    });
  });
})();
"""


def page(endpoint: str) -> str:
    name = html.escape(endpoint)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{name}: try the endpoint</title>
<link rel="stylesheet" href="{PAGE_PATH}/swagger-ui.css">
</head>
<body>
<h1>Local endpoint {name}</h1>
<form id="credential">
<label>Key or token <input id="key" type="password" autocomplete="off" required></label>
<label>Deployment (empty: the traffic split picks) <input id="deployment" type="text" autocomplete="off"></label>
<button type="submit">Authorize and load the contract</button>
<span id="status" role="status"></span>
</form>
<div id="swagger-ui"></div>
<script src="{PAGE_PATH}/swagger-ui-bundle.js"></script>
<script src="{SCRIPT_PATH}"></script>
</body>
</html>
"""


def static_folder() -> Path | None:
    """swagger-ui-py's static folder, found without importing the package (its import loads a web framework's
    handlers); None when it is not installed."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if folder.is_dir() else None


@functools.cache
def asset(path: str) -> tuple[bytes, str] | None:
    """An asset's bytes and content type (read once), or None when the path is none of them."""
    if path == SCRIPT_PATH:
        return SCRIPT.encode(), "text/javascript; charset=utf-8"
    if path not in ASSETS:
        return None
    folder = static_folder()
    name, content_type = ASSETS[path]
    if folder is None or not (folder / name).is_file():
        return None
    return (folder / name).read_bytes(), content_type


def answer(path: str, endpoint: str) -> Reply:
    """The page or one of its assets."""
    if path == PAGE_PATH:
        return Reply(200, page(endpoint).encode(), HTML, HEADERS)
    found = asset(path)
    if found is None:
        raise NotFound(f"{path}: the page's assets are not installed here (the swagger-ui-py package)")
    body, content_type = found
    return Reply(200, body, content_type, HEADERS)
