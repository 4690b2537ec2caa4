/* FXSAVE/XSAVE image layout (emu/xsave.h), checked against the host CPU's own
 * FXSAVE64/XSAVE64 of the same state, plus the XRSTOR/XSETBV/KVM rules. */
#include <check.h>
#include "tests/check_main.h"
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "emu/simd.h"
#include "emu/xsave.h"

static uint64_t rs = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static bool host_is_amd(void)
{
    uint32_t a = 0, b, c, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
    return b == 0x68747541u; /* "Auth"enticAMD */
}

static void random_fpu(struct emu_fpu *f)
{
    emu_fpu_init(f);
    f->fcw = (uint16_t)((rnd() & 0x1f3f) | 0x40); /* reserved bits 6,13-15 as hardware keeps them */
    f->fsw = (uint16_t)rnd() & 0x7f7f;
    if (f->fsw & ~f->fcw & 0x3f) /* ES and B follow the unmasked pending exceptions */
        f->fsw |= 0x8080;
    f->ftw = (uint8_t)rnd();
    f->fop = (uint16_t)(rnd() & 0x7ff);
    /* canonical 48-bit pointers: AMD sign-extends FIP/FDP from bit 47 on FXRSTOR/XRSTOR */
    f->fip = (uint64_t)((int64_t)(rnd() << 16) >> 16);
    f->fdp = (uint64_t)((int64_t)(rnd() << 16) >> 16);
    /* AMD's FXRSTOR/XRSTOR load FOP/FIP/FDP only when FSW.ES=1 and zero them otherwise (APM
     * vol. 4, FXRSTOR), so on an AMD host the round trip through the CPU keeps them only then;
     * the image layout is what this test checks, so give such a host the state it can hold. */
    if (host_is_amd() && !(f->fsw & 0x80))
        f->fop = 0, f->fip = 0, f->fdp = 0;
    f->mxcsr = (uint32_t)(rnd() & 0xffc0) | 0x1f80; /* flags clear: the host must not trap */
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 10; j++)
            f->st[i][j] = (uint8_t)rnd();
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            f->xmm[i][j] = (uint8_t)rnd();
            f->ymmh[i][j] = (uint8_t)rnd();
        }
}

static uint64_t host_xcr0(void)
{
    uint32_t a, d;
    __asm__ volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
    return (uint64_t)d << 32 | a;
}

START_TEST(fxsave_image_matches_host)
{
    for (int it = 0; it < 200; it++) {
        struct emu_fpu f;
        random_fpu(&f);
        static uint8_t mine[512] __attribute__((aligned(64))), host[512] __attribute__((aligned(64))),
            saved[512] __attribute__((aligned(64)));
        memset(mine, 0, sizeof(mine));
        emu_fxsave_image(&f, mine, true, 16);
        /* let the host CPU load our image and store it back */
        __asm__ volatile("fxsave64 %0\n\tfxrstor64 %1\n\tfxsave64 %2\n\tfxrstor64 %0"
                         : "+m"(saved) : "m"(mine), "m"(host) : "memory");
        ck_assert_int_eq(memcmp(mine, host, 28), 0); /* x87 control/status, FIP/FDP, MXCSR */
        ck_assert_int_eq(memcmp(mine + 32, host + 32, 416 - 32), 0); /* ST0-7, XMM0-15 */
        /* and back into an emu_fpu */
        struct emu_fpu g;
        emu_fpu_init(&g);
        ck_assert(emu_fxrstor_image(&g, host, true, 16));
        ck_assert_int_eq(memcmp(&g, &f, offsetof(struct emu_fpu, ymmh)), 0);
    }
    /* FSW.ES/B are recomputed on load, whatever the image says */
    {
        struct emu_fpu e;
        emu_fpu_init(&e);
        uint8_t im[512] = { 0 };
        emu_fxsave_image(&e, im, true, 16);
        im[2] = 0x81; /* IE pending, ES set, but IE masked in FCW 37F */
        ck_assert(emu_fxrstor_image(&e, im, true, 16));
        ck_assert_uint_eq(e.fsw, 0x0001);
        im[0] = 0x7e; /* unmask IE */
        ck_assert(emu_fxrstor_image(&e, im, true, 16));
        ck_assert_uint_eq(e.fsw, 0x8081);
    }
    /* 32-bit layout: FIP at 8 (32-bit), FCS at 12, FDP at 16 */
    struct emu_fpu f;
    emu_fpu_init(&f);
    f.fip = 0x1122334455667788ull;
    f.fdp = 0x99aabbccddeeff00ull;
    uint8_t img[512] = { 0 };
    emu_fxsave_image(&f, img, false, 8);
    uint32_t fip, fdp;
    memcpy(&fip, img + 8, 4);
    memcpy(&fdp, img + 16, 4);
    ck_assert_uint_eq(fip, 0x55667788u);
    ck_assert_uint_eq(fdp, 0xddeeff00u);
    ck_assert_uint_eq(emu_fxsave_len(8), 288);
    /* reserved MXCSR bit: FXRSTOR refuses and leaves the state alone */
    uint32_t bad = 0x10000 | 0x1f80;
    memcpy(img + 24, &bad, 4);
    struct emu_fpu before = f;
    ck_assert(!emu_fxrstor_image(&f, img, false, 8));
    ck_assert_int_eq(memcmp(&before, &f, sizeof(f)), 0);
}
END_TEST

