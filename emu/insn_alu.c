/* emu/: integer arithmetic and logic: ADD ADC SUB SBB AND OR XOR CMP TEST INC DEC NEG
 * NOT, XADD, CMPXCHG/8B/16B, flag instructions, SETcc, CMOVcc, sign extensions
 * (SDM vol.2 instruction pages). LOCK-prefixed forms use host atomics on the guest
 * page so SMP guests see real atomicity. */
#include <string.h>

#include "emu/internal.h"

enum alu { A_ADD, A_OR, A_ADC, A_SBB, A_AND, A_SUB, A_XOR, A_CMP, A_TEST };

static const uint8_t alu_lf[] = {
    [A_ADD] = EMU_LF_ADD, [A_OR] = EMU_LF_LOGIC, [A_ADC] = EMU_LF_ADC, [A_SBB] = EMU_LF_SBB,
    [A_AND] = EMU_LF_LOGIC, [A_SUB] = EMU_LF_SUB, [A_XOR] = EMU_LF_LOGIC, [A_CMP] = EMU_LF_SUB,
    [A_TEST] = EMU_LF_LOGIC,
};

static uint64_t alu_compute(enum alu op, uint64_t a, uint64_t b, bool cf)
{
    switch (op) {
    case A_ADD: return a + b;
    case A_OR: return a | b;
    case A_ADC: return a + b + cf;
    case A_SBB: return a - b - cf;
    case A_AND: case A_TEST: return a & b;
    case A_SUB: case A_CMP: return a - b;
    default: return a ^ b;
    }
}

static inline bool locked_mem(const struct decoded_insn *d)
{
    return (d->prefixes & DPFX_LOCK) && d->ops[0].kind == DOPND_MEM;
}

/* Compare-and-swap loop on a host pointer of `size` bytes: new = f(old). */
#define CAS_LOOP(T, p, oldv, newexpr)                                                          \
    do {                                                                                        \
        T o_ = __atomic_load_n((T *)(p), __ATOMIC_RELAXED), n_;                                  \
        do {                                                                                    \
            oldv = o_;                                                                          \
            n_ = (T)(newexpr);                                                                  \
        } while (!__atomic_compare_exchange_n((T *)(p), &o_, n_, false, __ATOMIC_SEQ_CST,         \
                                              __ATOMIC_RELAXED));                               \
    } while (0)

static uint64_t atomic_rmw(void *p, unsigned size, enum alu op, uint64_t b, bool cf)
{
    uint64_t old = 0;
    switch (size) {
    case 1: CAS_LOOP(uint8_t, p, old, alu_compute(op, old, b, cf)); break;
    case 2: CAS_LOOP(uint16_t, p, old, alu_compute(op, old, b, cf)); break;
    case 4: CAS_LOOP(uint32_t, p, old, alu_compute(op, old, b, cf)); break;
    default: CAS_LOOP(uint64_t, p, old, alu_compute(op, old, b, cf)); break;
    }
    return old;
}

static int alu(struct emu_vcpu *v, const struct decoded_insn *d, enum alu op)
{
    unsigned size = d->ops[0].size;
    const struct decoder_operand *o0 = &d->ops[0], *o1 = &d->ops[1];
    /* fast path: GPR destination, GPR or immediate source (no faults possible) */
    if (o0->kind == DOPND_REG && o0->reg_class == DREG_GPR &&
        (o1->kind == DOPND_IMM || (o1->kind == DOPND_REG && o1->reg_class == DREG_GPR))) {
        uint64_t m = emu_mask(size);
        uint64_t a = v->cpu.gpr[o0->reg] & m;
        uint64_t b = (o1->kind == DOPND_IMM ? (uint64_t)o1->disp : v->cpu.gpr[o1->reg]) & m;
        bool cf = (op == A_ADC || op == A_SBB) ? emu_cf(v) : false;
        uint64_t r = alu_compute(op, a, b, cf) & m;
        if (op != A_CMP && op != A_TEST)
            emu_gpr_write(v, o0->reg, size, r);
        emu_lf_set(v, alu_lf[op], size, r, a, b);
        v->lf.cf_in = cf;
        return EMU_H_NEXT;
    }
    uint64_t m = emu_mask(size);
    uint64_t b = emu_opnd_read(v, d, 1) & m;
    bool cf = (op == A_ADC || op == A_SBB) ? emu_cf(v) : false;
    uint64_t a, r;
    void *p;
    if (locked_mem(d) && op != A_CMP && op != A_TEST && (p = emu_opnd_ptr(v, d, 0))) {
        a = atomic_rmw(p, size, op, b, cf);
        r = alu_compute(op, a, b, cf) & m;
    } else {
        a = emu_opnd_read(v, d, 0);
        r = alu_compute(op, a, b, cf) & m;
        if (op != A_CMP && op != A_TEST)
            emu_opnd_write(v, d, 0, r);
    }
    emu_lf_set(v, alu_lf[op], size, r, a, b);
    v->lf.cf_in = cf;
    return EMU_H_NEXT;
}

