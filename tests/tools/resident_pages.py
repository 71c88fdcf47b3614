#!/usr/bin/env python3
"""How much of a file is in the page cache: resident pages and the runs they form (mincore(2)).

    python3 tests/tools/resident_pages.py FILE [--runs]

Used by tests/tools/cold_scan.sh to show how much of the plugin binary a scan read from disk.
"""
import ctypes
import os
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_pages(path):
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    PROT_READ, MAP_SHARED = 1, 1
    address = libc.mmap(None, size, PROT_READ, MAP_SHARED, fd, 0)
    pages = (size + PAGE - 1) // PAGE
    flags = (ctypes.c_ubyte * pages)()
    if libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(size), flags) != 0:
        raise OSError(ctypes.get_errno(), "mincore failed")
    os.close(fd)
    return pages, [i for i in range(pages) if flags[i] & 1]


def main():
    path = sys.argv[1]
    pages, resident = resident_pages(path)
    runs = []
    for page in resident:
        if runs and page == runs[-1][1] + 1:
            runs[-1][1] = page
        else:
            runs.append([page, page])
    kib = len(resident) * PAGE // 1024
    print(f"{path}: {len(resident)} of {pages} pages in the page cache ({kib} KiB) in {len(runs)} runs")
    if "--runs" in sys.argv:
        for first, last in runs:
            print(f"  {first * PAGE:#x}-{(last + 1) * PAGE:#x} ({last - first + 1} pages)")


if __name__ == "__main__":
    main()
