"""The JSON routes the pages' JavaScript calls: uploads, consents, jobs and their live state, faceset review,
verification. Every route that changes something is a POST (the guard wants the token header on those)."""
from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from facewright import api
from facewright.web import uploads
from facewright.web.browse import resolve
from facewright.web.jobs import JobRefused
from facewright.web.security import SQLITE_INT_MAX, RowId, relative_to

router = APIRouter(prefix="/api")
EVENT_WAIT = 15.0  # seconds between keep-alive comments on the event stream (a proxy or browser drops a silent one)


def settings_of(request: Request):
    return request.app.state.settings


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or a typed 400 (not JSON, or not an object)."""
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise api.InputError("the request body is not JSON", fix="use the page's own forms") from None
    if not isinstance(body, dict):
        raise api.InputError("the request body is not a JSON object", fix="use the page's own forms")
    return body


def texts(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    """`body`, with an InputError (a 400) where one of `keys` is given as anything but text (a list, a number)."""
    for key in keys:
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise api.InputError(f"{key} must be text, not {type(value).__name__} {value!r}"[:200],
                                 fix="use the page's own forms")
    return body


# --- uploads ---------------------------------------------------------------------------------------------------


@router.post("/uploads")
async def upload(request: Request, file: Annotated[UploadFile, File()], kind: str = "image") -> dict[str, Any]:
    """Store one file (`kind`: image, video, media or release); a photo comes back with the faces found in it."""
    settings = settings_of(request)
    kinds = {"image": ("image",), "video": ("video",), "media": ("image", "video"), "release": ("release",)}
    if kind not in kinds:
        raise uploads.UploadRefused(f"unknown upload kind {kind!r}", fix="image, video, media or release")
    limit = settings.max_upload_mb * 2**20  # the body was held to it as it arrived (app.UploadLimit); the file too
    stored = await run_in_threadpool(uploads.store, file.file, file.filename or "upload", kinds[kind],
                                     settings.workspace, limit)
    answer: dict[str, Any] = {"ref": f"ws:{stored.relative}", "name": stored.path.name, "type": stored.kind,
                              "url": f"/files/ws/{stored.relative}"}
    if kind == "image":
        answer["faces"] = await run_in_threadpool(api.consent_photo_faces, stored.path)
        answer["width"], answer["height"] = stored.width, stored.height
    return answer


# --- consent ---------------------------------------------------------------------------------------------------


@router.post("/consents")
async def consent_add(request: Request) -> dict[str, Any]:
    settings = settings_of(request)
    body = texts(await json_body(request), "identity", "photo", "release", "role", "purpose", "expires",
                 "display_name", "recorded_by", "scope")
    channels = body.get("channels") or []
    if isinstance(channels, str):
        channels = [c.strip() for c in channels.split(",") if c.strip()]
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise api.InputError(f"channels must be text, not {channels!r}", fix="e.g. film festival, our website")
    photo = resolve(settings, body.get("photo", ""), folders=("uploads",))
    release = resolve(settings, body["release"], folders=("uploads",)) if body.get("release") else None
    record = await run_in_threadpool(
        lambda: api.consent_add(body.get("identity", ""), photo=photo, role=body.get("role", ""),
                                purpose=body.get("purpose", ""), channels=channels,
                                expires=body.get("expires", ""), display_name=body.get("display_name") or None,
                                release=release, recorded_by=body.get("recorded_by") or None,
                                scope=body.get("scope", ""), workspace=settings.workspace))
    return {"id": record.id, "identity": record.identity, "status": str(record.status())}


@router.post("/consents/{consent_id}/revoke")
async def consent_revoke(request: Request, consent_id: str) -> dict[str, Any]:
    body = texts(await json_body(request), "reason", "by")
    record = await run_in_threadpool(lambda: api.consent_revoke(consent_id, reason=body.get("reason", ""),
                                                                by=body.get("by") or None,
                                                                workspace=settings_of(request).workspace))
    return {"id": record.id, "status": str(record.status()), "revoked_reason": record.revoked_reason}


# --- jobs ------------------------------------------------------------------------------------------------------


@router.post("/jobs")
async def job_submit(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    kind, params = str(body.get("kind", "")), body.get("params") or {}
    if not isinstance(params, dict) or not isinstance(params.get("options") or {}, dict):
        raise JobRefused("params (and their options) must be JSON objects", fix="use the page's own forms")
    texts(params, "input", "model", "output", "identity", "src", "dst", "preset", "faceset", "source",
          "target_video")
    params = await run_in_threadpool(checked_params, request, kind, params)
    return request.app.state.runner.submit(kind, params).to_dict()


@router.post("/jobs/{job_id}/cancel")
def job_cancel(request: Request, job_id: RowId) -> dict[str, Any]:
    return request.app.state.runner.cancel(job_id).to_dict()


@router.post("/jobs/{job_id}/resume")
def job_resume(request: Request, job_id: RowId) -> dict[str, Any]:
    return request.app.state.runner.resume(job_id).to_dict()


@router.get("/jobs")
def jobs(request: Request) -> dict[str, Any]:
    return request.app.state.runner.snapshot()


@router.get("/events")
async def events(request: Request) -> StreamingResponse:
    """Server-sent events: the whole queue's state whenever it changes (a comment every EVENT_WAIT s)."""
    runner = request.app.state.runner

    async def stream():
        version = -1
        while not await request.is_disconnected():
            if version != runner.version:
                version = runner.version
                snapshot = await run_in_threadpool(runner.snapshot)
                yield f"data: {json.dumps(snapshot, default=str)}\n\n"
                continue
            waited = 0.0
            while version == runner.version and waited < EVENT_WAIT and not await request.is_disconnected():
                await run_in_threadpool(runner.wait, version, 1.0)  # a second at a time: a closed tab is seen
                waited += 1.0
            if version == runner.version:
                yield ": waiting\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def checked_params(request: Request, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The page's params with file references turned into paths and options checked, before anything is queued:
    a wrong option or a person without consent is said now, not after a process has started.

    Nothing a client sends is used as a path: files come as references (browse.resolve), models and facesets
    as names of the workspace's own, an output as a plain file name inside outputs/; options that name a folder
    to write (--patch, --render-only) are the command line's."""
    settings = settings_of(request)
    options = {k: v for k, v in (params.get("options") or {}).items() if v is not None and v != ""}
    refused = sorted(set(options) & CLI_ONLY)
    if refused:
        raise JobRefused(f"--{refused[0].replace('_', '-')} writes into a folder of your choosing: it is the command "
                         "line's, not the web UI's", fix="leave it empty here, or run the command in a terminal")
    command = {"preview": "swap"}.get(kind, kind)
    if command in api.OPTION_SCHEMAS:
        check_types(command, options)
        if options.get("reference"):
            options["reference"] = str(resolve(settings, options["reference"]))
        if options.get("target"):  # a person's name, checked now rather than in the job's process
            api.check_name(options["target"], "target")
        if options.get("mask_model") and options["mask_model"] not in api.list_mask_models(
                workspace=settings.workspace):  # a name of the workspace's: a path could load any file
            raise JobRefused(f"no mask model named {options['mask_model']!r} in this workspace",
                             fix="pick one of the Masks page's, or leave it empty")
        api.check_options(command, options)
    params["options"] = options
    params["resume"] = params.get("resume") is True  # never a path: a checkpoint is found by the model's name
    if kind == "extract":
        refs = params.get("inputs") or []
        if not isinstance(refs, list):
            raise JobRefused("inputs must be a list of file references", fix="tick files in the list")
        params["inputs"] = [str(resolve(settings, ref)) for ref in refs]
        if not params["inputs"]:
            raise JobRefused("no files chosen to extract from", fix="tick files in the list, or upload some")
        require_consent(settings, [str(params.get("identity", ""))])
    elif kind == "train":
        require_consent(settings, [str(params.get("src", "")), str(params.get("dst", ""))])
        if params.get("preset") and params["preset"] not in api.train_presets():
            raise JobRefused(f"no preset {params['preset']!r}", fix=f"one of {', '.join(api.train_presets())}")
    elif kind in ("swap", "preview"):
        params["input"] = str(resolve(settings, params.get("input", "")))
        params["model_folder"] = require_model(settings, str(params.get("model", "")))
        if kind == "swap" and params.get("output"):
            params["output"] = output_name(str(params["output"]))
        if kind == "preview":
            [params["frames"]] = _numbers([params.get("frames", 3)], "frames", "a whole number of frames, 1-12")
            if not 1 <= params["frames"] <= 12:
                raise JobRefused(f"frames must be 1-12, not {params['frames']}", fix="send a whole number, 1-12")
    elif kind == "score":
        [output_id] = _numbers([params.get("output_id", 0)], "output_id", "an output's number")
        output = api.output_record(output_id, workspace=settings.workspace)
        params["output"] = str(output.path)
        params["target_video"] = str(resolve(settings, params["target_video"])) if params.get("target_video") else (
            str(output.source) if output.source else "")
        if not params["target_video"]:
            raise JobRefused("the output's source footage is not recorded", fix="pick the target video")
        # the report's folder is the server's choice, never the client's: outputs/scores/ID
        params["report"] = str(settings.workspace / "outputs" / "scores" / str(output_id))
        facesets = {f.name for f in api.list_facesets(workspace=settings.workspace)}
        if params.get("source") not in facesets:
            raise JobRefused(f"no faceset {params.get('source')!r} to score against", fix="pick person A's faceset")
    elif kind == "mask train":
        require_consent(settings, [str(params.get("faceset", ""))])
    return params


