/* msr/: building the per-vCPU VMX MSR bitmap and SVM MSRPM from KVM's pass-through lists,
 * the guest CPUID and the MSR filter (vmx.c vmx_disable_intercept_for_msr /
 * vmx_msr_filter_changed; svm.c set_msr_interception / svm_msr_filter_changed).
 * An MSR the filter denies is always intercepted, whatever KVM would otherwise pass through. */
#include <string.h>

#include "msr/internal.h"
#include "msr/bitmap.h"

static const struct msr_passthrough pt_list[] = {
    /* index                     name              VMX read      VMX write       SVM read   SVM write */
    {MSR_IA32_SPEC_CTRL, "SPEC_CTRL", PT_DYNAMIC, PT_DYNAMIC, PT_DYNAMIC, PT_DYNAMIC},
    {MSR_IA32_PRED_CMD, "PRED_CMD", PT_NONE, PT_IF_PRED_CMD, PT_NONE, PT_IF_PRED_CMD},
    {MSR_IA32_FLUSH_CMD, "FLUSH_CMD", PT_NONE, PT_IF_FLUSH_L1D, PT_NONE, PT_IF_FLUSH_L1D},
    {MSR_IA32_TSC, "TSC", PT_ALWAYS, PT_NONE, PT_NONE, PT_NONE},
    {MSR_FS_BASE, "FS_BASE", PT_ALWAYS, PT_ALWAYS, PT_ALWAYS, PT_ALWAYS},
    {MSR_GS_BASE, "GS_BASE", PT_ALWAYS, PT_ALWAYS, PT_ALWAYS, PT_ALWAYS},
    {MSR_KERNEL_GS_BASE, "KERNEL_GS_BASE", PT_ALWAYS, PT_ALWAYS, PT_ALWAYS, PT_ALWAYS},
    {MSR_IA32_XFD, "XFD", PT_NEVER, PT_NEVER, PT_NONE, PT_NONE},
    {MSR_IA32_XFD_ERR, "XFD_ERR", PT_IF_XFD, PT_NEVER, PT_NONE, PT_NONE},
    {MSR_IA32_SYSENTER_CS, "SYSENTER_CS", PT_ALWAYS, PT_ALWAYS, PT_ALWAYS, PT_ALWAYS},
    {MSR_IA32_SYSENTER_ESP, "SYSENTER_ESP", PT_ALWAYS, PT_ALWAYS, PT_IF_NOT_INTEL_GUEST, PT_IF_NOT_INTEL_GUEST},
    {MSR_IA32_SYSENTER_EIP, "SYSENTER_EIP", PT_ALWAYS, PT_ALWAYS, PT_IF_NOT_INTEL_GUEST, PT_IF_NOT_INTEL_GUEST},
    {MSR_CORE_C1_RES, "CORE_C1_RES", PT_NEVER, PT_NONE, PT_NONE, PT_NONE},
    {MSR_CORE_C3_RESIDENCY, "CORE_C3_RESIDENCY", PT_NEVER, PT_NONE, PT_NONE, PT_NONE},
    {MSR_CORE_C6_RESIDENCY, "CORE_C6_RESIDENCY", PT_NEVER, PT_NONE, PT_NONE, PT_NONE},
    {MSR_CORE_C7_RESIDENCY, "CORE_C7_RESIDENCY", PT_NEVER, PT_NONE, PT_NONE, PT_NONE},
    {MSR_STAR, "STAR", PT_NONE, PT_NONE, PT_ALWAYS, PT_ALWAYS},
    {MSR_LSTAR, "LSTAR", PT_NONE, PT_NONE, PT_ALWAYS, PT_ALWAYS},
    {MSR_CSTAR, "CSTAR", PT_NONE, PT_NONE, PT_ALWAYS, PT_ALWAYS},
    {MSR_SYSCALL_MASK, "SFMASK", PT_NONE, PT_NONE, PT_ALWAYS, PT_ALWAYS},
    {MSR_AMD64_SEV_ES_GHCB, "SEV_ES_GHCB", PT_NONE, PT_NONE, PT_ALWAYS, PT_ALWAYS},
    {MSR_IA32_DEBUGCTLMSR, "DEBUGCTL", PT_NONE, PT_NONE, PT_NEVER, PT_NEVER},
    {MSR_IA32_LASTBRANCHFROMIP, "LASTBRANCHFROMIP", PT_NONE, PT_NONE, PT_NEVER, PT_NEVER},
    {MSR_IA32_LASTBRANCHTOIP, "LASTBRANCHTOIP", PT_NONE, PT_NONE, PT_NEVER, PT_NEVER},
    {MSR_IA32_LASTINTFROMIP, "LASTINTFROMIP", PT_NONE, PT_NONE, PT_NEVER, PT_NEVER},
    {MSR_IA32_LASTINTTOIP, "LASTINTTOIP", PT_NONE, PT_NONE, PT_NEVER, PT_NEVER},
    {MSR_IA32_XSS, "XSS", PT_NONE, PT_NONE, PT_NEVER, PT_NEVER},
    {MSR_EFER, "EFER", PT_NONE, PT_NONE, PT_NEVER, PT_NEVER},
    {MSR_IA32_CR_PAT, "PAT", PT_NONE, PT_NONE, PT_NEVER, PT_NEVER},
    {MSR_TSC_AUX, "TSC_AUX", PT_NONE, PT_NONE, PT_NEVER, PT_NEVER},
};
_Static_assert(sizeof(pt_list) / sizeof(pt_list[0]) <= 64, "intent masks are 64-bit");

