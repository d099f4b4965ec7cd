"""calibrator_custom.cli.inputs: the -i / -n forms of the command-line tools, and their one-line errors."""
from __future__ import annotations

import os

import numpy as np
import pytest

from calibrator_custom.cli._common import UserError
from calibrator_custom.cli.inputs import require_file, resolve_images, resolve_preprocess
from calibrator_custom.errors import InputError
from clitools import write_image, write_preprocess


@pytest.fixture
def pics(tmp_path):
    """a/1.png, a/sub/2.png, a/notes.txt (ignored), b/3.png, b/4.png, single.jpg."""
    write_image(tmp_path / "a" / "1.png", 10)
    write_image(tmp_path / "a" / "sub" / "2.png", 20)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    write_image(tmp_path / "b" / "3.png", 30)
    write_image(tmp_path / "b" / "4.png", 40)
    write_image(tmp_path / "single.jpg", 50)
    return tmp_path


def _abs(root, *names):
    return [os.path.abspath(root / n) for n in names]


def test_single_image(pics):
    assert resolve_images(str(pics / "single.jpg"), 1) == [_abs(pics, "single.jpg")]


def test_folder_is_recursive_sorted_and_keeps_images_only(pics):
    got = resolve_images(str(pics / "a"), 1)
    assert got == [[p] for p in _abs(pics, "a/1.png", "a/sub/2.png")]


def test_list_file_one_per_line_relative_to_the_list(pics):
    (pics / "list.txt").write_text("b/4.png\n\n# a comment\nsingle.jpg\n")
    got = resolve_images(str(pics / "list.txt"), 1)
    assert got == [[str(pics / "b/4.png")], [str(pics / "single.jpg")]]


def test_list_file_with_folder_prefix(pics):
    (pics / "names.lst").write_text("3.png,4.png\n4.png,3.png\n")
    got = resolve_images(f"{pics / 'b'}:{pics / 'names.lst'}", 2)
    b = pics / "b"
    assert got == [[os.path.join(b, "3.png"), os.path.join(b, "4.png")],
                   [os.path.join(b, "4.png"), os.path.join(b, "3.png")]]


def test_multi_input_comma_list_pairs_images_by_position(pics):
    got = resolve_images(f"{pics / 'a'},{pics / 'b'}", 2)
    assert got == [_abs(pics, "a/1.png", "b/3.png"), _abs(pics, "a/sub/2.png", "b/4.png")]
    got = resolve_images(f"{pics / 'single.jpg'}, {pics / 'b' / '3.png'}", 2)
    assert got == [_abs(pics, "single.jpg", "b/3.png")]


def test_multi_input_list_file(pics):
    (pics / "pairs.txt").write_text("a/1.png,b/3.png\na/sub/2.png, b/4.png\n")
    got = resolve_images(str(pics / "pairs.txt"), 2)
    assert got == [[str(pics / "a/1.png"), str(pics / "b/3.png")], [str(pics / "a/sub/2.png"), str(pics / "b/4.png")]]


@pytest.mark.parametrize("arg, num_inputs, fragment", [
    ("missing.jpg", 1, r"-i '.*missing\.jpg': no such image or folder"),
    ("a,b", 1, r"names 2 input\(s\) but the model has 1"),
    ("a", 2, r"names 1 input\(s\) but the model has 2"),
    ("a,single.jpg", 2, r"different numbers of images .*a': 2.*single\.jpg': 1"),
    ("a,a/notes.txt", 2, r"notes\.txt' is not an image .*one list file"),
    ("", 1, r"-i is empty"),
])
def test_image_errors_name_the_argument(pics, arg, num_inputs, fragment):
    full = ",".join(str(pics / p) if p else "" for p in arg.split(",")) if arg else ""
    with pytest.raises(UserError, match=fragment):
        resolve_images(full, num_inputs)


def test_list_errors_name_file_and_line(pics):
    (pics / "bad.txt").write_text("a/1.png\nb/nope.png\n")
    with pytest.raises(InputError, match=r"bad\.txt, line 2: image .*nope\.png' does not exist"):
        resolve_images(str(pics / "bad.txt"), 1)
    (pics / "one.txt").write_text("a/1.png\n")
    with pytest.raises(UserError, match=r"1 image\(s\) per sample, but the model has 2 input\(s\)"):
        resolve_images(str(pics / "one.txt"), 2)
    with pytest.raises(InputError, match=r"image list .*nolist\.txt' does not exist"):
        resolve_images(f"{pics}:{pics / 'nolist.txt'}", 1)


def test_empty_folder(pics):
    (pics / "empty").mkdir()
    with pytest.raises(InputError, match="No images found"):
        resolve_images(str(pics / "empty"), 1)


def test_preprocess_builtin_and_file(tmp_path):
    pre = write_preprocess(tmp_path / "mine.py")
    write_image(tmp_path / "x.png", 255)
    funcs = resolve_preprocess(f"face_detection_short_range, {pre}", 2)
    assert len(funcs) == 2 and all(callable(f) for f in funcs)
    a, b = funcs[0](str(tmp_path / "x.png")), funcs[1](str(tmp_path / "x.png"))
    assert a.shape == (1, 128, 128, 3) and a.dtype == np.float32
    assert b.shape == (1, 8, 8, 3) and b.dtype == np.float32
    np.testing.assert_array_equal(b, np.ones((1, 8, 8, 3), np.float32))  # (255 - 127.5) / 127.5


@pytest.mark.parametrize("arg, fragment", [
    ("face_detection_short_range", r"-n 'face_detection_short_range' names 1 preprocess method\(s\) but the model "
                                   r"has 2 input\(s\)"),
    ("a,b,c", r"names 3 preprocess"),
    ("", r"names 0 preprocess"),
])
def test_preprocess_count(arg, fragment):
    with pytest.raises(UserError, match=fragment):
        resolve_preprocess(arg, 2)


def test_preprocess_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"^-n: unknown preprocess method 'face_detection_shortrange'; did you mean "
                                        r"'face_detection_short_range'"):
        resolve_preprocess("face_detection_shortrange", 1)
    with pytest.raises(UserError, match=r"^-n: preprocess file .*nope\.py' does not exist"):
        resolve_preprocess(f"face_detection_short_range,{tmp_path / 'nope.py'}", 2)
    (tmp_path / "broken.py").write_text("def image_preprocess(:\n")
    with pytest.raises(UserError, match=r"^-n: preprocess file .*broken\.py' failed to import: SyntaxError"):
        resolve_preprocess(str(tmp_path / "broken.py"), 1)


def test_require_file(tmp_path):
    (tmp_path / "m.sim").write_bytes(b"x")
    assert require_file(str(tmp_path / "m.sim"), "float model", "-m") == str(tmp_path / "m.sim")
    with pytest.raises(UserError, match=r"^-m '.*gone\.sim': float model does not exist$"):
        require_file(str(tmp_path / "gone.sim"), "float model", "-m")
    with pytest.raises(UserError, match=r"^--input_config '.*' is a folder; give the input_config\.ini file$"):
        require_file(str(tmp_path), "input_config.ini", "--input_config")
    with pytest.raises(UserError, match="does not exist"):
        require_file("", "float model", "-m")
