/* msr/: the IA32_VMX_* capability MSRs 0x480-0x491 of the Intel flavour (Linux 6.12
 * vmx/nested.c nested_vmx_setup_ctls_msrs, vmx_get_vmx_msr, vmx_set_vmx_msr and the
 * vmx_restore_* rules; vmx.c nested_vmx_cr_fixed1_bits_update).
 *
 * The values are what KVM 6.12 reports for a CPU like softkvm's, restricted to the
 * controls emu/vmx.c implements (no EPT, no APIC virtualization, no VMCS shadowing, no
 * monitor trap flag, no PERF_GLOBAL_CTRL loading: those bits stay 0 in the allowed-1
 * halves). They live in struct cpu (vmx_caps) because emu/vmx.c checks VMXON and VM
 * entries against the vCPU's current values, as KVM checks vmx->nested.msrs. */
#include "msr/handlers.h"
#include "msr/vmx_caps.h"

/* guest_cpu_cap_has(VMX): CPUID.VMX and kvm_intel nested (vmx_set_cpu_caps) */
static bool guest_vmx(const struct msr_vcpu *v)
{
    return v->feat.vmx && v->vm->nested_vmx;
}

static uint64_t ctl(uint32_t lo, uint32_t hi)
{
    return (uint64_t)hi << 32 | lo;
}

/* nested_vmx_cr_fixed1_bits_update: CR4 bits the guest CPUID allows, plus PCE; CR0 all. */
static uint64_t cr4_fixed1(const struct msr_guest_features *f, const struct msr_vcpu *v)
{
    uint64_t r = 1u << 8; /* PCE */
    const struct kvm_cpuid_entry2 *l1 = NULL, *l7 = NULL;
    for (unsigned i = 0; i < v->ncpuid; i++) {
        if (v->cpuid[i].function == 1)
            l1 = &v->cpuid[i];
        if (v->cpuid[i].function == 7 && v->cpuid[i].index == 0)
            l7 = &v->cpuid[i];
    }
    (void)f;
    if (l1) {
        uint32_t d = l1->edx, c = l1->ecx;
        if (d & (1u << 1)) r |= 1u << 0 | 1u << 1; /* VME: VME, PVI */
        if (d & (1u << 4)) r |= 1u << 2;          /* TSC: TSD */
        if (d & (1u << 2)) r |= 1u << 3;          /* DE */
        if (d & (1u << 3)) r |= 1u << 4;          /* PSE */
        if (d & (1u << 6)) r |= 1u << 5;          /* PAE */
        if (d & (1u << 7)) r |= 1u << 6;          /* MCE */
        if (d & (1u << 13)) r |= 1u << 7;         /* PGE */
        if (d & (1u << 24)) r |= 1u << 9;         /* FXSR: OSFXSR */
        if (d & (1u << 25)) r |= 1u << 10;        /* XMM: OSXMMEXCPT */
        if (c & (1u << 5)) r |= 1u << 13;         /* VMX: VMXE */
        if (c & (1u << 6)) r |= 1u << 14;         /* SMX: SMXE */
        if (c & (1u << 17)) r |= 1u << 17;        /* PCID: PCIDE */
        if (c & (1u << 26)) r |= 1u << 18;        /* XSAVE: OSXSAVE */
    }
    if (l7) {
        if (l7->ebx & (1u << 0)) r |= 1u << 16;  /* FSGSBASE */
        if (l7->ebx & (1u << 7)) r |= 1u << 20;  /* SMEP */
        if (l7->ebx & (1u << 20)) r |= 1u << 21; /* SMAP */
        if (l7->ecx & (1u << 3)) r |= 1u << 22;  /* PKU: PKE */
        if (l7->ecx & (1u << 2)) r |= 1u << 11;  /* UMIP */
        if (l7->ecx & (1u << 16)) r |= 1u << 12; /* LA57 */
    }
    return r;
}

