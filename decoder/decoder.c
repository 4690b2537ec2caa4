/* decoder/: instruction decoding driven by the generated tables.
 *
 * Order of work follows SDM vol.2 ch.2: legacy prefixes / REX (2.1, 2.2.1),
 * VEX/EVEX (2.3, 2.7), opcode map escape, ModRM/SIB/displacement (2.1.5),
 * immediates. The decode table (decoder/opcodes.tbl) lists candidate
 * encodings per opcode byte, most specific first; the first whose constraints
 * hold wins. No allocation, no string work. */
#include <stddef.h>
#include <string.h>

#include "decoder/decoder.h"
#include "decoder/decoder_tables.h"
#include "decoder/operand_types.h"

/* decoding state that does not belong in the output struct */
struct dstate {
    const uint8_t *b;
    size_t len;
    unsigned avail; /* min(len, DECODER_MAX_LEN) */
    unsigned i;     /* next byte */
    int status;     /* first failure, DECODER_OK if none */
    uint8_t mode;
    uint8_t has66, has67, lastrep; /* lastrep: 0, 0xF2 or 0xF3 */
    uint8_t mp;                    /* mandatory prefix code: 1 none 2 66 3 F3 4 F2 */
    uint8_t rex_w, rex_r, rex_x, rex_b;
    uint8_t vex, vex_l, evex_b;
    uint8_t mod, regf, rmf;
};

static __attribute__((noinline)) int need_slow(struct dstate *s, unsigned n)
{
    if (s->i + n > DECODER_MAX_LEN) {
        if (!s->status)
            s->status = DECODER_TOO_LONG;
        return 0;
    }
    if (s->i + n > s->len) {
        if (!s->status)
            s->status = DECODER_TRUNCATED;
        return 0;
    }
    return 1;
}

/* bytes i..i+n-1 exist and stay within 15 bytes */
static inline int need(struct dstate *s, unsigned n)
{
    if (__builtin_expect(s->i + n <= s->avail, 1))
        return 1;
    return need_slow(s, n);
}

static inline uint64_t read_le(struct dstate *s, unsigned n)
{
    uint64_t v = 0;
    if (!need(s, n))
        return 0;
    if (s->i + 8 <= s->len) {
        /* one unaligned load, then keep n bytes (x86 hosts are little-endian) */
        memcpy(&v, s->b + s->i, 8);
        if (n < 8)
            v &= (1ull << (8 * n)) - 1;
    } else {
        for (unsigned k = 0; k < n; k++)
            v |= (uint64_t)s->b[s->i + k] << (8 * k);
    }
    s->i += n;
    return v;
}

static int64_t sext(uint64_t v, unsigned bytes)
{
    if (bytes >= 8)
        return (int64_t)v;
    unsigned sh = 64 - 8 * bytes;
    return (int64_t)(v << sh) >> sh;
}

static inline unsigned size_of(unsigned code, const struct decoded_insn *d, const struct dstate *s)
{
    /* plain ifs for the common codes: a jump table here mispredicts on real code */
    if (code < SZ_V)
        return code;
    if (code == SZ_V)
        return d->opsize;
    switch (code) {
    case SZ_V: return d->opsize;
    case SZ_Z: return d->opsize == 2 ? 2 : 4;
    case SZ_Y: return d->opsize == 8 ? 8 : 4;
    case SZ_X: return s->vex_l ? 32 : 16;
    case SZ_P: return d->opsize + 2u;
    case SZ_S: return s->mode == DECODER_MODE_64 ? 10 : 6;
    case SZ_A: return 2u * d->opsize;
    case SZ_ENV: return d->opsize == 2 ? 14 : 28;
    case SZ_FST: return d->opsize == 2 ? 94 : 108;
    case SZ_H: return s->vex_l ? 16 : 8;
    case SZ_QTR: return s->vex_l ? 8 : 4;
    case SZ_OCT: return s->vex_l ? 4 : 2;
    default: return code;
    }
}

