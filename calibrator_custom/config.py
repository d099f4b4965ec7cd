"""input_config.ini: read once into frozen dataclasses, checked key by key, optionally against the model.

    >>> cfg = load_input_config("input_config.ini", model="net_float.sim")
    >>> cfg.inputs[0].input_format, cfg.inputs[0].mean, cfg.outputs[0].dequantization
    ('YUV_NV12', (123.675, 116.28, 103.53), True)

The file follows SigmaStar's syntax (``configparser`` with ``allow_no_value``, keys case-insensitive):
values may end in ``;`` and may be quoted, ``,`` separates tensors (one entry per model input/output,
in order), ``:`` separates the channels of ``mean``/``std_value``, ``#`` and ``;`` start comments.
Unlike the vendor, which strips every punctuation character from both ends of a value, we remove
only whitespace, the terminating ``;`` and matching quotes, so tensor names ending in ``_``, ``/``,
``:0`` or ``.1`` survive. Every problem raises :class:`~calibrator_custom.errors.ConfigError` naming
the file, the section, the key and what is allowed. See docs/input_config.md.
"""
from __future__ import annotations

import configparser
import difflib
import logging
import math
import os
from dataclasses import dataclass
from typing import Sequence

from .errors import ConfigError
from .model.graph import Model, load_model

log = logging.getLogger(__name__)

TRAINING_FORMATS = ("RGB", "BGR", "GRAY", "RAWDATA_S16_NHWC", "RAWDATA_F32_NHWC")
INPUT_FORMATS = ("RGB", "BGR", "RGBA", "BGRA", "YUV_NV12", "GRAY", "RAWDATA_F32_NHWC", "RAWDATA_S16_NHWC")
#: training_input_formats -> the input_formats the chip may be fed instead (SDK manual, Convert §2.3.4)
ALLOWED_INPUT_FORMATS = {
    "RGB": ("RGB", "RGBA", "BGRA", "YUV_NV12"),
    "BGR": ("BGR", "RGBA", "BGRA", "YUV_NV12"),
    "GRAY": ("GRAY", "YUV_NV12"),
    "RAWDATA_F32_NHWC": ("RAWDATA_F32_NHWC",),
    "RAWDATA_S16_NHWC": ("RAWDATA_S16_NHWC",),
}
RAWDATA_FORMATS = ("RAWDATA_S16_NHWC", "RAWDATA_F32_NHWC")
#: channels of an image training format; mean and std_value give one value per channel, in R:G:B order
IMAGE_CHANNELS = {"RGB": 3, "BGR": 3, "GRAY": 1}
#: input_formats of image inputs: the fixed model takes their raw uint8 pixels
IMAGE_FORMATS = frozenset({"RGB", "BGR", "GRAY", "RGBA", "BGRA", "YUV_NV12"})
LAYOUTS = ("NHWC", "NCHW")
CONV_INPUT_FORMATS = ("ALL_UINT8", "ALL_INT16", "CONV2D_INT16", "DEPTHWISE_INT16")
BOOLEANS = {"TRUE": True, "FALSE": False}
#: allowed ranges of the numbers (inclusive) and why: what a real config uses, with a wide margin, and
#: what keeps every later stage finite (the fixed model stores round(mean) as the uint8 input's zero
#: point and 1/std as its scale; the normalised input spans (0 - mean)/std .. (255 - mean)/std)
MEAN_RANGE = (0.0, 255.0, "a pixel value: pixels are 0..255 and the uint8 input's zero point is round(mean)")
STD_RANGE = (1e-3, 1e4, "pixels 0..255 are divided by it; 1 means no scaling")
ALIGNMENT_RANGE = (1, 4096, "a whole number of pixels, e.g. 1, 2, 16, 64")
SECTION_KEYS = {
    "INPUT_CONFIG": ("inputs", "training_input_formats", "input_formats", "quantizations", "mean",
                     "mean_red", "mean_green", "mean_blue", "std_value", "input_width_alignment",
                     "input_height_alignment", "input_layouts"),
    "OUTPUT_CONFIG": ("outputs", "dequantizations", "output_layouts"),
    "CONV_CONFIG": ("input_format", "tensor_arrays"),
}
REQUIRED_SECTIONS = ("INPUT_CONFIG", "OUTPUT_CONFIG")
_QUOTES = "'\""
_CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


