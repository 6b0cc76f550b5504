"""``/openapi.json`` and ``/docs``: the contract, and a page that renders it offline
(Swagger UI's files come from the ``swagger-ui-py`` package, served from here: no CDN)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

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
    window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""


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
