/* emu/: packed-integer and bitwise semantics of SSE2/SSSE3/SSE4.1/SSE4.2 on
 * 128-bit values (SDM vol.2 instruction pages). AVX forms apply the same
 * functions per 128-bit lane. Pure functions: see emu/simd.h. */
#include "emu/simd.h"

#include <string.h>

/* ---------- saturation helpers ---------- */
static int8_t sat_s8(int v) { return v > 127 ? 127 : v < -128 ? -128 : (int8_t)v; }
static uint8_t sat_u8(int v) { return v > 255 ? 255 : v < 0 ? 0 : (uint8_t)v; }
static int16_t sat_s16(int32_t v) { return v > 32767 ? 32767 : v < -32768 ? -32768 : (int16_t)v; }
static uint16_t sat_u16(int32_t v) { return v > 65535 ? 65535 : v < 0 ? 0 : (uint16_t)v; }

/* ---------- add / sub ---------- */
void simd_paddb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->b[i] = (uint8_t)(a->b[i] + b->b[i]); }
void simd_paddw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = (uint16_t)(a->w[i] + b->w[i]); }
void simd_paddd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 4; i++) d->d[i] = a->d[i] + b->d[i]; }
void simd_paddq(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 2; i++) d->q[i] = a->q[i] + b->q[i]; }
void simd_psubb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->b[i] = (uint8_t)(a->b[i] - b->b[i]); }
void simd_psubw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = (uint16_t)(a->w[i] - b->w[i]); }
void simd_psubd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 4; i++) d->d[i] = a->d[i] - b->d[i]; }
void simd_psubq(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 2; i++) d->q[i] = a->q[i] - b->q[i]; }
void simd_paddsb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->sb[i] = sat_s8(a->sb[i] + b->sb[i]); }
void simd_paddsw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->sw[i] = sat_s16(a->sw[i] + b->sw[i]); }
void simd_paddusb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->b[i] = sat_u8(a->b[i] + b->b[i]); }
void simd_paddusw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = sat_u16(a->w[i] + b->w[i]); }
void simd_psubsb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->sb[i] = sat_s8(a->sb[i] - b->sb[i]); }
void simd_psubsw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->sw[i] = sat_s16(a->sw[i] - b->sw[i]); }
void simd_psubusb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->b[i] = sat_u8(a->b[i] - b->b[i]); }
void simd_psubusw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = sat_u16(a->w[i] - b->w[i]); }

/* ---------- multiply ---------- */
void simd_pmullw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = (uint16_t)(a->sw[i] * b->sw[i]); }
void simd_pmulhw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = (uint16_t)((uint32_t)(a->sw[i] * b->sw[i]) >> 16); }
void simd_pmulhuw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = (uint16_t)(((uint32_t)a->w[i] * b->w[i]) >> 16); }
void simd_pmulld(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 4; i++) d->d[i] = (uint32_t)((int64_t)a->sd[i] * b->sd[i]); }
void simd_pmuludq(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 2; i++) d->q[i] = (uint64_t)a->d[2 * i] * b->d[2 * i]; }
void simd_pmuldq(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 2; i++) d->sq[i] = (int64_t)a->sd[2 * i] * b->sd[2 * i]; }
void simd_pmaddwd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 4; i++) /* 0x8000*0x8000*2 wraps to 0x80000000, as hardware does */
        r.d[i] = (uint32_t)((int64_t)a->sw[2 * i] * b->sw[2 * i] +
                            (int64_t)a->sw[2 * i + 1] * b->sw[2 * i + 1]);
    *d = r;
}
void simd_pmaddubsw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 8; i++)
        r.sw[i] = sat_s16(a->b[2 * i] * b->sb[2 * i] + a->b[2 * i + 1] * b->sb[2 * i + 1]);
    *d = r;
}
void simd_pmulhrsw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = (uint16_t)((((a->sw[i] * b->sw[i]) >> 14) + 1) >> 1); }

