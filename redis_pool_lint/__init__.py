"""Find (and fix) Redis clients built per request in FastAPI/Starlette apps."""
__version__ = "0.1.0"
