/* msr/: MTRRs and PAT (KVM mtrr.c kvm_mtrr_get/set_msr, x86.c kvm_pat_valid). */
#include "msr/internal.h"

#define MTRR_CAP_VALUE (0x500ull | MSR_MTRR_VAR) /* WC=1, FIX=1, VCNT=8, SMRR=0 */

/* Memory types 0 (UC), 1 (WC), 4 (WT), 5 (WP), 6 (WB) are valid in MTRRs. */
static bool mtrr_type_ok(unsigned t)
{
    return t < 8 && ((1u << t) & 0x73);
}

static uint64_t reserved_gpa_bits(const struct msr_vcpu *v)
{
    unsigned w = v->feat.maxphyaddr ? v->feat.maxphyaddr : 36;
    return w >= 64 ? 0 : ~0ull << w;
}

static uint64_t *mtrr_slot(struct msr_vcpu *v, uint32_t i)
{
    if (i >= MSR_MTRRphysBase0 && i < MSR_MTRRphysBase0 + 2 * MSR_MTRR_VAR)
        return &v->k.mtrr_var[i - MSR_MTRRphysBase0];
    if (i == MSR_MTRRfix64K_00000) return &v->k.mtrr_fixed[0];
    if (i == MSR_MTRRfix16K_80000 || i == MSR_MTRRfix16K_A0000)
        return &v->k.mtrr_fixed[1 + i - MSR_MTRRfix16K_80000];
    if (i >= MSR_MTRRfix4K_C0000 && i <= MSR_MTRRfix4K_F8000)
        return &v->k.mtrr_fixed[3 + i - MSR_MTRRfix4K_C0000];
    if (i == MSR_MTRRdefType) return &v->k.mtrr_deftype;
    return NULL; /* holes in 0x200-0x26f */
}

int msr_get_mtrr(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)host;
    if (i == MSR_MTRRcap) {
        *val = MTRR_CAP_VALUE;
        return MSR_RET_OK;
    }
    uint64_t *p = mtrr_slot(v, i);
    if (!p)
        return MSR_RET_INVAL;
    *val = *p;
    return MSR_RET_OK;
}

int msr_set_mtrr(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)host;
    /* 6.12 kvm_set_msr_common has no MSR_MTRRcap case (only MTRRdefType and 0x200-0x2ff
     * go to kvm_mtrr_set_msr): a write reaches the default, KVM_MSR_RET_UNSUPPORTED */
    if (i == MSR_MTRRcap)
        return MSR_RET_UNSUPPORTED;
    uint64_t *p = mtrr_slot(v, i);
    if (!p)
        return MSR_RET_INVAL; /* a hole in 0x200-0x2ff: kvm_mtrr_set_msr refuses it */
    if (i == MSR_MTRRdefType) {
        if ((val & ~0xcffull) || !mtrr_type_ok(val & 0xff))
            return MSR_RET_INVAL;
    } else if (i >= MSR_MTRRfix64K_00000) {
        for (int b = 0; b < 8; b++)
            if (!mtrr_type_ok((val >> (8 * b)) & 0xff))
                return MSR_RET_INVAL;
    } else {
        uint64_t mask = reserved_gpa_bits(v);
        if ((i & 1) == 0) { /* PhysBase: type + reserved 11:8 */
            if (!mtrr_type_ok(val & 0xff))
                return MSR_RET_INVAL;
            mask |= 0xf00;
        } else {            /* PhysMask: reserved 10:0 */
            mask |= 0x7ff;
        }
        if (val & mask)
            return MSR_RET_INVAL;
    }
    *p = val;
    return MSR_RET_OK;
}

/* PAT entries: 0,1,4,5,6,7 valid; 2,3 and bits 7:3 of each byte reserved (SDM vol.3 13.12.2). */
bool msr_pat_valid(uint64_t val)
{
    if (val & 0xF8F8F8F8F8F8F8F8ull)
        return false;
    return (val | ((val & 0x0202020202020202ull) << 1)) == val;
}

int msr_get_pat(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->cpu->pat;
    return MSR_RET_OK;
}

int msr_set_pat(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    if (!msr_pat_valid(val))
        return MSR_RET_INVAL;
    v->cpu->pat = val;
    return MSR_RET_OK;
}