CLI_ONLY = {"patch", "render_only"}  # options that write into a folder the user names
OUTPUT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}\.(mp4|mov|mkv|png|jpg|jpeg|webp)", re.IGNORECASE)


def output_name(name: str) -> str:
    """A plain file name for outputs/, or JobRefused: never a path."""
    if not OUTPUT_NAME.fullmatch(name) or ".." in name:
        raise JobRefused(f"{name!r} is not a plain output file name", fix="e.g. interview-swapped.mp4 (letters, "
                         "digits, '.', '-', '_'; ending in .mp4, .mov, .mkv, .png, .jpg or .webp)")
    return name


def require_model(settings, model: str) -> str:
    """The folder of `model`, one of the workspace's trained models by name (a path could load any file); the
    job is given the folder, so no file of the server's working folder is taken for the name."""
    usable = {m.name: m.folder for m in api.list_trained_models(workspace=settings.workspace) if m.usable}
    if model not in usable:
        raise JobRefused(f"no trained model {model!r} in the workspace", fix="pick one on the Swap page, or train one")
    return str(usable[model])


JSON_TYPES = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}


def check_types(command: str, options: dict[str, Any]) -> None:
    """An OptionError for an option whose JSON value is not of its type ("64" for an int, 1 for a bool): the CLI's
    parser makes the types, a page's JSON does not."""
    kinds = {f.name: f.kind for f in api.option_fields(command)}
    for name, value in options.items():
        wanted = JSON_TYPES.get(kinds.get(name, ""))
        if wanted and (not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted)):
            raise api.OptionError(f"option {name!r} is of type {kinds[name]}, not {type(value).__name__} ({value!r})",
                                  fix=f"send {name} as a JSON {kinds[name]}")


