/* emu/: x87 instruction handlers (SDM vol.2 F* pages) on top of emu/x87.c.
 * All x87 instructions of the decoder's table have handlers here. Unmasked exceptions set FSW.ES; the #MF is
 * taken by the next waiting x87 instruction when CR0.NE=1 (SDM vol.1 8.7). */
#include <string.h>

#include "emu/simd_insn.h"
#include "emu/x87.h"

#define EMU_CR0_NE (1ull << 5)

/* #NM for CR0.EM/TS; then a pending unmasked exception is delivered (#MF) by
 * "waiting" instructions (all but FNINIT/FNCLEX/FNSTCW/FNSTSW/FNSTENV/FNSAVE). */
static struct emu_fpu *fpu_check(struct emu_vcpu *v, bool waiting)
{
    if (v->cpu.cr0 & (EMU_CR0_EM | EMU_CR0_TS))
        emu_raise(v, EMU_NM, EMU_NO_ERRCODE);
    struct emu_fpu *f = &v->cpu.fpu;
    if (waiting && (f->fsw & X87_ES) && (v->cpu.cr0 & EMU_CR0_NE))
        emu_raise(v, EMU_MF, EMU_NO_ERRCODE);
    return f;
}

/* Last-instruction pointers (FIP/FDP/FOP) kept by non-control instructions. */
static void note(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = &v->cpu.fpu;
    f->fip = v->insn_rip;
    f->fop = (uint16_t)(((d->opcode & 7u) << 8) | d->modrm);
    for (unsigned i = 0; i < d->nops; i++)
        if (d->ops[i].kind == DOPND_MEM)
            f->fdp = emu_opnd_ea(v, d, i);
}

static bool is_mem(const struct decoded_insn *d, unsigned i)
{
    return i < d->nops && d->ops[i].kind == DOPND_MEM;
}

/* ST(i) index of a register operand. */
static unsigned sti(const struct decoded_insn *d, unsigned i)
{
    return d->ops[i].reg & 7;
}

/* Fetch a source operand: memory real/int, or ST(i). false = stack underflow
 * (already recorded; *val holds the masked response). */
static bool fetch(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i, bool integer,
                  x87_f80 *val, uint16_t *exc)
{
    struct emu_fpu *f = &v->cpu.fpu;
    if (is_mem(d, i)) {
        unsigned size = d->ops[i].size;
        uint8_t buf[10] = { 0 };
        emu_simd_mmio_check(v, d, i, false);
        emu_mem_read_buf(v, d->ops[i].seg, emu_opnd_ea(v, d, i), buf, size);
        if (integer) {
            int64_t x = 0;
            memcpy(&x, buf, size);
            *val = x87_from_int(emu_sext((uint64_t)x, size));
        } else {
            *exc |= x87_load_real(val, buf, size);
        }
        return true;
    }
    unsigned r = i < d->nops ? sti(d, i) : 1;
    if (x87_empty(f, r)) {
        *val = x87_indefinite;
        return false;
    }
    *val = x87_get(f, r);
    return true;
}

/* ---------------- arithmetic ---------------- */

struct arith_desc {
    uint16_t op;
    uint8_t kind; /* enum x87_arith */
    uint8_t pop;
    uint8_t integer;
};
static const struct arith_desc arith_tbl[] = {
    { DOP_FADD, X87_ADD, 0, 0 },   { DOP_FMUL, X87_MUL, 0, 0 },   { DOP_FSUB, X87_SUB, 0, 0 },
    { DOP_FSUBR, X87_SUBR, 0, 0 }, { DOP_FDIV, X87_DIV, 0, 0 },   { DOP_FDIVR, X87_DIVR, 0, 0 },
    { DOP_FADDP, X87_ADD, 1, 0 },  { DOP_FMULP, X87_MUL, 1, 0 },  { DOP_FSUBP, X87_SUB, 1, 0 },
    { DOP_FSUBRP, X87_SUBR, 1, 0 }, { DOP_FDIVP, X87_DIV, 1, 0 }, { DOP_FDIVRP, X87_DIVR, 1, 0 },
    { DOP_FIADD, X87_ADD, 0, 1 },  { DOP_FIMUL, X87_MUL, 0, 1 },  { DOP_FISUB, X87_SUB, 0, 1 },
    { DOP_FISUBR, X87_SUBR, 0, 1 }, { DOP_FIDIV, X87_DIV, 0, 1 }, { DOP_FIDIVR, X87_DIVR, 0, 1 },
};

