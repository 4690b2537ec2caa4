/* emu/: SIMD value types and the pure semantic functions of SSE/SSE2/SSSE3/SSE4
 * instructions (no CPU state, no memory access, no exceptions raised here).
 *
 * The instruction handlers (emu/simd_insn_*.c) fetch operands, check the
 * #UD/#NM/#GP rules and call these; the unit tests call them directly and
 * compare them with Unicorn.
 *
 * Operand convention of every binary function: d = f(a, b) where `a` is the
 * first source (the destination register of the legacy SSE form, VEX.vvvv of
 * the AVX form) and `b` the second source (ModRM r/m). d may alias a or b.
 */
#ifndef SOFTKVM_EMU_SIMD_H
#define SOFTKVM_EMU_SIMD_H

#include <stdbool.h>
#include <stdint.h>

typedef union simd_v128 {
    uint8_t b[16];
    int8_t sb[16];
    uint16_t w[8];
    int16_t sw[8];
    uint32_t d[4];
    int32_t sd[4];
    uint64_t q[2];
    int64_t sq[2];
    float f[4];
    double f64[2];
} __attribute__((aligned(16))) simd_v128;

/* ---------------- packed integer (emu/simd_int.c) ---------------- */

typedef void simd_binop_fn(simd_v128 *d, const simd_v128 *a, const simd_v128 *b);

/* One entry per packed-integer binary instruction: a lookup by mnemonic lets
 * the handler table and the tests share one list. */
struct simd_binop_entry {
    const char *name; /* lower-case mnemonic without the V prefix, e.g. "paddb" */
    simd_binop_fn *fn;
};
extern const struct simd_binop_entry simd_int_binops[];
extern const unsigned simd_int_nbinops;
simd_binop_fn *simd_int_binop(const char *name);
/* The binary ops of simd_int_binops[], exported for the handler tables. */
simd_binop_fn simd_paddb;
simd_binop_fn simd_punpcklbw;
simd_binop_fn simd_punpcklwd;
simd_binop_fn simd_punpckldq;
simd_binop_fn simd_punpcklqdq;
simd_binop_fn simd_punpckhbw;
simd_binop_fn simd_punpckhwd;
simd_binop_fn simd_punpckhdq;
simd_binop_fn simd_punpckhqdq;
simd_binop_fn simd_paddw;
simd_binop_fn simd_paddd;
simd_binop_fn simd_paddq;
simd_binop_fn simd_psubb;
simd_binop_fn simd_psubw;
simd_binop_fn simd_psubd;
simd_binop_fn simd_psubq;
simd_binop_fn simd_paddsb;
simd_binop_fn simd_paddsw;
simd_binop_fn simd_paddusb;
simd_binop_fn simd_paddusw;
simd_binop_fn simd_psubsb;
simd_binop_fn simd_psubsw;
simd_binop_fn simd_psubusb;
simd_binop_fn simd_psubusw;
simd_binop_fn simd_pmullw;
simd_binop_fn simd_pmulhw;
simd_binop_fn simd_pmulhuw;
simd_binop_fn simd_pmulld;
simd_binop_fn simd_pmuludq;
simd_binop_fn simd_pmuldq;
simd_binop_fn simd_pmaddwd;
simd_binop_fn simd_pmaddubsw;
simd_binop_fn simd_pmulhrsw;
simd_binop_fn simd_pavgb;
simd_binop_fn simd_pavgw;
simd_binop_fn simd_pminub;
simd_binop_fn simd_pmaxub;
simd_binop_fn simd_pminsb;
simd_binop_fn simd_pmaxsb;
simd_binop_fn simd_pminsw;
simd_binop_fn simd_pmaxsw;
simd_binop_fn simd_pminuw;
simd_binop_fn simd_pmaxuw;
simd_binop_fn simd_pminsd;
simd_binop_fn simd_pmaxsd;
simd_binop_fn simd_pminud;
simd_binop_fn simd_pmaxud;
simd_binop_fn simd_psadbw;
simd_binop_fn simd_pcmpeqb;
simd_binop_fn simd_pcmpeqw;
simd_binop_fn simd_pcmpeqd;
simd_binop_fn simd_pcmpeqq;
simd_binop_fn simd_pcmpgtb;
simd_binop_fn simd_pcmpgtw;
simd_binop_fn simd_pcmpgtd;
simd_binop_fn simd_pcmpgtq;
simd_binop_fn simd_pand;
simd_binop_fn simd_pandn;
simd_binop_fn simd_por;
simd_binop_fn simd_pxor;
simd_binop_fn simd_packsswb;
simd_binop_fn simd_packuswb;
simd_binop_fn simd_packssdw;
simd_binop_fn simd_packusdw;
simd_binop_fn simd_pshufb;
simd_binop_fn simd_phaddw;
simd_binop_fn simd_phaddd;
simd_binop_fn simd_phaddsw;
simd_binop_fn simd_phsubw;
simd_binop_fn simd_phsubd;
simd_binop_fn simd_phsubsw;
simd_binop_fn simd_psignb;
simd_binop_fn simd_psignw;
simd_binop_fn simd_psignd;
simd_binop_fn simd_pabsb;
simd_binop_fn simd_pabsw;
simd_binop_fn simd_pabsd;
simd_binop_fn simd_phminposuw;
simd_binop_fn simd_movsldup;
simd_binop_fn simd_movshdup;
simd_binop_fn simd_movddup;

