"""`tradewind.processes.collapse_heap_into_huge_pages`: a warm parent's densely used
memory goes into 2 MB folios where the kernel can do that; sparse memory is left alone,
so the call never inflates a process; a system set to never use huge pages is left
alone; and it never fails, wherever it runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tradewind.processes import _huge_pages_refused, _writable_private_range

# Runs in a process of its own: maps one dense and one sparse private region, collapses,
# and reports what the kernel says of each region afterwards.
PROBE = textwrap.dedent(
    """
    import ctypes, json, mmap
    from tradewind.processes import collapse_heap_into_huge_pages

    HUGE = 2 * 1024 * 1024
    PAGE = mmap.PAGESIZE

    def region(size):
        m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        return m, ctypes.addressof(ctypes.c_char.from_buffer(m))

    dense, dense_at = region(12 * HUGE)
    for offset in range(0, len(dense), PAGE):
        dense[offset] = 1
    sparse, sparse_at = region(12 * HUGE)
    for offset in range(0, len(sparse), HUGE):
        sparse[offset] = 1  # one page in every 2 MB

    libc = ctypes.CDLL(None)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]

    def resident_pages(at, size):
        vector = ctypes.create_string_buffer(size // PAGE)
        assert libc.mincore(at, size, vector) == 0
        return sum(byte & 1 for byte in vector.raw)

    def huge_kb(at, size):
        inside, total = False, 0
        for line in open("/proc/self/smaps"):
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                start, end = (int(x, 16) for x in head.split("-"))
                inside = start < at + size and at < end
            elif inside and head == "AnonHugePages:":
                total += int(line.split()[1])
        return total

    collapsed = collapse_heap_into_huge_pages()
    print(json.dumps({
        "collapsed": collapsed,
        "dense_huge_kb": huge_kb(dense_at, len(dense)),
        "sparse_resident": resident_pages(sparse_at, len(sparse)),
        "dense_still_ours": all(dense[o] == 1 for o in range(0, len(dense), PAGE)),
    }))
    """
)


def probe() -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout)


def test_dense_memory_is_collapsed_where_the_kernel_can_and_sparse_memory_never_grows() -> None:
    seen = probe()
    # Sparse: 12 pages touched in 24 MB; collapsing that would make 24 MB resident.
    assert seen["sparse_resident"] <= 12 * 2
    assert seen["dense_still_ours"]
    if seen["collapsed"]:  # a kernel with MADV_COLLAPSE (Linux 6.1+, THP not disabled)
        # At least 10 of the 12 huge-page spans of the dense region (its ends need not
        # be aligned), which the kernel may already have been mapping huge by itself.
        assert seen["dense_huge_kb"] >= 10 * 2048
        assert seen["collapsed"] >= 10 * 2 * 1024 * 1024


def test_only_private_writable_anonymous_memory_and_the_heap_are_candidates() -> None:
    lines = {
        "7f0000000000-7f0000400000 rw-p 00000000 00:00 0 ": (0x7F0000000000, 0x7F0000400000),
        "55d000000000-55d000800000 rw-p 00000000 00:00 0    [heap]": (
            0x55D000000000,
            0x55D000800000,
        ),
        "7f0000400000-7f0000800000 r--p 00000000 00:00 0 ": None,
        "7f0000800000-7f0000c00000 rw-s 00000000 00:01 42   /dev/zero (deleted)": None,
        "7f0000c00000-7f0001000000 rw-p 0001d000 08:01 1234 /usr/lib/libpython3.11.so": None,
        "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0    [stack]": None,
        "": None,
    }
    for line, expected in lines.items():
        assert _writable_private_range(line) == expected, line


def test_a_system_set_to_never_use_huge_pages_is_left_alone(tmp_path: Path) -> None:
    setting = tmp_path / "enabled"
    setting.write_text("always madvise [never]\n")
    assert _huge_pages_refused(str(setting))
    setting.write_text("always [madvise] never\n")
    assert not _huge_pages_refused(str(setting))
    assert not _huge_pages_refused(str(tmp_path / "missing"))