@dataclass(frozen=True)
class InputSpec:
    """One model input as configured in [INPUT_CONFIG].

    ``mean`` and ``std`` are in the ini's R:G:B order (one value for GRAY; ``std`` expanded to one
    value per channel; both empty for RAWDATA inputs); :meth:`channel_mean` / :meth:`channel_std`
    give them in the order of the model's channels (reversed for BGR). Pixels are normalised as
    ``(pixel - mean) / std``.
    """

    name: str
    training_input_format: str
    input_format: str
    quantization: bool = True
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    width_alignment: int = 1
    height_alignment: int = 1
    layout: str = "NHWC"

    @property
    def is_rawdata(self) -> bool:
        return self.training_input_format in RAWDATA_FORMATS

    @property
    def channels(self) -> int | None:
        """3 for RGB/BGR, 1 for GRAY, None for RAWDATA inputs."""
        return IMAGE_CHANNELS.get(self.training_input_format)

    def channel_mean(self) -> tuple[float, ...]:
        """mean in the model's channel order: (B, G, R) for BGR, else as written."""
        return self.mean[::-1] if self.training_input_format == "BGR" else self.mean

    def channel_std(self) -> tuple[float, ...]:
        """std in the model's channel order: (B, G, R) for BGR, else as written."""
        return self.std[::-1] if self.training_input_format == "BGR" else self.std


@dataclass(frozen=True)
class OutputSpec:
    """One model output as configured in [OUTPUT_CONFIG]."""

    name: str
    dequantization: bool = True
    layout: str = "NHWC"


@dataclass(frozen=True)
class ConvConfig:
    """[CONV_CONFIG]: forced convolution bit widths (None = the calibrator decides)."""

    input_format: str | None = None
    tensor_arrays: tuple[str, ...] = ()


@dataclass(frozen=True)
class InputConfig:
    """A whole input_config.ini."""

    path: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    conv: ConvConfig = ConvConfig()

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.outputs)

    def input(self, name: str) -> InputSpec:
        """The InputSpec called ``name`` (KeyError naming the configured inputs if absent)."""
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(f"{name!r} is not an input of {self.path}; inputs: {list(self.input_names)}")


# ---------------------------------------------------------------------------------------- values
def _suggest(word: str, choices: Sequence[str]) -> str:
    by_case = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_case), n=1, cutoff=0.6)
    if not close and len(word) >= 3:  # 'std' -> 'std_value', 'NV12' -> 'YUV_NV12'
        close = [c for c in by_case if word.lower() in c][:1]
    return f"; did you mean {by_case[close[0]]!r}?" if close else ""


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] == text[0] and text[0] not in text[1:-1]:
        return text[1:-1].strip()
    return text