/* Default segment when none is overridden: SS for rBP/rSP-based addresses,
 * DS otherwise (SDM vol.1 3.7.4). In 64-bit mode only FS/GS overrides have an
 * effect (SDM vol.1 3.3.7.1), so others are dropped there. */
static uint8_t effective_seg(const struct decoded_insn *d, const struct dstate *s, uint8_t base)
{
    if (d->prefixes & DPFX_SEG) {
        if (s->mode != DECODER_MODE_64 || d->seg_override >= 4)
            return d->seg_override;
    }
    return (base == 4 || base == 5) ? 2 : 3;
}

/* 16-bit ModRM addressing (SDM vol.2 table 2-1) */
static const uint8_t modrm16_base[8] = {3, 3, 5, 5, 6, 7, 5, 3};
static const uint8_t modrm16_index[8] = {6, 7, 6, 7, DECODER_NO_REG, DECODER_NO_REG,
                                         DECODER_NO_REG, DECODER_NO_REG};

static inline __attribute__((always_inline)) void decode_mem(struct dstate *s, struct decoded_insn *d, struct decoder_operand *o)
{
    o->kind = DOPND_MEM;
    o->scale = 1;
    o->index = DECODER_NO_REG;
    unsigned mod = s->mod, rm = s->rmf;
    if (d->addrsize == 2) {
        o->base = modrm16_base[rm];
        o->index = modrm16_index[rm];
        if (mod == 0 && rm == 6) {
            o->base = DECODER_NO_REG;
            o->disp = sext(read_le(s, 2), 2);
        } else if (mod == 1) {
            o->disp = sext(read_le(s, 1), 1);
        } else if (mod == 2) {
            o->disp = sext(read_le(s, 2), 2);
        }
        /* BP-based forms default to SS */
        uint8_t segbase = (o->base == 5) ? 5 : 3;
        o->seg = effective_seg(d, s, segbase);
        return;
    }
    /* 32/64-bit forms (SDM tables 2-2, 2-3), written with few branches: the
     * displacement size comes from mod, and "no base" (mod 0 with r/m or SIB
     * base 101b) turns it into disp32 -- RIP-relative only without a SIB. */
    static const uint8_t disp_by_mod[4] = {0, 1, 4, 0};
    unsigned dispn = disp_by_mod[mod];
    unsigned base = rm;
    int rip = 0;
    if (rm == 4) {
        if (!need(s, 1))
            return;
        uint8_t sib = s->b[s->i++];
        d->sib = sib;
        unsigned idx = ((sib >> 3) & 7) | (s->rex_x << 3);
        o->scale = (uint8_t)(1u << (sib >> 6));
        o->index = idx == 4 ? DECODER_NO_REG : (uint8_t)idx; /* SIB index 100b = none */
        base = sib & 7;
    } else {
        rip = s->mode == DECODER_MODE_64;
    }
    uint8_t basereg = (uint8_t)base;
    if (base == 5 && mod == 0) {
        dispn = 4;
        basereg = DECODER_NO_REG;
        o->base = rip ? DECODER_BASE_RIP : DECODER_NO_REG;
    } else {
        o->base = (uint8_t)(base | (s->rex_b << 3));
    }
    if (dispn)
        o->disp = sext(read_le(s, dispn), dispn);
    o->seg = effective_seg(d, s, basereg);
}

/* GPR in a byte slot: without REX, 4-7 are AH..BH (SDM 3.4.1.1 of vol.1) */
static void set_gpr(struct decoder_operand *o, const struct dstate *s, unsigned reg, unsigned size,
                    int has_rex)
{
    o->kind = DOPND_REG;
    o->size = (uint8_t)size;
    if (size == 1 && !has_rex && reg >= 4 && reg < 8) {
        o->reg_class = DREG_GPR8H;
        o->reg = (uint8_t)(reg - 4);
    } else {
        o->reg_class = DREG_GPR;
        o->reg = (uint8_t)reg;
    }
    (void)s;
}

