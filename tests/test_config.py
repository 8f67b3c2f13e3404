import argparse
import dataclasses
import math
import re
from pathlib import Path

import pytest

from facewright.config import (
    ExtractOptions,
    MarkOptions,
    MaskTrainOptions,
    ScoreOptions,
    SwapOptions,
    TrainOptions,
    VideoOptions,
    add_options,
    build,
    load_config,
    to_dict,
)
from facewright.errors import OptionError

SCHEMAS = (ExtractOptions, SwapOptions, TrainOptions, MaskTrainOptions, VideoOptions, MarkOptions, ScoreOptions)


def test_precedence_defaults_config_flags():
    assert build(VideoOptions) == VideoOptions()
    assert build(VideoOptions, config={"crf": 22, "preset": "slow"}).crf == 22
    options = build(VideoOptions, flags={"crf": 20, "preset": None}, config={"crf": 22, "preset": "slow"})
    assert (options.crf, options.preset) == (20, "slow")


@pytest.mark.parametrize("values", [{"crf": 60}, {"preset": "warp"}, {"codec": "mpeg2"}])
def test_wrong_values_are_option_errors(values):
    with pytest.raises(OptionError) as caught:
        VideoOptions(**values)
    assert caught.value.exit_code == 2 and caught.value.fix


def test_unknown_config_key_is_named():
    with pytest.raises(OptionError, match="crff"):
        build(VideoOptions, config={"crff": 3})


def test_flags_equal_field_names():
    parser = argparse.ArgumentParser()
    add_options(parser, VideoOptions)
    args = parser.parse_args(["--crf", "21", "--preset", "fast"])
    assert build(VideoOptions, flags=vars(args)) == VideoOptions(crf=21, preset="fast")
    with pytest.raises(SystemExit):
        parser.parse_args(["--preset", "warp"])


def test_load_config(tmp_path):
    (tmp_path / "ok.toml").write_text("[swap]\ncrf = 20\n")
    assert load_config(tmp_path / "ok.toml") == {"swap": {"crf": 20}}
    (tmp_path / "bad.toml").write_text("[swap\ncrf = \n")
    with pytest.raises(OptionError, match="bad.toml"):
        load_config(tmp_path / "bad.toml")
    with pytest.raises(OptionError, match="missing.toml"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(OptionError, match="dir.toml: is a folder") as caught:
        load_config(tmp_path / "dir.toml")
    assert caught.value.exit_code == 2 and caught.value.fix
    assert to_dict(VideoOptions()) == {"codec": "libx264", "crf": 18, "preset": "medium"}


def test_key_value_lists_take_the_fields_types_and_are_checked():
    from facewright.config import SwapOptions, TrainOptions, parse_assignments

    assert parse_assignments("lr=1e-3, ema=0,flip=yes,model=dfl-h", TrainOptions, "--train") == {
        "lr": 1e-3, "ema": 0.0, "flip": True, "model": "dfl-h"}
    assert parse_assignments("", SwapOptions, "--swap") == {}
    for bad, message in (("detail", "not KEY=VALUE"), ("detial=1", "did you mean --detail"),
                         ("batch=two", "not a whole number"), ("detail=2", "--detail 2.0 is outside 0..1"),
                         ("hands=maybe", "hands")):
        with pytest.raises(OptionError, match=message):
            parse_assignments(bad, SwapOptions, "--swap")


def test_a_config_file_that_cannot_be_read_names_the_file(tmp_path, monkeypatch):
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(OptionError, match="locked.toml: config file cannot be read") as caught:
        load_config(tmp_path / "locked.toml")
    assert caught.value.exit_code == 2 and "permission" in caught.value.fix


@pytest.mark.parametrize("schema, name, value, interval, allowed", [
    (ExtractOptions, "fps", math.nan, "[0, inf)", "a finite number, at least 0"),
    (ExtractOptions, "jpeg_quality", 500, "1..100", "a whole number from 1 to 100"),
    (ExtractOptions, "threshold", math.nan, "(0, inf)", "a finite number, above 0"),
    (ExtractOptions, "threshold", math.inf, "(0, inf)", "a finite number, above 0"),
    (ExtractOptions, "min_face", -5.0, "[0, inf)", "a finite number, at least 0"),
    (ExtractOptions, "max_yaw", math.nan, "0..90", "a number from 0 to 90"),
    (ExtractOptions, "max_pitch", 91.0, "0..90", "a number from 0 to 90"),
    (ExtractOptions, "size", 2000, "64..1024", "a whole number from 64 to 1024"),
    (SwapOptions, "sharpen", math.inf, "[0, inf)", "a finite number, at least 0"),
    (SwapOptions, "cut_threshold", 2.0, "0..1", "a number from 0 to 1"),
    (SwapOptions, "erode", 0.5, "(-0.5, 0.5)", "a number, above -0.5 and below 0.5"),
    (TrainOptions, "rotate", 400.0, "0..180", "a number from 0 to 180"),
    (TrainOptions, "lr", 0.0, "(0, 1]", "a number, above 0 and at most 1"),
    (TrainOptions, "ema", 1.0, "[0, 1)", "a number, at least 0 and below 1"),
    (TrainOptions, "seed", -1, "0..4294967295", "a whole number from 0 to 4294967295"),
    (MaskTrainOptions, "clean", math.nan, "0..1", "a number from 0 to 1"),
    (ScoreOptions, "worst", -1, "[0, inf)", "a whole number, at least 0"),
])
def test_a_number_outside_its_options_bounds_is_refused_naming_the_flag_and_range(schema, name, value, interval,
                                                                                  allowed):
    with pytest.raises(OptionError) as caught:
        schema(**{name: value})
    flag = "--" + name.replace("_", "-")
    assert caught.value.message == f"{flag} {value} is outside {interval}" and caught.value.exit_code == 2
    assert caught.value.fix == f"use {allowed} (default: {getattr(schema(), name)})"


@pytest.mark.parametrize("schema, name, value, kind", [
    (ExtractOptions, "every", 1.5, "a whole number"), (SwapOptions, "detail", "x", "a number"),
    (VideoOptions, "crf", True, "a whole number"), (TrainOptions, "resolution", "128", "a whole number"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_the_kind(schema, name, value, kind):
    with pytest.raises(OptionError, match=f"--{name.replace('_', '-')} {value!r} is not {kind}\n"):
        schema(**{name: value})


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.__name__)
def test_every_float_option_refuses_nan_and_infinity_and_every_default_is_allowed(schema):
    schema()
    floats = [f.name for f in dataclasses.fields(schema) if type(f.default) is float]
    for name in floats:
        for bad in (math.nan, math.inf, -math.inf):
            with pytest.raises(OptionError, match=f"--{name.replace('_', '-')} {bad} is outside"):
                schema(**{name: bad})


def test_the_api_and_a_jobs_file_refuse_an_option_out_of_bounds(tmp_path):
    from facewright import api
    from facewright.cluster.batch import load_jobs

    with pytest.raises(OptionError, match=re.escape("--fps nan is outside [0, inf)")):
        api.extract([tmp_path / "in.png"], "anna", workspace=tmp_path, fps=math.nan)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[[shot]]\ninput = "in.mp4"\nmodel = "m"\nsharpen = inf\n')
    with pytest.raises(OptionError, match=re.escape("shot 1: --sharpen inf is outside [0, inf)")):
        load_jobs(jobs, workspace=tmp_path)