class _Ini:
    """The parsed file plus value lexing; ``error(section, key, msg)`` names the file, section and key."""

    def __init__(self, path: str, parser: configparser.ConfigParser):
        self.path = path
        self.parser = parser

    def error(self, section: str, key: str | None, msg: str) -> ConfigError:
        where = f"[{section}]" + (f" {key}" if key else "")
        return ConfigError(f"{self.path}: {where}: {msg}")

    def has(self, section: str, key: str) -> bool:
        return self.parser.has_section(section) and self.parser.has_option(section, key)

    def raw(self, section: str, key: str) -> str:
        """The value with its terminating ';' and trailing comment removed (ConfigError if it has none)."""
        value = self.parser.get(section, key)
        if value is None:
            raise self.error(section, key, f"has no value; write '{key}=...;'")
        quote, cut = "", len(value)
        for i, ch in enumerate(value):
            if quote:
                quote = "" if ch == quote else quote
            elif ch in _QUOTES:
                quote = ch
            elif ch == ";" or (ch == "#" and i > 0 and value[i - 1].isspace()):
                cut = i
                break
        rest = value[cut:].lstrip(";")
        if rest and not rest[0].isspace() and rest[0] != "#":  # 'a;b' is a typo; 'a ; note' a comment
            raise self.error(section, key, f"unexpected text {rest.strip()!r} right after ';' (a value ends "
                                           "at ';'; separate tensors with ',' and channels with ':')")
        return value[:cut].strip()

    def entries(self, section: str, key: str) -> list[str]:
        """The ','-separated entries of a value, each stripped of whitespace and matching quotes."""
        text = _unquote(self.raw(section, key))
        if not text:
            raise self.error(section, key, "is empty")
        return [_unquote(e) for e in text.replace("\n", " ").split(",")]

    def per_item(self, section: str, key: str, names: Sequence[str], what: str) -> list[str]:
        """Entries of a per-tensor key: exactly one per name in ``names``."""
        items = self.entries(section, key)
        if len(items) != len(names):
            more = f", or list the missing {what}s in '{what}s'" if len(items) > len(names) else ""
            raise self.error(section, key, f"has {len(items)} entr{'y' if len(items) == 1 else 'ies'} but "
                                           f"{len(names)} {what}{'s are' if len(names) != 1 else ' is'} "
                                           f"configured ({_names(names)}); give one value per {what}, "
                                           f"separated by ','{more}")
        for name, item in zip(names, items):
            if not item:
                raise self.error(section, key, f"the entry for {what} {name!r} is empty")
        return items

    def choice(self, section: str, key: str, item: str, allowed: Sequence[str], name: str | None) -> str:
        if item in allowed:
            return item
        who = f" (for {name!r})" if name else ""
        raise self.error(section, key, f"{item!r}{who} is not allowed; allowed: {', '.join(allowed)}"
                                       f"{_suggest(item, allowed)}")

    def boolean(self, section: str, key: str, item: str, name: str) -> bool:
        if item.upper() in BOOLEANS:
            return BOOLEANS[item.upper()]
        raise self.error(section, key, f"{item!r} (for {name!r}) is not a boolean; allowed: TRUE, FALSE")

    def numbers(self, section: str, key: str, item: str, name: str,
                allowed: tuple[float, float, str]) -> tuple[float, ...]:
        """The ':'-separated channel values of one entry, as finite floats inside ``allowed``."""
        lo, hi, why = allowed
        out = []
        for text in item.split(":"):
            try:
                v = float(text.strip())
            except ValueError:
                raise self.error(section, key, f"{text.strip()!r} (for {name!r}) is not a number; write "
                                               "numbers like 127.5, channels separated by ':'") from None
            if not math.isfinite(v):
                raise self.error(section, key, f"{text.strip()!r} (for {name!r}) is not a finite number; "
                                               f"allowed: {lo:g} to {hi:g} ({why})")
            if not lo <= v <= hi:
                raise self.error(section, key, f"{text.strip()} (for {name!r}) is out of range; allowed: "
                                               f"{lo:g} to {hi:g} ({why})")
            out.append(v)
        return tuple(out)

    def alignment(self, section: str, key: str, item: str, name: str) -> int:
        lo, hi, why = ALIGNMENT_RANGE
        try:
            v = int(item)
        except ValueError:
            v = None
        if v is None or not lo <= v <= hi:
            raise self.error(section, key, f"{item!r} (for {name!r}) is not allowed; allowed: a whole "
                                           f"number {lo} to {hi} ({why})")
        return v


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names) if names else "none"