/* dest = dest OP src; forms: "op m" (dest ST0), "op ST0, STi", "op STi, ST0", "opP STi, ST0". */
static int h_arith(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    const struct arith_desc *a = arith_tbl;
    while (a->op != d->op)
        a++;
    unsigned dst = 0, src_op = 0;
    if (!is_mem(d, 0)) {
        dst = sti(d, 0);
        src_op = 1;
    }
    uint16_t exc = 0;
    x87_f80 x = x87_indefinite, y;
    bool ok = fetch(v, d, src_op, a->integer, &y, &exc);
    if (x87_empty(f, dst))
        ok = false;
    else
        x = x87_get(f, dst);
    note(v, d);
    x87_f80 r = x87_indefinite;
    if (!ok) {
        x87_underflow(f);
        if (f->fcw & X87_IE)
            x87_set(f, dst, r);
    } else {
        exc |= x87_arith((enum x87_arith)a->kind, &r, x, y, f->fcw);
        f->fsw = (uint16_t)((f->fsw & ~X87_C1) | (exc & X87_C1));
        if (x87_raise(f, exc))
            return EMU_H_NEXT; /* unmasked invalid/denormal/zero-divide: no result, no pop */
        x87_set(f, dst, r);
    }
    if (a->pop)
        x87_pop(f);
    return EMU_H_NEXT;
}

/* ---------------- compares ---------------- */

struct cmp_desc {
    uint16_t op;
    uint8_t pops, quiet, integer, eflags;
};
static const struct cmp_desc cmp_tbl[] = {
    { DOP_FCOM, 0, 0, 0, 0 },    { DOP_FCOMP, 1, 0, 0, 0 },   { DOP_FCOMPP, 2, 0, 0, 0 },
    { DOP_FUCOM, 0, 1, 0, 0 },   { DOP_FUCOMP, 1, 1, 0, 0 },  { DOP_FUCOMPP, 2, 1, 0, 0 },
    { DOP_FICOM, 0, 0, 1, 0 },   { DOP_FICOMP, 1, 0, 1, 0 },  { DOP_FCOMI, 0, 0, 0, 1 },
    { DOP_FCOMIP, 1, 0, 0, 1 },  { DOP_FUCOMI, 0, 1, 0, 1 },  { DOP_FUCOMIP, 1, 1, 0, 1 },
    { DOP_FTST, 0, 0, 0, 0 },
};

static int h_compare(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    const struct cmp_desc *c = cmp_tbl;
    while (c->op != d->op)
        c++;
    uint16_t exc = 0;
    x87_f80 a = x87_indefinite, b = { { 0 } }; /* FTST compares with +0.0 */
    bool ok = !x87_empty(f, 0);
    if (ok)
        a = x87_get(f, 0);
    if (d->op != DOP_FTST) {
        /* the source is the last operand (FCOMI ST0, STi / FCOM STi / m); none = ST(1) */
        unsigned src = d->nops ? d->nops - 1 : d->nops;
        ok &= fetch(v, d, src, c->integer, &b, &exc);
    }
    note(v, d);
    uint16_t cc = X87_C3 | X87_C2 | X87_C0;
    if (!ok) {
        x87_underflow(f);
        if (!(f->fcw & X87_IE))
            return EMU_H_NEXT;
    } else {
        uint16_t cexc;
        cc = x87_compare(a, b, c->quiet, &cexc);
        exc |= cexc;
        if (x87_raise(f, exc))
            return EMU_H_NEXT;
    }
    if (c->eflags) {
        /* FCOMI: ZF PF CF <- C3 C2 C0; OF SF AF cleared (SDM vol.2 FCOMI) */
        uint64_t fl = ((cc & X87_C3) ? EMU_FL_ZF : 0) | ((cc & X87_C2) ? EMU_FL_PF : 0) |
                      ((cc & X87_C0) ? EMU_FL_CF : 0);
        emu_flags_update(v, EMU_FL_OF | EMU_FL_SF | EMU_FL_ZF | EMU_FL_AF | EMU_FL_PF | EMU_FL_CF, fl);
        f->fsw &= (uint16_t)~X87_C1;
    } else {
        f->fsw = (uint16_t)((f->fsw & ~X87_CC) | cc);
    }
    for (unsigned i = 0; i < c->pops; i++)
        x87_pop(f);
    return EMU_H_NEXT;
}

