/* emu/: SSE4.2 packed string compares PCMPESTRI/PCMPESTRM/PCMPISTRI/PCMPISTRM
 * (SDM vol.2 section 4.1 "Imm8 control byte operation for PCMPESTRI/..."). */
#include "emu/simd.h"

#include <string.h>

#include "emu/cpu.h"

static int64_t elem(const simd_v128 *v, unsigned fmt, unsigned i)
{
    switch (fmt) {
    case 0: return v->b[i];
    case 1: return v->w[i];
    case 2: return v->sb[i];
    default: return v->sw[i];
    }
}

/* Valid length: implicit = up to the first zero element; explicit = |len|
 * saturated to the element count (SDM 4.1.3). */
static unsigned valid_len(const simd_v128 *v, unsigned fmt, unsigned n, bool explicit_len,
                          int64_t len)
{
    if (explicit_len) {
        uint64_t m = len < 0 ? (uint64_t)0 - (uint64_t)len : (uint64_t)len;
        return m > n ? n : (unsigned)m;
    }
    for (unsigned i = 0; i < n; i++)
        if (elem(v, fmt, i) == 0)
            return i;
    return n;
}

void simd_pcmpstr(struct simd_str_result *r, const simd_v128 *a, const simd_v128 *b,
                  unsigned imm, bool explicit_len, int64_t la_in, int64_t lb_in)
{
    unsigned fmt = imm & 3, agg = (imm >> 2) & 3, pol = (imm >> 4) & 3;
    unsigned n = (fmt & 1) ? 8 : 16;
    unsigned la = valid_len(a, fmt, n, explicit_len, la_in);
    unsigned lb = valid_len(b, fmt, n, explicit_len, lb_in);
    uint32_t res1 = 0;

    for (unsigned j = 0; j < n; j++) {
        bool bit = false;
        switch (agg) {
        case 0: /* equal any: b[j] is one of the valid a[i] */
            for (unsigned i = 0; i < la && j < lb; i++)
                bit |= elem(a, fmt, i) == elem(b, fmt, j);
            break;
        case 1: /* ranges: a holds (low, high) pairs */
            for (unsigned i = 0; i + 1 < la && j < lb; i += 2) { /* both bounds valid */
                int64_t x = elem(b, fmt, j);
                bit |= x >= elem(a, fmt, i) && x <= elem(a, fmt, i + 1);
            }
            break;
        case 2: /* equal each: both invalid compare true, one invalid false */
            if (j >= la && j >= lb)
                bit = true;
            else if (j >= la || j >= lb)
                bit = false;
            else
                bit = elem(a, fmt, j) == elem(b, fmt, j);
            break;
        default: /* equal ordered: needle a found at b[j]; invalid needle tail matches */
            bit = true;
            for (unsigned i = 0; i + j < n && bit; i++) {
                if (i >= la)
                    break;
                if (j + i >= lb)
                    bit = false;
                else
                    bit = elem(a, fmt, i) == elem(b, fmt, j + i);
            }
            break;
        }
        res1 |= (uint32_t)bit << j;
    }

    uint32_t all = (1u << n) - 1, res2 = res1;
    if (pol == 1)
        res2 = ~res1 & all;
    else if (pol == 3)
        res2 = res1 ^ ((1u << lb) - 1); /* negate only the valid part of b */

    r->flags = (res2 ? EMU_FL_CF : 0) | (lb < n ? EMU_FL_ZF : 0) | (la < n ? EMU_FL_SF : 0) |
               ((res2 & 1) ? EMU_FL_OF : 0);
    if (!res2)
        r->index = n;
    else if (imm & 0x40)
        r->index = 31u - (unsigned)__builtin_clz(res2);
    else
        r->index = (unsigned)__builtin_ctz(res2);

    memset(&r->mask, 0, sizeof(r->mask));
    if (imm & 0x40) {
        for (unsigned j = 0; j < n; j++)
            if ((res2 >> j) & 1) {
                if (n == 16)
                    r->mask.b[j] = 0xff;
                else
                    r->mask.w[j] = 0xffff;
            }
    } else {
        r->mask.d[0] = res2;
    }
}