# ---------------------------------------------------------------------------------------- reading
def _read(path: str) -> configparser.ConfigParser:
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"input config {path!r} does not exist; pass the path of your input_config.ini") \
            from None
    except IsADirectoryError:
        raise ConfigError(f"input config {path!r} is a folder; pass the path of the input_config.ini in it") \
            from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"input config {path!r} is not UTF-8 text ({e.reason} at byte {e.start}); "
                          "save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"input config {path!r} cannot be read: {e.strerror or e}") from None
    parser = configparser.ConfigParser(allow_no_value=True, interpolation=None, strict=True)
    try:
        parser.read_string(text, source=path)
    except configparser.Error as e:
        raise ConfigError(f"input config {path!r} is not a valid ini file: {e.message}") from None
    return parser


def _check_names(ini: _Ini) -> None:
    if ini.parser.defaults():
        raise ini.error("DEFAULT", None, "input_config.ini does not use a [DEFAULT] section; put its keys "
                                         f"in one of {_names(list(SECTION_KEYS))}")
    for section in ini.parser.sections():
        if section not in SECTION_KEYS:
            raise ini.error(section, None, f"unknown section; allowed: {_names(list(SECTION_KEYS))}"
                                           f"{_suggest(section, list(SECTION_KEYS))}")
        for key in ini.parser.options(section):
            if key not in SECTION_KEYS[section]:
                others = [s for s, keys in SECTION_KEYS.items() if key in keys and s != section]
                hint = f"; {key!r} belongs in [{others[0]}]" if others else _suggest(key, SECTION_KEYS[section])
                raise ini.error(section, key, f"unknown key; allowed in [{section}]: "
                                              f"{', '.join(SECTION_KEYS[section])}{hint}")
    for section in REQUIRED_SECTIONS:
        if not ini.parser.has_section(section):
            raise ConfigError(f"{ini.path}: section [{section}] is missing; every input_config.ini needs "
                              f"{' and '.join(f'[{s}]' for s in REQUIRED_SECTIONS)}")


def _tensor_names(ini: _Ini, section: str, key: str, what: str) -> list[str]:
    if not ini.has(section, key):
        raise ini.error(section, key, f"is missing; list the model's {what} tensor names, separated by ','")
    names = ini.entries(section, key)
    for i, name in enumerate(names):
        if not name:
            raise ini.error(section, key, f"entry {i} is empty; list {what} names separated by ',' with "
                                          "nothing between two commas")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ini.error(section, key, f"lists {_names(dup)} more than once; each {what} appears once")
    return names


def _formats(ini: _Ini, names: list[str]) -> tuple[list[str], list[str]]:
    sec = "INPUT_CONFIG"
    given = {k: ini.per_item(sec, k, names, "input") for k in ("training_input_formats", "input_formats")
             if ini.has(sec, k)}
    if not given:
        raise ini.error(sec, "input_formats", f"is missing; allowed per input: {', '.join(INPUT_FORMATS)}")
    chip = given.get("input_formats") or given["training_input_formats"]
    training = given.get("training_input_formats") or chip
    for name, t, c in zip(names, training, chip):
        if "input_formats" in given:
            ini.choice(sec, "input_formats", c, INPUT_FORMATS, name)
        if "training_input_formats" in given:
            ini.choice(sec, "training_input_formats", t, TRAINING_FORMATS, name)
        elif t not in TRAINING_FORMATS:
            sources = ", ".join(f for f, ok in ALLOWED_INPUT_FORMATS.items() if c in ok)
            raise ini.error(sec, "input_formats", f"{c!r} (for {name!r}) needs training_input_formats (the format "
                                                  f"the network was trained on); allowed: {sources}")
        if c not in ALLOWED_INPUT_FORMATS[t]:
            raise ini.error(sec, "input_formats", f"{c!r} (for {name!r}) cannot be fed to a model trained on "
                                                  f"{t}; with training_input_formats={t} allowed: "
                                                  f"{', '.join(ALLOWED_INPUT_FORMATS[t])}")
    return training, chip


