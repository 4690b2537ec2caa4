/* msr/: APIC base / x2APIC, MISC_ENABLE, FEATURE_CONTROL, PLATFORM_INFO, speculation
 * control, capability MSRs, XSS, UMWAIT, XFD, microcode, SMM and the fixed-value MSRs
 * (KVM x86.c kvm_get/set_msr_common, vmx.c vmx_get/set_msr, lapic.c kvm_apic_set_base). */
#include "msr/internal.h"
#include "msr/bitmap.h"

/* ---- APIC base and x2APIC (SDM vol.3 11.4.4, 11.12.1) ---- */
#define APICBASE_BSP (1ull << 8)
#define APICBASE_EXTD (1ull << 10)
#define APICBASE_EN (1ull << 11)

enum apic_mode { APIC_DISABLED, APIC_INVALID, APIC_XAPIC, APIC_X2APIC };
static enum apic_mode apic_mode(uint64_t base)
{
    switch (base & (APICBASE_EN | APICBASE_EXTD)) {
    case 0: return APIC_DISABLED;
    case APICBASE_EXTD: return APIC_INVALID;
    case APICBASE_EN: return APIC_XAPIC;
    default: return APIC_X2APIC;
    }
}

int msr_get_apic_base(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->cpu->apic_base;
    return MSR_RET_OK;
}

int msr_set_apic_base(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    unsigned w = v->feat.maxphyaddr ? v->feat.maxphyaddr : 36;
    uint64_t reserved = (~0ull << w) | 0x2ff | (v->feat.x2apic ? 0 : APICBASE_EXTD);
    enum apic_mode old = apic_mode(v->cpu->apic_base), nw = apic_mode(val);
    if ((val & reserved) || nw == APIC_INVALID)
        return MSR_RET_INVAL;
    if (!host) {
        /* x2APIC -> xAPIC and disabled -> x2APIC are illegal transitions */
        if ((old == APIC_X2APIC && nw == APIC_XAPIC) || (old == APIC_DISABLED && nw == APIC_X2APIC))
            return MSR_RET_INVAL;
    }
    uint64_t prev = v->cpu->apic_base;
    v->cpu->apic_base = val;
    if (v->apic.base_changed)
        v->apic.base_changed(v->apic.ctx, prev, val, host);
    return MSR_RET_OK;
}

/* x2APIC registers: only with an in-kernel APIC in x2APIC mode (lapic.c kvm_x2apic_msr_*);
 * otherwise the access fails (reason INVAL, as KVM returns 1). */
int msr_get_x2apic(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)host;
    if (!v->apic.read || apic_mode(v->cpu->apic_base) != APIC_X2APIC)
        return MSR_RET_INVAL;
    return v->apic.read(v->apic.ctx, i, val) ? MSR_RET_INVAL : MSR_RET_OK;
}

int msr_set_x2apic(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)host;
    if (!v->apic.write || apic_mode(v->cpu->apic_base) != APIC_X2APIC)
        return MSR_RET_INVAL;
    return v->apic.write(v->apic.ctx, i, val) ? MSR_RET_INVAL : MSR_RET_OK;
}

/* ---- MISC_ENABLE (SDM vol.4 IA32_MISC_ENABLE) ---- */
#define MISC_EMON (1ull << 7)
#define MISC_PMU_RO (1ull << 11 | 1ull << 12) /* BTS/PEBS unavailable */
#define MISC_MWAIT (1ull << 18)                /* ENABLE_MONITOR_FSM */

int msr_get_misc_enable(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.misc_enable;
    return MSR_RET_OK;
}

int msr_set_misc_enable(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    uint64_t old = v->k.misc_enable;
    if (!host) {
        if ((old ^ val) & MISC_PMU_RO)
            return MSR_RET_INVAL;
        val = (val & ~MISC_EMON) | (old & MISC_EMON); /* EMON: writes ignored */
    }
    /* MWAIT bit (18): with KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT (the default) stored as is.
     * Without the quirk a change of it, host or guest, needs SSE3 in the guest's CPUID and
     * rewrites CPUID.1:ECX.MONITOR to match (6.12 x86.c kvm_set_msr_common
     * MSR_IA32_MISC_ENABLE -> kvm_update_cpuid_runtime, cpuid.c) */
    if (v->vm->misc_enable_mwait_cpuid && ((old ^ val) & MISC_MWAIT)) {
        if (!v->feat.sse3)
            return MSR_RET_INVAL;
        v->cpu->cpuid_mwait = (val & MISC_MWAIT) ? EMU_CPUID_MWAIT_SET : EMU_CPUID_MWAIT_CLEAR;
    }
    v->k.misc_enable = val;
    return MSR_RET_OK;
}