/* Decode one operand. Returns 0 if the encoding is invalid (#UD). */
static int decode_operand(struct dstate *s, struct decoded_insn *d, struct decoder_operand *o,
                          unsigned type)
{
    const struct dec_opnd_desc *t = &dec_opnd_desc[type];
    unsigned size = size_of(t->size, d, s);
    int has_rex = d->rex != 0 || s->vex;
    o->size = (uint8_t)size;
    if (t->src == S_G && t->cls == DREG_GPR) { /* most frequent operand: a GPR in ModRM.reg */
        set_gpr(o, s, s->regf | (s->rex_r << 3), size, has_rex);
        return 1;
    }
    switch (t->src) {
    case S_E:
        if (s->mod != 3) {
            decode_mem(s, d, o);
            return 1;
        }
        __attribute__((fallthrough)); /* register form */
    case S_R: {
        unsigned reg = s->rmf | (t->cls == DREG_MMX || t->cls == DREG_ST ? 0 : s->rex_b << 3);
        if (t->cls == DREG_GPR) {
            set_gpr(o, s, reg, size, has_rex);
        } else {
            o->kind = DOPND_REG;
            o->reg_class = t->cls;
            o->reg = (uint8_t)reg;
            if (t->fix)
                o->size = t->fix; /* the whole register when not memory */
        }
        return 1;
    }
    case S_M:
        decode_mem(s, d, o);
        return 1;
    case S_MV:
        /* VSIB (SDM 2.3.12): SIB required; its index (REX/VEX.X extended, 100b
         * included) names a vector register, flagged by DFLAG_VSIB */
        if (s->rmf != 4 || d->addrsize == 2) { /* no SIB, or 16-bit addressing: #UD */
            decode_mem(s, d, o);                /* still measured */
            return 0;
        }
        decode_mem(s, d, o);
        o->index = (uint8_t)(((d->sib >> 3) & 7) | (s->rex_x << 3));
        if (s->mode != DECODER_MODE_64)
            o->index &= 7;
        d->flags |= DFLAG_VSIB;
        return 1;
    case S_G: {
        unsigned reg = s->regf;
        if (t->cls != DREG_MMX && t->cls != DREG_SEG)
            reg |= s->rex_r << 3;
        if (t->cls == DREG_GPR) {
            set_gpr(o, s, reg, size, has_rex);
            return 1;
        }
        o->kind = DOPND_REG;
        o->reg_class = t->cls;
        o->reg = (uint8_t)reg;
        if (t->cls == DREG_SEG)
            return reg < 6;
        if (t->cls == DREG_CR) /* CR0,2,3,4,8 exist (SDM vol.3 2.5); others #UD */
            return reg == 0 || reg == 2 || reg == 3 || reg == 4 || reg == 8;
        if (t->cls == DREG_DR) /* DR8-15 #UD (SDM vol.3 18.2) */
            return reg < 8;
        return 1;
    }
    case S_H:
        o->kind = DOPND_REG;
        o->reg_class = t->cls;
        o->reg = s->mode == DECODER_MODE_64 ? d->vex_vvvv : (d->vex_vvvv & 7);
        return 1;
    case S_Z:
        set_gpr(o, s, (d->opcode & 7) | (s->rex_b << 3), size, has_rex);
        return 1;
    case S_FIX:
        o->kind = DOPND_REG;
        o->reg_class = t->cls;
        o->reg = t->fix;
        return 1;
    case S_IMM: {
        unsigned n = size_of(t->nbytes, d, s);
        if (n > 4 && t->nbytes != SZ_V)
            n = 4;
        uint64_t v = read_le(s, n);
        o->kind = DOPND_IMM;
        o->disp = t->sext ? sext(v, n) : (int64_t)v;
        return 1;
    }
    case S_I1:
        o->kind = DOPND_IMM;
        o->disp = 1;
        return 1;
    case S_J: {
        unsigned n = size_of(t->nbytes, d, s);
        o->kind = DOPND_REL;
        o->disp = sext(read_le(s, n), n);
        return 1;
    }
    case S_AP: {
        unsigned n = d->opsize == 2 ? 2 : 4;
        o->kind = DOPND_FAR;
        o->disp = (int64_t)read_le(s, n);
        o->far_seg = (uint16_t)read_le(s, 2);
        return 1;
    }
    case S_O:
        o->kind = DOPND_MEM;
        o->base = DECODER_NO_REG;
        o->index = DECODER_NO_REG;
        o->scale = 1;
        o->disp = (int64_t)read_le(s, d->addrsize);
        o->seg = effective_seg(d, s, DECODER_NO_REG);
        return 1;
    case S_X:
        o->kind = DOPND_MEM;
        o->base = 6; /* rSI */
        o->index = DECODER_NO_REG;
        o->scale = 1;
        o->seg = effective_seg(d, s, DECODER_NO_REG);
        return 1;
    case S_Y:
        o->kind = DOPND_MEM;
        o->base = 7; /* rDI */
        o->index = DECODER_NO_REG;
        o->scale = 1;
        o->seg = 0; /* ES, not overridable (SDM vol.2 MOVS) */
        return 1;
    case S_L: {
        uint64_t v = read_le(s, 1);
        o->kind = DOPND_REG;
        o->reg_class = DREG_XMM;
        o->reg = (uint8_t)((v >> 4) & (s->mode == DECODER_MODE_64 ? 15 : 7));
        return 1;
    }
    }
    return 0;
}

