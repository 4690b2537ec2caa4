/* emu/: SSE/SSE2/SSE3/SSSE3/SSE4.1/SSE4.2, AVX/AVX2 (lane-wise forms) and MMX
 * (element-wise forms) instruction handlers. Semantics live in emu/simd_*.c;
 * this file fetches operands, applies the fault rules (emu/simd_insn_common.c)
 * and writes results.
 *
 * Operand order (decoder/opcodes.tbl): legacy "op V, W[, Ib]" computes
 * V = V op W; the VEX form "vop V, H, W[, Ib]" computes V = H op W. VEX.256
 * forms of lane-wise operations run the 128-bit function on each lane. */
#include <string.h>

#include "emu/simd_insn.h"

/* ---------------- shared operand plumbing ---------------- */

/* Forms whose legacy 16-byte memory operand may be misaligned (SDM vol.1 10.4.1.1 / 12.10.3). */
static bool unaligned_ok(uint16_t op)
{
    switch (op) {
    case DOP_MOVUPS: case DOP_MOVUPD: case DOP_MOVDQU: case DOP_LDDQU:
    case DOP_PCMPESTRI: case DOP_PCMPESTRM: case DOP_PCMPISTRI: case DOP_PCMPISTRM:
        return true;
    default:
        return false;
    }
}

/* Explicitly aligned forms (also for VEX: VMOVAPS & co., SDM vol.1 14.9). */
static bool always_aligned(uint16_t op)
{
    switch (op) {
    case DOP_MOVAPS: case DOP_MOVAPD: case DOP_MOVDQA: case DOP_MOVNTPS: case DOP_MOVNTPD:
    case DOP_MOVNTDQ: case DOP_MOVNTDQA: case DOP_VMOVAPS: case DOP_VMOVAPD: case DOP_VMOVDQA:
    case DOP_VMOVNTPS: case DOP_VMOVNTPD: case DOP_VMOVNTDQ: case DOP_VMOVNTDQA:
        return true;
    default:
        return false;
    }
}

/* Whether memory operand i must be aligned to its size. */
static bool need_align(const struct decoded_insn *d, unsigned i)
{
    if (d->ops[i].kind != DOPND_MEM)
        return false;
    if (always_aligned(d->op))
        return true;
    return !emu_simd_is_vex(d) && d->ops[i].size == 16 && !unaligned_ok(d->op);
}

static void rd(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i, simd_v128 r[2])
{
    emu_simd_read(v, d, i, r, need_align(d, i));
}

/* Source operand indexes: a = first source, b = second (see file comment). */
static void srcs(const struct decoded_insn *d, unsigned nimm, unsigned *a, unsigned *b)
{
    unsigned n = d->nops - nimm;
    if (n >= 3) {
        *a = 1;
        *b = 2;
    } else {
        *a = 0;
        *b = 1;
    }
}

static unsigned imm8(const struct decoded_insn *d)
{
    return (unsigned)d->ops[d->nops - 1].disp & 0xff;
}

static bool is_256(const struct decoded_insn *d)
{
    return emu_simd_is_vex(d) && d->vex_l;
}

static bool is_mmx_dest(const struct decoded_insn *d)
{
    return d->ops[0].kind == DOPND_REG && d->ops[0].reg_class == DREG_MMX;
}

/* ---------------- binary packed-integer / bitwise ops ---------------- */

enum { BO_MMX = 1, BO_256 = 2 };
struct binop_desc {
    simd_binop_fn *fn;
    uint8_t flags;
};
struct fpop_desc {
    simd_fp_fn *fn;
    uint8_t flags;
};

