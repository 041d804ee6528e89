"""`GET /docs`: Swagger UI, its script, style sheet and icon served by the service itself
(from the `fastapi-swagger` package), so that the page works without internet access."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

DOCS_PATH = "/docs"
# The files of Swagger UI's distribution the page loads, with their content types.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}

router = APIRouter(include_in_schema=False)


@cache
def _asset(name: str) -> bytes:
    return files("fastapi_swagger.resources").joinpath(name).read_bytes()


@router.get(DOCS_PATH)
async def docs(request: Request) -> HTMLResponse:
    root_path = request.scope.get("root_path", "").rstrip("/")
    assets = root_path + DOCS_PATH
    return get_swagger_ui_html(
        openapi_url=root_path + request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon-32x32.png",
        # By default Swagger UI shows a badge from an online validator, sent the document's URL.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(DOCS_PATH + "/{name}")
async def docs_asset(request: Request) -> Response:
    # The name read off the request, not a typed parameter: FastAPI's parameter model would
    # load pydantic's v1 compatibility layer, a tenth of the start-up, for one string.
    name: str = request.path_params["name"]
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404)
    # The files change only with the package's version.
    headers = {"Cache-Control": "public, max-age=86400"}
    return Response(_asset(name), media_type=media_type, headers=headers)
