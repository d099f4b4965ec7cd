"""Versions: the SDK generation whose API this package matches, and the package's own version.

``VERSION`` has the SDK's form (``<generation>.<x>.<y>_<build>``), so scripts that branch on
``utils.get_sdk_version()`` (``VERSION.split('.')[0]``) take the S-series path, the API this package
follows (``utils.get_out_model_name`` with ``_fixed_without_ipu_ctrl``, NV12 rounding with floor(x + 0.5),
RAWDATA_S16 clipped at +-32767). The 1.x generation's scripts use a subset of it and run too.
"""

#: this package's release (as in pyproject.toml)
PACKAGE_VERSION = "0.1.0"
#: the SigmaStar SDK release whose calibrator_custom API this package matches
SDK_VERSION = "S1.0.9"
#: what the SDK's ``calibrator_custom.versions.VERSION`` holds, for this package
VERSION = f"{SDK_VERSION}_calibrator_custom_{PACKAGE_VERSION}"