static int h_fxam(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    note(v, d);
    uint16_t cc;
    if (x87_empty(f, 0)) /* empty: C3=1 C0=1, C1 = sign of the stale contents */
        cc = X87_C3 | X87_C0 | ((x87_get(f, 0).b[9] & 0x80) ? X87_C1 : 0);
    else
        cc = x87_examine(x87_get(f, 0));
    f->fsw = (uint16_t)((f->fsw & ~X87_CC) | cc);
    return EMU_H_NEXT;
}

/* ---------------- loads / stores ---------------- */

static int h_fld(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    uint16_t exc = 0;
    x87_f80 x;
    bool ok;
    if (d->op == DOP_FLD || d->op == DOP_FILD) {
        ok = fetch(v, d, 0, d->op == DOP_FILD, &x, &exc);
    } else { /* constants */
        exc |= x87_const(&x, d->modrm, f->fcw);
        ok = true;
    }
    note(v, d);
    if (!ok) {
        x87_underflow(f);
        if (!(f->fcw & X87_IE))
            return EMU_H_NEXT;
    }
    if (x87_raise(f, exc))
        return EMU_H_NEXT;
    f->fsw &= (uint16_t)~X87_C1;
    x87_push(f, x);
    return EMU_H_NEXT;
}

static int h_fst(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    bool pop = d->op == DOP_FSTP || d->op == DOP_FISTP || d->op == DOP_FISTTP;
    bool integer = d->op == DOP_FIST || d->op == DOP_FISTP || d->op == DOP_FISTTP;
    bool empty = x87_empty(f, 0);
    x87_f80 x = empty ? x87_indefinite : x87_get(f, 0);
    note(v, d);
    if (empty) {
        x87_underflow(f);
        if (!(f->fcw & X87_IE))
            return EMU_H_NEXT;
    }
    if (!is_mem(d, 0)) { /* FST/FSTP ST(i) */
        x87_set(f, sti(d, 0), x);
        if (pop)
            x87_pop(f);
        return EMU_H_NEXT;
    }
    unsigned size = d->ops[0].size;
    uint8_t buf[10];
    uint16_t exc;
    if (integer) {
        int64_t iv;
        exc = x87_to_int(&iv, x, size, d->op == DOP_FISTTP, f->fcw);
        memcpy(buf, &iv, 8);
    } else {
        exc = x87_store_real(buf, x, size, f->fcw);
    }
    /* an unmasked IE (NaN/overflow to integer) stores nothing (SDM vol.1 8.5.1) */
    if ((exc & X87_IE) && !(f->fcw & X87_IE)) {
        x87_raise(f, exc);
        return EMU_H_NEXT;
    }
    emu_simd_mmio_check(v, d, 0, true);
    emu_mem_write_buf(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), buf, size);
    f->fsw = (uint16_t)((f->fsw & ~X87_C1) | (exc & X87_C1));
    x87_raise(f, exc);
    if (pop)
        x87_pop(f);
    return EMU_H_NEXT;
}

static int h_fxch(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    unsigned i = d->nops ? sti(d, d->nops - 1) : 1;
    note(v, d);
    bool e0 = x87_empty(f, 0), ei = x87_empty(f, i);
    if (e0 || ei) {
        x87_underflow(f);
        if (!(f->fcw & X87_IE))
            return EMU_H_NEXT;
    }
    x87_f80 a = e0 ? x87_indefinite : x87_get(f, 0), b = ei ? x87_indefinite : x87_get(f, i);
    x87_set(f, 0, b);
    x87_set(f, i, a);
    f->fsw &= (uint16_t)~X87_C1;
    return EMU_H_NEXT;
}