/* ---- IA32_FEATURE_CONTROL (spec section 5; vmx.c is_vmx_feature_control_msr_valid) ---- */
uint64_t msr_feature_control_guest_valid(const struct msr_vcpu *v)
{
    uint64_t bits = FEAT_CTL_LOCKED;
    /* 6.12 vmx.c vmx_vcpu_after_set_cpuid (7840, 7849-7855): the VMX bits need
     * guest_cpu_cap_has(VMX), i.e. CPUID.VMX AND kvm_cpu_cap VMX, which vmx_set_cpu_caps
     * (7964-7965) sets only with nested=1 */
    if (v->feat.vmx && v->vm->nested_vmx)
        bits |= FEAT_CTL_VMX_IN_SMX | FEAT_CTL_VMX_OUT_SMX;
    if (v->feat.sgx)
        bits |= FEAT_CTL_SGX;
    if (v->feat.sgx_lc)
        bits |= FEAT_CTL_SGX_LC;
    if (v->k.mcg_cap & (1ull << 27)) /* MCG_LMCE_P */
        bits |= FEAT_CTL_LMCE;
    return bits;
}

int msr_get_feature_control(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.feature_control;
    return MSR_RET_OK;
}

int msr_set_feature_control(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    if (!host && (v->k.feature_control & FEAT_CTL_LOCKED))
        return MSR_RET_INVAL;
    uint64_t valid = host ? FEAT_CTL_HOST_VALID : msr_feature_control_guest_valid(v);
    if (val & ~valid)
        return MSR_RET_INVAL;
    v->k.feature_control = val;
    v->cpu->feature_control = val;
    if (host && val == 0) {
        v->in_vmx_operation = false; /* vmx_leave_nested() */
        if (v->cpu->vmxon)
            v->cpu->vmx_leave_req = true; /* emu/vmx.c leaves at the next run / state read */
    }
    return MSR_RET_OK;
}

/* ---- PLATFORM_INFO / MISC_FEATURES_ENABLES (CPUID faulting) ---- */
int msr_get_platform_info(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i;
    if (!host && !v->vm->platform_info_readable)
        return MSR_RET_INVAL;
    *val = v->k.platform_info;
    return MSR_RET_OK;
}

int msr_set_platform_info(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    /* host only; CPUID faulting cannot be withdrawn while the guest uses it */
    if (!host || (!(val & MSR_PLATFORM_INFO_CPUID_FAULT) && (v->k.misc_features_enables & 1)))
        return MSR_RET_INVAL;
    v->k.platform_info = val;
    return MSR_RET_OK;
}

int msr_get_misc_features(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.misc_features_enables;
    return MSR_RET_OK;
}

int msr_set_misc_features(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    if ((val & ~1ull) || ((val & 1) && !(v->k.platform_info & MSR_PLATFORM_INFO_CPUID_FAULT)))
        return MSR_RET_INVAL;
    v->k.misc_features_enables = val;
    return MSR_RET_OK;
}

/* ---- speculation control ---- */
int msr_get_spec_ctrl(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->cpu->spec_ctrl;
    return MSR_RET_OK;
}

int msr_set_spec_ctrl(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    (void)host;
    if (val & ~msr_spec_ctrl_valid_bits(v)) /* kvm_spec_ctrl_test_value: what "hardware" takes */
        return MSR_RET_INVAL;
    v->cpu->spec_ctrl = val;
    /* First non-zero write (guest or host, e.g. a restore): KVM stops intercepting SPEC_CTRL
     * (vmx_set_msr / svm_set_msr). */
    if (val)
        msr_passthrough_enable(v, MSR_IA32_SPEC_CTRL, true, true);
    return MSR_RET_OK;
}

int msr_set_pred_cmd(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    uint64_t reserved = ~((1ull << 0) | (1ull << 7)); /* IBPB | SBPB */
    if (!host) {
        if (!(v->feat.spec_ctrl || v->feat.amd_ibpb))
            reserved |= 1ull << 0;
        if (!v->feat.sbpb)
            reserved |= 1ull << 7;
    }
    reserved |= 1ull << 7; /* our "hardware" has no SBPB */
    return (val & reserved) ? MSR_RET_INVAL : MSR_RET_OK;
}

int msr_set_flush_cmd(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)v; (void)i; (void)host;
    return (val & ~1ull) ? MSR_RET_INVAL : MSR_RET_OK;
}

/* ---- capability MSRs (feature MSRs: host-writable, immutable for the guest) ---- */
int msr_get_arch_cap(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.arch_capabilities;
    return MSR_RET_OK;
}

int msr_set_arch_cap(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    if (!host)
        return MSR_RET_INVAL;
    v->k.arch_capabilities = val;
    return MSR_RET_OK;
}

int msr_get_perf_cap(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.perf_capabilities;
    return MSR_RET_OK;
}

int msr_set_perf_cap(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    /* 6.12 x86.c kvm_set_msr_common MSR_IA32_PERF_CAPABILITIES: host-only, within
     * kvm_caps.supported_perf_cap (vmx_set_msr's LBR/PEBS format checks are covered: the
     * supported value has neither); a change refreshes the PMU (full-width counters) */
    if (!host || (val & ~msr_pmu_supported_perf_cap(v->vm->vendor)))
        return MSR_RET_INVAL;
    if (v->k.perf_capabilities == val)
        return MSR_RET_OK;
    v->k.perf_capabilities = val;
    msr_pmu_refresh(v);
    return MSR_RET_OK;
}