/* operand types whose presence as the first operand makes the instruction a byte form */
static const uint8_t byte_form[OT_COUNT] = {
    [OT_Eb] = 1, [OT_Gb] = 1, [OT_AL] = 1, [OT_Zb] = 1, [OT_Ob] = 1, [OT_Xb] = 1, [OT_Yb] = 1,
};

static int fail(struct decoded_insn *d, const struct dstate *s, int st)
{
    d->status = (uint8_t)st;
    d->length = (uint8_t)(s->i > DECODER_MAX_LEN ? DECODER_MAX_LEN : s->i);
    d->op = DOP_INVALID;
    return st;
}

/* operand size for a candidate entry (SDM vol.2 2.2.1.2, table 2-4; vol.1 3.6) */
static inline uint8_t entry_opsize(const struct dstate *s, const struct dec_entry *e)
{
    int use66 = s->has66 && e->pfx != 2;
    uint8_t sz = s->mode == DECODER_MODE_16 ? 2 : 4;
    if (use66)
        sz = sz == 2 ? 4 : 2;
    if (s->mode == DECODER_MODE_64) {
        if (s->rex_w)
            sz = 8;
        else if (e->d64 && !use66)
            sz = 8;
        if (e->f64)
            sz = 8;
    }
    return sz;
}

/* The instruction's side of the entry constraints, packed like dec_entry.kmask/kval. */
static inline uint32_t make_key(const struct dstate *s, const struct decoded_insn *d)
{
    return DKEY_REG(s->regf) | (s->mod == 3 ? DKEY_REGFORM : DKEY_MEM) | DKEY_RM(s->rmf) |
           DKEY_MP(s->mp) | DKEY_ASZ(d->addrsize) | (s->rex_w ? DKEY_W : 0) |
           (s->rex_b ? DKEY_REXB : 0) | (s->vex_l & 1 ? DKEY_L : 0) | (d->vex_vvvv ? DKEY_VVVV : 0);
}

static inline __attribute__((always_inline)) int entry_matches(const struct dstate *s, uint32_t key,
                                                               const struct dec_entry *e)
{
    if ((key & e->kmask) != e->kval || !(e->modes & (1u << s->mode)))
        return 0;
    /* operand size depends on the entry itself (mandatory 66, d64/f64) */
    return !e->osz || e->osz == entry_opsize(s, e);
}

