"""Image files: damaged JPEGs are decoded with a warning naming the file; unreadable paths are clear errors."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from calibrator_custom.errors import InputError
from calibrator_custom.preprocess_method._common import read_image
from calibrator_custom.utils import ImageNotFoundError
from conftest import IMAGES_DIR

PHOTO = IMAGES_DIR / "000000006409.jpg"


@pytest.fixture()
def photo() -> bytes:
    if not PHOTO.is_file():
        pytest.skip(f"shared COCO photo not found at {PHOTO}")
    return PHOTO.read_bytes()


def _damaged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "damaged JPEG" in r.getMessage()]


def _libjpeg_lines(err: str) -> list[str]:
    """Lines libjpeg itself prints (a logging handler on stderr may repeat our warning; that is fine)."""
    return [line for line in err.splitlines() if line.startswith(("Corrupt JPEG", "Premature end of JPEG"))]


def test_an_intact_photo_gives_no_warning(photo, tmp_path, caplog, capfd):
    path = tmp_path / "ok.jpg"
    path.write_bytes(photo)
    with caplog.at_level(logging.WARNING):
        img = read_image(path)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert _damaged(caplog) == [] and not _libjpeg_lines(capfd.readouterr().err)


@pytest.mark.parametrize("cut", [2, 200, 2000, 60000])
def test_a_truncated_jpeg_warns_or_fails_naming_the_file(photo, tmp_path, caplog, capfd, cut):
    path = tmp_path / "truncated.jpg"
    path.write_bytes(photo[:len(photo) - cut])
    with caplog.at_level(logging.WARNING):
        try:
            img = read_image(path)
        except InputError as e:  # OpenCV gives up on some truncated files: then a clear error
            assert str(e).startswith(f"cannot read image {path}: a damaged JPEG") and "truncated" in str(e)
        else:
            assert img.dtype == np.uint8 and img.ndim == 3
            msgs = _damaged(caplog)
            assert len(msgs) == 1 and str(path) in msgs[0] and "truncated" in msgs[0], msgs
    assert not _libjpeg_lines(capfd.readouterr().err)  # libjpeg's own print is captured, not leaked


def test_byte_corrupted_compressed_data_warns_naming_the_file(photo, tmp_path, caplog, capfd):
    data = bytearray(photo)
    rng = np.random.default_rng(0)
    for p in rng.integers(len(data) // 4, len(data) - 10, 20):
        data[p] = int(rng.integers(0, 256))
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        img = read_image(path)
    assert img.shape == read_image(PHOTO).shape  # decoded anyway, same size
    msgs = _damaged(caplog)
    assert len(msgs) == 1 and str(path) in msgs[0] and "libjpeg: Corrupt JPEG data" in msgs[0], msgs
    assert not _libjpeg_lines(capfd.readouterr().err)


def test_a_missing_image_names_the_path(tmp_path):
    with pytest.raises(ImageNotFoundError, match=f"No such image: {tmp_path / 'nope.jpg'}"):
        read_image(tmp_path / "nope.jpg")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_image_names_the_path(photo, tmp_path):
    path = tmp_path / "locked.jpg"
    path.write_bytes(photo)
    path.chmod(0)
    with pytest.raises(InputError, match=f"cannot read image {path}: Permission denied"):
        read_image(path)


def test_a_file_that_is_not_an_image_names_the_path(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture")
    with pytest.raises(InputError, match=f"cannot read image {path}: not an image format"):
        read_image(path)
