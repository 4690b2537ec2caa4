/* emu/: lazy arithmetic flags (SDM vol.1 3.4.3.1, appendix A "EFLAGS cross-reference").
 * Arithmetic handlers record (op, size, result, operands) with emu_lf_set(); the six
 * status flags are computed only when something reads them. */
#include "emu/internal.h"

#define STATUS_MASK (EMU_FL_CF | EMU_FL_PF | EMU_FL_AF | EMU_FL_ZF | EMU_FL_SF | EMU_FL_OF)

static uint64_t lazy_status(const struct emu_lazy *lf)
{
    unsigned bits = lf->size * 8;
    uint64_t sign = 1ull << (bits - 1);
    uint64_t r = lf->res, a = lf->a, b = lf->b;
    uint64_t f = 0;
    bool cf = false, of = false;

    switch (lf->op) {
    case EMU_LF_ADD:
        cf = r < a;
        of = ((a ^ r) & (b ^ r) & sign) != 0;
        break;
    case EMU_LF_ADC:
        cf = lf->cf_in ? r <= a : r < a;
        of = ((a ^ r) & (b ^ r) & sign) != 0;
        break;
    case EMU_LF_SUB:
        cf = a < b;
        of = ((a ^ b) & (a ^ r) & sign) != 0;
        break;
    case EMU_LF_SBB:
        cf = lf->cf_in ? a <= b : a < b;
        of = ((a ^ b) & (a ^ r) & sign) != 0;
        break;
    case EMU_LF_LOGIC:
        break;
    case EMU_LF_INC: /* a = old value, b = 1; CF preserved */
        cf = lf->cf_in;
        of = r == sign;
        break;
    case EMU_LF_DEC:
        cf = lf->cf_in;
        of = r == sign - 1;
        break;
    case EMU_LF_NEG: /* a = 0, b = operand */
        cf = b != 0;
        of = r == sign;
        break;
    case EMU_LF_CO:
        cf = lf->cf_in & 1;
        of = (lf->cf_in >> 1) & 1;
        break;
    }
    if (cf)
        f |= EMU_FL_CF;
    if (of)
        f |= EMU_FL_OF;
    if (lf->op != EMU_LF_LOGIC && lf->op != EMU_LF_CO && ((a ^ b ^ r) & 0x10))
        f |= EMU_FL_AF;
    if (r == 0)
        f |= EMU_FL_ZF;
    if (r & sign)
        f |= EMU_FL_SF;
    if (emu_parity((uint8_t)r))
        f |= EMU_FL_PF;
    return f;
}

/* Fold the lazy state into cpu.rflags. */
static void materialize(struct emu_vcpu *v)
{
    if (v->lf.op == EMU_LF_NONE)
        return;
    v->cpu.rflags = (v->cpu.rflags & ~(uint64_t)STATUS_MASK) | lazy_status(&v->lf);
    v->lf.op = EMU_LF_NONE;
}

uint64_t emu_flags(struct emu_vcpu *v)
{
    materialize(v);
    return v->cpu.rflags | EMU_FL_FIXED1;
}

void emu_flags_set(struct emu_vcpu *v, uint64_t rflags)
{
    v->lf.op = EMU_LF_NONE;
    /* bits 3, 5, 15, 22-63 are reserved zero, bit 1 reads as one */
    v->cpu.rflags = (rflags & 0x3f7fd5ull) | EMU_FL_FIXED1;
}

void emu_flags_update(struct emu_vcpu *v, uint64_t mask, uint64_t values)
{
    materialize(v);
    v->cpu.rflags = (v->cpu.rflags & ~mask) | (values & mask);
}

bool emu_cf(struct emu_vcpu *v)
{
    switch (v->lf.op) {
    case EMU_LF_NONE:
        return v->cpu.rflags & EMU_FL_CF;
    case EMU_LF_ADD:
        return v->lf.res < v->lf.a;
    case EMU_LF_SUB:
        return v->lf.a < v->lf.b;
    case EMU_LF_LOGIC:
        return false;
    case EMU_LF_CO:
        return v->lf.cf_in & 1;
    default:
        return emu_flags(v) & EMU_FL_CF;
    }
}

bool emu_cond(struct emu_vcpu *v, unsigned cc)
{
    bool r;
    /* fast paths for the common compare-and-branch pattern */
    if (v->lf.op == EMU_LF_SUB || v->lf.op == EMU_LF_LOGIC) {
        uint64_t res = v->lf.res;
        switch (cc >> 1) {
        case 2: r = res == 0; return (cc & 1) ? !r : r;                       /* E/NE */
        case 1: if (v->lf.op == EMU_LF_SUB) { r = v->lf.a < v->lf.b; return (cc & 1) ? !r : r; } break;
        case 3: if (v->lf.op == EMU_LF_SUB) { r = v->lf.a <= v->lf.b; return (cc & 1) ? !r : r; } break;
        case 6:
        case 7:
            if (v->lf.op == EMU_LF_SUB) {
                int64_t a = emu_sext(v->lf.a, v->lf.size), b = emu_sext(v->lf.b, v->lf.size);
                r = (cc >> 1) == 6 ? a < b : a <= b;
                return (cc & 1) ? !r : r;
            }
            break;
        default: break;
        }
    }
    uint64_t f = emu_flags(v);
    bool cf = f & EMU_FL_CF, zf = f & EMU_FL_ZF, sf = f & EMU_FL_SF, of = f & EMU_FL_OF,
         pf = f & EMU_FL_PF;
    switch (cc >> 1) {
    case 0: r = of; break;
    case 1: r = cf; break;
    case 2: r = zf; break;
    case 3: r = cf || zf; break;
    case 4: r = sf; break;
    case 5: r = pf; break;
    case 6: r = sf != of; break;
    default: r = zf || sf != of; break;
    }
    return (cc & 1) ? !r : r;
}
