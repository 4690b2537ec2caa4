/* emu/: x87 register stack, exception bookkeeping and host-executed arithmetic.
 * See emu/x87.h for the representation and why the host FPU is used. */
#include "emu/x87.h"

#include <string.h>

const x87_f80 x87_indefinite = { { 0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff } };

unsigned x87_top(const struct emu_fpu *f)
{
    return (f->fsw >> 11) & 7;
}

static void set_top(struct emu_fpu *f, unsigned t)
{
    f->fsw = (uint16_t)((f->fsw & ~(7u << 11)) | ((t & 7) << 11));
}

static unsigned phys(const struct emu_fpu *f, unsigned i)
{
    return (x87_top(f) + i) & 7;
}

bool x87_empty(const struct emu_fpu *f, unsigned i)
{
    return !((f->ftw >> phys(f, i)) & 1);
}

x87_f80 x87_get(const struct emu_fpu *f, unsigned i)
{
    x87_f80 v;
    memcpy(v.b, f->st[i & 7], 10);
    return v;
}

void x87_set(struct emu_fpu *f, unsigned i, x87_f80 v)
{
    memcpy(f->st[i & 7], v.b, 10);
    memset(f->st[i & 7] + 10, 0, 6);
    f->ftw |= (uint8_t)(1u << phys(f, i));
}

bool x87_raise(struct emu_fpu *f, uint16_t flags)
{
    f->fsw |= flags & (0x3f | X87_SF);
    uint16_t unmasked = flags & ~f->fcw & 0x3f;
    if (unmasked)
        f->fsw |= X87_ES | X87_B;
    return (unmasked & (X87_IE | X87_DE | X87_ZE)) != 0;
}

void x87_underflow(struct emu_fpu *f)
{
    f->fsw &= (uint16_t)~X87_C1;
    x87_raise(f, X87_IE | X87_SF);
}

/* ST() is stored stack-relative, so a push/pop rotates the slots. */
bool x87_push(struct emu_fpu *f, x87_f80 v)
{
    unsigned t = (x87_top(f) - 1) & 7;
    bool overflow = (f->ftw >> t) & 1;
    if (overflow) {
        f->fsw |= X87_C1;
        if (x87_raise(f, X87_IE | X87_SF))
            return false; /* unmasked: stack unchanged, #MF pending */
        v = x87_indefinite;
    }
    uint8_t last[16];
    memcpy(last, f->st[7], 16);
    memmove(f->st[1], f->st[0], 7 * 16);
    memcpy(f->st[0], last, 16);
    set_top(f, t);
    x87_set(f, 0, v);
    return !overflow;
}

void x87_pop(struct emu_fpu *f)
{
    unsigned t = x87_top(f);
    f->ftw &= (uint8_t)~(1u << t);
    uint8_t first[16];
    memcpy(first, f->st[0], 16);
    memmove(f->st[0], f->st[1], 7 * 16);
    memcpy(f->st[7], first, 16);
    set_top(f, t + 1);
}

void x87_init(struct emu_fpu *f)
{
    f->fcw = 0x37f;
    f->fsw = 0;
    f->ftw = 0;
    f->fop = 0;
    f->fip = f->fdp = 0;
}

/* ---------------- host execution ----------------
 * Operands live in 16-byte buffers (no long double in C, so the compiler
 * never holds values on the x87 stack across these statements); each asm
 * leaves the stack as it found it. */

struct hbuf {
    uint8_t b[16];
};

static struct hbuf hb(x87_f80 v)
{
    struct hbuf h = { { 0 } };
    memcpy(h.b, v.b, 10);
    return h;
}

static x87_f80 fromhb(const struct hbuf *h)
{
    x87_f80 v;
    memcpy(v.b, h->b, 10);
    return v;
}

#define X87_SW_MASK (0x3f | X87_C1 | X87_C2)

