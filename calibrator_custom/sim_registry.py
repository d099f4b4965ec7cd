"""The attribute registry shared by ``SIM_Calibrator`` and ``SIM_Simulator`` (the vendor's rules).

In ``__init__``, after ``super().__init__()``, ``self.<name> = <model instance>`` registers the
instance under ``<name>`` (in assignment order) with its input and output details. Any other value
is an ordinary attribute. Vendor errors: assigning a model before ``super().__init__()`` is an
``AttributeError``; ``register_*`` with a non-str name a ``TypeError``, with an empty name a
``KeyError``; assigning something other than a model or ``None`` to a registered name a
``TypeError``; reading an attribute that does not exist a ``ValueError`` (ours is also an
``AttributeError``, so ``hasattr``, ``getattr(obj, name, default)`` and ``copy`` keep working).
Assigning ``None`` to a registered name (or ``del``) unregisters it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import CalibratorError


class UnknownAttributeError(CalibratorError, AttributeError):
    """``net.<name>`` that is neither an attribute nor a registered model (the vendor raises ValueError)."""


def _item_str(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "[{}]".format(", ".join(str(v) for v in value.flat))
    return str(value)


def format_details(inputs: list[dict], outputs: list[dict]) -> str:
    """The vendor's text block: ``(``, ``Input(i):`` / ``Output(i):`` with one ``    key:\\tvalue`` line per
    detail, ``)``."""
    lines = ["("]
    for label, details in (("Input", inputs), ("Output", outputs)):
        for num, item in enumerate(details):
            lines.append(f"{label}({num}):")
            lines += [f"    {key}:\t{_item_str(value)}" for key, value in item.items()]
    return "\n".join(lines) + "\n)\n"


class ModelRegistry:
    """Base of the SIM_* classes: registers model instances assigned as attributes (see module docs)."""

    #: what the registered instances are called in messages ('calibrators' / 'simulators')
    _kind = "models"
    #: attribute holding the registry (the vendor's name: ``_calibrators`` / ``_simulators``)
    _store = "_models"
    #: what may be assigned to a registered name, for messages
    _expected = "a model"

    def __init__(self) -> None:
        object.__setattr__(self, self._store, {})
        object.__setattr__(self, "_model_inputs", {})
        object.__setattr__(self, "_model_outputs", {})

    def _accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def forward(self, *inputs):
        """Run the registered models on one sample; implement it in your subclass."""
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented; define forward(self, *inputs) "
                                  "in your subclass: set the models' inputs, invoke them, return their outputs")

    # ------------------------------------------------------------------ registration
    def _registry(self) -> dict[str, Any] | None:
        return self.__dict__.get(self._store)

    def _register(self, name: str, value: Any) -> None:
        store = self._registry()
        if store is None:
            raise AttributeError(f"cannot assign {self._kind} before {type(self).__name__}.__init__() call; call "
                                 f"super().__init__() first in {type(self).__name__}.__init__")
        if not isinstance(name, str):
            raise TypeError(f"{self._kind} name should be a string. Got {type(name)}")
        if name == "":
            raise KeyError(f"{self._kind} name can't be empty string \"\"")
        self.__dict__.pop(name, None)
        store[name] = value
        self._model_inputs[name] = value.get_input_details()
        self._model_outputs[name] = value.get_output_details()

    def _unregister(self, name: str) -> None:
        for d in (self._registry(), self._model_inputs, self._model_outputs):
            d.pop(name, None)

    def __setattr__(self, name: str, value: Any) -> None:
        store = self._registry()
        if self._accepts(value):
            self._register(name, value)
        elif store is not None and name in store:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value)}' as {self._kind} '{name}' ({self._expected} or None "
                                "expected)")
            self._unregister(name)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        store = self.__dict__.get(self._store)
        if store is not None and name in store:
            return store[name]
        registered = ", ".join(store) if store else "none"
        raise UnknownAttributeError(f"'{type(self).__name__}' object has no attribute '{name}' (registered "
                                    f"{self._kind}: {registered})")

    def __delattr__(self, name: str) -> None:
        store = self._registry()
        if store is not None and name in store:
            self._unregister(name)
        else:
            object.__delattr__(self, name)

    def _check_name(self, name: Any, what: str) -> None:
        if self.__dict__.get(self._store) is None:
            raise AttributeError(f"cannot assign {what} before {type(self).__name__}.__init__() call; call "
                                 f"super().__init__() first in {type(self).__name__}.__init__")
        if not isinstance(name, str):
            raise TypeError(f"{self._kind} name should be a string. Got {type(name)}")
        if name == "":
            raise KeyError(f"{self._kind} name can't be empty string \"\"")

    def register_model_inputs(self, name: str, value: list) -> None:
        """Record the input details shown for ``name`` by ``repr`` (registration does it for you)."""
        self._check_name(name, "model_inputs")
        self._model_inputs[name] = value

    def register_model_outputs(self, name: str, value: list) -> None:
        """Record the output details shown for ``name`` by ``repr`` (registration does it for you)."""
        self._check_name(name, "model_outputs")
        self._model_outputs[name] = value

    # ------------------------------------------------------------------ text
    @staticmethod
    def print_model(model) -> str:
        """The vendor's text of a model's input and output details (``Input(i):`` / ``Output(i):`` blocks)."""
        return format_details(model.get_input_details(), model.get_output_details())

    def __repr__(self) -> str:
        text = type(self).__name__ + ":\n"
        for name in self._registry() or {}:
            text += name + " " + format_details(self._model_inputs[name], self._model_outputs[name])
        return text
