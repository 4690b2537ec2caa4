/* msr/: AMD-specific MSRs (x86.c MSR_K7_HWCR, OSVW; svm.c svm_get/set_msr: VM_CR,
 * VM_HSAVE_PA, DE_CFG, VIRT_SPEC_CTRL; APM vol.2 15.30 "SVM-related MSRs"). */
#include "msr/internal.h"

#define HWCR_WRITABLE ((1ull << 18) | (1ull << 24))       /* McStatusWrEn, TscFreqSel */
#define HWCR_IGNORED ((1ull << 3) | (1ull << 6) | (1ull << 8)) /* TLB cache dis, FFDIS, IGNNE em */
#define VM_CR_DPD (1ull << 0)
#define VM_CR_R_INIT (1ull << 1)
#define VM_CR_DIS_A20M (1ull << 2)
#define VM_CR_LOCK (1ull << 3)
#define VM_CR_SVMDIS (1ull << 4)
#define VM_CR_VALID (VM_CR_DPD | VM_CR_R_INIT | VM_CR_DIS_A20M | VM_CR_LOCK | VM_CR_SVMDIS)
#define EFER_SVME (1ull << 12)
#define DE_CFG_LFENCE_SERIALIZE (1ull << 1)

int msr_get_hwcr(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.hwcr;
    return MSR_RET_OK;
}

int msr_set_hwcr(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    val &= ~HWCR_IGNORED; /* accepted, not stored */
    if (val & ~HWCR_WRITABLE)
        return MSR_RET_INVAL;
    v->k.hwcr = val;
    return MSR_RET_OK;
}

int msr_get_vm_cr(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.vm_cr;
    return MSR_RET_OK;
}

/* svm_set_vm_cr: LOCK and SVMDIS freeze once SVMDIS is set; SVMDIS with EFER.SVME fails
 * (after the store, as KVM does). */
int msr_set_vm_cr(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    if (val & ~VM_CR_VALID)
        return MSR_RET_INVAL;
    uint64_t chg = VM_CR_VALID;
    if (v->k.vm_cr & VM_CR_SVMDIS)
        chg &= ~(VM_CR_LOCK | VM_CR_SVMDIS);
    v->k.vm_cr = (v->k.vm_cr & ~chg) | (val & chg);
    if ((v->k.vm_cr & VM_CR_SVMDIS) && (v->cpu->efer & EFER_SVME))
        return MSR_RET_INVAL;
    return MSR_RET_OK;
}

int msr_get_hsave(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->cpu->vm_hsave_pa;
    return MSR_RET_OK;
}

int msr_set_hsave(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    unsigned w = v->feat.maxphyaddr ? v->feat.maxphyaddr : 36;
    /* page_address_valid: page aligned and below MAXPHYADDR; host may set anything */
    if (!host && ((val & 0xfff) || (w < 64 && (val >> w))))
        return MSR_RET_INVAL;
    v->cpu->vm_hsave_pa = val;
    return MSR_RET_OK;
}

int msr_get_de_cfg(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.de_cfg;
    return MSR_RET_OK;
}

int msr_set_de_cfg(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    if (val & ~DE_CFG_LFENCE_SERIALIZE)
        return MSR_RET_INVAL;
    v->k.de_cfg = val;
    return MSR_RET_OK;
}

int msr_get_virt_spec_ctrl(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.virt_spec_ctrl;
    return MSR_RET_OK;
}

int msr_set_virt_spec_ctrl(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    if (val & ~(1ull << 2)) /* SSBD only */
        return MSR_RET_INVAL;
    v->k.virt_spec_ctrl = val;
    return MSR_RET_OK;
}

int msr_get_osvw(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)host;
    *val = i == MSR_AMD64_OSVW_ID_LENGTH ? v->k.osvw_length : v->k.osvw_status;
    return MSR_RET_OK;
}

int msr_set_osvw(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)host;
    if (i == MSR_AMD64_OSVW_ID_LENGTH)
        v->k.osvw_length = val;
    else
        v->k.osvw_status = val;
    return MSR_RET_OK;
}

/* TSC_RATIO (svm.c): host-only without the TSCRATEMSR guest feature (never offered here);
 * 8.32 fixed point, bits 63:40 reserved; default 1.0. */
int msr_get_tsc_ratio(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i;
    if (!host)
        return MSR_RET_INVAL;
    *val = v->k.tsc_ratio;
    return MSR_RET_OK;
}

int msr_set_tsc_ratio(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    if (!host || (val & 0xffffff0000000000ull))
        return MSR_RET_INVAL;
    v->k.tsc_ratio = val;
    return MSR_RET_OK;
}