/* Binary: ST0 = a, ST1 = b, `insn` leaves the result in ST0. */
#define X87_HOST2(fname, insn)                                                                     \
    static uint16_t fname(struct hbuf *r, const struct hbuf *a, const struct hbuf *b, uint16_t cw)\
    {                                                                                              \
        uint16_t saved, sw;                                                                        \
        __asm__ volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\t"                               \
                         "fldt %[b]\n\tfldt %[a]\n\t" insn "\n\t"                                  \
                         "fstpt %[r]\n\tfstp %%st(0)\n\tfnstsw %[sw]\n\tfldcw %[sv]"               \
                         : [sv] "=m"(saved), [sw] "=m"(sw), [r] "=m"(*r)                           \
                         : [cw] "m"(cw), [a] "m"(*a), [b] "m"(*b));                                \
        return sw & X87_SW_MASK;                                                                   \
    }
X87_HOST2(h_add, "fadd %%st(1), %%st")
X87_HOST2(h_mul, "fmul %%st(1), %%st")
X87_HOST2(h_sub, "fsub %%st(1), %%st")
X87_HOST2(h_subr, "fsubr %%st(1), %%st")
X87_HOST2(h_div, "fdiv %%st(1), %%st")
X87_HOST2(h_divr, "fdivr %%st(1), %%st")

typedef uint16_t host2_fn(struct hbuf *, const struct hbuf *, const struct hbuf *, uint16_t);
static host2_fn *const arith_fns[] = {
    [X87_ADD] = h_add, [X87_MUL] = h_mul, [X87_SUB] = h_sub,
    [X87_SUBR] = h_subr, [X87_DIV] = h_div, [X87_DIVR] = h_divr,
};

uint16_t x87_arith(enum x87_arith op, x87_f80 *res, x87_f80 a, x87_f80 b, uint16_t fcw)
{
    struct hbuf A = hb(a), B = hb(b), R;
    uint16_t sw = arith_fns[op](&R, &A, &B, fcw | 0x3f);
    *res = fromhb(&R);
    return sw & (0x3f | X87_C1); /* C2 is not defined by these: drop the host's stale bit */
}

#define X87_HOST1(fname, insn)                                                                     \
    static uint16_t fname(struct hbuf *r, const struct hbuf *a, uint16_t cw)                       \
    {                                                                                              \
        uint16_t saved, sw;                                                                        \
        __asm__ volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\t"                               \
                         "fldt %[a]\n\t" insn "\n\t"                                               \
                         "fstpt %[r]\n\tfnstsw %[sw]\n\tfldcw %[sv]"                               \
                         : [sv] "=m"(saved), [sw] "=m"(sw), [r] "=m"(*r)                           \
                         : [cw] "m"(cw), [a] "m"(*a));                                             \
        return sw & X87_SW_MASK;                                                                   \
    }
X87_HOST1(h_sqrt, "fsqrt")
X87_HOST1(h_rndint, "frndint")
X87_HOST1(h_sin, "fsin")
X87_HOST1(h_cos, "fcos")
X87_HOST1(h_f2xm1, "f2xm1")
X87_HOST1(h_chs, "fchs")
X87_HOST1(h_abs, "fabs")

typedef uint16_t host1_fn(struct hbuf *, const struct hbuf *, uint16_t);
static host1_fn *const unary_fns[] = {
    [X87_SQRT] = h_sqrt, [X87_RNDINT] = h_rndint, [X87_SIN] = h_sin, [X87_COS] = h_cos,
    [X87_F2XM1] = h_f2xm1, [X87_CHS] = h_chs, [X87_ABS] = h_abs,
};

uint16_t x87_unary(enum x87_unary op, x87_f80 *res, x87_f80 a, uint16_t fcw)
{
    struct hbuf A = hb(a), R;
    uint16_t sw = unary_fns[op](&R, &A, fcw | 0x3f);
    *res = fromhb(&R);
    return sw;
}

/* FSCALE/FPREM/FPREM1: ST0 = a, ST1 = b; the result replaces ST0. FPREM/FPREM1
 * report quotient bits in C0/C3/C1 and "incomplete" in C2, so the whole
 * condition-code field is returned. */
#define X87_HOST2CC(fname, insn)                                                                   \
    static uint16_t fname(struct hbuf *r, const struct hbuf *a, const struct hbuf *b, uint16_t cw)\
    {                                                                                              \
        uint16_t saved, sw;                                                                        \
        __asm__ volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\t"                         \
                         "fldt %[b]\n\tfldt %[a]\n\t" insn "\n\t"                            \
                         "fnstsw %[sw]\n\tfstpt %[r]\n\tfstp %%st(0)\n\tfldcw %[sv]"         \
                         : [sv] "=m"(saved), [sw] "=m"(sw), [r] "=m"(*r)                           \
                         : [cw] "m"(cw), [a] "m"(*a), [b] "m"(*b));                                \
        return sw & (0x3f | X87_C0 | X87_C1 | X87_C2 | X87_C3);                                    \
    }
X87_HOST2CC(h_scale, "fscale")
X87_HOST2CC(h_prem, "fprem")
X87_HOST2CC(h_prem1, "fprem1")

uint16_t x87_binary_st(enum x87_binary_st op, x87_f80 *res, x87_f80 a, x87_f80 b, uint16_t fcw)
{
    static host2_fn *const fns[] = { [X87_SCALE] = h_scale, [X87_PREM] = h_prem, [X87_PREM1] = h_prem1 };
    struct hbuf A = hb(a), B = hb(b), R;
    uint16_t sw = fns[op](&R, &A, &B, fcw | 0x3f);
    if (op == X87_SCALE) /* FSCALE defines only C1 */
        sw &= 0x3f | X87_C1;
    *res = fromhb(&R);
    return sw;
}

/* Binary ops that pop: ST0 = a, ST1 = b; one value is left and stored to *r. */
#define X87_HOST2P(fname, insn)                                                                    \
    static uint16_t fname(struct hbuf *r, const struct hbuf *a, const struct hbuf *b, uint16_t cw)\
    {                                                                                              \
        uint16_t saved, sw;                                                                        \
        __asm__ volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\t"                         \
                         "fldt %[b]\n\tfldt %[a]\n\t" insn "\n\t"                            \
                         "fstpt %[r]\n\tfnstsw %[sw]\n\tfldcw %[sv]"                           \
                         : [sv] "=m"(saved), [sw] "=m"(sw), [r] "=m"(*r)                           \
                         : [cw] "m"(cw), [a] "m"(*a), [b] "m"(*b));                                \
        return sw & (0x3f | X87_C1);                                                               \
    }
X87_HOST2P(h_yl2x, "fyl2x")
X87_HOST2P(h_yl2xp1, "fyl2xp1")
X87_HOST2P(h_patan, "fpatan")

uint16_t x87_binary_pop(enum x87_binary_pop op, x87_f80 *res, x87_f80 a, x87_f80 b, uint16_t fcw)
{
    static host2_fn *const fns[] = { [X87_YL2X] = h_yl2x, [X87_YL2XP1] = h_yl2xp1, [X87_PATAN] = h_patan };
    struct hbuf A = hb(a), B = hb(b), R;
    uint16_t sw = fns[op](&R, &A, &B, fcw | 0x3f);
    *res = fromhb(&R);
    return sw;
}

/* FPTAN/FSINCOS push only when C2 = 0 (in range): the asm branches on C2 so the
 * host stack is left empty either way. FXTRACT always pushes. */
#define X87_HOST1PUSH(fname, insn)                                                                 \
    static uint16_t fname(struct hbuf *r0, struct hbuf *r1, const struct hbuf *a, uint16_t cw)    \
    {                                                                                              \
        uint16_t saved, sw;                                                                        \
        __asm__ volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\t"                         \
                         "fldt %[a]\n\t" insn "\n\t"                                           \
                         "fnstsw %%ax\n\tmovw %%ax, %[sw]\n\ttestw $0x400, %%ax\n\t"         \
                         "jnz 1f\n\tfstpt %[p]\n"                                               \
                         "1:\tfstpt %[q]\n\tfldcw %[sv]"                                        \
                         : [sv] "=m"(saved), [sw] "=m"(sw), [p] "=m"(*r1), [q] "=m"(*r0)           \
                         : [cw] "m"(cw), [a] "m"(*a)                                               \
                         : "ax", "cc");                                                            \
        return sw & (0x3f | X87_C1 | X87_C2);                                                      \
    }
X87_HOST1PUSH(h_ptan, "fptan")
X87_HOST1PUSH(h_sincos, "fsincos")

static uint16_t h_xtract(struct hbuf *r0, struct hbuf *r1, const struct hbuf *a, uint16_t cw)
{
    uint16_t saved, sw;
    __asm__ volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\t"
                     "fldt %[a]\n\tfxtract\n\tfnstsw %[sw]\n\t"
                     "fstpt %[p]\n\tfstpt %[q]\n\tfldcw %[sv]"
                     : [sv] "=m"(saved), [sw] "=m"(sw), [p] "=m"(*r1), [q] "=m"(*r0)
                     : [cw] "m"(cw), [a] "m"(*a));
    return sw & (0x3f | X87_C1); /* C2 undefined: never "out of range" */
}

uint16_t x87_unary_push(enum x87_unary_push op, x87_f80 *st0, x87_f80 *pushed, x87_f80 a,
                        uint16_t fcw)
{
    typedef uint16_t fn_t(struct hbuf *, struct hbuf *, const struct hbuf *, uint16_t);
    static fn_t *const fns[] = { [X87_PTAN] = h_ptan, [X87_SINCOS] = h_sincos, [X87_XTRACT] = h_xtract };
    struct hbuf A = hb(a), R0 = A, R1 = A;
    uint16_t sw = fns[op](&R0, &R1, &A, fcw | 0x3f);
    *st0 = fromhb(&R0);
    *pushed = fromhb(&R1);
    return sw;
}

uint16_t x87_load_real(x87_f80 *res, const void *mem, unsigned size)
{
    struct hbuf m = { { 0 } }, R;
    uint16_t sw = 0, cw = 0x37f, saved;
    memcpy(m.b, mem, size);
    if (size == 10) { /* FLD m80 loads without conversion or exceptions */
        *res = fromhb(&m);
        return 0;
    }
    if (size == 4)
        __asm__ volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\tflds %[m]\n\tfstpt %[r]\n\t"
                         "fnstsw %[sw]\n\tfldcw %[sv]"
                         : [sv] "=m"(saved), [sw] "=m"(sw), [r] "=m"(R) : [cw] "m"(cw), [m] "m"(m));
    else
        __asm__ volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\tfldl %[m]\n\tfstpt %[r]\n\t"
                         "fnstsw %[sw]\n\tfldcw %[sv]"
                         : [sv] "=m"(saved), [sw] "=m"(sw), [r] "=m"(R) : [cw] "m"(cw), [m] "m"(m));
    *res = fromhb(&R);
    return sw & X87_SW_MASK;
}

uint16_t x87_store_real(void *mem, x87_f80 v, unsigned size, uint16_t fcw)
{
    struct hbuf A = hb(v), m = { { 0 } };
    uint16_t sw = 0, cw = fcw | 0x3f, saved;
    if (size == 10) {
        memcpy(mem, v.b, 10);
        return 0;
    }
    if (size == 4)
        __asm__ volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\tfldt %[a]\n\tfstps %[m]\n\t"
                         "fnstsw %[sw]\n\tfldcw %[sv]"
                         : [sv] "=m"(saved), [sw] "=m"(sw), [m] "=m"(m) : [cw] "m"(cw), [a] "m"(A));
    else
        __asm__ volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\tfldt %[a]\n\tfstpl %[m]\n\t"
                         "fnstsw %[sw]\n\tfldcw %[sv]"
                         : [sv] "=m"(saved), [sw] "=m"(sw), [m] "=m"(m) : [cw] "m"(cw), [a] "m"(A));
    memcpy(mem, m.b, size);
    return sw & (0x3f | X87_C1);
}

