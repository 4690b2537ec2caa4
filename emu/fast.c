/* emu/: operand-shape specialised handlers for the hottest forms, chosen once per
 * instruction when a block is translated (emu_fast_handler), so the per-execution work is
 * the semantics and not the operand descriptors (kind/size/class switches).
 *
 * Each one has exactly the semantics of the generic handler it stands for (insn_alu.c,
 * insn_mov.c, insn_shift.c, insn_muldiv.c): same results, same flags, same faults. Memory
 * forms only take the TLB hit in 64-bit mode; anything else (a miss, a page crossing, a
 * data breakpoint, FS/GS) falls back to the generic handler before any state changes, so
 * faults, MMIO and dirty logging stay in one place. */
#include <string.h>

#include "emu/internal.h"

enum fop { F_ADD, F_OR, F_AND, F_SUB, F_XOR, F_CMP, F_TEST, F_ADC, F_SBB };

static const uint8_t fop_lf[] = {
    [F_ADD] = EMU_LF_ADD, [F_OR] = EMU_LF_LOGIC, [F_AND] = EMU_LF_LOGIC, [F_SUB] = EMU_LF_SUB,
    [F_XOR] = EMU_LF_LOGIC, [F_CMP] = EMU_LF_SUB, [F_TEST] = EMU_LF_LOGIC, [F_ADC] = EMU_LF_ADC,
    [F_SBB] = EMU_LF_SBB,
};

static inline void gpr_set(struct emu_vcpu *v, unsigned reg, unsigned size, uint64_t val)
{
    uint64_t *r = &v->cpu.gpr[reg];
    if (size == 8)
        *r = val;
    else if (size == 4)
        *r = (uint32_t)val; /* SDM vol.1 3.4.1.1 */
    else
        *r = (*r & ~emu_mask(size)) | (val & emu_mask(size));
}

/* emu_cf (flags.c) with its cases inline, plus the ones lazy_status defines directly
 * (INC/DEC keep CF in cf_in, EMU_LF_CO holds it in bit 0) */
static inline bool cf_fast(struct emu_vcpu *v)
{
    switch (v->lf.op) {
    case EMU_LF_NONE: return v->cpu.rflags & EMU_FL_CF;
    case EMU_LF_ADD: return v->lf.res < v->lf.a;
    case EMU_LF_SUB: return v->lf.a < v->lf.b;
    case EMU_LF_LOGIC: return false;
    case EMU_LF_INC: case EMU_LF_DEC: return v->lf.cf_in;
    case EMU_LF_CO: return v->lf.cf_in & 1;
    default: return emu_cf(v);
    }
}

/* sz: the operand size when fixed at translation (8, 4, 1: the variants below let the
 * compiler fold the masks and the register write), 0 = read it from the operand */
static inline int alu_fast(struct emu_vcpu *v, const struct decoded_insn *d, enum fop op, bool imm,
                           unsigned sz)
{
    unsigned size = sz ? sz : d->ops[0].size;
    uint64_t m = emu_mask(size);
    uint64_t a = v->cpu.gpr[d->ops[0].reg] & m;
    uint64_t b = (imm ? (uint64_t)d->ops[1].disp : v->cpu.gpr[d->ops[1].reg]) & m;
    bool cf = (op == F_ADC || op == F_SBB) && cf_fast(v); /* carry-in before the lazy state changes */
    uint64_t r;
    switch (op) {
    case F_ADD: r = a + b; break;
    case F_ADC: r = a + b + cf; break;
    case F_SBB: r = a - b - cf; break;
    case F_OR: r = a | b; break;
    case F_AND: case F_TEST: r = a & b; break;
    case F_SUB: case F_CMP: r = a - b; break;
    default: r = a ^ b; break;
    }
    r &= m;
    if (op != F_CMP && op != F_TEST)
        gpr_set(v, d->ops[0].reg, size, r);
    v->lf.op = fop_lf[op];
    v->lf.size = (uint8_t)size;
    v->lf.res = r;
    v->lf.a = a;
    v->lf.b = b;
    v->lf.cf_in = cf;
    return EMU_H_NEXT;
}

#define ALU_REG(name, op)                                                                  \
    static int f_##name##_rr(struct emu_vcpu *v, const struct decoded_insn *d) { return alu_fast(v, d, op, false, 0); } \
    static int f_##name##_ri(struct emu_vcpu *v, const struct decoded_insn *d) { return alu_fast(v, d, op, true, 0); } \
    static int f_##name##_rr8(struct emu_vcpu *v, const struct decoded_insn *d) { return alu_fast(v, d, op, false, 8); } \
    static int f_##name##_ri8(struct emu_vcpu *v, const struct decoded_insn *d) { return alu_fast(v, d, op, true, 8); } \
    static int f_##name##_rr4(struct emu_vcpu *v, const struct decoded_insn *d) { return alu_fast(v, d, op, false, 4); } \
    static int f_##name##_ri4(struct emu_vcpu *v, const struct decoded_insn *d) { return alu_fast(v, d, op, true, 4); } \
    static int f_##name##_ri1(struct emu_vcpu *v, const struct decoded_insn *d) { return alu_fast(v, d, op, true, 1); }