static int h_add(struct emu_vcpu *v, const struct decoded_insn *d) { return alu(v, d, A_ADD); }
static int h_or(struct emu_vcpu *v, const struct decoded_insn *d) { return alu(v, d, A_OR); }
static int h_adc(struct emu_vcpu *v, const struct decoded_insn *d) { return alu(v, d, A_ADC); }
static int h_sbb(struct emu_vcpu *v, const struct decoded_insn *d) { return alu(v, d, A_SBB); }
static int h_and(struct emu_vcpu *v, const struct decoded_insn *d) { return alu(v, d, A_AND); }
static int h_sub(struct emu_vcpu *v, const struct decoded_insn *d) { return alu(v, d, A_SUB); }
static int h_xor(struct emu_vcpu *v, const struct decoded_insn *d) { return alu(v, d, A_XOR); }
static int h_cmp(struct emu_vcpu *v, const struct decoded_insn *d) { return alu(v, d, A_CMP); }
static int h_test(struct emu_vcpu *v, const struct decoded_insn *d) { return alu(v, d, A_TEST); }

/* INC/DEC/NEG/NOT: one operand, read-modify-write */
enum unop { U_INC, U_DEC, U_NEG, U_NOT };

static uint64_t un_compute(enum unop op, uint64_t a)
{
    switch (op) {
    case U_INC: return a + 1;
    case U_DEC: return a - 1;
    case U_NEG: return -a;
    default: return ~a;
    }
}

static int unary(struct emu_vcpu *v, const struct decoded_insn *d, enum unop op)
{
    unsigned size = d->ops[0].size;
    uint64_t m = emu_mask(size), a = 0;
    bool cf = emu_cf(v);
    void *p;
    if (locked_mem(d) && (p = emu_opnd_ptr(v, d, 0))) {
        switch (size) {
        case 1: CAS_LOOP(uint8_t, p, a, un_compute(op, a)); break;
        case 2: CAS_LOOP(uint16_t, p, a, un_compute(op, a)); break;
        case 4: CAS_LOOP(uint32_t, p, a, un_compute(op, a)); break;
        default: CAS_LOOP(uint64_t, p, a, un_compute(op, a)); break;
        }
    } else {
        a = emu_opnd_read(v, d, 0);
        emu_opnd_write(v, d, 0, un_compute(op, a) & m);
    }
    uint64_t r = un_compute(op, a) & m;
    switch (op) {
    case U_INC: emu_lf_set(v, EMU_LF_INC, size, r, a, 1); v->lf.cf_in = cf; break;
    case U_DEC: emu_lf_set(v, EMU_LF_DEC, size, r, a, 1); v->lf.cf_in = cf; break;
    case U_NEG: emu_lf_set(v, EMU_LF_NEG, size, r, 0, a); break;
    default: break; /* NOT: no flags */
    }
    return EMU_H_NEXT;
}