START_TEST(xsave_image_matches_host)
{
    uint64_t rfbm = host_xcr0() & EMU_XFEATURES_IMPL;
    ck_assert_uint_eq(rfbm & 3, 3);
    for (int it = 0; it < 200; it++) {
        struct emu_fpu f;
        random_fpu(&f);
        if (!(rfbm & EMU_XFEATURE_YMM))
            memset(f.ymmh, 0, sizeof(f.ymmh));
        static uint8_t mine[4096] __attribute__((aligned(64))), host[4096] __attribute__((aligned(64))),
            saved[4096] __attribute__((aligned(64)));
        memset(mine, 0, sizeof(mine));
        memset(host, 0, sizeof(host));
        emu_xsave_image(&f, mine, rfbm, false);
        uint64_t bv;
        memcpy(&bv, mine + 512, 8);
        ck_assert_uint_eq(bv, rfbm);
        uint32_t lo = (uint32_t)rfbm, hi = (uint32_t)(rfbm >> 32);
        __asm__ volatile("xsave64 %0\n\txrstor64 %1\n\txsave64 %2\n\txrstor64 %0"
                         : "+m"(saved) : "m"(mine), "m"(host), "a"(lo), "d"(hi) : "memory");
        ck_assert_int_eq(memcmp(mine, host, 28), 0);
        ck_assert_int_eq(memcmp(mine + 32, host + 32, 416 - 32), 0);
        if (rfbm & EMU_XFEATURE_YMM)
            ck_assert_int_eq(memcmp(mine + 576, host + 576, 256), 0);
        struct emu_fpu g;
        emu_fpu_init(&g);
        ck_assert(emu_xrstor_image(&g, host, rfbm, rfbm));
        ck_assert_int_eq(memcmp(&g, &f, sizeof(f)), 0);
    }
}
END_TEST

START_TEST(xrstor_rules)
{
    struct emu_fpu f, g;
    random_fpu(&f);
    uint8_t img[1024] = { 0 };
    emu_xsave_image(&f, img, 7, false);
    /* XSTATE_BV[2] clear: AVX goes to its init state, the rest is loaded */
    uint64_t bv = 3;
    memcpy(img + 512, &bv, 8);
    g = f;
    ck_assert(emu_xrstor_image(&g, img, 7, 7));
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            ck_assert_uint_eq(g.ymmh[i][j], 0);
    ck_assert_int_eq(memcmp(g.xmm, f.xmm, sizeof(f.xmm)), 0);
    /* x87 init: FCW 37F, empty tags */
    bv = 6;
    memcpy(img + 512, &bv, 8);
    ck_assert(emu_xrstor_image(&g, img, 7, 7));
    ck_assert_uint_eq(g.fcw, 0x37f);
    ck_assert_uint_eq(g.ftw, 0);
    /* RFBM excludes x87: x87 untouched even though XSTATE_BV[0] = 0 */
    g.fcw = 0x123;
    ck_assert(emu_xrstor_image(&g, img, 6, 7));
    ck_assert_uint_eq(g.fcw, 0x123);
    /* XSTATE_BV bit not in XCR0 -> #GP */
    bv = 7;
    memcpy(img + 512, &bv, 8);
    ck_assert(!emu_xrstor_image(&g, img, 3, 3));
    /* standard form with nonzero XCOMP_BV-area bytes -> #GP */
    img[512 + 12] = 1;
    ck_assert(!emu_xrstor_image(&g, img, 7, 7));
    img[512 + 12] = 0;
    /* compacted form: XSTATE_BV must be a subset of XCOMP_BV */
    uint64_t comp = (1ull << 63) | 3;
    memcpy(img + 520, &comp, 8);
    ck_assert(!emu_xrstor_image(&g, img, 7, 7));
    bv = 3;
    memcpy(img + 512, &bv, 8);
    ck_assert(emu_xrstor_image(&g, img, 7, 7));
    /* reserved MXCSR bits -> #GP, state unchanged */
    struct emu_fpu before = g;
    uint32_t m = 0xffffffff;
    memcpy(img + 24, &m, 4);
    ck_assert(!emu_xrstor_image(&g, img, 7, 7));
    ck_assert_int_eq(memcmp(&before, &g, sizeof(g)), 0);
    /* XSAVEC writes XCOMP_BV = RFBM | bit 63 */
    uint8_t c[1024];
    memset(c, 0xaa, sizeof(c));
    emu_xsave_image(&f, c, 5, true);
    memcpy(&comp, c + 520, 8);
    ck_assert_uint_eq(comp, (1ull << 63) | 5);
    ck_assert_uint_eq(c[540], 0);
}
END_TEST

