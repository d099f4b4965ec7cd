"""``calibrator_custom.utils``: the vendor's helper functions for preprocessing, image lists and model names.

    >>> pre = utils.image_preprocess_func("mobilenet_v2")          # or "path/to/my_preprocess.py"
    >>> images = utils.all_path("calib_images/")                    # or utils.read_image_list("list.txt")
    >>> for item in utils.image_generator(images, [pre], norm=True):
    ...     calibrator.forward(*item)                               # item == [[array_input0, ...]]

Same names, arguments and behaviour as SigmaStar's ``calibrator_custom.utils`` except: no environment
variable is needed (``$SGS_IPU_DIR/Scripts/calibrator/preprocess_method`` is searched first when set),
built-in preprocess methods live in :mod:`calibrator_custom.preprocess_method`,
``read_image_list`` is new (the vendor's tools parse list files inline), ``convert_to_input_formats``
also accepts RAWDATA_F32_NHWC, ``get_out_model_name`` names ``x.tflite``'s output ``x_fixed.sim`` (the SDK's name is the input path
itself, which a conversion would overwrite). Errors are ValueError subclasses (and also
FileNotFoundError where the vendor raises that). See docs/preprocess.md.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import logging
import os
import re
import sys
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from . import versions as _versions
from .errors import ConfigError, InputError
from .fileio import atomic_write
from .input_formats import RGB2YUV_1024, convert_to_input_formats, rgb_to_nv12  # noqa: F401 - vendor API
from .progress import ProgressBar
from .quant.qparam import check_quant_param  # noqa: F401 - vendor API

log = logging.getLogger(__name__)

#: the SDK's version string (see :mod:`calibrator_custom.versions`)
VERSION = _versions.VERSION

#: file-name suffixes of the SDK's compiled extension modules (64-bit and 32-bit Python 3.7); kept for
#: scripts that build module paths from them (this package has no compiled modules)
x64_extension_suffix = ".cpython-37m-x86_64-linux-gnu.so"
i386_extension_suffix = ".cpython-37m-i386-linux-gnu.so"

#: file extensions (lower case) that ``all_path`` collects, as in the vendor's SDK
image_suffix = ["bmp", "dib", "jpeg", "jpg", "jpe", "jp2", "png", "pbm", "pgm", "ppm", "pxm", "pnm",
                "sr", "ras", "tiff", "tif", "hdr", "pic", "raw", "npy", "bin", "mp4"]

PreprocessFunc = Callable[..., np.ndarray]


class PreprocessNotFoundError(ConfigError, FileNotFoundError):
    """A preprocess .py file that does not exist (a ValueError and, as for the vendor, a FileNotFoundError)."""


class ImageNotFoundError(InputError, FileNotFoundError):
    """An image, image folder or list file that does not exist or holds no images."""


def get_sdk_version() -> str:
    """The SDK generation of :data:`VERSION`: its part before the first dot ('S1' for 'S1.0.9_...')."""
    return VERSION.split(".")[0]


#: The SDK's compiler pass names per conversion stage (``cfg/CompilerConfigS.yaml`` of the S-series SDK and
#: the 1.x ``cfg/CompilerConfig.txt``; the CmodelFloat2Fixed lists omit the vendor's unnamed tiling and
#: scheduling passes). They name the vendor's passes; this package runs none of them.
COMPILER_PASSES: dict[str, tuple[str, ...]] = {
    "Debug2FloatConfig": (
        "resolve_multi_consumer_tensor", "drop fake quant", "drop cast", "space_to_batch_nd", "batch_to_space_nd",
        "division_to_multiplication", "full_connection_to_convolution_2d", "batchmatmul_to_convolution_2d",
        "divide_high_dimensional_convolution", "divide_high_dimensional_pooling", "input_extend_dimension",
        "convert_depthwiseconv_to_conv2d", "expand_dualport_ele_inner_dimension", "replace_addn_to_add",
        "reorder_weight_online", "align_input_for_convolution", "swap_elementwise_params",
        "resolve_prelu_leakyrelu", "folder_const", "transpose_conv", "extend_convolution_parameters",
        "disassemble_activation_func", "fuse_elementwise_to_following_conv", "fuse_trivial_elementwise_ops",
        "merge_dma_ops", "drop_inputs_domain", "resolve_ops_option", "fuse_pad_into_following_ops",
        "insert_dmacoef_matrix", "replace_concatenation", "insert_align_operator", "insert_float2fix_operators",
        "infect_datatype", "preprocess_elementwise_behind_convolution", "check_all_ops_is_supported_or_not",
        "remove_unused_tensor_and_ops", "reorder_execute_operators_by_depth"),
    "Float2CmodelFloatConfig": (
        "fuse_elementwise_to_preceding_ops", "fuse_activation_functions", "preprocess_per_CHN_minmax",
        "infect_datatype", "infect_quant_domain", "calcu_qab_minmax", "fuse_single_port_multiply_add"),
    "CmodelFloat2FixedConfig": (
        "append_fix2float_operators", "insert_format_convert", "resolve_quantization_and_op_params",
        "convert_depthwiseconv_to_conv2d", "convolution2d_to_convolution3d"),
    "CmodelFloat2FixedWOConfig": (
        "append_fix2float_operators", "insert_format_convert", "resolve_quantization_and_op_params",
        "convert_depthwiseconv_to_conv2d", "convolution2d_to_convolution3d"),
    # the names of these stages' passes are not published: empty lists
    "FixedWO2Fixed": (),
    "Float2CmodelFloatVerifyConfig": (),
    "MixedOptimConfig": (),
}


class CompilerConfig:
    """The SDK's compiler pass lists (read there from ``cfg/CompilerConfig*.yaml``): each method returns its
    stage's pass names (:data:`COMPILER_PASSES`, a new list per call). With ``useFile=True`` each method
    instead writes the names, one per line, to the SDK's file name in the current folder and returns that
    path; the files are removed when the object is deleted.

    This package runs none of these passes (float converts straight to fixed); the calibrator methods that
    take passes accept a list of pass names or such a file and check it, nothing more.
    """

    _FILES = {"Debug2FloatConfig": "Debug2FloatConfig.txt", "Float2CmodelFloatConfig": "Float2CmodelFloatConfig.txt",
              "CmodelFloat2FixedConfig": "CmodelFloat2FixedConfig.txt",
              "CmodelFloat2FixedWOConfig": "CmodelFloat2FixedWOConfig.txt", "FixedWO2Fixed": "FixedWO2FixedConfig.txt",
              "Float2CmodelFloatVerifyConfig": "Float2CmodelFloatVerifyConfig.txt",
              "MixedOptimConfig": "MixedOptimConfig.txt"}

    def __init__(self, useFile: bool = False):  # noqa: N803 - the SDK's keyword
        self.useFile = useFile
        self.FilePath: list[str] = []

    def _passes(self, key: str, skip: tuple[str, ...] = ()):
        names = [p for p in COMPILER_PASSES[key] if p not in skip]
        if not self.useFile:
            return names
        path = self._FILES[key]
        atomic_write(path, "".join(n + "\n" for n in names).encode("utf-8"))
        self.FilePath.append(path)
        return path

    def Debug2FloatConfig(self, SkipInfectDtype: bool = False):  # noqa: N802,N803
        return self._passes("Debug2FloatConfig", ("infect_datatype",) if SkipInfectDtype else ())

    def Float2CmodelFloatConfig(self):  # noqa: N802
        return self._passes("Float2CmodelFloatConfig")

    def CmodelFloat2FixedConfig(self):  # noqa: N802
        return self._passes("CmodelFloat2FixedConfig")

    def CmodelFloat2FixedWOConfig(self):  # noqa: N802
        return self._passes("CmodelFloat2FixedWOConfig")

    def FixedWO2Fixed(self):  # noqa: N802
        return self._passes("FixedWO2Fixed")

    def Float2CmodelFloatVerifyConfig(self):  # noqa: N802
        return self._passes("Float2CmodelFloatVerifyConfig")

    def MixedOptimConfig(self):  # noqa: N802
        return self._passes("MixedOptimConfig")

    def __del__(self):
        for path in getattr(self, "FilePath", []):
            try:
                os.remove(path)
            except OSError:
                pass


def check_passes(passes, what: str) -> list[str]:
    """``passes`` as a list of pass names: None (none), a list/tuple of names, or a pass file (one per line)
    as ``CompilerConfig(useFile=True)`` writes; anything else is a ConfigError naming ``what``."""
    if passes is None:
        return []
    if isinstance(passes, (str, os.PathLike)):
        path = os.fspath(passes)
        if not os.path.isfile(path):
            raise ConfigError(f"{what}: pass file {path!r} does not exist; give CompilerConfig()'s list or "
                              "the file CompilerConfig(useFile=True) writes")
        with open(path, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip() and not line.startswith("//")]
    if isinstance(passes, (list, tuple)) and all(isinstance(p, str) for p in passes):
        return list(passes)
    raise ConfigError(f"{what}: passes must be a list of pass names (CompilerConfig()'s methods) or a pass file, "
                      f"got {type(passes).__name__}")


class ShowProcess:
    """The SDK's progress bar for scripts: ``show_process()`` per step, ``close()`` at the end (drawn on
    stderr when it is a terminal, like the package's own bars). ``max_steps == 0`` is a ValueError."""

    def __init__(self, max_steps: int, max_arrow: int = 50):
        if max_steps == 0:
            raise InputError("The input data is empty, please check the input parameters!")
        self.max_steps = int(max_steps)
        self.max_arrow = max_arrow
        self.i = 0
        self._bar = ProgressBar(self.max_steps, "")

    def show_process(self, i: int | None = None) -> None:
        """Advance to step ``i`` (default: one more step); closes itself at the last step."""
        self.i = self.i + 1 if i is None else int(i)
        self._bar(self.i, self.max_steps)
        self.close()

    def close(self) -> None:
        if self.i >= self.max_steps:
            self._bar.close()

    def start_show_convert(self) -> None:
        """The SDK's "Start converting model..." animation: a log line here."""
        log.info("Start converting model...")

    def close_show_convert(self) -> None:
        pass