def require_consent(settings, identities: list[str]) -> None:
    """A ConsentError (shown with a link to the consent page) for the first person without an active consent.
    The job checks again, with the roles; this says it now rather than after a process has started."""
    for identity in identities:
        records = api.consent_list(identity=identity, workspace=settings.workspace) if identity else []
        if not any(str(c.status()) == "active" for c in records):
            state = "no active consent" if records else "no consent recorded"
            raise api.ConsentError(f"{identity!r} has {state}: nothing is made of a person without one",
                                   fix=f"record their consent on the Consent page (/consent?identity={identity})")


# --- faceset review --------------------------------------------------------------------------------------------


@router.get("/facesets/{name}/faces")
def faces(request: Request, name: str, offset: Annotated[int, Query(ge=0, le=SQLITE_INT_MAX)] = 0,
          limit: Annotated[int, Query(ge=1, le=1000)] = 60, status: str = "kept", reason: str = "",
          cell: str = "", min_sharpness: float | None = None, max_sharpness: float | None = None) -> dict[str, Any]:
    where = _numbers(cell, "cell", "YAW,PITCH, e.g. 0,-15", 2) if cell else None
    page = api.face_page(name, workspace=settings_of(request).workspace, offset=offset, limit=limit, status=status,
                         reason=reason, cell=where, min_sharpness=min_sharpness, max_sharpness=max_sharpness)
    return {"total": page.total, "offset": page.offset,
            # a rejected face's crop is gone (removal and prune keep its old path in the catalog): no broken image
            "faces": [{**vars(row), "url": f"/files/face/{name}/{row.id}" if row.crop and row.status == "kept"
                       else None} for row in page.rows]}


@router.post("/facesets/{name}/remove")
async def faces_remove(request: Request, name: str) -> dict[str, Any]:
    body = await json_body(request)
    ids = _numbers(body.get("ids") or [], "ids", "a list of face ids, e.g. [12, 40]")
    removed = await run_in_threadpool(api.remove_faces, name, ids, workspace=settings_of(request).workspace)
    return {"removed": removed}


def _numbers(given: Any, field: str, fix: str, count: int | None = None) -> tuple[int, ...]:
    """Whole numbers from a comma-separated string or a JSON list, or an InputError (a 400, not a 500)."""
    items = given.split(",") if isinstance(given, str) else given
    try:
        if not isinstance(items, list | tuple) or any(isinstance(v, bool | float) for v in items):
            raise TypeError(field)
        numbers = tuple(int(v) for v in items)
        if count is not None and len(numbers) != count or any(abs(n) > SQLITE_INT_MAX for n in numbers):
            raise ValueError(field)  # (past SQLite's integers: no row has such a number)
    except (TypeError, ValueError):
        raise api.InputError(f"{field} must be {fix}, not {given!r}", fix=f"send {fix}") from None
    return numbers


@router.get("/models/{name}/metrics")
def metrics(request: Request, name: str) -> dict[str, Any]:
    root = settings_of(request).workspace
    found = {m.name: m for m in api.list_trained_models(workspace=root)}.get(name)
    return {"metrics": api.training_metrics(name, workspace=root),
            "step": found.step if found else 0,
            "preview": f"/files/ws/{relative_to(root, found.preview)}" if found and found.preview else None}


# --- verify ----------------------------------------------------------------------------------------------------


@router.post("/verify")
async def verify(request: Request) -> dict[str, Any]:
    """The layered report of an uploaded file (`ref`) or a workspace output (`ref` ws:outputs/...)."""
    settings = settings_of(request)
    body = await json_body(request)
    path = resolve(settings, str(body.get("ref", "")))
    [report] = await run_in_threadpool(api.verify, [path], workspace=settings.workspace)
    if isinstance(report, Exception):
        raise report
    return report.to_dict()
