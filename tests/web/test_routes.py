"""The web UI's routes through FastAPI's TestClient: who may use it (Host, token, header), what it may read
(path confinement), what it stores (uploads), what its errors show, faceset review and the job queue.

No job runs here (run_jobs=False): submitted jobs stay queued, and the runner is driven by hand."""
from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from facewright import api
from facewright.web.app import create_app
from facewright.web.jobs import JobRefused, JobRunner
from facewright.web.settings import ServerSettings

TOKEN = "t0k"
BASE = "http://127.0.0.1"
HEADER = {"X-Facewright-Token": TOKEN}
HTML = {"accept": "text/html"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo(sample, tmp_path_factory) -> Path:
    """A real PNG photo of one face: the first frame of ben's clip."""
    from facewright.media import read_video, write_image

    return write_image(next(read_video(sample("single_face.mp4"))).image,
                       tmp_path_factory.mktemp("photo") / "ben.png")


@pytest.fixture(scope="module")
def small_template(photo, tmp_path_factory) -> Path:
    """A small workspace with ben's consent and no faces; tests work on copies of it."""
    from facewright.provenance.consent import utc_today

    root = tmp_path_factory.mktemp("small") / "ws"
    api.consent_add("ben", photo=photo, role="target", purpose="testing the web UI's routes", channels=["tests"],
                    expires=(utc_today() + timedelta(days=10)).isoformat(), workspace=root)
    return root


@pytest.fixture
def small_ws(small_template, tmp_path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(small_template, root, symlinks=True)
    return root


@pytest.fixture
def allowed(tmp_path) -> Path:
    """An allowed folder with one (fake) clip, a symlink to a file outside it and a symlinked folder."""
    folder = tmp_path / "allowed"
    outside = tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "clip.mp4").write_bytes(b"\0\0\0\x18ftypmp42 not really a video")
    (outside / "secret.png").write_bytes(PNG_SIGNATURE + b"SECRET-OUTSIDE")
    (folder / "link.png").symlink_to(outside / "secret.png")
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    return folder


def make_app(workspace: Path, allowed: Path | None = None, **settings):
    return create_app(ServerSettings(workspace=workspace, token=TOKEN, allowed=(allowed,) if allowed else (),
                                     **settings), run_jobs=False)


@pytest.fixture
def app(small_ws, allowed):
    return make_app(small_ws, allowed)


@pytest.fixture
def client(app):
    """Logged in by the header (the cookie is tested on its own)."""
    with TestClient(app, base_url=BASE, headers=HEADER) as test_client:
        yield test_client


@pytest.fixture
def anonymous(app):
    with TestClient(app, base_url=BASE) as test_client:
        yield test_client


def raw_get(app, raw_path: str, headers: dict[str, str] = HEADER) -> tuple[int, bytes]:
    """GET `raw_path` exactly as written (`..` kept, as `curl --path-as-is` sends it; httpx would normalize it
    away), decoded into scope["path"] as uvicorn does; return the status and the body."""
    sent: list[dict] = []
    received: list[bool] = []

    async def receive():
        if received:  # the request was read: the next message says the client is gone (after the response)
            while not any(m["type"] == "http.response.body" and not m.get("more_body") for m in sent):
                await asyncio.sleep(0.01)
            return {"type": "http.disconnect"}
        received.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": unquote(raw_path), "raw_path": raw_path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1")] + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8765)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def uploaded_files(workspace: Path) -> list[Path]:
    return [p for p in (workspace / "uploads").rglob("*") if p.is_file()] if (workspace / "uploads").exists() else []


# --- auth: token, cookie, header -------------------------------------------------------------------------------


