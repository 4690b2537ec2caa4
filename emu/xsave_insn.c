/* emu/: FXSAVE/FXRSTOR, LDMXCSR/STMXCSR, the XSAVE family and XGETBV/XSETBV
 * (SDM vol.2 instruction pages; fault order as in their exception tables). */
#include <string.h>

#include "emu/simd_insn.h"
#include "emu/xsave.h"

static void check_align(struct emu_vcpu *v, const struct decoded_insn *d, unsigned align)
{
    if (emu_simd_lin(v, d, 0) & (align - 1))
        emu_raise(v, EMU_GP, 0);
}

static unsigned nxmm(const struct emu_vcpu *v)
{
    return v->mode == DECODER_MODE_64 ? 16 : 8;
}

static int h_fxsave(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check_fxsr(v);
    check_align(v, d, 16);
    uint8_t img[EMU_FXSAVE_SIZE];
    unsigned n = nxmm(v);
    emu_fxsave_image(&v->cpu.fpu, img, (d->rex & 8) != 0, n);
    emu_mem_write_buf(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), img, emu_fxsave_len(n));
    return EMU_H_NEXT;
}

static int h_fxrstor(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check_fxsr(v);
    check_align(v, d, 16);
    uint8_t img[EMU_FXSAVE_SIZE];
    emu_mem_read_buf(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), img, sizeof(img));
    struct emu_fpu f = v->cpu.fpu;
    if (!emu_fxrstor_image(&f, img, (d->rex & 8) != 0, nxmm(v)))
        emu_raise(v, EMU_GP, 0); /* reserved MXCSR bits */
    v->cpu.fpu = f;
    return EMU_H_NEXT;
}

static int h_ldmxcsr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    uint32_t m = (uint32_t)emu_opnd_read(v, d, 0);
    if (m & ~SIMD_MXCSR_MASK)
        emu_raise(v, EMU_GP, 0);
    v->cpu.fpu.mxcsr = m;
    return EMU_H_NEXT;
}

static int h_stmxcsr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    emu_opnd_write(v, d, 0, v->cpu.fpu.mxcsr);
    return EMU_H_NEXT;
}

/* ---- XSAVE family ---- */

static void check_xsave(struct emu_vcpu *v)
{
    if (!(v->cpu.cr4 & EMU_CR4_OSXSAVE))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    if (v->cpu.cr0 & EMU_CR0_TS)
        emu_raise(v, EMU_NM, EMU_NO_ERRCODE);
}

static uint64_t edx_eax(struct emu_vcpu *v)
{
    return (v->cpu.gpr[EMU_RDX] & 0xffffffffu) << 32 | (v->cpu.gpr[EMU_RAX] & 0xffffffffu);
}

/* Bytes of the area the instruction touches: legacy region + header, plus the
 * AVX component when it is requested (nothing beyond may be accessed: the
 * guest sized its buffer from CPUID for its XCR0). */
static unsigned area_len(uint64_t rfbm)
{
    return (rfbm & EMU_XFEATURE_YMM) ? EMU_XSAVE_SIZE : EMU_XSAVE_YMM_OFF;
}

static int do_xsave(struct emu_vcpu *v, const struct decoded_insn *d, uint64_t rfbm, bool compacted)
{
    check_align(v, d, 64);
    uint8_t img[EMU_XSAVE_SIZE];
    unsigned len = area_len(rfbm);
    uint64_t ea = emu_opnd_ea(v, d, 0);
    /* XSAVE leaves parts of the area alone (unrequested components, header bits):
     * start from the memory contents so they are written back unchanged. */
    emu_mem_read_buf(v, d->ops[0].seg, ea, img, len);
    uint8_t hi_xmm[128];
    memcpy(hi_xmm, img + 160 + 128, sizeof(hi_xmm));
    emu_xsave_image(&v->cpu.fpu, img, rfbm, compacted);
    if (nxmm(v) == 8) /* outside 64-bit mode XMM8-15 are not saved (SDM 13.5.2) */
        memcpy(img + 160 + 128, hi_xmm, sizeof(hi_xmm));
    emu_mem_write_buf(v, d->ops[0].seg, ea, img, len);
    return EMU_H_NEXT;
}

static int h_xsave(struct emu_vcpu *v, const struct decoded_insn *d)
{
    check_xsave(v);
    return do_xsave(v, d, v->cpu.xcr0 & edx_eax(v), false);
}

/* XSAVEOPT may skip unmodified components; with no modification tracking it
 * saves them all, which is a permitted outcome (SDM 13.9). */
static int h_xsaveopt(struct emu_vcpu *v, const struct decoded_insn *d)
{
    return h_xsave(v, d);
}

static int h_xsavec(struct emu_vcpu *v, const struct decoded_insn *d)
{
    check_xsave(v);
    return do_xsave(v, d, v->cpu.xcr0 & edx_eax(v), true);
}

static int h_xsaves(struct emu_vcpu *v, const struct decoded_insn *d)
{
    check_xsave(v);
    if (v->cpu.cpl != 0)
        emu_raise(v, EMU_GP, 0);
    /* no supervisor components are implemented, so IA32_XSS adds nothing */
    return do_xsave(v, d, (v->cpu.xcr0 | (v->cpu.xss & EMU_XFEATURES_IMPL)) & edx_eax(v), true);
}