# ---------------------------------------------------------------------------------------- preprocess
def _builtin_names() -> list[str]:
    from . import preprocess_method

    return list(preprocess_method.__all__)


def _import_file(path: str):
    """Import the user's preprocess file as a fresh module (its folder is importable while it loads)."""
    full = os.path.abspath(path)
    folder = os.path.dirname(full)
    stem = re.sub(r"[^0-9A-Za-z_]", "_", os.path.splitext(os.path.basename(full))[0])
    # a stable, unique module name registered in sys.modules, so functions pickle by reference
    module_name = f"_calibrator_custom_preprocess_{stem}_{hashlib.sha1(full.encode()).hexdigest()[:10]}"
    spec = importlib.util.spec_from_file_location(module_name, full)
    if spec is None or spec.loader is None:
        raise ConfigError(f"preprocess file {path!r} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - any failure of user code is reported with the file named
        del sys.modules[module_name]
        raise ConfigError(f"preprocess file {path!r} failed to import: {type(e).__name__}: {e}") from e
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    return module


def _suggest(name: str, names: Sequence[str]) -> str | None:
    """The built-in name the user most likely meant: one the text is a prefix of, then a substring of, then
    the closest spelling."""
    low = name.lower()
    for test in (lambda n: n.lower().startswith(low), lambda n: low in n.lower()):
        hits = sorted((n for n in names if test(n)), key=len)
        if low and hits:
            return hits[0]
    close = difflib.get_close_matches(name, names, n=1)
    return close[0] if close else None


def sdk_preprocess_dir() -> str | None:
    """``$SGS_IPU_DIR/Scripts/calibrator/preprocess_method`` when that folder exists (else None)."""
    root = os.environ.get("SGS_IPU_DIR")
    if not root:
        return None
    folder = os.path.join(root, "Scripts", "calibrator", "preprocess_method")
    return folder if os.path.isdir(folder) else None


def image_preprocess_func(model_name: str | os.PathLike) -> PreprocessFunc:
    """The ``image_preprocess(img_path, norm=True)`` of a built-in method name or of a user's .py file.

    Resolved as the SDK does: anything ending in ``.py`` or containing a path separator is a file; a
    bare name is looked up in ``$SGS_IPU_DIR/Scripts/calibrator/preprocess_method/<name>.py`` when
    SGS_IPU_DIR is set and that file exists (so a user's SDK methods win, as with the SDK), then among
    the built-in methods (``calibrator_custom.preprocess_method.__all__``, which include all of the SDK's
    stock names with the same arrays). Unknown names, missing files (also a FileNotFoundError) and files
    without a callable ``image_preprocess`` raise ConfigError.
    """
    name = os.fspath(model_name)
    sdk_dir = sdk_preprocess_dir()
    is_file = name.lower().endswith(".py") or os.sep in name or (os.altsep and os.altsep in name)
    if not is_file and sdk_dir and os.path.isfile(os.path.join(sdk_dir, f"{name}.py")):
        path = os.path.join(sdk_dir, f"{name}.py")
        log.info("preprocess method %r: using %s (from $SGS_IPU_DIR)", name, path)
        module, where = _import_file(path), f"preprocess file {path!r}"
    elif is_file:
        if not os.path.isfile(name):
            raise PreprocessNotFoundError(f"preprocess file {name!r} does not exist; pass the path of a .py "
                                          "file defining image_preprocess(img_path, norm=True), or a built-in "
                                          f"name: {', '.join(_builtin_names())}")
        module, where = _import_file(name), f"preprocess file {name!r}"
    else:
        builtins = _builtin_names()
        if name not in builtins:
            close = _suggest(name, builtins)
            hint = f"did you mean {close!r}? " if close else ""
            raise ConfigError(f"unknown preprocess method {name!r}; {hint}built-in methods: {', '.join(builtins)}; "
                              "or pass the path of your own .py file")
        module = importlib.import_module(f"{__package__}.preprocess_method.{name}")
        where = f"built-in preprocess method {name!r}"
    func = getattr(module, "image_preprocess", None)
    if not callable(func):
        raise ConfigError(f"{where} defines no function image_preprocess(img_path, norm=True); add one that "
                          "returns the model input as a numpy array with a batch dimension")
    return func


def image_generator(image_list: Iterable, preprocess_funcs: Sequence[PreprocessFunc] | PreprocessFunc,
                    norm: bool = True) -> Iterator[list[list[np.ndarray]]]:
    """Yield ``[[f0(p0, norm), f1(p1, norm), ...]]`` per item of ``image_list`` (vendor semantics).

    An item is one path (one-input models) or a list/tuple of paths, one per preprocess function;
    a count mismatch raises ValueError 'Got different num of preprocess_methods and images!'.
    """
    funcs = [preprocess_funcs] if callable(preprocess_funcs) else list(preprocess_funcs)
    if not funcs:
        raise InputError("image_generator needs at least one preprocess function (one per model input)")
    for k, item in enumerate(image_list):
        paths = list(item) if isinstance(item, (list, tuple)) else [item]
        if len(paths) != len(funcs):
            raise InputError(f"Got different num of preprocess_methods and images! (item {k}: {len(paths)} "
                             f"image(s) {paths!r}, {len(funcs)} preprocess method(s))")
        yield [[func(path, norm) for func, path in zip(funcs, paths)]]


# ---------------------------------------------------------------------------------------- image lists
def all_path(dirname: str | os.PathLike) -> list[str]:
    """Absolute paths of every file under ``dirname`` (recursive, sorted) whose extension is in image_suffix."""
    dirname = os.fspath(dirname)
    if not os.path.isdir(dirname):
        raise ImageNotFoundError(f"No images found in {dirname}: it is not a folder")
    result = []
    for folder, _, files in os.walk(dirname):
        for filename in files:
            if filename.rsplit(".", 1)[-1].lower() in image_suffix and "." in filename:
                result.append(os.path.abspath(os.path.join(folder, filename)))
    if not result:
        raise ImageNotFoundError(f"No images found in {dirname} (looked for: {', '.join(image_suffix)})")
    return sorted(result)


def _split_list_arg(path: str) -> tuple[str | None, str]:
    """'dir:listfile' -> (dir, listfile); a path that exists as given is never split (Windows 'C:\\')."""
    if os.path.exists(path) or ":" not in path:
        return None, path
    folder, listfile = path.split(":", 1)
    return folder, listfile


def read_image_list(path: str | os.PathLike) -> list[list[str]]:
    """Samples of a list file: one line per sample, ','-separated paths (one per model input).

    Blank lines and lines starting with '#' are skipped. ``dir:listfile`` joins every entry to
    ``dir`` (vendor form); otherwise relative entries are resolved against the list file's folder, or
    the current folder when they exist only there.
    A missing image, an empty entry or a line whose path count differs from the first line's raises
    an error naming the line.
    """
    folder, listfile = _split_list_arg(os.fspath(path))
    if not os.path.isfile(listfile):
        raise ImageNotFoundError(f"image list {listfile!r} does not exist")
    base = folder if folder is not None else os.path.dirname(os.path.abspath(listfile))
    try:
        with open(listfile, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise InputError(f"image list {listfile!r} is not UTF-8 text; write one sample per line, paths "
                         "separated by ','") from None
    samples: list[list[str]] = []
    first_line = 0
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        paths = [p.strip() for p in text.split(",")]
        if any(not p for p in paths):
            raise InputError(f"{listfile}, line {number}: empty path in {text!r}; separate the images of a "
                             "sample with ',' (one per model input)")
        if samples and len(paths) != len(samples[0]):
            raise InputError(f"{listfile}, line {number}: {len(paths)} image(s) but line {first_line} has "
                             f"{len(samples[0])}; every sample gives one image per model input")
        # an absolute p stays as it is; a relative one is looked up next to the list file, then (as the
        # vendor's tools do) in the current folder
        resolved = [os.path.join(base, p) if folder is not None or os.path.exists(os.path.join(base, p))
                    or not os.path.exists(p) else os.path.abspath(p) for p in paths]
        for p in resolved:
            if not os.path.exists(p):
                raise ImageNotFoundError(f"{listfile}, line {number}: image {p!r} does not exist")
        if not samples:
            first_line = number
        samples.append(resolved)
    if not samples:
        raise ImageNotFoundError(f"image list {listfile!r} names no images (blank lines and '#' comments only)")
    return samples


# ---------------------------------------------------------------------------------------- misc
# convert_to_input_formats, rgb_to_nv12 (input_formats.py) and check_quant_param (quant/qparam.py) are
# imported above: the fixed-model engine uses them and does not import this module.
_FIXED_SUFFIX = re.compile(r"((_cmodel)?_float|_fixed_without_ipu_ctrl)\.sim$", re.I)
_FLOAT_SUFFIX = re.compile(r"(_cmodel)?_float\.sim$", re.I)
_PLAIN_FLOAT_SUFFIX = re.compile(r"_float\.sim$", re.I)
_MODEL_EXT = re.compile(r"\.(sim|tflite)$", re.I)


def get_out_model_name(model_path: str | os.PathLike, output: str | os.PathLike | None = None,
                       phase: str = "Fixed") -> str:
    """Output model path of a conversion: ``x_float.sim`` -> ``x_fixed.sim`` (phase 'Fixed'),
    ``x_fixed_without_ipu_ctrl.sim`` (phase 'Fixed_without_ipu_ctrl'), ``x_cmodel_float.sim`` (other phases).

    ``output`` may be a folder (the generated basename goes in it) or a file path in an existing folder;
    a file path in a folder that does not exist falls back to the generated name, as the SDK does (with
    a warning). Deliberate difference: for a model path without ``.sim`` (``x.tflite``) the SDK returns
    the model path itself, so the conversion would overwrite the float model; here it is
    ``x_fixed.sim`` (with a warning naming the difference).
    """
    model_path = os.fspath(model_path)
    if phase == "Fixed":
        pattern, suffix = _FIXED_SUFFIX, "_fixed.sim"
    elif phase == "Fixed_without_ipu_ctrl":
        pattern, suffix = _FLOAT_SUFFIX, "_fixed_without_ipu_ctrl.sim"
    else:
        pattern, suffix = _PLAIN_FLOAT_SUFFIX, "_cmodel_float.sim"
    if pattern.search(model_path):
        out_model = pattern.sub(suffix, model_path)
    elif model_path.lower().endswith(".sim"):
        out_model = model_path[:-4] + suffix
    else:  # deliberate difference: the SDK returns model_path itself, so writing there overwrites the model
        out_model = _MODEL_EXT.sub("", model_path) + suffix
        log.warning("get_out_model_name(%r): named %s; the SDK would return the model path itself (no '.sim' in "
                    "it), and writing the output there would overwrite the float model", model_path, out_model)
    if output is None:
        return out_model
    output = os.fspath(output)
    if os.path.isdir(output):
        return os.path.join(output, os.path.basename(out_model))
    parent = os.path.dirname(output)
    if parent and not os.path.isdir(parent):
        log.warning("output %r: folder %r does not exist; writing %s instead, as the SDK does (create the folder "
                    "to write there)", output, parent, out_model)
        return out_model
    return output


def output_model_path(model_path: str | os.PathLike, output: str | os.PathLike | None = None,
                      phase: str = "Fixed") -> str:
    """:func:`get_out_model_name`, guaranteed never to name the input model itself (an ``output`` equal to
    it gets the generated name instead). Used by the package's converters."""
    out = get_out_model_name(model_path, output, phase)
    if os.path.abspath(out) == os.path.abspath(os.fspath(model_path)):
        fallback = get_out_model_name(model_path, None, phase)
        log.warning("output %r is the input model itself; writing %s instead", out, fallback)
        out = fallback
    return out
