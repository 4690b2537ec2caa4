/* emu/: stack instructions PUSH POP PUSHA POPA PUSHF POPF ENTER LEAVE (SDM vol.2). */
#include "emu/internal.h"

static int h_push(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->opsize;
    uint64_t val = emu_opnd_read(v, d, 0);
    emu_push(v, val & emu_mask(size), size);
    return EMU_H_NEXT;
}

static int h_pop(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->opsize;
    const struct decoder_operand *o = &d->ops[0];
    if (o->kind == DOPND_REG && o->reg_class == DREG_SEG) {
        unsigned as = emu_stack_addrsize(v);
        uint64_t sp = v->cpu.gpr[EMU_RSP] & emu_mask(as);
        uint16_t sel = (uint16_t)emu_mem_read(v, EMU_SS, sp, size);
        emu_load_seg(v, o->reg, sel); /* may fault: RSP not yet changed */
        emu_gpr_write(v, EMU_RSP, as, sp + size);
        if (o->reg == EMU_SS)
            v->cpu.ev.int_shadow |= 2;
        return EMU_H_NEXT;
    }
    if (o->kind == DOPND_MEM) {
        /* the destination address is computed with the incremented RSP (SDM "POP") */
        unsigned as = emu_stack_addrsize(v);
        uint64_t sp = v->cpu.gpr[EMU_RSP] & emu_mask(as);
        uint64_t val = emu_mem_read(v, EMU_SS, sp, size);
        uint64_t old = v->cpu.gpr[EMU_RSP];
        emu_gpr_write(v, EMU_RSP, as, sp + size);
        uint64_t ea = emu_opnd_ea(v, d, 0);
        v->cpu.gpr[EMU_RSP] = old;
        emu_mem_write(v, o->seg, ea, size, val);
        emu_gpr_write(v, EMU_RSP, as, sp + size);
        return EMU_H_NEXT;
    }
    uint64_t val = emu_pop(v, size);
    emu_opnd_write(v, d, 0, val);
    return EMU_H_NEXT;
}

static int h_pusha(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->opsize;
    uint64_t sp = v->cpu.gpr[EMU_RSP];
    for (unsigned r = 0; r < 8; r++)
        emu_push(v, r == EMU_RSP ? sp : v->cpu.gpr[r], size);
    return EMU_H_NEXT;
}

static int h_popa(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->opsize;
    for (int r = 7; r >= 0; r--) {
        uint64_t val = emu_pop(v, size);
        if (r != EMU_RSP)
            emu_gpr_write(v, (unsigned)r, size, val);
    }
    return EMU_H_NEXT;
}

static int h_pushf(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t f = emu_flags(v);
    if ((f & EMU_FL_VM) && ((f & EMU_FL_IOPL) >> 12) < 3)
        emu_raise(v, EMU_GP, 0);
    emu_icpt_insn(v, EMU_NX_PUSHF, 0);
    emu_push(v, f & ~(uint64_t)(EMU_FL_VM | EMU_FL_RF), d->opsize);
    return EMU_H_NEXT;
}

/* POPF (SDM "POPF"): IOPL changes only at CPL 0, IF only when CPL <= IOPL; VM, RF,
 * VIP, VIF are never changed by POPF. */
static int h_popf(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    uint64_t old = emu_flags(v);
    unsigned iopl = (old & EMU_FL_IOPL) >> 12;
    if ((old & EMU_FL_VM) && iopl < 3)
        emu_raise(v, EMU_GP, 0);
    emu_icpt_insn(v, EMU_NX_POPF, 0);
    uint64_t val = emu_pop(v, d->opsize);
    uint64_t mask = EMU_FL_CF | EMU_FL_PF | EMU_FL_AF | EMU_FL_ZF | EMU_FL_SF | EMU_FL_TF |
                    EMU_FL_DF | EMU_FL_OF | EMU_FL_NT | EMU_FL_AC | EMU_FL_ID;
    bool prot = (c->cr0 & 1) && !(old & EMU_FL_VM);
    if (!prot || c->cpl == 0)
        mask |= EMU_FL_IOPL;
    if (!prot || (unsigned)c->cpl <= iopl)
        mask |= EMU_FL_IF;
    if (d->opsize == 2)
        mask &= 0xffff;
    emu_flags_set(v, (old & ~mask) | (val & mask));
    v->kick = 1; /* IF may have become 1: look at pending interrupts */
    return EMU_H_NEXT;
}

static int h_enter(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    unsigned size = d->opsize, as = emu_stack_addrsize(v);
    uint64_t alloc = emu_opnd_read(v, d, 0) & 0xffff;
    unsigned level = (unsigned)emu_opnd_read(v, d, 1) & 31;
    uint64_t rbp = c->gpr[EMU_RBP];
    emu_push(v, rbp, size);
    uint64_t frame = c->gpr[EMU_RSP] & emu_mask(as);
    for (unsigned i = 1; i < level; i++) {
        rbp = (rbp - size) & emu_mask(as);
        emu_push(v, emu_mem_read(v, EMU_SS, rbp, size), size);
    }
    if (level)
        emu_push(v, frame, size);
    uint64_t sp = (c->gpr[EMU_RSP] - alloc) & emu_mask(as);
    emu_seg_lin(v, EMU_SS, sp, 1, EMU_ACC_WRITE); /* the new stack top must be valid */
    emu_gpr_write(v, EMU_RBP, size, frame);
    emu_gpr_write(v, EMU_RSP, as, sp);
    return EMU_H_NEXT;
}

static int h_leave(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    unsigned as = emu_stack_addrsize(v);
    uint64_t sp = c->gpr[EMU_RBP] & emu_mask(as);
    uint64_t val = emu_mem_read(v, EMU_SS, sp, d->opsize);
    emu_gpr_write(v, EMU_RSP, as, sp + d->opsize);
    emu_gpr_write(v, EMU_RBP, d->opsize, val);
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_stack_handlers[] = {
    {DOP_PUSH, h_push}, {DOP_POP, h_pop}, {DOP_PUSHAW, h_pusha}, {DOP_PUSHAL, h_pusha},
    {DOP_POPAW, h_popa}, {DOP_POPAL, h_popa}, {DOP_PUSHF, h_pushf}, {DOP_PUSHFD, h_pushf},
    {DOP_PUSHFQ, h_pushf}, {DOP_POPF, h_popf}, {DOP_POPFD, h_popf}, {DOP_POPFQ, h_popf},
    {DOP_ENTER, h_enter}, {DOP_LEAVE, h_leave},
    {0, NULL},
};
