"""The caches CPU 0 sees, as Linux's sysfs lists them: what L-BFGS sizes its
blocks of examples to (:mod:`fastnn._sklearn_lbfgs`) and the L3 the
report's machine probe states (:mod:`fastnn.report.machine`)."""

import glob
import os
import re

__all__ = ["size_bytes", "cpu0_caches"]


def size_bytes(text):
    """Bytes of a cache size as sysfs, lscpu or py-cpuinfo write it
    ("32768K", "32 MiB", "32768 KB", 33554432), or None."""
    if isinstance(text, int):
        return text or None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?\s*", str(text or ""), re.I)
    if not match:
        return None
    return int(float(match.group(1)) * 1024 ** " KMG".index(match.group(2).upper() or " "))


def _cpu_count(listing):
    """How many CPUs a sysfs CPU list ("0-1,4") names."""
    return sum(int(hi or lo) - int(lo) + 1
               for lo, _, hi in (span.partition("-") for span in listing.split(",")))


def cpu0_caches():
    """``[(level, bytes, cpus sharing it)]`` of every cache CPU 0 sees (L1's
    data and instruction caches each), in sysfs's order; ``[]`` where sysfs
    does not say (not Linux), an entry it garbles left out."""
    caches = []
    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            with open(os.path.join(index, "level")) as f:
                level = int(f.read())
            with open(os.path.join(index, "size")) as f:
                size = size_bytes(f.read().strip())
            with open(os.path.join(index, "shared_cpu_list")) as f:
                cpus = _cpu_count(f.read().strip())
        except (OSError, ValueError):
            continue
        if size:
            caches.append((level, size, max(1, cpus)))
    return caches
