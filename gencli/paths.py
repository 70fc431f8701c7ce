"""Where gencli keeps its own files (the hub's cache stays huggingface_hub's).

The cache is ``$GENCLI_CACHE``, else ``$XDG_CACHE_HOME/gencli``, else
``~/.cache/gencli``. A cache that cannot be used is bad input (exit 2) with a
message naming the path and the variable that chose it: no home directory to
put it in, a file where the directory should be, a directory that cannot be
written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from gencli.errors import UsageError

_HINT = "set GENCLI_CACHE to a writable directory"


def cache_dir() -> Path:
    """gencli's cache directory; exit 2 when there is none to be had or a file stands in its place."""
    path, variable = _chosen()
    _refuse_a_file_on_the_way(path, variable)
    return path


def cache_variable() -> str:
    """The variable that chose the cache: ``GENCLI_CACHE``, ``XDG_CACHE_HOME`` or ``HOME``."""
    return _chosen()[1]


def writable_cache_dir(*parts: str) -> Path:
    """``cache_dir() / parts``, created and proven writable; exit 2 naming the path and its variable if not.

    Call it before writing into the cache: a directory can be read-only, owned
    by someone else or on a read-only mount, which only an attempt reveals
    (``os.access`` says yes to root on a read-only file system).
    """
    root = cache_dir()
    target = root.joinpath(*parts)
    try:
        target.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".probe-", dir=target)
        os.close(handle)
        with contextlib.suppress(OSError):
            os.unlink(probe)
    except (PermissionError, NotADirectoryError, FileExistsError) as exc:
        raise _unwritable(target, exc) from exc
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        raise _unwritable(target, exc) from exc
    return target


def _unwritable(target: Path, exc: OSError) -> UsageError:
    reason = exc.strerror or type(exc).__name__
    return UsageError(f"gencli's cache {target} is not writable ({reason}; set by {cache_variable()})", _HINT)


_UNWRITABLE = {errno.EPERM, errno.EACCES, errno.EEXIST, errno.ENOTDIR, errno.EROFS}


def _chosen() -> tuple[Path, str]:
    if os.environ.get("GENCLI_CACHE"):
        return Path(os.path.abspath(Path(os.environ["GENCLI_CACHE"]).expanduser())), "GENCLI_CACHE"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative path is invalid and ignored
        return Path(xdg) / "gencli", "XDG_CACHE_HOME"
    return home_dir() / ".cache" / "gencli", "HOME"


def home_dir() -> Path:
    """``$HOME`` if it is an absolute path, else the user's entry in the password database."""
    home = os.environ.get("HOME", "")
    if os.path.isabs(home):
        return Path(home)
    try:
        import pwd

        home = pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError):  # no password database (Windows), or a uid with no entry (containers)
        home = "" if os.name == "posix" else os.path.expanduser("~")
    if os.path.isabs(home):
        return Path(home)
    value = os.environ.get("HOME")
    why = "HOME is not set" if value is None else f"HOME is {value!r}, not an absolute path,"
    raise UsageError(
        f"no home directory for gencli's cache: {why} and the user has none in the password database",
        "set GENCLI_CACHE (or XDG_CACHE_HOME, or HOME) to a writable directory",
    )


def _refuse_a_file_on_the_way(path: Path, variable: str) -> None:
    """Exit 2 when ``path``, or the nearest part of it that exists, is not a directory."""
    for candidate in (path, *path.parents):
        try:
            is_dir = candidate.is_dir()
            exists = is_dir or candidate.exists()
        except OSError:  # unreadable: an attempt to write will say more
            return
        if is_dir:
            return
        if exists:
            where = "" if candidate == path else f" ({candidate} is not a directory)"
            raise UsageError(f"gencli's cache {path} is not a directory{where}; set by {variable}", _HINT)