static const struct binop_desc binops[DOP_COUNT] = {
    [DOP_PADDB] = { simd_paddb, BO_MMX | BO_256 }, [DOP_VPADDB] = { simd_paddb, BO_256 },
    [DOP_PADDW] = { simd_paddw, BO_MMX | BO_256 }, [DOP_VPADDW] = { simd_paddw, BO_256 },
    [DOP_PADDD] = { simd_paddd, BO_MMX | BO_256 }, [DOP_VPADDD] = { simd_paddd, BO_256 },
    [DOP_PADDQ] = { simd_paddq, BO_MMX | BO_256 }, [DOP_VPADDQ] = { simd_paddq, BO_256 },
    [DOP_PSUBB] = { simd_psubb, BO_MMX | BO_256 }, [DOP_VPSUBB] = { simd_psubb, BO_256 },
    [DOP_PSUBW] = { simd_psubw, BO_MMX | BO_256 }, [DOP_VPSUBW] = { simd_psubw, BO_256 },
    [DOP_PSUBD] = { simd_psubd, BO_MMX | BO_256 }, [DOP_VPSUBD] = { simd_psubd, BO_256 },
    [DOP_PSUBQ] = { simd_psubq, BO_MMX | BO_256 }, [DOP_VPSUBQ] = { simd_psubq, BO_256 },
    [DOP_PADDSB] = { simd_paddsb, BO_MMX | BO_256 }, [DOP_VPADDSB] = { simd_paddsb, BO_256 },
    [DOP_PADDSW] = { simd_paddsw, BO_MMX | BO_256 }, [DOP_VPADDSW] = { simd_paddsw, BO_256 },
    [DOP_PADDUSB] = { simd_paddusb, BO_MMX | BO_256 }, [DOP_VPADDUSB] = { simd_paddusb, BO_256 },
    [DOP_PADDUSW] = { simd_paddusw, BO_MMX | BO_256 }, [DOP_VPADDUSW] = { simd_paddusw, BO_256 },
    [DOP_PSUBSB] = { simd_psubsb, BO_MMX | BO_256 }, [DOP_VPSUBSB] = { simd_psubsb, BO_256 },
    [DOP_PSUBSW] = { simd_psubsw, BO_MMX | BO_256 }, [DOP_VPSUBSW] = { simd_psubsw, BO_256 },
    [DOP_PSUBUSB] = { simd_psubusb, BO_MMX | BO_256 }, [DOP_VPSUBUSB] = { simd_psubusb, BO_256 },
    [DOP_PSUBUSW] = { simd_psubusw, BO_MMX | BO_256 }, [DOP_VPSUBUSW] = { simd_psubusw, BO_256 },
    [DOP_PMULLW] = { simd_pmullw, BO_MMX | BO_256 }, [DOP_VPMULLW] = { simd_pmullw, BO_256 },
    [DOP_PMULHW] = { simd_pmulhw, BO_MMX | BO_256 }, [DOP_VPMULHW] = { simd_pmulhw, BO_256 },
    [DOP_PMULHUW] = { simd_pmulhuw, BO_MMX | BO_256 }, [DOP_VPMULHUW] = { simd_pmulhuw, BO_256 },
    [DOP_PMULUDQ] = { simd_pmuludq, BO_MMX | BO_256 }, [DOP_VPMULUDQ] = { simd_pmuludq, BO_256 },
    [DOP_PMADDWD] = { simd_pmaddwd, BO_MMX | BO_256 }, [DOP_VPMADDWD] = { simd_pmaddwd, BO_256 },
    [DOP_PAVGB] = { simd_pavgb, BO_MMX | BO_256 }, [DOP_VPAVGB] = { simd_pavgb, BO_256 },
    [DOP_PAVGW] = { simd_pavgw, BO_MMX | BO_256 }, [DOP_VPAVGW] = { simd_pavgw, BO_256 },
    [DOP_PSADBW] = { simd_psadbw, BO_MMX | BO_256 }, [DOP_VPSADBW] = { simd_psadbw, BO_256 },
    [DOP_PMINUB] = { simd_pminub, BO_MMX | BO_256 }, [DOP_VPMINUB] = { simd_pminub, BO_256 },
    [DOP_PMAXUB] = { simd_pmaxub, BO_MMX | BO_256 }, [DOP_VPMAXUB] = { simd_pmaxub, BO_256 },
    [DOP_PMINSW] = { simd_pminsw, BO_MMX | BO_256 }, [DOP_VPMINSW] = { simd_pminsw, BO_256 },
    [DOP_PMAXSW] = { simd_pmaxsw, BO_MMX | BO_256 }, [DOP_VPMAXSW] = { simd_pmaxsw, BO_256 },
    [DOP_PCMPEQB] = { simd_pcmpeqb, BO_MMX | BO_256 }, [DOP_VPCMPEQB] = { simd_pcmpeqb, BO_256 },
    [DOP_PCMPEQW] = { simd_pcmpeqw, BO_MMX | BO_256 }, [DOP_VPCMPEQW] = { simd_pcmpeqw, BO_256 },
    [DOP_PCMPEQD] = { simd_pcmpeqd, BO_MMX | BO_256 }, [DOP_VPCMPEQD] = { simd_pcmpeqd, BO_256 },
    [DOP_PCMPGTB] = { simd_pcmpgtb, BO_MMX | BO_256 }, [DOP_VPCMPGTB] = { simd_pcmpgtb, BO_256 },
    [DOP_PCMPGTW] = { simd_pcmpgtw, BO_MMX | BO_256 }, [DOP_VPCMPGTW] = { simd_pcmpgtw, BO_256 },
    [DOP_PCMPGTD] = { simd_pcmpgtd, BO_MMX | BO_256 }, [DOP_VPCMPGTD] = { simd_pcmpgtd, BO_256 },
    [DOP_PAND] = { simd_pand, BO_MMX | BO_256 }, [DOP_VPAND] = { simd_pand, BO_256 },
    [DOP_PANDN] = { simd_pandn, BO_MMX | BO_256 }, [DOP_VPANDN] = { simd_pandn, BO_256 },
    [DOP_POR] = { simd_por, BO_MMX | BO_256 }, [DOP_VPOR] = { simd_por, BO_256 },
    [DOP_PXOR] = { simd_pxor, BO_MMX | BO_256 }, [DOP_VPXOR] = { simd_pxor, BO_256 },
    [DOP_PSIGNB] = { simd_psignb, BO_MMX | BO_256 }, [DOP_VPSIGNB] = { simd_psignb, BO_256 },
    [DOP_PSIGNW] = { simd_psignw, BO_MMX | BO_256 }, [DOP_VPSIGNW] = { simd_psignw, BO_256 },
    [DOP_PSIGND] = { simd_psignd, BO_MMX | BO_256 }, [DOP_VPSIGND] = { simd_psignd, BO_256 },
    [DOP_PABSB] = { simd_pabsb, BO_MMX | BO_256 }, [DOP_VPABSB] = { simd_pabsb, BO_256 },
    [DOP_PABSW] = { simd_pabsw, BO_MMX | BO_256 }, [DOP_VPABSW] = { simd_pabsw, BO_256 },
    [DOP_PABSD] = { simd_pabsd, BO_MMX | BO_256 }, [DOP_VPABSD] = { simd_pabsd, BO_256 },
    [DOP_PMULHRSW] = { simd_pmulhrsw, BO_MMX | BO_256 }, [DOP_VPMULHRSW] = { simd_pmulhrsw, BO_256 },
    [DOP_PMADDUBSW] = { simd_pmaddubsw, BO_MMX | BO_256 }, [DOP_VPMADDUBSW] = { simd_pmaddubsw, BO_256 },
    [DOP_PMULLD] = { simd_pmulld, BO_256 }, [DOP_VPMULLD] = { simd_pmulld, BO_256 },
    [DOP_PMULDQ] = { simd_pmuldq, BO_256 }, [DOP_VPMULDQ] = { simd_pmuldq, BO_256 },
    [DOP_PMINSB] = { simd_pminsb, BO_256 }, [DOP_VPMINSB] = { simd_pminsb, BO_256 },
    [DOP_PMAXSB] = { simd_pmaxsb, BO_256 }, [DOP_VPMAXSB] = { simd_pmaxsb, BO_256 },
    [DOP_PMINUW] = { simd_pminuw, BO_256 }, [DOP_VPMINUW] = { simd_pminuw, BO_256 },
    [DOP_PMAXUW] = { simd_pmaxuw, BO_256 }, [DOP_VPMAXUW] = { simd_pmaxuw, BO_256 },
    [DOP_PMINSD] = { simd_pminsd, BO_256 }, [DOP_VPMINSD] = { simd_pminsd, BO_256 },
    [DOP_PMAXSD] = { simd_pmaxsd, BO_256 }, [DOP_VPMAXSD] = { simd_pmaxsd, BO_256 },
    [DOP_PMINUD] = { simd_pminud, BO_256 }, [DOP_VPMINUD] = { simd_pminud, BO_256 },
    [DOP_PMAXUD] = { simd_pmaxud, BO_256 }, [DOP_VPMAXUD] = { simd_pmaxud, BO_256 },
    [DOP_PCMPEQQ] = { simd_pcmpeqq, BO_256 }, [DOP_VPCMPEQQ] = { simd_pcmpeqq, BO_256 },
    [DOP_PCMPGTQ] = { simd_pcmpgtq, BO_256 }, [DOP_VPCMPGTQ] = { simd_pcmpgtq, BO_256 },
    [DOP_ANDPS] = { simd_pand, BO_256 }, [DOP_VANDPS] = { simd_pand, BO_256 },
    [DOP_ANDNPS] = { simd_pandn, BO_256 }, [DOP_VANDNPS] = { simd_pandn, BO_256 },
    [DOP_ORPS] = { simd_por, BO_256 }, [DOP_VORPS] = { simd_por, BO_256 },
    [DOP_XORPS] = { simd_pxor, BO_256 }, [DOP_VXORPS] = { simd_pxor, BO_256 },
    [DOP_ANDPD] = { simd_pand, BO_256 }, [DOP_VANDPD] = { simd_pand, BO_256 },
    [DOP_ANDNPD] = { simd_pandn, BO_256 }, [DOP_VANDNPD] = { simd_pandn, BO_256 },
    [DOP_ORPD] = { simd_por, BO_256 }, [DOP_VORPD] = { simd_por, BO_256 },
    [DOP_XORPD] = { simd_pxor, BO_256 }, [DOP_VXORPD] = { simd_pxor, BO_256 },
    [DOP_PUNPCKLBW] = { simd_punpcklbw, BO_256 }, [DOP_VPUNPCKLBW] = { simd_punpcklbw, BO_256 },
    [DOP_PUNPCKLWD] = { simd_punpcklwd, BO_256 }, [DOP_VPUNPCKLWD] = { simd_punpcklwd, BO_256 },
    [DOP_PUNPCKLDQ] = { simd_punpckldq, BO_256 }, [DOP_VPUNPCKLDQ] = { simd_punpckldq, BO_256 },
    [DOP_PUNPCKLQDQ] = { simd_punpcklqdq, BO_256 }, [DOP_VPUNPCKLQDQ] = { simd_punpcklqdq, BO_256 },
    [DOP_PUNPCKHBW] = { simd_punpckhbw, BO_256 }, [DOP_VPUNPCKHBW] = { simd_punpckhbw, BO_256 },
    [DOP_PUNPCKHWD] = { simd_punpckhwd, BO_256 }, [DOP_VPUNPCKHWD] = { simd_punpckhwd, BO_256 },
    [DOP_PUNPCKHDQ] = { simd_punpckhdq, BO_256 }, [DOP_VPUNPCKHDQ] = { simd_punpckhdq, BO_256 },
    [DOP_PUNPCKHQDQ] = { simd_punpckhqdq, BO_256 }, [DOP_VPUNPCKHQDQ] = { simd_punpckhqdq, BO_256 },
    [DOP_UNPCKLPS] = { simd_punpckldq, BO_256 }, [DOP_VUNPCKLPS] = { simd_punpckldq, BO_256 },
    [DOP_UNPCKHPS] = { simd_punpckhdq, BO_256 }, [DOP_VUNPCKHPS] = { simd_punpckhdq, BO_256 },
    [DOP_UNPCKLPD] = { simd_punpcklqdq, BO_256 }, [DOP_VUNPCKLPD] = { simd_punpcklqdq, BO_256 },
    [DOP_UNPCKHPD] = { simd_punpckhqdq, BO_256 }, [DOP_VUNPCKHPD] = { simd_punpckhqdq, BO_256 },
    [DOP_PACKSSWB] = { simd_packsswb, BO_256 }, [DOP_VPACKSSWB] = { simd_packsswb, BO_256 },
    [DOP_PACKUSWB] = { simd_packuswb, BO_256 }, [DOP_VPACKUSWB] = { simd_packuswb, BO_256 },
    [DOP_PACKSSDW] = { simd_packssdw, BO_256 }, [DOP_VPACKSSDW] = { simd_packssdw, BO_256 },
    [DOP_PACKUSDW] = { simd_packusdw, BO_256 }, [DOP_VPACKUSDW] = { simd_packusdw, BO_256 },
    [DOP_PSHUFB] = { simd_pshufb, BO_256 }, [DOP_VPSHUFB] = { simd_pshufb, BO_256 },
    [DOP_PHADDW] = { simd_phaddw, BO_256 }, [DOP_VPHADDW] = { simd_phaddw, BO_256 },
    [DOP_PHADDD] = { simd_phaddd, BO_256 }, [DOP_VPHADDD] = { simd_phaddd, BO_256 },
    [DOP_PHADDSW] = { simd_phaddsw, BO_256 }, [DOP_VPHADDSW] = { simd_phaddsw, BO_256 },
    [DOP_PHSUBW] = { simd_phsubw, BO_256 }, [DOP_VPHSUBW] = { simd_phsubw, BO_256 },
    [DOP_PHSUBD] = { simd_phsubd, BO_256 }, [DOP_VPHSUBD] = { simd_phsubd, BO_256 },
    [DOP_PHSUBSW] = { simd_phsubsw, BO_256 }, [DOP_VPHSUBSW] = { simd_phsubsw, BO_256 },
    [DOP_MOVSLDUP] = { simd_movsldup, BO_256 }, [DOP_VMOVSLDUP] = { simd_movsldup, BO_256 },
    [DOP_MOVSHDUP] = { simd_movshdup, BO_256 }, [DOP_VMOVSHDUP] = { simd_movshdup, BO_256 },
    [DOP_PHMINPOSUW] = { simd_phminposuw, 0 }, [DOP_VPHMINPOSUW] = { simd_phminposuw, 0 },
    [DOP_MOVDDUP] = { simd_movddup, 0 }, [DOP_VMOVDDUP] = { simd_movddup, 0 },
};
static const struct fpop_desc fpops[DOP_COUNT] = {
    [DOP_ADDPS] = { simd_addps, BO_256 }, [DOP_VADDPS] = { simd_addps, BO_256 },
    [DOP_ADDPD] = { simd_addpd, BO_256 }, [DOP_VADDPD] = { simd_addpd, BO_256 },
    [DOP_SUBPS] = { simd_subps, BO_256 }, [DOP_VSUBPS] = { simd_subps, BO_256 },
    [DOP_SUBPD] = { simd_subpd, BO_256 }, [DOP_VSUBPD] = { simd_subpd, BO_256 },
    [DOP_MULPS] = { simd_mulps, BO_256 }, [DOP_VMULPS] = { simd_mulps, BO_256 },
    [DOP_MULPD] = { simd_mulpd, BO_256 }, [DOP_VMULPD] = { simd_mulpd, BO_256 },
    [DOP_DIVPS] = { simd_divps, BO_256 }, [DOP_VDIVPS] = { simd_divps, BO_256 },
    [DOP_DIVPD] = { simd_divpd, BO_256 }, [DOP_VDIVPD] = { simd_divpd, BO_256 },
    [DOP_MINPS] = { simd_minps, BO_256 }, [DOP_VMINPS] = { simd_minps, BO_256 },
    [DOP_MINPD] = { simd_minpd, BO_256 }, [DOP_VMINPD] = { simd_minpd, BO_256 },
    [DOP_MAXPS] = { simd_maxps, BO_256 }, [DOP_VMAXPS] = { simd_maxps, BO_256 },
    [DOP_MAXPD] = { simd_maxpd, BO_256 }, [DOP_VMAXPD] = { simd_maxpd, BO_256 },
    [DOP_SQRTPS] = { simd_sqrtps, BO_256 }, [DOP_VSQRTPS] = { simd_sqrtps, BO_256 },
    [DOP_SQRTPD] = { simd_sqrtpd, BO_256 }, [DOP_VSQRTPD] = { simd_sqrtpd, BO_256 },
    [DOP_RCPPS] = { simd_rcpps, BO_256 }, [DOP_VRCPPS] = { simd_rcpps, BO_256 },
    [DOP_RSQRTPS] = { simd_rsqrtps, BO_256 }, [DOP_VRSQRTPS] = { simd_rsqrtps, BO_256 },
    [DOP_ADDSUBPS] = { simd_addsubps, BO_256 }, [DOP_VADDSUBPS] = { simd_addsubps, BO_256 },
    [DOP_ADDSUBPD] = { simd_addsubpd, BO_256 }, [DOP_VADDSUBPD] = { simd_addsubpd, BO_256 },
    [DOP_HADDPS] = { simd_haddps, BO_256 }, [DOP_VHADDPS] = { simd_haddps, BO_256 },
    [DOP_HADDPD] = { simd_haddpd, BO_256 }, [DOP_VHADDPD] = { simd_haddpd, BO_256 },
    [DOP_HSUBPS] = { simd_hsubps, BO_256 }, [DOP_VHSUBPS] = { simd_hsubps, BO_256 },
    [DOP_HSUBPD] = { simd_hsubpd, BO_256 }, [DOP_VHSUBPD] = { simd_hsubpd, BO_256 },
    [DOP_CVTDQ2PS] = { simd_cvtdq2ps, BO_256 }, [DOP_VCVTDQ2PS] = { simd_cvtdq2ps, BO_256 },
    [DOP_CVTPS2DQ] = { simd_cvtps2dq, BO_256 }, [DOP_VCVTPS2DQ] = { simd_cvtps2dq, BO_256 },
    [DOP_CVTTPS2DQ] = { simd_cvttps2dq, BO_256 }, [DOP_VCVTTPS2DQ] = { simd_cvttps2dq, BO_256 },
    [DOP_ADDSS] = { simd_addss, 0 }, [DOP_VADDSS] = { simd_addss, 0 },
    [DOP_ADDSD] = { simd_addsd, 0 }, [DOP_VADDSD] = { simd_addsd, 0 },
    [DOP_SUBSS] = { simd_subss, 0 }, [DOP_VSUBSS] = { simd_subss, 0 },
    [DOP_SUBSD] = { simd_subsd, 0 }, [DOP_VSUBSD] = { simd_subsd, 0 },
    [DOP_MULSS] = { simd_mulss, 0 }, [DOP_VMULSS] = { simd_mulss, 0 },
    [DOP_MULSD] = { simd_mulsd, 0 }, [DOP_VMULSD] = { simd_mulsd, 0 },
    [DOP_DIVSS] = { simd_divss, 0 }, [DOP_VDIVSS] = { simd_divss, 0 },
    [DOP_DIVSD] = { simd_divsd, 0 }, [DOP_VDIVSD] = { simd_divsd, 0 },
    [DOP_MINSS] = { simd_minss, 0 }, [DOP_VMINSS] = { simd_minss, 0 },
    [DOP_MINSD] = { simd_minsd, 0 }, [DOP_VMINSD] = { simd_minsd, 0 },
    [DOP_MAXSS] = { simd_maxss, 0 }, [DOP_VMAXSS] = { simd_maxss, 0 },
    [DOP_MAXSD] = { simd_maxsd, 0 }, [DOP_VMAXSD] = { simd_maxsd, 0 },
    [DOP_SQRTSS] = { simd_sqrtss, 0 }, [DOP_VSQRTSS] = { simd_sqrtss, 0 },
    [DOP_SQRTSD] = { simd_sqrtsd, 0 }, [DOP_VSQRTSD] = { simd_sqrtsd, 0 },
    [DOP_RCPSS] = { simd_rcpss, 0 }, [DOP_VRCPSS] = { simd_rcpss, 0 },
    [DOP_RSQRTSS] = { simd_rsqrtss, 0 }, [DOP_VRSQRTSS] = { simd_rsqrtss, 0 },
    [DOP_CVTSS2SD] = { simd_cvtss2sd, 0 }, [DOP_VCVTSS2SD] = { simd_cvtss2sd, 0 },
    [DOP_CVTSD2SS] = { simd_cvtsd2ss, 0 }, [DOP_VCVTSD2SS] = { simd_cvtsd2ss, 0 },
    [DOP_CVTDQ2PD] = { simd_cvtdq2pd, 0 }, [DOP_VCVTDQ2PD] = { simd_cvtdq2pd, 0 },
    [DOP_CVTPD2DQ] = { simd_cvtpd2dq, 0 }, [DOP_VCVTPD2DQ] = { simd_cvtpd2dq, 0 },
    [DOP_CVTTPD2DQ] = { simd_cvttpd2dq, 0 }, [DOP_VCVTTPD2DQ] = { simd_cvttpd2dq, 0 },
    [DOP_CVTPS2PD] = { simd_cvtps2pd, 0 }, [DOP_VCVTPS2PD] = { simd_cvtps2pd, 0 },
    [DOP_CVTPD2PS] = { simd_cvtpd2ps, 0 }, [DOP_VCVTPD2PS] = { simd_cvtpd2ps, 0 },
};

