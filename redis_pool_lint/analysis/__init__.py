"""One analysis core: resolve names, summarise modules, index the project, detect findings."""
from .detect import Finding, detect
from .load import ProjectResult, Settings, build, project_for

__all__ = ["Finding", "ProjectResult", "Settings", "build", "detect", "project_for"]