ALU_REG(add, F_ADD) ALU_REG(or, F_OR) ALU_REG(and, F_AND) ALU_REG(sub, F_SUB) ALU_REG(xor, F_XOR)
ALU_REG(cmp, F_CMP) ALU_REG(test, F_TEST) ALU_REG(adc, F_ADC) ALU_REG(sbb, F_SBB)
#undef ALU_REG

/* INC/DEC r: CF is kept (lazy cf_in), as insn_alu.c unary() records it; sz as for
 * alu_fast */
static inline int incdec(struct emu_vcpu *v, const struct decoded_insn *d, bool inc, unsigned sz)
{
    unsigned size = sz ? sz : d->ops[0].size;
    uint64_t m = emu_mask(size);
    bool cf = cf_fast(v);
    uint64_t a = v->cpu.gpr[d->ops[0].reg] & m, r = (inc ? a + 1 : a - 1) & m;
    gpr_set(v, d->ops[0].reg, size, r);
    emu_lf_set(v, inc ? EMU_LF_INC : EMU_LF_DEC, size, r, a, 1);
    v->lf.cf_in = cf;
    return EMU_H_NEXT;
}

static int f_inc_r(struct emu_vcpu *v, const struct decoded_insn *d) { return incdec(v, d, true, 0); }
static int f_inc_r8(struct emu_vcpu *v, const struct decoded_insn *d) { return incdec(v, d, true, 8); }
static int f_inc_r4(struct emu_vcpu *v, const struct decoded_insn *d) { return incdec(v, d, true, 4); }
static int f_dec_r(struct emu_vcpu *v, const struct decoded_insn *d) { return incdec(v, d, false, 0); }
static int f_dec_r8(struct emu_vcpu *v, const struct decoded_insn *d) { return incdec(v, d, false, 8); }
static int f_dec_r4(struct emu_vcpu *v, const struct decoded_insn *d) { return incdec(v, d, false, 4); }

/* MOV between GPRs / from an immediate */
static int f_mov_rr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    gpr_set(v, d->ops[0].reg, d->ops[0].size, v->cpu.gpr[d->ops[1].reg]);
    return EMU_H_NEXT;
}

static int f_mov_ri(struct emu_vcpu *v, const struct decoded_insn *d)
{
    gpr_set(v, d->ops[0].reg, d->ops[0].size, (uint64_t)d->ops[1].disp);
    return EMU_H_NEXT;
}

/* LEA r, m (insn_mov.c h_lea: the effective address wrapped to the address size, written
 * at the operand size) */
static int f_lea(struct emu_vcpu *v, const struct decoded_insn *d)
{
    gpr_set(v, d->ops[0].reg, d->ops[0].size, emu_opnd_ea(v, d, 1));
    return EMU_H_NEXT;
}

/* The TLB hit for a linear address (emu_lin_read/emu_lin_write's fast case: same tag,
 * same page-crossing test, same kind for the CPL), or NULL. A data breakpoint takes the
 * generic path, which checks it. A hit implies the page is canonical and was walked for
 * this access and CPL. */
static inline uint8_t *lin_hit(struct emu_vcpu *v, uint64_t lin, unsigned size, unsigned acc)
{
    if ((lin & 0xfff) + size > 4096 || v->dbg_data)
        return NULL;
    unsigned k = acc + (v->cpu.cpl == 3 ? 3 : 0);
    const struct emu_tlb_entry *e = &v->tlb[k][(lin >> 12) % EMU_TLB_SIZE];
    if (e->tag != ((lin & ~0xfffull) | 1))
        return NULL;
    return e->host + (lin & 0xfff);
}

/* 64-bit mode, DS/ES/SS/CS-relative (base 0), no page crossing, TLB hit: host pointer or
 * NULL. The effective address is emu_opnd_ea's without the address-size mask, which is
 * the identity for the 64-bit address size simple_mem64 requires. */
static inline uint8_t *tlb_hit(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i,
                               unsigned size, unsigned acc)
{
    return lin_hit(v, emu_opnd_ea_raw(v, &d->ops[i]), size, acc); /* size: o->size (a constant in the sized forms) */
}

static inline uint64_t load(const uint8_t *p, unsigned size)
{
    switch (size) {
    case 1: return *p;
    case 2: { uint16_t x; memcpy(&x, p, 2); return x; }
    case 4: { uint32_t x; memcpy(&x, p, 4); return x; }
    default: { uint64_t x; memcpy(&x, p, 8); return x; }
    }
}

static inline void store(uint8_t *p, unsigned size, uint64_t val)
{
    switch (size) {
    case 1: *p = (uint8_t)val; break;
    case 2: { uint16_t x = (uint16_t)val; memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)val; memcpy(p, &x, 4); break; }
    default: memcpy(p, &val, 8); break;
    }
}

/* The slow paths are kept out of line (and called last), so the fast paths need no stack
 * frame and the fallback is a tail call. */
#define SLOW __attribute__((noinline, cold))

