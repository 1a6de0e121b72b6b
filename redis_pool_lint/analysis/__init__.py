"""One analysis core: resolve names, summarise modules, index the project, detect findings."""
from .load import ProjectResult, Settings, build, project_for


def __getattr__(name: str):
    """``Finding`` and ``detect`` on first use: flake8 imports this for every run, and a tree
    with no Redis in it never needs the detector."""
    if name in ("Finding", "detect"):
        import importlib

        return getattr(importlib.import_module(f"{__name__}.detect"), name)
    raise AttributeError(name)

__all__ = ["Finding", "ProjectResult", "Settings", "build", "detect", "project_for"]
