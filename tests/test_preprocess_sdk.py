"""Built-in preprocess methods named like the SDK's stock ones give the SDK's arrays.

Oracle: the SDK's own files in ../shared/vendor_sdk/sdk/Scripts/calibrator/preprocess_method, imported
from there and run on the same real photos: same shape, same dtype, same values. A file that needs a
library this environment lacks (scipy, scikit-image, PIL, torchvision) or that fails here skips with the
reason.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import cv2

import numpy as np
import pytest

from calibrator_custom import preprocess_method, utils
from conftest import IMAGES_DIR, SHARED

SDK_DIR = SHARED / "vendor_sdk" / "sdk" / "Scripts" / "calibrator" / "preprocess_method"
#: a portrait, a landscape and a wide photo of the shared set (h x w: 500x375, 427x640, 480x640)
PHOTOS = ("000000006409.jpg", "000000014773.jpg", "000000024038.jpg")


def sdk_names() -> list[str]:
    if not SDK_DIR.is_dir():
        return []
    return sorted(p.stem for p in SDK_DIR.glob("*.py") if p.stem != "__init__")


class _NumpyWithNewshape:
    """numpy, plus the np.reshape(newshape=...) keyword numpy 2.1 removed (the SDK's deeplab_v3 uses it)."""

    def __getattr__(self, attr):
        return getattr(np, attr)

    @staticmethod
    def reshape(a, newshape=None, **kw):
        return np.reshape(a, newshape if newshape is not None else kw.pop("shape"), **kw)


def _fake_module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


class _CvImage:
    """Stands in for PIL.Image in the SDK's files that only open(path).convert('RGB'): decoded with OpenCV."""

    def __init__(self, path):
        self.path = str(path)

    @classmethod
    def open(cls, path):
        return cls(path)

    def convert(self, mode):
        assert mode == "RGB"
        return cv2.cvtColor(cv2.imread(self.path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    def __array__(self, dtype=None, copy=None):
        return self.convert("RGB")


def stub_missing_libraries(monkeypatch, norm: bool) -> None:
    """Libraries the SDK's files import but do not use on the checked path (torchvision for norm=False,
    PIL where only its RGB decode is used) are replaced by stand-ins; scipy/scikit-image are not."""
    for lib in ("torchvision", "PIL"):
        try:
            importlib.import_module(lib)
            return  # the real library is installed: use it
        except ImportError:
            pass
    if not norm:
        transforms = _fake_module("torchvision.transforms")
        monkeypatch.setitem(sys.modules, "torchvision", _fake_module("torchvision", transforms=transforms))
        monkeypatch.setitem(sys.modules, "torchvision.transforms", transforms)
    pil_image = _fake_module("PIL.Image", open=_CvImage.open)
    monkeypatch.setitem(sys.modules, "PIL", _fake_module("PIL", Image=pil_image))
    monkeypatch.setitem(sys.modules, "PIL.Image", pil_image)


def load_sdk(name: str):
    path = SDK_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_sdk_preprocess_{name}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        pytest.skip(f"the SDK's {name}.py needs {e.name}, not installed here; our method is unchecked")
    if name == "deeplab_v3":
        module.np = _NumpyWithNewshape()
    return module


def sdk_array(module, name: str, photo: Path, norm: bool) -> np.ndarray:
    try:
        return module.image_preprocess(str(photo), norm=norm)
    except ImportError as e:
        pytest.skip(f"the SDK's {name}.py needs {e.name} for norm={norm}, not installed here")


def test_every_sdk_name_is_built_in():
    if not SDK_DIR.is_dir():
        pytest.skip(f"the SDK's preprocess_method folder is not at {SDK_DIR}")
    assert sorted(preprocess_method.SDK_METHODS) == sdk_names()
    assert set(preprocess_method.SDK_METHODS) <= set(preprocess_method.__all__)


@pytest.mark.parametrize("norm", [True, False], ids=["norm", "raw"])
@pytest.mark.parametrize("name", sdk_names() or ["<no SDK>"])
def test_builtin_gives_the_sdk_array(name, norm, monkeypatch):
    if not SDK_DIR.is_dir():
        pytest.skip(f"the SDK's preprocess_method folder is not at {SDK_DIR}")
    if not IMAGES_DIR.is_dir():
        pytest.skip(f"shared photos not found at {IMAGES_DIR}")
    monkeypatch.delenv("SGS_IPU_DIR", raising=False)
    stub_missing_libraries(monkeypatch, norm)
    ours = utils.image_preprocess_func(name)
    assert ours.__module__ == f"calibrator_custom.preprocess_method.{name}"
    module = load_sdk(name)
    for photo in PHOTOS:
        want = sdk_array(module, name, IMAGES_DIR / photo, norm)
        got = ours(str(IMAGES_DIR / photo), norm=norm)
        assert got.shape == want.shape, photo
        assert got.dtype == want.dtype, photo
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=0, atol=0, err_msg=photo)
        else:
            np.testing.assert_array_equal(got, want, err_msg=photo)


def test_vendor_mapping_lists_every_sdk_method():
    from conftest import ROOT

    text = (ROOT / "docs" / "vendor_mapping.md").read_text()
    missing = [n for n in preprocess_method.SDK_METHODS if f"| `{n}` |" not in text]
    assert not missing, f"docs/vendor_mapping.md has no row for {missing}"
