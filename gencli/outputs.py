"""Where a run's files go, for single runs and batches alike: planned before loading, written whole.

- :func:`plan_single` turns ``-o FILE | DIR/ | -`` into paths (``-``: stdout)
  and refuses, before anything loads, a target that exists (unless
  ``--overwrite``), a missing directory or a wrong suffix.
- :class:`BatchFiles` does the same for a batch under ``--out-dir``, where an
  item's ``output`` may not lead out of the directory.
- :func:`write_files` writes one item's files atomically (see
  :func:`gencli.writers.atomic_write_bytes`): all of them or none.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gencli.errors import UsageError
from gencli.writers import atomic_write_bytes, not_a_file, remove_dead_scratch_of, target_kind

Notify = Callable[..., None]


def plan_single(
    output: str | None,
    names: list[str],
    overwrite: bool,
    extension: str,
    notify: Notify | None = None,
    strict_suffix: bool = True,
) -> list[Path] | None:
    """The paths of a single run's files (None: one file to stdout), each checked free and writable."""
    paths = plan_outputs(output, names)
    if paths is None:
        return None
    for path in paths:
        check_suffix(path, extension, strict_suffix, notify, str(path), str(path.with_suffix("." + extension)))
        check_name_length(path)
        kind = target_kind(path)
        if kind not in ("absent", "regular", "fifo", "null"):  # a FIFO and /dev/null are written in place
            raise not_a_file(path, kind)
        if kind == "regular" and not overwrite:
            raise UsageError(f"{path} already exists", "pass --overwrite, or choose another name")
        if not path.parent.is_dir() and not names_directory(output):
            raise UsageError(f"the directory {path.parent} does not exist", "end -o with '/' to have it created")
    return paths


def check_suffix(path: Path, extension: str, strict: bool, notify: Notify | None, label: str, fix: str) -> None:
    """A file whose suffix is not ``extension``: refused when ``strict`` (a name with no suffix passes),
    else a warning. ``label`` names the file in the message, ``fix`` is the name to suggest."""
    suffix = "." + extension.lstrip(".")
    if path.suffix.lower() == suffix:
        return
    kind = suffix[1:].upper()
    if strict:
        if path.suffix:
            raise UsageError(f"{label} does not end in {suffix}, and gencli writes {kind} files", f"use {fix}")
    elif notify:
        notify(f"{path.name} will hold {kind} data, whatever its extension says", "warning")


