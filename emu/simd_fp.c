/* emu/: SSE/SSE2/SSE3/SSE4.1 floating-point semantics.
 *
 * Why the host FPU: the guest's IEEE results must match Intel hardware bit for
 * bit, including NaN propagation (first-source QNaN wins, SNaN quieting, the
 * default "real indefinite"), DAZ/FTZ, all four rounding modes and the six
 * exception flags. softkvm only runs on x86-64 hosts (it implements the x86
 * KVM ABI), whose SSE unit has exactly these semantics, so each operation runs
 * the same instruction on the host with the guest's MXCSR loaded, every
 * exception masked (so the host never traps), and the raised flags read back.
 * Unmasked-exception delivery (#XM) is the caller's business (simd.h).
 *
 * Known deviation: with a guest-unmasked underflow the hardware reports UE on
 * tininess alone; here (host masked) UE needs tininess and inexactness.
 *
 * Compares are done in C (their immediate predicate would otherwise need one
 * host instruction per value); they follow SDM vol.2 CMPPS table 3-1. */
#include "emu/simd.h"

#include <string.h>

/* Guest MXCSR with all exceptions masked and no sticky flags. */
static uint32_t host_csr(uint32_t mxcsr)
{
    return (mxcsr & (SIMD_MXCSR_RC | SIMD_MXCSR_FZ | SIMD_MXCSR_DAZ)) | SIMD_MXCSR_MASKS;
}

/* Defines a simd_fp_fn that runs `insn b, a -> d` on the host. One level, used
 * only in the table below: it expands to the ldmxcsr/op/stmxcsr sequence. */
#define HOST_FP_OP(fname, insn)                                                                   \
    uint32_t fname(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, uint32_t mxcsr)  \
    {                                                                                             \
        uint32_t saved, in = host_csr(mxcsr), out;                                                \
        simd_v128 r;                                                                              \
        __asm__ volatile("stmxcsr %[saved]\n\t"                                                   \
                         "ldmxcsr %[in]\n\t"                                                      \
                         "movups %[a], %%xmm0\n\t" insn " %[b], %%xmm0\n\t"                       \
                         "movups %%xmm0, %[r]\n\t"                                                \
                         "stmxcsr %[out]\n\t"                                                     \
                         "ldmxcsr %[saved]"                                                       \
                         : [saved] "=m"(saved), [out] "=m"(out), [r] "=m"(r)                      \
                         : [in] "m"(in), [a] "m"(*a), [b] "m"(*b)                                 \
                         : "xmm0");                                                               \
        out &= SIMD_MXCSR_FLAGS;                                                                  \
        if (!simd_fp_unmasked(out, mxcsr))                                                        \
            *d = r;                                                                               \
        return out;                                                                               \
    }

HOST_FP_OP(simd_addps, "addps")
HOST_FP_OP(simd_addss, "addss")
HOST_FP_OP(simd_addpd, "addpd")
HOST_FP_OP(simd_addsd, "addsd")
HOST_FP_OP(simd_subps, "subps")
HOST_FP_OP(simd_subss, "subss")
HOST_FP_OP(simd_subpd, "subpd")
HOST_FP_OP(simd_subsd, "subsd")
HOST_FP_OP(simd_mulps, "mulps")
HOST_FP_OP(simd_mulss, "mulss")
HOST_FP_OP(simd_mulpd, "mulpd")
HOST_FP_OP(simd_mulsd, "mulsd")
HOST_FP_OP(simd_divps, "divps")
HOST_FP_OP(simd_divss, "divss")
HOST_FP_OP(simd_divpd, "divpd")
HOST_FP_OP(simd_divsd, "divsd")
HOST_FP_OP(simd_minps, "minps")
HOST_FP_OP(simd_minss, "minss")
HOST_FP_OP(simd_minpd, "minpd")
HOST_FP_OP(simd_minsd, "minsd")
HOST_FP_OP(simd_maxps, "maxps")
HOST_FP_OP(simd_maxss, "maxss")
HOST_FP_OP(simd_maxpd, "maxpd")
HOST_FP_OP(simd_maxsd, "maxsd")
HOST_FP_OP(simd_sqrtps, "sqrtps")
HOST_FP_OP(simd_sqrtss, "sqrtss")
HOST_FP_OP(simd_sqrtpd, "sqrtpd")
HOST_FP_OP(simd_sqrtsd, "sqrtsd")
HOST_FP_OP(simd_rcpps, "rcpps")
HOST_FP_OP(simd_rcpss, "rcpss")
HOST_FP_OP(simd_rsqrtps, "rsqrtps")
HOST_FP_OP(simd_rsqrtss, "rsqrtss")
HOST_FP_OP(simd_addsubps, "addsubps")
HOST_FP_OP(simd_addsubpd, "addsubpd")
HOST_FP_OP(simd_haddps, "haddps")
HOST_FP_OP(simd_haddpd, "haddpd")
HOST_FP_OP(simd_hsubps, "hsubps")
HOST_FP_OP(simd_hsubpd, "hsubpd")
HOST_FP_OP(simd_cvtdq2ps, "cvtdq2ps")
HOST_FP_OP(simd_cvtps2dq, "cvtps2dq")
HOST_FP_OP(simd_cvttps2dq, "cvttps2dq")
HOST_FP_OP(simd_cvtdq2pd, "cvtdq2pd")
HOST_FP_OP(simd_cvtpd2dq, "cvtpd2dq")
HOST_FP_OP(simd_cvttpd2dq, "cvttpd2dq")
HOST_FP_OP(simd_cvtps2pd, "cvtps2pd")
HOST_FP_OP(simd_cvtpd2ps, "cvtpd2ps")
HOST_FP_OP(simd_cvtss2sd, "cvtss2sd")
HOST_FP_OP(simd_cvtsd2ss, "cvtsd2ss")

