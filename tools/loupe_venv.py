"""Pick the Python virtual environment that the Loupe reference tools run in.

Every script under tools/ and Benchmarks/peers/ calls `ensure_venv()` before importing torch,
onnx or onnxruntime. The venv is chosen, in order, from:

1. the `--venv DIR` command-line option (removed from argv before argparse sees it),
2. the `LOUPE_VENV` environment variable,
3. `.venv` in the repository root.

If the running interpreter is not that venv's and the venv exists, the script re-executes
itself with the venv's python, so `python3 tools/x.py` and `.venv/bin/python tools/x.py`
behave the same. If the venv does not exist, the current interpreter is used as is (handy for
a system-wide install) and imports fail with the usual message if packages are missing.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
_REEXEC_MARK = "LOUPE_VENV_REEXEC"


def _venv_from_argv() -> str | None:
    argv = sys.argv
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "--venv" and i + 1 < len(argv):
            value = argv[i + 1]
            del argv[i : i + 2]
            return value
        if arg.startswith("--venv="):
            del argv[i]
            return arg.split("=", 1)[1]
    return None


def venv_dir() -> Path:
    """The venv directory selected by --venv, LOUPE_VENV or the default `.venv`."""
    chosen = _venv_from_argv() or os.environ.get("LOUPE_VENV") or str(REPO_ROOT / ".venv")
    path = Path(chosen)
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve() if (Path.cwd() / path).exists() else REPO_ROOT / path
    return path


def ensure_venv() -> None:
    """Re-execute the current script under the selected venv's python when needed."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    if os.environ.get(_REEXEC_MARK) == "1" or not python.exists():
        return
    try:
        same = Path(sys.prefix).resolve() == venv.resolve()
    except OSError:
        same = False
    if same:
        return
    env = dict(os.environ, **{_REEXEC_MARK: "1", "LOUPE_VENV": str(venv)})
    os.execve(str(python), [str(python), *sys.argv], env)
