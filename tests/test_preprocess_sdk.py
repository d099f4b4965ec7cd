"""Built-in preprocess methods named like the SDK's stock ones give the SDK's arrays.

Oracle: the SDK's own files in ../shared/vendor_sdk/sdk/Scripts/calibrator/preprocess_method, imported
from there and run on the same real photos: same shape, same dtype, same values.

torchvision (torch is far too big for a test dependency) is stood in for by ``_torchvision_transforms``:
torchvision's documented Resize/CenterCrop/ToTensor/Normalize on real Pillow, whose resize is the
reference. scipy and scikit-image are not stood in for (the files call them): those cases run where both
are installed and skip otherwise, as the torchvision ``norm=True`` cases do without Pillow; the reason is
given.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import cv2

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from calibrator_custom import preprocess_method, utils
from calibrator_custom.preprocess_method._common import pil_bilinear_resize
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


class _PilNoneCheck:
    """A real PIL image whose ``== None`` is a numpy bool: three of the SDK's torchvision files test
    ``(image == None).any()``, which raises AttributeError on any real PIL image (``==`` gives a bool)."""

    def __init__(self, img):
        self._img = img

    def convert(self, mode):
        return _PilNoneCheck(self._img.convert(mode))

    def __eq__(self, other):
        return np.bool_(self._img == other)

    __hash__ = None

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._img, dtype=dtype)

    def __getattr__(self, attr):
        return getattr(self._img, attr)


def _pil_with_none_check(pil_image) -> types.ModuleType:
    """``PIL.Image`` whose ``open`` returns :class:`_PilNoneCheck` images (the resizing stays real Pillow's)."""
    pil_image.init()  # load the format plugins now, while ``PIL.Image`` is still the real module
    return _fake_module("PIL.Image", open=lambda path: _PilNoneCheck(pil_image.open(path)),
                        BILINEAR=pil_image.BILINEAR)


class _Tensor:
    """The part of a torch tensor the SDK's files use on a transform's result: ``.detach().numpy()``."""

    def __init__(self, chw: np.ndarray):
        self.chw = chw

    def detach(self):
        return self

    def numpy(self):
        return self.chw


def _pil_resize_h_then_v(pil_image, img, width: int, height: int):
    """Pillow's bilinear ``img.resize((width, height))`` as every Pillow up to 12 computes it: the horizontal
    pass, then the vertical one, each a one-axis Pillow resize. (Pillow 13 runs the vertical pass first when
    the height shrinks more than the width; a few pixels then differ by 1.)"""
    if img.size[0] != width:
        img = img.resize((width, img.size[1]), pil_image.BILINEAR)
    if img.size[1] != height:
        img = img.resize((width, height), pil_image.BILINEAR)
    return img


def _torchvision_transforms(pil_image) -> types.ModuleType:
    """A stand-in for ``torchvision.transforms`` with the four transforms the SDK's files compose, as torchvision
    documents them for PIL images; the resampling is real Pillow's (``pil_image`` is ``PIL.Image``).

    Resize(int): shorter side to the size, longer ``int(size * long / short)``, ``Image.resize(..., BILINEAR)``;
    CenterCrop: top/left ``int(round((n - size) / 2))``; ToTensor: CHW float32 ``x / 255``; Normalize:
    float32 ``(x - mean) / std`` per channel.
    """
    class Compose:
        def __init__(self, steps):
            self.steps = steps

        def __call__(self, x):
            for step in self.steps:
                x = step(x)
            return x

    class Resize:
        def __init__(self, size):
            assert isinstance(size, int), "only Resize(int) is used by the SDK's files"
            self.size = size

        def __call__(self, img):
            img = getattr(img, "_img", img)  # the real PIL image behind _PilNoneCheck
            w, h = img.size
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(self.size * long / short)
            new_w, new_h = (self.size, new_long) if w <= h else (new_long, self.size)
            return _pil_resize_h_then_v(pil_image, img, new_w, new_h)

    class CenterCrop:
        def __init__(self, size):
            self.size = size

        def __call__(self, img):
            w, h = img.size
            top, left = int(round((h - self.size) / 2.0)), int(round((w - self.size) / 2.0))
            return img.crop((left, top, left + self.size, top + self.size))

    class ToTensor:
        def __call__(self, img):
            return _Tensor(np.asarray(img, np.uint8).transpose(2, 0, 1).astype(np.float32) / np.float32(255))

    class Normalize:
        def __init__(self, mean, std):
            self.mean = np.asarray(mean, np.float32)[:, None, None]
            self.std = np.asarray(std, np.float32)[:, None, None]

        def __call__(self, t):
            return _Tensor((t.chw - self.mean) / self.std)

    return _fake_module("torchvision.transforms", Compose=Compose, Resize=Resize, CenterCrop=CenterCrop,
                        ToTensor=ToTensor, Normalize=Normalize)


def stub_missing_libraries(monkeypatch, norm: bool) -> str | None:
    """Stand in for libraries the SDK's files import that are not installed: torchvision by
    :func:`_torchvision_transforms` on real Pillow (for ``norm=False`` the files import torchvision without
    using it, so an empty module does); PIL, when absent, by an OpenCV decode for the files that only
    ``open(path).convert('RGB')``. Returns why a torchvision ``norm=True`` case cannot run (no Pillow), else None.
    scipy and scikit-image are never stood in for: the files call them."""
    try:
        pil_image = importlib.import_module("PIL.Image")
    except ImportError:
        pil_image = None
        fake = _fake_module("PIL.Image", open=_CvImage.open)
        monkeypatch.setitem(sys.modules, "PIL", _fake_module("PIL", Image=fake))
        monkeypatch.setitem(sys.modules, "PIL.Image", fake)
    try:
        importlib.import_module("torchvision")
        return None  # the real library is installed: use it
    except ImportError:
        pass
    if norm and pil_image is None:
        transforms = _fake_module("torchvision.transforms")
        reason = "Pillow (its resize is the reference for torchvision's Resize)"
    elif pil_image is None:
        transforms, reason = _fake_module("torchvision.transforms"), None
    else:
        transforms, reason = _torchvision_transforms(pil_image), None
        fake = _pil_with_none_check(pil_image)
        monkeypatch.setitem(sys.modules, "PIL", _fake_module("PIL", Image=fake))
        monkeypatch.setitem(sys.modules, "PIL.Image", fake)
    monkeypatch.setitem(sys.modules, "torchvision", _fake_module("torchvision", transforms=transforms))
    monkeypatch.setitem(sys.modules, "torchvision.transforms", transforms)
    return reason


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


def sdk_array(module, name: str, photo: Path, norm: bool, missing: str | None = None) -> np.ndarray:
    try:
        return module.image_preprocess(str(photo), norm=norm)
    except (ImportError, AttributeError) as e:
        if isinstance(e, AttributeError) and not missing:
            raise
        pytest.skip(f"the SDK's {name}.py needs {missing or e.name} for norm={norm}, not installed here")


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
    missing = stub_missing_libraries(monkeypatch, norm)
    ours = utils.image_preprocess_func(name)
    assert ours.__module__ == f"calibrator_custom.preprocess_method.{name}"
    module = load_sdk(name)
    for photo in PHOTOS:
        want = sdk_array(module, name, IMAGES_DIR / photo, norm, missing)
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


@settings(max_examples=80, deadline=None)
@given(h=st.integers(1, 60), w=st.integers(1, 60), out_h=st.integers(1, 60), out_w=st.integers(1, 60),
       seed=st.integers(0, 2**31 - 1))
def test_pil_bilinear_resize_matches_pillow(h, w, out_h, out_w, seed):
    """Our Pillow-free resize against Pillow's own bilinear resizes, shrinking and enlarging: one-axis resizes
    and both axes (horizontal pass first, as Pillow up to 12 always and Pillow 13 mostly does)."""
    pil_image = pytest.importorskip("PIL.Image", reason="Pillow is the reference; not installed here")
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    for oh, ow in ((out_h, w), (h, out_w), (out_h, out_w)):
        want = np.asarray(_pil_resize_h_then_v(pil_image, pil_image.fromarray(img), ow, oh))
        got = pil_bilinear_resize(img, oh, ow)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    if out_h >= h and out_w >= w:  # enlarging: every Pillow runs the horizontal pass first in one call
        want = np.asarray(pil_image.fromarray(img).resize((out_w, out_h), pil_image.BILINEAR))
        np.testing.assert_array_equal(pil_bilinear_resize(img, out_h, out_w), want)
