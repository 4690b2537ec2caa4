/* emu/: helpers shared by the SIMD/x87/XSAVE instruction handlers
 * (emu/simd_insn_*.c, emu/xsave_insn.c): the #UD/#NM/#GP/#XM rules and XMM/YMM
 * operand access. Internal to emu/. */
#ifndef SOFTKVM_EMU_SIMD_INSN_H
#define SOFTKVM_EMU_SIMD_INSN_H

#include "emu/internal.h"
#include "emu/simd.h"

/* Handler lists of the simd helper's files (merged by emu/dispatch.c). */
extern const struct emu_handler_entry emu_simd_handlers[]; /* emu/simd_insn.c */
extern const struct emu_handler_entry emu_xsave_handlers[]; /* emu/xsave_insn.c */
extern const struct emu_handler_entry emu_x87_handlers[];   /* emu/x87_insn.c */
extern const struct emu_handler_entry emu_avx_handlers[];   /* emu/simd_avx.c */
extern const struct emu_handler_entry emu_fma_handlers[];   /* emu/simd_fma.c */
extern const struct emu_handler_entry emu_aes_handlers[];   /* emu/simd_aes.c */

#define EMU_CR0_MP (1ull << 1)
#define EMU_CR0_EM (1ull << 2)
#define EMU_CR0_TS (1ull << 3)
#define EMU_CR4_OSFXSR (1ull << 9)
#define EMU_CR4_OSXMMEXCPT (1ull << 10)
#define EMU_CR4_OSXSAVE (1ull << 18)

/* SDM vol.2 2.5 / table 2-19 & 2-21: legacy SSE needs CR0.EM=0 and CR4.OSFXSR=1
 * (#UD), then CR0.TS=0 (#NM). VEX needs CR4.OSXSAVE=1 and XCR0.SSE|YMM (#UD). */
void emu_simd_check(struct emu_vcpu *v, const struct decoded_insn *d);
bool emu_simd_uses_mmx(const struct decoded_insn *d);
/* MMX register write with its x87 side effects (TOS = 0, all tags valid). */
void emu_simd_write_mmx(struct emu_vcpu *v, unsigned reg, uint64_t val);
/* FXSAVE/FXRSTOR (SDM vol.2 FXSAVE exceptions): CR0.EM=1 or CR0.TS=1 -> #NM. */
void emu_simd_check_fxsr(struct emu_vcpu *v);

/* Merge raised MXCSR exception flags; an unmasked one raises #XM (CR4.OSXMMEXCPT=1)
 * or #UD (SDM vol.1 11.5.5). Must be called before the destination is written. */
void emu_simd_fp_flags(struct emu_vcpu *v, uint32_t flags);

/* Memory operand i on MMIO for a form KVM's emulator cannot do: internal error
 * (emu_unimplemented), as KVM reports emulation failure. */
void emu_simd_mmio_check(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i, bool write);
/* Linear address of memory operand i (for alignment checks). */
uint64_t emu_simd_lin(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i);
/* Read operand i (XMM/YMM register or memory of its size) into r[0] (low 128)
 * and r[1] (high 128 for 32-byte operands). Bytes beyond the operand size are
 * zero. aligned: #GP(0) unless the linear address is a multiple of the size. */
void emu_simd_read(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i, simd_v128 r[2],
                   bool aligned);
/* Write an XMM/YMM register destination: legacy SSE keeps bits 255:128, VEX.128
 * zeroes them, VEX.256 writes hi too (SDM vol.1 14.1.3). */
void emu_simd_write_reg(struct emu_vcpu *v, const struct decoded_insn *d, unsigned reg,
                        const simd_v128 *lo, const simd_v128 *hi);
/* Write operand i (register as above, or `size` bytes of memory). */
void emu_simd_write(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i,
                    const simd_v128 r[2], bool aligned);

/* The guest's supported XCR0 from its CPUID leaf 0DH (KVM guest_supported_xcr0),
 * limited to what emu implements. */
uint64_t emu_simd_supported_xcr0(struct emu_vcpu *v);

static inline bool emu_simd_is_vex(const struct decoded_insn *d)
{
    return (d->prefixes & DPFX_VEX) != 0;
}

#endif