const struct msr_passthrough *msr_passthrough_list(unsigned *n)
{
    *n = sizeof(pt_list) / sizeof(pt_list[0]);
    return pt_list;
}

const char *msr_pt_policy_name(enum msr_pt_policy p)
{
    static const char *const names[] = {
        [PT_NONE] = "not in list", [PT_NEVER] = "listed, needs a feature softkvm lacks",
        [PT_ALWAYS] = "always", [PT_DYNAMIC] = "after the first non-zero write",
        [PT_IF_PRED_CMD] = "if guest CPUID has IBPB", [PT_IF_FLUSH_L1D] = "if guest CPUID has FLUSH_L1D",
        [PT_IF_XFD] = "if guest CPUID has XFD",
        [PT_IF_NOT_INTEL_GUEST] = "if guest CPUID vendor is not Intel-compatible",
    };
    return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}

bool msr_pt_policy_holds(const struct msr_vcpu *v, enum msr_pt_policy p, unsigned i, bool write)
{
    const struct msr_guest_features *f = &v->feat;
    switch (p) {
    case PT_ALWAYS: return true;
    case PT_DYNAMIC: return ((write ? v->passthrough_wr : v->passthrough_rd) >> i) & 1;
    case PT_IF_PRED_CMD: return f->spec_ctrl || f->amd_ibpb || f->sbpb;
    case PT_IF_FLUSH_L1D: return f->flush_l1d;
    case PT_IF_XFD: return f->xfd;
    case PT_IF_NOT_INTEL_GUEST: return !f->intel;
    default: return false;
    }
}

static void clear_bit(uint8_t *bm, const struct msr_bitpos *p)
{
    bm[p->byte] &= (uint8_t)~(1u << p->bit);
}

void msr_bitmaps_recompute(struct msr_vcpu *v)
{
    memset(v->vmx_bitmap, 0xff, sizeof(v->vmx_bitmap));
    memset(v->svm_msrpm, 0xff, sizeof(v->svm_msrpm));
    for (unsigned i = 0; i < sizeof(pt_list) / sizeof(pt_list[0]); i++) {
        const struct msr_passthrough *e = &pt_list[i];
        bool rd_ok = msr_filter_allows(v->filter, e->index, KVM_MSR_FILTER_READ);
        bool wr_ok = msr_filter_allows(v->filter, e->index, KVM_MSR_FILTER_WRITE);
        struct msr_bitpos p;
        if (rd_ok && msr_pt_policy_holds(v, e->vmx_r, i, false) && msr_vmx_bitpos(e->index, false, &p))
            clear_bit(v->vmx_bitmap, &p);
        if (wr_ok && msr_pt_policy_holds(v, e->vmx_w, i, true) && msr_vmx_bitpos(e->index, true, &p))
            clear_bit(v->vmx_bitmap, &p);
        if (rd_ok && msr_pt_policy_holds(v, e->svm_r, i, false) && msr_svm_bitpos(e->index, false, &p))
            clear_bit(v->svm_msrpm, &p);
        if (wr_ok && msr_pt_policy_holds(v, e->svm_w, i, true) && msr_svm_bitpos(e->index, true, &p))
            clear_bit(v->svm_msrpm, &p);
    }
    v->stats.bitmap_recomputes++;
}

void msr_passthrough_enable(struct msr_vcpu *v, uint32_t index, bool read, bool write)
{
    for (unsigned i = 0; i < sizeof(pt_list) / sizeof(pt_list[0]); i++) {
        if (pt_list[i].index != index)
            continue;
        if (read) v->passthrough_rd |= 1ull << i;
        if (write) v->passthrough_wr |= 1ull << i;
        msr_bitmaps_recompute(v);
        return;
    }
}
