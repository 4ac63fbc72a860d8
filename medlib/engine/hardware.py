"""What this machine is good at, decided per machine: allocator, precision, memory layout, memory budget.

Measured on 2-core CPUs (see benchmarks/cpu3d.py): glibc returns every large freed activation to the kernel
and faults it in again on the next step, so 3D training spent more time in the kernel than in PyTorch;
bf16 autocast is ~2x faster where the CPU has native bf16 (AVX512-BF16 / AMX) and several times slower
where it is emulated (AVX2). Nothing here is chosen blindly: each choice reads the machine first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from ..config import normalize_layout, normalize_precision
from ..errors import MedlibError

_tuned = False


@dataclass
class StepSettings:
    """How steps run on this device (resolved once per run): precision and memory layout."""

    precision: str = "fp32"
    channels_last: bool = False
    scaling: str = "centered"  # how uint8 inputs become floats (config.scaling)


# gperftools' tcmalloc keeps freed memory in the process (no re-faulting) in size classes that small
# allocations cannot fragment: DenseNet-3D at Report 2's batch 30 peaked at 1.97 GiB at 6.0 cubes/s, against
# glibc tuned 3.56 GiB at 5.9 and glibc's defaults 1.93 GiB at 3.7 (benchmarks/results/cpu3d-native.json).
# A release rate of 10 (gperftools' default 1) hands freed spans back sooner: 2.10 -> 1.98 GiB at the same speed
# (one run each, measured beside the benchmark).
TCMALLOC_NAMES = ("tcmalloc_minimal", "tcmalloc")
TCMALLOC_ENV = {"TCMALLOC_RELEASE_RATE": "10"}
MALLOC_CHOICES = ("auto", "glibc", "system")  # MEDLIB_MALLOC: auto (tcmalloc if installed, else glibc tuned)


def malloc_choice(environ=os.environ) -> str:
    value = environ.get("MEDLIB_MALLOC", "").strip().lower() or "auto"
    if value not in MALLOC_CHOICES:
        raise MedlibError(f"MEDLIB_MALLOC={value!r} is not one of {', '.join(MALLOC_CHOICES)}; unset it for auto.")
    return value


def find_tcmalloc(prefix: str | None = None) -> str | None:
    """tcmalloc where a package put it: this Python's own lib/ (conda's gperftools) or the system's library
    path (Debian/Ubuntu: libtcmalloc-minimal4). None when neither has it."""
    lib = Path(prefix or sys.prefix) / "lib"
    for name in TCMALLOC_NAMES:
        own = sorted(lib.glob(f"lib{name}.so*"))
        found = str(own[0]) if own else ctypes.util.find_library(name)
        if found:
            return found
    return None


def loaded_allocator() -> str:
    """'tcmalloc' or 'jemalloc' when one is loaded into this process (LD_PRELOAD), else 'glibc'."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "glibc"
    return next((name for name in ("tcmalloc", "jemalloc") if f"lib{name}" in maps), "glibc")


def tcmalloc_relaunch_env(environ, library: str | None) -> dict | None:
    """The environment to start this command again with tcmalloc preloaded, or None: MEDLIB_MALLOC glibc or
    system, not Linux, no tcmalloc installed, or already tried (MEDLIB_MALLOC_RELAUNCHED)."""
    if malloc_choice(environ) in ("glibc", "system") or platform.system() != "Linux" or not library:
        return None
    if environ.get("MEDLIB_MALLOC_RELAUNCHED") or "tcmalloc" in environ.get("LD_PRELOAD", ""):
        return None
    preload = ":".join(p for p in (library, environ.get("LD_PRELOAD", "")) if p)
    return {**TCMALLOC_ENV, **environ, "LD_PRELOAD": preload, "MEDLIB_MALLOC_RELAUNCHED": "1"}


def tune_allocator() -> bool:
    """Keep freed memory inside the process, so big activations are not re-faulted every step: tcmalloc when it
    is loaded (nothing to do), else glibc's mallopt (every freed block kept: fast, but it hoards up to 2.5x
    the live peak). MEDLIB_MALLOC=system keeps glibc's defaults. Returns True when freed memory is kept.

    Large blocks normally go straight back to the kernel (mmap / munmap) and every page is faulted in again
    on the next step.
    """
    global _tuned
    choice = malloc_choice()
    if _tuned or choice == "system" or platform.system() != "Linux":
        return _tuned
    if loaded_allocator() == "tcmalloc":
        _tuned = True
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 2**31 - 1)
        ok = ok and libc.mallopt(m_top_pad, 64 << 20)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    _tuned = bool(ok)
    return _tuned