static const struct dec_entry *find_entry(const struct dstate *s, const struct decoded_insn *d,
                                          const struct dec_slot *slot)
{
    uint32_t key = make_key(s, d);
    const struct dec_entry *x = &dec_entries[slot->first], *end = x + slot->count;
    for (; x < end; x++)
        if (entry_matches(s, key, x))
            return x;
    return NULL;
}

/* First opcode byte: plain, the 0F escape, or a possible VEX/EVEX prefix */
enum { FB_PLAIN, FB_ESC, FB_VEX };
static const uint8_t first_byte_class[256] = {[0x0f] = FB_ESC, [0xc4] = FB_VEX, [0xc5] = FB_VEX, [0x62] = FB_VEX};

/* Prefix bytes by class (SDM 2.1.1); PK_SEG + n is segment override n (ES..GS). */
enum { PK_NONE, PK_REX, PK_LOCK, PK_REP, PK_OPSIZE, PK_ADDRSIZE, PK_SEG };
static const uint8_t prefix_kind[256] = {
    [0x40 ... 0x4f] = PK_REX,
    [0xf0] = PK_LOCK, [0xf2] = PK_REP, [0xf3] = PK_REP, [0x66] = PK_OPSIZE, [0x67] = PK_ADDRSIZE,
    [0x26] = PK_SEG + 0, [0x2e] = PK_SEG + 1, [0x36] = PK_SEG + 2, [0x3e] = PK_SEG + 3,
    [0x64] = PK_SEG + 4, [0x65] = PK_SEG + 5,
};

/* VEX (SDM 2.3.5) or EVEX (SDM 2.7.1) prefix at s->i. Returns the opcode map
 * (table index) or -1 on #UD. */
static int decode_vex(struct dstate *s, struct decoded_insn *d, uint8_t first)
{
    /* VEX/EVEX after 66/F2/F3/REX/LOCK is #UD (SDM 2.3.2) */
    int bad = s->has66 || s->lastrep || d->rex || (d->prefixes & DPFX_LOCK);
    unsigned mmmmm, pp;
    if (first == 0xc5) {
        if (!need(s, 2))
            return -2;
        uint8_t p = s->b[s->i + 1];
        s->i += 2;
        s->rex_r = s->mode == DECODER_MODE_64 ? !(p >> 7) : 0;
        d->vex_vvvv = (uint8_t)((~p >> 3) & 15);
        s->vex_l = (p >> 2) & 1;
        pp = p & 3;
        mmmmm = 1;
        d->prefixes |= DPFX_VEX;
    } else if (first == 0xc4) {
        if (!need(s, 3))
            return -2;
        uint8_t p0 = s->b[s->i + 1], p1 = s->b[s->i + 2];
        s->i += 3;
        if (s->mode == DECODER_MODE_64) {
            s->rex_r = !(p0 >> 7);
            s->rex_x = !((p0 >> 6) & 1);
            s->rex_b = !((p0 >> 5) & 1);
        }
        mmmmm = p0 & 31;
        s->rex_w = p1 >> 7;
        d->vex_w = s->rex_w;
        d->vex_vvvv = (uint8_t)((~p1 >> 3) & 15);
        s->vex_l = (p1 >> 2) & 1;
        pp = p1 & 3;
        d->prefixes |= DPFX_VEX;
        if (s->mode != DECODER_MODE_64)
            s->rex_w = d->vex_w; /* W still selects forms outside 64-bit mode */
    } else { /* 0x62 EVEX */
        if (!need(s, 4))
            return -2;
        uint8_t p0 = s->b[s->i + 1], p1 = s->b[s->i + 2], p2 = s->b[s->i + 3];
        s->i += 4;
        if (s->mode == DECODER_MODE_64) {
            s->rex_r = !(p0 >> 7);
            s->rex_x = !((p0 >> 6) & 1);
            s->rex_b = !((p0 >> 5) & 1);
        }
        mmmmm = p0 & 3;
        if (p0 & 0x0c) /* reserved bits must be 0 */
            bad = 1;
        if (!(p1 & 4)) /* fixed 1 bit */
            bad = 1;
        s->evex_b = (p2 >> 4) & 1;
        s->rex_w = p1 >> 7;
        d->vex_w = s->rex_w;
        d->vex_vvvv = (uint8_t)((~p1 >> 3) & 15);
        s->vex_l = (p2 >> 5) & 3;
        pp = p1 & 3;
        d->prefixes |= DPFX_EVEX;
    }
    if (s->mode != DECODER_MODE_64)
        d->vex_vvvv &= 7; /* only XMM0-7 exist outside 64-bit mode: vvvv[3] is ignored */
    d->vex_l = s->vex_l;
    s->vex = 1;
    static const uint8_t pp_to_mp[4] = {1, 2, 3, 4};
    s->mp = pp_to_mp[pp];
    /* EVEX is #UD anyway (no AVX-512) but is measured even when its prefixes are illegal */
    if ((bad && !(d->prefixes & DPFX_EVEX)) || mmmmm < 1 || mmmmm > 3)
        return -1;
    return (int)(3 + mmmmm);
}

