/* emu/: fault rules and XMM/YMM operand access for the SIMD handlers. */
#include "emu/simd_insn.h"

#include <string.h>

#include "emu/xsave.h"

/* SDM vol.1 9.5.1: every MMX instruction (but EMMS) sets TOP = 0 and all tags
 * valid. emu_fpu.st[] is ST-relative, so rotate it to make ST(i) = R(i) = MM(i). */
static void mmx_enter(struct emu_fpu *f)
{
    unsigned top = (f->fsw >> 11) & 7;
    if (top) {
        uint8_t tmp[8][16];
        memcpy(tmp, f->st, sizeof(tmp));
        for (unsigned i = 0; i < 8; i++) /* R(i) was ST((i - TOP) & 7) */
            memcpy(f->st[i], tmp[(i - top) & 7], 16);
        f->fsw &= (uint16_t)~(7u << 11);
    }
    f->ftw = 0xff;
}

bool emu_simd_uses_mmx(const struct decoded_insn *d)
{
    for (unsigned i = 0; i < d->nops; i++)
        if (d->ops[i].kind == DOPND_REG && d->ops[i].reg_class == DREG_MMX)
            return true;
    return false;
}

void emu_simd_check(struct emu_vcpu *v, const struct decoded_insn *d)
{
    const struct cpu *c = &v->cpu;
    if (emu_simd_uses_mmx(d) && !emu_simd_is_vex(d)) {
        /* MMX (SDM vol.3 12.5, MMX exception table): CR0.EM -> #UD, CR0.TS -> #NM;
         * SSE forms on MMX registers (MOVQ2DQ, CVTPI2PS) also need OSFXSR for the XMM side */
        if (c->cr0 & EMU_CR0_EM)
            emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
        if (c->cr0 & EMU_CR0_TS)
            emu_raise(v, EMU_NM, EMU_NO_ERRCODE);
        mmx_enter(&v->cpu.fpu);
        return;
    } else if (emu_simd_is_vex(d)) {
        if (!(c->cr4 & EMU_CR4_OSXSAVE) ||
            (c->xcr0 & (EMU_XFEATURE_SSE | EMU_XFEATURE_YMM)) != (EMU_XFEATURE_SSE | EMU_XFEATURE_YMM))
            emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    } else if ((c->cr0 & EMU_CR0_EM) || !(c->cr4 & EMU_CR4_OSFXSR)) {
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    }
    if (c->cr0 & EMU_CR0_TS)
        emu_raise(v, EMU_NM, EMU_NO_ERRCODE);
}

void emu_simd_check_fxsr(struct emu_vcpu *v)
{
    if (v->cpu.cr0 & (EMU_CR0_EM | EMU_CR0_TS))
        emu_raise(v, EMU_NM, EMU_NO_ERRCODE);
}

void emu_simd_fp_flags(struct emu_vcpu *v, uint32_t flags)
{
    uint32_t m = v->cpu.fpu.mxcsr;
    v->cpu.fpu.mxcsr = m | (flags & SIMD_MXCSR_FLAGS);
    if (simd_fp_unmasked(flags, m))
        emu_raise(v, (v->cpu.cr4 & EMU_CR4_OSXMMEXCPT) ? EMU_XM : EMU_UD, EMU_NO_ERRCODE);
}

uint64_t emu_simd_lin(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i)
{
    uint64_t ea = emu_opnd_ea(v, d, i);
    unsigned seg = d->ops[i].seg;
    /* 64-bit mode: only FS/GS bases apply (SDM vol.3 3.4.4) */
    if (v->long_mode && v->mode == DECODER_MODE_64 && seg != EMU_FS && seg != EMU_GS)
        return ea;
    return v->cpu.seg[seg].base + ea;
}

/* KVM's instruction emulator (arch/x86/kvm/emulate.c) handles only a few SIMD/x87
 * forms on MMIO: MOVUPS/MOVUPD/MOVAPS/MOVAPD (0F 10/11/28/29), MOVNTPS/MOVNTPD
 * (0F 2B), MOVQ mm/MOVDQA/MOVDQU (0F 6F/7F), MOVNTDQ (66 0F E7), FNINIT, FNSTCW and
 * FNSTSW; anything else touching MMIO is an emulation failure, which reaches user
 * space as KVM_EXIT_INTERNAL_ERROR (exit_on_emulation_failure_test relies on it). */
static bool kvm_emulates_on_mmio(const struct decoded_insn *d)
{
    if (emu_simd_is_vex(d))
        return false;
    if (d->opcode_map == 1) {
        switch (d->opcode) {
        case 0x10: case 0x11: /* only the no-prefix / 66 forms */
            return !(d->prefixes & (DPFX_REP | DPFX_REPNE));
        case 0x28: case 0x29: case 0x2b:
            return !(d->prefixes & (DPFX_REP | DPFX_REPNE));
        case 0x6f: case 0x7f:
            return !(d->prefixes & DPFX_REPNE);
        case 0xe7:
            return (d->prefixes & DPFX_OPSIZE) != 0;
        default:
            return false;
        }
    }
    /* x87 escape D9 /7 (FNSTCW) and DD /7 (FNSTSW m16) */
    return d->opcode_map == 0 && (d->opcode == 0xd9 || d->opcode == 0xdd) &&
           ((d->modrm >> 3) & 7) == 7;
}