def _per_image(ini: _Ini, key: str, names: list[str], image: list[int]) -> dict[int, str]:
    """Map input index -> entry of mean-like ``key``: one entry per input, or one per image input."""
    sec = "INPUT_CONFIG"
    items = ini.entries(sec, key)
    raw = [names[i] for i in range(len(names)) if i not in image]
    if not image:
        raise ini.error(sec, key, f"must not be set: every input is RAWDATA ({_names(names)}) and RAWDATA "
                                  "inputs take no mean/std_value")
    if len(items) == len(names):
        for i, item in enumerate(items):
            if i not in image and item:
                raise ini.error(sec, key, f"is set for RAWDATA input {names[i]!r}; RAWDATA inputs take no "
                                          "mean/std_value (leave their entry empty or list image inputs only)")
        chosen = {i: items[i] for i in image}
    elif len(items) == len(image):
        chosen = dict(zip(image, items))
    else:
        also = f" or one per input ({len(names)})" if raw else ""
        count = f"{len(items)} entr{'y' if len(items) == 1 else 'ies'}"
        raise ini.error(sec, key, f"has {count}; give one per image input ({len(image)}: "
                                  f"{_names([names[i] for i in image])}){also}, separated by ','")
    for i, item in chosen.items():
        if not item:
            raise ini.error(sec, key, f"the entry for image input {names[i]!r} is empty")
    return chosen


def _means(ini: _Ini, names: list[str], training: list[str], image: list[int]) -> dict[int, tuple[float, ...]]:
    sec = "INPUT_CONFIG"
    colour_keys = ("mean_red", "mean_green", "mean_blue")
    means: dict[int, tuple[float, ...]] = {}
    if ini.has(sec, "mean"):
        for i, item in _per_image(ini, "mean", names, image).items():
            means[i] = ini.numbers(sec, "mean", item, names[i], MEAN_RANGE)
    per_colour = [k for k in colour_keys if ini.has(sec, k)]
    if per_colour:
        missing = [k for k in colour_keys if k not in per_colour]
        if missing:
            raise ini.error(sec, missing[0], f"is missing; {', '.join(per_colour)} "
                                             f"{'is' if len(per_colour) == 1 else 'are'} set, so give "
                                             "mean_red, mean_green and mean_blue (or one 'mean=R:G:B')")
        cols = [{i: ini.numbers(sec, k, item, names[i], MEAN_RANGE)
                 for i, item in _per_image(ini, k, names, image).items()} for k in colour_keys]
        for i in image:
            for k, col in zip(colour_keys, cols):
                if len(col[i]) != 1:
                    raise ini.error(sec, k, f"gives {len(col[i])} values for {names[i]!r}; {k} takes one value "
                                            "per input")
            rgb = tuple(col[i][0] for col in cols)
            if training[i] == "GRAY":
                if len(set(rgb)) != 1:
                    raise ini.error(sec, "mean_red", f"GRAY input {names[i]!r} has one channel but mean_red, "
                                                     f"mean_green, mean_blue differ {rgb}; use 'mean=<value>'")
                rgb = rgb[:1]
            if i in means and means[i] != rgb:
                raise ini.error(sec, "mean", f"mean {means[i]} and mean_red/mean_green/mean_blue {rgb} disagree "
                                             f"for {names[i]!r}; keep one of them")
            means[i] = rgb
    for i in image:
        if i not in means:
            form = "R:G:B" if IMAGE_CHANNELS[training[i]] == 3 else "<value>"
            raise ini.error(sec, "mean", f"is missing; input {names[i]!r} is {training[i]}: set mean={form}; "
                                         "(or mean_red, mean_green, mean_blue) and std_value")
        want = IMAGE_CHANNELS[training[i]]
        if len(means[i]) != want:
            raise ini.error(sec, "mean", f"gives {len(means[i])} channel value(s) for {names[i]!r} but "
                                         f"{training[i]} has {want}; write "
                                         f"{'R:G:B' if want == 3 else 'one value'}")
    return means