/* ---------- average / min / max / sad ---------- */
void simd_pavgb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->b[i] = (uint8_t)((a->b[i] + b->b[i] + 1) >> 1); }
void simd_pavgw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = (uint16_t)((a->w[i] + b->w[i] + 1) >> 1); }
void simd_pminub(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->b[i] = a->b[i] < b->b[i] ? a->b[i] : b->b[i]; }
void simd_pmaxub(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->b[i] = a->b[i] > b->b[i] ? a->b[i] : b->b[i]; }
void simd_pminsb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->sb[i] = a->sb[i] < b->sb[i] ? a->sb[i] : b->sb[i]; }
void simd_pmaxsb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->sb[i] = a->sb[i] > b->sb[i] ? a->sb[i] : b->sb[i]; }
void simd_pminsw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->sw[i] = a->sw[i] < b->sw[i] ? a->sw[i] : b->sw[i]; }
void simd_pmaxsw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->sw[i] = a->sw[i] > b->sw[i] ? a->sw[i] : b->sw[i]; }
void simd_pminuw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = a->w[i] < b->w[i] ? a->w[i] : b->w[i]; }
void simd_pmaxuw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = a->w[i] > b->w[i] ? a->w[i] : b->w[i]; }
void simd_pminsd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 4; i++) d->sd[i] = a->sd[i] < b->sd[i] ? a->sd[i] : b->sd[i]; }
void simd_pmaxsd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 4; i++) d->sd[i] = a->sd[i] > b->sd[i] ? a->sd[i] : b->sd[i]; }
void simd_pminud(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 4; i++) d->d[i] = a->d[i] < b->d[i] ? a->d[i] : b->d[i]; }
void simd_pmaxud(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 4; i++) d->d[i] = a->d[i] > b->d[i] ? a->d[i] : b->d[i]; }
void simd_psadbw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int h = 0; h < 2; h++) {
        unsigned s = 0;
        for (int i = 0; i < 8; i++) {
            int x = a->b[8 * h + i] - b->b[8 * h + i];
            s += (unsigned)(x < 0 ? -x : x);
        }
        r.q[h] = s;
    }
    *d = r;
}

/* ---------- compare ---------- */
void simd_pcmpeqb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->b[i] = a->b[i] == b->b[i] ? 0xff : 0; }
void simd_pcmpeqw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = a->w[i] == b->w[i] ? 0xffff : 0; }
void simd_pcmpeqd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 4; i++) d->d[i] = a->d[i] == b->d[i] ? ~0u : 0; }
void simd_pcmpeqq(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 2; i++) d->q[i] = a->q[i] == b->q[i] ? ~0ull : 0; }
void simd_pcmpgtb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->b[i] = a->sb[i] > b->sb[i] ? 0xff : 0; }
void simd_pcmpgtw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = a->sw[i] > b->sw[i] ? 0xffff : 0; }
void simd_pcmpgtd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 4; i++) d->d[i] = a->sd[i] > b->sd[i] ? ~0u : 0; }
void simd_pcmpgtq(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 2; i++) d->q[i] = a->sq[i] > b->sq[i] ? ~0ull : 0; }

/* ---------- bitwise (also ANDPS/ANDPD/... which are bit-identical) ---------- */
void simd_pand(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 2; i++) d->q[i] = a->q[i] & b->q[i]; }
void simd_pandn(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 2; i++) d->q[i] = ~a->q[i] & b->q[i]; }
void simd_por(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 2; i++) d->q[i] = a->q[i] | b->q[i]; }
void simd_pxor(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 2; i++) d->q[i] = a->q[i] ^ b->q[i]; }

/* ---------- interleave / pack ---------- */
static void unpack(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned esz, bool high)
{
    simd_v128 r;
    unsigned n = 8 / esz, base = high ? 8 : 0;
    for (unsigned i = 0; i < n; i++) {
        memcpy(&r.b[2 * i * esz], &a->b[base + i * esz], esz);
        memcpy(&r.b[(2 * i + 1) * esz], &b->b[base + i * esz], esz);
    }
    *d = r;
}
void simd_punpcklbw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b) { unpack(d, a, b, 1, false); }
void simd_punpcklwd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b) { unpack(d, a, b, 2, false); }
void simd_punpckldq(simd_v128 *d, const simd_v128 *a, const simd_v128 *b) { unpack(d, a, b, 4, false); }
void simd_punpcklqdq(simd_v128 *d, const simd_v128 *a, const simd_v128 *b) { unpack(d, a, b, 8, false); }
void simd_punpckhbw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b) { unpack(d, a, b, 1, true); }
void simd_punpckhwd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b) { unpack(d, a, b, 2, true); }
void simd_punpckhdq(simd_v128 *d, const simd_v128 *a, const simd_v128 *b) { unpack(d, a, b, 4, true); }
void simd_punpckhqdq(simd_v128 *d, const simd_v128 *a, const simd_v128 *b) { unpack(d, a, b, 8, true); }

