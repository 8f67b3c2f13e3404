import argparse

import pytest

from facewright.config import VideoOptions, add_options, build, load_config, to_dict
from facewright.errors import OptionError


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
    assert to_dict(VideoOptions()) == {"codec": "libx264", "crf": 18, "preset": "medium"}


def test_key_value_lists_take_the_fields_types_and_are_checked():
    from facewright.config import SwapOptions, TrainOptions, parse_assignments

    assert parse_assignments("lr=1e-3, ema=0,flip=yes,model=dfl-h", TrainOptions, "--train") == {
        "lr": 1e-3, "ema": 0.0, "flip": True, "model": "dfl-h"}
    assert parse_assignments("", SwapOptions, "--swap") == {}
    for bad, message in (("detail", "not KEY=VALUE"), ("detial=1", "did you mean --detail"),
                         ("batch=two", "not a whole number"), ("detail=2", "--detail, --detail-features"),
                         ("hands=maybe", "hands")):
        with pytest.raises(OptionError, match=message):
            parse_assignments(bad, SwapOptions, "--swap")