/* the generic MOV (insn_mov.c) for everything the fast forms do not take */
static SLOW int mov_generic(struct emu_vcpu *v, const struct decoded_insn *d)
{
    return emu_handler_for(DOP_MOV)(v, d);
}

/* sz as for alu_fast: 8 and 4 fixed at translation, 0 = the operand's */
static inline int mov_rm(struct emu_vcpu *v, const struct decoded_insn *d, unsigned sz)
{
    unsigned size = sz ? sz : d->ops[1].size;
    const uint8_t *p = tlb_hit(v, d, 1, size, EMU_ACC_READ);
    if (__builtin_expect(!p, 0))
        return mov_generic(v, d);
    gpr_set(v, d->ops[0].reg, size, load(p, size));
    return EMU_H_NEXT;
}

static inline int mov_store(struct emu_vcpu *v, const struct decoded_insn *d, uint64_t val,
                            unsigned sz)
{
    unsigned size = sz ? sz : d->ops[0].size;
    uint8_t *p = tlb_hit(v, d, 0, size, EMU_ACC_WRITE);
    if (__builtin_expect(!p, 0))
        return mov_generic(v, d);
    store(p, size, val);
    return EMU_H_NEXT;
}

static int f_mov_rm(struct emu_vcpu *v, const struct decoded_insn *d) { return mov_rm(v, d, 0); }
static int f_mov_rm8(struct emu_vcpu *v, const struct decoded_insn *d) { return mov_rm(v, d, 8); }
static int f_mov_rm4(struct emu_vcpu *v, const struct decoded_insn *d) { return mov_rm(v, d, 4); }
static int f_mov_mr(struct emu_vcpu *v, const struct decoded_insn *d) { return mov_store(v, d, v->cpu.gpr[d->ops[1].reg], 0); }
static int f_mov_mr8(struct emu_vcpu *v, const struct decoded_insn *d) { return mov_store(v, d, v->cpu.gpr[d->ops[1].reg], 8); }
static int f_mov_mr4(struct emu_vcpu *v, const struct decoded_insn *d) { return mov_store(v, d, v->cpu.gpr[d->ops[1].reg], 4); }
static int f_mov_mi(struct emu_vcpu *v, const struct decoded_insn *d) { return mov_store(v, d, (uint64_t)d->ops[1].disp, 0); }

/* All six status flags written at once, as insn_shift.c / insn_muldiv.c write them: SF ZF
 * PF of the result, the given CF and OF, AF cleared. Recorded lazily (EMU_LF_CO), so they
 * are only computed if something reads them. */
static inline void set_co(struct emu_vcpu *v, unsigned size, uint64_t res, bool cf, bool of)
{
    v->lf.op = EMU_LF_CO;
    v->lf.size = (uint8_t)size;
    v->lf.res = res; /* masked to size by the callers */
    v->lf.a = 0;
    v->lf.b = 0;
    v->lf.cf_in = (uint8_t)(cf | (of << 1));
}

/* SHL/SHR/SAR r, imm8 (insn_shift.c shift(): count masked, 0 changes nothing but the
 * 32-bit zero extension; CF OF SF ZF PF set, AF cleared) */
enum fsh { FS_SHL, FS_SHR, FS_SAR };

static inline int shift_fast(struct emu_vcpu *v, const struct decoded_insn *d, enum fsh k,
                             unsigned sz)
{
    unsigned size = sz ? sz : d->ops[0].size, bits = size * 8;
    uint64_t m = emu_mask(size), msb = 1ull << (bits - 1);
    unsigned cnt = (unsigned)d->ops[1].disp & (size == 8 ? 63 : 31);
    uint64_t a = v->cpu.gpr[d->ops[0].reg] & m, r;
    if (cnt == 0) {
        gpr_set(v, d->ops[0].reg, size, a);
        return EMU_H_NEXT;
    }
    bool cf, of;
    switch (k) {
    case FS_SHL:
        cf = cnt <= bits ? (a >> (bits - cnt)) & 1 : 0;
        r = (a << cnt) & m;
        of = !!(r & msb) ^ cf;
        break;
    case FS_SHR:
        cf = (a >> (cnt - 1)) & 1;
        r = a >> cnt;
        of = !!(a & msb);
        break;
    default: {
        int64_t s = emu_sext(a, size);
        cf = (s >> (cnt - 1)) & 1;
        r = (uint64_t)(s >> cnt) & m;
        of = false;
        break;
    }
    }
    gpr_set(v, d->ops[0].reg, size, r);
    set_co(v, size, r, cf, of);
    return EMU_H_NEXT;
}

#define SHIFT(name, k)                                                                     \
    static int f_##name##_ri(struct emu_vcpu *v, const struct decoded_insn *d) { return shift_fast(v, d, k, 0); } \
    static int f_##name##_ri8(struct emu_vcpu *v, const struct decoded_insn *d) { return shift_fast(v, d, k, 8); } \
    static int f_##name##_ri4(struct emu_vcpu *v, const struct decoded_insn *d) { return shift_fast(v, d, k, 4); }
SHIFT(shl, FS_SHL) SHIFT(shr, FS_SHR) SHIFT(sar, FS_SAR)
#undef SHIFT

