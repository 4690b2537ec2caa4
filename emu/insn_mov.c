/* emu/: data movement: MOV (GPR, memory, immediate, moffs, segment, control and debug
 * registers), MOVZX MOVSX MOVSXD LEA XCHG XLAT LDS/LES/LFS/LGS/LSS, NOP-class
 * (NOP PAUSE PREFETCH CLFLUSHOPT CLWB). SDM vol.2. */
#include <sched.h>

#include "emu/internal.h"

#define CR4_DE (1ull << 3)

static int mov_cr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    if (v->cpu.cpl != 0)
        emu_raise(v, EMU_GP, 0);
    bool to_cr = d->ops[0].reg_class == DREG_CR;
    emu_icpt_cr(v, to_cr ? d->ops[0].reg : d->ops[1].reg, to_cr);
    if (to_cr) {
        uint64_t val = emu_opnd_read(v, d, 1);
        if (v->mode != DECODER_MODE_64)
            val = (uint32_t)val;
        emu_write_cr(v, d->ops[0].reg, emu_nested_cr_write(v, d->ops[0].reg, val));
        return EMU_H_NEXT;
    }
    emu_opnd_write(v, d, 0, emu_nested_cr_read(v, d->ops[1].reg, emu_opnd_read(v, d, 1)));
    return EMU_H_NEXT;
}

/* MOV DRn (SDM vol.3 18.2): DR4/DR5 alias DR6/DR7 unless CR4.DE (then #UD);
 * in 64-bit mode writing a 1 into bits 63:32 of DR6/DR7 is #GP(0). */
static unsigned dr_index(struct emu_vcpu *v, unsigned n)
{
    if (n > 7)
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    if (n == 4 || n == 5) {
        if (v->cpu.cr4 & CR4_DE)
            emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
        n += 2;
    }
    return n;
}

static int mov_dr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    if (c->cpl != 0)
        emu_raise(v, EMU_GP, 0);
    emu_debug_gd_check(v);
    bool to_dr = d->ops[0].reg_class == DREG_DR;
    emu_icpt_dr(v, to_dr ? d->ops[0].reg : d->ops[1].reg, to_dr);
    if (to_dr) {
        unsigned n = dr_index(v, d->ops[0].reg);
        uint64_t val = emu_opnd_read(v, d, 1);
        if (v->mode != DECODER_MODE_64)
            val = (uint32_t)val;
        if ((n == 6 || n == 7) && (val >> 32))
            emu_raise(v, EMU_GP, 0);
        if (n == 6)
            val = (val & 0x1e00f) | 0xffff0ff0;
        else if (n == 7)
            val = (val & ~0xd800ull) | 0x400;
        c->dr[n] = val;
        if (n == 7)
            emu_debug_update(v);
        return EMU_H_NEXT;
    }
    unsigned n = dr_index(v, d->ops[1].reg);
    emu_opnd_write(v, d, 0, c->dr[n]);
    return EMU_H_NEXT;
}

static int h_mov(struct emu_vcpu *v, const struct decoded_insn *d)
{
    const struct decoder_operand *o0 = &d->ops[0], *o1 = &d->ops[1];
    if (o0->kind == DOPND_REG && o0->reg_class == DREG_GPR && o1->kind == DOPND_REG &&
        o1->reg_class == DREG_GPR) {
        emu_gpr_write(v, o0->reg, o0->size, v->cpu.gpr[o1->reg]);
        return EMU_H_NEXT;
    }
    if (o0->reg_class == DREG_CR || o1->reg_class == DREG_CR)
        return mov_cr(v, d);
    if (o0->reg_class == DREG_DR || o1->reg_class == DREG_DR)
        return mov_dr(v, d);
    if (o0->kind == DOPND_REG && o0->reg_class == DREG_SEG) {
        if (o0->reg == EMU_CS || o0->reg > EMU_GS)
            emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
        emu_load_seg(v, o0->reg, (uint16_t)emu_opnd_read(v, d, 1));
        if (o0->reg == EMU_SS)
            v->cpu.ev.int_shadow |= 2; /* KVM_X86_SHADOW_INT_MOV_SS: SDM vol.3 6.8.3 */
        return EMU_H_NEXT;
    }
    emu_opnd_write(v, d, 0, emu_opnd_read(v, d, 1));
    return EMU_H_NEXT;
}

static int h_movzx(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_opnd_write(v, d, 0, emu_opnd_read(v, d, 1));
    return EMU_H_NEXT;
}

static int h_movsx(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_opnd_write(v, d, 0, (uint64_t)emu_sext(emu_opnd_read(v, d, 1), d->ops[1].size));
    return EMU_H_NEXT;
}

static int h_lea(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_opnd_write(v, d, 0, emu_opnd_ea(v, d, 1));
    return EMU_H_NEXT;
}

/* XCHG with memory is always locked (SDM: "the processor's locking protocol is
 * automatically implemented"). */