def _stds(ini: _Ini, names: list[str], training: list[str], image: list[int]) -> dict[int, tuple[float, ...]]:
    sec = "INPUT_CONFIG"
    items = _per_image(ini, "std_value", names, image) if ini.has(sec, "std_value") else {}
    stds = {}
    for i in image:
        want = IMAGE_CHANNELS[training[i]]
        values = ini.numbers(sec, "std_value", items[i], names[i], STD_RANGE) if i in items else (1.0,)
        if len(values) not in (1, want):
            raise ini.error(sec, "std_value", f"gives {len(values)} channel values for {names[i]!r} but "
                                              f"{training[i]} has {want}; write one value or R:G:B")
        stds[i] = values * want if len(values) == 1 else values
    return stds


def _inputs(ini: _Ini) -> tuple[InputSpec, ...]:
    sec = "INPUT_CONFIG"
    names = _tensor_names(ini, sec, "inputs", "input")
    training, chip = _formats(ini, names)
    image = [i for i, t in enumerate(training) if t not in RAWDATA_FORMATS]
    means = _means(ini, names, training, image)
    stds = _stds(ini, names, training, image)

    def per_input(key, default, convert):
        if not ini.has(sec, key):
            return [default(i) for i in range(len(names))]
        return [convert(sec, key, item, names[i]) for i, item in enumerate(ini.per_item(sec, key, names, "input"))]

    quant = per_input("quantizations", lambda i: True, ini.boolean)
    align_default = lambda i: 2 if chip[i] == "YUV_NV12" else 1  # noqa: E731
    widths = per_input("input_width_alignment", align_default, ini.alignment)
    heights = per_input("input_height_alignment", align_default, ini.alignment)
    layouts = per_input("input_layouts", lambda i: "NHWC",
                        lambda s, k, item, name: ini.choice(s, k, item, LAYOUTS, name))
    for name, c, layout in zip(names, chip, layouts):
        if layout == "NCHW" and c in ("RGBA", "BGRA"):
            raise ini.error(sec, "input_layouts", f"{name!r} is fed as {c}, which cannot be NCHW; allowed: NHWC")
    return tuple(InputSpec(n, training[i], chip[i], quant[i], means.get(i, ()), stds.get(i, ()), widths[i],
                           heights[i], layouts[i]) for i, n in enumerate(names))


def _outputs(ini: _Ini) -> tuple[OutputSpec, ...]:
    sec = "OUTPUT_CONFIG"
    names = _tensor_names(ini, sec, "outputs", "output")
    deq = ([ini.boolean(sec, "dequantizations", item, n) for n, item in
            zip(names, ini.per_item(sec, "dequantizations", names, "output"))]
           if ini.has(sec, "dequantizations") else [True] * len(names))
    layouts = ([ini.choice(sec, "output_layouts", item, LAYOUTS, n) for n, item in
                zip(names, ini.per_item(sec, "output_layouts", names, "output"))]
               if ini.has(sec, "output_layouts") else ["NHWC"] * len(names))
    return tuple(OutputSpec(n, d, lay) for n, d, lay in zip(names, deq, layouts))


def _conv(ini: _Ini) -> ConvConfig:
    sec = "CONV_CONFIG"
    fmt = None
    if ini.has(sec, "input_format"):
        items = ini.entries(sec, "input_format")
        if len(items) != 1:
            raise ini.error(sec, "input_format", f"takes one value, got {len(items)}; allowed: "
                                                 f"{', '.join(CONV_INPUT_FORMATS)}")
        fmt = ini.choice(sec, "input_format", items[0], CONV_INPUT_FORMATS, None)
    arrays: tuple[str, ...] = ()
    if ini.has(sec, "tensor_arrays"):
        arrays = tuple(_tensor_names(ini, sec, "tensor_arrays", "convolution input"))
    return ConvConfig(fmt, arrays)


