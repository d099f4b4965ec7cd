"""The bundled example, installed with the package: a real float model, its input_config.ini, three photos.

    >>> from calibrator_custom import examples
    >>> examples.model_path()          # .../calibrator_custom/examples/data/face_detection_short_range.tflite
    >>> examples.input_config_path()   # its input_config.ini
    >>> examples.photo_paths()         # the three photos, sorted
    >>> examples.PREPROCESS            # the built-in preprocess method that matches the model

``python -m calibrator_custom.examples DIR`` copies the model and input_config.ini into ``DIR`` and
the photos into ``DIR/images/`` (what docs/user_guide.md starts from). The model is MediaPipe's
BlazeFace short-range face detector (Apache-2.0); the photos come from COCO 2017 under their
authors' Creative Commons licences (``data/LICENSES.md``, the NOTICE file).
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
from importlib import resources
from pathlib import Path

MODEL_NAME = "face_detection_short_range.tflite"
INPUT_CONFIG_NAME = "input_config.ini"
#: built-in preprocess method of the model (``utils.image_preprocess_func``)
PREPROCESS = "face_detection_short_range"
PHOTO_SUFFIXES = (".jpg",)

_files = contextlib.ExitStack()
atexit.register(_files.close)


@functools.lru_cache(maxsize=None)
def data_dir() -> Path:
    """The folder of the bundled files, as a real path (extracted once if the package is zipped)."""
    ref = resources.files(__name__) / "data"
    return ref if isinstance(ref, Path) else _files.enter_context(resources.as_file(ref))


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"bundled example file {path} is missing: the calibrator_custom installation is "
                                "incomplete; reinstall the package")
    return path


def model_path() -> Path:
    """The float model, ``face_detection_short_range.tflite`` ([1,128,128,3] RGB in, 2 outputs)."""
    return _existing(data_dir() / MODEL_NAME)


def input_config_path() -> Path:
    """The model's ``input_config.ini`` (RGB, mean 127.5, std 127.5, dequantized outputs)."""
    return _existing(data_dir() / INPUT_CONFIG_NAME)


def photo_paths() -> list[Path]:
    """The bundled photos, sorted by name."""
    photos = sorted(p for p in data_dir().iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise FileNotFoundError(f"no bundled photos in {data_dir()}: the calibrator_custom installation is "
                                "incomplete; reinstall the package")
    return photos


def copy_to(folder: str | Path) -> list[Path]:
    """Copy the model and input_config.ini into ``folder`` and the photos into ``folder/images``; the new paths.

    Existing files of the same names are overwritten; nothing else in ``folder`` is touched.
    """
    folder = Path(folder)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    written = [Path(shutil.copyfile(src, folder / src.name)) for src in (model_path(), input_config_path())]
    written += [Path(shutil.copyfile(src, images / src.name)) for src in photo_paths()]
    return written
