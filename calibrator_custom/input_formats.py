"""Images in a model's training format -> the layout its ``input_formats`` names (the vendor's
``utils.convert_to_input_formats``, re-exported there): alignment padding, BGRA/RGBA alpha, NV12.

Used by the fixed-model engine (feeds, the YUV_NV12 input kernel) and by the vendor-facing ``utils``.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError
from .rounding import round_half_up

#: RGB -> YUV rows (integer ratios /1024) of the chip's NV12 path; U and V are offset by 128
RGB2YUV_1024 = np.array([[218.0, 732.0, 74.0],
                         [-117.0, -395.0, 512.0],
                         [512.0, -465.0, -47.0]]) / 1024.0


def _align_up(x: int, align: int) -> int:
    """Smallest multiple of ``align`` that is >= x."""
    return -(-x // align) * align


def _pad_to_even(plane: np.ndarray) -> np.ndarray:
    """Append a copy of the last row / column when the height / width is odd (edge replication)."""
    if plane.shape[0] % 2:
        plane = np.concatenate([plane, plane[-1:, :]], axis=0)
    if plane.shape[1] % 2:
        plane = np.concatenate([plane, plane[:, -1:]], axis=1)
    return plane


def rgb_to_nv12(rgb: np.ndarray) -> np.ndarray:
    """NV12 plane (H'+H'/2, W', 1) of an HxWx3 RGB image: Y over interleaved U,V; H', W' = H, W rounded up to even.

    Y = [218, 732, 74]/1024 . rgb, U = [-117, -395, 512]/1024 . rgb + 128, V = [512, -465, -47]/1024 . rgb + 128;
    odd sizes are padded by replicating the last row/column; U and V are means of 2x2 blocks, summed
    rows first as ((a00 + a10) + (a01 + a11)) / 4; then floor(x + 0.5) and clip to 0..255.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    y, u, v = (_pad_to_even(np.dot(rgb, RGB2YUV_1024[k]) + (128.0 if k else 0.0)) for k in range(3))

    def quarter(p: np.ndarray) -> np.ndarray:
        rows = p[0::2, :] + p[1::2, :]
        return (rows[:, 0::2] + rows[:, 1::2]) / 4

    uv = np.empty((y.shape[0] // 2, y.shape[1]))
    uv[:, 0::2], uv[:, 1::2] = quarter(u), quarter(v)
    return np.clip(round_half_up(np.vstack([y, uv])), 0, 255)[..., None]


def _hwc(img: np.ndarray, layout: str) -> np.ndarray:
    return np.transpose(img, (1, 2, 0)) if layout == "NCHW" else img


def _paste(dst_shape, src: np.ndarray, name: str, what: str, axes: str = "hw") -> np.ndarray:
    """Zeros of ``dst_shape`` (float64) with ``src`` copied into the top-left corner."""
    out = np.zeros(tuple(int(d) for d in dst_shape))
    if src.ndim != out.ndim or any(s > d for s, d in zip(src.shape, out.shape)):
        raise InputError(f"input {name!r}: the {what} has shape {list(src.shape)}, which does not fit the "
                         f"model input shape {list(out.shape)}; resize in your preprocess function")
    out[tuple(slice(0, s) for s in src.shape)] = src
    return out


def _nv12(image: np.ndarray, d: dict, name: str) -> np.ndarray:
    training, layout = d["training_input_formats"], d.get("layouts", "NHWC")
    planes = []
    for item in image:
        hwc = _hwc(item, layout)
        if training == "GRAY":
            h = _align_up(hwc.shape[0], int(d.get("input_height_alignment", 2)))
            w = _align_up(hwc.shape[1], int(d.get("input_width_alignment", 2)))
            aligned = np.zeros((h, w, 1))
            aligned[:hwc.shape[0], :hwc.shape[1], :] = hwc[..., :1]
            flat = np.zeros(int(np.prod(d["shape"][1:], dtype=np.int64)))
            if aligned.size > flat.size:
                raise InputError(f"input {name!r}: the aligned GRAY image {list(aligned.shape)} is larger than "
                                 f"the model input {list(d['shape'])}")
            flat[:aligned.size] = aligned.ravel()
            planes.append(flat.reshape(d["shape"][1:]))
            continue
        if training not in ("RGB", "BGR") or hwc.shape[-1] != 3:
            raise InputError(f"input {name!r}: YUV_NV12 converts RGB, BGR or GRAY images; got training format "
                             f"{training!r} and an image of shape {list(item.shape)}")
        planes.append(rgb_to_nv12(hwc[..., ::-1] if training == "BGR" else hwc))
    if training == "GRAY":
        return np.stack(planes).astype(d["dtype"])
    out = np.zeros(d["shape"])
    for k, plane in enumerate(planes):
        out[k] = _paste(out.shape[1:], plane, name, "NV12 plane")
    return out.astype(d["dtype"])


def _with_alpha(image: np.ndarray, training: str, target: str, name: str) -> np.ndarray:
    if training == target:
        return image
    if training not in ("RGB", "BGR"):
        raise InputError(f"input {name!r}: {target} input needs training format RGB or BGR, got {training!r}")
    rgb = image[..., ::-1] if training == "BGR" else image
    colour = rgb if target == "RGBA" else rgb[..., ::-1]
    alpha = np.full(image.shape[:-1] + (1,), 255, dtype=image.dtype)
    return np.concatenate([colour, alpha], axis=-1)


def convert_to_input_formats(image: np.ndarray, input_details: dict) -> np.ndarray:
    """Turn a ``norm=False`` preprocess output into the data a fixed/offline model input takes.

    Follows the vendor for BGR, RGB, GRAY, RGBA, BGRA, YUV_NV12 (see :func:`rgb_to_nv12`) and
    RAWDATA_S16_NHWC (int16 = trunc(clip(x / scale, -32767, 32767)) in float32); RAWDATA_F32_NHWC (float32,
    zero-padded on the last axis) is our addition. Details without format keys (float models) return
    ``image`` unchanged. Mismatched dtype, rank, format or size raise InputError.
    """
    if "training_input_formats" not in input_details or "input_formats" not in input_details:
        return image
    d = {**input_details, "shape": tuple(int(s) for s in input_details["shape"])}
    name, fmt, training = d.get("name", "?"), d["input_formats"], d["training_input_formats"]
    if not isinstance(image, np.ndarray):
        raise InputError(f"input {name!r}: expected a numpy.ndarray, got {type(image).__name__}")
    dtype = np.dtype(d["dtype"])
    if fmt != "RAWDATA_S16_NHWC" and image.dtype != dtype:
        raise InputError(f"Got tensor of type {image.dtype} but expected type {dtype} for input: {name} "
                         "(use norm=False for fixed and offline models)")
    if image.ndim != len(d["shape"]):
        raise InputError(f"Dimension length mismatch. Got {image.ndim} but expected {len(d['shape'])} for "
                         f"input: {name}")
    if fmt == "YUV_NV12":
        return _nv12(image, d, name)
    if fmt == "GRAY":
        if training not in ("RGB", "GRAY"):
            raise InputError(f"input {name!r}: GRAY input_formats only support RGB/GRAY for training_input_formats!")
        return _paste(d["shape"], image, name, "GRAY image").astype(dtype)
    if fmt in ("RGBA", "BGRA"):
        channels = 4 if training == fmt else 3
        if image.shape[-1] != channels:
            raise InputError(f"input {name!r}: {fmt} from training format {training} needs {channels}-channel "
                             f"NHWC images, got shape {list(image.shape)}")
        return _paste(d["shape"], _with_alpha(image, training, fmt, name), name, f"{fmt} image").astype(dtype)
    if fmt in ("RAWDATA_S16_NHWC", "RAWDATA_F32_NHWC"):
        if training != fmt:
            raise InputError(f"input {name!r}: {fmt} input_formats only support {fmt} for training_input_formats!")
        if image.dtype != np.float32:
            raise InputError(f"input {name!r}: {fmt} input_formats need float32 datatype for convert! "
                             f"(got {image.dtype})")
        data = image
        if fmt == "RAWDATA_S16_NHWC":
            # float32 division, as the vendor's numpy does for a float32 array and a scalar scale
            data = np.clip(image / np.float32(d["quantization"][0]), -32767, 32767).astype(dtype)
        if image.shape[:-1] != d["shape"][:-1] or image.shape[-1] > d["shape"][-1]:
            raise InputError(f"input {name!r}: shape {list(image.shape)} does not fit {list(d['shape'])} "
                             "(only the last axis may be shorter)")
        out = np.zeros(d["shape"], dtype=dtype)
        out[..., :image.shape[-1]] = data
        return out
    if fmt in ("BGR", "RGB"):
        if training != fmt:
            raise InputError(f"input {name!r}: {fmt} input_formats only support {fmt} for training_input_formats!")
        return image
    raise InputError(f"input {name!r}: Not support this input_formats: {fmt}")