static int h_unary(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    static const struct { uint16_t op; uint8_t kind; } tbl[] = {
        { DOP_FCHS, X87_CHS }, { DOP_FABS, X87_ABS }, { DOP_FSQRT, X87_SQRT },
        { DOP_FRNDINT, X87_RNDINT }, { DOP_FSIN, X87_SIN }, { DOP_FCOS, X87_COS },
        { DOP_F2XM1, X87_F2XM1 },
    };
    unsigned k = 0;
    while (tbl[k].op != d->op)
        k++;
    note(v, d);
    if (x87_empty(f, 0)) {
        x87_underflow(f);
        if (f->fcw & X87_IE)
            x87_set(f, 0, x87_indefinite);
        return EMU_H_NEXT;
    }
    x87_f80 r;
    uint16_t exc = x87_unary((enum x87_unary)tbl[k].kind, &r, x87_get(f, 0), f->fcw);
    f->fsw = (uint16_t)((f->fsw & ~(X87_C1 | X87_C2)) | (exc & (X87_C1 | X87_C2)));
    if (x87_raise(f, exc))
        return EMU_H_NEXT;
    if (!(exc & X87_C2)) /* FSIN/FCOS out of range: C2=1 and ST0 unchanged */
        x87_set(f, 0, r);
    return EMU_H_NEXT;
}

/* FSCALE, FPREM, FPREM1: ST0 = f(ST0, ST1). */
static int h_binst(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    enum x87_binary_st op = d->op == DOP_FSCALE ? X87_SCALE : d->op == DOP_FPREM ? X87_PREM : X87_PREM1;
    note(v, d);
    if (x87_empty(f, 0) || x87_empty(f, 1)) {
        x87_underflow(f);
        if (f->fcw & X87_IE)
            x87_set(f, 0, x87_indefinite);
        return EMU_H_NEXT;
    }
    x87_f80 r;
    uint16_t sw = x87_binary_st(op, &r, x87_get(f, 0), x87_get(f, 1), f->fcw);
    uint16_t cc = op == X87_SCALE ? X87_C1 : X87_CC;
    f->fsw = (uint16_t)((f->fsw & ~cc) | (sw & cc));
    if (x87_raise(f, sw))
        return EMU_H_NEXT;
    x87_set(f, 0, r);
    return EMU_H_NEXT;
}

/* FYL2X, FYL2XP1, FPATAN: ST1 = f(ST1, ST0), pop. */
static int h_binpop(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    enum x87_binary_pop op = d->op == DOP_FYL2X ? X87_YL2X : d->op == DOP_FYL2XP1 ? X87_YL2XP1 : X87_PATAN;
    note(v, d);
    x87_f80 r = x87_indefinite;
    if (x87_empty(f, 0) || x87_empty(f, 1)) {
        x87_underflow(f);
        if (!(f->fcw & X87_IE))
            return EMU_H_NEXT;
    } else {
        uint16_t sw = x87_binary_pop(op, &r, x87_get(f, 0), x87_get(f, 1), f->fcw);
        f->fsw = (uint16_t)((f->fsw & ~X87_C1) | (sw & X87_C1));
        if (x87_raise(f, sw))
            return EMU_H_NEXT;
    }
    x87_set(f, 1, r);
    x87_pop(f);
    return EMU_H_NEXT;
}

/* FPTAN, FSINCOS, FXTRACT: ST0 = first result, then push the second. */
static int h_unpush(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    enum x87_unary_push op = d->op == DOP_FPTAN ? X87_PTAN : d->op == DOP_FSINCOS ? X87_SINCOS : X87_XTRACT;
    note(v, d);
    if (x87_empty(f, 0)) {
        x87_underflow(f);
        if (f->fcw & X87_IE) {
            x87_set(f, 0, x87_indefinite);
            x87_push(f, x87_indefinite);
        }
        return EMU_H_NEXT;
    }
    if (!x87_empty(f, 7)) { /* the push would overflow (SDM vol.1 8.5.1.1) */
        f->fsw |= X87_C1;
        if (!x87_raise(f, X87_IE | X87_SF)) {
            x87_set(f, 0, x87_indefinite);
            x87_push(f, x87_indefinite);
        }
        return EMU_H_NEXT;
    }
    x87_f80 r0, r1;
    uint16_t sw = x87_unary_push(op, &r0, &r1, x87_get(f, 0), f->fcw);
    f->fsw = (uint16_t)((f->fsw & ~(X87_C1 | X87_C2)) | (sw & (X87_C1 | X87_C2)));
    if (x87_raise(f, sw) || (sw & X87_C2))
        return EMU_H_NEXT; /* unmasked exception, or out of range: nothing changes */
    x87_set(f, 0, r0);
    x87_push(f, r1);
    return EMU_H_NEXT;
}

