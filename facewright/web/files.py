"""Files the pages show: face crops, and workspace files (outputs, previews, consent photos, uploads, model
previews and score plots). Only through security.confine, only these folders and these types."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from facewright import api
from facewright.web.browse import resolve
from facewright.web.security import PathRefused, RowId

router = APIRouter(prefix="/files")
SERVED_FOLDERS = ("outputs", "previews", "uploads", "models", "consents")
SERVED_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                ".mp4": "video/mp4", ".mov": "video/quicktime", ".m4v": "video/mp4", ".mkv": "video/x-matroska",
                ".webm": "video/webm", ".json": "application/json", ".pdf": "application/pdf"}


def _file(path: Path, download: bool, cache: str = "no-store") -> FileResponse:
    media_type = SERVED_TYPES.get(path.suffix.lower())
    if media_type is None:
        raise PathRefused("this type of file is not served", path=path.name, fix="open it from the workspace folder")
    return FileResponse(path, media_type=media_type, filename=path.name if download else None,
                        content_disposition_type="attachment" if download else "inline",
                        headers={"Cache-Control": cache})


@router.get("/face/{faceset}/{face_id}")
def face(request: Request, faceset: str, face_id: RowId) -> FileResponse:
    # a crop never changes under its id (a removed one is gone): the grid's pages need not fetch it twice
    return _file(api.face_crop(faceset, face_id, workspace=request.app.state.settings.workspace), False,
                 "private, max-age=600")


@router.get("/ws/{relative:path}")
def workspace_file(request: Request, relative: str, download: bool = False) -> FileResponse:
    settings = request.app.state.settings
    path = resolve(settings, f"ws:{relative}", folders=SERVED_FOLDERS)
    revoked = api.revoked_behind(path, workspace=settings.workspace)  # [] for a file that is no recorded output
    if revoked:
        raise api.ConsentError(f"made under consent {revoked[0][:12]}, which was revoked: it is no longer shown",
                               path=path.name, fix="the person withdrew; see the Consent page")
    return _file(path, download)


@router.get("/allowed/{relative:path}")
def allowed_file(request: Request, relative: str) -> FileResponse:
    return _file(resolve(request.app.state.settings, f"allowed:{relative}"), False)