def test_without_token_pages_redirect_to_login_and_json_is_401(anonymous):
    page = anonymous.get("/", headers=HTML, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    for path in ("/api/jobs", "/api/facesets/ben/faces", "/files/ws/uploads/1/x.png"):
        answer = anonymous.get(path)
        assert answer.status_code == 401, path
        assert answer.json()["type"] == "AuthRequired"
    assert anonymous.post("/api/jobs", json={"kind": "extract"}).status_code == 401
    login = anonymous.get("/login")
    assert login.status_code == 200 and "Token" in login.text
    assert anonymous.get("/static/style.css").status_code == 200


def test_login_with_wrong_token_is_401_and_sets_no_cookie(anonymous):
    answer = anonymous.get("/login", params={"token": "WRONG"}, follow_redirects=False)
    assert answer.status_code == 401
    assert "set-cookie" not in answer.headers
    assert not anonymous.cookies
    assert anonymous.post("/login", data={"token": "t0"}, follow_redirects=False).status_code == 401
    assert anonymous.get("/", headers=HTML, follow_redirects=False).status_code == 303


def test_login_sets_a_strict_httponly_cookie_then_pages_answer(anonymous):
    answer = anonymous.get("/login", params={"token": TOKEN}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"facewright_token_8765={TOKEN};")  # the port in the name: servers do not collide
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    for path in ("/", "/consent", "/extract", "/faceset", "/train", "/swap", "/verify", "/score", "/jobs"):
        page = anonymous.get(path, headers=HTML)
        assert page.status_code == 200, (path, page.text[:500])
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert anonymous.get("/api/jobs").json()["jobs"] == []


def test_a_change_needs_the_header_not_only_the_cookie(anonymous):
    anonymous.get("/login", params={"token": TOKEN})
    body = {"kind": "explode", "params": {}}
    refused = anonymous.post("/api/jobs", json=body)
    assert refused.status_code == 403 and refused.json()["type"] == "TokenHeaderRequired"
    assert anonymous.post("/api/jobs", json=body, headers={"X-Facewright-Token": "WRONG"}).status_code == 403
    assert anonymous.get("/api/jobs").json()["jobs"] == []  # nothing was queued
    # with the header, the request goes through (and the route answers: no such kind)
    answered = anonymous.post("/api/jobs", json=body, headers=HEADER)
    assert answered.status_code == 400 and answered.json()["type"] == "JobRefused"


# --- Host header (DNS rebinding) -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "localhost.evil.example", "127.0.0.1.nip.io"])
def test_a_foreign_host_is_refused_even_with_the_token(client, host):
    for path in ("/", "/login", f"/login?token={TOKEN}", "/api/jobs", "/static/style.css"):
        answer = client.get(path, headers={"host": host}, follow_redirects=False)
        assert answer.status_code == 421, (host, path)
        assert answer.json()["type"] == "HostRefused"
        assert "set-cookie" not in answer.headers


@pytest.mark.parametrize("host", ["localhost:8765", "localhost", "LOCALHOST:8765", "127.0.0.1", "127.0.0.1:8765",
                                  "[::1]:8765", "[::1]", "192.168.1.20:8765"])
def test_loopback_names_and_ip_literals_are_served(client, host):
    assert client.get("/api/jobs", headers={"host": host}).status_code == 200, host


def test_a_host_given_with_allow_host_is_served(small_ws):
    app = make_app(small_ws, allowed_hosts=("studio.lan",))
    with TestClient(app, base_url=BASE, headers=HEADER) as client:
        assert client.get("/api/jobs", headers={"host": "studio.lan:8765"}).status_code == 200
        assert client.get("/api/jobs", headers={"host": "Studio.LAN"}).status_code == 200
        assert client.get("/api/jobs", headers={"host": "other.lan"}).status_code == 421


# --- path confinement ------------------------------------------------------------------------------------------


def test_served_files_and_what_is_refused(app, client, small_ws, allowed):
    """Files the pages show come back; every way out of the served folders is refused, the bytes never sent."""
    catalog = (small_ws / "catalog.sqlite").read_bytes()[:16]
    secret = b"SECRET-OUTSIDE"
    [record] = api.consent_list(workspace=small_ws)
    photo = small_ws / record.photo
    served = client.get(f"/files/ws/{photo.relative_to(small_ws).as_posix()}")
    assert served.status_code == 200 and served.headers["content-type"].startswith("image/")
    clip = client.get("/files/allowed/0/clip.mp4")
    assert clip.status_code == 200 and clip.content == (allowed / "clip.mp4").read_bytes()

    refused_raw = ["/files/ws/../catalog.sqlite", "/files/ws/uploads/../catalog.sqlite",
                   "/files/ws/uploads/../../outside/secret.png", "/files/ws/%2e%2e/catalog.sqlite",
                   "/files/ws/uploads/%2e%2e/catalog.sqlite", "/files/ws/uploads%2f..%2fcatalog.sqlite",
                   "/files/ws/uploads/%2E%2E/%2E%2E/outside/secret.png", "/files/ws/catalog.sqlite",
                   "/files/ws//etc/passwd", "/files/ws/%2fetc%2fpasswd", f"/files/ws/{small_ws}/catalog.sqlite",
                   "/files/allowed/0/../outside/secret.png", "/files/allowed/0/%2e%2e/outside/secret.png",
                   "/files/allowed/0//etc/passwd", f"/files/allowed/0/{allowed.parent}/outside/secret.png",
                   "/files/allowed/0/link.png", "/files/allowed/0/linked/secret.png", "/files/allowed/1/clip.mp4",
                   "/files/allowed/x/clip.mp4", "/files/allowed/0/..%5coutside%5csecret.png",
                   "/files/allowed/0/clip.mp4%00.png", "/files/face/ben/1", "/files/face/..%2f..%2fcatalog/1"]
    for path in refused_raw:
        status, body = raw_get(app, path)
        assert 400 <= status < 500, (path, status, body[:200])
        assert secret not in body and catalog not in body, path
    for path in ("/files/ws/%2e%2e/catalog.sqlite", "/files/allowed/0/link.png", "/files/allowed/0/linked/secret.png"):
        answer = client.get(path)
        assert 400 <= answer.status_code < 500 and secret not in answer.content and catalog not in answer.content
    assert "symlink" in client.get("/files/allowed/0/link.png").json()["message"]


def test_a_symlink_planted_in_the_workspace_is_not_followed(client, small_ws, allowed):
    folder = small_ws / "uploads" / "7"
    folder.mkdir(parents=True)
    (folder / "evil.png").symlink_to(allowed.parent / "outside" / "secret.png")
    (small_ws / "outputs").mkdir(exist_ok=True)
    (small_ws / "outputs" / "escape").symlink_to(allowed.parent / "outside", target_is_directory=True)
    for path in ("/files/ws/uploads/7/evil.png", "/files/ws/outputs/escape/secret.png"):
        answer = client.get(path)
        assert answer.status_code == 400 and b"SECRET" not in answer.content, path
    # nor offered to pick: the lists leave links out
    page = client.get("/extract", headers=HTML).text
    assert "clip.mp4" in page and "link.png" not in page and "evil.png" not in page and "secret.png" not in page


# --- uploads ---------------------------------------------------------------------------------------------------


def test_a_photo_upload_comes_back_with_its_one_face(client, small_ws, photo):
    answer = client.post("/api/uploads", params={"kind": "image"},
                         files={"file": ("My Photo (1).png", photo.read_bytes(), "image/png")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["type"] == "png" and body["name"] == "My_Photo_1.png"
    assert len(body["faces"]) == 1 and len(body["faces"][0]) == 4
    x0, y0, x1, y1 = body["faces"][0]
    assert (body["width"], body["height"]) == (640, 360)
    assert 0 <= x0 < x1 <= body["width"] and 0 <= y0 < y1 <= body["height"]
    [stored] = uploaded_files(small_ws)
    assert stored.read_bytes() == photo.read_bytes()
    assert body["ref"] == f"ws:{stored.relative_to(small_ws).as_posix()}"
    assert client.get(body["url"]).content == photo.read_bytes()


@pytest.mark.parametrize("content", [b"just some text, not a picture\n" * 20, PNG_SIGNATURE + b"garbage" * 100],
                         ids=["text", "png-header-on-garbage"])
def test_a_non_image_sent_as_image_is_refused_and_not_stored(client, small_ws, content):
    answer = client.post("/api/uploads", params={"kind": "image"}, files={"file": ("holiday.png", content,
                                                                                   "image/png")})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["message"] and body["fix"] and "trace" not in body
    assert body["type"] == "UploadRefused"
    assert ("not a readable png" if content.startswith(PNG_SIGNATURE) else "not image by its content") in \
        body["message"]
    assert uploaded_files(small_ws) == []


def test_an_unknown_upload_kind_is_refused(client, small_ws, photo):
    answer = client.post("/api/uploads", params={"kind": "script"}, files={"file": ("a.png", photo.read_bytes())})
    assert answer.status_code == 400 and "unknown upload kind" in answer.json()["message"]
    assert uploaded_files(small_ws) == []


@pytest.mark.parametrize("size", [int(1.5 * 2**20), 2**20 + 2**14], ids=["declared-too-large", "streamed-past"])
def test_an_oversized_upload_is_refused_and_not_stored(small_ws, size):
    app = make_app(small_ws, max_upload_mb=1)
    with TestClient(app, base_url=BASE, headers=HEADER) as client:
        content = PNG_SIGNATURE + bytes(size - len(PNG_SIGNATURE))
        answer = client.post("/api/uploads", params={"kind": "image"}, files={"file": ("big.png", content)})
    assert answer.status_code == 413, answer.text
    # declared too large: refused by its length before a byte is read, in Starlette's words; else in ours
    assert "Too Large" in answer.text if size > 2**20 + 2**16 else "limit of 1 MB" in answer.json()["message"]
    assert uploaded_files(small_ws) == []


def test_a_chunked_upload_without_a_length_is_cut_off_at_the_limit(small_ws):
    app = make_app(small_ws, max_upload_mb=1)
    boundary = b"xyz"
    head = (b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + PNG_SIGNATURE)
    sent = []

    def body():  # no Content-Length: httpx sends it chunked
        yield head
        for _ in range(48):  # 3 MB, a 64 kB piece at a time
            sent.append(1)
            yield bytes(2**16)
        yield b"\r\n--xyz--\r\n"

    with TestClient(app, base_url=BASE, headers=HEADER) as client:
        answer = client.post("/api/uploads?kind=image", content=body(),
                             headers={"content-type": f"multipart/form-data; boundary={boundary.decode()}"})
    assert answer.status_code == 413 and "limit of 1 MB" in answer.text, answer.text
    assert uploaded_files(small_ws) == []


# --- errors: typed, no traceback unless --debug ----------------------------------------------------------------


def _boom(*args, **kwargs):
    raise RuntimeError("internal detail /secret/path")


@pytest.mark.parametrize("debug", [False, True])
def test_unexpected_errors_show_a_traceback_only_with_debug(small_ws, monkeypatch, debug):
    monkeypatch.setattr(api, "overview", _boom)
    monkeypatch.setattr(api, "face_page", _boom)
    app = make_app(small_ws, debug=debug)
    with TestClient(app, base_url=BASE, headers=HEADER, raise_server_exceptions=False) as client:
        page = client.get("/", headers=HTML)
        data = client.get("/api/facesets/ben/faces")
    assert page.status_code == 500 and data.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    body = data.json()
    assert body["type"] == "RuntimeError"
    for text in (page.text, data.text):
        assert ("Traceback" in text) == debug
        assert ("/secret/path" in text) == debug
    assert ("trace" in body) == debug


def test_typed_errors_say_what_and_how_to_fix_without_traceback(client):
    page = client.get("/faceset/nobody", headers=HTML)
    assert page.status_code == 400 and "no faceset named" in page.text and "Traceback" not in page.text
    data = client.get("/api/facesets/nobody/faces")
    assert data.status_code == 400
    assert set(data.json()) >= {"type", "message", "fix", "path"} and "trace" not in data.json()
    assert client.get("/api/facesets/ben/faces", params={"status": "maybe"}).status_code == 400
    for cell in ("left,up", "15", "15,0,0"):
        bad_cell = client.get("/api/facesets/ben/faces", params={"cell": cell})
        assert bad_cell.status_code == 400 and "cell must be" in bad_cell.json()["message"], cell
    for ids in (["one"], [1.5], [True], {"1": 2}, "x"):
        bad_ids = client.post("/api/facesets/ben/remove", json={"ids": ids})
        assert bad_ids.status_code == 400 and "ids must be" in bad_ids.json()["message"], ids
    assert client.post("/api/jobs/999/cancel").status_code == 400


# --- faceset review --------------------------------------------------------------------------------------------


@pytest.fixture
def review_ws(pair_ws, tmp_path) -> Path:
    """A copy of pair_ws (the session's workspace is shared with other tests: never changed here)."""
    root = tmp_path / "pair"
    shutil.copytree(pair_ws, root, symlinks=True)
    return root


def test_faceset_review_pages_filters_and_removal(review_ws):
    from facewright.collect.review import REMOVED, pose_cell

    app = make_app(review_ws)
    with TestClient(app, base_url=BASE, headers=HEADER) as client:
        assert client.get("/faceset/ben", headers=HTML).status_code == 200
        first = client.get("/api/facesets/ben/faces", params={"limit": 10}).json()
        kept = first["total"]
        assert 10 < kept <= 72 and len(first["faces"]) == 10 and first["offset"] == 0
        second = client.get("/api/facesets/ben/faces", params={"limit": 10, "offset": 10}).json()
        assert second["total"] == kept and second["offset"] == 10
        assert not {f["id"] for f in first["faces"]} & {f["id"] for f in second["faces"]}
        assert client.get("/api/facesets/ben/faces", params={"limit": 10, "offset": kept}).json()["faces"] == []
        everything = client.get("/api/facesets/ben/faces", params={"status": "all", "limit": 500}).json()
        assert everything["total"] >= kept and len(everything["faces"]) == everything["total"]
        rejected = client.get("/api/facesets/ben/faces", params={"status": "rejected", "limit": 500}).json()
        assert rejected["total"] + kept == everything["total"]
        assert all(f["status"] == "rejected" for f in rejected["faces"])

        face = first["faces"][0]
        cell = pose_cell(face["yaw"], face["pitch"])
        in_cell = client.get("/api/facesets/ben/faces", params={"cell": f"{cell[0]},{cell[1]}", "limit": 500}).json()
        assert 1 <= in_cell["total"] <= kept and face["id"] in {f["id"] for f in in_cell["faces"]}
        assert all(pose_cell(f["yaw"], f["pitch"]) == cell for f in in_cell["faces"])
        assert in_cell["total"] == api.review_faceset("ben", workspace=review_ws).cells[cell]

        crop = client.get(face["url"])
        assert crop.status_code == 200 and crop.headers["content-type"] == "image/png"

        doomed = first["faces"][:2]
        anna_page = api.face_page("anna", workspace=review_ws, limit=1)
        anna_face, anna_kept = anna_page.rows[0].id, anna_page.total
        stranger = client.post("/api/facesets/ben/remove", json={"ids": [doomed[0]["id"], anna_face]})
        assert 400 <= stranger.status_code < 500 and str(anna_face) in stranger.json()["message"]
        assert client.get("/api/facesets/ben/faces", params={"limit": 1}).json()["total"] == kept  # all or nothing
        assert (review_ws / "facesets" / "ben" / doomed[0]["crop"]).is_file()

        removed = client.post("/api/facesets/ben/remove", json={"ids": [f["id"] for f in doomed]})
        assert removed.status_code == 200 and removed.json() == {"removed": 2}
        for gone in doomed:
            assert not (review_ws / "facesets" / "ben" / gone["crop"]).exists()
            assert client.get(gone["url"]).status_code == 400
        assert client.get("/api/facesets/ben/faces", params={"limit": 1}).json()["total"] == kept - 2
        thrown = client.get("/api/facesets/ben/faces", params={"status": "rejected", "reason": REMOVED}).json()
        assert {f["id"] for f in thrown["faces"]} == {f["id"] for f in doomed}
        assert all(f["reason"] == "removed by user" and f["url"] is None for f in thrown["faces"])
        # removing them again changes nothing
        assert client.post("/api/facesets/ben/remove", json={"ids": [doomed[0]["id"]]}).json() == {"removed": 0}
        assert api.face_page("anna", workspace=review_ws, limit=1).total == anna_kept  # the other faceset untouched


# --- job submission checks -------------------------------------------------------------------------------------


def submit(client, kind: str, **params):
    return client.post("/api/jobs", json={"kind": kind, "params": params})


def test_a_job_for_a_person_without_consent_is_refused_with_the_fix(client):
    answer = submit(client, "extract", identity="carl", inputs=["allowed:0/clip.mp4"])
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["type"] == "ConsentError" and body["consent"] is True
    assert "carl" in body["message"] and "/consent?identity=carl" in body["fix"]
    train = submit(client, "train", src="carl", dst="ben")
    assert train.status_code == 403 and train.json()["type"] == "ConsentError"
    assert client.get("/api/jobs").json()["jobs"] == []


def test_bad_job_submissions_are_refused_before_anything_is_queued(client):
    ref = ["allowed:0/clip.mp4"]
    cases = [submit(client, "extract", identity="ben", inputs=ref, options={"bogus": 1}),
             submit(client, "extract", identity="ben", inputs=ref, options={"size": "64"}),
             submit(client, "explode", identity="ben"),
             submit(client, "", identity="ben"),
             submit(client, "extract", identity="ben", inputs=["/etc/passwd"]),
             submit(client, "extract", identity="ben", inputs=["allowed:0/../outside/secret.png"]),
             submit(client, "extract", identity="ben", inputs=["allowed:0/link.png"]),
             submit(client, "extract", identity="ben", inputs=["ws:catalog.sqlite"]),
             submit(client, "extract", identity="ben", inputs=["allowed:0/missing.mp4"]),
             submit(client, "extract", identity="ben", inputs=[]),
             submit(client, "swap", input="allowed:3/clip.mp4", model="m")]
    for number, answer in enumerate(cases):
        assert answer.status_code == 400, (number, answer.text)
        assert answer.json()["message"] and answer.json()["fix"], number
    types = [answer.json()["type"] for answer in cases]
    assert types[:4] == ["OptionError", "OptionError", "JobRefused", "JobRefused"]
    assert "unknown option 'bogus'" in cases[0].json()["message"] and "size" in cases[1].json()["message"]
    assert set(types[4:8]) == {"PathRefused"}
    assert client.get("/api/jobs").json()["jobs"] == []
    good = submit(client, "extract", identity="ben", inputs=ref, options={"size": 64, "dedupe": None})
    assert good.status_code == 200, good.text
    job = good.json()
    assert job["status"] == "queued" and job["params"]["options"] == {"size": 64}
    assert job["params"]["inputs"][0].endswith("clip.mp4")
    assert [j["id"] for j in client.get("/api/jobs").json()["jobs"]] == [job["id"]]


def test_a_job_never_takes_a_path_from_the_client(client, small_ws):
    """Models and outputs by name only, no option that writes where the client says, resume never a path."""
    checkpoints = small_ws / "models" / "fake" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "step_0000010.pt").write_bytes(b"")  # listed as a usable model; never loaded here
    clip = "allowed:0/clip.mp4"
    refused = [submit(client, "swap", input=clip, model=str(checkpoints / "step_0000010.pt")),
               submit(client, "preview", input=clip, model="../fake"),
               submit(client, "swap", input=clip, model="fake", output="../../evil.mp4"),
               submit(client, "swap", input=clip, model="fake", output="/tmp/evil.mp4"),
               submit(client, "swap", input=clip, model="fake", output="evil.sh"),
               submit(client, "swap", input=clip, model="fake", options={"patch": "/tmp/faces"}),
               submit(client, "swap", input=clip, model="fake", options={"render_only": "faces"}),
               submit(client, "swap", input=clip, model="fake", options={"reference": "/etc/passwd"}),
               submit(client, "preview", input=clip, model="fake", frames="3; rm")]
    for number, answer in enumerate(refused):
        assert answer.status_code == 400, (number, answer.text)
    assert client.get("/api/jobs").json()["jobs"] == []
    swap = submit(client, "swap", input=clip, model="fake", output="take-2.mp4", resume="/etc/passwd").json()
    assert swap["params"]["output"] == "take-2.mp4" and swap["params"]["resume"] is False  # not a checkpoint path
    assert submit(client, "extract", identity="ben", inputs=[clip], resume=1).json()["params"]["resume"] is False
    assert submit(client, "extract", identity="ben", inputs=[clip], resume=True).json()["params"]["resume"] is True


# --- the job runner, without spawning work ---------------------------------------------------------------------


def test_a_queued_job_can_be_cancelled(client):
    job = submit(client, "extract", identity="ben", inputs=["allowed:0/clip.mp4"]).json()
    cancelled = client.post(f"/api/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/jobs/{job['id']}/cancel")
    assert again.status_code == 400 and again.json()["type"] == "JobRefused"
    [row] = client.get("/api/jobs").json()["jobs"]
    assert row["status"] == "cancelled" and row["resumable"] is True
    resumed = client.post(f"/api/jobs/{job['id']}/resume").json()
    assert resumed["status"] == "queued" and resumed["params"]["resume"] is True


def test_a_restart_interrupts_the_running_job_keeps_the_queue_and_resume_requeues_it(small_ws):
    runner = JobRunner(small_ws)
    running = runner.submit("train", {"src": "ben", "dst": "ben", "options": {}})
    assert runner.book.claim_next(12345).id == running.id  # the oldest queued job, now running
    extract = runner.submit("extract", {"identity": "ben", "inputs": ["/x.mp4"], "options": {"size": 64}})
    preview = runner.submit("preview", {"input": "/x.mp4", "model": "m", "options": {}})
    done = runner.submit("swap", {"input": "/x.mp4", "model": "m", "options": {}})
    runner.book.end(done.id, api.JobStatus.DONE, result={"frames": 1})
    version = runner.version

    closed = api.job_book(workspace=small_ws).interrupt_unfinished()  # what the next server's start does
    assert closed == [(running.id, 12345)]
    record = runner.book.get(running.id)
    assert record.status == api.JobStatus.INTERRUPTED and record.finished_at
    assert record.error["type"] == "Interrupted" and record.error["fix"]
    assert [runner.book.get(j.id).status for j in (extract, preview)] == [api.JobStatus.QUEUED] * 2  # still to run
    assert runner.book.get(done.id).status == api.JobStatus.DONE

    resumed = runner.resume(running.id)
    assert resumed.id not in (extract.id, running.id, preview.id, done.id)
    assert resumed.kind == "train" and resumed.status == api.JobStatus.QUEUED
    assert resumed.params == {**running.params, "resume": True}
    assert runner.version > version
    for refused in (done.id, preview.id, extract.id, resumed.id):  # done, not resumable, still queued
        with pytest.raises(JobRefused):
            runner.resume(refused)
    with pytest.raises(JobRefused):
        runner.resume(9999)
    with pytest.raises(JobRefused):
        runner.cancel(done.id)
    assert runner.cancel(extract.id).status == api.JobStatus.CANCELLED  # a queued job, cancelled at once
    snapshot = {row["id"]: row for row in runner.snapshot()["jobs"]}
    assert snapshot[extract.id]["resumable"] and snapshot[running.id]["resumable"]
    assert not snapshot[preview.id]["resumable"] and not snapshot[done.id]["resumable"]


def test_hostile_shapes_and_numbers_are_typed_4xx_not_500(client, small_ws, photo):
    """Lists where text is expected, numbers past SQLite's integers, a digit that is not ASCII: from a probe,
    each was a 500 (a TypeError, an OverflowError, a ValueError in the server)."""
    consent = {"identity": "dana", "role": "target", "purpose": "testing hostile shapes", "channels": ["tests"],
               "expires": "2099-01-01", "photo": "ws:uploads/1/x.png"}
    answers = [client.post("/api/consents", json={**consent, "photo": ["x"]}),
               client.post("/api/consents", json={**consent, "photo": {}}),
               client.post("/api/consents", json={**consent, "channels": 5}),
               client.post("/api/consents", json={**consent, "channels": [1, 2]}),
               client.post("/api/consents", json={**consent, "recorded_by": ["x"]}),
               client.post("/api/consents/abc/revoke", json={"reason": "a fine reason", "by": ["x"]}),
               submit(client, "swap", input=["x"], model="m"),
               submit(client, "extract", identity="ben", inputs=[["x"]]),
               submit(client, "train", src="ben", dst="ben", preset=["x"]),
               client.get("/files/face/ben/99999999999999999999999"),
               client.get("/api/facesets/ben/faces", params={"offset": 10**20}),
               client.post("/api/facesets/ben/remove", json={"ids": [10**23]}),
               client.post(f"/api/jobs/{10**23}/cancel"),
               client.post(f"/api/jobs/{10**23}/resume"),
               client.get("/files/allowed/\u00b9/x")]
    for number, answer in enumerate(answers):
        assert 400 <= answer.status_code < 500, (number, answer.status_code, answer.text)
        assert answer.json()["message"], number
    assert client.get("/api/jobs").json()["jobs"] == []


def test_a_score_report_goes_where_the_server_says_and_a_mask_model_is_a_name(client, small_ws, photo, tmp_path):
    api.mark(photo, small_ws / "outputs" / "ben-marked.png", workspace=small_ws)
    [output] = api.list_outputs(workspace=small_ws)
    api.extract([photo], "ben", workspace=small_ws)
    evil = tmp_path / "evil-report"
    job = submit(client, "score", output_id=output.id, source="ben", target_video="ws:outputs/ben-marked.png",
                 report=str(evil))
    assert job.status_code == 200, job.text
    assert job.json()["params"]["report"] == str(small_ws / "outputs" / "scores" / str(output.id))
    assert not evil.exists()
    refused = submit(client, "preview", input="allowed:0/clip.mp4", model="fake",
                     options={"mask": "occlusion", "mask_model": "/etc/passwd.pt"})
    assert refused.status_code == 400 and "no mask model named" in refused.json()["message"]
    assert submit(client, "preview", input="allowed:0/clip.mp4", model="fake", frames=10**6).status_code == 400


def test_an_output_made_under_a_consent_since_revoked_is_no_longer_served(client, small_ws, photo):
    from facewright.provenance.consent import utc_today

    # a consent of its own: a revocation holds in every copy of the workspace (the ledger), so not ben's template one
    consent = api.consent_add("cara", photo=photo, role="target", purpose="testing a revoked output's serving",
                              channels=["tests"], expires=(utc_today() + timedelta(days=10)).isoformat(),
                              workspace=small_ws)
    api.mark(photo, small_ws / "outputs" / "ben-marked.png", consent=[consent.id], workspace=small_ws)
    assert client.get("/files/ws/outputs/ben-marked.png").status_code == 200
    api.consent_revoke(consent.id, reason="withdrawn by email", workspace=small_ws)
    refused = client.get("/files/ws/outputs/ben-marked.png")
    assert refused.status_code == 403 and refused.json()["type"] == "ConsentError"
    assert "revoked" in refused.json()["message"] and refused.headers["content-type"].startswith("application/json")
    assert client.get("/files/ws/outputs/ben-marked.png", params={"download": True}).status_code == 403
