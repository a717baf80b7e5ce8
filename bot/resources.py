"""What the serving process asks of the operating system: descriptors and memory back.

- `open_files()` raises the soft limit on open files to the hard one (systemd's default
  soft limit is 1,024, the hard one far higher) and returns it; `connection_cap` keeps
  the connections a port accepts well below it, so the database, the log, the outbound
  pool and the content watcher always get a descriptor.
- `return_memory_to_the_system()` fixes glibc's mmap threshold at 128 KiB. glibc raises
  that threshold each time a large block is freed, after which blocks of that size come
  from the heap and stay there: 300 clients sending a megabyte each left ~160 MB behind
  after they had gone (issue 15). With the threshold fixed, large buffers are mapped
  and unmapped, and the process shrinks back.

Both are best effort: on another platform or C library they do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["RESERVED_FILES", "connection_cap", "open_files", "return_memory_to_the_system"]

log = logging.getLogger(__name__)

RESERVED_FILES = 256  # descriptors kept for everything but inbound connections
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_MMAP_THRESHOLD = 128 * 1024


def open_files() -> int | None:
    """The soft limit on open files, raised to the hard limit first; None where unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return None if soft == resource.RLIM_INFINITY else int(soft)


def connection_cap(wanted: int, files: int | None) -> int:
    """`wanted`, lowered so that the connections leave `RESERVED_FILES` descriptors free."""
    if files is None:
        return wanted
    return max(1, min(wanted, files - RESERVED_FILES))


def return_memory_to_the_system() -> bool:
    """Fix glibc's mmap threshold (see the module docstring); False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl has no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD))