static int h_fcmov(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    static const struct { uint16_t op; uint8_t cc; } tbl[] = {
        { DOP_FCMOVB, 2 },  { DOP_FCMOVNB, 3 },  { DOP_FCMOVE, 4 },  { DOP_FCMOVNE, 5 },
        { DOP_FCMOVBE, 6 }, { DOP_FCMOVNBE, 7 }, { DOP_FCMOVU, 10 }, { DOP_FCMOVNU, 11 },
    };
    unsigned k = 0;
    while (tbl[k].op != d->op)
        k++;
    unsigned i = sti(d, 1);
    note(v, d);
    if (x87_empty(f, 0) || x87_empty(f, i)) {
        x87_underflow(f);
        if (f->fcw & X87_IE)
            x87_set(f, 0, x87_indefinite);
        return EMU_H_NEXT;
    }
    if (emu_cond(v, tbl[k].cc))
        x87_set(f, 0, x87_get(f, i));
    return EMU_H_NEXT;
}

/* ---------------- control ---------------- */

static int h_fninit(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    x87_init(fpu_check(v, false));
    return EMU_H_NEXT;
}

static int h_fnclex(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    struct emu_fpu *f = fpu_check(v, false);
    f->fsw &= (uint16_t)~(0x3f | X87_SF | X87_ES | X87_B);
    return EMU_H_NEXT;
}

static int h_fldcw(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    emu_simd_mmio_check(v, d, 0, false);
    uint16_t cw = (uint16_t)emu_opnd_read(v, d, 0);
    f->fcw = cw | 0x40; /* bit 6 reads as 1 */
    /* unmasking a pending exception makes it pending for #MF */
    if (f->fsw & ~f->fcw & 0x3f)
        f->fsw |= X87_ES | X87_B;
    else
        f->fsw &= (uint16_t)~(X87_ES | X87_B);
    return EMU_H_NEXT;
}

static int h_fnstcw(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, false);
    emu_opnd_write(v, d, 0, f->fcw);
    return EMU_H_NEXT;
}

static int h_fnstsw(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, false);
    if (d->ops[0].kind == DOPND_REG)
        emu_gpr_write(v, EMU_RAX, 2, f->fsw);
    else
        emu_opnd_write(v, d, 0, f->fsw);
    return EMU_H_NEXT;
}

static int h_fstack(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    unsigned t = x87_top(f);
    switch (d->op) {
    case DOP_FINCSTP: /* TOP+1 without freeing; rotate the ST() view */
    case DOP_FDECSTP: {
        uint8_t tmp[16];
        if (d->op == DOP_FINCSTP) {
            memcpy(tmp, f->st[0], 16);
            memmove(f->st[0], f->st[1], 7 * 16);
            memcpy(f->st[7], tmp, 16);
            t++;
        } else {
            memcpy(tmp, f->st[7], 16);
            memmove(f->st[1], f->st[0], 7 * 16);
            memcpy(f->st[0], tmp, 16);
            t--;
        }
        f->fsw = (uint16_t)((f->fsw & ~((7u << 11) | X87_C1)) | ((t & 7) << 11));
        break;
    }
    case DOP_FFREE:
        f->ftw &= (uint8_t)~(1u << ((t + sti(d, 0)) & 7));
        break;
    case DOP_FFREEP:
        f->ftw &= (uint8_t)~(1u << ((t + sti(d, 0)) & 7));
        x87_pop(f);
        break;
    default: /* FNOP; FNENI/FNDISI/FNSETPM are no-ops since the 80387 */
        break;
    }
    return EMU_H_NEXT;
}

/* ---------------- environment: FNSTENV/FLDENV/FNSAVE/FRSTOR ----------------
 * Layouts: SDM vol.1 figures 8-9 to 8-12 (32/16-bit, protected/real mode). */

