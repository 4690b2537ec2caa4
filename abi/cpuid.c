/* abi/: the virtual CPU model reported by KVM_GET_SUPPORTED_CPUID.
 *
 * One coherent model, two vendor flavours (Intel default when the host is Intel,
 * AMD otherwise; SOFTKVM_VENDOR=intel|amd overrides). Only features the emulator
 * implements are advertised; everything else reads as absent. Layout of each leaf:
 * SDM vol.2A "CPUID", APM vol.3 appendix E; KVM leaves per
 * Documentation/virt/kvm/x86/cpuid.rst. */
#include <cpuid.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "abi/abi_internal.h"

#define B(n) (1u << (n))

/* CPUID.1:EDX: FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT PSE36
 * CLFSH MMX FXSR SSE SSE2 */
#define LEAF1_EDX                                                                          \
    (B(0) | B(1) | B(2) | B(3) | B(4) | B(5) | B(6) | B(7) | B(8) | B(9) | B(11) | B(12) |  \
     B(13) | B(14) | B(15) | B(16) | B(17) | B(19) | B(23) | B(24) | B(25) | B(26))
/* CPUID.1:ECX: SSE3 SSSE3 CX16 SSE4.1 SSE4.2 x2APIC POPCNT TSC-deadline XSAVE AVX
 * HYPERVISOR (emu implements AVX with the YMM state component) */
#define LEAF1_ECX                                                                          \
    (B(0) | B(9) | B(13) | B(19) | B(20) | B(21) | B(23) | B(24) | B(26) | B(28) | B(31))
/* CPUID.7.0:EBX: FSGSBASE TSC_ADJUST ERMS */
#define LEAF7_EBX (B(0) | B(1) | B(9))
/* CPUID.80000001:EDX: SYSCALL NX PDPE1GB LM; ECX: LAHF/SAHF */
#define EXT1_EDX (B(11) | B(20) | B(26) | B(29))
#define EXT1_ECX (B(0))
/* APM: on AMD, 80000001.EDX mirrors these CPUID.1:EDX bits */
#define AMD_EXT1_EDX_MIRROR                                                                \
    (B(0) | B(1) | B(2) | B(3) | B(4) | B(5) | B(6) | B(7) | B(8) | B(9) | B(12) | B(13) |  \
     B(14) | B(15) | B(16) | B(17) | B(23) | B(24))
/* 6.12 cpuid.c KVM_CPUID_FEATURES (1240-1256, cpuid.rst): CLOCKSOURCE 0, NOP_IO_DELAY 1,
 * CLOCKSOURCE2 3, ASYNC_PF 4, STEAL_TIME 5, PV_EOI 6, PV_UNHALT 7 (KVM_HC_KICK_CPU),
 * PV_TLB_FLUSH 9, ASYNC_PF_VMEXIT 10, PV_SEND_IPI 11 (KVM_HC_SEND_IPI), POLL_CONTROL 12,
 * PV_SCHED_YIELD 13, ASYNC_PF_INT 14, CLOCKSOURCE_STABLE_BIT 24. The async-PF, PV-EOI and
 * PV-TLB-flush MSRs and fields are accepted; softkvm never injects an async page fault,
 * never sets the PV EOI skip bit nor steal time's `preempted`, so a guest takes its normal
 * paths, as it does whenever KVM chooses not to use them. */
#define KVM_PV_FEATURES                                                                     \
    (B(0) | B(1) | B(3) | B(4) | B(5) | B(6) | B(7) | B(9) | B(10) | B(11) | B(12) | B(13) | \
     B(14) | B(24))

#define XCR0_SUPPORTED 0x7ull /* x87 | SSE | AVX (YMM_Hi128) */
#define XSAVE_LEGACY_SIZE 576  /* legacy area 512 + header 64 (SDM vol.1 13.4) */
#define XSAVE_YMM_OFFSET 576
#define XSAVE_YMM_SIZE 256
#define XSAVE_FULL_SIZE (XSAVE_YMM_OFFSET + XSAVE_YMM_SIZE)

uint64_t abi_supported_xcr0(void)
{
    return XCR0_SUPPORTED;
}

enum abi_vendor abi_vendor_current(void)
{
    const char *env = getenv("SOFTKVM_VENDOR");
    if (env && strcasecmp(env, "amd") == 0)
        return ABI_VENDOR_AMD;
    if (env && strcasecmp(env, "intel") == 0)
        return ABI_VENDOR_INTEL;
    unsigned a, b, c, d;
    if (__get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541 /* "Auth" */)
        return ABI_VENDOR_AMD;
    return ABI_VENDOR_INTEL;
}

