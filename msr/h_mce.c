/* msr/: machine-check MSRs (KVM x86.c get_msr_mce/set_msr_mce, kvm_vcpu_ioctl_x86_setup_mce;
 * SDM vol.3 16.3 "Machine-check MSRs"). */
#include <errno.h>

#include "msr/internal.h"

#define MCG_CTL_P (1ull << 8)
#define MCG_CMCI_P (1ull << 10)
#define MCG_SER_P (1ull << 24)
#define MCG_LMCE_P (1ull << 27)
#define MCI_CTL2_VALID ((1ull << 30) | 0x7fffull) /* CMCI_EN | threshold */
#define HWCR_MCSTATUSWREN (1ull << 18)

static unsigned banks(const struct msr_vcpu *v) { return v->k.mcg_cap & 0xff; }

int msr_get_mce(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    uint64_t cap = v->k.mcg_cap;
    switch (i) {
    case MSR_IA32_P5_MC_ADDR: case MSR_IA32_P5_MC_TYPE: *val = 0; return MSR_RET_OK;
    case MSR_IA32_MCG_CAP: *val = cap; return MSR_RET_OK;
    case MSR_IA32_MCG_STATUS: *val = v->k.mcg_status; return MSR_RET_OK;
    case MSR_IA32_MCG_CTL:
        if (!(cap & MCG_CTL_P) && !host)
            return MSR_RET_INVAL;
        *val = v->k.mcg_ctl;
        return MSR_RET_OK;
    }
    if (i >= MSR_IA32_MC0_CTL2 && i < MSR_IA32_MC0_CTL2 + MSR_MCE_BANKS) {
        if (i >= MSR_IA32_MC0_CTL2 + banks(v) || (!(cap & MCG_CMCI_P) && !host))
            return MSR_RET_INVAL;
        *val = v->k.mci_ctl2[i - MSR_IA32_MC0_CTL2];
        return MSR_RET_OK;
    }
    if (i >= MSR_IA32_MC0_CTL + 4 * banks(v))
        return MSR_RET_INVAL;
    *val = v->k.mce_banks[i - MSR_IA32_MC0_CTL];
    return MSR_RET_OK;
}

int msr_set_mce(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    uint64_t cap = v->k.mcg_cap;
    switch (i) {
    case MSR_IA32_MCG_STATUS: v->k.mcg_status = val; return MSR_RET_OK;
    case MSR_IA32_MCG_CTL:
        if (!(cap & MCG_CTL_P) && (val || !host))
            return MSR_RET_INVAL;
        if (val != 0 && val != ~0ull)
            return MSR_RET_INVAL;
        v->k.mcg_ctl = val;
        return MSR_RET_OK;
    case MSR_IA32_P5_MC_ADDR: case MSR_IA32_P5_MC_TYPE: case MSR_IA32_MCG_CAP:
        return MSR_RET_UNSUPPORTED; /* not writable in KVM (MCG_CAP via KVM_X86_SETUP_MCE) */
    }
    if (i >= MSR_IA32_MC0_CTL2 && i < MSR_IA32_MC0_CTL2 + MSR_MCE_BANKS) {
        if (i >= MSR_IA32_MC0_CTL2 + banks(v))
            return MSR_RET_INVAL;
        if (!(cap & MCG_CMCI_P) && (val || !host))
            return MSR_RET_INVAL;
        if (val & ~MCI_CTL2_VALID)
            return MSR_RET_INVAL;
        v->k.mci_ctl2[i - MSR_IA32_MC0_CTL2] = val;
        return MSR_RET_OK;
    }
    if (i >= MSR_IA32_MC0_CTL + 4 * banks(v))
        return MSR_RET_INVAL;
    uint32_t reg = (i - MSR_IA32_MC0_CTL) % 4;
    /* MCi_CTL: 0 or all ones, tolerating cleared bits 10 and 0 (K8 GART / UnixWare quirks) */
    if (reg == 0 && val != 0 && (val | (1ull << 10) | 1) != ~0ull)
        return MSR_RET_INVAL;
    /* MCi_STATUS: guests may only clear it, except AMD with HWCR.McStatusWrEn */
    if (reg == 1 && !host && val != 0 && !(v->feat.amd && (v->k.hwcr & HWCR_MCSTATUSWREN)))
        return MSR_RET_INVAL;
    v->k.mce_banks[i - MSR_IA32_MC0_CTL] = val;
    return MSR_RET_OK;
}

/* MCG_EXT_CTL (VMX only): guest access needs FEATURE_CONTROL.LMCE enabled. */
int msr_get_mcg_ext_ctl(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i;
    if (!host && !(v->k.feature_control & FEAT_CTL_LMCE))
        return MSR_RET_INVAL;
    *val = v->k.mcg_ext_ctl;
    return MSR_RET_OK;
}