static int h_inc(struct emu_vcpu *v, const struct decoded_insn *d) { return unary(v, d, U_INC); }
static int h_dec(struct emu_vcpu *v, const struct decoded_insn *d) { return unary(v, d, U_DEC); }
static int h_neg(struct emu_vcpu *v, const struct decoded_insn *d) { return unary(v, d, U_NEG); }
static int h_not(struct emu_vcpu *v, const struct decoded_insn *d) { return unary(v, d, U_NOT); }

/* XADD: dest <- dest + src, src <- old dest */
static int h_xadd(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->ops[0].size;
    uint64_t m = emu_mask(size), b = emu_opnd_read(v, d, 1), a;
    void *p;
    if (locked_mem(d) && (p = emu_opnd_ptr(v, d, 0))) {
        switch (size) {
        case 1: a = __atomic_fetch_add((uint8_t *)p, (uint8_t)b, __ATOMIC_SEQ_CST); break;
        case 2: a = __atomic_fetch_add((uint16_t *)p, (uint16_t)b, __ATOMIC_SEQ_CST); break;
        case 4: a = __atomic_fetch_add((uint32_t *)p, (uint32_t)b, __ATOMIC_SEQ_CST); break;
        default: a = __atomic_fetch_add((uint64_t *)p, b, __ATOMIC_SEQ_CST); break;
        }
    } else {
        /* source gets the old destination first, then the destination the sum: with
         * the same register for both (xadd ebx,ebx) the sum wins, as in the SDM */
        a = emu_opnd_read(v, d, 0);
        emu_opnd_write(v, d, 1, a);
        emu_opnd_write(v, d, 0, (a + b) & m);
        emu_lf_set(v, EMU_LF_ADD, size, a + b, a, b);
        return EMU_H_NEXT;
    }
    emu_opnd_write(v, d, 1, a);
    emu_lf_set(v, EMU_LF_ADD, size, a + b, a, b);
    return EMU_H_NEXT;
}

/* CMPXCHG: compare accumulator with dest; equal -> dest = src, else acc = dest.
 * The destination is always written (SDM: "the destination operand is written back
 * if the comparison fails"), which matters for faults on read-only pages. */
static int h_cmpxchg(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->ops[0].size;
    uint64_t m = emu_mask(size), src = emu_opnd_read(v, d, 1);
    uint64_t acc = v->cpu.gpr[EMU_RAX] & m, cur;
    void *p;
    if (locked_mem(d) && (p = emu_opnd_ptr(v, d, 0))) {
        bool ok;
        switch (size) {
        case 1: { uint8_t e = (uint8_t)acc; ok = __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)src, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); cur = e; break; }
        case 2: { uint16_t e = (uint16_t)acc; ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)src, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); cur = e; break; }
        case 4: { uint32_t e = (uint32_t)acc; ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)src, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); cur = e; break; }
        default: { uint64_t e = acc; ok = __atomic_compare_exchange_n((uint64_t *)p, &e, src, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); cur = e; break; }
        }
        (void)ok;
    } else {
        cur = emu_opnd_read(v, d, 0);
        /* a memory destination is always written back; a register destination only on
         * success (checked on the host CPU: a failing 32-bit CMPXCHG leaves the upper
         * half of the destination register alone) */
        if (cur == acc)
            emu_opnd_write(v, d, 0, src);
        else if (d->ops[0].kind == DOPND_MEM)
            emu_opnd_write(v, d, 0, cur);
    }
    emu_lf_set(v, EMU_LF_SUB, size, acc - cur, acc, cur);
    if (cur != acc)
        emu_gpr_write(v, EMU_RAX, size, cur);
    return EMU_H_NEXT;
}