void simd_packsswb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 8; i++) {
        r.sb[i] = sat_s8(a->sw[i]);
        r.sb[8 + i] = sat_s8(b->sw[i]);
    }
    *d = r;
}
void simd_packuswb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 8; i++) {
        r.b[i] = sat_u8(a->sw[i]);
        r.b[8 + i] = sat_u8(b->sw[i]);
    }
    *d = r;
}
void simd_packssdw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 4; i++) {
        r.sw[i] = sat_s16(a->sd[i]);
        r.sw[4 + i] = sat_s16(b->sd[i]);
    }
    *d = r;
}
void simd_packusdw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 4; i++) {
        r.w[i] = sat_u16(a->sd[i]);
        r.w[4 + i] = sat_u16(b->sd[i]);
    }
    *d = r;
}

/* ---------- SSSE3 ---------- */
void simd_pshufb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 16; i++)
        r.b[i] = (b->b[i] & 0x80) ? 0 : a->b[b->b[i] & 15];
    *d = r;
}
void simd_phaddw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 4; i++) {
        r.w[i] = (uint16_t)(a->w[2 * i] + a->w[2 * i + 1]);
        r.w[4 + i] = (uint16_t)(b->w[2 * i] + b->w[2 * i + 1]);
    }
    *d = r;
}
void simd_phaddd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 2; i++) {
        r.d[i] = a->d[2 * i] + a->d[2 * i + 1];
        r.d[2 + i] = b->d[2 * i] + b->d[2 * i + 1];
    }
    *d = r;
}
void simd_phaddsw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 4; i++) {
        r.sw[i] = sat_s16(a->sw[2 * i] + a->sw[2 * i + 1]);
        r.sw[4 + i] = sat_s16(b->sw[2 * i] + b->sw[2 * i + 1]);
    }
    *d = r;
}
void simd_phsubw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 4; i++) {
        r.w[i] = (uint16_t)(a->w[2 * i] - a->w[2 * i + 1]);
        r.w[4 + i] = (uint16_t)(b->w[2 * i] - b->w[2 * i + 1]);
    }
    *d = r;
}
void simd_phsubd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 2; i++) {
        r.d[i] = a->d[2 * i] - a->d[2 * i + 1];
        r.d[2 + i] = b->d[2 * i] - b->d[2 * i + 1];
    }
    *d = r;
}
void simd_phsubsw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    simd_v128 r;
    for (int i = 0; i < 4; i++) {
        r.sw[i] = sat_s16(a->sw[2 * i] - a->sw[2 * i + 1]);
        r.sw[4 + i] = sat_s16(b->sw[2 * i] - b->sw[2 * i + 1]);
    }
    *d = r;
}
void simd_psignb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 16; i++) d->b[i] = b->sb[i] < 0 ? (uint8_t)-a->b[i] : b->sb[i] ? a->b[i] : 0; }
void simd_psignw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 8; i++) d->w[i] = b->sw[i] < 0 ? (uint16_t)-a->w[i] : b->sw[i] ? a->w[i] : 0; }
void simd_psignd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ for (int i = 0; i < 4; i++) d->d[i] = b->sd[i] < 0 ? -a->d[i] : b->sd[i] ? a->d[i] : 0; }
/* Unary forms: the source is b (ModRM r/m), a is ignored. */
void simd_pabsb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ (void)a; for (int i = 0; i < 16; i++) d->b[i] = b->sb[i] < 0 ? (uint8_t)-b->b[i] : b->b[i]; }
void simd_pabsw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ (void)a; for (int i = 0; i < 8; i++) d->w[i] = b->sw[i] < 0 ? (uint16_t)-b->w[i] : b->w[i]; }
void simd_pabsd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ (void)a; for (int i = 0; i < 4; i++) d->d[i] = b->sd[i] < 0 ? -b->d[i] : b->d[i]; }
void simd_phminposuw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{
    (void)a;
    unsigned idx = 0;
    for (unsigned i = 1; i < 8; i++)
        if (b->w[i] < b->w[idx])
            idx = i;
    uint16_t v = b->w[idx];
    memset(d, 0, sizeof(*d));
    d->w[0] = v;
    d->w[1] = (uint16_t)idx;
}
/* SSE3 duplicating moves (unary). */
void simd_movsldup(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ (void)a; simd_v128 r = { .d = { b->d[0], b->d[0], b->d[2], b->d[2] } }; *d = r; }
void simd_movshdup(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ (void)a; simd_v128 r = { .d = { b->d[1], b->d[1], b->d[3], b->d[3] } }; *d = r; }
void simd_movddup(simd_v128 *d, const simd_v128 *a, const simd_v128 *b)
{ (void)a; simd_v128 r = { .q = { b->q[0], b->q[0] } }; *d = r; }

