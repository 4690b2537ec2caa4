/* emu/: FXSAVE/XSAVE memory images and KVM_GET/SET_XSAVE conversion.
 * Layouts: SDM vol.1 table 10-2 (FXSAVE, 64-bit and legacy forms) and
 * section 13.4 (XSAVE area: legacy region, header at 512, AVX at 576).
 *
 * emu does not track the INIT optimisation: every enabled component counts as
 * "in use" (XINUSE = all ones), which SDM 13.6 permits; XSAVEOPT therefore
 * behaves like XSAVE. */
#include "emu/xsave.h"

#include <errno.h>
#include <string.h>

#include "emu/simd.h"

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

void emu_fpu_init(struct emu_fpu *f)
{
    memset(f, 0, sizeof(*f));
    f->fcw = 0x37f;
    f->mxcsr = SIMD_MXCSR_DEFAULT;
    f->mxcsr_mask = SIMD_MXCSR_MASK;
}

/* ---- the pieces of the legacy region, per state component ---- */

static void x87_save(const struct emu_fpu *f, uint8_t *img, bool rex_w)
{
    put16(img + 0, f->fcw);
    put16(img + 2, f->fsw);
    img[4] = f->ftw;
    img[5] = 0;
    put16(img + 6, f->fop & 0x7ff);
    if (rex_w) {
        put64(img + 8, f->fip);
        put64(img + 16, f->fdp);
    } else { /* FCS/FDS are not kept: stored as 0 */
        put32(img + 8, (uint32_t)f->fip);
        put32(img + 12, 0);
        put32(img + 16, (uint32_t)f->fdp);
        put32(img + 20, 0);
    }
    for (int i = 0; i < 8; i++) {
        memcpy(img + 32 + 16 * i, f->st[i], 10);
        memset(img + 32 + 16 * i + 10, 0, 6);
    }
}

static void x87_load(struct emu_fpu *f, const uint8_t *img, bool rex_w)
{
    f->fcw = get16(img + 0);
    /* FSW.ES (bit 7) and B (bit 15) are not loaded but recomputed from the
     * unmasked pending exceptions, as the host CPU does on FXRSTOR/XRSTOR. */
    uint16_t fsw = get16(img + 2) & 0x7f7f;
    if (fsw & ~f->fcw & 0x3f)
        fsw |= 0x8080;
    f->fsw = fsw;
    f->ftw = img[4];
    f->fop = get16(img + 6) & 0x7ff;
    f->fip = rex_w ? get64(img + 8) : get32(img + 8);
    f->fdp = rex_w ? get64(img + 16) : get32(img + 16);
    for (int i = 0; i < 8; i++) {
        memset(f->st[i], 0, 16);
        memcpy(f->st[i], img + 32 + 16 * i, 10);
    }
}

/* FNINIT-like init state of component 0 (SDM 13.6: FCW 37FH, FTW empty). */
static void x87_init(struct emu_fpu *f)
{
    f->fcw = 0x37f;
    f->fsw = 0;
    f->ftw = 0;
    f->fop = 0;
    f->fip = f->fdp = 0;
    memset(f->st, 0, sizeof(f->st));
}

static void mxcsr_save(const struct emu_fpu *f, uint8_t *img)
{
    put32(img + 24, f->mxcsr);
    put32(img + 28, SIMD_MXCSR_MASK);
}

static bool mxcsr_ok(uint32_t m)
{
    return (m & ~SIMD_MXCSR_MASK) == 0;
}

void emu_fxsave_image(const struct emu_fpu *f, uint8_t img[EMU_FXSAVE_SIZE], bool rex_w,
                      unsigned nxmm)
{
    x87_save(f, img, rex_w);
    mxcsr_save(f, img);
    memcpy(img + 160, f->xmm, 16 * nxmm);
    /* FXSAVE does not write bytes 160+16*nxmm..511: callers store only the
     * first emu_fxsave_len(nxmm) bytes. */
}

bool emu_fxrstor_image(struct emu_fpu *f, const uint8_t img[EMU_FXSAVE_SIZE], bool rex_w,
                       unsigned nxmm)
{
    uint32_t m = get32(img + 24);
    if (!mxcsr_ok(m))
        return false;
    x87_load(f, img, rex_w);
    f->mxcsr = m;
    memcpy(f->xmm, img + 160, 16 * nxmm);
    return true;
}

/* ---- XSAVE / XRSTOR ---- */

void emu_xsave_image(const struct emu_fpu *f, uint8_t *img, uint64_t rfbm, bool compacted)
{
    uint8_t *hdr = img + EMU_XSAVE_HDR_OFF;
    if (rfbm & EMU_XFEATURE_X87)
        x87_save(f, img, true);
    if (rfbm & (EMU_XFEATURE_SSE | EMU_XFEATURE_YMM)) /* SDM 13.7: MXCSR with either */
        mxcsr_save(f, img);
    if (rfbm & EMU_XFEATURE_SSE)
        memcpy(img + 160, f->xmm, sizeof(f->xmm));
    if (rfbm & EMU_XFEATURE_YMM) /* first extended component: 576 in both formats */
        memcpy(img + EMU_XSAVE_YMM_OFF, f->ymmh, sizeof(f->ymmh));
    uint64_t inuse = rfbm & EMU_XFEATURES_IMPL; /* XINUSE treated as all ones */
    if (compacted) {
        /* XSAVEC: XSTATE_BV = XINUSE & RFBM, XCOMP_BV = RFBM | bit 63, rest of header 0 */
        memset(hdr, 0, 64);
        put64(hdr, inuse);
        put64(hdr + 8, (rfbm & EMU_XFEATURES_IMPL) | (1ull << 63));
    } else {
        /* XSAVE: XSTATE_BV[i] = XINUSE[i] for i in RFBM; other bits and header bytes kept */
        uint64_t bv = get64(hdr);
        put64(hdr, (bv & ~rfbm) | inuse);
    }
}