static int do_xrstor(struct emu_vcpu *v, const struct decoded_insn *d, uint64_t rfbm, bool need_compacted)
{
    check_align(v, d, 64);
    uint8_t img[EMU_XSAVE_SIZE];
    uint64_t ea = emu_opnd_ea(v, d, 0);
    unsigned seg = d->ops[0].seg;
    emu_mem_read_buf(v, seg, ea, img, EMU_XSAVE_YMM_OFF);
    uint64_t xstate_bv, xcomp_bv;
    memcpy(&xstate_bv, img + EMU_XSAVE_HDR_OFF, 8);
    memcpy(&xcomp_bv, img + EMU_XSAVE_HDR_OFF + 8, 8);
    if (need_compacted && !(xcomp_bv >> 63))
        emu_raise(v, EMU_GP, 0);
    if ((rfbm & xstate_bv & EMU_XFEATURE_YMM))
        emu_mem_read_buf(v, seg, ea + EMU_XSAVE_YMM_OFF, img + EMU_XSAVE_YMM_OFF,
                         EMU_XSAVE_YMM_SIZE);
    struct emu_fpu f = v->cpu.fpu;
    if (!emu_xrstor_image(&f, img, rfbm, v->cpu.xcr0))
        emu_raise(v, EMU_GP, 0);
    if (nxmm(v) == 8) /* outside 64-bit mode XMM8-15 are not restored */
        memcpy(f.xmm[8], v->cpu.fpu.xmm[8], 8 * 16);
    v->cpu.fpu = f;
    return EMU_H_NEXT;
}

static int h_xrstor(struct emu_vcpu *v, const struct decoded_insn *d)
{
    check_xsave(v);
    return do_xrstor(v, d, v->cpu.xcr0 & edx_eax(v), false);
}

static int h_xrstors(struct emu_vcpu *v, const struct decoded_insn *d)
{
    check_xsave(v);
    if (v->cpu.cpl != 0)
        emu_raise(v, EMU_GP, 0);
    return do_xrstor(v, d, (v->cpu.xcr0 | (v->cpu.xss & EMU_XFEATURES_IMPL)) & edx_eax(v), true);
}

/* ---- XCR access ---- */

static bool cpuid_has_xgetbv1(struct emu_vcpu *v)
{
    for (unsigned i = 0; i < v->ncpuid; i++)
        if (v->cpuid[i].function == 0xd && v->cpuid[i].index == 1)
            return (v->cpuid[i].eax >> 2) & 1;
    return false;
}

static int h_xgetbv(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    if (!(v->cpu.cr4 & EMU_CR4_OSXSAVE))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    uint32_t ecx = (uint32_t)v->cpu.gpr[EMU_RCX];
    uint64_t val;
    if (ecx == 0)
        val = v->cpu.xcr0;
    else if (ecx == 1 && cpuid_has_xgetbv1(v))
        val = v->cpu.xcr0; /* XINUSE: every enabled component counts as in use */
    else
        emu_raise(v, EMU_GP, 0);
    v->cpu.gpr[EMU_RAX] = (uint32_t)val;
    v->cpu.gpr[EMU_RDX] = val >> 32;
    return EMU_H_NEXT;
}

static int h_xsetbv(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    if (!(v->cpu.cr4 & EMU_CR4_OSXSAVE))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    /* KVM kvm_emulate_xsetbv: CPL != 0 or an invalid value -> #GP(0) */
    if (v->cpu.cpl != 0)
        emu_raise(v, EMU_GP, 0);
    emu_icpt_insn(v, EMU_NX_XSETBV, 0);
    if ((uint32_t)v->cpu.gpr[EMU_RCX] != 0)
        emu_raise(v, EMU_GP, 0);
    uint64_t val = edx_eax(v);
    if (!emu_xcr0_valid(val, emu_simd_supported_xcr0(v)))
        emu_raise(v, EMU_GP, 0);
    v->cpu.xcr0 = val;
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_xsave_handlers[] = {
    { DOP_FXSAVE, h_fxsave },   { DOP_FXRSTOR, h_fxrstor }, { DOP_LDMXCSR, h_ldmxcsr },
    { DOP_STMXCSR, h_stmxcsr }, { DOP_XSAVE, h_xsave },     { DOP_XSAVEOPT, h_xsaveopt },
    { DOP_XSAVEC, h_xsavec },   { DOP_XSAVES, h_xsaves },   { DOP_XRSTOR, h_xrstor },
    { DOP_XRSTORS, h_xrstors }, { DOP_XGETBV, h_xgetbv },   { DOP_XSETBV, h_xsetbv },
    /* REX.W forms: same state, 64-bit FIP/FDP layout (the XSAVE family always uses it) */
    { DOP_FXSAVE64, h_fxsave }, { DOP_FXRSTOR64, h_fxrstor }, { DOP_XSAVE64, h_xsave },
    { DOP_XSAVEOPT64, h_xsaveopt }, { DOP_XSAVEC64, h_xsavec }, { DOP_XSAVES64, h_xsaves },
    { DOP_XRSTOR64, h_xrstor }, { DOP_XRSTORS64, h_xrstors },
    { DOP_VLDMXCSR, h_ldmxcsr }, { DOP_VSTMXCSR, h_stmxcsr },
    { 0, NULL },
};
