"""The ``-i`` and ``-n`` arguments shared by the command-line tools (the vendor's forms).

``-i`` is one of (per model input, separated by ',' for multi-input models):

* an image file: one sample;
* a folder: every image under it (recursive, sorted; ``utils.all_path``);
* a list file (any other existing file, or ``dir:listfile``): one sample per line, ',' between the
  images of a multi-input sample (``utils.read_image_list``). A single list file serves all inputs.

``-n`` names one preprocess per model input (',' separated): a built-in method or a ``.py`` path.
"""
from __future__ import annotations

import os
from typing import Callable

from .. import utils
from ._common import UserError

#: file extensions read as images when ``-i`` names a single file
IMAGE_EXTENSIONS = frozenset(utils.image_suffix)


def _is_image_file(path: str) -> bool:
    return os.path.isfile(path) and "." in os.path.basename(path) and \
        path.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS


def _one_input(arg: str) -> list[str]:
    """Images named by one ``-i`` part (an image, a folder); a list file is handled by the caller."""
    if os.path.isdir(arg):
        return utils.all_path(arg)
    if _is_image_file(arg):
        return [os.path.abspath(arg)]
    if os.path.isfile(arg):
        raise UserError(f"-i {arg!r} is not an image (extensions: {', '.join(utils.image_suffix)}); with one entry "
                        "per input separated by ',' give images or folders, or give one list file whose lines name "
                        "one image per input")
    raise UserError(f"-i {arg!r}: no such image or folder")


def _looks_like_list(arg: str) -> bool:
    folder, listfile = utils._split_list_arg(arg)
    return (folder is not None or os.path.isfile(listfile)) and not _is_image_file(arg)


def resolve_images(arg: str, num_inputs: int) -> list[list[str]]:
    """Samples named by ``-i``: a list of per-input path lists, each of length ``num_inputs``."""
    if not arg:
        raise UserError("-i is empty; give an image, a folder or a list file")
    if _looks_like_list(arg):
        samples = utils.read_image_list(arg)
        if len(samples[0]) != num_inputs:
            raise UserError(f"-i {arg!r}: its lines name {len(samples[0])} image(s) per sample, but the model has "
                            f"{num_inputs} input(s); write one image per input on each line, separated by ','")
        return samples
    parts = [p.strip() for p in arg.split(",")] if not os.path.exists(arg) else [arg]
    if len(parts) != num_inputs:
        raise UserError(f"-i {arg!r} names {len(parts)} input(s) but the model has {num_inputs}; give one image, "
                        "folder or list per input, separated by ','")
    per_input = [_one_input(p) for p in parts]
    counts = {len(x) for x in per_input}
    if len(counts) != 1:
        detail = ", ".join(f"{p!r}: {len(x)}" for p, x in zip(parts, per_input))
        raise UserError(f"-i: the inputs have different numbers of images ({detail}); every input needs one image "
                        "per sample")
    return [list(sample) for sample in zip(*per_input)]


def resolve_preprocess(arg: str, num_inputs: int) -> list[Callable]:
    """One ``image_preprocess`` function per model input from ``-n`` (names or .py paths, ',' separated)."""
    names = [n.strip() for n in arg.split(",")] if arg else []
    if len(names) != num_inputs:
        raise UserError(f"-n {arg!r} names {len(names)} preprocess method(s) but the model has {num_inputs} "
                        "input(s); give one per input, separated by ','")
    funcs = []
    for name in names:
        try:
            funcs.append(utils.image_preprocess_func(name))
        except ValueError as e:  # unknown name, missing file, file that fails to import or lacks the function
            raise UserError(f"-n: {e}") from None
    return funcs


def require_file(path: str, what: str, flag: str) -> str:
    """``path`` if it is an existing file, else a one-line UserError naming the flag."""
    if path and os.path.isdir(path):
        raise UserError(f"{flag} {path!r} is a folder; give the {what} file")
    if not path or not os.path.isfile(path):
        raise UserError(f"{flag} {path!r}: {what} does not exist")
    return path