struct builder {
    struct kvm_cpuid_entry2 *out;
    unsigned n, cap;
};

static void put(struct builder *bd, uint32_t fn, uint32_t idx, bool sig, uint32_t a, uint32_t b,
                uint32_t c, uint32_t d)
{
    if (bd->n >= bd->cap)
        return;
    struct kvm_cpuid_entry2 *e = &bd->out[bd->n++];
    memset(e, 0, sizeof *e);
    e->function = fn;
    e->index = idx;
    e->flags = sig ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
    e->eax = a;
    e->ebx = b;
    e->ecx = c;
    e->edx = d;
}

static uint32_t str4(const char *s)
{
    uint32_t v;
    memcpy(&v, s, 4);
    return v;
}

static void put_brand(struct builder *bd)
{
    char brand[48] = "softkvm virtual x86-64 CPU";
    for (int i = 0; i < 3; i++)
        put(bd, 0x80000002 + i, 0, false, str4(brand + 16 * i), str4(brand + 16 * i + 4),
            str4(brand + 16 * i + 8), str4(brand + 16 * i + 12));
}

unsigned abi_supported_cpuid(enum abi_vendor vendor, struct kvm_cpuid_entry2 *out, unsigned cap)
{
    struct builder bd = {out, 0, cap};
    bool amd = vendor == ABI_VENDOR_AMD;
    const char *v = amd ? "AuthenticAMD" : "GenuineIntel";
    /* leaf 0: max basic leaf, vendor in EBX EDX ECX */
    put(&bd, 0, 0, false, 0xd, str4(v), str4(v + 8), str4(v + 4));
    /* leaf 1: family/model/stepping (Intel 6/0x55/4, AMD 0x17/0x31/0), CLFLUSH line 8*8 */
    /* Intel: VMX for an L1 hypervisor (emu/vmx.c), as vmx_set_cpu_caps with nested=1 */
    put(&bd, 1, 0, false, amd ? 0x00830f10 : 0x00050654, 0x00000800,
        LEAF1_ECX | (amd ? 0 : B(5) | B(15) /* PDCM: PERF_CAPABILITIES */), LEAF1_EDX);
    if (!amd) {
        /* leaf 2: "use leaf 4" descriptor (0xff) */
        put(&bd, 2, 0, false, 0x00ff0001, 0, 0, 0);
        /* leaf 4: L1d 32K, L1i 32K, L2 1M, then the type-0 terminator (KVM includes it) */
        put(&bd, 4, 0, true, 0x00000121, 0x01c0003f, 0x0000003f, 0);
        put(&bd, 4, 1, true, 0x00000122, 0x01c0003f, 0x0000003f, 0);
        put(&bd, 4, 2, true, 0x00000143, 0x03c0003f, 0x000003ff, 0);
        put(&bd, 4, 3, true, 0, 0, 0, 0);
    }
    put(&bd, 6, 0, false, B(2) /* ARAT */, 0, 0, 0);
    put(&bd, 7, 0, true, 0, LEAF7_EBX, 0, 0);
    /* leaf 0xa: the vPMU (msr/pmu.c), as kvm_set_cpu_caps / __do_cpuid_func report
     * kvm_pmu_cap: version 2, 4 GP counters of 48 bits, 7 architectural events (EBX: all
     * available), 3 fixed counters of 48 bits */
    if (!amd)
        put(&bd, 0xa, 0, false, 2 | 4u << 8 | 48u << 16 | 7u << 24, 0, 0, 3 | 48u << 5);
    /* leaf 0xd: XSAVE with x87|SSE|AVX. EBX = size for the XCR0 in force (KVM reports
     * the legacy size here; the CPUID instruction recomputes it from XCR0), ECX = max */
    put(&bd, 0xd, 0, true, (uint32_t)XCR0_SUPPORTED, XSAVE_LEGACY_SIZE, XSAVE_FULL_SIZE, 0);
    /* 0xd.1: XSAVEC and XSAVES (emu/xsave_insn.c, compacted format); EBX = compacted size
     * of every permitted component (KVM: xstate_required_size(xcr0 | xss, true)); no
     * supervisor components (kvm_caps.supported_xss = 0 in 6.12), so ECX = EDX = 0 and
     * IA32_XSS stays 0 (msr/h_misc.c). XSAVEOPT and XGETBV1 are not offered. */
    put(&bd, 0xd, 1, true, B(1) | B(3), XSAVE_FULL_SIZE, 0, 0);
    put(&bd, 0xd, 2, true, XSAVE_YMM_SIZE, XSAVE_YMM_OFFSET, 0, 0);
    /* KVM paravirt leaves */
    put(&bd, 0x40000000, 0, false, 0x40000001, str4("KVMK"), str4("VMKV"), str4("M\0\0\0"));
    put(&bd, 0x40000001, 0, false, KVM_PV_FEATURES, 0, 0, 0);
    /* extended leaves */
    if (amd)
        put(&bd, 0x80000000, 0, false, 0x8000000a, str4(v), str4(v + 8), str4(v + 4));
    else
        put(&bd, 0x80000000, 0, false, 0x80000008, 0, 0, 0);
    /* AMD: SVM for an L1 hypervisor (emu/svm.c), as svm_set_cpu_caps with nested=1 */
    put(&bd, 0x80000001, 0, false, 0, 0, EXT1_ECX | (amd ? B(2) : 0),
        EXT1_EDX | (amd ? (LEAF1_EDX & AMD_EXT1_EDX_MIRROR) : 0));
    put_brand(&bd);
    put(&bd, 0x80000006, 0, false, 0, 0, 0x04008040, 0); /* L2 1M, 64B lines */
    put(&bd, 0x80000007, 0, false, 0, 0, 0, B(8));      /* invariant TSC */
    put(&bd, 0x80000008, 0, false, 0x3030 /* 48 phys, 48 virt */, 0, 0, 0);
    /* leaf 0x8000000A (cpuid.c): revision 1, 8 ASIDs; EDX: NRIPS, VMCBCLEAN (clean bits
     * are hints: emu/svm.c reloads everything), FLUSHBYASID (every transition flushes),
     * SVME_ADDR_CHK. No NPT yet: L1's nested paging is missing in softkvm so far. */
    if (amd)
        put(&bd, 0x8000000a, 0, false, 1, 8, 0, B(3) | B(5) | B(6) | B(28));
    return bd.n;
}

