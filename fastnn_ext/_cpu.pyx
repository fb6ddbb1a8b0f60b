# cython: language_level=3
"""What this CPU can run: asked before any ISA-specific kernel module is
imported (importing one the CPU can't run would die of SIGILL). Built with
the compiler's default target, no -march, so it runs on every x86-64 CPU.

The features are read with CPUID, and XGETBV says whether the OS saves the
AVX / AVX-512 registers on a context switch -- what an x86-64-vN level needs,
asked one feature at a time, so any gcc or clang compiles it."""

cdef extern from *:
    """
    #if defined(__GNUC__) && defined(__x86_64__)
    #include <cpuid.h>
    #define FASTNN_X86_64 1
    static unsigned long long fastnn_xgetbv0(void)
    {
        unsigned int lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        return ((unsigned long long)hi << 32) | lo;
    }
    /* Bit masks of the features a kernel set needs, by CPUID register. */
    typedef struct { unsigned int l1_ecx, l7_ebx, ext_ecx; unsigned long long xcr0; } fastnn_need;
    static int fastnn_cpu_has(fastnn_need need)
    {
        unsigned int a, b, c, d, l1_ecx = 0, l7_ebx = 0, ext_ecx = 0;
        if (__get_cpuid(1, &a, &b, &c, &d)) l1_ecx = c;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) l7_ebx = b;
        if (__get_cpuid(0x80000001, &a, &b, &c, &d)) ext_ecx = c;
        if ((l1_ecx & need.l1_ecx) != need.l1_ecx || (l7_ebx & need.l7_ebx) != need.l7_ebx
                || (ext_ecx & need.ext_ecx) != need.ext_ecx)
            return 0;
        if (need.xcr0 == 0)
            return 1;
        /* XGETBV exists only with OSXSAVE (leaf 1, ECX bit 27). */
        return (l1_ecx & (1u << 27)) && (fastnn_xgetbv0() & need.xcr0) == need.xcr0;
    }
    /* x86-64-v2: SSE3 0, SSSE3 9, CX16 13, SSE4.1 19, SSE4.2 20, POPCNT 23; LAHF (ext 0). */
    static const fastnn_need FASTNN_V2 = {(1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20)
                                          | (1u << 23), 0, 1u << 0, 0};
    /* x86-64-v3: v2 + FMA 12, MOVBE 22, AVX 28, F16C 29; BMI1 3, AVX2 5, BMI2 8;
     * LZCNT (ext 5); the OS saving SSE and AVX state (XCR0 bits 1, 2). */
    static const fastnn_need FASTNN_V3 = {(1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20)
                                          | (1u << 23) | (1u << 12) | (1u << 22) | (1u << 28)
                                          | (1u << 29),
                                          (1u << 3) | (1u << 5) | (1u << 8), (1u << 0) | (1u << 5),
                                          0x6};
    /* x86-64-v4: v3 + AVX512 F 16, DQ 17, CD 28, BW 30, VL 31; the OS saving the
     * opmask and upper ZMM state too (XCR0 bits 5, 6, 7). */
    static const fastnn_need FASTNN_V4 = {(1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20)
                                          | (1u << 23) | (1u << 12) | (1u << 22) | (1u << 28)
                                          | (1u << 29),
                                          (1u << 3) | (1u << 5) | (1u << 8) | (1u << 16) | (1u << 17)
                                          | (1u << 28) | (1u << 30) | (1u << 31),
                                          (1u << 0) | (1u << 5), 0xe6};
    static int fastnn_cpu_level(int level)
    {
        if (level <= 1) return 1;
        return fastnn_cpu_has(level == 2 ? FASTNN_V2 : level == 3 ? FASTNN_V3 : FASTNN_V4);
    }
    #else
    #define FASTNN_X86_64 0
    static int fastnn_cpu_level(int level) { return 0; }
    #endif
    #ifndef FASTNN_BASELINE_LEVEL
    #define FASTNN_BASELINE_LEVEL 2
    #endif
    """
    bint FASTNN_X86_64
    int FASTNN_BASELINE_LEVEL
    bint fastnn_cpu_level(int level) nogil

#: The kernel sets (fastnn_ext._kernels_<isa>), best first, and the x86-64
#: microarchitecture level each needs: x86-64-v4 has AVX-512 F/BW/CD/DQ/VL,
#: x86-64-v3 AVX2, FMA, BMI1/2, F16C, MOVBE, LZCNT; x86-64-v2 SSE4.2, POPCNT.
#: The baseline's is the build's (setup.py's FASTNN_MARCH; 0 for "native":
#: built for this CPU kind, trusted as asked).
LEVELS = {"avx512": 4, "avx2": 3, "baseline": FASTNN_BASELINE_LEVEL}


def supports(str isa):
    """Whether this CPU (and its OS: AVX state saved on context switches) runs
    the kernel set ``isa``. Off x86-64 only the baseline exists, and runs."""
    if isa not in LEVELS:
        raise ValueError(f"isa must be one of {list(LEVELS)}, got {isa!r}")
    if not FASTNN_X86_64:
        return isa == "baseline"
    return LEVELS[isa] == 0 or fastnn_cpu_level(LEVELS[isa])


def features():
    """``{"x86-64-v2": bool, "x86-64-v3": bool, "x86-64-v4": bool}`` for this CPU."""
    return {f"x86-64-v{level}": bool(FASTNN_X86_64 and fastnn_cpu_level(level))
            for level in (2, 3, 4)}
