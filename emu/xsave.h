/* emu/: the FXSAVE / XSAVE memory images of struct emu_fpu (SDM vol.1 10.5.1
 * and chapter 13) and the KVM_GET_XSAVE/KVM_SET_XSAVE conversions for abi/.
 *
 * State components implemented: 0 (x87), 1 (SSE), 2 (AVX). KVM's uABI region
 * (struct kvm_xsave, 4096 bytes) uses the standard (non-compacted) XSAVE
 * format with the 64-bit FXSAVE layout in the legacy area. */
#ifndef SOFTKVM_EMU_XSAVE_H
#define SOFTKVM_EMU_XSAVE_H

#include <stdbool.h>
#include <stdint.h>

#include "emu/cpu.h"

#define EMU_XFEATURE_X87 (1ull << 0)
#define EMU_XFEATURE_SSE (1ull << 1)
#define EMU_XFEATURE_YMM (1ull << 2)
/* What emu can hold; XCR0 / KVM_SET_XSAVE bits beyond this are rejected. */
#define EMU_XFEATURES_IMPL (EMU_XFEATURE_X87 | EMU_XFEATURE_SSE | EMU_XFEATURE_YMM)

#define EMU_FXSAVE_SIZE 512
#define EMU_XSAVE_HDR_OFF 512
#define EMU_XSAVE_YMM_OFF 576 /* CPUID.(EAX=0DH,ECX=2).EBX */
#define EMU_XSAVE_YMM_SIZE 256
#define EMU_XSAVE_SIZE (EMU_XSAVE_YMM_OFF + EMU_XSAVE_YMM_SIZE) /* 832: all of x87|SSE|AVX */
#define EMU_KVM_XSAVE_SIZE 4096

/* Power-on/INIT FPU state as KVM sets it for a new vCPU: FCW 0x37F, MXCSR 0x1F80,
 * everything else zero (arch/x86/kvm fpu init mirrors FNINIT + MXCSR default). */
void emu_fpu_init(struct emu_fpu *f);

/* FXSAVE image. rex_w selects the 64-bit layout (FIP/FDP 64-bit); without it
 * FIP/FDP are 32-bit with FCS/FDS (written as 0). nxmm: 16 in 64-bit mode,
 * 8 otherwise (SDM vol.2 FXSAVE: XMM8-15 are saved only in 64-bit mode). */
void emu_fxsave_image(const struct emu_fpu *f, uint8_t img[EMU_FXSAVE_SIZE], bool rex_w,
                      unsigned nxmm);
/* Bytes of the FXSAVE image actually written by FXSAVE. */
static inline unsigned emu_fxsave_len(unsigned nxmm) { return 160 + 16 * nxmm; }
/* FXRSTOR image. Returns false (and changes nothing) if MXCSR has reserved
 * bits set: the instruction then raises #GP(0). */
bool emu_fxrstor_image(struct emu_fpu *f, const uint8_t img[EMU_FXSAVE_SIZE], bool rex_w,
                       unsigned nxmm);

/* KVM_GET_XSAVE: fill a 4096-byte struct kvm_xsave region. `supported` is the
 * guest's supported XCR0 (KVM masks XSTATE_BV with it); x87|SSE always present. */
void emu_xsave_to_kvm(const struct cpu *cpu, void *region, uint64_t supported);
/* KVM_SET_XSAVE: 0, or -EINVAL for XSTATE_BV bits outside `supported`
 * (x87|SSE always allowed) or reserved MXCSR bits, as KVM's
 * copy_uabi_to_guest_fpstate() rejects them. Components whose XSTATE_BV bit is
 * clear are put in their init state. */
int emu_xsave_from_kvm(struct cpu *cpu, const void *region, uint64_t supported);

/* XSAVE-family instruction cores on a memory image (the handlers move the
 * bytes to/from guest memory). rfbm = XCR0 & EDX:EAX. */
void emu_xsave_image(const struct emu_fpu *f, uint8_t *img, uint64_t rfbm, bool compacted);
/* XRSTOR: false if the header / MXCSR is invalid (the instruction raises #GP(0));
 * the state is then unchanged. */
bool emu_xrstor_image(struct emu_fpu *f, const uint8_t *img, uint64_t rfbm, uint64_t xcr0);

/* XSETBV check (SDM vol.2 XSETBV, KVM __kvm_set_xcr): bit 0 set, AVX needs SSE,
 * only `supported` bits. */
bool emu_xcr0_valid(uint64_t xcr0, uint64_t supported);

#endif
