"""data.outputs: every output path refused before any work when it cannot be written or is an input."""
import os

import pytest

from data.io import UserError
from data.outputs import check_output_file, check_output_folder, refuse_inputs


def test_output_file_refused_when_a_folder_or_under_a_file(tmp_path):
    """A file output that is a folder, or whose parent is a file, is one line before any work."""
    (tmp_path / "plain").write_text("x")
    with pytest.raises(UserError, match="is a folder; give a file name"):
        check_output_file(tmp_path, "--out_json")
    with pytest.raises(UserError, match="a file stands where its folder should be"):
        check_output_file(tmp_path / "plain" / "deeper" / "r.json", "--out_json")
    assert check_output_file(tmp_path / "new" / "r.json", "--out_json") == tmp_path / "new" / "r.json"


def test_output_folder_refused_when_a_file(tmp_path):
    """A folder output that is a file, or lies under one, is one line."""
    (tmp_path / "plain").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "plain", "--out_dir")
    with pytest.raises(UserError, match="a file stands where its folder should be"):
        check_output_folder(tmp_path / "plain" / "sub", "--out_dir")
    check_output_folder(tmp_path / "new" / "sub", "--out_dir")


def test_an_output_that_is_an_input_is_refused_under_any_name(tmp_path):
    """An output naming an input file (directly, through a link, or in an input folder) is refused."""
    image = tmp_path / "a.png"
    image.write_bytes(b"png")
    os.symlink(image, tmp_path / "link.png")
    for output, inputs in ((image, [image]), (tmp_path / "link.png", [image]), (image, [tmp_path])):
        with pytest.raises(UserError, match="would overwrite the input"):
            refuse_inputs([output], inputs, "--out_dir")
    refuse_inputs([tmp_path / "b.png"], [image, tmp_path], "--out_dir")
    assert image.read_bytes() == b"png"
