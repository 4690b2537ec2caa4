/* emu/: MUL IMUL DIV IDIV (SDM vol.2). DIV/IDIV raise #DE on a zero divisor or a
 * quotient that does not fit. MUL/IMUL set CF=OF when the high half is significant;
 * SF ZF AF PF are undefined (we leave them as computed from the low result). */
#include "emu/internal.h"

typedef unsigned __int128 u128;
typedef __int128 s128;

static void mul_flags(struct emu_vcpu *v, unsigned size, uint64_t lo, bool overflow)
{
    uint64_t f = overflow ? (EMU_FL_CF | EMU_FL_OF) : 0;
    uint64_t m = emu_mask(size);
    if ((lo & m) == 0)
        f |= EMU_FL_ZF;
    if ((lo >> (size * 8 - 1)) & 1)
        f |= EMU_FL_SF;
    if (emu_parity((uint8_t)lo))
        f |= EMU_FL_PF;
    emu_flags_update(v, EMU_FL_CF | EMU_FL_OF | EMU_FL_ZF | EMU_FL_SF | EMU_FL_PF | EMU_FL_AF, f);
}

/* Writes the double-width result of one-operand MUL/IMUL: AX for bytes, DX:AX etc. */
static void store_wide(struct emu_vcpu *v, unsigned size, u128 r)
{
    if (size == 1) {
        emu_gpr_write(v, EMU_RAX, 2, (uint64_t)r & 0xffff);
        return;
    }
    emu_gpr_write(v, EMU_RAX, size, (uint64_t)r);
    emu_gpr_write(v, EMU_RDX, size, (uint64_t)(r >> (size * 8)));
}

static int h_mul(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->ops[0].size;
    uint64_t m = emu_mask(size);
    u128 r = (u128)(v->cpu.gpr[EMU_RAX] & m) * emu_opnd_read(v, d, 0);
    store_wide(v, size, r);
    mul_flags(v, size, (uint64_t)r, (r >> (size * 8)) != 0);
    return EMU_H_NEXT;
}

static int h_imul(struct emu_vcpu *v, const struct decoded_insn *d)
{
    if (d->nops == 1) {
        unsigned size = d->ops[0].size;
        s128 r = (s128)emu_sext(v->cpu.gpr[EMU_RAX], size) * emu_sext(emu_opnd_read(v, d, 0), size);
        store_wide(v, size, (u128)r);
        mul_flags(v, size, (uint64_t)r, r != (s128)emu_sext((uint64_t)r, size));
        return EMU_H_NEXT;
    }
    /* two- and three-operand forms: dest = src1 * src2 truncated */
    unsigned size = d->ops[0].size;
    int64_t a = emu_sext(emu_opnd_read(v, d, d->nops == 3 ? 1 : 0), size);
    int64_t b = d->nops == 3 ? (int64_t)emu_opnd_read(v, d, 2) : emu_sext(emu_opnd_read(v, d, 1), size);
    b = emu_sext((uint64_t)b, size);
    s128 r = (s128)a * b;
    emu_opnd_write(v, d, 0, (uint64_t)r & emu_mask(size));
    mul_flags(v, size, (uint64_t)r, r != (s128)emu_sext((uint64_t)r, size));
    return EMU_H_NEXT;
}

static int h_div(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->ops[0].size;
    uint64_t m = emu_mask(size);
    uint64_t div = emu_opnd_read(v, d, 0) & m;
    if (!div)
        emu_raise(v, EMU_DE, EMU_NO_ERRCODE);
    u128 n = size == 1 ? (v->cpu.gpr[EMU_RAX] & 0xffff)
                       : ((u128)(v->cpu.gpr[EMU_RDX] & m) << (size * 8)) | (v->cpu.gpr[EMU_RAX] & m);
    u128 q = n / div, rem = n % div;
    if (q > m)
        emu_raise(v, EMU_DE, EMU_NO_ERRCODE);
    if (size == 1) {
        emu_gpr_write(v, EMU_RAX, 2, ((uint64_t)rem << 8) | (uint64_t)q);
    } else {
        emu_gpr_write(v, EMU_RAX, size, (uint64_t)q);
        emu_gpr_write(v, EMU_RDX, size, (uint64_t)rem);
    }
    return EMU_H_NEXT;
}

static int h_idiv(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->ops[0].size;
    uint64_t m = emu_mask(size);
    int64_t div = emu_sext(emu_opnd_read(v, d, 0), size);
    if (!div)
        emu_raise(v, EMU_DE, EMU_NO_ERRCODE);
    s128 n;
    if (size == 1)
        n = (int16_t)v->cpu.gpr[EMU_RAX];
    else if (size == 8)
        n = (s128)(((u128)v->cpu.gpr[EMU_RDX] << 64) | v->cpu.gpr[EMU_RAX]);
    else
        n = emu_sext(((v->cpu.gpr[EMU_RDX] & m) << (size * 8)) | (v->cpu.gpr[EMU_RAX] & m), size * 2);
    s128 q = n / div, rem = n % div;
    s128 lim = (s128)1 << (size * 8 - 1);
    if (q >= lim || q < -lim)
        emu_raise(v, EMU_DE, EMU_NO_ERRCODE);
    if (size == 1) {
        emu_gpr_write(v, EMU_RAX, 2, (((uint64_t)rem & 0xff) << 8) | ((uint64_t)q & 0xff));
    } else {
        emu_gpr_write(v, EMU_RAX, size, (uint64_t)q & m);
        emu_gpr_write(v, EMU_RDX, size, (uint64_t)rem & m);
    }
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_muldiv_handlers[] = {
    {DOP_MUL, h_mul}, {DOP_IMUL, h_imul}, {DOP_DIV, h_div}, {DOP_IDIV, h_idiv}, {0, NULL},
};
