"""data.outputs: every output path refused before any work when it cannot be written or is an input."""
import os

import pytest

from data.io import UserError
from data.outputs import (check_distinct_outputs, check_names_fit, check_output_file, check_output_folder,
                          refuse_inputs)


def test_item_10_output_file_refused_when_a_folder_or_under_a_file(tmp_path):
    """Item 10: a file output that is a folder, or whose parent is a file, is one line before any work."""
    (tmp_path / "plain").write_text("x")
    with pytest.raises(UserError, match="is a folder; give a file name"):
        check_output_file(tmp_path, "--out_json")
    with pytest.raises(UserError, match="a file stands where its folder should be"):
        check_output_file(tmp_path / "plain" / "deeper" / "r.json", "--out_json")
    assert check_output_file(tmp_path / "new" / "r.json", "--out_json") == tmp_path / "new" / "r.json"


def test_item_10_output_folder_refused_when_a_file(tmp_path):
    """Item 10: a folder output that is a file, or lies under one, is one line."""
    (tmp_path / "plain").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "plain", "--out_dir")
    with pytest.raises(UserError, match="a file stands where its folder should be"):
        check_output_folder(tmp_path / "plain" / "sub", "--out_dir")
    check_output_folder(tmp_path / "new" / "sub", "--out_dir")


def test_item_01_an_output_that_is_an_input_is_refused_under_any_name(tmp_path):
    """Item 1: an output naming an input file (directly, through a link, or in an input folder) is refused."""
    image = tmp_path / "a.png"
    image.write_bytes(b"png")
    os.symlink(image, tmp_path / "link.png")
    for output, inputs in ((image, [image]), (tmp_path / "link.png", [image]), (image, [tmp_path])):
        with pytest.raises(UserError, match="would overwrite the input"):
            refuse_inputs([output], inputs, "--out_dir")
    refuse_inputs([tmp_path / "b.png"], [image, tmp_path], "--out_dir")
    assert image.read_bytes() == b"png"


def test_two_outputs_naming_one_file_are_refused_under_any_name(tmp_path):
    (tmp_path / "a.png").write_text("")
    os.symlink(tmp_path / "a.png", tmp_path / "link.png")
    for first, second in ((tmp_path / "x.png", tmp_path / "sub" / ".." / "x.png"),
                          (tmp_path / "a.png", tmp_path / "link.png")):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(UserError, match="--out and --save_npy name the same file"):
            check_distinct_outputs({"--out": first, "--save_npy": second})
    check_distinct_outputs({"--out": tmp_path / "x.png", "--save_npy": tmp_path / "x.npy", "--html": None})


def test_an_output_folder_that_is_or_lies_in_an_input_folder_is_refused(tmp_path):
    data = tmp_path / "data"
    (data / "val").mkdir(parents=True)
    for folder in (data, data / "val", data / "val" / "figures"):
        with pytest.raises(UserError, match="input folder"):
            check_output_folder(folder, "--out_dir", inputs=[data])
    check_output_folder(tmp_path / "figures", "--out_dir", inputs=[data, tmp_path / "missing"])
    (data / "val" / "0_1480.png").write_bytes(b"png")
    with pytest.raises(UserError, match="holds the input"):
        check_output_folder(data / "val", "--out_dir", inputs=[data / "val" / "0_1480.png"])
    check_output_folder(data / "val" / "figures", "--out_dir", inputs=[data / "val" / "0_1480.png"])


@pytest.mark.parametrize("where", ["/proc/robust_out", "/sys/robust_out/deeper"])
def test_a_place_where_nothing_can_be_written_is_refused_before_any_work(where):
    with pytest.raises(UserError, match="cannot write in"):
        check_output_folder(where, "--out_dir")
    with pytest.raises(UserError, match="cannot write in"):
        check_output_file(f"{where}/page.html", "--html")


def test_a_name_longer_than_a_file_system_takes_is_refused_and_a_folder_name_is_no_file(tmp_path):
    with pytest.raises(UserError, match="is 256 bytes long"):
        check_output_file(tmp_path / ("a" * 256), "--out")
    with pytest.raises(UserError, match="is 300 bytes long"):
        check_names_fit([tmp_path / ("b" * 300) / "x.png"], "--out_dir")
    check_names_fit([tmp_path / ("c" * 255)], "--out")
    with pytest.raises(UserError, match="is a folder; give a file name"):
        check_output_file(f"{tmp_path}/new/", "--out")