def allocator_state() -> str:
    loaded = loaded_allocator()  # one read of /proc/self/maps
    if loaded != "glibc":
        return f"{loaded} (LD_PRELOAD)"
    return "glibc mallopt (keep freed memory)" if _tuned else "system default"


@lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (AVX512-BF16 or AMX-BF16); emulated bf16 is slower than fp32.

    A CPU whose kernels are capped below AVX-512 (ATEN_CPU_CAPABILITY=avx2, as benchmarks/cpu3d.py --isa avx2
    runs an AVX2 machine's code on an AVX-512 one) has no native bf16 kernels either."""
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    if capability in ("DEFAULT", "NO AVX", "AVX", "AVX2", "ZVECTOR", "VSX"):
        return False
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    if probe is not None and probe():
        return True
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if amx is not None and amx():
        return True
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(amp, device: torch.device) -> str:
    """'bf16' or 'fp32' for this device: auto picks bf16 on Ampere+ GPUs and on CPUs with native bf16 only."""
    amp = normalize_precision(amp)
    if amp == "fp32":
        return "fp32"
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        native = cpu_has_native_bf16()
    else:
        native = False  # mps: autocast to bf16 is not dependable yet
    if amp == "bf16" and not native and device.type != "cpu":
        raise MedlibError(f"--amp bf16 is not supported on {device}; use --amp auto or fp32.")
    return "bf16" if amp == "bf16" or native else "fp32"


def use_channels_last(value, device: torch.device, dims: int) -> bool:
    """auto: channels_last on CUDA (tensor cores) and on CPU, 2D and 3D: oneDNN's fastest layout on AVX2 and
    AVX-512 alike (benchmarks/cpu2d.py: ResNet-18 and -50 at 28 px, fp32 and bf16, both stems)."""
    value = normalize_layout(value)
    if value != "auto":
        return value == "on"
    return device.type in ("cuda", "cpu")


def memory_format(dims: int):
    return torch.channels_last if dims == 2 else torch.channels_last_3d


def _host_bytes(meminfo_key: str, sysconf_pages: str) -> int:
    """A /proc/meminfo figure in bytes, else sysconf's page count (macOS, BSD), else 0 (unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(meminfo_key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf(sysconf_pages) * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


CGROUP_ROOT = "/sys/fs/cgroup"
_UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a number near 2**63


def _read_int(path) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # cgroup v2 writes "max" for no limit


def _self_vm_bytes() -> int:
    """This process's address space now (VmSize), what RLIMIT_AS counts; 0 if unknown."""
    try:
        with open("/proc/self/status") as f:
            return next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:")), 0)
    except OSError:
        return 0


def address_limit() -> tuple[int, int] | None:
    """(limit, used) of RLIMIT_AS (`ulimit -v`, SLURM's --mem on some sites), or None when unlimited."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError, AttributeError):
        return None
    if soft in (resource.RLIM_INFINITY, -1) or soft <= 0:
        return None
    return soft, _self_vm_bytes()


def cgroup_entries(proc_cgroup: str = "/proc/self/cgroup") -> list[tuple[str, str]] | None:
    """(controllers, path) of each of this process's cgroups ("0::/path" in v2: no controllers; "N:memory:/path" in
    v1), or None when the file cannot be read (not Linux)."""
    try:
        with open(proc_cgroup) as f:
            return [tuple(line.strip().split(":", 2)[1:]) for line in f if line.count(":") >= 2]
    except OSError:
        return None


def cgroup_limit(root: str = CGROUP_ROOT, proc_cgroup: str = "/proc/self/cgroup") -> tuple[int, int] | None:
    """(limit, used) of this process's memory cgroup (docker --memory, Kubernetes, SLURM), v2 or v1; None if none."""
    v2 = v1 = ""  # this process's cgroup paths; unknown: the root's own files still count
    for controllers, path in cgroup_entries(proc_cgroup) or ():
        v2 = path if controllers == "" else v2
        v1 = path if "memory" in controllers.split(",") else v1
    v1_root = os.path.join(root, "memory")
    candidates = [
        (os.path.join(root, v2.lstrip("/")), "memory.max", "memory.current"),
        (root, "memory.max", "memory.current"),
        (os.path.join(v1_root, v1.lstrip("/")), "memory.limit_in_bytes", "memory.usage_in_bytes"),
        (v1_root, "memory.limit_in_bytes", "memory.usage_in_bytes"),
    ]
    for folder, limit_name, used_name in candidates:
        limit = _read_int(os.path.join(folder, limit_name))
        if limit is not None and 0 < limit < _UNLIMITED:
            return limit, _read_int(os.path.join(folder, used_name)) or 0
    return None