static int h_binop(struct emu_vcpu *v, const struct decoded_insn *d)
{
    const struct binop_desc *bd = &binops[d->op];
    emu_simd_check(v, d);
    bool mmx = is_mmx_dest(d);
    if ((mmx && !(bd->flags & BO_MMX)) || (is_256(d) && !(bd->flags & BO_256)))
        emu_unimplemented(v);
    unsigned ia, ib;
    srcs(d, 0, &ia, &ib);
    simd_v128 a[2], b[2], r[2];
    rd(v, d, ia, a);
    rd(v, d, ib, b);
    bd->fn(&r[0], &a[0], &b[0]);
    bd->fn(&r[1], &a[1], &b[1]); /* upper lane: ignored unless VEX.256 */
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* Source of a widening VEX.256 form whose table operand is the 128-bit form's
 * (Wq/Wd/Ww): a register is read whole, memory is `bytes` long. */
static void rd_wide_src(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i, simd_v128 s[2],
                        unsigned bytes)
{
    memset(s, 0, 2 * sizeof(*s));
    const struct decoder_operand *o = &d->ops[i];
    if (o->kind == DOPND_MEM) {
        emu_simd_mmio_check(v, d, i, false);
        emu_mem_read_buf(v, o->seg, emu_opnd_ea(v, d, i), s, bytes);
    } else {
        emu_simd_read(v, d, i, s, false);
    }
}

/* VEX.256 conversions that are not lane-wise (SDM vol.2 VCVTPS2PD & co.):
 * widening ones take a 128-bit source, narrowing ones produce a 128-bit result. */
static int fp_cvt256(struct emu_vcpu *v, const struct decoded_insn *d, simd_fp_fn *fn)
{
    uint32_t m = v->cpu.fpu.mxcsr, fl;
    simd_v128 s[2], r[2] = { { .q = { 0, 0 } }, { .q = { 0, 0 } } }, lo, hi;
    switch (d->op) {
    case DOP_VCVTPS2PD: case DOP_VCVTDQ2PD: { /* 4 x 32 -> 4 x 64 */
        rd_wide_src(v, d, 1, s, 16);
        simd_v128 s_hi = { .q = { s[0].q[1], 0 } };
        fl = fn(&r[0], &r[0], &s[0], m) | fn(&r[1], &r[1], &s_hi, m);
        break;
    }
    case DOP_VCVTPD2PS: case DOP_VCVTPD2DQ: case DOP_VCVTTPD2DQ: /* 4 x 64 -> 4 x 32 */
        emu_simd_read(v, d, 1, s, false);
        fl = fn(&lo, &lo, &s[0], m) | fn(&hi, &hi, &s[1], m);
        r[0].q[0] = lo.q[0];
        r[0].q[1] = hi.q[0];
        break;
    default:
        emu_unimplemented(v);
    }
    emu_simd_fp_flags(v, fl);
    /* the destination is xmm for the narrowing forms: bits 255:128 cleared */
    const struct decoder_operand *o = &d->ops[0];
    memcpy(v->cpu.fpu.xmm[o->reg], &r[0], 16);
    memcpy(v->cpu.fpu.ymmh[o->reg], &r[1], 16);
    return EMU_H_NEXT;
}

static int h_fpop(struct emu_vcpu *v, const struct decoded_insn *d)
{
    const struct fpop_desc *fd = &fpops[d->op];
    emu_simd_check(v, d);
    if (is_256(d) && !(fd->flags & BO_256))
        return fp_cvt256(v, d, fd->fn);
    unsigned ia, ib;
    srcs(d, 0, &ia, &ib);
    simd_v128 a[2], b[2], r[2];
    rd(v, d, ia, a);
    rd(v, d, ib, b);
    uint32_t m = v->cpu.fpu.mxcsr;
    r[0] = a[0];
    r[1] = a[1];
    uint32_t fl = fd->fn(&r[0], &a[0], &b[0], m);
    if (is_256(d))
        fl |= fd->fn(&r[1], &a[1], &b[1], m);
    emu_simd_fp_flags(v, fl); /* #XM/#UD before any write */
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* ---------------- moves ---------------- */

/* MOVAPS/MOVUPS/MOVDQA/MOVDQU/MOVNTxx/LDDQU/MOVNTDQA, MMX MOVQ Pq,Qq and stores. */
static int h_mov(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 r[2];
    rd(v, d, 1, r);
    emu_simd_write(v, d, 0, r, need_align(d, 0));
    return EMU_H_NEXT;
}

/* MOVSS/MOVSD (SDM vol.2): load zero-extends, reg-reg merges the low element,
 * VEX reg-reg takes the upper part from VEX.vvvv. */
static int h_movs_scalar(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned esz = (d->op == DOP_MOVSS || d->op == DOP_VMOVSS) ? 4 : 8;
    simd_v128 r[2] = { 0 }, s[2];
    if (d->ops[0].kind == DOPND_MEM) {
        rd(v, d, d->nops - 1, s);
        emu_simd_mmio_check(v, d, 0, true);
        emu_mem_write_buf(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), &s[0], esz);
        return EMU_H_NEXT;
    }
    unsigned src = d->nops - 1;
    rd(v, d, src, s);
    if (d->ops[src].kind == DOPND_MEM) {
        memcpy(&r[0], &s[0], esz); /* rest zero */
    } else {
        simd_v128 base[2];
        rd(v, d, d->nops == 3 ? 1 : 0, base);
        r[0] = base[0];
        memcpy(&r[0], &s[0], esz);
    }
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* MOVD/MOVQ in all their forms (GPR/mem/XMM/MMX); XMM destinations are zero-extended
 * except the MMX ones, which are 64-bit registers. */
static int h_movdq(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned esz = (d->op == DOP_MOVD || d->op == DOP_VMOVD) ? 4 : 8;
    simd_v128 s[2], r[2] = { 0 };
    rd(v, d, 1, s);
    memcpy(&r[0], &s[0], esz);
    const struct decoder_operand *o = &d->ops[0];
    if (o->kind == DOPND_MEM) {
        emu_simd_mmio_check(v, d, 0, true);
        emu_mem_write_buf(v, o->seg, emu_opnd_ea(v, d, 0), &r[0], esz);
        return EMU_H_NEXT;
    }
    if (o->kind == DOPND_REG && o->reg_class == DREG_XMM) {
        /* whole XMM written: bits above esz are zero; VEX also clears 255:128 */
        memcpy(v->cpu.fpu.xmm[o->reg], &r[0], 16);
        if (emu_simd_is_vex(d))
            memset(v->cpu.fpu.ymmh[o->reg], 0, 16);
        return EMU_H_NEXT;
    }
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* MOVQ2DQ xmm, mm / MOVDQ2Q mm, xmm. */
static int h_movq2dq(struct emu_vcpu *v, const struct decoded_insn *d)
{
    return h_movdq(v, d);
}

/* MOVLPS/MOVLPD/MOVHPS/MOVHPD/MOVHLPS/MOVLHPS. */
static int h_movhl(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    bool high = d->op == DOP_MOVHPS || d->op == DOP_MOVHPD || d->op == DOP_VMOVHPS ||
                d->op == DOP_VMOVHPD;
    simd_v128 s[2];
    if (d->ops[0].kind == DOPND_MEM) { /* store: low or high quadword */
        rd(v, d, 1, s);
        emu_simd_mmio_check(v, d, 0, true);
        emu_mem_write_buf(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), &s[0].q[high ? 1 : 0], 8);
        return EMU_H_NEXT;
    }
    unsigned src = d->nops - 1;
    simd_v128 base[2], r[2] = { 0 };
    rd(v, d, d->nops == 3 ? 1 : 0, base);
    rd(v, d, src, s);
    r[0] = base[0];
    switch (d->op) {
    case DOP_MOVHLPS: case DOP_VMOVHLPS: /* low <- source high */
        r[0].q[0] = s[0].q[1];
        break;
    case DOP_MOVLHPS: case DOP_VMOVLHPS: /* high <- source low */
        r[0].q[1] = s[0].q[0];
        break;
    default: /* loads from m64 */
        r[0].q[high ? 1 : 0] = s[0].q[0];
        break;
    }
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* ---------------- shifts ---------------- */

static int h_shift(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    static const struct {
        uint16_t op;
        uint8_t esz;
        uint8_t kind;
    } tbl[] = {
        { DOP_PSRLW, 2, SIMD_SRL }, { DOP_PSRLD, 4, SIMD_SRL }, { DOP_PSRLQ, 8, SIMD_SRL },
        { DOP_PSRAW, 2, SIMD_SRA }, { DOP_PSRAD, 4, SIMD_SRA }, { DOP_PSLLW, 2, SIMD_SLL },
        { DOP_PSLLD, 4, SIMD_SLL }, { DOP_PSLLQ, 8, SIMD_SLL }, { DOP_VPSRLW, 2, SIMD_SRL },
        { DOP_VPSRLD, 4, SIMD_SRL }, { DOP_VPSRLQ, 8, SIMD_SRL }, { DOP_VPSRAW, 2, SIMD_SRA },
        { DOP_VPSRAD, 4, SIMD_SRA }, { DOP_VPSLLW, 2, SIMD_SLL }, { DOP_VPSLLD, 4, SIMD_SLL },
        { DOP_VPSLLQ, 8, SIMD_SLL },
    };
    unsigned k = 0;
    while (tbl[k].op != d->op)
        k++;
    simd_v128 a[2], r[2] = { 0 };
    uint64_t count;
    const struct decoder_operand *last = &d->ops[d->nops - 1];
    unsigned ia;
    if (last->kind == DOPND_IMM) {
        count = (uint64_t)last->disp & 0xff;
        ia = d->nops == 3 ? 1 : 0;
    } else {
        simd_v128 c[2];
        unsigned ib;
        srcs(d, 0, &ia, &ib);
        rd(v, d, ib, c);
        count = c[0].q[0];
    }
    rd(v, d, ia, a);
    /* VEX.256: both lanes shift by the same 64-bit count */
    for (int l = 0; l < 2; l++)
        simd_shift(&r[l], &a[l], count, tbl[k].esz, (enum simd_shift_kind)tbl[k].kind);
    if (is_mmx_dest(d))
        r[0].q[1] = 0;
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

static int h_bytesshift(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned ia = d->nops == 3 ? 1 : 0;
    simd_v128 a[2], r[2];
    rd(v, d, ia, a);
    unsigned n = imm8(d);
    bool left = d->op == DOP_PSLLDQ || d->op == DOP_VPSLLDQ;
    for (int l = 0; l < 2; l++) {
        if (left)
            simd_pslldq(&r[l], &a[l], n);
        else
            simd_psrldq(&r[l], &a[l], n);
    }
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* ---------------- immediate shuffles / blends ---------------- */

typedef void simd_imm_fn(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm);
static void pshufd2(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm) { (void)a; simd_pshufd(d, b, imm); }
static void pshufhw2(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm) { (void)a; simd_pshufhw(d, b, imm); }
static void pshuflw2(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm) { (void)a; simd_pshuflw(d, b, imm); }

static simd_imm_fn *imm_fn(uint16_t op)
{
    switch (op) {
    case DOP_PSHUFD: case DOP_VPSHUFD: return pshufd2;
    case DOP_PSHUFHW: case DOP_VPSHUFHW: return pshufhw2;
    case DOP_PSHUFLW: case DOP_VPSHUFLW: case DOP_PSHUFW: return pshuflw2;
    case DOP_SHUFPS: case DOP_VSHUFPS: return simd_shufps;
    case DOP_SHUFPD: case DOP_VSHUFPD: return simd_shufpd;
    case DOP_PALIGNR: case DOP_VPALIGNR: return simd_palignr;
    case DOP_PBLENDW: case DOP_VPBLENDW: return simd_pblendw;
    case DOP_BLENDPS: case DOP_VBLENDPS: return simd_blendps;
    case DOP_BLENDPD: case DOP_VBLENDPD: return simd_blendpd;
    default: return NULL;
    }
}

static int h_immop(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_imm_fn *fn = imm_fn(d->op);
    bool mmx = is_mmx_dest(d);
    if (mmx && d->op != DOP_PSHUFW) /* MMX PALIGNR: 64-bit concatenation, not modelled */
        emu_unimplemented(v);
    unsigned ia, ib, imm = imm8(d);
    srcs(d, 1, &ia, &ib);
    simd_v128 a[2], b[2], r[2];
    rd(v, d, ia, a);
    rd(v, d, ib, b);
    /* VEX.256 blends take imm bits 7:4 (ps) / 3:2 (pd) for the upper lane */
    unsigned imm_hi = imm;
    if (d->op == DOP_VBLENDPS)
        imm_hi = imm >> 4;
    else if (d->op == DOP_VBLENDPD)
        imm_hi = imm >> 2;
    else if (d->op == DOP_VSHUFPD)
        imm_hi = imm >> 2;
    fn(&r[0], &a[0], &b[0], imm);
    fn(&r[1], &a[1], &b[1], imm_hi);
    if (mmx)
        r[0].q[1] = 0;
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* PBLENDVB/BLENDVPS/BLENDVPD: legacy form, implicit XMM0 mask (last operand). */
static int h_blendv(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    if (emu_simd_is_vex(d))
        emu_unimplemented(v);
    simd_v128 a[2], b[2], m[2], r[2] = { 0 };
    rd(v, d, 0, a);
    rd(v, d, 1, b);
    memcpy(&m[0], v->cpu.fpu.xmm[0], 16);
    if (d->op == DOP_PBLENDVB)
        simd_pblendvb(&r[0], &a[0], &b[0], &m[0]);
    else if (d->op == DOP_BLENDVPS)
        simd_blendvps(&r[0], &a[0], &b[0], &m[0]);
    else
        simd_blendvpd(&r[0], &a[0], &b[0], &m[0]);
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* ---------------- compares ---------------- */

static int h_cmpfp(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned ia, ib, imm = imm8(d);
    srcs(d, 1, &ia, &ib);
    /* legacy SSE encodes predicates 0-7 only (imm8[7:3] ignored); VEX has 0-31 */
    imm &= emu_simd_is_vex(d) ? 31 : 7;
    simd_v128 a[2], b[2], r[2];
    rd(v, d, ia, a);
    rd(v, d, ib, b);
    r[0] = a[0];
    r[1] = a[1];
    uint32_t m = v->cpu.fpu.mxcsr, fl = 0;
    for (int l = 0; l < (is_256(d) ? 2 : 1); l++) {
        switch (d->op) {
        case DOP_CMPPS: case DOP_VCMPPS: fl |= simd_cmpps(&r[l], &a[l], &b[l], imm, m); break;
        case DOP_CMPPD: case DOP_VCMPPD: fl |= simd_cmppd(&r[l], &a[l], &b[l], imm, m); break;
        case DOP_CMPSS: case DOP_VCMPSS: fl |= simd_cmpss(&r[l], &a[l], &b[l], imm, m); break;
        default: fl |= simd_cmpsd(&r[l], &a[l], &b[l], imm, m); break;
        }
    }
    emu_simd_fp_flags(v, fl);
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* COMISS/UCOMISS/COMISD/UCOMISD: ZF PF CF from the compare, OF SF AF cleared. */
static int h_comis(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 a[2], b[2];
    rd(v, d, 0, a);
    rd(v, d, 1, b);
    bool dbl = d->op == DOP_COMISD || d->op == DOP_UCOMISD || d->op == DOP_VCOMISD ||
               d->op == DOP_VUCOMISD;
    bool ordered = d->op == DOP_COMISS || d->op == DOP_COMISD || d->op == DOP_VCOMISS ||
                   d->op == DOP_VCOMISD;
    uint32_t rf;
    uint32_t fl = simd_comis(&a[0], &b[0], dbl, ordered, v->cpu.fpu.mxcsr, &rf);
    emu_simd_fp_flags(v, fl);
    emu_flags_update(v, EMU_FL_OF | EMU_FL_SF | EMU_FL_ZF | EMU_FL_AF | EMU_FL_PF | EMU_FL_CF, rf);
    return EMU_H_NEXT;
}

static int h_ptest(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 a[2], b[2];
    rd(v, d, 0, a);
    rd(v, d, 1, b);
    unsigned zc = simd_ptest(&a[0], &b[0]);
    if (is_256(d)) {
        unsigned hi = simd_ptest(&a[1], &b[1]);
        zc &= hi; /* both flags must hold over all 256 bits */
    }
    uint64_t fl = ((zc & 1) ? EMU_FL_ZF : 0) | ((zc & 2) ? EMU_FL_CF : 0);
    emu_flags_update(v, EMU_FL_OF | EMU_FL_SF | EMU_FL_ZF | EMU_FL_AF | EMU_FL_PF | EMU_FL_CF, fl);
    return EMU_H_NEXT;
}

/* ---------------- conversions with GPRs ---------------- */

static int h_cvtsi2s(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned ia = d->nops == 3 ? 1 : 0, isrc = d->nops - 1;
    simd_v128 a[2], r[2] = { 0 };
    rd(v, d, ia, a);
    bool is64 = d->ops[isrc].size == 8;
    int64_t val = emu_sext(emu_opnd_read(v, d, isrc), is64 ? 8 : 4);
    r[0] = a[0];
    bool dbl = d->op == DOP_CVTSI2SD || d->op == DOP_VCVTSI2SD;
    uint32_t m = v->cpu.fpu.mxcsr;
    uint32_t fl = dbl ? simd_cvtsi2sd(&r[0], val, is64, m) : simd_cvtsi2ss(&r[0], val, is64, m);
    emu_simd_fp_flags(v, fl);
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

static int h_cvt2si(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 a[2];
    rd(v, d, 1, a);
    bool dbl = d->op == DOP_CVTSD2SI || d->op == DOP_CVTTSD2SI || d->op == DOP_VCVTSD2SI ||
               d->op == DOP_VCVTTSD2SI;
    bool trunc = d->op == DOP_CVTTSS2SI || d->op == DOP_CVTTSD2SI || d->op == DOP_VCVTTSS2SI ||
                 d->op == DOP_VCVTTSD2SI;
    bool is64 = d->ops[0].size == 8;
    uint64_t out = 0;
    uint32_t fl = simd_cvt2si(&out, &a[0], dbl, is64, trunc, v->cpu.fpu.mxcsr);
    emu_simd_fp_flags(v, fl);
    emu_opnd_write(v, d, 0, out);
    return EMU_H_NEXT;
}

/* ---------------- ROUNDxx ---------------- */

static int h_round(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned ia, ib, imm = imm8(d);
    srcs(d, 1, &ia, &ib);
    bool scalar = d->op == DOP_ROUNDSS || d->op == DOP_ROUNDSD || d->op == DOP_VROUNDSS ||
                  d->op == DOP_VROUNDSD;
    bool dbl = d->op == DOP_ROUNDPD || d->op == DOP_ROUNDSD || d->op == DOP_VROUNDPD ||
               d->op == DOP_VROUNDSD;
    simd_v128 a[2], b[2], r[2];
    rd(v, d, ia, a);
    rd(v, d, ib, b);
    r[0] = a[0];
    r[1] = a[1];
    uint32_t m = v->cpu.fpu.mxcsr;
    uint32_t fl = simd_round(&r[0], &a[0], &b[0], dbl, scalar, imm, m);
    if (is_256(d) && !scalar)
        fl |= simd_round(&r[1], &a[1], &b[1], dbl, scalar, imm, m);
    emu_simd_fp_flags(v, fl);
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* ---------------- masks, insert/extract ---------------- */

static int h_movmsk(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 a[2];
    rd(v, d, 1, a);
    uint32_t m;
    switch (d->op) {
    case DOP_MOVMSKPS: case DOP_VMOVMSKPS:
        m = simd_movmskps(&a[0]) | (is_256(d) ? simd_movmskps(&a[1]) << 4 : 0);
        break;
    case DOP_MOVMSKPD: case DOP_VMOVMSKPD:
        m = simd_movmskpd(&a[0]) | (is_256(d) ? simd_movmskpd(&a[1]) << 2 : 0);
        break;
    default: /* PMOVMSKB; the MMX form only has 8 bytes */
        m = simd_pmovmskb(&a[0]);
        if (d->ops[1].reg_class == DREG_MMX)
            m &= 0xff;
        else if (is_256(d))
            m |= simd_pmovmskb(&a[1]) << 16;
        break;
    }
    emu_gpr_write(v, d->ops[0].reg, d->ops[0].size == 8 ? 8 : 4, m);
    return EMU_H_NEXT;
}

static unsigned ins_ext_size(uint16_t op)
{
    switch (op) {
    case DOP_PINSRB: case DOP_VPINSRB: case DOP_PEXTRB: case DOP_VPEXTRB: return 1;
    case DOP_PINSRW: case DOP_VPINSRW: case DOP_PEXTRW: case DOP_VPEXTRW: return 2;
    case DOP_PINSRQ: case DOP_VPINSRQ: case DOP_PEXTRQ: case DOP_VPEXTRQ: return 8;
    default: return 4; /* PINSRD/PEXTRD/EXTRACTPS */
    }
}

static int h_pinsr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned esz = ins_ext_size(d->op), isrc = d->nops - 2, ia = d->nops == 4 ? 1 : 0;
    simd_v128 a[2], r[2] = { 0 };
    rd(v, d, ia, a);
    uint64_t val = emu_opnd_read(v, d, isrc);
    r[0] = a[0];
    bool mmx = is_mmx_dest(d);
    unsigned n = (mmx ? 8 : 16) / esz;
    simd_pinsr(&r[0], val, esz, imm8(d) & (n - 1));
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

static int h_pextr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned esz = ins_ext_size(d->op);
    simd_v128 a[2];
    rd(v, d, 1, a);
    bool mmx = d->ops[1].kind == DOPND_REG && d->ops[1].reg_class == DREG_MMX;
    unsigned n = (mmx ? 8 : 16) / esz;
    uint64_t val = simd_pextr(&a[0], esz, imm8(d) & (n - 1));
    const struct decoder_operand *o = &d->ops[0];
    if (o->kind == DOPND_MEM) {
        emu_simd_mmio_check(v, d, 0, true);
        emu_mem_write(v, o->seg, emu_opnd_ea(v, d, 0), esz, val);
    }
    else /* register destinations are zero-extended (32-bit write clears 63:32) */
        emu_gpr_write(v, o->reg, o->size == 8 ? 8 : 4, val);
    return EMU_H_NEXT;
}

static int h_insertps(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned ia, ib, imm = imm8(d);
    srcs(d, 1, &ia, &ib);
    simd_v128 a[2], b[2], r[2] = { 0 };
    rd(v, d, ia, a);
    rd(v, d, ib, b);
    /* register source: imm[7:6] selects the dword; memory source: the loaded dword */
    uint32_t elem = d->ops[ib].kind == DOPND_MEM ? b[0].d[0] : b[0].d[(imm >> 6) & 3];
    simd_insertps(&r[0], &a[0], elem, imm);
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* PMOVSX/PMOVZX (128-bit forms). */
static int h_pmovx(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    static const struct {
        uint16_t op, vop;
        uint8_t from, to;
        bool sign;
    } tbl[] = {
        { DOP_PMOVSXBW, DOP_VPMOVSXBW, 1, 2, true }, { DOP_PMOVSXBD, DOP_VPMOVSXBD, 1, 4, true },
        { DOP_PMOVSXBQ, DOP_VPMOVSXBQ, 1, 8, true }, { DOP_PMOVSXWD, DOP_VPMOVSXWD, 2, 4, true },
        { DOP_PMOVSXWQ, DOP_VPMOVSXWQ, 2, 8, true }, { DOP_PMOVSXDQ, DOP_VPMOVSXDQ, 4, 8, true },
        { DOP_PMOVZXBW, DOP_VPMOVZXBW, 1, 2, false }, { DOP_PMOVZXBD, DOP_VPMOVZXBD, 1, 4, false },
        { DOP_PMOVZXBQ, DOP_VPMOVZXBQ, 1, 8, false }, { DOP_PMOVZXWD, DOP_VPMOVZXWD, 2, 4, false },
        { DOP_PMOVZXWQ, DOP_VPMOVZXWQ, 2, 8, false }, { DOP_PMOVZXDQ, DOP_VPMOVZXDQ, 4, 8, false },
    };
    unsigned k = 0;
    while (tbl[k].op != d->op && tbl[k].vop != d->op)
        k++;
    simd_v128 a[2], r[2] = { 0 };
    if (is_256(d)) { /* the source is twice the 128-bit form's: upper lane from its upper half */
        unsigned half = 16 * tbl[k].from / tbl[k].to;
        rd_wide_src(v, d, 1, a, 2 * half);
        simd_v128 upper = { .q = { 0, 0 } };
        memcpy(&upper, a[0].b + half, half);
        simd_pmovx(&r[1], &upper, tbl[k].from, tbl[k].to, tbl[k].sign);
    } else {
        rd(v, d, 1, a);
    }
    simd_pmovx(&r[0], &a[0], tbl[k].from, tbl[k].to, tbl[k].sign);
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* MPSADBW (SDM vol.2): eight sums of absolute differences of 4-byte groups;
 * imm[1:0] picks the src2 dword, imm[2] the src1 offset (VEX.256 upper lane: imm[4:3], imm[5]). */
static void mpsadbw(simd_v128 *r, const simd_v128 *a, const simd_v128 *b, unsigned imm)
{
    unsigned o1 = ((imm >> 2) & 1) * 4, o2 = (imm & 3) * 4;
    simd_v128 t;
    for (unsigned i = 0; i < 8; i++) {
        unsigned sum = 0;
        for (unsigned j = 0; j < 4; j++) {
            int x = a->b[o1 + i + j] - b->b[o2 + j];
            sum += (unsigned)(x < 0 ? -x : x);
        }
        t.w[i] = (uint16_t)sum;
    }
    *r = t;
}

static int h_mpsadbw(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned ia, ib, imm = imm8(d);
    srcs(d, 1, &ia, &ib);
    simd_v128 a[2], b[2], r[2];
    rd(v, d, ia, a);
    rd(v, d, ib, b);
    mpsadbw(&r[0], &a[0], &b[0], imm);
    mpsadbw(&r[1], &a[1], &b[1], imm >> 3);
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* DPPS/DPPD (SDM vol.2 pseudo-code): products of the elements selected by imm[7:4]
 * (unselected ones are +0.0 and raise nothing), summed pairwise with the
 * instruction's association, broadcast to the elements selected by imm[3:0].
 * Every step is the host's rounded SSE operation, so flags and rounding agree. */
static uint32_t dp(simd_v128 *r, const simd_v128 *a, const simd_v128 *b, unsigned imm, bool dbl,
                   uint32_t m)
{
    simd_v128 x = { .q = { 0, 0 } }, y = { .q = { 0, 0 } }, p, s1, s2, sum;
    unsigned n = dbl ? 2 : 4;
    for (unsigned i = 0; i < n; i++)
        if ((imm >> (4 + i)) & 1) {
            if (dbl) {
                x.q[i] = a->q[i];
                y.q[i] = b->q[i];
            } else {
                x.d[i] = a->d[i];
                y.d[i] = b->d[i];
            }
        }
    uint32_t fl = dbl ? simd_mulpd(&p, &x, &y, m) : simd_mulps(&p, &x, &y, m);
    if (dbl) {
        s1 = p;
        s2 = (simd_v128){ .q = { p.q[1], 0 } };
        fl |= simd_addsd(&sum, &s1, &s2, m);
    } else {
        s1 = (simd_v128){ .d = { p.d[0], p.d[2], 0, 0 } };
        s2 = (simd_v128){ .d = { p.d[1], p.d[3], 0, 0 } };
        simd_v128 pair, hi;
        fl |= simd_addps(&pair, &s1, &s2, m); /* (p0+p1), (p2+p3) */
        hi = (simd_v128){ .d = { pair.d[1], 0, 0, 0 } };
        fl |= simd_addss(&sum, &pair, &hi, m);
    }
    for (unsigned i = 0; i < n; i++) {
        bool on = (imm >> i) & 1;
        if (dbl)
            r->q[i] = on ? sum.q[0] : 0;
        else
            r->d[i] = on ? sum.d[0] : 0;
    }
    return fl;
}

static int h_dp(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    bool dbl = d->op == DOP_DPPD || d->op == DOP_VDPPD;
    if (dbl && is_256(d))
        emu_unimplemented(v); /* VDPPD has no 256-bit form (#UD on hardware) */
    unsigned ia, ib, imm = imm8(d);
    srcs(d, 1, &ia, &ib);
    simd_v128 a[2], b[2], r[2] = { { .q = { 0, 0 } }, { .q = { 0, 0 } } };
    rd(v, d, ia, a);
    rd(v, d, ib, b);
    uint32_t m = v->cpu.fpu.mxcsr;
    uint32_t fl = dp(&r[0], &a[0], &b[0], imm, dbl, m);
    if (is_256(d))
        fl |= dp(&r[1], &a[1], &b[1], imm, dbl, m);
    emu_simd_fp_flags(v, fl);
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* CVTPI2PS/CVTPI2PD/CVT(T)PS2PI/CVT(T)PD2PI: SSE <-> MMX packed conversions, done
 * with the 128-bit functions on the 64-bit halves involved. */
static int h_cvtpi(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 a[2], b[2], r[2] = { { .q = { 0, 0 } }, { .q = { 0, 0 } } };
    rd(v, d, 0, a);
    rd(v, d, 1, b);
    uint32_t m = v->cpu.fpu.mxcsr, fl;
    switch (d->op) {
    case DOP_CVTPI2PS: /* low 64 bits of the xmm replaced, upper kept */
        r[0] = a[0];
        simd_v128 t;
        fl = simd_cvtdq2ps(&t, &b[0], &b[0], m);
        r[0].q[0] = t.q[0];
        break;
    case DOP_CVTPI2PD:
        fl = simd_cvtdq2pd(&r[0], &b[0], &b[0], m);
        break;
    case DOP_CVTPS2PI: fl = simd_cvtps2dq(&r[0], &b[0], &b[0], m); r[0].q[1] = 0; break;
    case DOP_CVTTPS2PI: fl = simd_cvttps2dq(&r[0], &b[0], &b[0], m); r[0].q[1] = 0; break;
    case DOP_CVTPD2PI: fl = simd_cvtpd2dq(&r[0], &b[0], &b[0], m); break;
    default: fl = simd_cvttpd2dq(&r[0], &b[0], &b[0], m); break;
    }
    emu_simd_fp_flags(v, fl);
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* MASKMOVQ mm1, mm2: byte stores of mm1 to DS:rDI where mm2's byte has bit 7 set. */
static int h_maskmovq(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 val[2], mask[2];
    rd(v, d, 0, val);
    rd(v, d, 1, mask);
    unsigned seg = (d->prefixes & DPFX_SEG) ? d->seg_override : EMU_DS;
    uint64_t di = emu_gpr_read(v, EMU_RDI, d->addrsize);
    for (unsigned i = 0; i < 8; i++)
        if (mask[0].b[i] & 0x80)
            emu_mem_write(v, seg, (di + i) & emu_mask(d->addrsize), 1, val[0].b[i]);
    return EMU_H_NEXT;
}

/* ---------------- SSE4.2 ---------------- */

static int h_pcmpstr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    simd_v128 a[2], b[2];
    rd(v, d, 0, a);
    rd(v, d, 1, b);
    bool expl = d->op == DOP_PCMPESTRI || d->op == DOP_PCMPESTRM || d->op == DOP_VPCMPESTRI ||
                d->op == DOP_VPCMPESTRM;
    bool mask = d->op == DOP_PCMPESTRM || d->op == DOP_PCMPISTRM || d->op == DOP_VPCMPESTRM ||
                d->op == DOP_VPCMPISTRM;
    /* lengths: EAX/EDX, or RAX/RDX with REX.W / VEX.W (SDM vol.2 PCMPESTRI) */
    bool w = (d->rex & 8) || (emu_simd_is_vex(d) && d->vex_w);
    int64_t la = w ? (int64_t)v->cpu.gpr[EMU_RAX] : (int32_t)v->cpu.gpr[EMU_RAX];
    int64_t lb = w ? (int64_t)v->cpu.gpr[EMU_RDX] : (int32_t)v->cpu.gpr[EMU_RDX];
    struct simd_str_result res;
    simd_pcmpstr(&res, &a[0], &b[0], imm8(d), expl, la, lb);
    if (mask) {
        simd_v128 m[2] = { res.mask, { .q = { 0, 0 } } };
        emu_simd_write_reg(v, d, 0, &m[0], &m[1]);
    } else {
        emu_gpr_write(v, EMU_RCX, 4, res.index);
    }
    emu_flags_update(v, EMU_FL_OF | EMU_FL_SF | EMU_FL_ZF | EMU_FL_AF | EMU_FL_PF | EMU_FL_CF,
                     res.flags);
    return EMU_H_NEXT;
}

static int h_crc32(struct emu_vcpu *v, const struct decoded_insn *d)
{
    /* CRC32 is a GP-register instruction: no SSE state or CR4 checks */
    unsigned ssz = d->ops[1].size;
    uint64_t data = emu_opnd_read(v, d, 1);
    uint32_t crc = (uint32_t)emu_gpr_read(v, d->ops[0].reg, 4);
    crc = simd_crc32(crc, data, ssz);
    emu_gpr_write(v, d->ops[0].reg, d->ops[0].size == 8 ? 8 : 4, crc); /* zero-extends */
    return EMU_H_NEXT;
}

/* ---------------- state management ---------------- */

static int h_vzero(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    unsigned n = v->mode == DECODER_MODE_64 ? 16 : 8;
    for (unsigned i = 0; i < n; i++) {
        memset(v->cpu.fpu.ymmh[i], 0, 16);
        if (d->op == DOP_VZEROALL)
            memset(v->cpu.fpu.xmm[i], 0, 16);
    }
    return EMU_H_NEXT;
}

/* LFENCE/SFENCE/MFENCE: other vCPUs are host threads, so order this thread's
 * accesses with a host fence (MFENCE = full barrier, SDM vol.3 9.2.2). */
static int h_fence(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)v;
    if (d->op == DOP_MFENCE)
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    else if (d->op == DOP_SFENCE)
        __atomic_thread_fence(__ATOMIC_RELEASE);
    else
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return EMU_H_NEXT;
}

/* PREFETCHh never faults (SDM vol.2 PREFETCHh): no effect without caches. */
static int h_prefetch(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)v;
    (void)d;
    return EMU_H_NEXT;
}

/* CLFLUSH faults like a byte read of its operand (SDM vol.2 CLFLUSH); no caches to flush. */
static int h_clflush(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t lin = emu_seg_lin(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), 1, EMU_ACC_READ);
    uint64_t gpa;
    uint32_t ec = emu_walk(v, lin, EMU_ACC_READ, true, &gpa, NULL, NULL);
    if (ec)
        emu_raise_pf(v, lin, EMU_WALK_PFERR(ec));
    return EMU_H_NEXT;
}

/* MOVNTI m32/m64, r (SSE2): a plain store here. */
static int h_movnti(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_opnd_write(v, d, 0, emu_opnd_read(v, d, 1));
    return EMU_H_NEXT;
}

/* EMMS: all x87 tags empty (SDM vol.2 EMMS); CR0.EM -> #UD, CR0.TS -> #NM. */
static int h_emms(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    if (v->cpu.cr0 & EMU_CR0_EM)
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    if (v->cpu.cr0 & EMU_CR0_TS)
        emu_raise(v, EMU_NM, EMU_NO_ERRCODE);
    v->cpu.fpu.ftw = 0;
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_simd_handlers[] = {
    { DOP_MOVUPS, h_mov }, { DOP_VMOVUPS, h_mov }, { DOP_MOVUPD, h_mov }, { DOP_VMOVUPD, h_mov },
    { DOP_MOVAPS, h_mov }, { DOP_VMOVAPS, h_mov }, { DOP_MOVAPD, h_mov }, { DOP_VMOVAPD, h_mov },
    { DOP_MOVDQA, h_mov }, { DOP_VMOVDQA, h_mov }, { DOP_MOVDQU, h_mov }, { DOP_VMOVDQU, h_mov },
    { DOP_MOVNTPS, h_mov }, { DOP_VMOVNTPS, h_mov }, { DOP_MOVNTPD, h_mov }, { DOP_VMOVNTPD, h_mov },
    { DOP_MOVNTDQ, h_mov }, { DOP_VMOVNTDQ, h_mov }, { DOP_MOVNTDQA, h_mov }, { DOP_VMOVNTDQA, h_mov },
    { DOP_LDDQU, h_mov }, { DOP_VLDDQU, h_mov }, { DOP_MOVNTQ, h_mov },
    { DOP_MOVSS, h_movs_scalar }, { DOP_VMOVSS, h_movs_scalar },
    { DOP_MOVSD, h_movs_scalar }, { DOP_VMOVSD, h_movs_scalar },
    { DOP_MOVD, h_movdq }, { DOP_VMOVD, h_movdq }, { DOP_MOVQ, h_movdq }, { DOP_VMOVQ, h_movdq },
    { DOP_MOVQ2DQ, h_movq2dq }, { DOP_MOVDQ2Q, h_movq2dq },
    { DOP_MOVLPS, h_movhl }, { DOP_VMOVLPS, h_movhl }, { DOP_MOVLPD, h_movhl }, { DOP_VMOVLPD, h_movhl },
    { DOP_MOVHPS, h_movhl }, { DOP_VMOVHPS, h_movhl }, { DOP_MOVHPD, h_movhl }, { DOP_VMOVHPD, h_movhl },
    { DOP_MOVHLPS, h_movhl }, { DOP_VMOVHLPS, h_movhl }, { DOP_MOVLHPS, h_movhl }, { DOP_VMOVLHPS, h_movhl },
    { DOP_PSRLW, h_shift }, { DOP_PSRLD, h_shift }, { DOP_PSRLQ, h_shift }, { DOP_PSRAW, h_shift },
    { DOP_PSRAD, h_shift }, { DOP_PSLLW, h_shift }, { DOP_PSLLD, h_shift }, { DOP_PSLLQ, h_shift },
    { DOP_VPSRLW, h_shift }, { DOP_VPSRLD, h_shift }, { DOP_VPSRLQ, h_shift }, { DOP_VPSRAW, h_shift },
    { DOP_VPSRAD, h_shift }, { DOP_VPSLLW, h_shift }, { DOP_VPSLLD, h_shift }, { DOP_VPSLLQ, h_shift },
    { DOP_PSLLDQ, h_bytesshift }, { DOP_PSRLDQ, h_bytesshift },
    { DOP_VPSLLDQ, h_bytesshift }, { DOP_VPSRLDQ, h_bytesshift },
    { DOP_PSHUFD, h_immop }, { DOP_VPSHUFD, h_immop }, { DOP_PSHUFHW, h_immop }, { DOP_VPSHUFHW, h_immop },
    { DOP_PSHUFLW, h_immop }, { DOP_VPSHUFLW, h_immop }, { DOP_PSHUFW, h_immop },
    { DOP_SHUFPS, h_immop }, { DOP_VSHUFPS, h_immop }, { DOP_SHUFPD, h_immop }, { DOP_VSHUFPD, h_immop },
    { DOP_PALIGNR, h_immop }, { DOP_VPALIGNR, h_immop }, { DOP_PBLENDW, h_immop }, { DOP_VPBLENDW, h_immop },
    { DOP_BLENDPS, h_immop }, { DOP_VBLENDPS, h_immop }, { DOP_BLENDPD, h_immop }, { DOP_VBLENDPD, h_immop },
    { DOP_PBLENDVB, h_blendv }, { DOP_BLENDVPS, h_blendv }, { DOP_BLENDVPD, h_blendv },
    { DOP_CMPPS, h_cmpfp }, { DOP_VCMPPS, h_cmpfp }, { DOP_CMPPD, h_cmpfp }, { DOP_VCMPPD, h_cmpfp },
    { DOP_CMPSS, h_cmpfp }, { DOP_VCMPSS, h_cmpfp }, { DOP_CMPSD, h_cmpfp }, { DOP_VCMPSD, h_cmpfp },
    { DOP_COMISS, h_comis }, { DOP_VCOMISS, h_comis }, { DOP_UCOMISS, h_comis }, { DOP_VUCOMISS, h_comis },
    { DOP_COMISD, h_comis }, { DOP_VCOMISD, h_comis }, { DOP_UCOMISD, h_comis }, { DOP_VUCOMISD, h_comis },
    { DOP_PTEST, h_ptest }, { DOP_VPTEST, h_ptest },
    { DOP_CVTSI2SS, h_cvtsi2s }, { DOP_VCVTSI2SS, h_cvtsi2s }, { DOP_CVTSI2SD, h_cvtsi2s }, { DOP_VCVTSI2SD, h_cvtsi2s },
    { DOP_CVTSS2SI, h_cvt2si }, { DOP_VCVTSS2SI, h_cvt2si }, { DOP_CVTTSS2SI, h_cvt2si }, { DOP_VCVTTSS2SI, h_cvt2si },
    { DOP_CVTSD2SI, h_cvt2si }, { DOP_VCVTSD2SI, h_cvt2si }, { DOP_CVTTSD2SI, h_cvt2si }, { DOP_VCVTTSD2SI, h_cvt2si },
    { DOP_ROUNDPS, h_round }, { DOP_VROUNDPS, h_round }, { DOP_ROUNDPD, h_round }, { DOP_VROUNDPD, h_round },
    { DOP_ROUNDSS, h_round }, { DOP_VROUNDSS, h_round }, { DOP_ROUNDSD, h_round }, { DOP_VROUNDSD, h_round },
    { DOP_MOVMSKPS, h_movmsk }, { DOP_VMOVMSKPS, h_movmsk }, { DOP_MOVMSKPD, h_movmsk }, { DOP_VMOVMSKPD, h_movmsk },
    { DOP_PMOVMSKB, h_movmsk }, { DOP_VPMOVMSKB, h_movmsk },
    { DOP_PINSRB, h_pinsr }, { DOP_VPINSRB, h_pinsr }, { DOP_PINSRW, h_pinsr }, { DOP_VPINSRW, h_pinsr },
    { DOP_PINSRD, h_pinsr }, { DOP_VPINSRD, h_pinsr }, { DOP_PINSRQ, h_pinsr }, { DOP_VPINSRQ, h_pinsr },
    { DOP_PEXTRB, h_pextr }, { DOP_VPEXTRB, h_pextr }, { DOP_PEXTRW, h_pextr }, { DOP_VPEXTRW, h_pextr },
    { DOP_PEXTRD, h_pextr }, { DOP_VPEXTRD, h_pextr }, { DOP_PEXTRQ, h_pextr }, { DOP_VPEXTRQ, h_pextr },
    { DOP_EXTRACTPS, h_pextr }, { DOP_VEXTRACTPS, h_pextr },
    { DOP_INSERTPS, h_insertps }, { DOP_VINSERTPS, h_insertps },
    { DOP_PMOVSXBW, h_pmovx }, { DOP_VPMOVSXBW, h_pmovx }, { DOP_PMOVSXBD, h_pmovx }, { DOP_VPMOVSXBD, h_pmovx },
    { DOP_PMOVSXBQ, h_pmovx }, { DOP_VPMOVSXBQ, h_pmovx }, { DOP_PMOVSXWD, h_pmovx }, { DOP_VPMOVSXWD, h_pmovx },
    { DOP_PMOVSXWQ, h_pmovx }, { DOP_VPMOVSXWQ, h_pmovx }, { DOP_PMOVSXDQ, h_pmovx }, { DOP_VPMOVSXDQ, h_pmovx },
    { DOP_PMOVZXBW, h_pmovx }, { DOP_VPMOVZXBW, h_pmovx }, { DOP_PMOVZXBD, h_pmovx }, { DOP_VPMOVZXBD, h_pmovx },
    { DOP_PMOVZXBQ, h_pmovx }, { DOP_VPMOVZXBQ, h_pmovx }, { DOP_PMOVZXWD, h_pmovx }, { DOP_VPMOVZXWD, h_pmovx },
    { DOP_PMOVZXWQ, h_pmovx }, { DOP_VPMOVZXWQ, h_pmovx }, { DOP_PMOVZXDQ, h_pmovx }, { DOP_VPMOVZXDQ, h_pmovx },
    { DOP_PCMPESTRI, h_pcmpstr }, { DOP_PCMPESTRM, h_pcmpstr }, { DOP_PCMPISTRI, h_pcmpstr }, { DOP_PCMPISTRM, h_pcmpstr },
    { DOP_VPCMPESTRI, h_pcmpstr }, { DOP_VPCMPESTRM, h_pcmpstr }, { DOP_VPCMPISTRI, h_pcmpstr }, { DOP_VPCMPISTRM, h_pcmpstr },
    { DOP_CRC32, h_crc32 },
    { DOP_CVTPI2PS, h_cvtpi }, { DOP_CVTPI2PD, h_cvtpi }, { DOP_CVTPS2PI, h_cvtpi },
    { DOP_CVTTPS2PI, h_cvtpi }, { DOP_CVTPD2PI, h_cvtpi }, { DOP_CVTTPD2PI, h_cvtpi },
    { DOP_MASKMOVQ, h_maskmovq },
    { DOP_MPSADBW, h_mpsadbw }, { DOP_VMPSADBW, h_mpsadbw },
    { DOP_DPPS, h_dp }, { DOP_VDPPS, h_dp }, { DOP_DPPD, h_dp }, { DOP_VDPPD, h_dp },
    { DOP_VZEROUPPER, h_vzero }, { DOP_VZEROALL, h_vzero }, { DOP_EMMS, h_emms },
    { DOP_LFENCE, h_fence }, { DOP_SFENCE, h_fence }, { DOP_MFENCE, h_fence },
    { DOP_PREFETCHNTA, h_prefetch }, { DOP_PREFETCHT0, h_prefetch },
    { DOP_PREFETCHT1, h_prefetch }, { DOP_PREFETCHT2, h_prefetch },
    { DOP_CLFLUSH, h_clflush }, { DOP_MOVNTI, h_movnti },
    { DOP_PADDB, h_binop }, { DOP_VPADDB, h_binop },
    { DOP_PADDW, h_binop }, { DOP_VPADDW, h_binop },
    { DOP_PADDD, h_binop }, { DOP_VPADDD, h_binop },
    { DOP_PADDQ, h_binop }, { DOP_VPADDQ, h_binop },
    { DOP_PSUBB, h_binop }, { DOP_VPSUBB, h_binop },
    { DOP_PSUBW, h_binop }, { DOP_VPSUBW, h_binop },
    { DOP_PSUBD, h_binop }, { DOP_VPSUBD, h_binop },
    { DOP_PSUBQ, h_binop }, { DOP_VPSUBQ, h_binop },
    { DOP_PADDSB, h_binop }, { DOP_VPADDSB, h_binop },
    { DOP_PADDSW, h_binop }, { DOP_VPADDSW, h_binop },
    { DOP_PADDUSB, h_binop }, { DOP_VPADDUSB, h_binop },
    { DOP_PADDUSW, h_binop }, { DOP_VPADDUSW, h_binop },
    { DOP_PSUBSB, h_binop }, { DOP_VPSUBSB, h_binop },
    { DOP_PSUBSW, h_binop }, { DOP_VPSUBSW, h_binop },
    { DOP_PSUBUSB, h_binop }, { DOP_VPSUBUSB, h_binop },
    { DOP_PSUBUSW, h_binop }, { DOP_VPSUBUSW, h_binop },
    { DOP_PMULLW, h_binop }, { DOP_VPMULLW, h_binop },
    { DOP_PMULHW, h_binop }, { DOP_VPMULHW, h_binop },
    { DOP_PMULHUW, h_binop }, { DOP_VPMULHUW, h_binop },
    { DOP_PMULUDQ, h_binop }, { DOP_VPMULUDQ, h_binop },
    { DOP_PMADDWD, h_binop }, { DOP_VPMADDWD, h_binop },
    { DOP_PAVGB, h_binop }, { DOP_VPAVGB, h_binop },
    { DOP_PAVGW, h_binop }, { DOP_VPAVGW, h_binop },
    { DOP_PSADBW, h_binop }, { DOP_VPSADBW, h_binop },
    { DOP_PMINUB, h_binop }, { DOP_VPMINUB, h_binop },
    { DOP_PMAXUB, h_binop }, { DOP_VPMAXUB, h_binop },
    { DOP_PMINSW, h_binop }, { DOP_VPMINSW, h_binop },
    { DOP_PMAXSW, h_binop }, { DOP_VPMAXSW, h_binop },
    { DOP_PCMPEQB, h_binop }, { DOP_VPCMPEQB, h_binop },
    { DOP_PCMPEQW, h_binop }, { DOP_VPCMPEQW, h_binop },
    { DOP_PCMPEQD, h_binop }, { DOP_VPCMPEQD, h_binop },
    { DOP_PCMPGTB, h_binop }, { DOP_VPCMPGTB, h_binop },
    { DOP_PCMPGTW, h_binop }, { DOP_VPCMPGTW, h_binop },
    { DOP_PCMPGTD, h_binop }, { DOP_VPCMPGTD, h_binop },
    { DOP_PAND, h_binop }, { DOP_VPAND, h_binop },
    { DOP_PANDN, h_binop }, { DOP_VPANDN, h_binop },
    { DOP_POR, h_binop }, { DOP_VPOR, h_binop },
    { DOP_PXOR, h_binop }, { DOP_VPXOR, h_binop },
    { DOP_PSIGNB, h_binop }, { DOP_VPSIGNB, h_binop },
    { DOP_PSIGNW, h_binop }, { DOP_VPSIGNW, h_binop },
    { DOP_PSIGND, h_binop }, { DOP_VPSIGND, h_binop },
    { DOP_PABSB, h_binop }, { DOP_VPABSB, h_binop },
    { DOP_PABSW, h_binop }, { DOP_VPABSW, h_binop },
    { DOP_PABSD, h_binop }, { DOP_VPABSD, h_binop },
    { DOP_PMULHRSW, h_binop }, { DOP_VPMULHRSW, h_binop },
    { DOP_PMADDUBSW, h_binop }, { DOP_VPMADDUBSW, h_binop },
    { DOP_PMULLD, h_binop }, { DOP_VPMULLD, h_binop },
    { DOP_PMULDQ, h_binop }, { DOP_VPMULDQ, h_binop },
    { DOP_PMINSB, h_binop }, { DOP_VPMINSB, h_binop },
    { DOP_PMAXSB, h_binop }, { DOP_VPMAXSB, h_binop },
    { DOP_PMINUW, h_binop }, { DOP_VPMINUW, h_binop },
    { DOP_PMAXUW, h_binop }, { DOP_VPMAXUW, h_binop },
    { DOP_PMINSD, h_binop }, { DOP_VPMINSD, h_binop },
    { DOP_PMAXSD, h_binop }, { DOP_VPMAXSD, h_binop },
    { DOP_PMINUD, h_binop }, { DOP_VPMINUD, h_binop },
    { DOP_PMAXUD, h_binop }, { DOP_VPMAXUD, h_binop },
    { DOP_PCMPEQQ, h_binop }, { DOP_VPCMPEQQ, h_binop },
    { DOP_PCMPGTQ, h_binop }, { DOP_VPCMPGTQ, h_binop },
    { DOP_ANDPS, h_binop }, { DOP_VANDPS, h_binop },
    { DOP_ANDNPS, h_binop }, { DOP_VANDNPS, h_binop },
    { DOP_ORPS, h_binop }, { DOP_VORPS, h_binop },
    { DOP_XORPS, h_binop }, { DOP_VXORPS, h_binop },
    { DOP_ANDPD, h_binop }, { DOP_VANDPD, h_binop },
    { DOP_ANDNPD, h_binop }, { DOP_VANDNPD, h_binop },
    { DOP_ORPD, h_binop }, { DOP_VORPD, h_binop },
    { DOP_XORPD, h_binop }, { DOP_VXORPD, h_binop },
    { DOP_PUNPCKLBW, h_binop }, { DOP_VPUNPCKLBW, h_binop },
    { DOP_PUNPCKLWD, h_binop }, { DOP_VPUNPCKLWD, h_binop },
    { DOP_PUNPCKLDQ, h_binop }, { DOP_VPUNPCKLDQ, h_binop },
    { DOP_PUNPCKLQDQ, h_binop }, { DOP_VPUNPCKLQDQ, h_binop },
    { DOP_PUNPCKHBW, h_binop }, { DOP_VPUNPCKHBW, h_binop },
    { DOP_PUNPCKHWD, h_binop }, { DOP_VPUNPCKHWD, h_binop },
    { DOP_PUNPCKHDQ, h_binop }, { DOP_VPUNPCKHDQ, h_binop },
    { DOP_PUNPCKHQDQ, h_binop }, { DOP_VPUNPCKHQDQ, h_binop },
    { DOP_UNPCKLPS, h_binop }, { DOP_VUNPCKLPS, h_binop },
    { DOP_UNPCKHPS, h_binop }, { DOP_VUNPCKHPS, h_binop },
    { DOP_UNPCKLPD, h_binop }, { DOP_VUNPCKLPD, h_binop },
    { DOP_UNPCKHPD, h_binop }, { DOP_VUNPCKHPD, h_binop },
    { DOP_PACKSSWB, h_binop }, { DOP_VPACKSSWB, h_binop },
    { DOP_PACKUSWB, h_binop }, { DOP_VPACKUSWB, h_binop },
    { DOP_PACKSSDW, h_binop }, { DOP_VPACKSSDW, h_binop },
    { DOP_PACKUSDW, h_binop }, { DOP_VPACKUSDW, h_binop },
    { DOP_PSHUFB, h_binop }, { DOP_VPSHUFB, h_binop },
    { DOP_PHADDW, h_binop }, { DOP_VPHADDW, h_binop },
    { DOP_PHADDD, h_binop }, { DOP_VPHADDD, h_binop },
    { DOP_PHADDSW, h_binop }, { DOP_VPHADDSW, h_binop },
    { DOP_PHSUBW, h_binop }, { DOP_VPHSUBW, h_binop },
    { DOP_PHSUBD, h_binop }, { DOP_VPHSUBD, h_binop },
    { DOP_PHSUBSW, h_binop }, { DOP_VPHSUBSW, h_binop },
    { DOP_MOVSLDUP, h_binop }, { DOP_VMOVSLDUP, h_binop },
    { DOP_MOVSHDUP, h_binop }, { DOP_VMOVSHDUP, h_binop },
    { DOP_PHMINPOSUW, h_binop }, { DOP_VPHMINPOSUW, h_binop },
    { DOP_MOVDDUP, h_binop }, { DOP_VMOVDDUP, h_binop },
    { DOP_ADDPS, h_fpop }, { DOP_VADDPS, h_fpop },
    { DOP_ADDPD, h_fpop }, { DOP_VADDPD, h_fpop },
    { DOP_SUBPS, h_fpop }, { DOP_VSUBPS, h_fpop },
    { DOP_SUBPD, h_fpop }, { DOP_VSUBPD, h_fpop },
    { DOP_MULPS, h_fpop }, { DOP_VMULPS, h_fpop },
    { DOP_MULPD, h_fpop }, { DOP_VMULPD, h_fpop },
    { DOP_DIVPS, h_fpop }, { DOP_VDIVPS, h_fpop },
    { DOP_DIVPD, h_fpop }, { DOP_VDIVPD, h_fpop },
    { DOP_MINPS, h_fpop }, { DOP_VMINPS, h_fpop },
    { DOP_MINPD, h_fpop }, { DOP_VMINPD, h_fpop },
    { DOP_MAXPS, h_fpop }, { DOP_VMAXPS, h_fpop },
    { DOP_MAXPD, h_fpop }, { DOP_VMAXPD, h_fpop },
    { DOP_SQRTPS, h_fpop }, { DOP_VSQRTPS, h_fpop },
    { DOP_SQRTPD, h_fpop }, { DOP_VSQRTPD, h_fpop },
    { DOP_RCPPS, h_fpop }, { DOP_VRCPPS, h_fpop },
    { DOP_RSQRTPS, h_fpop }, { DOP_VRSQRTPS, h_fpop },
    { DOP_ADDSUBPS, h_fpop }, { DOP_VADDSUBPS, h_fpop },
    { DOP_ADDSUBPD, h_fpop }, { DOP_VADDSUBPD, h_fpop },
    { DOP_HADDPS, h_fpop }, { DOP_VHADDPS, h_fpop },
    { DOP_HADDPD, h_fpop }, { DOP_VHADDPD, h_fpop },
    { DOP_HSUBPS, h_fpop }, { DOP_VHSUBPS, h_fpop },
    { DOP_HSUBPD, h_fpop }, { DOP_VHSUBPD, h_fpop },
    { DOP_CVTDQ2PS, h_fpop }, { DOP_VCVTDQ2PS, h_fpop },
    { DOP_CVTPS2DQ, h_fpop }, { DOP_VCVTPS2DQ, h_fpop },
    { DOP_CVTTPS2DQ, h_fpop }, { DOP_VCVTTPS2DQ, h_fpop },
    { DOP_ADDSS, h_fpop }, { DOP_VADDSS, h_fpop },
    { DOP_ADDSD, h_fpop }, { DOP_VADDSD, h_fpop },
    { DOP_SUBSS, h_fpop }, { DOP_VSUBSS, h_fpop },
    { DOP_SUBSD, h_fpop }, { DOP_VSUBSD, h_fpop },
    { DOP_MULSS, h_fpop }, { DOP_VMULSS, h_fpop },
    { DOP_MULSD, h_fpop }, { DOP_VMULSD, h_fpop },
    { DOP_DIVSS, h_fpop }, { DOP_VDIVSS, h_fpop },
    { DOP_DIVSD, h_fpop }, { DOP_VDIVSD, h_fpop },
    { DOP_MINSS, h_fpop }, { DOP_VMINSS, h_fpop },
    { DOP_MINSD, h_fpop }, { DOP_VMINSD, h_fpop },
    { DOP_MAXSS, h_fpop }, { DOP_VMAXSS, h_fpop },
    { DOP_MAXSD, h_fpop }, { DOP_VMAXSD, h_fpop },
    { DOP_SQRTSS, h_fpop }, { DOP_VSQRTSS, h_fpop },
    { DOP_SQRTSD, h_fpop }, { DOP_VSQRTSD, h_fpop },
    { DOP_RCPSS, h_fpop }, { DOP_VRCPSS, h_fpop },
    { DOP_RSQRTSS, h_fpop }, { DOP_VRSQRTSS, h_fpop },
    { DOP_CVTSS2SD, h_fpop }, { DOP_VCVTSS2SD, h_fpop },
    { DOP_CVTSD2SS, h_fpop }, { DOP_VCVTSD2SS, h_fpop },
    { DOP_CVTDQ2PD, h_fpop }, { DOP_VCVTDQ2PD, h_fpop },
    { DOP_CVTPD2DQ, h_fpop }, { DOP_VCVTPD2DQ, h_fpop },
    { DOP_CVTTPD2DQ, h_fpop }, { DOP_VCVTTPD2DQ, h_fpop },
    { DOP_CVTPS2PD, h_fpop }, { DOP_VCVTPS2PD, h_fpop },
    { DOP_CVTPD2PS, h_fpop }, { DOP_VCVTPD2PS, h_fpop },
    { 0, NULL },
};
