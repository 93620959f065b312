"""How received bytes reach staging's disk: one pass that copies and hashes (`copy_hashing`),
and the fsync of a big copy left to a helper thread while the file is parsed (`flush_later`,
`settle`). `pipeline.staging` decides what is staged and where; this module only moves bytes.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

CHUNK = 8 * 1024 * 1024
SMALL_BUFFER = 64 * 1024  # the least a copy's buffer is, for a file that grows or says 0 bytes
# A staged copy this big is flushed to disk (fsync) on a helper thread while the file is
# parsed, instead of before (issue 13: the fsync of a 393 MB copy took ~1.5 s of its ingest on
# a VM's disk). `settle` waits for it before the file's outcome is committed, so nothing the
# sender could delete next (an upload, a remote file) depends on a copy not yet on disk; a
# crash before then leaves a copy `problem` finds damaged (and the sender's copy still there).
# The flush starts once the file's ledger entry has committed (`flush_later`), not when the
# copy is made (`owe_flush`): the ledger's commit waited behind it (ext4 writes a file's data
# before the journal commit that follows its block allocation), 0.17-0.20 s instead of 0.013 s
# of a 393 MB file's ingest, with both cores idle.
FLUSH_LATER_BYTES = 4 * 1024 * 1024
_flusher = ThreadPoolExecutor(2, thread_name_prefix="cb-fsync")
_owed: dict[str, Path] = {}  # sha256 -> a copy whose flush has not started
_flushing: dict[str, Future[None]] = {}  # sha256 -> its fsync, until done (kept if it failed)
_flushing_lock = threading.Lock()


def owe_flush(sha256: str, path: Path) -> None:
    """Note that the copy `path` of `sha256` is not on disk yet: `flush_later` starts its
    flush, `settle` waits for it (or flushes it at once, if it never started)."""
    with _flushing_lock:
        _owed[sha256] = path


def flush_later(*sha256s: str) -> None:
    """fsync the owed copies of `sha256s` on the helper thread (none owed: nothing to do);
    `settle(sha256)` waits for one."""
    for sha256 in sha256s:
        with _flushing_lock:
            path = _owed.pop(sha256, None)
        if path is not None:
            _start(sha256, path)


def _start(sha256: str, path: Path) -> None:
    def forget(done: Future[None]) -> None:
        if done.exception() is None:
            with _flushing_lock:
                if _flushing.get(sha256) is done:
                    del _flushing[sha256]

    future = _flusher.submit(_fsync, path)
    with _flushing_lock:
        _flushing[sha256] = future
    future.add_done_callback(forget)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # Linux flushes the file's pages whichever descriptor asks
    finally:
        os.close(fd)


def settle(sha256: str) -> None:
    """Wait until the staged copy of `sha256` is on disk, if `stage` left its fsync owed or
    running; raises the fsync's OSError (a full or failing disk) once."""
    with _flushing_lock:
        path = _owed.pop(sha256, None)
        future = _flushing.get(sha256)
    if path is not None:
        _fsync(path)
    if future is None:
        return
    try:
        future.result()
    finally:
        with _flushing_lock:
            if _flushing.get(sha256) is future:
                del _flushing[sha256]