/* IMUL r, r / IMUL r, r, imm (insn_muldiv.c: CF = OF = truncation, SZP of the result,
 * AF cleared) */
static inline int imul_fast(struct emu_vcpu *v, const struct decoded_insn *d, bool three,
                            unsigned sz)
{
    unsigned size = sz ? sz : d->ops[0].size;
    int64_t a = emu_sext(v->cpu.gpr[d->ops[three ? 1 : 0].reg], size);
    int64_t b = emu_sext(three ? (uint64_t)d->ops[2].disp : v->cpu.gpr[d->ops[1].reg], size);
    __int128 r = (__int128)a * b;
    uint64_t lo = (uint64_t)r & emu_mask(size);
    gpr_set(v, d->ops[0].reg, size, lo);
    bool ovf = r != (__int128)emu_sext((uint64_t)r, size);
    set_co(v, size, lo, ovf, ovf);
    return EMU_H_NEXT;
}

static int f_imul_rr(struct emu_vcpu *v, const struct decoded_insn *d) { return imul_fast(v, d, false, 0); }
static int f_imul_rri(struct emu_vcpu *v, const struct decoded_insn *d) { return imul_fast(v, d, true, 0); }
static int f_imul_rr8(struct emu_vcpu *v, const struct decoded_insn *d) { return imul_fast(v, d, false, 8); }
static int f_imul_rri8(struct emu_vcpu *v, const struct decoded_insn *d) { return imul_fast(v, d, true, 8); }

/* ---- conditions and branches ---- */

/* emu_cond (flags.c) for a condition fixed at translation. The cases the lazy state
 * answers without materialising are decided here, with lazy_status's definitions: ZF is
 * "result == 0" and SF its sign bit for every lazy op (the result is kept masked to the
 * size); after SUB/CMP, CF and the signed relations come from the operands; after a
 * logic op CF = OF = 0; EMU_LF_CO holds CF itself. Everything else is emu_cond itself. */
static inline int cond_try(struct emu_vcpu *v, unsigned cc)
{
    unsigned op = v->lf.op;
    bool r;
    if (__builtin_expect(op == EMU_LF_NONE, 0))
        return -1;
    uint64_t res = v->lf.res, sign = 1ull << (v->lf.size * 8 - 1);
    switch (cc >> 1) {
    case 2: /* E / NE */
        r = res == 0;
        break;
    case 4: /* S / NS */
        r = (res & sign) != 0;
        break;
    case 1: /* B / AE */
        if (op == EMU_LF_SUB)
            r = v->lf.a < v->lf.b;
        else if (op == EMU_LF_ADD)
            r = res < v->lf.a;
        else if (op == EMU_LF_LOGIC)
            r = false;
        else if (op == EMU_LF_CO)
            r = v->lf.cf_in & 1;
        else
            return -1;
        break;
    case 3: /* BE / A */
        if (op == EMU_LF_SUB)
            r = v->lf.a <= v->lf.b;
        else if (op == EMU_LF_LOGIC)
            r = res == 0;
        else
            return -1;
        break;
    case 6: /* L / GE */
    case 7: /* LE / G */
        if (op == EMU_LF_SUB) {
            int64_t a = emu_sext(v->lf.a, v->lf.size), b = emu_sext(v->lf.b, v->lf.size);
            r = (cc >> 1) == 6 ? a < b : a <= b;
        } else if (op == EMU_LF_LOGIC) {
            r = (res & sign) != 0 || ((cc >> 1) == 7 && res == 0); /* OF = 0 */
        } else {
            return -1;
        }
        break;
    default:
        return -1;
    }
    return (cc & 1) ? !r : r;
}

/* 1 / 0, or -1: only emu_cond can tell (cond_fast, the Jcc slow path) */
static inline bool cond_fast(struct emu_vcpu *v, unsigned cc)
{
    int r = cond_try(v, cc);
    return r >= 0 ? r : emu_cond(v, cc);
}

/* Jcc / JMP rel in 64-bit mode with a 64-bit operand size (insn_branch.c jump_near: the
 * target must be canonical, else #GP(0) with RIP at the branch). The block ends at the
 * branch (block.c ends_block), so the loop needs nothing else. */
static inline int jump_rel64(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t t = v->next_rip + (uint64_t)d->ops[0].disp;
    if (__builtin_expect(!emu_canonical(t), 0))
        emu_raise(v, EMU_GP, 0);
    v->next_rip = t;
    return EMU_H_NEXT;
}

/* the condition through emu_cond: out of line, so the fast path has no frame */
static __attribute__((noinline, cold)) int jcc_slow(struct emu_vcpu *v, const struct decoded_insn *d,
                                                    unsigned cc)
{
    return emu_cond(v, cc) ? jump_rel64(v, d) : EMU_H_NEXT;
}

#define JCC(cc)                                                                            \
    static int f_jcc_##cc(struct emu_vcpu *v, const struct decoded_insn *d)               \
    {                                                                                      \
        int t = cond_try(v, cc);                                                           \
        if (__builtin_expect(t < 0, 0))                                                    \
            return jcc_slow(v, d, cc);                                                     \
        return t ? jump_rel64(v, d) : EMU_H_NEXT;                                          \
    }
