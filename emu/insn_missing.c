/* emu/: the one list of ops the decoder knows and emu has no semantics for, and what
 * each does instead. Every decoder op has a handler (emu/opcheck checks it at build
 * time), so "decoded but no handler" cannot happen; a missing op is an explicit choice:
 *   - the guest's CPUID lacks the op's feature: #UD, what a CPU without the feature does
 *     (SDM vol.2 "Exceptions" of each instruction: "#UD If CPUID.(...):<feature> = 0");
 *   - the feature is there (the VMM set a bit softkvm does not offer in
 *     KVM_GET_SUPPORTED_CPUID) or the op has no CPUID bit (BOUND, ARPL: base IA-32):
 *     KVM_EXIT_INTERNAL_ERROR / EMULATION, as KVM reports an instruction it cannot emulate.
 * Shrink the list as ops get semantics (emu/opcheck rejects an entry whose op has a
 * real handler, so the list cannot go stale). */
#include "emu/internal.h"

#define NO_BIT 0xff
#define EBX 1
#define ECX 2
#define EDX 3

const struct emu_missing_op emu_missing_ops[] = {
    {DOP_BOUND, 0, 0, NO_BIT},
    {DOP_ARPL, 0, 0, NO_BIT},
    {DOP_MONITORX, 0x80000001u, ECX, 29}, /* AMD APM vol.3 CPUID Fn8000_0001_ECX MONITORX */
    {DOP_MWAITX, 0x80000001u, ECX, 29},
    {DOP_CLZERO, 0x80000008u, EBX, 0},    /* Fn8000_0008_EBX CLZERO */
    {DOP_FEMMS, 0x80000001u, EDX, 31},    /* 3DNow! */
    {DOP_SHA1NEXTE, 7, EBX, 29},          /* CPUID.(7,0):EBX.SHA */
    {DOP_SHA1MSG1, 7, EBX, 29},
    {DOP_SHA1MSG2, 7, EBX, 29},
    {DOP_SHA256RNDS2, 7, EBX, 29},
    {DOP_SHA256MSG1, 7, EBX, 29},
    {DOP_SHA256MSG2, 7, EBX, 29},
    {DOP_SHA1RNDS4, 7, EBX, 29},
    {DOP_ADCX, 7, EBX, 19},               /* ADX */
    {DOP_ADOX, 7, EBX, 19},
    {DOP_VPGATHERDD, 7, EBX, 5},          /* AVX2 */
    {DOP_VPGATHERDQ, 7, EBX, 5},
    {DOP_VPGATHERQD, 7, EBX, 5},
    {DOP_VPGATHERQQ, 7, EBX, 5},
    {DOP_VGATHERDPS, 7, EBX, 5},
    {DOP_VGATHERDPD, 7, EBX, 5},
    {DOP_VGATHERQPS, 7, EBX, 5},
    {DOP_VGATHERQPD, 7, EBX, 5},
    {DOP_ANDN, 7, EBX, 3},                /* BMI1 */
    {DOP_BLSR, 7, EBX, 3},
    {DOP_BLSMSK, 7, EBX, 3},
    {DOP_BLSI, 7, EBX, 3},
    {DOP_BEXTR, 7, EBX, 3},
    {DOP_BZHI, 7, EBX, 8},                /* BMI2 */
    {DOP_PEXT, 7, EBX, 8},
    {DOP_PDEP, 7, EBX, 8},
    {DOP_MULX, 7, EBX, 8},
    {DOP_SHLX, 7, EBX, 8},
    {DOP_SARX, 7, EBX, 8},
    {DOP_SHRX, 7, EBX, 8},
    {DOP_RORX, 7, EBX, 8},
    {0, 0, 0, 0},
};

static const struct emu_missing_op *find(uint16_t op)
{
    for (const struct emu_missing_op *m = emu_missing_ops; m->op; m++)
        if (m->op == op)
            return m;
    return NULL;
}

bool emu_missing_feature_present(struct emu_vcpu *v, uint16_t op)
{
    const struct emu_missing_op *m = find(op);
    if (!m || m->bit == NO_BIT)
        return true;
    return emu_cpuid_has(v, m->leaf, 0, m->reg, m->bit);
}

int emu_h_missing(struct emu_vcpu *v, const struct decoded_insn *d)
{
    if (!emu_missing_feature_present(v, d->op))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    emu_unimplemented(v);
}