def copy_hashing(src: io.RawIOBase, dst: io.RawIOBase, digest: hashlib._Hash) -> int:
    """Copy `src` to `dst` in one pass, hashing the very bytes written; returns the size.

    Each chunk is written by a helper thread while this one hashes it (both release the
    GIL), into one of two reused buffers: the chunk read next goes into the other one, whose
    write has finished (issue 13: the read-hash-write loop took ~1.4 s of a 393 MB file's
    CLI ingest, ~0.8 s of it in writes of freshly allocated chunks). A file of one chunk is
    copied without the thread. The buffers are no bigger than the file needs: two 8 MiB
    buffers are zero-filled when made, which cost a 200-row file 7 ms."""
    size_each = buffer_size(src)
    buffers = (bytearray(size_each), bytearray(size_each))
    size = 0
    pending: Future[None] | None = None
    writer: ThreadPoolExecutor | None = None
    try:
        turn = 0
        while True:
            view = memoryview(buffers[turn])
            n = src.readinto(view)
            if not n:
                break
            chunk = view[:n]
            if pending is not None:
                pending.result()
            if writer is None and size == 0 and n < len(view):  # small: most likely the whole file
                write_all(dst, chunk)
            else:
                writer = writer or ThreadPoolExecutor(1, thread_name_prefix="cb-stage")
                pending = writer.submit(write_all, dst, chunk)
            digest.update(chunk)
            size += n
            turn ^= 1
        if pending is not None:
            pending.result()
    finally:
        if writer is not None:
            writer.shutdown(wait=True)  # an error above: the helper is done with the buffers
    return size


def kernel_copy_hashing(src: io.RawIOBase, dst: io.RawIOBase, digest: hashlib._Hash) -> int | None:
    """`copy_hashing` for a big regular file, with the bytes copied by the kernel
    (`copy_file_range`: no trip through this process, a reflink where the file system has
    them) on a helper thread, while this one hashes what is already copied, read back from
    `dst`: the hash is of the staged bytes themselves, whatever `src` does meanwhile.
    Returns the size, or None (`dst` left empty) where the kernel cannot copy these files
    (another file system on an old kernel, a pipe, a file of /proc): then `copy_hashing`.
    `dst`'s descriptor must be readable too (staging's, from mkstemp, is read-write).

    Issue 13: writing a 393 MB copy from this process took 0.2-1.1 s, the kernel's copy
    ~0.15 s, and the hash (~0.3 s) now runs beside it."""
    try:
        info = os.fstat(src.fileno())
    except (OSError, io.UnsupportedOperation):
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size < FLUSH_LATER_BYTES:
        return None
    src_fd, dst_fd = src.fileno(), dst.fileno()
    try:
        size = os.copy_file_range(src_fd, dst_fd, CHUNK, 0, 0)
    except OSError as exc:
        if exc.errno not in _NO_KERNEL_COPY:
            raise
        size = 0
    if size == 0:  # a file that says a size but gives no bytes this way
        os.ftruncate(dst_fd, 0)
        return None
    view = memoryview(bytearray(CHUNK))
    hashed = 0
    with ThreadPoolExecutor(1, thread_name_prefix="cb-stage") as copier:
        while True:
            ahead = copier.submit(os.copy_file_range, src_fd, dst_fd, CHUNK, size, size)
            while hashed < size:  # what is copied, read back from the copy
                got = os.preadv(dst_fd, [view[: min(CHUNK, size - hashed)]], hashed)
                if got == 0:
                    raise OSError(errno.EIO, "the staged copy is shorter than what was copied into it")
                digest.update(view[:got])
                hashed += got
            copied = ahead.result()
            if copied == 0:
                return size
            size += copied


# copy_file_range's errors that mean "not between these files" (not a failing disk).
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF})


def buffer_size(src: io.RawIOBase) -> int:
    """A copy buffer for `src`: its size plus one (the read that finds the end) for a
    regular file, at least SMALL_BUFFER (a file still growing), at most CHUNK; CHUNK for a
    pipe or anything that does not say its size."""
    try:
        info = os.fstat(src.fileno())
    except (OSError, io.UnsupportedOperation):
        return CHUNK
    if not stat.S_ISREG(info.st_mode):
        return CHUNK
    return min(CHUNK, max(SMALL_BUFFER, info.st_size + 1))


def write_all(dst: io.RawIOBase, chunk: memoryview) -> None:
    """A raw write may take fewer bytes than given: write until all are."""
    done = 0
    while done < len(chunk):
        written = dst.write(chunk[done:])
        if not written:
            raise OSError(errno.EIO, "the staged copy took no more bytes")
        done += written