const struct simd_fp_entry simd_fp_ops[] = {
    { "addps", simd_addps }, { "addss", simd_addss }, { "addpd", simd_addpd }, { "addsd", simd_addsd },
    { "subps", simd_subps }, { "subss", simd_subss }, { "subpd", simd_subpd }, { "subsd", simd_subsd },
    { "mulps", simd_mulps }, { "mulss", simd_mulss }, { "mulpd", simd_mulpd }, { "mulsd", simd_mulsd },
    { "divps", simd_divps }, { "divss", simd_divss }, { "divpd", simd_divpd }, { "divsd", simd_divsd },
    { "minps", simd_minps }, { "minss", simd_minss }, { "minpd", simd_minpd }, { "minsd", simd_minsd },
    { "maxps", simd_maxps }, { "maxss", simd_maxss }, { "maxpd", simd_maxpd }, { "maxsd", simd_maxsd },
    { "sqrtps", simd_sqrtps }, { "sqrtss", simd_sqrtss }, { "sqrtpd", simd_sqrtpd }, { "sqrtsd", simd_sqrtsd },
    { "rcpps", simd_rcpps }, { "rcpss", simd_rcpss }, { "rsqrtps", simd_rsqrtps }, { "rsqrtss", simd_rsqrtss },
    { "addsubps", simd_addsubps }, { "addsubpd", simd_addsubpd }, { "haddps", simd_haddps },
    { "haddpd", simd_haddpd }, { "hsubps", simd_hsubps }, { "hsubpd", simd_hsubpd },
    { "cvtdq2ps", simd_cvtdq2ps }, { "cvtps2dq", simd_cvtps2dq }, { "cvttps2dq", simd_cvttps2dq },
    { "cvtdq2pd", simd_cvtdq2pd }, { "cvtpd2dq", simd_cvtpd2dq }, { "cvttpd2dq", simd_cvttpd2dq },
    { "cvtps2pd", simd_cvtps2pd }, { "cvtpd2ps", simd_cvtpd2ps }, { "cvtss2sd", simd_cvtss2sd },
    { "cvtsd2ss", simd_cvtsd2ss },
};
const unsigned simd_fp_nops = sizeof(simd_fp_ops) / sizeof(simd_fp_ops[0]);

simd_fp_fn *simd_fp_op(const char *name)
{
    for (unsigned i = 0; i < simd_fp_nops; i++)
        if (strcmp(simd_fp_ops[i].name, name) == 0)
            return simd_fp_ops[i].fn;
    return NULL;
}

/* ---------------- compares ---------------- */

enum { REL_LT = 1, REL_EQ = 2, REL_GT = 4, REL_UN = 8 };

/* SDM vol.2 CMPPS table: which relations make predicate 0-15 true and whether
 * a QNaN operand signals #IA. Predicates 16-31 repeat 0-15 with the signalling
 * behaviour inverted. */