#define EMU_CR0_PE 1ull

/* Full 2-bit tag of physical register p (SDM vol.1 8.1.7): 00 valid, 01 zero,
 * 10 special (NaN, infinity, denormal, unsupported), 11 empty. */
static unsigned full_tag(const struct emu_fpu *f, unsigned p)
{
    if (!((f->ftw >> p) & 1))
        return 3;
    const uint8_t *r = f->st[(p - x87_top(f)) & 7];
    uint16_t e = (uint16_t)((r[9] << 8 | r[8]) & 0x7fff);
    uint64_t m;
    memcpy(&m, r, 8);
    if (e == 0)
        return m == 0 ? 1 : 2;
    if (e == 0x7fff || !(m >> 63))
        return 2;
    return 0;
}

static unsigned env_size(const struct decoded_insn *d)
{
    return d->opsize == 2 ? 14 : 28;
}

static void env_store(struct emu_vcpu *v, const struct decoded_insn *d, uint8_t *m)
{
    const struct emu_fpu *f = &v->cpu.fpu;
    bool real = !(v->cpu.cr0 & EMU_CR0_PE) || (v->cpu.rflags & EMU_FL_VM);
    uint16_t ftw = 0;
    for (unsigned p = 0; p < 8; p++)
        ftw |= (uint16_t)(full_tag(f, p) << (2 * p));
    uint32_t fip = (uint32_t)f->fip, fdp = (uint32_t)f->fdp;
    uint32_t w[7] = { f->fcw | 0xffff0000u, f->fsw | 0xffff0000u, ftw | 0xffff0000u, 0, 0, 0, 0 };
    if (real) {
        w[3] = (fip & 0xffff) | 0xffff0000u;
        w[4] = ((fip >> 16) << 12) | (f->fop & 0x7ff);
        w[5] = (fdp & 0xffff) | 0xffff0000u;
        w[6] = (fdp >> 16) << 12;
    } else { /* FCS/FDS are not tracked: stored as 0 */
        w[3] = fip;
        w[4] = (uint32_t)(f->fop & 0x7ff) << 16;
        w[5] = fdp;
        w[6] = 0;
    }
    if (d->opsize == 2) {
        for (int i = 0; i < 7; i++) {
            uint16_t h = (uint16_t)w[i];
            if (real && (i == 4 || i == 6)) /* 16-bit real: bits 19:16 in 15:12 */
                h = (uint16_t)((w[i] & 0xf000) | (i == 4 ? (f->fop & 0x7ff) : 0));
            memcpy(m + 2 * i, &h, 2);
        }
    } else {
        memcpy(m, w, 28);
    }
}

static void env_load(struct emu_vcpu *v, const struct decoded_insn *d, const uint8_t *m)
{
    struct emu_fpu *f = &v->cpu.fpu;
    bool real = !(v->cpu.cr0 & EMU_CR0_PE) || (v->cpu.rflags & EMU_FL_VM);
    uint32_t w[7];
    if (d->opsize == 2) {
        for (int i = 0; i < 7; i++) {
            uint16_t h;
            memcpy(&h, m + 2 * i, 2);
            w[i] = h;
        }
    } else {
        memcpy(w, m, 28);
    }
    f->fcw = (uint16_t)w[0] | 0x40;
    f->fsw = (uint16_t)w[1];
    uint16_t ftw = (uint16_t)w[2];
    f->ftw = 0;
    for (unsigned p = 0; p < 8; p++)
        if (((ftw >> (2 * p)) & 3) != 3)
            f->ftw |= (uint8_t)(1u << p);
    if (real) {
        f->fip = (w[3] & 0xffff) | ((w[4] >> 12) << 16);
        f->fop = w[4] & 0x7ff;
        f->fdp = (w[5] & 0xffff) | ((w[6] >> 12) << 16);
    } else {
        f->fip = w[3];
        f->fop = (w[4] >> 16) & 0x7ff;
        f->fdp = w[5];
    }
}

