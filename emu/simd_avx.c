/* emu/: AVX/AVX2 cross-lane and data-arrangement instructions (broadcasts,
 * 128-bit inserts/extracts/permutes, VPERMQ/D, blends, variable shifts, VTEST)
 * and PCLMULQDQ. SDM vol.2 instruction pages; a YMM value is r[0] (bits 127:0)
 * and r[1] (bits 255:128), contiguous in memory. */
#include <string.h>

#include "emu/simd_insn.h"

static unsigned imm8(const struct decoded_insn *d)
{
    return (unsigned)d->ops[d->nops - 1].disp & 0xff;
}

static void rd(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i, simd_v128 r[2])
{
    emu_simd_read(v, d, i, r, false); /* VEX forms have no alignment rule here */
}

static unsigned nlanes(const struct decoded_insn *d)
{
    return d->vex_l ? 2 : 1;
}

/* VBROADCASTSS/SD/F128/I128, VPBROADCASTB/W/D/Q. */
static int h_broadcast(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned esz;
    switch (d->op) {
    case DOP_VPBROADCASTB: esz = 1; break;
    case DOP_VPBROADCASTW: esz = 2; break;
    case DOP_VBROADCASTSS: case DOP_VPBROADCASTD: esz = 4; break;
    case DOP_VBROADCASTSD: case DOP_VPBROADCASTQ: esz = 8; break;
    default: esz = 16; break; /* F128/I128 */
    }
    simd_v128 s[2], r[2];
    rd(v, d, 1, s);
    uint8_t *out = (uint8_t *)r;
    unsigned total = 16 * nlanes(d);
    for (unsigned o = 0; o < total; o += esz)
        memcpy(out + o, s, esz);
    if (!d->vex_l)
        memset(&r[1], 0, 16);
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

static int h_insert128(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 a[2], b[2];
    rd(v, d, 1, a);
    rd(v, d, 2, b);
    a[imm8(d) & 1] = b[0];
    emu_simd_write(v, d, 0, a, false);
    return EMU_H_NEXT;
}

static int h_extract128(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 a[2];
    rd(v, d, 1, a);
    simd_v128 r = a[imm8(d) & 1];
    const struct decoder_operand *o = &d->ops[0];
    if (o->kind == DOPND_MEM) {
        emu_simd_mmio_check(v, d, 0, true);
        emu_mem_write_buf(v, o->seg, emu_opnd_ea(v, d, 0), &r, 16);
    } else { /* xmm destination: a 128-bit VEX write clears 255:128 */
        memcpy(v->cpu.fpu.xmm[o->reg], &r, 16);
        memset(v->cpu.fpu.ymmh[o->reg], 0, 16);
    }
    return EMU_H_NEXT;
}

static int h_perm2x128(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 a[2], b[2], r[2];
    rd(v, d, 1, a);
    rd(v, d, 2, b);
    unsigned imm = imm8(d);
    for (unsigned l = 0; l < 2; l++) {
        unsigned sel = (imm >> (4 * l)) & 15;
        if (sel & 8)
            memset(&r[l], 0, 16);
        else
            r[l] = (sel & 2) ? b[sel & 1] : a[sel & 1];
    }
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

static int h_permq(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 s[2], r[2];
    rd(v, d, 1, s);
    const uint64_t *sq = (const uint64_t *)s;
    uint64_t *rq = (uint64_t *)r;
    unsigned imm = imm8(d);
    for (unsigned i = 0; i < 4; i++)
        rq[i] = sq[(imm >> (2 * i)) & 3];
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* VPERMD/VPERMPS: indices in VEX.vvvv, data in r/m. */
static int h_permd(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 idx[2], s[2], r[2];
    rd(v, d, 1, idx);
    rd(v, d, 2, s);
    const uint32_t *id = (const uint32_t *)idx, *sd = (const uint32_t *)s;
    uint32_t *rd32 = (uint32_t *)r;
    for (unsigned i = 0; i < 8; i++)
        rd32[i] = sd[id[i] & 7];
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

static int h_pblendd(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 a[2], b[2], r[2];
    rd(v, d, 1, a);
    rd(v, d, 2, b);
    unsigned imm = imm8(d);
    for (unsigned l = 0; l < 2; l++)
        simd_blendps(&r[l], &a[l], &b[l], imm >> (4 * l));
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* VBLENDVPS/VBLENDVPD/VPBLENDVB: mask register in imm8[7:4] (operand 3). */
static int h_blendv4(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 a[2], b[2], m[2], r[2];
    rd(v, d, 1, a);
    rd(v, d, 2, b);
    rd(v, d, 3, m);
    for (unsigned l = 0; l < 2; l++) {
        if (d->op == DOP_VBLENDVPS)
            simd_blendvps(&r[l], &a[l], &b[l], &m[l]);
        else if (d->op == DOP_VBLENDVPD)
            simd_blendvpd(&r[l], &a[l], &b[l], &m[l]);
        else
            simd_pblendvb(&r[l], &a[l], &b[l], &m[l]);
    }
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* VPERMILPS/PD: in-lane permute, selectors from a register/memory or imm8. */
static int h_permil(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    bool pd = d->op == DOP_VPERMILPD;
    bool imm_form = d->ops[d->nops - 1].kind == DOPND_IMM;
    simd_v128 s[2], c[2] = { { .q = { 0, 0 } }, { .q = { 0, 0 } } }, r[2];
    unsigned imm = 0;
    if (imm_form) {
        rd(v, d, 1, s);
        imm = imm8(d);
    } else {
        rd(v, d, 1, s);
        rd(v, d, 2, c);
    }
    for (unsigned l = 0; l < 2; l++) {
        if (pd) {
            for (unsigned i = 0; i < 2; i++) {
                unsigned sel = imm_form ? (imm >> (2 * l + i)) & 1 : (unsigned)(c[l].q[i] >> 1) & 1;
                r[l].q[i] = s[l].q[sel];
            }
        } else {
            for (unsigned i = 0; i < 4; i++) {
                unsigned sel = imm_form ? (imm >> (2 * i)) & 3 : c[l].d[i] & 3;
                r[l].d[i] = s[l].d[sel];
            }
        }
    }
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* VTESTPS/VTESTPD: ZF/CF from the sign bits only (SDM vol.2 VTESTPD/VTESTPS). */
static int h_vtest(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 a[2], b[2];
    rd(v, d, 0, a);
    rd(v, d, 1, b);
    uint64_t sign = d->op == DOP_VTESTPD ? 0x8000000000000000ull : 0x8000000080000000ull;
    uint64_t and_ = 0, andn = 0;
    for (unsigned l = 0; l < nlanes(d); l++)
        for (unsigned i = 0; i < 2; i++) {
            and_ |= a[l].q[i] & b[l].q[i] & sign;
            andn |= ~a[l].q[i] & b[l].q[i] & sign;
        }
    uint64_t fl = (and_ ? 0 : EMU_FL_ZF) | (andn ? 0 : EMU_FL_CF);
    emu_flags_update(v, EMU_FL_OF | EMU_FL_SF | EMU_FL_ZF | EMU_FL_AF | EMU_FL_PF | EMU_FL_CF, fl);
    return EMU_H_NEXT;
}

/* VPSLLV/VPSRLV/VPSRAV: per-element counts. */
static int h_shiftv(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    bool q = d->op == DOP_VPSLLVQ || d->op == DOP_VPSRLVQ;
    enum simd_shift_kind kind = (d->op == DOP_VPSLLVD || d->op == DOP_VPSLLVQ) ? SIMD_SLL
                                : d->op == DOP_VPSRAVD ? SIMD_SRA : SIMD_SRL;
    simd_v128 a[2], c[2], r[2];
    rd(v, d, 1, a);
    rd(v, d, 2, c);
    for (unsigned l = 0; l < 2; l++) {
        for (unsigned i = 0; i < (q ? 2u : 4u); i++) {
            simd_v128 one = { .q = { 0, 0 } }, out;
            uint64_t cnt = q ? c[l].q[i] : c[l].d[i];
            if (q)
                one.q[0] = a[l].q[i];
            else
                one.d[0] = a[l].d[i];
            simd_shift(&out, &one, cnt, q ? 8 : 4, kind);
            if (q)
                r[l].q[i] = out.q[0];
            else
                r[l].d[i] = out.d[0];
        }
    }
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* PCLMULQDQ: carry-less 64x64 -> 128 multiply of the quadwords picked by imm[0], imm[4]. */
static int h_pclmul(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned ia = d->nops == 4 ? 1 : 0, ib = d->nops == 4 ? 2 : 1;
    simd_v128 a[2], b[2], r[2] = { { .q = { 0, 0 } }, { .q = { 0, 0 } } };
    emu_simd_read(v, d, ia, a, !emu_simd_is_vex(d) && d->ops[ia].kind == DOPND_MEM);
    emu_simd_read(v, d, ib, b, !emu_simd_is_vex(d) && d->ops[ib].kind == DOPND_MEM);
    unsigned imm = imm8(d);
    uint64_t x = a[0].q[imm & 1], y = b[0].q[(imm >> 4) & 1], lo = 0, hi = 0;
    for (unsigned i = 0; i < 64; i++)
        if ((y >> i) & 1) {
            lo ^= x << i;
            hi ^= i ? x >> (64 - i) : 0;
        }
    r[0].q[0] = lo;
    r[0].q[1] = hi;
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* VMASKMOVPS/PD, VPMASKMOVD/Q: only elements whose mask sign bit is set are
 * accessed, so masked-off elements never fault (SDM vol.2 VMASKMOV); loads
 * zero the other elements. */
static int h_maskmov(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    bool q = d->op == DOP_VMASKMOVPD || (d->op == DOP_VPMASKMOVQ);
    unsigned esz = q ? 8 : 4, n = 16 * nlanes(d) / esz;
    bool store = d->ops[0].kind == DOPND_MEM;
    unsigned im = store ? 0 : 2;
    simd_v128 mask[2], val[2], r[2] = { { .q = { 0, 0 } }, { .q = { 0, 0 } } };
    rd(v, d, 1, mask);
    if (store)
        rd(v, d, 2, val);
    const uint8_t *mb = (const uint8_t *)mask;
    uint64_t ea = emu_opnd_ea(v, d, im);
    unsigned seg = d->ops[im].seg;
    bool any = false;
    for (unsigned i = 0; i < n; i++)
        any |= (mb[i * esz + esz - 1] & 0x80) != 0;
    if (any)
        emu_simd_mmio_check(v, d, im, store);
    for (unsigned i = 0; i < n; i++) {
        if (!(mb[i * esz + esz - 1] & 0x80))
            continue;
        if (store)
            emu_mem_write_buf(v, seg, ea + i * esz, (const uint8_t *)val + i * esz, esz);
        else
            emu_mem_read_buf(v, seg, ea + i * esz, (uint8_t *)r + i * esz, esz);
    }
    if (!store)
        emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* MASKMOVDQU / VMASKMOVDQU: byte stores to DS:rDI (segment overridable) where the
 * mask byte's top bit is set. */
static int h_maskmovdqu(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 val[2], mask[2];
    emu_simd_read(v, d, 0, val, false);
    emu_simd_read(v, d, 1, mask, false);
    unsigned seg = (d->prefixes & DPFX_SEG) ? d->seg_override : EMU_DS;
    uint64_t di = emu_gpr_read(v, EMU_RDI, d->addrsize);
    for (unsigned i = 0; i < 16; i++)
        if (mask[0].b[i] & 0x80)
            emu_mem_write(v, seg, (di + i) & emu_mask(d->addrsize), 1, val[0].b[i]);
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_avx_handlers[] = {
    { DOP_VMASKMOVPS, h_maskmov }, { DOP_VMASKMOVPD, h_maskmov },
    { DOP_VPMASKMOVD, h_maskmov }, { DOP_VPMASKMOVQ, h_maskmov },
    { DOP_MASKMOVDQU, h_maskmovdqu }, { DOP_VMASKMOVDQU, h_maskmovdqu },
    { DOP_VBROADCASTSS, h_broadcast }, { DOP_VBROADCASTSD, h_broadcast },
    { DOP_VBROADCASTF128, h_broadcast }, { DOP_VBROADCASTI128, h_broadcast },
    { DOP_VPBROADCASTB, h_broadcast }, { DOP_VPBROADCASTW, h_broadcast },
    { DOP_VPBROADCASTD, h_broadcast }, { DOP_VPBROADCASTQ, h_broadcast },
    { DOP_VINSERTF128, h_insert128 }, { DOP_VINSERTI128, h_insert128 },
    { DOP_VEXTRACTF128, h_extract128 }, { DOP_VEXTRACTI128, h_extract128 },
    { DOP_VPERM2F128, h_perm2x128 }, { DOP_VPERM2I128, h_perm2x128 },
    { DOP_VPERMQ, h_permq }, { DOP_VPERMPD, h_permq },
    { DOP_VPERMD, h_permd }, { DOP_VPERMPS, h_permd },
    { DOP_VPBLENDD, h_pblendd },
    { DOP_VBLENDVPS, h_blendv4 }, { DOP_VBLENDVPD, h_blendv4 }, { DOP_VPBLENDVB, h_blendv4 },
    { DOP_VPERMILPS, h_permil }, { DOP_VPERMILPD, h_permil },
    { DOP_VTESTPS, h_vtest }, { DOP_VTESTPD, h_vtest },
    { DOP_VPSLLVD, h_shiftv }, { DOP_VPSLLVQ, h_shiftv }, { DOP_VPSRLVD, h_shiftv },
    { DOP_VPSRLVQ, h_shiftv }, { DOP_VPSRAVD, h_shiftv },
    { DOP_PCLMULQDQ, h_pclmul }, { DOP_VPCLMULQDQ, h_pclmul },
    { 0, NULL },
};