JCC(0) JCC(1) JCC(2) JCC(3) JCC(4) JCC(5) JCC(6) JCC(7)
JCC(8) JCC(9) JCC(10) JCC(11) JCC(12) JCC(13) JCC(14) JCC(15)
#undef JCC

static emu_handler_fn *const jcc_forms[16] = {
    f_jcc_0, f_jcc_1, f_jcc_2,  f_jcc_3,  f_jcc_4,  f_jcc_5,  f_jcc_6,  f_jcc_7,
    f_jcc_8, f_jcc_9, f_jcc_10, f_jcc_11, f_jcc_12, f_jcc_13, f_jcc_14, f_jcc_15,
};

static int f_jmp_rel(struct emu_vcpu *v, const struct decoded_insn *d)
{
    return jump_rel64(v, d);
}

/* ---- stack ---- */

/* The generic handler of d's op, for what the stack forms do not take: it redoes the
 * instruction from the start, so the fast forms change nothing before deciding. */
static SLOW int stack_generic(struct emu_vcpu *v, const struct decoded_insn *d)
{
    return emu_handler_for(d->op)(v, d);
}

/* PUSH r64 / POP r64 / CALL rel32 / RET in 64-bit mode, 64-bit operand size: SS has base
 * 0 and no limit there, so emu_seg_lin is only the canonical check, which a TLB hit
 * implies (insn_stack.c h_push/h_pop, operand.c emu_push/emu_pop). */
static int f_push_r(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t val = v->cpu.gpr[d->ops[0].reg]; /* PUSH RSP pushes the old value */
    uint64_t sp = v->cpu.gpr[EMU_RSP] - 8;
    uint8_t *p = lin_hit(v, sp, 8, EMU_ACC_WRITE);
    if (__builtin_expect(!p, 0))
        return stack_generic(v, d);
    memcpy(p, &val, 8);
    v->cpu.gpr[EMU_RSP] = sp;
    return EMU_H_NEXT;
}

static int f_pop_r(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t sp = v->cpu.gpr[EMU_RSP];
    const uint8_t *p = lin_hit(v, sp, 8, EMU_ACC_READ);
    if (__builtin_expect(!p, 0))
        return stack_generic(v, d);
    uint64_t val;
    memcpy(&val, p, 8);
    v->cpu.gpr[EMU_RSP] = sp + 8;
    v->cpu.gpr[d->ops[0].reg] = val; /* after the increment: POP RSP loads the value */
    return EMU_H_NEXT;
}

/* CALL rel: the target is checked before the push (insn_branch.c h_call); a
 * non-canonical one is the generic handler's #GP(0). */
static int f_call_rel(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t ret = v->next_rip, t = ret + (uint64_t)d->ops[0].disp;
    uint64_t sp = v->cpu.gpr[EMU_RSP] - 8;
    uint8_t *p = lin_hit(v, sp, 8, EMU_ACC_WRITE);
    if (__builtin_expect(!p || !emu_canonical(t), 0))
        return stack_generic(v, d);
    memcpy(p, &ret, 8);
    v->cpu.gpr[EMU_RSP] = sp;
    v->next_rip = t;
    return EMU_H_NEXT;
}

static int f_ret(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t sp = v->cpu.gpr[EMU_RSP];
    const uint8_t *p = lin_hit(v, sp, 8, EMU_ACC_READ);
    if (__builtin_expect(!p, 0))
        return stack_generic(v, d);
    uint64_t t;
    memcpy(&t, p, 8);
    if (__builtin_expect(!emu_canonical(t), 0))
        return stack_generic(v, d); /* #GP(0), RSP unchanged */
    v->cpu.gpr[EMU_RSP] = sp + 8;
    v->next_rip = t;
    return EMU_H_NEXT;
}

/* ROL/ROR r, imm8 (insn_shift.c shift(): only CF and OF change; a count that is 0 after
 * masking changes nothing but the 32-bit zero extension). */
static inline int rot_fast(struct emu_vcpu *v, const struct decoded_insn *d, bool left)
{
    unsigned size = d->ops[0].size, bits = size * 8;
    uint64_t m = emu_mask(size), msb = 1ull << (bits - 1);
    unsigned cnt = (unsigned)d->ops[1].disp & (size == 8 ? 63 : 31);
    uint64_t a = v->cpu.gpr[d->ops[0].reg] & m, r;
    if (cnt == 0) {
        gpr_set(v, d->ops[0].reg, size, a);
        return EMU_H_NEXT;
    }
    unsigned c = cnt % bits;
    bool cf, of;
    if (left) {
        r = c ? ((a << c) | (a >> (bits - c))) & m : a;
        cf = r & 1;
        of = !!(r & msb) ^ cf;
    } else {
        r = c ? ((a >> c) | (a << (bits - c))) & m : a;
        cf = !!(r & msb);
        of = !!(r & msb) ^ !!(r & (msb >> 1));
    }
    gpr_set(v, d->ops[0].reg, size, r);
    emu_flags_update(v, EMU_FL_CF | EMU_FL_OF, (cf ? EMU_FL_CF : 0) | (of ? EMU_FL_OF : 0));
    return EMU_H_NEXT;
}