/* Shifts by a count (from an immediate, or the low 64 bits of an xmm/m128). */
enum simd_shift_kind { SIMD_SLL, SIMD_SRL, SIMD_SRA };
void simd_shift(simd_v128 *d, const simd_v128 *a, uint64_t count, unsigned elem_bytes,
                enum simd_shift_kind kind);
void simd_pslldq(simd_v128 *d, const simd_v128 *a, unsigned imm);
void simd_psrldq(simd_v128 *d, const simd_v128 *a, unsigned imm);

void simd_pshufd(simd_v128 *d, const simd_v128 *a, unsigned imm);
void simd_pshuflw(simd_v128 *d, const simd_v128 *a, unsigned imm);
void simd_pshufhw(simd_v128 *d, const simd_v128 *a, unsigned imm);
void simd_shufps(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm);
void simd_shufpd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm);
void simd_palignr(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm);
void simd_pblendw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm);
void simd_blendps(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm);
void simd_blendpd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm);
/* Variable blends: mask is the top bit of each element of m (XMM0 in legacy form). */
void simd_pblendvb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, const simd_v128 *m);
void simd_blendvps(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, const simd_v128 *m);
void simd_blendvpd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, const simd_v128 *m);

uint32_t simd_pmovmskb(const simd_v128 *a);
uint32_t simd_movmskps(const simd_v128 *a);
uint32_t simd_movmskpd(const simd_v128 *a);

/* PINSR/PEXTR: elem_bytes 1,2,4,8; index already masked by the caller. */
void simd_pinsr(simd_v128 *d, uint64_t value, unsigned elem_bytes, unsigned index);
uint64_t simd_pextr(const simd_v128 *a, unsigned elem_bytes, unsigned index);
void simd_insertps(simd_v128 *d, const simd_v128 *a, uint32_t src_elem, unsigned imm);

/* PMOVZX/PMOVSX: widen the low elements of a from `from` to `to` bytes. */
void simd_pmovx(simd_v128 *d, const simd_v128 *a, unsigned from, unsigned to, bool sign);

/* PTEST: returns ZF in bit 0 and CF in bit 1. */
unsigned simd_ptest(const simd_v128 *a, const simd_v128 *b);

/* CRC32 (Castagnoli, reflected, as SSE4.2 CRC32 r, r/m). */
uint32_t simd_crc32(uint32_t crc, uint64_t data, unsigned bytes);

/* ---------------- PCMPxSTRx (emu/simd_str.c), SDM vol.2 4.1 ---------------- */

struct simd_str_result {
    uint32_t index;    /* PCMPxSTRI: ECX */
    simd_v128 mask;    /* PCMPxSTRM: XMM0 */
    uint32_t flags;    /* EMU_FL_CF|ZF|SF|OF as computed; AF, PF cleared */
};
/* la/lb: explicit lengths (already taken from EAX/EDX, sign-extended);
 * explicit = PCMPESTRx. */
void simd_pcmpstr(struct simd_str_result *r, const simd_v128 *a, const simd_v128 *b,
                  unsigned imm, bool explicit_len, int64_t la, int64_t lb);

/* ---------------- floating point (emu/simd_fp.c) ----------------
 * Every function takes the guest MXCSR (rounding, DAZ, FTZ, masks) and
 * returns the exception flags (MXCSR bits 0-5) the operation raised. The
 * caller ORs them into MXCSR, or raises #XM / #UD if an unmasked one is set
 * (SDM vol.1 11.5.1), in which case the destination must not be written. */
#define SIMD_MXCSR_IE 0x0001u
#define SIMD_MXCSR_DE 0x0002u
#define SIMD_MXCSR_ZE 0x0004u
#define SIMD_MXCSR_OE 0x0008u
#define SIMD_MXCSR_UE 0x0010u
#define SIMD_MXCSR_PE 0x0020u
#define SIMD_MXCSR_FLAGS 0x003fu
#define SIMD_MXCSR_DAZ 0x0040u
#define SIMD_MXCSR_MASKS 0x1f80u
#define SIMD_MXCSR_RC 0x6000u
#define SIMD_MXCSR_FZ 0x8000u
#define SIMD_MXCSR_DEFAULT 0x1f80u
/* Bits writable by LDMXCSR/FXRSTOR: anything else set is #GP (SDM vol.1 10.2.3.1). */
#define SIMD_MXCSR_MASK 0xffffu