# ---------------------------------------------------------------------------------------- the model
def _check_tensor_names(path: str, input_names: Sequence[str], output_names: Sequence[str], model: Model) -> None:
    """``inputs``/``outputs`` against the model, before any per-tensor key is counted against them."""
    sg = model.main

    def err(section: str, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{path}: [{section}] {key}: {msg}")

    def same_set(section, key, given, actual, what):
        tensors = {t.name for t in sg.tensors}
        for name in given:
            if name not in actual:
                kind = f"a tensor of the model but not one of its {what}s" if name in tensors else \
                    "not a tensor of the model"
                raise err(section, key, f"{name!r} is {kind}; the model's {what}s are {_names(actual)}"
                                        f"{_suggest(name, actual)}")
        if len(given) != len(actual):
            raise err(section, key, f"lists {len(given)} {what}(s) ({_names(given)}) but the model has "
                                    f"{len(actual)}: {_names(actual)}; list every {what}, separated by ','")

    ins = [sg.tensors[i].name for i in sg.inputs]
    outs = [sg.tensors[i].name for i in sg.outputs]
    same_set("INPUT_CONFIG", "inputs", input_names, ins, "input")
    if list(input_names) != ins:
        raise err("INPUT_CONFIG", "inputs", f"must follow the model's input order {_names(ins)}, got "
                                            f"{_names(input_names)}")
    same_set("OUTPUT_CONFIG", "outputs", output_names, outs, "output")


def _check_model(cfg: InputConfig, model: Model) -> None:
    sg = model.main
    path = cfg.path

    def err(section: str, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{path}: [{section}] {key}: {msg}")

    for spec, idx in zip(cfg.inputs, sg.inputs):
        shape = sg.tensors[idx].shape
        if spec.layout == "NCHW" and len(shape) != 4:
            raise err("INPUT_CONFIG", "input_layouts", f"{spec.name!r} has shape {list(shape)}; NCHW needs a "
                                                       "4-D input; allowed here: NHWC")
        if spec.channels and len(shape) == 4:
            c = shape[1] if spec.layout == "NCHW" else shape[3]
            if c != spec.channels:
                raise err("INPUT_CONFIG", "training_input_formats",
                          f"{spec.name!r} is {spec.training_input_format} ({spec.channels} channel(s)) but its "
                          f"shape {list(shape)} ({spec.layout}) has {c}; allowed for {c} channel(s): "
                          f"{', '.join(f for f, n in IMAGE_CHANNELS.items() if n == c) or 'RAWDATA_*'}")
    names = [t.name for t in sg.tensors]
    conv_inputs = {sg.tensors[op.inputs[0]].name for op in sg.operators
                   if model.op_name(op) in _CONV_OPS and op.inputs and op.inputs[0] >= 0}
    for name in cfg.conv.tensor_arrays:
        if name not in names:
            raise err("CONV_CONFIG", "tensor_arrays", f"{name!r} is not a tensor of the model; list the first "
                                                      f"input tensor of each convolution to make INT16"
                                                      f"{_suggest(name, names)}")
        if name not in conv_inputs:
            log.warning("%s: [CONV_CONFIG] tensor_arrays: %r is not the input of a CONV_2D or DEPTHWISE_CONV_2D "
                        "op; it has no effect", path, name)


def load_input_config(path: str | os.PathLike, model: Model | str | os.PathLike | None = None) -> InputConfig:
    """Read and check an input_config.ini; with ``model`` (a Model or a model path) also check it fits.

    Raises ConfigError naming the file, section, key and the allowed values for any problem.
    """
    path = os.fspath(path)
    ini = _Ini(path, _read(path))
    _check_names(ini)
    if model is not None:
        model = model if isinstance(model, Model) else load_model(model)
        _check_tensor_names(path, _tensor_names(ini, "INPUT_CONFIG", "inputs", "input"),
                            _tensor_names(ini, "OUTPUT_CONFIG", "outputs", "output"), model)
    cfg = InputConfig(path, _inputs(ini), _outputs(ini), _conv(ini))
    if model is not None:
        _check_model(cfg, model)
    log.debug("input config %s: inputs %s, outputs %s", path, cfg.input_names, cfg.output_names)
    return cfg