/* EVEX (AVX-512, SDM 2.7): softkvm models a CPU without AVX-512, so every EVEX
 * instruction is #UD (SDM 2.7.x: EVEX-encoded instructions #UD when AVX512F is
 * not enumerated). The instruction is still measured -- opcode, ModRM, SIB,
 * displacement (disp8*N is still one byte), imm8 -- and its opcode identity is
 * taken from the VEX table when the op also exists there, for traces. */
static int decode_evex_body(struct dstate *s, struct decoded_insn *d, int map)
{
    if (!need(s, 2))
        return fail(d, s, s->status);
    d->opcode = s->b[s->i++];
    d->opcode_map = (uint8_t)(map - 3);
    d->modrm = s->b[s->i++];
    d->flags |= DFLAG_MODRM;
    s->mod = d->modrm >> 6;
    s->regf = (d->modrm >> 3) & 7;
    s->rmf = d->modrm & 7;
    /* L'L = 11b is reserved unless EVEX.b with a register operand makes it rounding control (SDM 2.7.10) */
    int reserved_ll = s->vex_l == 3 && !(s->evex_b && s->mod == 3);
    struct decoder_operand mem;
    memset(&mem, 0, sizeof mem);
    if (s->mod != 3)
        decode_mem(s, d, &mem);
    if (s->status)
        return fail(d, s, s->status);
    /* imm8: every map-3 (0F3A) op, and the 0F shift/shuffle/compare groups */
    int imm = map == 6 || (map == 4 && ((d->opcode >= 0x70 && d->opcode <= 0x73) || d->opcode == 0xc2 ||
                                        (d->opcode >= 0xc4 && d->opcode <= 0xc6)));
    if (imm) {
        if (!need(s, 1))
            return fail(d, s, s->status);
        s->i++;
    }
    const struct dec_slot *slot = &dec_slots[map][d->opcode];
    const struct dec_entry *e = find_entry(s, d, slot);
    int st = fail(d, s, DECODER_UD);
    d->op = e && !reserved_ll ? e->op : DOP_INVALID; /* identity only; status stays #UD */
    return st;
}

enum decoder_status decoder_decode(const uint8_t *bytes, size_t len, enum decoder_mode mode,
                                   struct decoded_insn *d)
{
    /* Only the header is cleared here (operands are cleared as they are decoded):
     * clearing the whole struct costs as much as decoding a simple instruction. */
    struct dstate s = {.b = bytes, .len = len, .mode = (uint8_t)mode,
                       .avail = len < DECODER_MAX_LEN ? (unsigned)len : DECODER_MAX_LEN};
    memset(d, 0, offsetof(struct decoded_insn, ops));
    d->mode = (uint8_t)mode;