const struct simd_binop_entry simd_int_binops[] = {
    { "paddb", simd_paddb }, { "paddw", simd_paddw }, { "paddd", simd_paddd }, { "paddq", simd_paddq },
    { "psubb", simd_psubb }, { "psubw", simd_psubw }, { "psubd", simd_psubd }, { "psubq", simd_psubq },
    { "paddsb", simd_paddsb }, { "paddsw", simd_paddsw }, { "paddusb", simd_paddusb }, { "paddusw", simd_paddusw },
    { "psubsb", simd_psubsb }, { "psubsw", simd_psubsw }, { "psubusb", simd_psubusb }, { "psubusw", simd_psubusw },
    { "pmullw", simd_pmullw }, { "pmulhw", simd_pmulhw }, { "pmulhuw", simd_pmulhuw }, { "pmulld", simd_pmulld },
    { "pmuludq", simd_pmuludq }, { "pmuldq", simd_pmuldq }, { "pmaddwd", simd_pmaddwd },
    { "pmaddubsw", simd_pmaddubsw }, { "pmulhrsw", simd_pmulhrsw },
    { "pavgb", simd_pavgb }, { "pavgw", simd_pavgw }, { "psadbw", simd_psadbw },
    { "pminub", simd_pminub }, { "pmaxub", simd_pmaxub }, { "pminsb", simd_pminsb }, { "pmaxsb", simd_pmaxsb },
    { "pminsw", simd_pminsw }, { "pmaxsw", simd_pmaxsw }, { "pminuw", simd_pminuw }, { "pmaxuw", simd_pmaxuw },
    { "pminsd", simd_pminsd }, { "pmaxsd", simd_pmaxsd }, { "pminud", simd_pminud }, { "pmaxud", simd_pmaxud },
    { "pcmpeqb", simd_pcmpeqb }, { "pcmpeqw", simd_pcmpeqw }, { "pcmpeqd", simd_pcmpeqd }, { "pcmpeqq", simd_pcmpeqq },
    { "pcmpgtb", simd_pcmpgtb }, { "pcmpgtw", simd_pcmpgtw }, { "pcmpgtd", simd_pcmpgtd }, { "pcmpgtq", simd_pcmpgtq },
    { "pand", simd_pand }, { "pandn", simd_pandn }, { "por", simd_por }, { "pxor", simd_pxor },
    { "andps", simd_pand }, { "andnps", simd_pandn }, { "orps", simd_por }, { "xorps", simd_pxor },
    { "andpd", simd_pand }, { "andnpd", simd_pandn }, { "orpd", simd_por }, { "xorpd", simd_pxor },
    { "punpcklbw", simd_punpcklbw }, { "punpcklwd", simd_punpcklwd }, { "punpckldq", simd_punpckldq },
    { "punpcklqdq", simd_punpcklqdq }, { "punpckhbw", simd_punpckhbw }, { "punpckhwd", simd_punpckhwd },
    { "punpckhdq", simd_punpckhdq }, { "punpckhqdq", simd_punpckhqdq },
    { "unpcklps", simd_punpckldq }, { "unpckhps", simd_punpckhdq },
    { "unpcklpd", simd_punpcklqdq }, { "unpckhpd", simd_punpckhqdq },
    { "packsswb", simd_packsswb }, { "packuswb", simd_packuswb }, { "packssdw", simd_packssdw },
    { "packusdw", simd_packusdw },
    { "pshufb", simd_pshufb }, { "phaddw", simd_phaddw }, { "phaddd", simd_phaddd }, { "phaddsw", simd_phaddsw },
    { "phsubw", simd_phsubw }, { "phsubd", simd_phsubd }, { "phsubsw", simd_phsubsw },
    { "psignb", simd_psignb }, { "psignw", simd_psignw }, { "psignd", simd_psignd },
    { "pabsb", simd_pabsb }, { "pabsw", simd_pabsw }, { "pabsd", simd_pabsd }, { "phminposuw", simd_phminposuw },
    { "movsldup", simd_movsldup }, { "movshdup", simd_movshdup }, { "movddup", simd_movddup },
};
const unsigned simd_int_nbinops = sizeof(simd_int_binops) / sizeof(simd_int_binops[0]);

