"""``/``, ``/openapi.json`` and ``/docs``: where to start, the contract, and a page that
renders it offline (Swagger UI's files come from the ``swagger-ui-py`` package, served
from here: no CDN)."""

from __future__ import annotations

import html
import importlib.util
from importlib import metadata
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from schemas.api import ServiceIndex
from service.contract import Operation, Reply

# Relative URLs: the page works behind a path prefix too.
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>google-video API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true,
      validatorUrl: null  // Swagger UI's default sends the spec's URL to swagger.io
    });
  </script>
</body>
</html>
"""


# GET / for a browser (Accept: text/html); everyone else gets ServiceIndex as JSON.
INDEX_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>google-video</title></head>
<body>
  <h1>google-video {version}</h1>
  <p>Videos from Google's Veo models over HTTP (the OpenAI Videos API's shape).</p>
  <ul>
    <li><a href="docs">API documentation</a></li>
    <li><a href="openapi.json">OpenAPI document</a></li>
    <li><a href="healthz">liveness</a> · <a href="readyz">readiness</a>
      · <a href="metrics">metrics</a></li>
  </ul>
</body>
</html>
"""
LINKS = {
    "docs": "/docs",
    "openapi": "/openapi.json",
    "health": "/healthz",
    "ready": "/readyz",
    "metrics": "/metrics",
}


def _version() -> str:
    try:
        return metadata.version("google-video")
    except metadata.PackageNotFoundError:
        return "unknown"


async def index(request: Request) -> Response:
    """The service's name and version and its entry points; an HTML page of links for a
    browser (``Accept: text/html``)."""
    version = _version()
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(INDEX_PAGE.format(version=html.escape(version)))
    return JSONResponse(ServiceIndex(version=version, links=LINKS).model_dump(mode="json"))


def _static_dir() -> Path:
    # Located without importing the package (its import pulls in its framework glue).
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


async def openapi_json(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


async def docs(_request: Request) -> Response:
    return HTMLResponse(PAGE)


def _asset(name: str, media_type: str) -> Operation:
    async def asset(_request: Request) -> Response:
        return FileResponse(
            _static_dir() / name,
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=86400"},
        )

    asset.__name__ = name.replace("-", "_").replace(".", "_")
    return Operation(
        "GET",
        f"/docs/{name}",
        asset,
        f"Swagger UI's {name} (for /docs)",
        "operations",
        (Reply(200, "The file.", None, (media_type,)),),
        auth="none",
    )


operations = [
    Operation(
        "GET",
        "/",
        index,
        "Where to start: the service's version and links to /docs, /openapi.json and probes",
        "operations",
        (Reply(200, "JSON, or an HTML page for a browser.", ServiceIndex, ("application/json",)),),
        auth="none",
    ),
    Operation(
        "GET",
        "/openapi.json",
        openapi_json,
        "This API's OpenAPI 3.1 document",
        "operations",
        (Reply(200, "The document.", None, ("application/json",)),),
        auth="none",
    ),
    Operation(
        "GET",
        "/docs",
        docs,
        "The API documentation, rendered from /openapi.json",
        "operations",
        (Reply(200, "An HTML page.", None, ("text/html",)),),
        auth="none",
    ),
    _asset("swagger-ui.css", "text/css"),
    _asset("swagger-ui-bundle.js", "application/javascript"),
]
