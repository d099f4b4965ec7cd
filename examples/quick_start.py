"""Quick start: run the bundled float model on the bundled photos with calibrator_custom.

    python examples/quick_start.py

Loads ``examples/data/face_detection_short_range.tflite`` (any float .tflite is a valid float.sim),
runs it with the pure-numpy ``float_simulator`` and, if LiteRT is installed, checks every output
against it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

import calibrator_custom

DATA = Path(__file__).resolve().parent / "data"


def preprocess(path: Path, height: int, width: int) -> np.ndarray:
    """BlazeFace input: RGB resized to the model size, scaled to [-1, 1] (mean 127.5, std 127.5)."""
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return ((rgb - 127.5) / 127.5)[None]


def main() -> int:
    model = DATA / "face_detection_short_range.tflite"
    sim = calibrator_custom.float_simulator(model)
    (inp,) = sim.get_input_details()
    outs = [(d["name"], d["shape"].tolist()) for d in sim.get_output_details()]
    print(f"model {model.name}: input {inp['name']} {inp['shape'].tolist()}, outputs {outs}")
    try:
        from ai_edge_litert import interpreter as litert
        ref = litert.Interpreter(model_path=str(model))
        ref.allocate_tensors()
    except ImportError:
        ref = None
    worst = 0.0
    for img in sorted(DATA.glob("*.jpg")):
        x = preprocess(img, *inp["shape"][1:3])
        sim.set_input(0, x)
        sim.invoke()
        logits = sim.get_output(1).reshape(-1).astype(np.float64)
        scores = 0.5 * (1 + np.tanh(0.5 * logits))  # the logistic function, without overflow
        line = f"{img.name}: {int((scores > 0.5).sum())} anchors above 0.5, best face score {scores.max():.3f}"
        if ref is not None:
            ref.set_tensor(ref.get_input_details()[0]["index"], x)
            ref.invoke()
            for k, d in enumerate(ref.get_output_details()):
                theirs = ref.get_tensor(d["index"])
                err = float(np.abs(sim.get_output(k) - theirs).max() / max(np.abs(theirs).max(), 1e-12))
                worst = max(worst, err)
            line += f"; max error vs LiteRT {worst:.2e} of the output range"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