simd_binop_fn *simd_int_binop(const char *name)
{
    for (unsigned i = 0; i < simd_int_nbinops; i++)
        if (strcmp(simd_int_binops[i].name, name) == 0)
            return simd_int_binops[i].fn;
    return NULL;
}

/* ---------- shifts (SDM: counts above the element width give 0, or sign fill for SRA) ---------- */
void simd_shift(simd_v128 *d, const simd_v128 *a, uint64_t count, unsigned elem_bytes,
                enum simd_shift_kind kind)
{
    unsigned bits = elem_bytes * 8, n = 16 / elem_bytes;
    simd_v128 r;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = 0;
        memcpy(&v, &a->b[i * elem_bytes], elem_bytes);
        uint64_t sign = (v >> (bits - 1)) & 1;
        uint64_t out;
        if (kind == SIMD_SRA) {
            unsigned c = count > bits - 1 ? bits - 1 : (unsigned)count;
            uint64_t ext = sign ? ~0ull << (bits - 1) : 0; /* sign-extend to 64 */
            out = (uint64_t)((int64_t)(v | ext) >> c);
        } else if (count >= bits) {
            out = 0;
        } else {
            out = kind == SIMD_SLL ? v << count : v >> count;
        }
        memcpy(&r.b[i * elem_bytes], &out, elem_bytes);
    }
    *d = r;
}

void simd_pslldq(simd_v128 *d, const simd_v128 *a, unsigned imm)
{
    simd_v128 r = { .q = { 0, 0 } };
    if (imm < 16)
        memcpy(&r.b[imm], a->b, 16 - imm);
    *d = r;
}

void simd_psrldq(simd_v128 *d, const simd_v128 *a, unsigned imm)
{
    simd_v128 r = { .q = { 0, 0 } };
    if (imm < 16)
        memcpy(r.b, &a->b[imm], 16 - imm);
    *d = r;
}

/* ---------- shuffles / blends ---------- */
void simd_pshufd(simd_v128 *d, const simd_v128 *a, unsigned imm)
{
    simd_v128 r;
    for (int i = 0; i < 4; i++)
        r.d[i] = a->d[(imm >> (2 * i)) & 3];
    *d = r;
}

void simd_pshuflw(simd_v128 *d, const simd_v128 *a, unsigned imm)
{
    simd_v128 r = *a;
    for (int i = 0; i < 4; i++)
        r.w[i] = a->w[(imm >> (2 * i)) & 3];
    *d = r;
}

void simd_pshufhw(simd_v128 *d, const simd_v128 *a, unsigned imm)
{
    simd_v128 r = *a;
    for (int i = 0; i < 4; i++)
        r.w[4 + i] = a->w[4 + ((imm >> (2 * i)) & 3)];
    *d = r;
}

void simd_shufps(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm)
{
    simd_v128 r = { .d = { a->d[imm & 3], a->d[(imm >> 2) & 3], b->d[(imm >> 4) & 3],
                           b->d[(imm >> 6) & 3] } };
    *d = r;
}

void simd_shufpd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm)
{
    simd_v128 r = { .q = { a->q[imm & 1], b->q[(imm >> 1) & 1] } };
    *d = r;
}