x87_f80 x87_from_int(int64_t v)
{
    struct hbuf R;
    __asm__ volatile("fildll %[v]\n\tfstpt %[r]" : [r] "=m"(R) : [v] "m"(v)); /* exact */
    return fromhb(&R);
}

uint16_t x87_to_int(int64_t *out, x87_f80 v, unsigned size, bool truncate, uint16_t fcw)
{
    struct hbuf A = hb(v);
    int64_t r64 = 0;
    int32_t r32 = 0;
    int16_t r16 = 0;
    uint16_t sw = 0, cw = fcw | 0x3f, saved;
    __asm__ volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\tfldt %[a]" : [sv] "=m"(saved)
                     : [cw] "m"(cw), [a] "m"(A));
    /* the value is on the host stack between these statements; nothing else runs */
    switch (size * 2 + truncate) {
    case 4: __asm__ volatile("fistps %0" : "=m"(r16)); break;
    case 5: __asm__ volatile("fisttps %0" : "=m"(r16)); break;
    case 8: __asm__ volatile("fistpl %0" : "=m"(r32)); break;
    case 9: __asm__ volatile("fisttpl %0" : "=m"(r32)); break;
    case 16: __asm__ volatile("fistpll %0" : "=m"(r64)); break;
    default: __asm__ volatile("fisttpll %0" : "=m"(r64)); break;
    }
    __asm__ volatile("fnstsw %[sw]\n\tfldcw %[sv]" : [sw] "=m"(sw) : [sv] "m"(saved));
    *out = size == 2 ? r16 : size == 4 ? r32 : r64;
    return sw & (0x3f | X87_C1);
}