bool emu_xrstor_image(struct emu_fpu *f, const uint8_t *img, uint64_t rfbm, uint64_t xcr0)
{
    const uint8_t *hdr = img + EMU_XSAVE_HDR_OFF;
    uint64_t xstate_bv = get64(hdr), xcomp_bv = get64(hdr + 8);
    bool compacted = xcomp_bv >> 63;
    /* SDM 13.8 / vol.2 XRSTOR #GP conditions on the header */
    if (compacted) {
        uint64_t comp = xcomp_bv & ~(1ull << 63);
        if (comp & ~xcr0)
            return false;
        if (xstate_bv & ~comp)
            return false;
        for (int i = 16; i < 64; i++)
            if (hdr[i])
                return false;
    } else {
        if (xstate_bv & ~xcr0)
            return false;
        for (int i = 8; i < 24; i++)
            if (hdr[i])
                return false;
    }
    bool load_mxcsr = (rfbm & (EMU_XFEATURE_SSE | EMU_XFEATURE_YMM)) != 0;
    uint32_t m = get32(img + 24);
    if (compacted && !(xstate_bv & (EMU_XFEATURE_SSE | EMU_XFEATURE_YMM)))
        m = SIMD_MXCSR_DEFAULT; /* compacted form initialises MXCSR with both components */
    if (load_mxcsr && !mxcsr_ok(m))
        return false;

    if (rfbm & EMU_XFEATURE_X87) {
        if (xstate_bv & EMU_XFEATURE_X87)
            x87_load(f, img, true);
        else
            x87_init(f);
    }
    if (load_mxcsr)
        f->mxcsr = m;
    if (rfbm & EMU_XFEATURE_SSE) {
        if (xstate_bv & EMU_XFEATURE_SSE)
            memcpy(f->xmm, img + 160, sizeof(f->xmm));
        else
            memset(f->xmm, 0, sizeof(f->xmm));
    }
    if (rfbm & EMU_XFEATURE_YMM) {
        if (xstate_bv & EMU_XFEATURE_YMM)
            memcpy(f->ymmh, img + EMU_XSAVE_YMM_OFF, sizeof(f->ymmh));
        else
            memset(f->ymmh, 0, sizeof(f->ymmh));
    }
    return true;
}

bool emu_xcr0_valid(uint64_t xcr0, uint64_t supported)
{
    if (!(xcr0 & EMU_XFEATURE_X87))
        return false;
    if ((xcr0 & EMU_XFEATURE_YMM) && !(xcr0 & EMU_XFEATURE_SSE))
        return false;
    return (xcr0 & ~(supported | EMU_XFEATURE_X87)) == 0;
}

/* ---- KVM uABI ---- */

void emu_xsave_to_kvm(const struct cpu *cpu, void *region, uint64_t supported)
{
    uint8_t *img = region;
    memset(img, 0, EMU_KVM_XSAVE_SIZE);
    uint64_t mask = (supported | EMU_XFEATURE_X87 | EMU_XFEATURE_SSE) & EMU_XFEATURES_IMPL;
    /* KVM reports every supported component's current value (standard format). */
    emu_xsave_image(&cpu->fpu, img, mask, false);
}

int emu_xsave_from_kvm(struct cpu *cpu, const void *region, uint64_t supported)
{
    const uint8_t *img = region;
    uint64_t allowed = (supported | EMU_XFEATURE_X87 | EMU_XFEATURE_SSE) & EMU_XFEATURES_IMPL;
    uint64_t xstate_bv = get64(img + EMU_XSAVE_HDR_OFF);
    if (xstate_bv & ~allowed)
        return -EINVAL;
    /* validate_user_xstate_header (fpu/xstate.c): standard format only (XCOMP_BV 0)
     * and the 48 reserved header bytes zero */
    if (get64(img + EMU_XSAVE_HDR_OFF + 8))
        return -EINVAL;
    for (unsigned i = 16; i < 64; i++)
        if (img[EMU_XSAVE_HDR_OFF + i])
            return -EINVAL;
    /* copy_uabi_to_xstate checks MXCSR against the mask when FP, SSE or YMM is in
     * XSTATE_BV; KVM takes it from the buffer with SSE or YMM */
    uint32_t m = get32(img + 24);
    bool has_mxcsr = xstate_bv & (EMU_XFEATURE_SSE | EMU_XFEATURE_YMM);
    if ((xstate_bv & (EMU_XFEATURE_X87 | EMU_XFEATURE_SSE | EMU_XFEATURE_YMM)) && !mxcsr_ok(m))
        return -EINVAL;
    struct emu_fpu *f = &cpu->fpu;
    if (xstate_bv & EMU_XFEATURE_X87)
        x87_load(f, img, true);
    else
        x87_init(f);
    f->mxcsr = has_mxcsr ? m : SIMD_MXCSR_DEFAULT;
    if (xstate_bv & EMU_XFEATURE_SSE)
        memcpy(f->xmm, img + 160, sizeof(f->xmm));
    else
        memset(f->xmm, 0, sizeof(f->xmm));
    if (xstate_bv & EMU_XFEATURE_YMM)
        memcpy(f->ymmh, img + EMU_XSAVE_YMM_OFF, sizeof(f->ymmh));
    else
        memset(f->ymmh, 0, sizeof(f->ymmh));
    return 0;
}