void msr_vmx_caps_default(struct emu_vmx_caps *c)
{
    *c = (struct emu_vmx_caps){0};
    /* nested_vmx_setup_basic: KVM's vmcs12 revision and size, write-back memory type,
     * TRUE_CTLS, INS/OUTS instruction information */
    c->basic = VMX_CAP_BASIC;
    c->pin_lo = VMX_PIN_ALWAYSON;
    c->pin_hi = VMX_PIN_ALLOWED;
    c->proc_lo = VMX_PROC_DEFAULT1;
    c->proc_hi = VMX_PROC_ALLOWED;
    c->exit_lo = VMX_EXIT_DEFAULT1;
    c->exit_hi = VMX_EXIT_ALLOWED;
    c->entry_lo = VMX_ENTRY_DEFAULT1;
    c->entry_hi = VMX_ENTRY_ALLOWED;
    c->proc2_lo = 0;
    c->proc2_hi = VMX_PROC2_ALLOWED;
    c->misc = VMX_CAP_MISC;
    c->cr0_fixed0 = VMX_CR0_FIXED0;
    c->cr0_fixed1 = 0xffffffffu;
    c->cr4_fixed0 = VMX_CR4_FIXED0;
    c->cr4_fixed1 = VMX_CR4_FIXED1_DEFAULT;
    c->vmcs_enum = VMX_CAP_VMCS_ENUM;
    c->ept_vpid = VMX_CAP_EPT_VPID;
    c->vmfunc = 0;
}

void msr_vmx_caps_cpuid_changed(struct msr_vcpu *v)
{
    if (v->vm->vendor != MSR_VENDOR_INTEL || !guest_vmx(v))
        return;
    v->cpu->vmx_caps.cr0_fixed1 = 0xffffffffu;
    v->cpu->vmx_caps.cr4_fixed1 = cr4_fixed1(&v->feat, v);
}

/* vmx_get_vmx_msr; the non-TRUE control MSRs add the default-1 bits. */
int msr_vmx_cap_read(const struct emu_vmx_caps *c, uint32_t index, uint64_t *val)
{
    switch (index) {
    case 0x480: *val = c->basic; return 0;
    case 0x481: *val = ctl(c->pin_lo | VMX_PIN_ALWAYSON, c->pin_hi); return 0;
    case 0x482: *val = ctl(c->proc_lo | VMX_PROC_ALWAYSON, c->proc_hi); return 0;
    case 0x483: *val = ctl(c->exit_lo | VMX_EXIT_ALWAYSON, c->exit_hi); return 0;
    case 0x484: *val = ctl(c->entry_lo | VMX_ENTRY_ALWAYSON, c->entry_hi); return 0;
    case 0x485: *val = c->misc; return 0;
    case 0x486: *val = c->cr0_fixed0; return 0;
    case 0x487: *val = c->cr0_fixed1; return 0;
    case 0x488: *val = c->cr4_fixed0; return 0;
    case 0x489: *val = c->cr4_fixed1; return 0;
    case 0x48a: *val = c->vmcs_enum; return 0;
    case 0x48b: *val = ctl(c->proc2_lo, c->proc2_hi); return 0;
    case 0x48c: *val = c->ept_vpid; return 0;
    case 0x48d: *val = ctl(c->pin_lo, c->pin_hi); return 0;
    case 0x48e: *val = ctl(c->proc_lo, c->proc_hi); return 0;
    case 0x48f: *val = ctl(c->exit_lo, c->exit_hi); return 0;
    case 0x490: *val = ctl(c->entry_lo, c->entry_hi); return 0;
    case 0x491: *val = c->vmfunc; return 0;
    default: return 1;
    }
}

int msr_get_vmx_cap(struct msr_vcpu *v, uint32_t index, uint64_t *val, bool host)
{
    (void)host;
    /* vmx_get_msr: only with VMX in the guest CPUID, host reads included */
    if (!guest_vmx(v))
        return MSR_RET_INVAL;
    return msr_vmx_cap_read(&v->cpu->vmx_caps, index, val) ? MSR_RET_INVAL : MSR_RET_OK;
}

static bool subset(uint64_t superset, uint64_t sub, uint64_t mask)
{
    superset &= mask;
    sub &= mask;
    return (superset | sub) == superset;
}

/* vmx_restore_control_msr: must-be-1 bits (low half) still 1, may-be-1 (high) a subset. */
static int restore_ctl(uint32_t sup_lo, uint32_t sup_hi, uint64_t data, uint32_t *lo, uint32_t *hi)
{
    uint64_t sup = ctl(sup_lo, sup_hi);
    if (!subset(data, sup, 0xffffffffull) || !subset(sup, data, 0xffffffff00000000ull))
        return MSR_RET_INVAL;
    *lo = (uint32_t)data;
    *hi = (uint32_t)(data >> 32);
    return MSR_RET_OK;
}

