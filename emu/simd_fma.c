/* emu/: FMA3 (VFMADD/VFMSUB/VFNMADD/VFNMSUB/VFMADDSUB/VFMSUBADD 132/213/231) and
 * F16C (VCVTPH2PS/VCVTPS2PH). Like simd_fp.c these run the identical host
 * instruction with the guest MXCSR (exceptions masked) so fused rounding, NaN
 * selection, DAZ/FTZ and flags are exact; hosts without FMA/F16C report the
 * instruction as unimplemented instead of faulting. */
#include <string.h>

#include "emu/simd_insn.h"

typedef uint32_t fma_fn(simd_v128 d[2], const simd_v128 h[2], const simd_v128 w[2], uint32_t csr);

/* One host instruction "insn %ymm2/xmm2, %ymm1/xmm1, %ymm0/xmm0" on d (in/out), h, w. */
#define HOST_FMA(fname, insn, reg)                                                                 \
    static uint32_t fname(simd_v128 d[2], const simd_v128 h[2], const simd_v128 w[2], uint32_t csr)\
    {                                                                                              \
        uint32_t saved, in = (csr & 0xffc0u) | 0x1f80u, out;                                       \
        __asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[in]\n\t"                                  \
                         "vmovdqu %[d], %%ymm0\n\tvmovdqu %[h], %%ymm1\n\tvmovdqu %[w], %%ymm2\n\t" \
                         insn " %%" reg "2, %%" reg "1, %%" reg "0\n\t"                          \
                         "vmovdqu %%ymm0, %[d]\n\tstmxcsr %[out]\n\tldmxcsr %[sv]\n\tvzeroupper" \
                         : [sv] "=m"(saved), [out] "=m"(out), [d] "+m"(*(simd_v128(*)[2])d)        \
                         : [in] "m"(in), [h] "m"(*(const simd_v128(*)[2])h),                       \
                           [w] "m"(*(const simd_v128(*)[2])w)                                      \
                         : "xmm0", "xmm1", "xmm2");                                                \
        return out & SIMD_MXCSR_FLAGS;                                                             \
    }

HOST_FMA(h_vfmadd132ps, "vfmadd132ps", "ymm")
HOST_FMA(h_vfmadd132pd, "vfmadd132pd", "ymm")
HOST_FMA(h_vfmadd132ss, "vfmadd132ss", "xmm")
HOST_FMA(h_vfmadd132sd, "vfmadd132sd", "xmm")
HOST_FMA(h_vfmadd213ps, "vfmadd213ps", "ymm")
HOST_FMA(h_vfmadd213pd, "vfmadd213pd", "ymm")
HOST_FMA(h_vfmadd213ss, "vfmadd213ss", "xmm")
HOST_FMA(h_vfmadd213sd, "vfmadd213sd", "xmm")
HOST_FMA(h_vfmadd231ps, "vfmadd231ps", "ymm")
HOST_FMA(h_vfmadd231pd, "vfmadd231pd", "ymm")
HOST_FMA(h_vfmadd231ss, "vfmadd231ss", "xmm")
HOST_FMA(h_vfmadd231sd, "vfmadd231sd", "xmm")
HOST_FMA(h_vfmsub132ps, "vfmsub132ps", "ymm")
HOST_FMA(h_vfmsub132pd, "vfmsub132pd", "ymm")
HOST_FMA(h_vfmsub132ss, "vfmsub132ss", "xmm")
HOST_FMA(h_vfmsub132sd, "vfmsub132sd", "xmm")
HOST_FMA(h_vfmsub213ps, "vfmsub213ps", "ymm")
HOST_FMA(h_vfmsub213pd, "vfmsub213pd", "ymm")
HOST_FMA(h_vfmsub213ss, "vfmsub213ss", "xmm")
HOST_FMA(h_vfmsub213sd, "vfmsub213sd", "xmm")
HOST_FMA(h_vfmsub231ps, "vfmsub231ps", "ymm")
HOST_FMA(h_vfmsub231pd, "vfmsub231pd", "ymm")
HOST_FMA(h_vfmsub231ss, "vfmsub231ss", "xmm")
HOST_FMA(h_vfmsub231sd, "vfmsub231sd", "xmm")
HOST_FMA(h_vfnmadd132ps, "vfnmadd132ps", "ymm")
HOST_FMA(h_vfnmadd132pd, "vfnmadd132pd", "ymm")
HOST_FMA(h_vfnmadd132ss, "vfnmadd132ss", "xmm")
HOST_FMA(h_vfnmadd132sd, "vfnmadd132sd", "xmm")
HOST_FMA(h_vfnmadd213ps, "vfnmadd213ps", "ymm")
HOST_FMA(h_vfnmadd213pd, "vfnmadd213pd", "ymm")
HOST_FMA(h_vfnmadd213ss, "vfnmadd213ss", "xmm")
HOST_FMA(h_vfnmadd213sd, "vfnmadd213sd", "xmm")
HOST_FMA(h_vfnmadd231ps, "vfnmadd231ps", "ymm")
HOST_FMA(h_vfnmadd231pd, "vfnmadd231pd", "ymm")
HOST_FMA(h_vfnmadd231ss, "vfnmadd231ss", "xmm")
HOST_FMA(h_vfnmadd231sd, "vfnmadd231sd", "xmm")
HOST_FMA(h_vfnmsub132ps, "vfnmsub132ps", "ymm")
HOST_FMA(h_vfnmsub132pd, "vfnmsub132pd", "ymm")
HOST_FMA(h_vfnmsub132ss, "vfnmsub132ss", "xmm")
HOST_FMA(h_vfnmsub132sd, "vfnmsub132sd", "xmm")
HOST_FMA(h_vfnmsub213ps, "vfnmsub213ps", "ymm")
HOST_FMA(h_vfnmsub213pd, "vfnmsub213pd", "ymm")
HOST_FMA(h_vfnmsub213ss, "vfnmsub213ss", "xmm")
HOST_FMA(h_vfnmsub213sd, "vfnmsub213sd", "xmm")
HOST_FMA(h_vfnmsub231ps, "vfnmsub231ps", "ymm")
HOST_FMA(h_vfnmsub231pd, "vfnmsub231pd", "ymm")
HOST_FMA(h_vfnmsub231ss, "vfnmsub231ss", "xmm")
HOST_FMA(h_vfnmsub231sd, "vfnmsub231sd", "xmm")
HOST_FMA(h_vfmaddsub132ps, "vfmaddsub132ps", "ymm")
HOST_FMA(h_vfmaddsub132pd, "vfmaddsub132pd", "ymm")
HOST_FMA(h_vfmaddsub213ps, "vfmaddsub213ps", "ymm")
HOST_FMA(h_vfmaddsub213pd, "vfmaddsub213pd", "ymm")
HOST_FMA(h_vfmaddsub231ps, "vfmaddsub231ps", "ymm")
HOST_FMA(h_vfmaddsub231pd, "vfmaddsub231pd", "ymm")
HOST_FMA(h_vfmsubadd132ps, "vfmsubadd132ps", "ymm")
HOST_FMA(h_vfmsubadd132pd, "vfmsubadd132pd", "ymm")
HOST_FMA(h_vfmsubadd213ps, "vfmsubadd213ps", "ymm")
HOST_FMA(h_vfmsubadd213pd, "vfmsubadd213pd", "ymm")
HOST_FMA(h_vfmsubadd231ps, "vfmsubadd231ps", "ymm")
HOST_FMA(h_vfmsubadd231pd, "vfmsubadd231pd", "ymm")

static fma_fn *const fma_ops[DOP_COUNT] = {
    [DOP_VFMADD132PS] = h_vfmadd132ps,
    [DOP_VFMADD132PD] = h_vfmadd132pd,
    [DOP_VFMADD132SS] = h_vfmadd132ss,
    [DOP_VFMADD132SD] = h_vfmadd132sd,
    [DOP_VFMADD213PS] = h_vfmadd213ps,
    [DOP_VFMADD213PD] = h_vfmadd213pd,
    [DOP_VFMADD213SS] = h_vfmadd213ss,
    [DOP_VFMADD213SD] = h_vfmadd213sd,
    [DOP_VFMADD231PS] = h_vfmadd231ps,
    [DOP_VFMADD231PD] = h_vfmadd231pd,
    [DOP_VFMADD231SS] = h_vfmadd231ss,
    [DOP_VFMADD231SD] = h_vfmadd231sd,
    [DOP_VFMSUB132PS] = h_vfmsub132ps,
    [DOP_VFMSUB132PD] = h_vfmsub132pd,
    [DOP_VFMSUB132SS] = h_vfmsub132ss,
    [DOP_VFMSUB132SD] = h_vfmsub132sd,
    [DOP_VFMSUB213PS] = h_vfmsub213ps,
    [DOP_VFMSUB213PD] = h_vfmsub213pd,
    [DOP_VFMSUB213SS] = h_vfmsub213ss,
    [DOP_VFMSUB213SD] = h_vfmsub213sd,
    [DOP_VFMSUB231PS] = h_vfmsub231ps,
    [DOP_VFMSUB231PD] = h_vfmsub231pd,
    [DOP_VFMSUB231SS] = h_vfmsub231ss,
    [DOP_VFMSUB231SD] = h_vfmsub231sd,
    [DOP_VFNMADD132PS] = h_vfnmadd132ps,
    [DOP_VFNMADD132PD] = h_vfnmadd132pd,
    [DOP_VFNMADD132SS] = h_vfnmadd132ss,
    [DOP_VFNMADD132SD] = h_vfnmadd132sd,
    [DOP_VFNMADD213PS] = h_vfnmadd213ps,
    [DOP_VFNMADD213PD] = h_vfnmadd213pd,
    [DOP_VFNMADD213SS] = h_vfnmadd213ss,
    [DOP_VFNMADD213SD] = h_vfnmadd213sd,
    [DOP_VFNMADD231PS] = h_vfnmadd231ps,
    [DOP_VFNMADD231PD] = h_vfnmadd231pd,
    [DOP_VFNMADD231SS] = h_vfnmadd231ss,
    [DOP_VFNMADD231SD] = h_vfnmadd231sd,
    [DOP_VFNMSUB132PS] = h_vfnmsub132ps,
    [DOP_VFNMSUB132PD] = h_vfnmsub132pd,
    [DOP_VFNMSUB132SS] = h_vfnmsub132ss,
    [DOP_VFNMSUB132SD] = h_vfnmsub132sd,
    [DOP_VFNMSUB213PS] = h_vfnmsub213ps,
    [DOP_VFNMSUB213PD] = h_vfnmsub213pd,
    [DOP_VFNMSUB213SS] = h_vfnmsub213ss,
    [DOP_VFNMSUB213SD] = h_vfnmsub213sd,
    [DOP_VFNMSUB231PS] = h_vfnmsub231ps,
    [DOP_VFNMSUB231PD] = h_vfnmsub231pd,
    [DOP_VFNMSUB231SS] = h_vfnmsub231ss,
    [DOP_VFNMSUB231SD] = h_vfnmsub231sd,
    [DOP_VFMADDSUB132PS] = h_vfmaddsub132ps,
    [DOP_VFMADDSUB132PD] = h_vfmaddsub132pd,
    [DOP_VFMADDSUB213PS] = h_vfmaddsub213ps,
    [DOP_VFMADDSUB213PD] = h_vfmaddsub213pd,
    [DOP_VFMADDSUB231PS] = h_vfmaddsub231ps,
    [DOP_VFMADDSUB231PD] = h_vfmaddsub231pd,
    [DOP_VFMSUBADD132PS] = h_vfmsubadd132ps,
    [DOP_VFMSUBADD132PD] = h_vfmsubadd132pd,
    [DOP_VFMSUBADD213PS] = h_vfmsubadd213ps,
    [DOP_VFMSUBADD213PD] = h_vfmsubadd213pd,
    [DOP_VFMSUBADD231PS] = h_vfmsubadd231ps,
    [DOP_VFMSUBADD231PD] = h_vfmsubadd231pd,
};

static int h_fma(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    if (!__builtin_cpu_supports("fma"))
        emu_unimplemented(v);
    simd_v128 a[2], h[2], w[2];
    emu_simd_read(v, d, 0, a, false);
    emu_simd_read(v, d, 1, h, false);
    emu_simd_read(v, d, 2, w, false);
    if (!d->vex_l) { /* 128-bit: the host's upper lane computes on zeros (no flags) */
        memset(&a[1], 0, 16);
        memset(&h[1], 0, 16);
        memset(&w[1], 0, 16);
    }
    simd_v128 r[2] = { a[0], a[1] };
    uint32_t fl = fma_ops[d->op](r, h, w, v->cpu.fpu.mxcsr);
    emu_simd_fp_flags(v, fl); /* #XM before the destination is written */
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* VCVTPH2PS: 4/8 half floats (from xmm/m64/m128) to singles. */
static int h_cvtph2ps(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    if (!__builtin_cpu_supports("f16c"))
        emu_unimplemented(v);
    simd_v128 s[2] = { { .q = { 0, 0 } }, { .q = { 0, 0 } } }, r[2];
    const struct decoder_operand *o = &d->ops[1];
    if (o->kind == DOPND_MEM) {
        emu_simd_mmio_check(v, d, 1, false);
        emu_mem_read_buf(v, o->seg, emu_opnd_ea(v, d, 1), s, d->vex_l ? 16 : 8);
    } else {
        memcpy(&s[0], v->cpu.fpu.xmm[o->reg], 16);
    }
    uint32_t saved, in = (v->cpu.fpu.mxcsr & 0xffc0u) | 0x1f80u, out;
    __asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[in]\n\tvcvtph2ps %[s], %%ymm0\n\t"
                     "vmovdqu %%ymm0, %[r]\n\tstmxcsr %[out]\n\tldmxcsr %[sv]\n\tvzeroupper"
                     : [sv] "=m"(saved), [out] "=m"(out), [r] "=m"(r)
                     : [in] "m"(in), [s] "m"(s[0])
                     : "xmm0");
    emu_simd_fp_flags(v, out & SIMD_MXCSR_FLAGS);
    if (!d->vex_l)
        memset(&r[1], 0, 16);
    emu_simd_write(v, d, 0, r, false);
    return EMU_H_NEXT;
}

/* VCVTPS2PH: imm[2] = 1 uses MXCSR.RC, else imm[1:0]; implemented with the host's
 * "use MXCSR" form and the rounding mode loaded into the host MXCSR. */
static int h_cvtps2ph(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_simd_check(v, d);
    if (!__builtin_cpu_supports("f16c"))
        emu_unimplemented(v);
    simd_v128 s[2], r = { .q = { 0, 0 } };
    emu_simd_read(v, d, 1, s, false);
    unsigned imm = (unsigned)d->ops[d->nops - 1].disp & 0xff;
    uint32_t csr = v->cpu.fpu.mxcsr;
    if (!(imm & 4))
        csr = (csr & ~SIMD_MXCSR_RC) | ((imm & 3u) << 13);
    uint32_t saved, in = (csr & 0xffc0u) | 0x1f80u, out;
    __asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[in]\n\tvmovdqu %[s], %%ymm0\n\t"
                     "vcvtps2ph $4, %%ymm0, %%xmm1\n\tvmovdqu %%xmm1, %[r]\n\t"
                     "stmxcsr %[out]\n\tldmxcsr %[sv]\n\tvzeroupper"
                     : [sv] "=m"(saved), [out] "=m"(out), [r] "=m"(r)
                     : [in] "m"(in), [s] "m"(*(const simd_v128(*)[2])s)
                     : "xmm0", "xmm1");
    if (!d->vex_l)
        r.q[1] = 0; /* 128-bit source: 4 results in the low 64 bits */
    emu_simd_fp_flags(v, out & SIMD_MXCSR_FLAGS);
    const struct decoder_operand *o = &d->ops[0];
    if (o->kind == DOPND_MEM) {
        emu_simd_mmio_check(v, d, 0, true);
        emu_mem_write_buf(v, o->seg, emu_opnd_ea(v, d, 0), &r, d->vex_l ? 16 : 8);
    } else { /* xmm destination, bits 255:128 cleared */
        memcpy(v->cpu.fpu.xmm[o->reg], &r, 16);
        memset(v->cpu.fpu.ymmh[o->reg], 0, 16);
    }
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_fma_handlers[] = {
    { DOP_VFMADD132PS, h_fma },
    { DOP_VFMADD132PD, h_fma },
    { DOP_VFMADD132SS, h_fma },
    { DOP_VFMADD132SD, h_fma },
    { DOP_VFMADD213PS, h_fma },
    { DOP_VFMADD213PD, h_fma },
    { DOP_VFMADD213SS, h_fma },
    { DOP_VFMADD213SD, h_fma },
    { DOP_VFMADD231PS, h_fma },
    { DOP_VFMADD231PD, h_fma },
    { DOP_VFMADD231SS, h_fma },
    { DOP_VFMADD231SD, h_fma },
    { DOP_VFMSUB132PS, h_fma },
    { DOP_VFMSUB132PD, h_fma },
    { DOP_VFMSUB132SS, h_fma },
    { DOP_VFMSUB132SD, h_fma },
    { DOP_VFMSUB213PS, h_fma },
    { DOP_VFMSUB213PD, h_fma },
    { DOP_VFMSUB213SS, h_fma },
    { DOP_VFMSUB213SD, h_fma },
    { DOP_VFMSUB231PS, h_fma },
    { DOP_VFMSUB231PD, h_fma },
    { DOP_VFMSUB231SS, h_fma },
    { DOP_VFMSUB231SD, h_fma },
    { DOP_VFNMADD132PS, h_fma },
    { DOP_VFNMADD132PD, h_fma },
    { DOP_VFNMADD132SS, h_fma },
    { DOP_VFNMADD132SD, h_fma },
    { DOP_VFNMADD213PS, h_fma },
    { DOP_VFNMADD213PD, h_fma },
    { DOP_VFNMADD213SS, h_fma },
    { DOP_VFNMADD213SD, h_fma },
    { DOP_VFNMADD231PS, h_fma },
    { DOP_VFNMADD231PD, h_fma },
    { DOP_VFNMADD231SS, h_fma },
    { DOP_VFNMADD231SD, h_fma },
    { DOP_VFNMSUB132PS, h_fma },
    { DOP_VFNMSUB132PD, h_fma },
    { DOP_VFNMSUB132SS, h_fma },
    { DOP_VFNMSUB132SD, h_fma },
    { DOP_VFNMSUB213PS, h_fma },
    { DOP_VFNMSUB213PD, h_fma },
    { DOP_VFNMSUB213SS, h_fma },
    { DOP_VFNMSUB213SD, h_fma },
    { DOP_VFNMSUB231PS, h_fma },
    { DOP_VFNMSUB231PD, h_fma },
    { DOP_VFNMSUB231SS, h_fma },
    { DOP_VFNMSUB231SD, h_fma },
    { DOP_VFMADDSUB132PS, h_fma },
    { DOP_VFMADDSUB132PD, h_fma },
    { DOP_VFMADDSUB213PS, h_fma },
    { DOP_VFMADDSUB213PD, h_fma },
    { DOP_VFMADDSUB231PS, h_fma },
    { DOP_VFMADDSUB231PD, h_fma },
    { DOP_VFMSUBADD132PS, h_fma },
    { DOP_VFMSUBADD132PD, h_fma },
    { DOP_VFMSUBADD213PS, h_fma },
    { DOP_VFMSUBADD213PD, h_fma },
    { DOP_VFMSUBADD231PS, h_fma },
    { DOP_VFMSUBADD231PD, h_fma },
    { DOP_VCVTPH2PS, h_cvtph2ps }, { DOP_VCVTPS2PH, h_cvtps2ph },
    { 0, NULL },
};