def check_name_length(path: Path) -> None:
    """Refuse (exit 2) a path whose file name or whole length the file system cannot hold."""
    limit = 255
    try:
        limit = os.pathconf(path.parent if path.parent.is_dir() else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        pass
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > limit:
            raise UsageError(
                f"the file name {part[:40]!r}... is {size} bytes long, more than the {limit} a file name may have",
                "choose a shorter name",
            )
    if len(os.fsencode(str(path))) >= 4096:
        raise UsageError(f"the path {str(path)[:40]!r}... is longer than 4096 bytes", "choose a shorter path")


def write_files(
    paths: list[Path],
    data: list[bytes],
    overwrite: bool,
    *,
    in_place: bool = True,
    replaceable: frozenset[Path] = frozenset(),
) -> list[Path]:
    """Write each file atomically; if one fails, those written before it are removed.

    ``in_place``: a FIFO or /dev/null at a path is written to as it is (a single
    run's ``-o``); ``replaceable``: paths replaced even without ``overwrite``.
    """
    if len(paths) != len(data):
        raise ValueError(f"{len(paths)} paths planned for {len(data)} files")
    written: list[Path] = []
    try:
        for path, content in zip(paths, data, strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            target = atomic_write_bytes(path, content, overwrite or path in replaceable, in_place=in_place)
            if target_kind(target) == "regular":  # a FIFO or /dev/null written in place is not removed
                written.append(target)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return paths


def names_directory(output: str | None) -> bool:
    """``-o`` names a directory: one that exists, or a path ending in '/' (made when the files are written)."""
    return (output or ".").endswith(("/", os.sep)) or Path(output or ".").expanduser().is_dir()


def _check_creatable(directory: Path) -> None:
    """A directory that exists, or can be made: its nearest existing ancestor is a writable directory."""
    if directory.is_dir():
        return
    ancestor = directory
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"cannot create the directory {directory}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create the directory {directory}: {ancestor} is not writable")


def plan_outputs(output: str | None, names: list[str]) -> list[Path] | None:
    """Where each of ``len(names)`` outputs goes, from ``-o FILE | DIR | -``.

    ``-`` means stdout (one output only; None is returned). A directory (one
    that exists, or a path ending in '/') receives ``names``; a missing one is
    created only when the files are written, after the model has loaded, so a
    failed run leaves no empty directory. A file path takes a single output.
    Nothing is written here.
    """
    if output == "-":
        if len(names) != 1:
            raise UsageError(
                f"'-o -' writes one output to stdout, but this run makes {len(names)}", "use -o DIR for several"
            )
        return None
    target = Path(output or ".").expanduser()
    check_name_length(target)
    if names_directory(output):
        _check_creatable(target)
        return [target / name for name in names]
    if len(names) != 1:
        raise UsageError(
            f"-o {output} names one file, but this run makes {len(names)} outputs",
            "give a directory (ending in '/') instead",
        )
    return [target]


class BatchFiles:
    """Where a batch's files go: under ``--out-dir``, each item's own names or its ``output``.

    :meth:`plan` settles every item's paths before anything loads (exit 2
    naming the line): an ``output`` is relative to the directory, and no path
    may lead out of it, by ``..``, by being absolute, or through a symbolic
    link already there. :meth:`check_free` refuses files that exist (unless
    ``overwrite``) among the items still to do; :meth:`write` writes an
    item's files atomically, all of them or none.
    """

    def __init__(
        self,
        out_dir: str | Path | None,
        overwrite: bool,
        extension: str,
        *,
        strict_suffix: bool = True,
        notify: Callable[..., None] | None = None,
        claim: Callable[[list[Path]], None] | None = None,
    ):
        self.out_dir = Path(out_dir or ".").expanduser()
        self.claim = claim  # notes an item's paths before they are written (the results file's journal)
        self.replaceable: frozenset[Path] = frozenset()  # orphans of this run, redone on resume
        self.overwrite = overwrite
        self.extension = "." + extension.lstrip(".")
        self.strict_suffix = strict_suffix  # an "output" ending in another suffix: refused, or only a warning
        self.notify = notify
        self.planned: dict[str, list[Path]] = {}

    def plan(
        self,
        items: list,
        names_of: Callable[[Any], list[str]],
        extension_of: Callable[[Any], str | None] | None = None,
    ) -> None:
        """Every item's paths, from its ``output`` or ``names_of(item)``; exit 2 naming a bad line.

        An ``output`` file's suffix is checked against ``extension_of(item)`` (the task's
        :meth:`~gencli.task.Task.extension_of`: a video item's own container), else the batch's ``extension``.
        """
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise UsageError(f"--out-dir {self.out_dir} is not a directory")
        root = self._root()
        owners: dict[Path, int] = {}
        for item in items:
            where = f"line {item.line}"
            own = extension_of(item) if extension_of is not None else None
            suffix = "." + own.lstrip(".") if own else self.extension
            try:
                paths = self._paths(item.params.get("output"), names_of(item), root, suffix)
            except UsageError as exc:
                raise UsageError(f"{where}: {exc.message}", exc.hint) from None
            for path in paths:
                key = path.resolve()
                if key in owners:
                    raise UsageError(
                        f"{where}: {path} is also an output of line {owners[key]}", 'give each item its own "output"'
                    )
                owners[key] = item.line
            self.planned[item.id] = paths

    def _root(self) -> Path:
        return self.out_dir.resolve()

    def _paths(self, output, names: list[str], root: Path, suffix: str) -> list[Path]:
        if output is None:
            paths = [self.out_dir / name for name in names]
        else:
            relative = Path(output)
            if not output.strip() or "\0" in output:
                raise UsageError(f'"output" {output!r} is not a file name')
            if relative.is_absolute() or output.startswith("~") or ".." in relative.parts:
                raise UsageError(
                    f'"output" {output!r} must stay inside --out-dir {self.out_dir}',
                    "give a name relative to --out-dir, without '..'",
                )
            target = self.out_dir / relative
            if output.endswith(("/", os.sep)) or target.is_dir():
                paths = [target / name for name in names]
            elif len(names) != 1:
                raise UsageError(
                    f'"output" {output!r} names one file, but this item makes {len(names)}',
                    "end it with '/' for a directory under --out-dir",
                )
            else:
                paths = [target]
                if target.suffix:  # a bare name is taken as it is, even where a suffix would only warn
                    check_suffix(
                        target,
                        suffix,
                        self.strict_suffix,
                        self.notify,
                        f'"output" {output!r}',
                        target.with_suffix(suffix).name,
                    )
        for path in paths:
            check_name_length(path)
            self._check_inside(path, root)
        return paths

    def _check_inside(self, path: Path, root: Path) -> None:
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError) as exc:  # a symbolic-link loop
            raise UsageError(f"cannot follow {path}: {exc}") from None
        if resolved != root and root not in resolved.parents:
            raise UsageError(
                f"{path} leads outside --out-dir {self.out_dir} (to {resolved})",
                "a file name or a symbolic link may not lead out of --out-dir",
            )

    def check_free(self, items: list, claimed: frozenset[str] = frozenset()) -> None:
        """Refuse, before anything loads, files the items would replace (unless ``overwrite``); make --out-dir.

        ``claimed``: files an earlier, killed run of this results file wrote
        before their records (its journal); such a file, still planned for an
        item to do, is this run's own and is made again. Scratch files that
        killed writers left under the planned names are removed.
        """
        orphans = set()
        for item in items:
            for path in self.planned[item.id]:
                kind = target_kind(path)
                if kind == "a directory":
                    raise UsageError(f"line {item.line}: {path} is a directory", 'give the item another "output"')
                if kind not in ("absent", "regular"):
                    error = not_a_file(path, kind)
                    raise UsageError(f"line {item.line}: {error.message}", 'give the item another "output"')
                if kind == "regular" and str(path.resolve()) in claimed:
                    orphans.add(path)
                    if self.notify:
                        self.notify(f"line {item.line}: {path} has no record (the run was stopped): made again")
                elif kind == "regular" and not self.overwrite:
                    raise UsageError(
                        f"line {item.line}: {path} already exists", "pass --overwrite, or choose another --out-dir"
                    )
        self.replaceable = frozenset(orphans)
        remove_dead_scratch_of([path for paths in self.planned.values() for path in paths])
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the directory {self.out_dir}: {exc.strerror}") from None

    def write(self, item, data: list[bytes]) -> list[Path]:
        """Write the item's files atomically, all of them or none."""
        paths = self.planned[item.id]
        root = self._root()
        for path in paths:
            self._check_inside(path, root)  # again: a link made since the plan must not lead out
        if self.claim is not None:
            self.claim(paths)
        return write_files(paths, data, self.overwrite, in_place=False, replaceable=self.replaceable)