    /* 1. legacy prefixes and REX (a REX not immediately before the opcode is ignored, SDM 2.2.1) */
    for (;;) {
        if (!need(&s, 1))
            return fail(d, &s, s.status);
        uint8_t c = bytes[s.i];
        uint8_t k = prefix_kind[c];
        if (k == PK_NONE || (k == PK_REX && mode != DECODER_MODE_64))
            break;
        s.i++;
        if (k == PK_REX) {
            d->rex = c;
            continue;
        }
        d->rex = 0; /* a REX followed by a legacy prefix is ignored (SDM 2.2.1) */
        switch (k) {
        case PK_LOCK: d->prefixes |= DPFX_LOCK; break;
        case PK_REP: s.lastrep = c; break;
        case PK_OPSIZE: s.has66 = 1; d->prefixes |= DPFX_OPSIZE; break;
        case PK_ADDRSIZE: s.has67 = 1; d->prefixes |= DPFX_ADDRSIZE; break;
        default: d->prefixes |= DPFX_SEG; d->seg_override = (uint8_t)(k - PK_SEG); break;
        }
    }
    if (s.lastrep == 0xf3)
        d->prefixes |= DPFX_REP;
    else if (s.lastrep == 0xf2)
        d->prefixes |= DPFX_REPNE;
    if (d->rex) {
        d->prefixes |= DPFX_REX;
        s.rex_w = (d->rex >> 3) & 1;
        s.rex_r = (d->rex >> 2) & 1;
        s.rex_x = (d->rex >> 1) & 1;
        s.rex_b = d->rex & 1;
    }
    s.mp = s.lastrep == 0xf3 ? 3 : s.lastrep == 0xf2 ? 4 : s.has66 ? 2 : 1;
    if (mode == DECODER_MODE_64)
        d->addrsize = s.has67 ? 4 : 8;
    else if (mode == DECODER_MODE_32)
        d->addrsize = s.has67 ? 2 : 4;
    else
        d->addrsize = s.has67 ? 4 : 2;

    /* 2. opcode map: escape bytes or VEX/EVEX */
    int map = 0;
    uint8_t c = bytes[s.i];
    uint8_t cls = first_byte_class[c];
    if (__builtin_expect(cls == FB_VEX, 0)) {
        /* Outside 64-bit mode these are LES/LDS/BOUND unless the next byte has mod=11 (SDM 2.3.5) */
        int isvex = mode == DECODER_MODE_64;
        if (!isvex) {
            if (!need(&s, 2))
                return fail(d, &s, s.status);
            isvex = (bytes[s.i + 1] & 0xc0) == 0xc0;
        }
        if (isvex) {
            map = decode_vex(&s, d, c);
            if (map == -2)
                return fail(d, &s, s.status);
            if (map < 0)
                return fail(d, &s, DECODER_UD);
            if (d->prefixes & DPFX_EVEX)
                return decode_evex_body(&s, d, map);
        }
    }
    if (map == 0 && cls == FB_ESC) {
        s.i++;
        if (!need(&s, 1))
            return fail(d, &s, s.status);
        c = bytes[s.i];
        map = 1;
        if (c == 0x38 || c == 0x3a) {
            map = c == 0x38 ? 2 : 3;
            s.i++;
        }
    }
    if (!need(&s, 1))
        return fail(d, &s, s.status);
    d->opcode = bytes[s.i++];
    d->opcode_map = (uint8_t)(map > 3 ? map - 3 : map);
    const struct dec_slot *slot = &dec_slots[map][d->opcode];
    if (slot->modrm) {
        if (!need(&s, 1))
            return fail(d, &s, s.status);
        d->modrm = bytes[s.i++];
        d->flags |= DFLAG_MODRM;
        s.mod = d->modrm >> 6;
        s.regf = (d->modrm >> 3) & 7;
        s.rmf = d->modrm & 7;
    }
    if (slot->count == 0)
        return fail(d, &s, DECODER_UD);

