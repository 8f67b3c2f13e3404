"""`facewright serve`: the FastAPI app. Pages are rendered here (Jinja2); the JavaScript beside them is ours.

The app calls facewright.api and nothing deeper. Its state: the settings it was started with, the job runner,
the templates. See security.py for who may use it and what it may read.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from facewright import __version__, api
from facewright.web import actions, files, pages
from facewright.web.jobs import JobRunner
from facewright.web.security import HEADER, OPEN_PATHS, SAFE_METHODS, cookie_name, host_allowed, token_matches
from facewright.web.settings import ServerSettings
from facewright.web.worker import error_fields

HERE = Path(__file__).parent
FORM_OVERHEAD = 2**16  # bytes of a multipart body besides the file: boundaries, headers, the other fields
log = logging.getLogger("facewright.web")


def create_app(settings: ServerSettings, *, run_jobs: bool = True) -> FastAPI:
    """The app for `settings`; `run_jobs`: start the job runner (tests of routes alone leave it off)."""
    api.init(settings.workspace)
    runner = JobRunner(settings.workspace, debug=settings.debug)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if run_jobs:
            closed = runner.start()
            if closed:
                log.warning("jobs %s were left unfinished by the last server: marked interrupted", closed)
        yield
        runner.stop()

    # max_body_size: an upload over the limit is cut off as it arrives (by its declared length at once, a chunked
    # one as its bytes pass the limit), before the form parser spools it anywhere; uploads.store checks the file too
    app = FastAPI(title="facewright", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, debug=False, max_body_size=settings.max_upload_mb * 2**20 + FORM_OVERHEAD)
    app.state.settings = settings
    app.state.runner = runner
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    app.state.templates.env.globals.update(version=__version__)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.include_router(files.router)
    app.middleware("http")(_guard)
    app.exception_handler(api.FacewrightError)(_typed_error)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(RequestValidationError)(_invalid_request)
    app.exception_handler(Exception)(_unexpected_error)
    return app


async def _guard(request: Request, call_next) -> Response:
    """Every answer gets the security headers; see _checked for who gets one."""
    response = await _checked(request, call_next)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.headers.get("content-type", "").startswith("text/html"):
        response.headers["Cache-Control"] = "no-store"  # pages hold the token: never kept in a shared cache
    return response


async def _checked(request: Request, call_next) -> Response:
    """Host first (DNS rebinding), then the token (cookie or header), then the header on every change."""
    settings: ServerSettings = request.app.state.settings
    if not host_allowed(request.headers.get("host"), settings):
        return JSONResponse({"type": "HostRefused", "message": "this Host is not served here",
                             "fix": "open the address `facewright serve` printed (or start it with --allow-host "
                                    "NAME)"}, status_code=421)
    if request.url.path in OPEN_PATHS:
        return await call_next(request)
    header = request.headers.get(HEADER)
    if not (token_matches(header, settings) or token_matches(request.cookies.get(cookie_name(settings)), settings)):
        if request.method in SAFE_METHODS and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/login", status_code=303)
        return JSONResponse({"type": "AuthRequired", "message": "log in first",
                             "fix": "open the login address `facewright serve` printed"}, status_code=401)
    if request.method not in SAFE_METHODS and not token_matches(header, settings):
        return JSONResponse({"type": "TokenHeaderRequired", "message": "a change needs the X-Facewright-Token "
                             "header", "fix": "use the page's own buttons"}, status_code=403)
    return await call_next(request)


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
}




def status_of(exc: api.FacewrightError) -> int:
    if isinstance(exc, api.ConsentError):
        return 403
    return getattr(exc, "http_status", None) or (400 if isinstance(exc, api.InputError) else 500)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's own refusals (a body that is not JSON or too large, a missing field, 404) in the pages' shape."""
    body = {"type": "RequestError", "message": str(exc.detail), "path": None,
            "fix": "use the page's own forms; reload it if the server was restarted"}
    if exc.status_code == 413:
        megabytes = request.app.state.settings.max_upload_mb
        body.update(type="UploadRefused", message=f"the upload is larger than the server's limit of {megabytes} MB",
                    fix="pick the file from a folder the server allows (serve --allow DIR), or restart it with a "
                        "larger --max-upload-mb")
    return JSONResponse(body, status_code=exc.status_code)


async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
    return JSONResponse({"type": "RequestError", "message": f"the request is not what this route takes ({problems})",
                         "path": None, "fix": "use the page's own forms"}, status_code=400)


async def _typed_error(request: Request, exc: api.FacewrightError) -> Response:
    body = error_fields(exc, request.app.state.settings.debug)
    body["path"] = _shown_path(request, exc.path)
    if "text/html" in request.headers.get("accept", "") and request.method in SAFE_METHODS:
        return _error_page(request, body, status_of(exc))
    return JSONResponse(body, status_code=status_of(exc))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    body = error_fields(exc, request.app.state.settings.debug)
    if not request.app.state.settings.debug:
        body["message"] = "an unexpected error; the server's log has the details"
    if "text/html" in request.headers.get("accept", "") and request.method in SAFE_METHODS:
        return _error_page(request, body, 500)
    return JSONResponse(body, status_code=500)


def _error_page(request: Request, body: dict, status: int) -> HTMLResponse:
    settings = request.app.state.settings
    return request.app.state.templates.TemplateResponse(
        request, "error.html", {"error": body, "page": "error", "token": settings.token,
                                "workspace": settings.workspace}, status_code=status)


def _shown_path(request: Request, path: Path | None) -> str | None:
    """A path as the page shows it: relative to the workspace when inside it."""
    if path is None:
        return None
    root = request.app.state.settings.workspace
    with contextlib.suppress(ValueError, OSError):
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    return str(path)