int msr_set_vmx_cap(struct msr_vcpu *v, uint32_t index, uint64_t data, bool host)
{
    struct emu_vmx_caps *c = &v->cpu->vmx_caps, d;
    if (!host || !guest_vmx(v))
        return MSR_RET_INVAL; /* read-only for the guest; host needs VMX in CPUID */
    if (v->cpu->vmxon && !v->cpu->vmx_leave_req)
        return MSR_RET_INVAL; /* vmx_set_vmx_msr: -EBUSY in VMX operation */
    msr_vmx_caps_default(&d); /* vmcs_config.nested: what KVM supports */
    switch (index) {
    case 0x480: { /* vmx_restore_vmx_basic */
        const uint64_t features = 1ull << 49 | 1ull << 54 | 1ull << 55;
        const uint64_t reserved = 0xff00000000000000ull | 0x0000e00000000000ull | 1ull << 31;
        if (!subset(d.basic, data, features | reserved) || (data & (1ull << 48)))
            return MSR_RET_INVAL;
        if ((uint32_t)data != (uint32_t)d.basic)
            return MSR_RET_INVAL; /* revision id */
        if (((d.basic >> 32) & 0x1fff) > ((data >> 32) & 0x1fff))
            return MSR_RET_INVAL; /* VMCS size */
        c->basic = data;
        return MSR_RET_OK;
    }
    case 0x48d: return restore_ctl(d.pin_lo, d.pin_hi, data, &c->pin_lo, &c->pin_hi);
    case 0x48e: return restore_ctl(d.proc_lo, d.proc_hi, data, &c->proc_lo, &c->proc_hi);
    case 0x48f: return restore_ctl(d.exit_lo, d.exit_hi, data, &c->exit_lo, &c->exit_hi);
    case 0x490: return restore_ctl(d.entry_lo, d.entry_hi, data, &c->entry_lo, &c->entry_hi);
    case 0x48b: return restore_ctl(d.proc2_lo, d.proc2_hi, data, &c->proc2_lo, &c->proc2_hi);
    case 0x485: { /* vmx_restore_vmx_misc */
        const uint64_t features = 1u << 5 | 1u << 6 | 1u << 7 | 1u << 8 | 1u << 14 | 1u << 15 |
                                  1u << 28 | 1u << 29 | 1u << 30;
        const uint64_t reserved = 1ull << 31 | 0x3e00u;
        if (!subset(d.misc, data, features | reserved))
            return MSR_RET_INVAL;
        if ((c->pin_hi & VMX_PIN_PREEMPTION_TIMER) && (data & 0x1f) != (d.misc & 0x1f))
            return MSR_RET_INVAL; /* preemption timer rate */
        if (((data >> 16) & 0x1ff) > ((d.misc >> 16) & 0x1ff))
            return MSR_RET_INVAL; /* CR3 target count */
        if (((data >> 25) & 7) > ((d.misc >> 25) & 7))
            return MSR_RET_INVAL; /* max MSR list size */
        if ((data >> 32) != (d.misc >> 32))
            return MSR_RET_INVAL; /* MSEG revision */
        c->misc = data;
        return MSR_RET_OK;
    }
    case 0x486: /* vmx_restore_fixed0_msr: must-be-1 bits stay 1 */
        if (!subset(data, d.cr0_fixed0, ~0ull))
            return MSR_RET_INVAL;
        c->cr0_fixed0 = data;
        return MSR_RET_OK;
    case 0x488:
        if (!subset(data, d.cr4_fixed0, ~0ull))
            return MSR_RET_INVAL;
        c->cr4_fixed0 = data;
        return MSR_RET_OK;
    case 0x48c: /* every bit is a feature or reserved */
        if (!subset(d.ept_vpid, data, ~0ull))
            return MSR_RET_INVAL;
        c->ept_vpid = data;
        return MSR_RET_OK;
    case 0x48a:
        c->vmcs_enum = data;
        return MSR_RET_OK;
    case 0x491:
        if (data & ~d.vmfunc)
            return MSR_RET_INVAL;
        c->vmfunc = data;
        return MSR_RET_OK;
    default:
        /* the non-TRUE controls and CR0/CR4_FIXED1 are derived: not restorable */
        return MSR_RET_INVAL;
    }
}
