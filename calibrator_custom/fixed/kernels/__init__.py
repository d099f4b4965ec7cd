"""Importing this package registers every integer kernel."""
from importlib import import_module

for _name in ("conv", "elementwise", "nonlinear", "movement", "boundary"):
    try:
        import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _e:  # a family not written yet
        if _e.name != f"{__name__}.{_name}":
            raise