static int h_fnstenv(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, false);
    bool save = d->op == DOP_FNSAVE;
    uint8_t m[108];
    unsigned n = env_size(d);
    env_store(v, d, m);
    if (save)
        for (unsigned i = 0; i < 8; i++)
            memcpy(m + n + 10 * i, f->st[i], 10);
    unsigned len = n + (save ? 80 : 0);
    emu_simd_mmio_check(v, d, 0, true);
    emu_mem_write_buf(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), m, len);
    if (save)
        x87_init(f); /* FNSAVE ends with FNINIT */
    else
        f->fcw |= 0x3f; /* FNSTENV masks all exceptions */
    return EMU_H_NEXT;
}

static int h_fldenv(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, false);
    bool rstor = d->op == DOP_FRSTOR;
    uint8_t m[108];
    unsigned n = env_size(d), len = n + (rstor ? 80 : 0);
    emu_simd_mmio_check(v, d, 0, false);
    emu_mem_read_buf(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), m, len);
    env_load(v, d, m);
    if (rstor)
        for (unsigned i = 0; i < 8; i++) {
            memcpy(f->st[i], m + n + 10 * i, 10);
            memset(f->st[i] + 10, 0, 6);
        }
    return EMU_H_NEXT;
}

/* FBLD m80: 18 packed BCD digits + sign byte (SDM vol.1 4.7); exact as an integer. */
static int h_fbld(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    uint8_t m[10];
    emu_simd_mmio_check(v, d, 0, false);
    emu_mem_read_buf(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), m, 10);
    note(v, d);
    int64_t val = 0;
    for (int i = 8; i >= 0; i--) /* invalid digits: undefined result, taken as is */
        val = val * 100 + (m[i] >> 4) * 10 + (m[i] & 15);
    x87_f80 x = x87_from_int(val);
    if (m[9] & 0x80)
        x.b[9] |= 0x80; /* -0 stays -0 */
    f->fsw &= (uint16_t)~X87_C1;
    x87_push(f, x);
    return EMU_H_NEXT;
}

/* FBSTP m80: round ST0 by FCW.RC to an integer, store 18 BCD digits, pop; out of
 * range or NaN stores the packed-BCD indefinite with #IA (SDM vol.2 FBSTP). */
static int h_fbstp(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_fpu *f = fpu_check(v, true);
    note(v, d);
    bool empty = x87_empty(f, 0);
    uint8_t m[10] = { 0 };
    uint16_t exc = 0;
    int64_t iv = 0;
    if (empty) {
        x87_underflow(f);
        exc = X87_IE;
    } else {
        exc = x87_to_int(&iv, x87_get(f, 0), 8, false, f->fcw);
        if (!(exc & X87_IE) && (iv > 999999999999999999ll || iv < -999999999999999999ll))
            exc = (uint16_t)((exc & ~X87_PE) | X87_IE);
    }
    if (exc & X87_IE) {
        if (!(f->fcw & X87_IE)) {
            x87_raise(f, exc);
            return EMU_H_NEXT; /* unmasked: nothing stored, no pop */
        }
        m[7] = 0xc0; /* packed BCD indefinite */
        m[8] = 0xff;
        m[9] = 0xff;
    } else {
        uint64_t u = iv < 0 ? (uint64_t)0 - (uint64_t)iv : (uint64_t)iv;
        for (int i = 0; i < 9; i++) {
            m[i] = (uint8_t)((u % 10) | ((u / 10 % 10) << 4));
            u /= 100;
        }
        if (iv < 0 || (x87_get(f, 0).b[9] & 0x80))
            m[9] = 0x80;
    }
    emu_simd_mmio_check(v, d, 0, true);
    emu_mem_write_buf(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), m, 10);
    if (!empty)
        x87_raise(f, exc);
    x87_pop(f);
    return EMU_H_NEXT;
}

/* WAIT/FWAIT: #NM only when CR0.MP and CR0.TS are both set; then a pending
 * unmasked x87 exception is delivered (SDM vol.2 WAIT/FWAIT, table 2-26). */
