/* msr-explain: the steps issue 15 made exact, each stated for the access asked about, with
 * the Linux 6.12 source that decides it: the CPL check before everything (--cpl), MSR
 * accesses the CPU makes by itself (--implicit INSN), filter replacement while running,
 * the filter against KVM's pass-through, KVM_CAP_ENFORCE_PV_FEATURE_CPUID (--enforce-pv,
 * --pv-bits) and what INIT does to the MSR. */
#include <stdio.h>
#include <string.h>

#include "msr/bitmap.h"
#include "msr/internal.h"
#include "msr_explain.h"

bool explain_cpl(FILE *o, unsigned cpl)
{
    if (cpl == 0) {
        fprintf(o, "1. CPL check (the CPU's): CPL 0 -> allowed to execute RDMSR/WRMSR\n");
        return false;
    }
    fprintf(o, "1. CPL check (the CPU's): CPL %u > 0 -> #GP(0) before anything below: no MSR\n"
               "   bitmap bit, no MSR filter, no in-kernel handler, no user-space exit\n"
               "   (SDM vol.3 26.1.1 / APM vol.2 15.7: the CPL fault precedes the intercept;\n"
               "   Linux 6.12 emulate.c x86_emulate_insn 5154-5161 for the Priv RDMSR/WRMSR)\n",
            cpl);
    return true;
}

/* Which MSRs each instruction reads or writes inside the CPU. */
static const struct {
    const char *insn;
    uint32_t index;
    bool writes;
    const char *how;
} implicit[] = {
    {"syscall", MSR_STAR, false, "CS/SS selectors from STAR[47:32]"},
    {"syscall", MSR_LSTAR, false, "64-bit entry point"},
    {"syscall", MSR_CSTAR, false, "compatibility-mode entry point"},
    {"syscall", MSR_SYSCALL_MASK, false, "RFLAGS mask"},
    {"sysret", MSR_STAR, false, "CS/SS selectors from STAR[63:48]"},
    {"sysenter", MSR_IA32_SYSENTER_CS, false, "CS/SS selectors"},
    {"sysenter", MSR_IA32_SYSENTER_ESP, false, "stack pointer"},
    {"sysenter", MSR_IA32_SYSENTER_EIP, false, "entry point"},
    {"sysexit", MSR_IA32_SYSENTER_CS, false, "CS/SS selectors (+16/+24, 64-bit +32/+40)"},
    {"swapgs", MSR_KERNEL_GS_BASE, true, "exchanged with GS.base"},
    {"swapgs", MSR_GS_BASE, true, "exchanged with KERNEL_GS_BASE"},
    {"rdtscp", MSR_TSC_AUX, false, "loaded into ECX"},
    {"rdpid", MSR_TSC_AUX, false, "loaded into the destination"},
};

int explain_implicit(FILE *o, uint32_t idx, const char *insn)
{
    bool known = false;
    for (unsigned i = 0; i < sizeof(implicit) / sizeof(implicit[0]); i++) {
        if (strcmp(implicit[i].insn, insn))
            continue;
        known = true;
        if (implicit[i].index != idx)
            continue;
        fprintf(o, "implicit access: %s %s MSR 0x%08x inside the CPU (%s)\n", insn,
                implicit[i].writes ? "reads and writes" : "reads", idx, implicit[i].how);
        fprintf(o, "   no RDMSR/WRMSR executes: no MSR-bitmap check, not subject to the filter,\n"
                   "   never deflected to user space, no CPL check of its own; when KVM emulates\n"
                   "   the instruction it reads the MSR with kvm_get_msr, the unfiltered path\n"
                   "   (Linux 6.12 x86.c emulator_get_msr 8060-8064; emulate.c em_syscall\n"
                   "   2341-2406, em_sysenter 2408-2459, em_sysexit 2461-2510), while the\n"
                   "   filter is consulted only by kvm_get/set_msr_with_filter (x86.c 1542-1554)\n");
        return 0;
    }
    return known ? -1 : -2;
}

void explain_filter_change(FILE *o, const struct msr_vcpu *v, uint32_t idx, bool write)
{
    (void)v;
    (void)write;
    if (idx >= MSR_X2APIC_FIRST && idx <= MSR_X2APIC_LAST)
        return;
    fprintf(o, "   a new KVM_X86_SET_MSR_FILTER while the vCPU runs: this access is decided by\n"
               "   one whole filter, the old or the new, never a mix; intercepted accesses use\n"
               "   the new one as soon as the ioctl returned (x86.c kvm_vm_ioctl_set_msr_filter\n"
               "   6423-6426: pointer swap + synchronize_srcu; kvm_msr_allowed 1379-1420 reads it\n"
               "   once); pass-through bits are recomputed at KVM_REQ_MSR_FILTER_CHANGED (6431,\n"
               "   vcpu_enter_guest 10450-10451: the vCPU's next entry; softkvm: its next MSR\n"
               "   access, msr/bitmap.h msr_bitmap_intercepted)\n");
}