static int f_rol_ri(struct emu_vcpu *v, const struct decoded_insn *d) { return rot_fast(v, d, true); }
static int f_ror_ri(struct emu_vcpu *v, const struct decoded_insn *d) { return rot_fast(v, d, false); }

/* ---- ALU with a memory operand (insn_alu.c alu(), no LOCK) ---- */

/* The generic ALU handler for a miss: it reads the source, then the destination, before
 * any write, so falling back before any state change is exact. */
static SLOW int alu_generic(struct emu_vcpu *v, const struct decoded_insn *d)
{
    return emu_handler_for(d->op)(v, d);
}

enum fmem { FM_RM, FM_MR, FM_MI }; /* reg <- mem, mem <- reg, mem <- imm */

static inline int alu_mem(struct emu_vcpu *v, const struct decoded_insn *d, enum fop op,
                          enum fmem form)
{
    unsigned size = d->ops[0].size;
    uint64_t m = emu_mask(size);
    bool rmw = form != FM_RM && op != F_CMP && op != F_TEST;
    uint8_t *p = tlb_hit(v, d, form == FM_RM ? 1 : 0, size, rmw ? EMU_ACC_WRITE : EMU_ACC_READ);
    if (__builtin_expect(!p, 0))
        return alu_generic(v, d);
    uint64_t a, b;
    if (form == FM_RM) {
        a = v->cpu.gpr[d->ops[0].reg] & m;
        b = load(p, size);
    } else {
        a = load(p, size);
        b = (form == FM_MI ? (uint64_t)d->ops[1].disp : v->cpu.gpr[d->ops[1].reg]) & m;
    }
    bool cf = (op == F_ADC || op == F_SBB) && cf_fast(v);
    uint64_t r;
    switch (op) {
    case F_ADD: r = a + b; break;
    case F_ADC: r = a + b + cf; break;
    case F_SBB: r = a - b - cf; break;
    case F_OR: r = a | b; break;
    case F_AND: case F_TEST: r = a & b; break;
    case F_SUB: case F_CMP: r = a - b; break;
    default: r = a ^ b; break;
    }
    r &= m;
    if (op != F_CMP && op != F_TEST) {
        if (form == FM_RM)
            gpr_set(v, d->ops[0].reg, size, r);
        else
            store(p, size, r);
    }
    v->lf.op = fop_lf[op];
    v->lf.size = (uint8_t)size;
    v->lf.res = r;
    v->lf.a = a;
    v->lf.b = b;
    v->lf.cf_in = cf;
    return EMU_H_NEXT;
}

#define ALU_MEM(name, op)                                                                  \
    static int f_##name##_rm(struct emu_vcpu *v, const struct decoded_insn *d) { return alu_mem(v, d, op, FM_RM); } \
    static int f_##name##_mr(struct emu_vcpu *v, const struct decoded_insn *d) { return alu_mem(v, d, op, FM_MR); } \
    static int f_##name##_mi(struct emu_vcpu *v, const struct decoded_insn *d) { return alu_mem(v, d, op, FM_MI); }
ALU_MEM(add, F_ADD) ALU_MEM(or, F_OR) ALU_MEM(and, F_AND) ALU_MEM(sub, F_SUB) ALU_MEM(xor, F_XOR)
ALU_MEM(cmp, F_CMP) ALU_MEM(test, F_TEST) ALU_MEM(adc, F_ADC) ALU_MEM(sbb, F_SBB)
#undef ALU_MEM

/* ---- CMOVcc r, r / SETcc r (insn_alu.c h_cmovcc / h_setcc) ---- */

/* the source is a register (no fault); a false condition still zero-extends a 32-bit
 * destination */
static inline int cmov_rr(struct emu_vcpu *v, const struct decoded_insn *d, unsigned cc)
{
    unsigned size = d->ops[0].size;
    unsigned dst = d->ops[0].reg;
    if (cond_fast(v, cc))
        gpr_set(v, dst, size, v->cpu.gpr[d->ops[1].reg]);
    else if (size == 4)
        v->cpu.gpr[dst] = (uint32_t)v->cpu.gpr[dst];
    return EMU_H_NEXT;
}

static inline int setcc_r(struct emu_vcpu *v, const struct decoded_insn *d, unsigned cc)
{
    gpr_set(v, d->ops[0].reg, 1, cond_fast(v, cc));
    return EMU_H_NEXT;
}

#define CC_FORMS(cc)                                                                       \
    static int f_cmov_##cc(struct emu_vcpu *v, const struct decoded_insn *d) { return cmov_rr(v, d, cc); } \
    static int f_set_##cc(struct emu_vcpu *v, const struct decoded_insn *d) { return setcc_r(v, d, cc); }
CC_FORMS(0) CC_FORMS(1) CC_FORMS(2) CC_FORMS(3) CC_FORMS(4) CC_FORMS(5) CC_FORMS(6) CC_FORMS(7)
CC_FORMS(8) CC_FORMS(9) CC_FORMS(10) CC_FORMS(11) CC_FORMS(12) CC_FORMS(13) CC_FORMS(14) CC_FORMS(15)
#undef CC_FORMS

