"""Advisory locks on an index folder, so that processes that build, change and read one index (`qa build`,
the app rebuilding at start, article adds from the app's workers, readers) never lose it.

Two lock files in the folder, held with `fcntl.flock` (released by the kernel when a holder dies, so a killed
build never leaves a lock behind):
- `.write.lock`, exclusive for a whole build or article change: writers take turns, so one writer's clean-up
  can never delete the files another is writing.
- `.read.lock`, shared while an index is being loaded and exclusive while a writer replaces the manifest and
  deletes the files it no longer names: a reader never finds its files gone half-way through.
Readers of a folder they may not write (a read-only checkout) read without locks: nobody can write there.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import IndexBusyError, IndexWriteError

try:
    import fcntl
except ImportError:  # not on Windows: locking is then a no-op (documented in the README)
    fcntl = None  # type: ignore[assignment]

WRITE_LOCK = ".write.lock"
READ_LOCK = ".read.lock"
LOCK_FILES = (WRITE_LOCK, READ_LOCK)


def _open_lock(path: Path, *, create: bool) -> int | None:
    """The lock file's descriptor. Without `create` (readers), None when it cannot be had: no folder yet, a
    read-only folder or not a folder at all. Nobody can write there either, and loading reports the rest."""
    try:
        return os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
    except OSError:
        if create:
            raise
        return None


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


@contextmanager
def write_lock(folder: Path, *, timeout: float | None = None, log: Callable[[str], None] = lambda _m: None) -> Iterator[None]:
    """Hold the folder's writer lock; waits for another writer, logging once that it waits. With `timeout`
    (seconds) an IndexBusyError is raised when the other writer takes longer."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = _open_lock(folder / WRITE_LOCK, create=True)
    except OSError as exc:
        raise IndexWriteError(
            f"Cannot write the index in {folder}/ ({exc.strerror or exc}); make the folder writable, free some space, "
            "or choose another folder with --index / QA_INDEX_DIR. Nothing was changed."
        ) from None
    assert fd is not None
    try:
        if fcntl is not None:
            _acquire(fd, fcntl.LOCK_EX, folder, timeout, log, "build or change")
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _acquire(fd: int, kind: int, folder: Path, timeout: float | None, log: Callable[[str], None], what: str) -> None:
    assert fcntl is not None
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
        return
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
    log(f"Waiting for another {what} of {folder}/ to finish{_holder(fd)} ...")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if deadline is not None and time.monotonic() >= deadline:
            raise IndexBusyError(
                f"The index in {folder}/ is busy: another {what}{_holder(fd)} has held it for over {timeout:g} s. "
                "Try again when it has finished."
            )
        time.sleep(0.05)


@contextmanager
def read_lock(folder: Path, *, exclusive: bool = False) -> Iterator[None]:
    """Shared: files are being read; exclusive (writers only, holding the writer lock): files are being
    replaced or deleted. Without permission to create the lock file, readers go without (see the module doc)."""
    fd = _open_lock(folder / READ_LOCK, create=exclusive)
    if fd is None and os.access(folder, os.W_OK):
        try:  # the first reader of a writable folder creates the lock file
            fd = _open_lock(folder / READ_LOCK, create=True)
        except OSError:
            fd = None
    try:
        if fd is not None and fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)
