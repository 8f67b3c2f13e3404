"""The sexual-purpose guard on its kept list of cases (guard_cases.txt): every refused spelling, every allowed
phrase, through the guard itself, through `check_use` (purpose and channels) and through the CLI."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from facewright.cli import main
from facewright.errors import ConsentError
from facewright.provenance.consent import check_use, utc_today
from facewright.provenance.guard import normalize, sexual_term

CASES = Path(__file__).with_name("guard_cases.txt")
PURPOSE = "short film for a student festival"


def _cases(verdict: str) -> list[str]:
    lines = CASES.read_text(encoding="utf-8").splitlines()
    found = [line.split(":", 1)[1].strip() for line in lines if line.startswith(f"{verdict}:")]
    return [re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: chr(int(m.group(1), 16)), text) for text in found]


REFUSED, ALLOWED = _cases("refuse"), _cases("allow")


def test_the_case_list_is_there_and_holds_both_kinds():
    assert len(REFUSED) >= 80 and len(ALLOWED) >= 30
    assert "\u200b" in "".join(REFUSED) and "\u043e" in "".join(REFUSED)  # invisible and look-alike letters


@pytest.mark.parametrize("text", REFUSED)
def test_refused_as_purpose_and_as_channel(text):
    assert sexual_term(text) is not None, normalize(text)
    with pytest.raises(ConsentError, match="facewright does not make sexual content"):
        check_use(f"{text} for the web", ["web"])  # in a purpose (padded to the minimum length)
    with pytest.raises(ConsentError, match="facewright does not make sexual content"):
        check_use(PURPOSE, ["vimeo", text])  # in a channel


@pytest.mark.parametrize("text", ALLOWED)
def test_allowed_as_purpose_and_as_channel(text):
    assert sexual_term(text) is None, f"{text!r} read as {normalize(text)!r}"
    check_use(f"{text} for the web", ["web"])
    check_use(PURPOSE, [text])


def test_the_message_names_the_text_and_what_was_read():
    with pytest.raises(ConsentError) as caught:
        check_use(PURPOSE, ["vimeo", "p\u200b0rn hub"])
    assert "'p\\u200b0rn hub' names sexual content ('porn')" in str(caught.value)


def test_normalize_undoes_width_case_accents_and_look_alikes():
    assert normalize("ＡＤＵＬＴ-Cоntent\u200b   Wébsite!") == "adult content website \u00a6"


def test_the_cli_refuses_a_sexual_channel_before_reading_the_photo(tmp_path, capsys):
    code = main(["consent", "add", "--identity", "alice", "--photo", str(tmp_path / "missing.jpg"), "--role", "source",
                 "--purpose", PURPOSE, "--channels", "vimeo, only fans", "--workspace", str(tmp_path / "ws"),
                 "--expires", (utc_today() + timedelta(days=30)).isoformat()])
    err = capsys.readouterr().err
    assert code == ConsentError.exit_code == 3
    assert "'only fans' names sexual content ('only fans'); facewright does not make sexual content" in err