static int h_xchg(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->ops[0].size;
    unsigned mi = d->ops[0].kind == DOPND_MEM ? 0 : d->ops[1].kind == DOPND_MEM ? 1 : 2;
    if (mi < 2) {
        unsigned ri = 1 - mi;
        uint64_t r = emu_opnd_read(v, d, ri), old;
        void *p = emu_opnd_ptr(v, d, mi);
        if (p) {
            switch (size) {
            case 1: old = __atomic_exchange_n((uint8_t *)p, (uint8_t)r, __ATOMIC_SEQ_CST); break;
            case 2: old = __atomic_exchange_n((uint16_t *)p, (uint16_t)r, __ATOMIC_SEQ_CST); break;
            case 4: old = __atomic_exchange_n((uint32_t *)p, (uint32_t)r, __ATOMIC_SEQ_CST); break;
            default: old = __atomic_exchange_n((uint64_t *)p, r, __ATOMIC_SEQ_CST); break;
            }
        } else {
            old = emu_opnd_read(v, d, mi);
            emu_opnd_write(v, d, mi, r);
        }
        emu_opnd_write(v, d, ri, old);
        return EMU_H_NEXT;
    }
    uint64_t a = emu_opnd_read(v, d, 0), b = emu_opnd_read(v, d, 1);
    emu_opnd_write(v, d, 0, b);
    emu_opnd_write(v, d, 1, a);
    return EMU_H_NEXT;
}

static int h_nop(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)v;
    (void)d;
    return EMU_H_NEXT;
}

/* Pause-loop exiting as KVM sets it up (svm.c pause_filter_count 3000 with
 * pause_filter_thresh 128; vmx.c ple_window 4096 with ple_gap 128): PAUSEs less than 128
 * apart (counted here in retired instructions, published per block) that go on for 3000
 * make the vCPU give its host CPU away (kvm_vcpu_on_spin yields to another vCPU), so a
 * spinning vCPU does not starve the one it waits for on an overcommitted host. Not with
 * KVM_X86_DISABLE_EXITS_PAUSE, where the guest owns the CPU. */
#define PLE_COUNT 3000
#define PLE_GAP 128

static int h_pause(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    emu_icpt_insn(v, EMU_NX_PAUSE, 0);
    if (v->policy.pause_in_guest)
        return EMU_H_NEXT;
    if (v->icount - v->ple_last > PLE_GAP)
        v->ple_count = 0;
    v->ple_last = v->icount;
    if (++v->ple_count >= PLE_COUNT) {
        v->ple_count = 0;
        v->ple_yields++;
        sched_yield();
    }
    return EMU_H_NEXT;
}

static int h_xlatb(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned seg = (d->prefixes & DPFX_SEG) ? d->seg_override : EMU_DS;
    uint64_t ea = (v->cpu.gpr[EMU_RBX] + (v->cpu.gpr[EMU_RAX] & 0xff)) & emu_mask(d->addrsize);
    emu_gpr_write(v, EMU_RAX, 1, emu_mem_read(v, seg, ea, 1));
    return EMU_H_NEXT;
}

/* LDS/LES/LFS/LGS/LSS r, m16:16/32/64: offset then selector. */
static int load_far(struct emu_vcpu *v, const struct decoded_insn *d, unsigned seg)
{
    unsigned size = d->ops[0].size;
    uint64_t ea = emu_opnd_ea(v, d, 1);
    uint64_t off = emu_mem_read(v, d->ops[1].seg, ea, size);
    uint16_t sel = (uint16_t)emu_mem_read(v, d->ops[1].seg, (ea + size) & emu_mask(d->addrsize), 2);
    emu_load_seg(v, seg, sel);
    emu_opnd_write(v, d, 0, off);
    return EMU_H_NEXT;
}

static int h_lds(struct emu_vcpu *v, const struct decoded_insn *d) { return load_far(v, d, EMU_DS); }
static int h_les(struct emu_vcpu *v, const struct decoded_insn *d) { return load_far(v, d, EMU_ES); }
static int h_lfs(struct emu_vcpu *v, const struct decoded_insn *d) { return load_far(v, d, EMU_FS); }
static int h_lgs(struct emu_vcpu *v, const struct decoded_insn *d) { return load_far(v, d, EMU_GS); }
static int h_lss(struct emu_vcpu *v, const struct decoded_insn *d) { return load_far(v, d, EMU_SS); }

/* PREFETCH/CLFLUSHOPT/CLWB: no architectural effect here (no caches), but CLFLUSH-class
 * instructions fault like a byte read on a bad address (SDM "CLFLUSHOPT"). */
static int h_cacheline(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_seg_lin(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), 1, EMU_ACC_READ);
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_mov_handlers[] = {
    {DOP_MOV, h_mov}, {DOP_MOVZX, h_movzx}, {DOP_MOVSX, h_movsx}, {DOP_MOVSXD, h_movsx},
    {DOP_LEA, h_lea}, {DOP_XCHG, h_xchg}, {DOP_NOP, h_nop}, {DOP_PAUSE, h_pause},
    {DOP_PREFETCH, h_nop}, {DOP_PREFETCHW, h_nop}, {DOP_CLFLUSHOPT, h_cacheline},
    {DOP_CLWB, h_cacheline}, {DOP_XLATB, h_xlatb},
    {DOP_LDS, h_lds}, {DOP_LES, h_les}, {DOP_LFS, h_lfs}, {DOP_LGS, h_lgs}, {DOP_LSS, h_lss},
    {0, NULL},
};
