"""Generated docs stay true to the code."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ops_doc_is_up_to_date():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_ops_doc.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_required_op_is_registered():
    from calibrator_custom.ops.registry import supported_ops
    required = """ADD SUB MUL DIV MAXIMUM MINIMUM SQUARED_DIFFERENCE POW ABS NEG SQUARE SQRT RSQRT EXP LOG
    SIN COS FLOOR CEIL ROUND FLOOR_DIV FLOOR_MOD CONV_2D DEPTHWISE_CONV_2D TRANSPOSE_CONV
    FULLY_CONNECTED BATCH_MATMUL AVERAGE_POOL_2D MAX_POOL_2D L2_NORMALIZATION MEAN SUM REDUCE_MAX
    REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_N1_TO_1 LEAKY_RELU PRELU ELU LOGISTIC TANH HARD_SWISH
    GELU SOFTMAX LOG_SOFTMAX RESHAPE SQUEEZE EXPAND_DIMS TRANSPOSE CONCATENATION PACK UNPACK SPLIT
    SPLIT_V SLICE STRIDED_SLICE TILE GATHER PAD PADV2 MIRROR_PAD RESIZE_BILINEAR
    RESIZE_NEAREST_NEIGHBOR DEPTH_TO_SPACE SPACE_TO_DEPTH BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND ARG_MAX
    ARG_MIN CAST DEQUANTIZE DENSIFY QUANTIZE GREATER GREATER_EQUAL LESS LESS_EQUAL EQUAL NOT_EQUAL
    SELECT SELECT_V2 LOGICAL_AND LOGICAL_OR LOGICAL_NOT TOPK_V2 TFLite_Detection_PostProcess""".split()
    missing = sorted(set(required) - set(supported_ops()))
    assert not missing, f"ops without a float kernel: {missing}"


def test_fixed_point_doc_is_up_to_date():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_fixed_point_doc.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_op_table_doc_is_up_to_date():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_op_table_doc.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_float_op_has_an_integer_kernel():
    """Every op of the float set gets an integer kernel (DENSIFY only runs on constants)."""
    from calibrator_custom.fixed.registry import supported_fixed_ops
    from calibrator_custom.ops.registry import supported_ops
    missing = sorted(set(supported_ops()) - set(supported_fixed_ops()) - {"DENSIFY"})
    assert not missing, f"float ops without an integer kernel: {missing}"
