"""The HTML pages, one per step of the work, each reachable from the sidebar."""
from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from facewright import api
from facewright.web.actions import CLI_ONLY
from facewright.web.browse import allowed_files, uploaded_files
from facewright.web.security import cookie_name, relative_to, token_matches

router = APIRouter()
CONSENT_DAYS = 365  # the add form's default expiry


def render(request: Request, template: str, page: str, **context) -> HTMLResponse:
    settings = request.app.state.settings
    return request.app.state.templates.TemplateResponse(
        request, template, {"page": page, "token": settings.token, "workspace": settings.workspace, **context})


def options_of(command: str) -> list[api.OptionField]:
    """The command's options for a form: all of them but those that write into a folder the user names."""
    return [f for f in api.option_fields(command) if f.name not in CLI_ONLY]


@router.get("/login", response_class=HTMLResponse)
def login(request: Request, token: str | None = None) -> Response:
    """With ?token= (the address serve printed): set the cookie and go to the overview; without, a form."""
    if token is None:
        return request.app.state.templates.TemplateResponse(request, "login.html", {"page": "login", "wrong": False})
    return _logged_in(request, token)


@router.post("/login", response_class=HTMLResponse)
def login_form(request: Request, token: Annotated[str, Form()] = "") -> Response:
    return _logged_in(request, token)


def _logged_in(request: Request, token: str) -> Response:
    settings = request.app.state.settings
    if not token_matches(token, settings):
        return request.app.state.templates.TemplateResponse(request, "login.html", {"page": "login", "wrong": True},
                                                            status_code=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(cookie_name(settings), settings.token, httponly=True, samesite="strict", path="/")
    return response


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204)  # none: browsers ask for one on every first visit


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    root = request.app.state.settings.workspace
    view = api.overview(workspace=root)
    outputs = [(o, relative_to(root, o.path)) for o in view.outputs]
    return render(request, "overview.html", "overview", view=view, outputs=outputs)


@router.get("/consent", response_class=HTMLResponse)
def consent(request: Request, identity: str = "") -> HTMLResponse:
    root = request.app.state.settings.workspace
    records = sorted(api.consent_list(workspace=root), key=lambda c: c.recorded_at, reverse=True)
    return render(request, "consent.html", "consent", records=records, identity=identity,
                  expires=(date.today() + timedelta(days=CONSENT_DAYS)).isoformat())


@router.get("/consent/{consent_id}", response_class=HTMLResponse)
def consent_record(request: Request, consent_id: str) -> HTMLResponse:
    root = request.app.state.settings.workspace
    record = api.consent_show(consent_id, workspace=root)
    signed = (root / record.photo).parent / "record.json"
    text = json.dumps(json.loads(signed.read_text()), indent=2) if signed.is_file() else ""
    return render(request, "consent_record.html", "consent", record=record, signed=text,
                  photo=relative_to(root, root / record.photo))


@router.get("/extract", response_class=HTMLResponse)
def extract(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    people = api.overview(workspace=settings.workspace).people
    return render(request, "extract.html", "extract", people=people, options=options_of("extract"),
                  allowed=allowed_files(settings), uploads=uploaded_files(settings, "video"))


@router.get("/faceset", response_class=HTMLResponse)
def facesets(request: Request) -> Response:
    found = api.list_facesets(workspace=request.app.state.settings.workspace)
    if len(found) == 1:
        return RedirectResponse(f"/faceset/{found[0].name}", status_code=303)
    return render(request, "facesets.html", "faceset", facesets=found)


@router.get("/faceset/{name}", response_class=HTMLResponse)
def faceset(request: Request, name: str) -> HTMLResponse:
    root = request.app.state.settings.workspace
    review = api.review_faceset(name, workspace=root)
    cells = {f"{yaw},{pitch}": count for (yaw, pitch), count in review.cells.items()}
    return render(request, "faceset.html", "faceset", review=review, cells=cells,
                  facesets=api.list_facesets(workspace=root), yaws=review.yaws, pitches=review.pitches[::-1])


@router.get("/train", response_class=HTMLResponse)
def train(request: Request) -> HTMLResponse:
    root = request.app.state.settings.workspace
    return render(request, "train.html", "train", facesets=api.list_facesets(workspace=root),
                  presets=api.train_presets(), models=api.list_trained_models(workspace=root),
                  options=options_of("train"))


@router.get("/swap", response_class=HTMLResponse)
def swap(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    models = [m for m in api.list_trained_models(workspace=settings.workspace) if m.usable]
    return render(request, "swap.html", "swap", models=models, options=options_of("swap"),
                  allowed=allowed_files(settings), uploads=uploaded_files(settings, "video"))


@router.get("/verify", response_class=HTMLResponse)
def verify(request: Request) -> HTMLResponse:
    return render(request, "verify.html", "verify")


@router.get("/score", response_class=HTMLResponse)
def score(request: Request, output: int | None = None) -> HTMLResponse:
    root = request.app.state.settings.workspace
    outputs = [o for o in api.list_outputs(workspace=root, limit=100) if o.kind == "video" and o.exists]
    return render(request, "score.html", "score", outputs=outputs, chosen=output,
                  facesets=api.list_facesets(workspace=root), options=options_of("score"),
                  allowed=allowed_files(request.app.state.settings), uploads=uploaded_files(request.app.state.settings,
                                                                                            "video"))


@router.get("/jobs", response_class=HTMLResponse)
def jobs(request: Request) -> HTMLResponse:
    return render(request, "jobs.html", "jobs")