static const struct {
    uint8_t true_rel;
    bool signals_qnan;
} cmp_pred[16] = {
    { REL_EQ, false },                          /* EQ_OQ */
    { REL_LT, true },                           /* LT_OS */
    { REL_LT | REL_EQ, true },                  /* LE_OS */
    { REL_UN, false },                          /* UNORD_Q */
    { REL_LT | REL_GT | REL_UN, false },        /* NEQ_UQ */
    { REL_EQ | REL_GT | REL_UN, true },         /* NLT_US */
    { REL_GT | REL_UN, true },                  /* NLE_US */
    { REL_LT | REL_EQ | REL_GT, false },        /* ORD_Q */
    { REL_EQ | REL_UN, false },                 /* EQ_UQ */
    { REL_LT | REL_UN, true },                  /* NGE_US */
    { REL_LT | REL_EQ | REL_UN, true },         /* NGT_US */
    { 0, false },                               /* FALSE_OQ */
    { REL_LT | REL_GT, false },                 /* NEQ_OQ */
    { REL_GT | REL_EQ, true },                  /* GE_OS */
    { REL_GT, true },                           /* GT_OS */
    { REL_LT | REL_EQ | REL_GT | REL_UN, false } /* TRUE_UQ */
};

struct fp_class {
    bool nan, snan, denormal;
    bool neg;
    uint64_t mag; /* magnitude bits (exponent:fraction), 0 for DAZ-flushed denormals */
};

static struct fp_class classify(uint64_t bits, bool dbl, bool daz)
{
    struct fp_class c;
    unsigned ebits = dbl ? 11 : 8, fbits = dbl ? 52 : 23;
    uint64_t fmask = (1ull << fbits) - 1, emask = (1ull << ebits) - 1;
    uint64_t frac = bits & fmask, exp = (bits >> fbits) & emask;
    c.neg = (bits >> (fbits + ebits)) & 1;
    c.nan = exp == emask && frac != 0;
    c.snan = c.nan && !((frac >> (fbits - 1)) & 1);
    c.denormal = exp == 0 && frac != 0;
    c.mag = bits & ((1ull << (fbits + ebits)) - 1);
    if (c.denormal && daz)
        c.mag = 0;
    return c;
}

/* Relation of a to b plus the flags the comparison raises (SDM vol.1 11.5.2). */
static unsigned compare(uint64_t a, uint64_t b, bool dbl, bool signal_qnan, uint32_t mxcsr,
                        uint32_t *flags)
{
    bool daz = mxcsr & SIMD_MXCSR_DAZ;
    struct fp_class x = classify(a, dbl, daz), y = classify(b, dbl, daz);
    if (x.nan || y.nan) {
        if (x.snan || y.snan || signal_qnan)
            *flags |= SIMD_MXCSR_IE;
        return REL_UN;
    }
    if ((x.denormal || y.denormal) && !daz)
        *flags |= SIMD_MXCSR_DE;
    if (x.mag == 0 && y.mag == 0)
        return REL_EQ; /* +0 == -0 */
    if (x.neg != y.neg)
        return x.neg ? REL_LT : REL_GT;
    if (x.mag == y.mag)
        return REL_EQ;
    return (x.mag < y.mag) != x.neg ? REL_LT : REL_GT;
}

static uint32_t cmp_elems(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm,
                          uint32_t mxcsr, bool dbl, unsigned n)
{
    unsigned p = imm & 15;
    bool sig = cmp_pred[p].signals_qnan != ((imm & 16) != 0);
    uint32_t flags = 0;
    simd_v128 r = *a;
    for (unsigned i = 0; i < n; i++) {
        uint64_t x = dbl ? a->q[i] : a->d[i], y = dbl ? b->q[i] : b->d[i];
        bool t = (compare(x, y, dbl, sig, mxcsr, &flags) & cmp_pred[p].true_rel) != 0;
        if (dbl)
            r.q[i] = t ? ~0ull : 0;
        else
            r.d[i] = t ? ~0u : 0;
    }
    if (!simd_fp_unmasked(flags, mxcsr))
        *d = r;
    return flags;
}

uint32_t simd_cmpps(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm, uint32_t mxcsr)
{ return cmp_elems(d, a, b, imm, mxcsr, false, 4); }
uint32_t simd_cmppd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm, uint32_t mxcsr)
{ return cmp_elems(d, a, b, imm, mxcsr, true, 2); }
uint32_t simd_cmpss(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm, uint32_t mxcsr)
{ return cmp_elems(d, a, b, imm, mxcsr, false, 1); }
uint32_t simd_cmpsd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm, uint32_t mxcsr)
{ return cmp_elems(d, a, b, imm, mxcsr, true, 1); }