int msr_get_ucode_rev(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.ucode_rev;
    return MSR_RET_OK;
}

int msr_set_ucode_rev(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    if (host) /* guest writes are accepted and dropped */
        v->k.ucode_rev = val;
    return MSR_RET_OK;
}

/* ---- XSS / UMWAIT / XFD ---- */
int msr_get_xss(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->cpu->xss;
    return MSR_RET_OK;
}

int msr_set_xss(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    if (val) /* kvm_caps.supported_xss is 0 in 6.12 (no supervisor XSAVE state) */
        return MSR_RET_INVAL;
    v->cpu->xss = val;
    return MSR_RET_OK;
}

int msr_get_umwait(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.umwait_control;
    return MSR_RET_OK;
}

int msr_set_umwait(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    if (val & ((1ull << 1) | 0xffffffff00000000ull)) /* bit 1 and 63:32 reserved */
        return MSR_RET_INVAL;
    v->k.umwait_control = val;
    return MSR_RET_OK;
}

int msr_get_xfd(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)host;
    *val = i == MSR_IA32_XFD ? v->k.xfd : v->k.xfd_err;
    return MSR_RET_OK;
}

int msr_set_xfd(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)host;
    if (val) /* kvm_guest_supported_xfd: no dynamic (AMX) state is supported */
        return MSR_RET_INVAL;
    if (i == MSR_IA32_XFD)
        v->k.xfd = val;
    else
        v->k.xfd_err = val;
    return MSR_RET_OK;
}

/* ---- SMM ---- */
int msr_get_smbase(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i;
    if (!host)
        return MSR_RET_INVAL;
    *val = v->cpu->smbase;
    return MSR_RET_OK;
}

int msr_set_smbase(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    if (!host)
        return MSR_RET_INVAL;
    v->cpu->smbase = val;
    return MSR_RET_OK;
}

int msr_get_smi_count(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->cpu->smi_count;
    return MSR_RET_OK;
}

int msr_set_smi_count(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    if (!host)
        return MSR_RET_INVAL;
    v->cpu->smi_count = val;
    return MSR_RET_OK;
}

int msr_get_power_ctl(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.power_ctl;
    return MSR_RET_OK;
}

int msr_set_power_ctl(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    v->k.power_ctl = val;
    return MSR_RET_OK;
}

/* ---- fixed values KVM returns for MSRs guests probe (x2.c kvm_get_msr_common) ---- */
int msr_get_fixed(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)v; (void)host;
    switch (i) {
    case 0xcd: *val = 3; break;                                 /* FSB frequency */
    case MSR_EBC_FREQUENCY_ID: *val = 1ull << 24; break;         /* core/bus ratio 1 */
    case MSR_IA32_PERF_STATUS: *val = 1000ull | (4ull << 40); break;
    case MSR_IA32_BBL_CR_CTL3: *val = 0xbe702111; break;          /* L2 config for WinXP */
    case MSR_K7_CLK_CTL: *val = 0x20000000; break;                /* K7 ramp-up count */
    default: *val = 0; break;                                    /* "exists, reads 0" */
    }
    return MSR_RET_OK;
}

/* Writes KVM accepts and drops. */
int msr_set_ignore(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)v; (void)i; (void)val; (void)host;
    return MSR_RET_OK;
}

/* Writes KVM accepts only when the value is 0 (FAM10H_MMIO_CONF_BASE). */
int msr_set_zero_only(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)v; (void)i; (void)host;
    return val ? MSR_RET_INVAL : MSR_RET_OK;
}

/* ---- DEBUGCTL: no LBR virtualisation, no bus-lock detection. VMX (vmx_set_msr) drops BTF
 * and LBR silently and refuses any other bit; SVM without lbrv drops writes, reads 0. ---- */
int msr_get_debugctl(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->vm->vendor == MSR_VENDOR_AMD ? 0 : v->k.debugctl;
    return MSR_RET_OK;
}

int msr_set_debugctl(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    if (v->vm->vendor == MSR_VENDOR_AMD)
        return MSR_RET_OK;
    val &= ~((1ull << 0) | (1ull << 1)); /* LBR, BTF: unsupported but tolerated */
    if (val)
        return MSR_RET_INVAL;
    v->k.debugctl = val;
    return MSR_RET_OK;
}

/* Intel MSRs whose feature softkvm never offers (nested VMX capability MSRs, MPX BNDCFGS,
 * Intel PT RTIT_*): vmx_get/set_msr refuse them with 1, i.e. "known but refused" (INVAL),
 * for the host as well, rather than "unknown". */
int msr_get_refused(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)v; (void)i; (void)host;
    *val = 0;
    return MSR_RET_INVAL;
}

int msr_set_refused(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)v; (void)i; (void)val; (void)host;
    return MSR_RET_INVAL;
}