void emu_simd_mmio_check(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i, bool write)
{
    if (kvm_emulates_on_mmio(d))
        return;
    unsigned acc = write ? EMU_ACC_WRITE : EMU_ACC_READ;
    uint64_t lin = emu_seg_lin(v, d->ops[i].seg, emu_opnd_ea(v, d, i), 1, acc);
    uint64_t gpa;
    uint32_t ec = emu_walk(v, lin, acc, false, &gpa, NULL, NULL);
    if (ec & EMU_WALK_RSVD_TDP)
        emu_unimplemented(v); /* KVM emulates the access (smaller MAXPHYADDR) and cannot */
    if (ec)
        return; /* the access itself will raise the #PF */
    if (!emu_gpa_to_host(v->pm, gpa, 1, write))
        emu_unimplemented(v);
}

static void check_align(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i, unsigned size)
{
    if (size > 1 && (emu_simd_lin(v, d, i) & (size - 1)))
        emu_raise(v, EMU_GP, 0);
}

void emu_simd_read(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i, simd_v128 r[2],
                   bool aligned)
{
    const struct decoder_operand *o = &d->ops[i];
    memset(r, 0, 2 * sizeof(*r));
    if (o->kind == DOPND_REG && o->reg_class == DREG_XMM) {
        memcpy(&r[0], v->cpu.fpu.xmm[o->reg], 16);
        if (o->size == 32)
            memcpy(&r[1], v->cpu.fpu.ymmh[o->reg], 16);
        return;
    }
    if (o->kind == DOPND_MEM) {
        unsigned size = o->size ? o->size : 16;
        if (size > 32)
            emu_unimplemented(v);
        if (aligned)
            check_align(v, d, i, size);
        emu_simd_mmio_check(v, d, i, false);
        emu_mem_read_buf(v, o->seg, emu_opnd_ea(v, d, i), r, size);
        return;
    }
    if (o->kind == DOPND_REG && o->reg_class == DREG_GPR) {
        r[0].q[0] = emu_opnd_read(v, d, i);
        return;
    }
    if (o->kind == DOPND_REG && o->reg_class == DREG_MMX) {
        memcpy(&r[0].q[0], v->cpu.fpu.st[o->reg & 7], 8);
        return;
    }
    /* operands and anything else not modelled yet: report, never guess */
    emu_unimplemented(v);
}

void emu_simd_write_reg(struct emu_vcpu *v, const struct decoded_insn *d, unsigned reg,
                        const simd_v128 *lo, const simd_v128 *hi)
{
    memcpy(v->cpu.fpu.xmm[reg], lo, 16);
    if (!emu_simd_is_vex(d))
        return;
    if (d->vex_l && hi)
        memcpy(v->cpu.fpu.ymmh[reg], hi, 16);
    else
        memset(v->cpu.fpu.ymmh[reg], 0, 16);
}

void emu_simd_write(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i,
                    const simd_v128 r[2], bool aligned)
{
    const struct decoder_operand *o = &d->ops[i];
    if (o->kind == DOPND_REG && o->reg_class == DREG_XMM) {
        emu_simd_write_reg(v, d, o->reg, &r[0], &r[1]);
        return;
    }
    if (o->kind == DOPND_MEM) {
        unsigned size = o->size ? o->size : 16;
        if (size > 32)
            emu_unimplemented(v);
        if (aligned)
            check_align(v, d, i, size);
        emu_simd_mmio_check(v, d, i, true);
        emu_mem_write_buf(v, o->seg, emu_opnd_ea(v, d, i), r, size);
        return;
    }
    if (o->kind == DOPND_REG && o->reg_class == DREG_GPR) {
        emu_opnd_write(v, d, i, r[0].q[0]);
        return;
    }
    if (o->kind == DOPND_REG && o->reg_class == DREG_MMX) {
        emu_simd_write_mmx(v, o->reg & 7, r[0].q[0]);
        return;
    }
    emu_unimplemented(v);
}

/* SDM vol.1 9.5.1: an MMX write sets the register's exponent/sign bits (79:64)
 * to all ones (TOP = 0 and all tags valid were set by emu_simd_check). */
void emu_simd_write_mmx(struct emu_vcpu *v, unsigned reg, uint64_t val)
{
    struct emu_fpu *f = &v->cpu.fpu;
    memcpy(f->st[reg], &val, 8);
    f->st[reg][8] = 0xff;
    f->st[reg][9] = 0xff;
    f->fsw &= (uint16_t)~(7u << 11);
    f->ftw = 0xff;
}

uint64_t emu_simd_supported_xcr0(struct emu_vcpu *v)
{
    for (unsigned i = 0; i < v->ncpuid; i++) {
        const struct emu_cpuid_entry *e = &v->cpuid[i];
        if (e->function == 0xd && e->index == 0)
            return ((uint64_t)e->edx << 32 | e->eax) & EMU_XFEATURES_IMPL;
    }
    return 0; /* KVM: no leaf 0DH, only x87 (always allowed by emu_xcr0_valid) */
}
