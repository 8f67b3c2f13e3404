"""`facewright serve`: the FastAPI app. Pages are rendered here (Jinja2); the JavaScript beside them is ours.

The app calls facewright.api and nothing deeper. Its state: the settings it was started with, the job runner,
the templates. See security.py for who may use it and what it may read.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from facewright import __version__, api
from facewright.web import actions, files, pages
from facewright.web.jobs import JobRunner
from facewright.web.security import COOKIE, HEADER, OPEN_PATHS, SAFE_METHODS, host_allowed, token_matches
from facewright.web.settings import ServerSettings
from facewright.web.worker import error_fields

HERE = Path(__file__).parent
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

    app = FastAPI(title="facewright", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, debug=False)
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
    app.exception_handler(Exception)(_unexpected_error)
    return app


async def _guard(request: Request, call_next) -> Response:
    """Host first (DNS rebinding), then the token (cookie or header), then the header on every change."""
    settings: ServerSettings = request.app.state.settings
    if not host_allowed(request.headers.get("host"), settings):
        return JSONResponse({"type": "HostRefused", "message": "this Host is not served here",
                             "fix": "open the address `facewright serve` printed (or start it with --allow-host "
                                    "NAME)"}, status_code=421)
    if request.url.path in OPEN_PATHS:
        return await call_next(request)
    header = request.headers.get(HEADER)
    if not (token_matches(header, settings) or token_matches(request.cookies.get(COOKIE), settings)):
        if request.method in SAFE_METHODS and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/login", status_code=303)
        return JSONResponse({"type": "AuthRequired", "message": "log in first",
                             "fix": "open the login address `facewright serve` printed"}, status_code=401)
    if request.method not in SAFE_METHODS and not token_matches(header, settings):
        return JSONResponse({"type": "TokenHeaderRequired", "message": "a change needs the X-Facewright-Token "
                             "header", "fix": "use the page's own buttons"}, status_code=403)
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; "
                                "media-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
    return response


def status_of(exc: api.FacewrightError) -> int:
    if isinstance(exc, api.ConsentError):
        return 403
    return 400 if isinstance(exc, api.InputError) else 500


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