static emu_handler_fn *const cmov_forms[16] = {
    f_cmov_0, f_cmov_1, f_cmov_2,  f_cmov_3,  f_cmov_4,  f_cmov_5,  f_cmov_6,  f_cmov_7,
    f_cmov_8, f_cmov_9, f_cmov_10, f_cmov_11, f_cmov_12, f_cmov_13, f_cmov_14, f_cmov_15,
};
static emu_handler_fn *const setcc_forms[16] = {
    f_set_0, f_set_1, f_set_2,  f_set_3,  f_set_4,  f_set_5,  f_set_6,  f_set_7,
    f_set_8, f_set_9, f_set_10, f_set_11, f_set_12, f_set_13, f_set_14, f_set_15,
};

/* ---- MOVZX / MOVSX / MOVSXD (insn_mov.c: the source zero- or sign-extended from its
 * size, written at the destination size) ---- */

static int f_movzx_rr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    gpr_set(v, d->ops[0].reg, d->ops[0].size, v->cpu.gpr[d->ops[1].reg] & emu_mask(d->ops[1].size));
    return EMU_H_NEXT;
}

static int f_movsx_rr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    gpr_set(v, d->ops[0].reg, d->ops[0].size, (uint64_t)emu_sext(v->cpu.gpr[d->ops[1].reg], d->ops[1].size));
    return EMU_H_NEXT;
}

static int f_movzx_rm(struct emu_vcpu *v, const struct decoded_insn *d)
{
    const uint8_t *p = tlb_hit(v, d, 1, d->ops[1].size, EMU_ACC_READ);
    if (__builtin_expect(!p, 0))
        return alu_generic(v, d); /* the generic MOVZX/MOVSX: same redo from the start */
    gpr_set(v, d->ops[0].reg, d->ops[0].size, load(p, d->ops[1].size));
    return EMU_H_NEXT;
}

static int f_movsx_rm(struct emu_vcpu *v, const struct decoded_insn *d)
{
    const uint8_t *p = tlb_hit(v, d, 1, d->ops[1].size, EMU_ACC_READ);
    if (__builtin_expect(!p, 0))
        return alu_generic(v, d); /* the generic MOVZX/MOVSX: same redo from the start */
    gpr_set(v, d->ops[0].reg, d->ops[0].size, (uint64_t)emu_sext(load(p, d->ops[1].size), d->ops[1].size));
    return EMU_H_NEXT;
}

/* ---- selection ---- */

static bool is_gpr(const struct decoder_operand *o)
{
    return o->kind == DOPND_REG && o->reg_class == DREG_GPR;
}

static bool simple_mem64(const struct decoded_insn *d, const struct decoder_operand *o)
{
    return o->kind == DOPND_MEM && d->mode == DECODER_MODE_64 && d->addrsize == 8 &&
           o->seg != EMU_FS && o->seg != EMU_GS && o->size >= 1 && o->size <= 8 &&
           (o->size & (o->size - 1)) == 0;
}

struct alu_forms {
    uint16_t op;
    emu_handler_fn *rr, *ri, *rm, *mr, *mi, *rr8, *ri8, *rr4, *ri4, *ri1;
};