/* COMIS/UCOMIS: unordered ZF=PF=CF=1, less CF=1, equal ZF=1, greater all 0 (SDM vol.2). */
uint32_t simd_comis(const simd_v128 *a, const simd_v128 *b, bool dbl, bool ordered_signal,
                    uint32_t mxcsr, uint32_t *rflags_out)
{
    uint32_t flags = 0;
    unsigned rel = compare(dbl ? a->q[0] : a->d[0], dbl ? b->q[0] : b->d[0], dbl, ordered_signal,
                           mxcsr, &flags);
    static const uint32_t zf = 1u << 6, pf = 1u << 2, cf = 1u << 0;
    *rflags_out = rel == REL_UN ? (zf | pf | cf) : rel == REL_LT ? cf : rel == REL_EQ ? zf : 0;
    return flags;
}

/* ---------------- ROUNDxx ----------------
 * imm[2] = 1: use MXCSR.RC; else imm[1:0] is the rounding mode. imm[3]
 * suppresses the precision exception (SDM vol.2 ROUNDPS). Implemented by
 * loading the chosen mode into the host MXCSR and running the "use MXCSR"
 * form (imm 4) of the same instruction. */
#define HOST_ROUND(fname, insn)                                                                  \
    static uint32_t fname(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, uint32_t csr)    \
    {                                                                                            \
        uint32_t saved, in = host_csr(csr), out;                                                 \
        simd_v128 r;                                                                             \
        __asm__ volatile("stmxcsr %[saved]\n\t"                                                  \
                         "ldmxcsr %[in]\n\t"                                                     \
                         "movups %[a], %%xmm0\n\t" insn " $4, %[b], %%xmm0\n\t"                  \
                         "movups %%xmm0, %[r]\n\t"                                               \
                         "stmxcsr %[out]\n\t"                                                    \
                         "ldmxcsr %[saved]"                                                      \
                         : [saved] "=m"(saved), [out] "=m"(out), [r] "=m"(r)                     \
                         : [in] "m"(in), [a] "m"(*a), [b] "m"(*b)                                \
                         : "xmm0");                                                              \
        *d = r;                                                                                  \
        return out & SIMD_MXCSR_FLAGS;                                                           \
    }
HOST_ROUND(roundps, "roundps")
HOST_ROUND(roundpd, "roundpd")
HOST_ROUND(roundss, "roundss")
HOST_ROUND(roundsd, "roundsd")

uint32_t simd_round(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, bool dbl, bool scalar,
                    unsigned imm, uint32_t mxcsr)
{
    uint32_t csr = mxcsr;
    if (!(imm & 4))
        csr = (csr & ~SIMD_MXCSR_RC) | ((imm & 3u) << 13);
    simd_fp_fn *fn = scalar ? (dbl ? roundsd : roundss) : (dbl ? roundpd : roundps);
    simd_v128 r;
    uint32_t flags = fn(&r, a, b, csr);
    if (imm & 8)
        flags &= ~SIMD_MXCSR_PE;
    if (!simd_fp_unmasked(flags, mxcsr))
        *d = r;
    return flags;
}

/* ---------------- conversions with a GPR ---------------- */

uint32_t simd_cvtsi2ss(simd_v128 *d, int64_t v, bool is64, uint32_t mxcsr)
{
    uint32_t saved, in = host_csr(mxcsr), out;
    float f;
    if (is64)
        __asm__ volatile("stmxcsr %[saved]\n\tldmxcsr %[in]\n\t"
                         "cvtsi2ssq %[v], %%xmm0\n\tmovss %%xmm0, %[f]\n\t"
                         "stmxcsr %[out]\n\tldmxcsr %[saved]"
                         : [saved] "=m"(saved), [out] "=m"(out), [f] "=m"(f)
                         : [in] "m"(in), [v] "r"(v) : "xmm0");
    else
        __asm__ volatile("stmxcsr %[saved]\n\tldmxcsr %[in]\n\t"
                         "cvtsi2ssl %[v], %%xmm0\n\tmovss %%xmm0, %[f]\n\t"
                         "stmxcsr %[out]\n\tldmxcsr %[saved]"
                         : [saved] "=m"(saved), [out] "=m"(out), [f] "=m"(f)
                         : [in] "m"(in), [v] "r"((int32_t)v) : "xmm0");
    out &= SIMD_MXCSR_FLAGS;
    if (!simd_fp_unmasked(out, mxcsr))
        d->f[0] = f;
    return out;
}

