/* The host CPUID a program under softkvm sees: with the virtualization bit, and MONITOR.
 *
 * Some VMMs look for VMX/SVM with the CPUID instruction before they open /dev/kvm
 * (kvmtool's kvm__arch_cpu_supports_vm: leaf 1 ECX.VMX on Intel, 0x80000001 ECX.SVM on
 * AMD) — on the hosts softkvm is for, the bit is clear, though /dev/kvm works. An
 * instruction cannot be interposed like a libc call, but Linux's CPUID faulting can trap
 * it: arch_prctl(ARCH_SET_CPUID, 0) makes CPUID at CPL 3 raise SIGSEGV in this thread and
 * its children (inherited across fork/clone, reset by execve, where the shim is loaded
 * again). The SIGSEGV handler (preload.c) asks host_cpuid_emulate; it runs the real
 * CPUID with faulting briefly off, adds the bit of the host's vendor and steps over the
 * instruction. Hosts without CPUID faulting (the kernel says ENODEV) keep the plain
 * CPUID; SOFTKVM_HOST_CPUID=plain turns it off.
 *
 * MONITOR/MWAIT (CPUID.1:ECX[3]): what KVM requires of the host for its MWAIT handling
 * (x86.c kvm_can_mwait_in_guest, and the selftests' this_cpu_has(X86_FEATURE_MWAIT)) is
 * about the CPU guests run on — here softkvm's model, which has both (emu/insn_system.c),
 * whether or not the real host exposes them. Both are CPL-0 instructions, so no program
 * reading the bit can execute them itself.
 *
 * Vendor: with SOFTKVM_VENDOR naming the other vendor than the host's, leaf 0 (and
 * 0x80000000) carry that vendor's name, and the virtualization bit is that vendor's. */
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "abi/preload/host_cpuid.h"

#define ECX_VMX (1u << 5)  /* CPUID.1:ECX (SDM vol.2 table 3-10) */
#define ECX_SVM (1u << 2)  /* CPUID.80000001h:ECX (APM vol.3 E.4.2) */
#define ECX_MONITOR (1u << 3) /* CPUID.1:ECX */

static int set_cpuid(int enabled) { return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled); }

/* SOFTKVM_VENDOR, read once here (the signal handler cannot call getenv): 0 = the host's
 * vendor, 1 = Intel, 2 = AMD */
static int flavour;

bool host_cpuid_init(void)
{
    const char *v = getenv("SOFTKVM_VENDOR");
    flavour = v && !strcasecmp(v, "intel") ? 1 : v && !strcasecmp(v, "amd") ? 2 : 0;
    const char *e = getenv("SOFTKVM_HOST_CPUID");
    if (e && strcmp(e, "plain") == 0)
        return false;
    return set_cpuid(0) == 0;
}

static const uint32_t vendor_intel[3] = {0x756e6547, 0x49656e69, 0x6c65746e}; /* EBX EDX ECX */
static const uint32_t vendor_amd[3] = {0x68747541, 0x69746e65, 0x444d4163};

bool host_cpuid_emulate(siginfo_t *info, void *uctx)
{
    /* CPUID faulting is a #GP, delivered as SIGSEGV with SI_KERNEL */
    if (info->si_code != SI_KERNEL || !uctx)
        return false;
    mcontext_t *m = &((ucontext_t *)uctx)->uc_mcontext;
    const uint8_t *ip = (const uint8_t *)m->gregs[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2)
        return false;
    uint32_t leaf = (uint32_t)m->gregs[REG_RAX], sub = (uint32_t)m->gregs[REG_RCX];
    uint32_t a, b, c, d, vb, vc, vd, va;
    if (set_cpuid(1) != 0)
        return false;
    __cpuid_count(leaf, sub, a, b, c, d);
    __cpuid(0, va, vb, vc, vd);
    set_cpuid(0);
    (void)va;
    bool intel = vb == vendor_intel[0] && vd == vendor_intel[1] && vc == vendor_intel[2];
    bool amd = vb == vendor_amd[0] && vd == vendor_amd[1] && vc == vendor_amd[2];
    /* A flavour other than the host's vendor (SOFTKVM_VENDOR): the program sees that
     * vendor's name, as it would on such a host. The selftests choose VMCALL or VMMCALL,
     * and the kvm_intel or kvm_amd parameters, by the host's vendor (host_cpu_is_intel). */
    if (flavour && (flavour == 1) != intel) {
        const uint32_t *n = flavour == 1 ? vendor_intel : vendor_amd;
        if (leaf == 0)
            b = n[0], d = n[1], c = n[2];
        if (leaf == 0x80000000) /* AMD repeats the name here; Intel has zeros */
            b = flavour == 2 ? n[0] : 0, d = flavour == 2 ? n[1] : 0, c = flavour == 2 ? n[2] : 0;
        intel = flavour == 1;
        amd = flavour == 2;
    }
    if (leaf == 1 && intel)
        c |= ECX_VMX;
    if (leaf == 1)
        c |= ECX_MONITOR;
    if (leaf == 0x80000001 && amd)
        c |= ECX_SVM;
    /* CPUID writes the 32-bit results zero-extended (SDM vol.2 CPUID) */
    m->gregs[REG_RAX] = a;
    m->gregs[REG_RBX] = b;
    m->gregs[REG_RCX] = c;
    m->gregs[REG_RDX] = d;
    m->gregs[REG_RIP] += 2;
    return true;
}