#define AF(name, dop)                                                                      \
    {dop, f_##name##_rr, f_##name##_ri, f_##name##_rm, f_##name##_mr, f_##name##_mi,         \
     f_##name##_rr8, f_##name##_ri8, f_##name##_rr4, f_##name##_ri4, f_##name##_ri1}
static const struct alu_forms alu_forms[] = {
    AF(add, DOP_ADD), AF(or, DOP_OR), AF(and, DOP_AND), AF(sub, DOP_SUB), AF(xor, DOP_XOR),
    AF(cmp, DOP_CMP), AF(test, DOP_TEST), AF(adc, DOP_ADC), AF(sbb, DOP_SBB),
};
#undef AF

emu_handler_fn *emu_fast_handler(const struct decoded_insn *d, emu_handler_fn *generic)
{
    if (d->status != DECODER_OK || (d->prefixes & DPFX_LOCK))
        return generic;
    const struct decoder_operand *o0 = &d->ops[0], *o1 = &d->ops[1];
    for (size_t i = 0; i < sizeof alu_forms / sizeof alu_forms[0]; i++) {
        if (d->op != alu_forms[i].op)
            continue;
        if (d->nops == 2 && is_gpr(o0) && is_gpr(o1) && o0->size == o1->size)
            return o0->size == 8 ? alu_forms[i].rr8 : o0->size == 4 ? alu_forms[i].rr4 : alu_forms[i].rr;
        if (d->nops == 2 && is_gpr(o0) && o1->kind == DOPND_IMM)
            return o0->size == 8 ? alu_forms[i].ri8 : o0->size == 4 ? alu_forms[i].ri4
                   : o0->size == 1 ? alu_forms[i].ri1 : alu_forms[i].ri;
        if (d->nops == 2 && is_gpr(o0) && simple_mem64(d, o1) && o0->size == o1->size)
            return alu_forms[i].rm;
        if (d->nops == 2 && simple_mem64(d, o0) && is_gpr(o1) && o0->size == o1->size)
            return alu_forms[i].mr;
        if (d->nops == 2 && simple_mem64(d, o0) && o1->kind == DOPND_IMM)
            return alu_forms[i].mi;
        return generic;
    }
    if (d->mode == DECODER_MODE_64 && d->opsize == 8 && d->nops == 1 && o0->kind == DOPND_REL) {
        if (d->op >= DOP_JO && d->op <= DOP_JG && generic == emu_handler_for(DOP_JO))
            return jcc_forms[d->cond & 15];
        if (d->op == DOP_JMP)
            return f_jmp_rel;
        if (d->op == DOP_CALL)
            return f_call_rel;
    }
    if (d->mode == DECODER_MODE_64 && d->opsize == 8) {
        if (d->op == DOP_RET && d->nops == 0)
            return f_ret;
        if ((d->op == DOP_PUSH || d->op == DOP_POP) && d->nops == 1 && is_gpr(o0) && o0->size == 8)
            return d->op == DOP_PUSH ? f_push_r : f_pop_r;
    }
    if (d->op >= DOP_CMOVO && d->op <= DOP_CMOVG && generic == emu_handler_for(DOP_CMOVO) &&
        d->nops == 2 && is_gpr(o0) && is_gpr(o1) && o0->size == o1->size && o0->size >= 2)
        return cmov_forms[d->cond & 15];
    if (d->op >= DOP_SETO && d->op <= DOP_SETG && generic == emu_handler_for(DOP_SETO) &&
        d->nops == 1 && is_gpr(o0) && o0->size == 1)
        return setcc_forms[d->cond & 15];
    switch (d->op) {
    case DOP_MOVZX:
    case DOP_MOVSX:
    case DOP_MOVSXD:
        if (d->nops != 2 || !is_gpr(o0) || o1->size > o0->size)
            break;
        if (is_gpr(o1))
            return d->op == DOP_MOVZX ? f_movzx_rr : f_movsx_rr;
        if (simple_mem64(d, o1))
            return d->op == DOP_MOVZX ? f_movzx_rm : f_movsx_rm;
        break;
    case DOP_LEA:
        if (d->nops == 2 && is_gpr(o0) && o1->kind == DOPND_MEM && !(d->flags & DFLAG_VSIB))
            return f_lea;
        break;
    case DOP_INC:
    case DOP_DEC:
        if (d->nops == 1 && is_gpr(o0))
            return d->op == DOP_INC ? (o0->size == 8 ? f_inc_r8 : o0->size == 4 ? f_inc_r4 : f_inc_r)
                                    : (o0->size == 8 ? f_dec_r8 : o0->size == 4 ? f_dec_r4 : f_dec_r);
        break;
    case DOP_MOV:
        if (d->nops != 2)
            break;
        if (is_gpr(o0) && is_gpr(o1) && o0->size == o1->size)
            return f_mov_rr;
        if (is_gpr(o0) && o1->kind == DOPND_IMM)
            return f_mov_ri;
        if (is_gpr(o0) && simple_mem64(d, o1) && o0->size == o1->size)
            return o0->size == 8 ? f_mov_rm8 : o0->size == 4 ? f_mov_rm4 : f_mov_rm;
        if (simple_mem64(d, o0) && is_gpr(o1) && o0->size == o1->size)
            return o0->size == 8 ? f_mov_mr8 : o0->size == 4 ? f_mov_mr4 : f_mov_mr;
        if (simple_mem64(d, o0) && o1->kind == DOPND_IMM)
            return f_mov_mi;
        break;
    case DOP_SHL:
    case DOP_SAL:
    case DOP_SHR:
    case DOP_SAR:
        if (d->nops == 2 && is_gpr(o0) && o1->kind == DOPND_IMM)
        {
            unsigned z = o0->size == 8 ? 1 : o0->size == 4 ? 2 : 0;
            static emu_handler_fn *const shr[] = {f_shr_ri, f_shr_ri8, f_shr_ri4};
            static emu_handler_fn *const sar[] = {f_sar_ri, f_sar_ri8, f_sar_ri4};
            static emu_handler_fn *const shl[] = {f_shl_ri, f_shl_ri8, f_shl_ri4};
            return d->op == DOP_SHR ? shr[z] : d->op == DOP_SAR ? sar[z] : shl[z];
        }
        break;
    case DOP_ROL:
    case DOP_ROR:
        if (d->nops == 2 && is_gpr(o0) && o1->kind == DOPND_IMM)
            return d->op == DOP_ROL ? f_rol_ri : f_ror_ri;
        break;
    case DOP_IMUL:
        if (d->nops == 2 && is_gpr(o0) && is_gpr(o1) && o0->size == o1->size)
            return o0->size == 8 ? f_imul_rr8 : f_imul_rr;
        if (d->nops == 3 && is_gpr(o0) && is_gpr(o1) && d->ops[2].kind == DOPND_IMM &&
            o0->size == o1->size)
            return o0->size == 8 ? f_imul_rri8 : f_imul_rri;
        break;
    default:
        break;
    }
    return generic;
}