static int h_fwait(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    uint64_t cr0 = v->cpu.cr0;
    if ((cr0 & EMU_CR0_MP) && (cr0 & EMU_CR0_TS))
        emu_raise(v, EMU_NM, EMU_NO_ERRCODE);
    if ((v->cpu.fpu.fsw & X87_ES) && (cr0 & EMU_CR0_NE))
        emu_raise(v, EMU_MF, EMU_NO_ERRCODE);
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_x87_handlers[] = {
    { DOP_WAIT, h_fwait }, { DOP_FBLD, h_fbld }, { DOP_FBSTP, h_fbstp }, { DOP_FNENI, h_fstack }, { DOP_FNDISI, h_fstack },
    { DOP_FNSETPM, h_fstack },
    { DOP_FNSTENV, h_fnstenv }, { DOP_FNSAVE, h_fnstenv },
    { DOP_FLDENV, h_fldenv },   { DOP_FRSTOR, h_fldenv },
    { DOP_FADD, h_arith },   { DOP_FMUL, h_arith },   { DOP_FSUB, h_arith },
    { DOP_FSUBR, h_arith },  { DOP_FDIV, h_arith },   { DOP_FDIVR, h_arith },
    { DOP_FADDP, h_arith },  { DOP_FMULP, h_arith },  { DOP_FSUBP, h_arith },
    { DOP_FSUBRP, h_arith }, { DOP_FDIVP, h_arith },  { DOP_FDIVRP, h_arith },
    { DOP_FIADD, h_arith },  { DOP_FIMUL, h_arith },  { DOP_FISUB, h_arith },
    { DOP_FISUBR, h_arith }, { DOP_FIDIV, h_arith },  { DOP_FIDIVR, h_arith },
    { DOP_FCOM, h_compare }, { DOP_FCOMP, h_compare }, { DOP_FCOMPP, h_compare },
    { DOP_FUCOM, h_compare }, { DOP_FUCOMP, h_compare }, { DOP_FUCOMPP, h_compare },
    { DOP_FICOM, h_compare }, { DOP_FICOMP, h_compare }, { DOP_FCOMI, h_compare },
    { DOP_FCOMIP, h_compare }, { DOP_FUCOMI, h_compare }, { DOP_FUCOMIP, h_compare },
    { DOP_FTST, h_compare }, { DOP_FXAM, h_fxam },
    { DOP_FLD, h_fld },      { DOP_FILD, h_fld },     { DOP_FLD1, h_fld },
    { DOP_FLDZ, h_fld },     { DOP_FLDPI, h_fld },    { DOP_FLDL2E, h_fld },
    { DOP_FLDL2T, h_fld },   { DOP_FLDLG2, h_fld },   { DOP_FLDLN2, h_fld },
    { DOP_FST, h_fst },      { DOP_FSTP, h_fst },     { DOP_FIST, h_fst },
    { DOP_FISTP, h_fst },    { DOP_FISTTP, h_fst },   { DOP_FXCH, h_fxch },
    { DOP_FCHS, h_unary },   { DOP_FABS, h_unary },   { DOP_FSQRT, h_unary },
    { DOP_FRNDINT, h_unary }, { DOP_FSIN, h_unary },  { DOP_FCOS, h_unary },
    { DOP_F2XM1, h_unary },
    { DOP_FSCALE, h_binst }, { DOP_FPREM, h_binst }, { DOP_FPREM1, h_binst },
    { DOP_FYL2X, h_binpop }, { DOP_FYL2XP1, h_binpop }, { DOP_FPATAN, h_binpop },
    { DOP_FPTAN, h_unpush }, { DOP_FSINCOS, h_unpush }, { DOP_FXTRACT, h_unpush },
    { DOP_FCMOVB, h_fcmov }, { DOP_FCMOVNB, h_fcmov }, { DOP_FCMOVE, h_fcmov },
    { DOP_FCMOVNE, h_fcmov }, { DOP_FCMOVBE, h_fcmov }, { DOP_FCMOVNBE, h_fcmov },
    { DOP_FCMOVU, h_fcmov }, { DOP_FCMOVNU, h_fcmov },
    { DOP_FNINIT, h_fninit }, { DOP_FNCLEX, h_fnclex }, { DOP_FLDCW, h_fldcw },
    { DOP_FNSTCW, h_fnstcw }, { DOP_FNSTSW, h_fnstsw },
    { DOP_FINCSTP, h_fstack }, { DOP_FDECSTP, h_fstack }, { DOP_FFREE, h_fstack },
    { DOP_FFREEP, h_fstack }, { DOP_FNOP, h_fstack },
    { 0, NULL },
};