def process_limits() -> list[tuple[int, int]]:
    """Every (limit, used) that caps this process's memory below the machine's: RLIMIT_AS and the cgroup."""
    return [lim for lim in (address_limit(), cgroup_limit()) if lim is not None]


def available_bytes(device: torch.device) -> int:
    """Free memory for tensors on `device`: on CPU MemAvailable (4 GiB if unknown), lowered to what RLIMIT_AS and
    the memory cgroup still allow; free device memory on CUDA."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    free = _host_bytes("MemAvailable", "SC_AVPHYS_PAGES") or 4 << 30
    return min([free, *(max(limit - used, 0) for limit, used in process_limits())])


def total_bytes(device: torch.device) -> int:
    """All the memory of `device`: on CPU MemTotal (the free memory if unknown), lowered to the RLIMIT_AS and cgroup
    limits (a container's or a SLURM job's memory, not the host's); the card's total on CUDA."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[1])
    total = _host_bytes("MemTotal", "SC_PHYS_PAGES") or available_bytes(device)
    return min([total, *(limit for limit, _ in process_limits())])


@lru_cache(maxsize=None)
def sgemm_gflops(n: int = 2048, repeats: int = 10) -> float:
    """This machine's fp32 matrix-multiply rate (GFLOP/s) with torch's current threads: the yardstick for 'fast'."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9


def step_settings(cfg, device: torch.device, dims: int):
    """The precision and layout a config trains and evaluates with on `device`."""
    return StepSettings(
        resolve_precision(cfg.amp, device),
        use_channels_last(cfg.channels_last, device, dims),
        getattr(cfg, "scaling", "centered"),
    )


def _cgroup_cpu_quota(root: str = "/sys/fs/cgroup", proc: str = "/proc/self/cgroup") -> float | None:
    """CPUs' worth of time this process's cgroup may use (cgroup v2 cpu.max or v1 cfs quota), None if unlimited."""
    entries = cgroup_entries(proc)
    for controllers, path in entries or ():
        path = path.lstrip("/")
        if controllers == "":  # v2: "max 100000" or "150000 100000", the nearest limit up the tree counts
            parts = path.split("/") if path else []
            for depth in range(len(parts), -1, -1):
                try:
                    with open(os.path.join(root, *parts[:depth], "cpu.max")) as f:
                        quota, period = f.read().split()[:2]
                except (OSError, ValueError):
                    continue
                if quota != "max":
                    return int(quota) / int(period)
        elif "cpu" in controllers.split(","):  # v1
            for base in (os.path.join(root, "cpu", path), os.path.join(root, "cpu,cpuacct", path)):
                try:
                    with open(os.path.join(base, "cpu.cfs_quota_us")) as f:
                        quota = int(f.read())
                    with open(os.path.join(base, "cpu.cfs_period_us")) as f:
                        period = int(f.read())
                except (OSError, ValueError):
                    continue
                if quota > 0 and period > 0:
                    return quota / period
    return None


def usable_cpus() -> int:
    """How many CPUs this process may really use: its affinity mask, capped by its cgroup's CPU quota.

    torch starts one thread per core of the machine; in a container limited to 1.5 CPUs or a job pinned to
    two cores of many, the extra OpenMP threads only wait on each other (issue 26: ResNet-18 at 2 threads
    ran at 22 img/s on a busy 2-core machine, at 1 thread at 77).
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        n = min(n, max(1, int(quota)))  # a fraction of a CPU more is not a thread's worth
    return max(1, n)
