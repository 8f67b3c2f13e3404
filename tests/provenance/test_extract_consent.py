"""Extraction is the first use of a face: it needs the person's consent, and keeps only their faces."""
from __future__ import annotations

from datetime import timedelta

import pytest

from facewright import api
from facewright.cli import main
from facewright.errors import ConsentError, NoFaceError
from facewright.media import read_video, write_image
from facewright.provenance.consent import utc_today


def _consent(root, identity, photo, role="source"):
    return api.consent_add(identity, photo=photo, role=role, purpose="testing consent checks in extraction",
                           channels=["tests"], expires=(utc_today() + timedelta(days=10)).isoformat(),
                           workspace=root)


@pytest.fixture(scope="module")
def frame_photo(sample, tmp_path_factory):
    """Frame 0 of single_face.mp4 as a consent photo of the man in that clip."""
    return write_image(next(read_video(sample("single_face.mp4"))).image,
                       tmp_path_factory.mktemp("photo") / "man.png")


def test_extract_without_consent_is_refused_with_the_command_that_fixes_it(sample, tmp_path, capsys):
    code = main(["extract", str(sample("single_face.mp4")), "--identity", "nobody",
                 "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err
    assert code == ConsentError.exit_code == 3
    assert "nobody" in err and "facewright consent add --identity nobody" in err
    assert not (tmp_path / "ws" / "facesets" / "nobody").exists()


def test_consent_of_the_person_allows_extraction(sample, frame_photo, tmp_path):
    root = tmp_path / "ws"
    _consent(root, "man", frame_photo, role="target")  # either role allows building a faceset
    report = api.extract([sample("single_face.mp4")], "man", workspace=root, every=6)
    assert report.counts["kept"] > 0 and "other identity" not in report.counts


def test_consent_for_one_person_does_not_cover_another(sample, tmp_path):
    root = tmp_path / "ws"
    _consent(root, "eileen", sample("astronaut.png"))  # the consent photo shows someone else
    with pytest.raises(NoFaceError, match="other identity"):
        api.extract([sample("single_face.mp4")], "eileen", workspace=root, every=6)
    assert not list((root / "facesets").glob("eileen/faces/*.png"))


def test_reference_photo_must_be_the_consenting_person(sample, frame_photo, tmp_path):
    root = tmp_path / "ws"
    _consent(root, "man", frame_photo)
    with pytest.raises(ConsentError, match="reference"):
        api.extract([sample("single_face.mp4")], "man", workspace=root, every=6,
                    reference=str(sample("astronaut.png")))
