"""A seccomp-BPF allow-list for the reference walredo server, installed through ctypes.

Why by hand: the PyPI packages that wrap seccomp (``pyseccomp``, ``seccomplite``, bindings named
like libseccomp's) all load the libseccomp C library at run time, are thinly maintained, and
would add a native dependency for a filter that is twenty BPF instructions. The program below
is the classic "check the architecture, then compare the syscall number against a list" filter
from the kernel's seccomp documentation, assembled from the UAPI constants.

What the filter allows is what a running CPython needs to read its stdin pipe, write its stdout
and stderr pipes, allocate and free memory, handle the signals CPython itself uses, and exit.
Everything else -- opening files, sockets, fork/exec, ptrace, stat -- fails with ``EPERM``.

Why ``EPERM`` and not ``KILL`` as the default action: CPython's runtime may, on a rare path
(a memory-pressure fallback in the allocator, a lazily imported codec, the hash seed), touch a
syscall not on the list. With ``KILL`` the server would die without a word, which a test harness
cannot tell from a real crash; with ``EPERM`` the call fails, Python raises ``OSError`` and the
server reports it as a one-line ``FATAL`` error. A syscall made under the wrong architecture
(the 32-bit ``int 0x80`` ABI, or x32 numbers on x86_64) still kills the process: those are never
legitimate here and the numbers would not mean what the allow-list assumes.

Like the real walredo process, the filter goes on after start-up and before the first request is
read; everything the server will ever import must be imported before :func:`install` runs (the
filter forbids opening module files).
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

__all__ = ["ALLOWED_SYSCALLS", "SeccompError", "install", "seccomp_mode"]

# prctl(2) options and seccomp modes (linux/prctl.h, linux/seccomp.h).
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# Filter return values (linux/seccomp.h).
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
EPERM = 1

# Classic BPF opcodes (linux/filter.h): load word absolute, jump-if-equal/greater-or-equal
# against a constant, return a constant.
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_RET_K = 0x06

# Offsets in struct seccomp_data: int nr; __u32 arch; ...
OFFSET_NR = 0
OFFSET_ARCH = 4

# Audit architecture tokens (linux/audit.h) and syscall numbers per architecture.
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

# name -> (x86_64 number, aarch64 number). aarch64 uses the generic table (asm-generic/unistd.h).
_SYSCALLS: dict[str, tuple[int, int]] = {
    # the protocol itself
    "read": (0, 63),
    "write": (1, 64),
    "readv": (19, 65),
    "writev": (20, 66),
    # memory: pymalloc arenas and large objects (mmap/munmap), glibc's main heap (brk),
    # realloc of large buffers (mremap), returning pages to the kernel (madvise)
    "brk": (12, 214),
    "mmap": (9, 222),
    "munmap": (11, 215),
    "mremap": (25, 216),
    "madvise": (28, 233),
    # locks and signals the runtime uses even single-threaded
    "futex": (202, 98),
    "rt_sigreturn": (15, 139),
    "rt_sigprocmask": (14, 135),
    "rt_sigaction": (13, 134),
    "sigaltstack": (131, 132),
    "sched_yield": (24, 124),
    # clocks (normally served by the vDSO without a syscall) and identity
    "clock_gettime": (228, 113),
    "getpid": (39, 172),
    "gettid": (186, 178),
    # leaving
    "exit": (60, 93),
    "exit_group": (231, 94),
}
ALLOWED_SYSCALLS: tuple[str, ...] = tuple(_SYSCALLS)
"""Names of the syscalls the filter lets through; every other one fails with EPERM."""


class SeccompError(OSError):
    """The kernel refused the filter (no seccomp support, or prctl failed)."""


def _arch() -> tuple[int, int, bool]:
    """(audit arch token, column in _SYSCALLS, whether x32 numbers must be refused)."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return AUDIT_ARCH_X86_64, 0, True
    if machine in ("aarch64", "arm64"):
        return AUDIT_ARCH_AARCH64, 1, False
    raise SeccompError(f"seccomp filter: machine architecture {machine!r} is not supported "
                       "(x86_64 and aarch64 are); run with --disable-seccomp")


def build_program() -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions for the machine we run on.

    Layout (jump offsets count instructions after the jump)::

        0      ld  arch
        1      jeq ARCH, +1, +0          -> 3 / 2
        2      ret KILL_PROCESS          wrong ABI
        3      ld  nr
        [4     jge X32_BIT -> deny]      x86_64 only
        ...    jeq NR_i -> allow         one per allowed syscall
        n-2    ret ERRNO(EPERM)          deny
        n-1    ret ALLOW
    """
    arch, column, refuse_x32 = _arch()
    numbers = sorted({nums[column] for nums in _SYSCALLS.values()})
    prog: list[tuple[int, int, int, int]] = [
        (BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        (BPF_JEQ_K, 1, 0, arch),
        (BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
        (BPF_LD_W_ABS, 0, 0, OFFSET_NR),
    ]
    count = len(numbers)
    if refuse_x32:
        # skip all the compares and land on the deny instruction
        prog.append((BPF_JGE_K, count, 0, X32_SYSCALL_BIT))
    for i, nr in enumerate(numbers):
        # on a match jump over the remaining compares and the deny to the allow
        prog.append((BPF_JEQ_K, count - i, 0, nr))
    prog.append((BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM))
    prog.append((BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    return prog


class _SockFprog(ctypes.Structure):
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install() -> None:
    """Set PR_SET_NO_NEW_PRIVS and load the filter for this thread (the server has only one).

    Raises :class:`SeccompError` naming the failing step. After this returns, the process can
    read, write, allocate and exit, nothing else.
    """
    prog = build_program()
    # struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; } in native byte order
    raw = b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(prog), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.restype = ctypes.c_int
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise SeccompError(err, f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(err)}")
    if prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise SeccompError(err, f"prctl(PR_SET_SECCOMP) failed: {os.strerror(err)}")


def seccomp_mode(pid: int | str = "self") -> int | None:
    """The ``Seccomp:`` field of ``/proc/PID/status`` (0 off, 1 strict, 2 filter), or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Seccomp:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