void explain_pt_filter(FILE *o, const struct msr_vcpu *v, uint32_t idx, bool write)
{
    unsigned n;
    const struct msr_passthrough *pt = msr_passthrough_list(&n);
    bool amd = v->vm->vendor == MSR_VENDOR_AMD;
    for (unsigned i = 0; i < n; i++) {
        if (pt[i].index != idx)
            continue;
        enum msr_pt_policy pol = amd ? (write ? pt[i].svm_w : pt[i].svm_r) : (write ? pt[i].vmx_w : pt[i].vmx_r);
        if (!msr_pt_policy_holds(v, pol, i, write))
            return;
        if (msr_filter_allows(v->filter, idx, write ? KVM_MSR_FILTER_WRITE : KVM_MSR_FILTER_READ))
            return;
        fprintf(o, "   the filter denies it: intercepted although KVM would pass it through (%s\n"
                   "   re-applies the filter to every pass-through MSR: Linux 6.12 %s)\n",
                amd ? "svm_msr_filter_changed" : "vmx_msr_filter_changed",
                amd ? "svm.c 924-940, set_msr_interception_bitmap 841-845"
                    : "vmx.c 4166-4192, vmx_disable_intercept_for_msr 4033-4047");
        return;
    }
}

static int pv_bit_of(enum msr_gate g)
{
    switch (g) {
    case GATE_PV_CLOCKSOURCE: return 0;
    case GATE_PV_CLOCKSOURCE2: return 3;
    case GATE_PV_ASYNC_PF: return 4;
    case GATE_PV_STEAL_TIME: return 5;
    case GATE_PV_EOI: return 6;
    case GATE_PV_POLL_CONTROL: return 12;
    case GATE_PV_ASYNC_PF_INT: return 14;
    default: return -1;
    }
}

void explain_pv(FILE *o, const struct msr_vcpu *v, uint32_t idx)
{
    const struct msr_entry *e = msr_table_lookup(v->vm->vendor, idx);
    int bit = e ? pv_bit_of(e->gate) : -1;
    if (bit < 0)
        return;
    if (!v->enforce_pv_cpuid) {
        fprintf(o, "   KVM_CAP_ENFORCE_PV_FEATURE_CPUID off: allowed whatever CPUID 0x40000001\n"
                   "   says (cpuid.h guest_pv_has 214-221)\n");
        return;
    }
    bool has = (v->feat.kvm_features >> bit) & 1;
    fprintf(o, "   KVM_CAP_ENFORCE_PV_FEATURE_CPUID on: CPUID 0x40000001.EAX = 0x%x, bit %d %s\n", v->feat.kvm_features,
            bit, has ? "set -> allowed" : "clear -> KVM_MSR_RET_UNSUPPORTED: reason UNKNOWN (x86.c kvm_msr_reason 1602-1611)");
}

/* What kvm_vcpu_reset(vcpu, init_event = true) does to the MSR (Linux 6.12). */
const char *explain_init_rule(enum msr_vendor vendor, uint32_t idx)
{
    bool amd = vendor == MSR_VENDOR_AMD;
    switch (idx) {
    case MSR_IA32_CR_PAT: case MSR_IA32_MISC_ENABLE: case 0x140: case MSR_IA32_SMBASE:
        return "kept (x86.c kvm_vcpu_reset 11748-11759: set on RESET only)";
    case MSR_IA32_XSS:
        return "kept (x86.c kvm_vcpu_reset 11758: cleared on RESET only)";
    case MSR_IA32_APICBASE:
        return "kept (lapic.c kvm_lapic_reset 2814-2826: set on RESET only)";
    case MSR_IA32_SYSENTER_CS: case MSR_IA32_SYSENTER_ESP: case MSR_IA32_SYSENTER_EIP:
        return amd ? "kept (svm.c init_vmcb never writes them)"
                   : "kept (vmx.c init_vmcs 4852-4854 runs from __vmx_vcpu_reset, RESET only)";
    case MSR_STAR: case MSR_LSTAR: case MSR_CSTAR: case MSR_SYSCALL_MASK: case MSR_KERNEL_GS_BASE:
    case MSR_TSC_AUX:
        return "kept (no reset path writes it)";
    case MSR_IA32_FEAT_CTL:
        return "kept (no reset path writes msr_ia32_feature_control)";
    case MSR_SMI_COUNT:
        return "reset to 0 (x86.c kvm_vcpu_reset 11705)";
    case MSR_KVM_ASYNC_PF_EN: case MSR_KVM_ASYNC_PF_INT:
        return "reset to 0 (x86.c kvm_vcpu_reset 11721-11722)";
    case MSR_KVM_STEAL_TIME:
        return "reset to 0 (x86.c kvm_vcpu_reset 11723)";
    case MSR_KVM_SYSTEM_TIME: case MSR_KVM_SYSTEM_TIME_NEW:
        return "reset to 0 (x86.c kvm_vcpu_reset 11725 kvmclock_reset)";
    case MSR_KVM_PV_EOI_EN:
        return "reset to 0 (lapic.c kvm_lapic_reset 2871)";
    case MSR_EFER:
        return "reset to 0 (x86.c kvm_vcpu_reset 11796 set_efer(vcpu, 0))";
    case MSR_IA32_SPEC_CTRL:
        return amd ? "reset to 0 (svm.c svm_vcpu_reset 1402)" : "reset to 0 (vmx.c vmx_vcpu_reset 4909)";
    case MSR_IA32_UMWAIT_CONTROL:
        return amd ? NULL : "reset to 0 (vmx.c vmx_vcpu_reset 4911)";
    case MSR_AMD64_VIRT_SPEC_CTRL:
        return amd ? "reset to 0 (svm.c svm_vcpu_reset 1403)" : NULL;
    default:
        if ((idx >= MSR_MTRRphysBase0 && idx <= MSR_MTRRfix4K_F8000) || idx == MSR_MTRRdefType)
            return "kept (kvm_vcpu_reset never touches the MTRR state)";
        return NULL;
    }
}