/* PALIGNR: (a:b) >> imm*8 as a 256-bit value, low 128 bits kept. */
void simd_palignr(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm)
{
    uint8_t cat[48] = { 0 };
    memcpy(cat, b->b, 16);
    memcpy(cat + 16, a->b, 16);
    simd_v128 r;
    memcpy(r.b, cat + (imm > 32 ? 32 : imm), 16);
    *d = r;
}

void simd_pblendw(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm)
{ for (int i = 0; i < 8; i++) d->w[i] = (imm >> i) & 1 ? b->w[i] : a->w[i]; }
void simd_blendps(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm)
{ for (int i = 0; i < 4; i++) d->d[i] = (imm >> i) & 1 ? b->d[i] : a->d[i]; }
void simd_blendpd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, unsigned imm)
{ for (int i = 0; i < 2; i++) d->q[i] = (imm >> i) & 1 ? b->q[i] : a->q[i]; }
void simd_pblendvb(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, const simd_v128 *m)
{ for (int i = 0; i < 16; i++) d->b[i] = m->b[i] & 0x80 ? b->b[i] : a->b[i]; }
void simd_blendvps(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, const simd_v128 *m)
{ for (int i = 0; i < 4; i++) d->d[i] = m->d[i] >> 31 ? b->d[i] : a->d[i]; }
void simd_blendvpd(simd_v128 *d, const simd_v128 *a, const simd_v128 *b, const simd_v128 *m)
{ for (int i = 0; i < 2; i++) d->q[i] = m->q[i] >> 63 ? b->q[i] : a->q[i]; }

uint32_t simd_pmovmskb(const simd_v128 *a)
{
    uint32_t m = 0;
    for (int i = 0; i < 16; i++)
        m |= (uint32_t)(a->b[i] >> 7) << i;
    return m;
}

uint32_t simd_movmskps(const simd_v128 *a)
{
    uint32_t m = 0;
    for (int i = 0; i < 4; i++)
        m |= (a->d[i] >> 31) << i;
    return m;
}

uint32_t simd_movmskpd(const simd_v128 *a)
{
    return (uint32_t)((a->q[0] >> 63) | ((a->q[1] >> 63) << 1));
}

void simd_pinsr(simd_v128 *d, uint64_t value, unsigned elem_bytes, unsigned index)
{
    memcpy(&d->b[index * elem_bytes], &value, elem_bytes);
}

uint64_t simd_pextr(const simd_v128 *a, unsigned elem_bytes, unsigned index)
{
    uint64_t v = 0;
    memcpy(&v, &a->b[index * elem_bytes], elem_bytes);
    return v;
}

/* INSERTPS: imm[7:6] picks the source element (already resolved into src_elem by
 * the caller for the register form; memory form loads one dword), imm[5:4] the
 * destination slot, imm[3:0] zeroes. */
void simd_insertps(simd_v128 *d, const simd_v128 *a, uint32_t src_elem, unsigned imm)
{
    simd_v128 r = *a;
    r.d[(imm >> 4) & 3] = src_elem;
    for (int i = 0; i < 4; i++)
        if ((imm >> i) & 1)
            r.d[i] = 0;
    *d = r;
}

void simd_pmovx(simd_v128 *d, const simd_v128 *a, unsigned from, unsigned to, bool sign)
{
    simd_v128 r;
    unsigned n = 16 / to;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = 0;
        memcpy(&v, &a->b[i * from], from);
        if (sign && (v >> (from * 8 - 1)) & 1)
            v |= ~0ull << (from * 8);
        memcpy(&r.b[i * to], &v, to);
    }
    *d = r;
}

unsigned simd_ptest(const simd_v128 *a, const simd_v128 *b)
{
    bool zf = ((a->q[0] & b->q[0]) | (a->q[1] & b->q[1])) == 0;
    bool cf = ((~a->q[0] & b->q[0]) | (~a->q[1] & b->q[1])) == 0;
    return (zf ? 1u : 0u) | (cf ? 2u : 0u);
}

/* CRC-32C, bit-reflected polynomial 0x82F63B78 (SDM vol.2 CRC32). */
uint32_t simd_crc32(uint32_t crc, uint64_t data, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        crc ^= (uint8_t)(data >> (8 * i));
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return crc;
}