/* CMPXCHG8B / CMPXCHG16B (16B needs 16-byte alignment: #GP(0)). */
static int h_cmpxchg8b(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    bool wide = d->op == DOP_CMPXCHG16B;
    unsigned n = wide ? 16 : 8;
    unsigned half = n / 2;
    uint64_t ea = emu_opnd_ea(v, d, 0);
    uint64_t lin = emu_seg_lin(v, d->ops[0].seg, ea, n, EMU_ACC_WRITE);
    if (wide && (lin & 15))
        emu_raise(v, EMU_GP, 0);
    unsigned __int128 expect, desired, cur;
    uint64_t m = emu_mask(half);
    expect = ((unsigned __int128)(c->gpr[EMU_RDX] & m) << (half * 8)) | (c->gpr[EMU_RAX] & m);
    desired = ((unsigned __int128)(c->gpr[EMU_RCX] & m) << (half * 8)) | (c->gpr[EMU_RBX] & m);
    void *p = (lin & (n - 1)) == 0 ? emu_lin_ptr(v, lin, n, EMU_ACC_WRITE) : NULL;
    bool ok;
    if (p && !wide) {
        uint64_t e = (uint64_t)expect;
        ok = __atomic_compare_exchange_n((uint64_t *)p, &e, (uint64_t)desired, false,
                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        cur = e;
    } else if (p) {
        /* host CMPXCHG16B (-mcx16): the __atomic form would call libatomic */
        cur = __sync_val_compare_and_swap((unsigned __int128 *)p, expect, desired);
        ok = cur == expect;
    } else {
        uint8_t buf[16];
        emu_lin_read_buf(v, lin, buf, n, EMU_ACC_READ);
        cur = 0;
        memcpy(&cur, buf, n);
        ok = cur == expect;
        unsigned __int128 w = ok ? desired : cur;
        memcpy(buf, &w, n);
        emu_lin_write_buf(v, lin, buf, n, EMU_ACC_WRITE);
    }
    emu_flags_update(v, EMU_FL_ZF, ok ? EMU_FL_ZF : 0);
    if (!ok) {
        emu_gpr_write(v, EMU_RAX, half, (uint64_t)cur);
        emu_gpr_write(v, EMU_RDX, half, (uint64_t)(cur >> (half * 8)));
    }
    return EMU_H_NEXT;
}

/* ---- flag instructions ---- */
static int h_clc(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; emu_flags_update(v, EMU_FL_CF, 0); return EMU_H_NEXT; }
static int h_stc(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; emu_flags_update(v, EMU_FL_CF, EMU_FL_CF); return EMU_H_NEXT; }
static int h_cmc(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; emu_flags_update(v, EMU_FL_CF, emu_flags(v) ^ EMU_FL_CF); return EMU_H_NEXT; }
static int h_cld(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; v->cpu.rflags &= ~(uint64_t)EMU_FL_DF; return EMU_H_NEXT; }
static int h_std(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; v->cpu.rflags |= EMU_FL_DF; return EMU_H_NEXT; }

static int h_sahf(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    uint64_t ah = (v->cpu.gpr[EMU_RAX] >> 8) & 0xff;
    emu_flags_update(v, EMU_FL_SF | EMU_FL_ZF | EMU_FL_AF | EMU_FL_PF | EMU_FL_CF, ah);
    return EMU_H_NEXT;
}

static int h_lahf(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    uint64_t f = emu_flags(v) & 0xd7; /* SF ZF AF PF CF and bit 1 */
    v->cpu.gpr[EMU_RAX] = (v->cpu.gpr[EMU_RAX] & ~0xff00ull) | ((f | 2) << 8);
    return EMU_H_NEXT;
}

static int h_salc(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    emu_gpr_write(v, EMU_RAX, 1, emu_cf(v) ? 0xff : 0);
    return EMU_H_NEXT;
}

static int h_setcc(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_opnd_write(v, d, 0, emu_cond(v, d->cond));
    return EMU_H_NEXT;
}

/* CMOVcc always reads the source (may fault) and, with a 32-bit operand in 64-bit
 * mode, zero-extends the destination even when the condition is false. */
static int h_cmovcc(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t s = emu_opnd_read(v, d, 1);
    if (emu_cond(v, d->cond))
        emu_opnd_write(v, d, 0, s);
    else if (d->ops[0].size == 4)
        emu_opnd_write(v, d, 0, emu_opnd_read(v, d, 0));
    return EMU_H_NEXT;
}

/* ---- sign extension of the accumulator ---- */
static int h_cbw(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; emu_gpr_write(v, EMU_RAX, 2, (uint64_t)emu_sext(v->cpu.gpr[EMU_RAX], 1)); return EMU_H_NEXT; }
static int h_cwde(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; emu_gpr_write(v, EMU_RAX, 4, (uint64_t)emu_sext(v->cpu.gpr[EMU_RAX], 2)); return EMU_H_NEXT; }
static int h_cdqe(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; emu_gpr_write(v, EMU_RAX, 8, (uint64_t)emu_sext(v->cpu.gpr[EMU_RAX], 4)); return EMU_H_NEXT; }
static int h_cwd(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; emu_gpr_write(v, EMU_RDX, 2, emu_sext(v->cpu.gpr[EMU_RAX], 2) < 0 ? ~0ull : 0); return EMU_H_NEXT; }
static int h_cdq(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; emu_gpr_write(v, EMU_RDX, 4, emu_sext(v->cpu.gpr[EMU_RAX], 4) < 0 ? ~0ull : 0); return EMU_H_NEXT; }
static int h_cqo(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; emu_gpr_write(v, EMU_RDX, 8, (int64_t)v->cpu.gpr[EMU_RAX] < 0 ? ~0ull : 0); return EMU_H_NEXT; }

const struct emu_handler_entry emu_alu_handlers[] = {
    {DOP_ADD, h_add}, {DOP_OR, h_or}, {DOP_ADC, h_adc}, {DOP_SBB, h_sbb}, {DOP_AND, h_and},
    {DOP_SUB, h_sub}, {DOP_XOR, h_xor}, {DOP_CMP, h_cmp}, {DOP_TEST, h_test},
    {DOP_INC, h_inc}, {DOP_DEC, h_dec}, {DOP_NEG, h_neg}, {DOP_NOT, h_not},
    {DOP_XADD, h_xadd}, {DOP_CMPXCHG, h_cmpxchg}, {DOP_CMPXCHG8B, h_cmpxchg8b},
    {DOP_CMPXCHG16B, h_cmpxchg8b},
    {DOP_CLC, h_clc}, {DOP_STC, h_stc}, {DOP_CMC, h_cmc}, {DOP_CLD, h_cld}, {DOP_STD, h_std},
    {DOP_SAHF, h_sahf}, {DOP_LAHF, h_lahf}, {DOP_SALC, h_salc},
    {DOP_SETO, h_setcc}, {DOP_SETNO, h_setcc}, {DOP_SETB, h_setcc}, {DOP_SETAE, h_setcc},
    {DOP_SETE, h_setcc}, {DOP_SETNE, h_setcc}, {DOP_SETBE, h_setcc}, {DOP_SETA, h_setcc},
    {DOP_SETS, h_setcc}, {DOP_SETNS, h_setcc}, {DOP_SETP, h_setcc}, {DOP_SETNP, h_setcc},
    {DOP_SETL, h_setcc}, {DOP_SETGE, h_setcc}, {DOP_SETLE, h_setcc}, {DOP_SETG, h_setcc},
    {DOP_CMOVO, h_cmovcc}, {DOP_CMOVNO, h_cmovcc}, {DOP_CMOVB, h_cmovcc}, {DOP_CMOVAE, h_cmovcc},
    {DOP_CMOVE, h_cmovcc}, {DOP_CMOVNE, h_cmovcc}, {DOP_CMOVBE, h_cmovcc}, {DOP_CMOVA, h_cmovcc},
    {DOP_CMOVS, h_cmovcc}, {DOP_CMOVNS, h_cmovcc}, {DOP_CMOVP, h_cmovcc}, {DOP_CMOVNP, h_cmovcc},
    {DOP_CMOVL, h_cmovcc}, {DOP_CMOVGE, h_cmovcc}, {DOP_CMOVLE, h_cmovcc}, {DOP_CMOVG, h_cmovcc},
    {DOP_CBW, h_cbw}, {DOP_CWDE, h_cwde}, {DOP_CDQE, h_cdqe}, {DOP_CWD, h_cwd}, {DOP_CDQ, h_cdq},
    {DOP_CQO, h_cqo},
    {0, NULL},
};