uint32_t simd_cvtsi2sd(simd_v128 *d, int64_t v, bool is64, uint32_t mxcsr)
{
    uint32_t saved, in = host_csr(mxcsr), out;
    double f;
    if (is64)
        __asm__ volatile("stmxcsr %[saved]\n\tldmxcsr %[in]\n\t"
                         "cvtsi2sdq %[v], %%xmm0\n\tmovsd %%xmm0, %[f]\n\t"
                         "stmxcsr %[out]\n\tldmxcsr %[saved]"
                         : [saved] "=m"(saved), [out] "=m"(out), [f] "=m"(f)
                         : [in] "m"(in), [v] "r"(v) : "xmm0");
    else
        __asm__ volatile("stmxcsr %[saved]\n\tldmxcsr %[in]\n\t"
                         "cvtsi2sdl %[v], %%xmm0\n\tmovsd %%xmm0, %[f]\n\t"
                         "stmxcsr %[out]\n\tldmxcsr %[saved]"
                         : [saved] "=m"(saved), [out] "=m"(out), [f] "=m"(f)
                         : [in] "m"(in), [v] "r"((int32_t)v) : "xmm0");
    out &= SIMD_MXCSR_FLAGS;
    if (!simd_fp_unmasked(out, mxcsr))
        d->f64[0] = f;
    return out;
}

/* The four variants differ in the host instruction only; a small table of
 * tiny functions keeps each asm statement literal. */
typedef uint64_t cvt2si_host_fn(const simd_v128 *a);
static uint64_t h_cvtss2si32(const simd_v128 *a)
{ uint32_t r; __asm__ volatile("cvtss2si %[a], %k[r]" : [r] "=r"(r) : [a] "m"(a->f[0])); return r; }
static uint64_t h_cvtss2si64(const simd_v128 *a)
{ uint64_t r; __asm__ volatile("cvtss2si %[a], %q[r]" : [r] "=r"(r) : [a] "m"(a->f[0])); return r; }
static uint64_t h_cvttss2si32(const simd_v128 *a)
{ uint32_t r; __asm__ volatile("cvttss2si %[a], %k[r]" : [r] "=r"(r) : [a] "m"(a->f[0])); return r; }
static uint64_t h_cvttss2si64(const simd_v128 *a)
{ uint64_t r; __asm__ volatile("cvttss2si %[a], %q[r]" : [r] "=r"(r) : [a] "m"(a->f[0])); return r; }
static uint64_t h_cvtsd2si32(const simd_v128 *a)
{ uint32_t r; __asm__ volatile("cvtsd2si %[a], %k[r]" : [r] "=r"(r) : [a] "m"(a->f64[0])); return r; }
static uint64_t h_cvtsd2si64(const simd_v128 *a)
{ uint64_t r; __asm__ volatile("cvtsd2si %[a], %q[r]" : [r] "=r"(r) : [a] "m"(a->f64[0])); return r; }
static uint64_t h_cvttsd2si32(const simd_v128 *a)
{ uint32_t r; __asm__ volatile("cvttsd2si %[a], %k[r]" : [r] "=r"(r) : [a] "m"(a->f64[0])); return r; }
static uint64_t h_cvttsd2si64(const simd_v128 *a)
{ uint64_t r; __asm__ volatile("cvttsd2si %[a], %q[r]" : [r] "=r"(r) : [a] "m"(a->f64[0])); return r; }

/* [dbl][truncate][is64] */
static cvt2si_host_fn *const cvt2si_fns[2][2][2] = {
    { { h_cvtss2si32, h_cvtss2si64 }, { h_cvttss2si32, h_cvttss2si64 } },
    { { h_cvtsd2si32, h_cvtsd2si64 }, { h_cvttsd2si32, h_cvttsd2si64 } },
};

uint32_t simd_cvt2si(uint64_t *out, const simd_v128 *a, bool dbl, bool is64, bool truncate,
                     uint32_t mxcsr)
{
    uint32_t saved, in = host_csr(mxcsr), after;
    __asm__ volatile("stmxcsr %0\n\tldmxcsr %1" : "=m"(saved) : "m"(in) : "memory");
    uint64_t r = cvt2si_fns[dbl][truncate][is64](a);
    __asm__ volatile("stmxcsr %0\n\tldmxcsr %1" : "=m"(after) : "m"(saved) : "memory");
    after &= SIMD_MXCSR_FLAGS;
    if (!simd_fp_unmasked(after, mxcsr))
        *out = r;
    return after;
}
