# cython: language_level=3
"""What this CPU can run: asked before any ISA-specific kernel module is
imported (importing one the CPU can't run would die of SIGILL). Built with
the compiler's default target, no -march, so it runs on every x86-64 CPU."""

cdef extern from *:
    """
    #include <string.h>
    /* __builtin_cpu_supports takes only string literals: one line per name. */
    static int fastnn_cpu_supports(const char* name)
    {
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
        __builtin_cpu_init();
    #define FASTNN_CPU_FEATURE(s) if (strcmp(name, s) == 0) return __builtin_cpu_supports(s) != 0;
        FASTNN_CPU_FEATURE("x86-64-v2") FASTNN_CPU_FEATURE("x86-64-v3")
        FASTNN_CPU_FEATURE("x86-64-v4") FASTNN_CPU_FEATURE("sse4.2")
        FASTNN_CPU_FEATURE("avx") FASTNN_CPU_FEATURE("avx2") FASTNN_CPU_FEATURE("fma")
        FASTNN_CPU_FEATURE("avx512f") FASTNN_CPU_FEATURE("avx512bw")
        FASTNN_CPU_FEATURE("avx512dq") FASTNN_CPU_FEATURE("avx512vl")
    #undef FASTNN_CPU_FEATURE
    #endif
        return 0;
    }
    """
    bint fastnn_cpu_supports(const char* name) nogil


#: The kernel sets (fastnn_ext._kernels_<isa>), best first, and the x86-64
#: microarchitecture level each needs: x86-64-v4 has AVX-512 F/BW/CD/DQ/VL,
#: x86-64-v3 AVX2, FMA, BMI1/2, F16C, MOVBE; x86-64-v2 SSE4.2, POPCNT.
LEVELS = {"avx512": "x86-64-v4", "avx2": "x86-64-v3", "baseline": "x86-64-v2"}


def supports(str isa):
    """Whether this CPU (and its OS: AVX state saved on context switches) runs
    the kernel set ``isa``."""
    if isa not in LEVELS:
        raise ValueError(f"isa must be one of {list(LEVELS)}, got {isa!r}")
    return fastnn_cpu_supports(LEVELS[isa].encode())


def features():
    """The CPU features the kernel sets care about, as ``{name: bool}``."""
    names = ("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl")
    return {name: fastnn_cpu_supports(name.encode()) for name in names}