/* KVM_GET_EMULATED_CPUID: features KVM emulates beyond the hardware. Everything our
 * emulator does is already "supported", so the list is empty. */
unsigned abi_emulated_cpuid(struct kvm_cpuid_entry2 *out, unsigned cap)
{
    (void)out;
    (void)cap;
    return 0;
}

const struct kvm_cpuid_entry2 *abi_cpuid_find(const struct kvm_cpuid_entry2 *e, unsigned n,
                                              uint32_t function, uint32_t index)
{
    for (unsigned i = 0; i < n; i++)
        if (e[i].function == function &&
            (!(e[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e[i].index == index))
            return &e[i];
    return NULL;
}

/* CR4 bits a guest may set given its CPUID (KVM __cr4_reserved_bits()). */
uint64_t abi_cr4_reserved_bits(const struct kvm_cpuid_entry2 *e, unsigned n)
{
    const struct kvm_cpuid_entry2 *l1 = abi_cpuid_find(e, n, 1, 0);
    const struct kvm_cpuid_entry2 *l7 = abi_cpuid_find(e, n, 7, 0);
    uint32_t c1 = l1 ? l1->ecx : 0, b7 = l7 ? l7->ebx : 0, c7 = l7 ? l7->ecx : 0;
    uint32_t d7 = l7 ? l7->edx : 0;
    (void)d7;
    /* always allowed: VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT */
    uint64_t ok = 0x7ff;
    if (c1 & B(5))
        ok |= B(13); /* VMXE */
    if (c1 & B(6))
        ok |= B(14); /* SMXE */
    if (b7 & B(0))
        ok |= B(16); /* FSGSBASE */
    if (c1 & B(17))
        ok |= B(17); /* PCIDE */
    if (c1 & B(26))
        ok |= B(18); /* OSXSAVE */
    if (b7 & B(7))
        ok |= B(20); /* SMEP */
    if (b7 & B(20))
        ok |= B(21); /* SMAP */
    if (c7 & B(2))
        ok |= B(11); /* UMIP */
    if (c7 & B(16))
        ok |= B(12); /* LA57 */
    if (c7 & B(3))
        ok |= B(22); /* PKE */
    return ~ok;
}

unsigned abi_maxphyaddr(const struct kvm_cpuid_entry2 *e, unsigned n)
{
    const struct kvm_cpuid_entry2 *x = abi_cpuid_find(e, n, 0x80000008, 0);
    unsigned w = (x && (x->eax & 0xff)) ? (x->eax & 0xff) : 36;
    return w > 52 ? 52 : w; /* at most 52 bits on x86 (SDM vol.3 4.1.4); used as a shift */
}
