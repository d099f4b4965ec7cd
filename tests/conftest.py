"""Shared pytest setup: tests/ on sys.path, hypothesis profile, and the ../shared fixtures."""
from __future__ import annotations

import calibrator_custom  # noqa: F401  (first: it pins OpenBLAS's kernel before numpy loads it)

import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True)
settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MODELS_DIR = SHARED / "models"
IMAGES_DIR = SHARED / "images" / "coco"


def shared_models() -> list[Path]:
    return sorted(MODELS_DIR.glob("*.tflite")) if MODELS_DIR.is_dir() else []


def require_shared() -> None:
    if not MODELS_DIR.is_dir() or not IMAGES_DIR.is_dir():
        pytest.skip(f"shared material not found at {SHARED} (models and images live in ../shared)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: real-model tests (run in CI; deselect with -m 'not slow')")