    /* 3. pick the candidate encoding */
    const struct dec_entry *e = slot->simple ? &dec_entries[slot->first] : find_entry(&s, d, slot);
    if (!e && s.lastrep && !s.vex) {
        /* No form takes F2/F3 as a mandatory prefix here: like hardware, treat
         * it as an ignored REP (SDM 2.1.1: REP on other instructions is reserved). */
        s.mp = s.has66 ? 2 : 1;
        e = find_entry(&s, d, slot);
    }
    if (!e || e->op == DOP_INVALID)
        return fail(d, &s, DECODER_UD);
    d->op = e->op;
    d->cond = e->cond;
    uint8_t full_opsize = entry_opsize(&s, e);
    d->flags |= e->opflags;

    /* 4. LOCK only on the listed read-modify-write forms with a memory destination (SDM LOCK) */
    if (e->lock && s.mod != 3)
        d->flags |= DFLAG_LOCK_OK;
    int ud = 0;
    if ((d->prefixes & DPFX_LOCK) && !(d->flags & DFLAG_LOCK_OK))
        ud = 1;
    /* VEX.vvvv must be 1111b when no operand uses it (SDM 2.3.6) */
    if (s.vex) {
        int uses_vvvv = 0;
        for (unsigned k = 0; k < 4; k++)
            if (dec_opnd_desc[e->opnd[k]].src == S_H)
                uses_vvvv = 1;
        if (!uses_vvvv && d->vex_vvvv != 0)
            ud = 1;
    }

    /* 5. operands: ModRM memory, then immediates, in table order (Intel order).
     * Byte-size GPR operands must see the real operand size, so decode with the
     * entry's size and let the table's per-operand size rule finish it. */
    d->opsize = full_opsize;
    unsigned n = e->nopnd;
    if (e->shape >= 5) {
        /* relative branches and register-in-opcode forms (PUSH/POP/BSWAP...) */
        struct decoder_operand *o = &d->ops[0];
        *o = (struct decoder_operand){0};
        if (e->shape == 7) {
            set_gpr(o, &s, (d->opcode & 7) | (s.rex_b << 3), d->opsize, d->rex != 0);
        } else {
            unsigned nb = e->shape == 5 ? 1 : d->opsize == 2 ? 2 : 4;
            o->kind = DOPND_REL;
            o->size = d->opsize;
            o->disp = sext(read_le(&s, nb), nb);
        }
    } else if (e->shape) {
        /* r/m + reg GPR pairs (MOV, ADD, CMP, TEST...): straight-line version of
         * the generic loop below, same results */
        unsigned size = e->shape >= 3 ? 1 : d->opsize;
        int has_rex = d->rex != 0;
        struct decoder_operand *rm = &d->ops[(e->shape & 1) ? 0 : 1], *g = &d->ops[(e->shape & 1) ? 1 : 0];
        *rm = (struct decoder_operand){0};
        *g = (struct decoder_operand){0};
        if (s.mod != 3) {
            decode_mem(&s, d, rm);
            rm->size = (uint8_t)size;
        } else {
            set_gpr(rm, &s, s.rmf | (s.rex_b << 3), size, has_rex);
        }
        set_gpr(g, &s, s.regf | (s.rex_r << 3), size, has_rex);
    } else {
        for (unsigned k = 0; k < n; k++) {
            d->ops[k] = (struct decoder_operand){0};
            ud |= !decode_operand(&s, d, &d->ops[k], e->opnd[k]);
        }
    }
    /* a failed need() leaves status set and later reads harmless (they return 0) */
    if (__builtin_expect(s.status != 0, 0))
        return fail(d, &s, s.status);
    if (byte_form[e->opnd[0]])
        d->opsize = 1;
    d->nops = (uint8_t)n; /* ops[nops..] are not cleared: nops says how many are valid */
    d->length = (uint8_t)s.i;
    if (ud)
        return fail(d, &s, DECODER_UD);
    d->status = DECODER_OK;
    return DECODER_OK;
}

const char *decoder_op_name(uint16_t op)
{
    if (op >= DOP_COUNT)
        return "(bad)";
    return decoder_op_info[op].name;
}