uint16_t x87_const(x87_f80 *res, uint8_t modrm, uint16_t fcw)
{
    struct hbuf R;
    uint16_t cw = fcw | 0x3f, saved;
    __asm__ volatile("fnstcw %[sv]\n\tfldcw %[cw]" : [sv] "=m"(saved) : [cw] "m"(cw));
    switch (modrm) {
    case 0xe8: __asm__ volatile("fld1\n\tfstpt %0" : "=m"(R)); break;
    case 0xe9: __asm__ volatile("fldl2t\n\tfstpt %0" : "=m"(R)); break;
    case 0xea: __asm__ volatile("fldl2e\n\tfstpt %0" : "=m"(R)); break;
    case 0xeb: __asm__ volatile("fldpi\n\tfstpt %0" : "=m"(R)); break;
    case 0xec: __asm__ volatile("fldlg2\n\tfstpt %0" : "=m"(R)); break;
    case 0xed: __asm__ volatile("fldln2\n\tfstpt %0" : "=m"(R)); break;
    default: __asm__ volatile("fldz\n\tfstpt %0" : "=m"(R)); break;
    }
    __asm__ volatile("fldcw %0" : : "m"(saved));
    *res = fromhb(&R);
    return 0;
}

/* ---------------- classification / compare (in C) ---------------- */

