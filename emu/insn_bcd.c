/* emu/: decimal arithmetic DAA DAS AAA AAS AAM AAD (SDM vol.2 pseudo-code; legacy
 * modes only: the decoder makes them #UD in 64-bit mode). */
#include "emu/internal.h"

static uint64_t szp8(uint8_t r)
{
    return (r == 0 ? EMU_FL_ZF : 0) | ((r & 0x80) ? EMU_FL_SF : 0) | (emu_parity(r) ? EMU_FL_PF : 0);
}

#define ALL6 (EMU_FL_CF | EMU_FL_PF | EMU_FL_AF | EMU_FL_ZF | EMU_FL_SF | EMU_FL_OF)

static int h_daa(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    uint64_t f = emu_flags(v);
    uint8_t al = (uint8_t)v->cpu.gpr[EMU_RAX], old_al = al;
    bool old_cf = f & EMU_FL_CF, cf = false, af = false;
    if ((al & 0xf) > 9 || (f & EMU_FL_AF)) {
        cf = old_cf || al > 0xf9;
        al += 6;
        af = true;
    }
    if (old_al > 0x99 || old_cf) {
        al += 0x60;
        cf = true;
    }
    emu_gpr_write(v, EMU_RAX, 1, al);
    emu_flags_update(v, ALL6, szp8(al) | (cf ? EMU_FL_CF : 0) | (af ? EMU_FL_AF : 0));
    return EMU_H_NEXT;
}

static int h_das(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    uint64_t f = emu_flags(v);
    uint8_t al = (uint8_t)v->cpu.gpr[EMU_RAX], old_al = al;
    bool old_cf = f & EMU_FL_CF, cf = false, af = false;
    if ((al & 0xf) > 9 || (f & EMU_FL_AF)) {
        cf = old_cf || al < 6;
        al -= 6;
        af = true;
    }
    if (old_al > 0x99 || old_cf) {
        al -= 0x60;
        cf = true;
    }
    emu_gpr_write(v, EMU_RAX, 1, al);
    emu_flags_update(v, ALL6, szp8(al) | (cf ? EMU_FL_CF : 0) | (af ? EMU_FL_AF : 0));
    return EMU_H_NEXT;
}

static int aaa_aas(struct emu_vcpu *v, bool sub)
{
    uint64_t f = emu_flags(v);
    uint16_t ax = (uint16_t)v->cpu.gpr[EMU_RAX];
    bool adj = (ax & 0xf) > 9 || (f & EMU_FL_AF);
    if (adj) {
        if (sub) {
            ax = (uint16_t)(ax - 6);
            ax = (uint16_t)((ax & 0xff) | ((((ax >> 8) - 1) & 0xff) << 8));
        } else {
            ax = (uint16_t)(ax + 0x106);
        }
    }
    ax &= 0xff0f;
    emu_gpr_write(v, EMU_RAX, 2, ax);
    emu_flags_update(v, ALL6, szp8((uint8_t)ax) | (adj ? EMU_FL_CF | EMU_FL_AF : 0));
    return EMU_H_NEXT;
}

static int h_aaa(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; return aaa_aas(v, false); }
static int h_aas(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; return aaa_aas(v, true); }

static int h_aam(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint8_t base = (uint8_t)emu_opnd_read(v, d, 0);
    if (!base)
        emu_raise(v, EMU_DE, EMU_NO_ERRCODE);
    uint8_t al = (uint8_t)v->cpu.gpr[EMU_RAX];
    uint8_t ah = al / base;
    al = al % base;
    emu_gpr_write(v, EMU_RAX, 2, ((uint16_t)ah << 8) | al);
    emu_flags_update(v, ALL6, szp8(al));
    return EMU_H_NEXT;
}

static int h_aad(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint8_t base = (uint8_t)emu_opnd_read(v, d, 0);
    uint16_t ax = (uint16_t)v->cpu.gpr[EMU_RAX];
    uint8_t al = (uint8_t)((ax & 0xff) + (ax >> 8) * base);
    emu_gpr_write(v, EMU_RAX, 2, al);
    emu_flags_update(v, ALL6, szp8(al));
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_bcd_handlers[] = {
    {DOP_DAA, h_daa}, {DOP_DAS, h_das}, {DOP_AAA, h_aaa}, {DOP_AAS, h_aas},
    {DOP_AAM, h_aam}, {DOP_AAD, h_aad}, {0, NULL},
};