int msr_set_mcg_ext_ctl(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    if ((!host && !(v->k.feature_control & FEAT_CTL_LMCE)) || (val & ~1ull))
        return MSR_RET_INVAL;
    v->k.mcg_ext_ctl = val;
    return MSR_RET_OK;
}

uint64_t msr_mce_cap_supported(enum msr_vendor vendor)
{
    /* x86.c kvm_caps.supported_mce_cap = MCG_CTL_P | MCG_SER_P; vmx.c hardware_setup adds
     * MCG_LMCE_P and MCG_CMCI_P, svm.c adds nothing */
    uint64_t cap = MCG_CTL_P | MCG_SER_P;
    if (vendor == MSR_VENDOR_INTEL)
        cap |= MCG_LMCE_P | MCG_CMCI_P;
    return cap;
}

int msr_vcpu_setup_mce(struct msr_vcpu *v, uint64_t mcg_cap)
{
    uint64_t supported = msr_mce_cap_supported(v->vm->vendor);
    unsigned n = mcg_cap & 0xff;
    if (n == 0 || n > MSR_MCE_BANKS)
        return -EINVAL;
    if (mcg_cap & ~(supported | 0xffull | 0xff0000ull))
        return -EINVAL;
    v->k.mcg_cap = mcg_cap;
    if (mcg_cap & MCG_CTL_P)
        v->k.mcg_ctl = ~0ull;
    for (unsigned b = 0; b < n; b++) {
        v->k.mce_banks[b * 4] = ~0ull;
        if (mcg_cap & MCG_CMCI_P)
            v->k.mci_ctl2[b] = 0;
    }
    return 0;
}

#define MCI_STATUS_VAL (1ull << 63)
#define MCI_STATUS_OVER (1ull << 62)
#define MCI_STATUS_UC (1ull << 61)
#define MCI_STATUS_PCC (1ull << 57)
#define MCI_STATUS_S (1ull << 56)
#define MCI_STATUS_AR (1ull << 55)
#define MCG_STATUS_MCIP (1ull << 2)
#define MCI_CTL2_CMCI_EN (1ull << 30)

/* KVM_X86_SET_MCE, as x86.c kvm_vcpu_ioctl_x86_set_mce / kvm_vcpu_x86_set_ucna. */
int msr_vcpu_set_mce(struct msr_vcpu *v, const struct msr_mce *m, bool cr4_mce,
                     enum msr_mce_action *action)
{
    *action = MSR_MCE_NONE;
    unsigned n = banks(v);
    if (m->bank >= n || !(m->status & MCI_STATUS_VAL))
        return -EINVAL;
    uint64_t *b = &v->k.mce_banks[4 * m->bank];
    uint64_t status = m->status;
    /* UCNA: uncorrected, no action required -> logged, signalled by CMCI if enabled */
    if (!m->mcg_status && !(status & (MCI_STATUS_PCC | MCI_STATUS_S | MCI_STATUS_AR)) &&
        (status & MCI_STATUS_UC)) {
        b[1] = status;
        b[2] = m->addr;
        b[3] = m->misc;
        v->k.mcg_status = m->mcg_status;
        if ((v->k.mcg_cap & MCG_CMCI_P) && (v->k.mci_ctl2[m->bank] & MCI_CTL2_CMCI_EN))
            *action = MSR_MCE_CMCI;
        return 0;
    }
    /* uncorrected error reporting disabled by MCG_CTL or MCi_CTL not all ones */
    if ((status & MCI_STATUS_UC) && (v->k.mcg_cap & MCG_CTL_P) && v->k.mcg_ctl != ~0ull)
        return 0;
    if ((status & MCI_STATUS_UC) && b[0] != ~0ull)
        return 0;
    if (status & MCI_STATUS_UC) {
        if ((v->k.mcg_status & MCG_STATUS_MCIP) || !cr4_mce) {
            *action = MSR_MCE_TRIPLE_FAULT; /* #MC while one is in progress, or CR4.MCE=0 */
            return 0;
        }
        if (b[1] & MCI_STATUS_VAL)
            status |= MCI_STATUS_OVER;
        b[2] = m->addr;
        b[3] = m->misc;
        v->k.mcg_status = m->mcg_status;
        b[1] = status;
        *action = MSR_MCE_EXCEPTION;
    } else if (!(b[1] & MCI_STATUS_VAL) || !(b[1] & MCI_STATUS_UC)) {
        if (b[1] & MCI_STATUS_VAL)
            status |= MCI_STATUS_OVER;
        b[2] = m->addr;
        b[3] = m->misc;
        b[1] = status;
    } else {
        b[1] |= MCI_STATUS_OVER; /* a corrected error does not replace an uncorrected one */
    }
    return 0;
}
