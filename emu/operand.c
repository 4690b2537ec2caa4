/* emu/: operand access for instruction handlers (registers, memory through
 * segmentation + TLB, immediates) and the stack. */
#include <string.h>

#include "emu/internal.h"

uint64_t emu_gpr_read(struct emu_vcpu *v, unsigned reg, unsigned size)
{
    return v->cpu.gpr[reg] & emu_mask(size);
}

void emu_gpr_write(struct emu_vcpu *v, unsigned reg, unsigned size, uint64_t val)
{
    uint64_t *r = &v->cpu.gpr[reg];
    switch (size) {
    case 1: *r = (*r & ~0xffull) | (val & 0xff); break;
    case 2: *r = (*r & ~0xffffull) | (val & 0xffff); break;
    case 4: *r = (uint32_t)val; break; /* SDM vol.1 3.4.1.1: 32-bit results zero-extend */
    default: *r = val; break;
    }
}

static uint64_t reg_read(struct emu_vcpu *v, const struct decoder_operand *o)
{
    switch (o->reg_class) {
    case DREG_GPR:
        return emu_gpr_read(v, o->reg, o->size);
    case DREG_GPR8H:
        return (v->cpu.gpr[o->reg & 3] >> 8) & 0xff;
    case DREG_SEG:
        return v->cpu.seg[o->reg].selector;
    case DREG_CR:
        switch (o->reg) {
        case 0: return v->cpu.cr0;
        case 2: return v->cpu.cr2;
        case 3: return v->cpu.cr3;
        case 4: return v->cpu.cr4;
        case 8: return v->cpu.cr8;
        default: emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
        }
    case DREG_DR:
        return v->cpu.dr[o->reg & 7];
    default:
        emu_unimplemented(v);
    }
}

uint64_t emu_opnd_read(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i)
{
    const struct decoder_operand *o = &d->ops[i];
    switch (o->kind) {
    case DOPND_REG:
        return reg_read(v, o);
    case DOPND_MEM:
        if (o->size > 8)
            emu_unimplemented(v);
        return emu_mem_read(v, o->seg, emu_opnd_ea(v, d, i), o->size);
    case DOPND_IMM:
    case DOPND_REL:
        return (uint64_t)o->disp;
    default:
        emu_unimplemented(v);
    }
}

void emu_opnd_write(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i, uint64_t val)
{
    const struct decoder_operand *o = &d->ops[i];
    if (o->kind == DOPND_MEM) {
        if (o->size > 8)
            emu_unimplemented(v);
        emu_mem_write(v, o->seg, emu_opnd_ea(v, d, i), o->size, val);
        return;
    }
    if (o->kind != DOPND_REG)
        emu_unimplemented(v);
    switch (o->reg_class) {
    case DREG_GPR:
        emu_gpr_write(v, o->reg, o->size, val);
        return;
    case DREG_GPR8H: {
        uint64_t *r = &v->cpu.gpr[o->reg & 3];
        *r = (*r & ~0xff00ull) | ((val & 0xff) << 8);
        return;
    }
    case DREG_SEG:
        emu_load_seg(v, o->reg, (uint16_t)val);
        return;
    default:
        emu_unimplemented(v);
    }
}

void *emu_opnd_ptr(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i)
{
    const struct decoder_operand *o = &d->ops[i];
    if (o->kind != DOPND_MEM)
        return NULL;
    uint64_t lin = emu_seg_lin(v, o->seg, emu_opnd_ea(v, d, i), o->size, EMU_ACC_WRITE);
    if (lin & (o->size - 1))
        return NULL; /* split/misaligned locked access: fall back to read+write */
    return emu_lin_ptr(v, lin, o->size, EMU_ACC_WRITE);
}

unsigned emu_stack_addrsize(struct emu_vcpu *v)
{
    if (v->mode == DECODER_MODE_64)
        return 8;
    return v->cpu.seg[EMU_SS].db ? 4 : 2;
}

void emu_push(struct emu_vcpu *v, uint64_t val, unsigned size)
{
    unsigned as = emu_stack_addrsize(v);
    uint64_t sp = (v->cpu.gpr[EMU_RSP] - size) & emu_mask(as);
    emu_mem_write(v, EMU_SS, sp, size, val);
    emu_gpr_write(v, EMU_RSP, as, sp);
}

uint64_t emu_pop(struct emu_vcpu *v, unsigned size)
{
    unsigned as = emu_stack_addrsize(v);
    uint64_t sp = v->cpu.gpr[EMU_RSP] & emu_mask(as);
    uint64_t val = emu_mem_read(v, EMU_SS, sp, size);
    emu_gpr_write(v, EMU_RSP, as, sp + size);
    return val;
}