static uint16_t exp_of(x87_f80 v) { return (uint16_t)((v.b[9] << 8 | v.b[8]) & 0x7fff); }
static uint64_t mant_of(x87_f80 v) { uint64_t m; memcpy(&m, v.b, 8); return m; }
static bool sign_of(x87_f80 v) { return v.b[9] >> 7; }

static bool is_nan(x87_f80 v)
{
    return exp_of(v) == 0x7fff && (mant_of(v) << 1) != 0;
}

static bool is_snan(x87_f80 v)
{
    return is_nan(v) && !((mant_of(v) >> 62) & 1);
}

uint16_t x87_compare(x87_f80 a, x87_f80 b, bool quiet, uint16_t *exc)
{
    *exc = 0;
    if (is_nan(a) || is_nan(b)) {
        /* FCOM signals #IA on any NaN, FUCOM only on SNaN (SDM vol.2 FCOM/FUCOM) */
        if (!quiet || is_snan(a) || is_snan(b))
            *exc = X87_IE;
        return X87_C3 | X87_C2 | X87_C0;
    }
    long double x = 0, y = 0;
    memcpy(&x, a.b, 10);
    memcpy(&y, b.b, 10);
    if (x > y)
        return 0;
    if (x < y)
        return X87_C0;
    return X87_C3;
}

uint16_t x87_examine(x87_f80 a)
{
    uint16_t c1 = sign_of(a) ? X87_C1 : 0, e = exp_of(a);
    uint64_t m = mant_of(a);
    bool jbit = m >> 63;
    if (e == 0x7fff)
        return c1 | (!jbit ? 0 : (m << 1) ? X87_C0 : (X87_C2 | X87_C0)); /* unsupported/NaN/inf */
    if (e == 0)
        return c1 | (m == 0 ? X87_C3 : (X87_C3 | X87_C2)); /* zero / denormal */
    return c1 | (jbit ? X87_C2 : 0); /* normal, or unnormal = unsupported */
}
