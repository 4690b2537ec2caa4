/* emu/: shifts and rotates: SHL/SAL SHR SAR ROL ROR RCL RCR SHLD SHRD (SDM vol.2
 * "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR", "SHLD", "SHRD"). Count masked to 5 bits
 * (6 with 64-bit operands); a masked count of 0 changes no flags. OF is defined
 * only for 1-bit shifts (we compute the 1-bit formula always, as hardware does). */
#include "emu/internal.h"

enum shk { S_ROL, S_ROR, S_RCL, S_RCR, S_SHL, S_SHR, S_SAL, S_SAR };

static uint64_t szp(uint64_t r, unsigned size)
{
    uint64_t f = 0;
    if ((r & emu_mask(size)) == 0)
        f |= EMU_FL_ZF;
    if ((r >> (size * 8 - 1)) & 1)
        f |= EMU_FL_SF;
    if (emu_parity((uint8_t)r))
        f |= EMU_FL_PF;
    return f;
}

static int shift(struct emu_vcpu *v, const struct decoded_insn *d, enum shk k)
{
    unsigned size = d->ops[0].size, bits = size * 8;
    uint64_t m = emu_mask(size);
    unsigned cnt = (unsigned)emu_opnd_read(v, d, 1) & (size == 8 ? 63 : 31);
    uint64_t a = emu_opnd_read(v, d, 0) & m, r = a;
    uint64_t msb = 1ull << (bits - 1);
    uint64_t fl = emu_flags(v);
    bool cf = fl & EMU_FL_CF, of = fl & EMU_FL_OF;
    uint64_t mask = EMU_FL_CF | EMU_FL_OF, f;
    if (cnt == 0) {
        emu_opnd_write(v, d, 0, a); /* still a write access (faults/size zero-ext) */
        return EMU_H_NEXT;
    }
    switch (k) {
    case S_ROL: {
        unsigned c = cnt % bits;
        r = c ? ((a << c) | (a >> (bits - c))) & m : a;
        cf = r & 1;
        of = !!(r & msb) ^ cf;
        break;
    }
    case S_ROR: {
        unsigned c = cnt % bits;
        r = c ? ((a >> c) | (a << (bits - c))) & m : a;
        cf = !!(r & msb);
        of = !!(r & msb) ^ !!(r & (msb >> 1));
        break;
    }
    case S_RCL: {
        unsigned c = cnt % (bits + 1);
        for (unsigned i = 0; i < c; i++) {
            bool out = !!(r & msb);
            r = ((r << 1) | cf) & m;
            cf = out;
        }
        of = !!(r & msb) ^ cf;
        break;
    }
    case S_RCR: {
        unsigned c = cnt % (bits + 1);
        of = !!(a & msb) ^ cf;
        for (unsigned i = 0; i < c; i++) {
            bool out = r & 1;
            r = (r >> 1) | (cf ? msb : 0);
            cf = out;
        }
        break;
    }
    case S_SHL:
    case S_SAL:
        cf = cnt <= bits ? (a >> (bits - cnt)) & 1 : 0;
        r = cnt < 64 ? (a << cnt) & m : 0;
        of = !!(r & msb) ^ cf;
        mask |= EMU_FL_SF | EMU_FL_ZF | EMU_FL_PF | EMU_FL_AF;
        break;
    case S_SHR:
        cf = (a >> (cnt - 1)) & 1;
        r = cnt < 64 ? a >> cnt : 0;
        of = !!(a & msb);
        mask |= EMU_FL_SF | EMU_FL_ZF | EMU_FL_PF | EMU_FL_AF;
        break;
    case S_SAR: {
        int64_t s = emu_sext(a, size);
        cf = (s >> (cnt - 1)) & 1;
        r = (uint64_t)(s >> cnt) & m;
        of = false;
        mask |= EMU_FL_SF | EMU_FL_ZF | EMU_FL_PF | EMU_FL_AF;
        break;
    }
    }
    emu_opnd_write(v, d, 0, r);
    f = (cf ? EMU_FL_CF : 0) | (of ? EMU_FL_OF : 0) | szp(r, size);
    emu_flags_update(v, mask, f);
    return EMU_H_NEXT;
}

static int h_rol(struct emu_vcpu *v, const struct decoded_insn *d) { return shift(v, d, S_ROL); }
static int h_ror(struct emu_vcpu *v, const struct decoded_insn *d) { return shift(v, d, S_ROR); }
static int h_rcl(struct emu_vcpu *v, const struct decoded_insn *d) { return shift(v, d, S_RCL); }
static int h_rcr(struct emu_vcpu *v, const struct decoded_insn *d) { return shift(v, d, S_RCR); }
static int h_shl(struct emu_vcpu *v, const struct decoded_insn *d) { return shift(v, d, S_SHL); }
static int h_shr(struct emu_vcpu *v, const struct decoded_insn *d) { return shift(v, d, S_SHR); }
static int h_sar(struct emu_vcpu *v, const struct decoded_insn *d) { return shift(v, d, S_SAR); }

/* SHLD/SHRD: dest shifted with bits from src; count > size is undefined for 16-bit. */
static int shxd(struct emu_vcpu *v, const struct decoded_insn *d, bool left)
{
    unsigned size = d->ops[0].size, bits = size * 8;
    uint64_t m = emu_mask(size);
    unsigned cnt = (unsigned)emu_opnd_read(v, d, 2) & (size == 8 ? 63 : 31);
    uint64_t a = emu_opnd_read(v, d, 0) & m, b = emu_opnd_read(v, d, 1) & m;
    if (cnt == 0) {
        emu_opnd_write(v, d, 0, a);
        return EMU_H_NEXT;
    }
    unsigned __int128 w;
    uint64_t r;
    bool cf;
    if (left) {
        /* concatenate dest:src (and src again for 16-bit counts > 16) */
        w = ((unsigned __int128)a << bits) | b;
        if (size == 2)
            w = (w << 16) | a;
        unsigned total = size == 2 ? 48 : 2 * bits;
        r = (uint64_t)(w >> (total - bits - cnt)) & m;
        cf = (w >> (total - cnt)) & 1;
    } else {
        w = ((unsigned __int128)b << bits) | a;
        if (size == 2)
            w |= (unsigned __int128)a << 32;
        r = (uint64_t)(w >> cnt) & m;
        cf = (w >> (cnt - 1)) & 1;
    }
    uint64_t msb = 1ull << (bits - 1);
    bool of = !!((r ^ a) & msb);
    emu_opnd_write(v, d, 0, r);
    emu_flags_update(v, EMU_FL_CF | EMU_FL_OF | EMU_FL_SF | EMU_FL_ZF | EMU_FL_PF | EMU_FL_AF,
                     (cf ? EMU_FL_CF : 0) | (of ? EMU_FL_OF : 0) | szp(r, size));
    return EMU_H_NEXT;
}

static int h_shld(struct emu_vcpu *v, const struct decoded_insn *d) { return shxd(v, d, true); }
static int h_shrd(struct emu_vcpu *v, const struct decoded_insn *d) { return shxd(v, d, false); }

const struct emu_handler_entry emu_shift_handlers[] = {
    {DOP_ROL, h_rol}, {DOP_ROR, h_ror}, {DOP_RCL, h_rcl}, {DOP_RCR, h_rcr},
    {DOP_SHL, h_shl}, {DOP_SAL, h_shl}, {DOP_SHR, h_shr}, {DOP_SAR, h_sar},
    {DOP_SHLD, h_shld}, {DOP_SHRD, h_shrd},
    {0, NULL},
};