typedef uint32_t simd_fp_fn(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, uint32_t mxcsr);
struct simd_fp_entry {
    const char *name; /* "addps", "sqrtsd", "cvtdq2ps", ... */
    simd_fp_fn *fn;
};
extern const struct simd_fp_entry simd_fp_ops[];
extern const unsigned simd_fp_nops;
simd_fp_fn *simd_fp_op(const char *name);
/* The ops of simd_fp_ops[], exported for the handler tables. */
simd_fp_fn simd_addps;
simd_fp_fn simd_addss;
simd_fp_fn simd_addpd;
simd_fp_fn simd_addsd;
simd_fp_fn simd_subps;
simd_fp_fn simd_subss;
simd_fp_fn simd_subpd;
simd_fp_fn simd_subsd;
simd_fp_fn simd_mulps;
simd_fp_fn simd_mulss;
simd_fp_fn simd_mulpd;
simd_fp_fn simd_mulsd;
simd_fp_fn simd_divps;
simd_fp_fn simd_divss;
simd_fp_fn simd_divpd;
simd_fp_fn simd_divsd;
simd_fp_fn simd_minps;
simd_fp_fn simd_minss;
simd_fp_fn simd_minpd;
simd_fp_fn simd_minsd;
simd_fp_fn simd_maxps;
simd_fp_fn simd_maxss;
simd_fp_fn simd_maxpd;
simd_fp_fn simd_maxsd;
simd_fp_fn simd_sqrtps;
simd_fp_fn simd_sqrtss;
simd_fp_fn simd_sqrtpd;
simd_fp_fn simd_sqrtsd;
simd_fp_fn simd_rcpps;
simd_fp_fn simd_rcpss;
simd_fp_fn simd_rsqrtps;
simd_fp_fn simd_rsqrtss;
simd_fp_fn simd_addsubps;
simd_fp_fn simd_addsubpd;
simd_fp_fn simd_haddps;
simd_fp_fn simd_haddpd;
simd_fp_fn simd_hsubps;
simd_fp_fn simd_hsubpd;
simd_fp_fn simd_cvtdq2ps;
simd_fp_fn simd_cvtps2dq;
simd_fp_fn simd_cvttps2dq;
simd_fp_fn simd_cvtdq2pd;
simd_fp_fn simd_cvtpd2dq;
simd_fp_fn simd_cvttpd2dq;
simd_fp_fn simd_cvtps2pd;
simd_fp_fn simd_cvtpd2ps;
simd_fp_fn simd_cvtss2sd;
simd_fp_fn simd_cvtsd2ss;

/* Unmasked-exception test of a flag set against MXCSR (SDM vol.1 11.5.1). */
static inline bool simd_fp_unmasked(uint32_t flags, uint32_t mxcsr)
{
    return (flags & ~(mxcsr >> 7) & SIMD_MXCSR_FLAGS) != 0;
}

/* Compare with predicate imm (0-31; SSE forms use 0-7). */
uint32_t simd_cmpps(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm, uint32_t mxcsr);
uint32_t simd_cmppd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm, uint32_t mxcsr);
uint32_t simd_cmpss(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm, uint32_t mxcsr);
uint32_t simd_cmpsd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm, uint32_t mxcsr);
/* COMISS/UCOMISS/COMISD/UCOMISD: *rflags_out gets ZF/PF/CF (others cleared). */
uint32_t simd_comis(const simd_v128 *a, const simd_v128 *b, bool dbl, bool ordered_signal,
                    uint32_t mxcsr, uint32_t *rflags_out);
/* ROUNDPS/PD/SS/SD with imm8. */
uint32_t simd_round(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, bool dbl, bool scalar,
                    unsigned imm, uint32_t mxcsr);

/* Conversions with a general-purpose register side. */
uint32_t simd_cvtsi2ss(simd_v128 *d, int64_t v, bool is64, uint32_t mxcsr);
uint32_t simd_cvtsi2sd(simd_v128 *d, int64_t v, bool is64, uint32_t mxcsr);
/* CVT(T)SS2SI / CVT(T)SD2SI: truncate selects the T form. */
uint32_t simd_cvt2si(uint64_t *out, const simd_v128 *a, bool dbl, bool is64, bool truncate,
                     uint32_t mxcsr);

#endif