START_TEST(xcr0_rules)
{
    ck_assert(emu_xcr0_valid(1, 7));
    ck_assert(emu_xcr0_valid(3, 7));
    ck_assert(emu_xcr0_valid(7, 7));
    ck_assert(!emu_xcr0_valid(0, 7));  /* x87 bit mandatory */
    ck_assert(!emu_xcr0_valid(2, 7));
    ck_assert(!emu_xcr0_valid(5, 7));  /* AVX without SSE */
    ck_assert(!emu_xcr0_valid(7, 3));  /* not supported by the guest CPUID */
    ck_assert(!emu_xcr0_valid(0x203, 0x203 & EMU_XFEATURES_IMPL));
    ck_assert(emu_xcr0_valid(1, 0));   /* x87 alone even without leaf 0DH */
}
END_TEST

START_TEST(kvm_region_roundtrip)
{
    struct cpu a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    random_fpu(&a.fpu);
    static uint8_t region[EMU_KVM_XSAVE_SIZE];
    emu_xsave_to_kvm(&a, region, 7);
    uint64_t bv;
    memcpy(&bv, region + 512, 8);
    ck_assert_uint_eq(bv, 7);
    ck_assert_int_eq(emu_xsave_from_kvm(&b, region, 7), 0);
    ck_assert_int_eq(memcmp(&a.fpu, &b.fpu, offsetof(struct emu_fpu, mxcsr_mask)), 0);
    ck_assert_int_eq(memcmp(a.fpu.st, b.fpu.st, sizeof(a.fpu.st) + sizeof(a.fpu.xmm) + sizeof(a.fpu.ymmh)), 0);
    /* guest without AVX: GET omits it, SET with the AVX bit is -EINVAL */
    emu_xsave_to_kvm(&a, region, 3);
    memcpy(&bv, region + 512, 8);
    ck_assert_uint_eq(bv, 3);
    bv = 7;
    memcpy(region + 512, &bv, 8);
    ck_assert_int_eq(emu_xsave_from_kvm(&b, region, 3), -EINVAL);
    /* bad MXCSR is -EINVAL */
    emu_xsave_to_kvm(&a, region, 7);
    uint32_t m = 0x40000;
    memcpy(region + 24, &m, 4);
    ck_assert_int_eq(emu_xsave_from_kvm(&b, region, 7), -EINVAL);
    /* XSTATE_BV = 0: everything to init */
    memset(region, 0, sizeof(region));
    ck_assert_int_eq(emu_xsave_from_kvm(&b, region, 7), 0);
    ck_assert_uint_eq(b.fpu.fcw, 0x37f);
    ck_assert_uint_eq(b.fpu.mxcsr, 0x1f80);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("simd_xsave");
    TCase *tc = tcase_create("xsave");
    tcase_add_test(tc, fxsave_image_matches_host);
    tcase_add_test(tc, xsave_image_matches_host);
    tcase_add_test(tc, xrstor_rules);
    tcase_add_test(tc, xcr0_rules);
    tcase_add_test(tc, kvm_region_roundtrip);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
