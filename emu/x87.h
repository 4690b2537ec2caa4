/* emu/: x87 FPU semantics on struct emu_fpu (SDM vol.1 chapter 8).
 *
 * Register file: emu_fpu.st[i] holds ST(i) (stack-relative, FXSAVE order),
 * emu_fpu.ftw is the abridged tag word indexed by physical register
 * (physical = (TOP + i) & 7), TOP lives in FSW bits 13:11.
 *
 * Arithmetic runs on the host x87 unit (x86-64 hosts only, like simd_fp.c):
 * the guest's FCW precision and rounding control are loaded, exceptions
 * masked, and the raised status flags read back, which reproduces the
 * extended-precision results bit for bit. */
#ifndef SOFTKVM_EMU_X87_H
#define SOFTKVM_EMU_X87_H

#include <stdbool.h>
#include <stdint.h>

#include "emu/cpu.h"

#define X87_IE 0x0001u
#define X87_DE 0x0002u
#define X87_ZE 0x0004u
#define X87_OE 0x0008u
#define X87_UE 0x0010u
#define X87_PE 0x0020u
#define X87_SF 0x0040u
#define X87_ES 0x0080u
#define X87_C0 0x0100u
#define X87_C1 0x0200u
#define X87_C2 0x0400u
#define X87_C3 0x4000u
#define X87_B 0x8000u
#define X87_CC (X87_C0 | X87_C1 | X87_C2 | X87_C3)

/* An 80-bit value as stored in emu_fpu.st[] and memory (m80). */
typedef struct {
    uint8_t b[10];
} x87_f80;

unsigned x87_top(const struct emu_fpu *f);
bool x87_empty(const struct emu_fpu *f, unsigned i);
x87_f80 x87_get(const struct emu_fpu *f, unsigned i);
void x87_set(struct emu_fpu *f, unsigned i, x87_f80 v); /* also tags ST(i) valid */
/* Push / pop with stack-fault handling (SDM vol.1 8.5.1.1). push returns false on
 * overflow (IE|SF|C1 set; the masked response pushes the indefinite). */
bool x87_push(struct emu_fpu *f, x87_f80 v);
void x87_pop(struct emu_fpu *f);
/* Record exception flags; sets ES and B when one is unmasked. Returns true if an
 * unmasked pre-computation exception (IE, DE, ZE) occurred: no result may be stored. */
bool x87_raise(struct emu_fpu *f, uint16_t flags);
/* Reading an empty register: stack underflow (IE|SF, C1=0). */
void x87_underflow(struct emu_fpu *f);
void x87_init(struct emu_fpu *f); /* FNINIT */

extern const x87_f80 x87_indefinite; /* QNaN "real indefinite" */

enum x87_arith { X87_ADD, X87_MUL, X87_SUB, X87_SUBR, X87_DIV, X87_DIVR };
enum x87_unary { X87_SQRT, X87_RNDINT, X87_SIN, X87_COS, X87_F2XM1, X87_CHS, X87_ABS };

/* Host-executed operations; each returns the raised FSW exception bits and C1. */
uint16_t x87_arith(enum x87_arith op, x87_f80 *res, x87_f80 a, x87_f80 b, uint16_t fcw);
uint16_t x87_unary(enum x87_unary op, x87_f80 *res, x87_f80 a, uint16_t fcw);
/* Two-operand ops on ST0 = a, ST1 = b (SDM vol.2 FSCALE, FPREM, FPREM1): result
 * replaces ST0; returns exception bits plus C0..C3 as the instruction sets them. */
enum x87_binary_st { X87_SCALE, X87_PREM, X87_PREM1 };
uint16_t x87_binary_st(enum x87_binary_st op, x87_f80 *res, x87_f80 a, x87_f80 b, uint16_t fcw);
/* FYL2X, FYL2XP1, FPATAN: ST1 = f(ST1, ST0), then pop; a = ST0, b = ST1. */
enum x87_binary_pop { X87_YL2X, X87_YL2XP1, X87_PATAN };
uint16_t x87_binary_pop(enum x87_binary_pop op, x87_f80 *res, x87_f80 a, x87_f80 b, uint16_t fcw);
/* FPTAN, FSINCOS, FXTRACT: ST0 = first, then push second. C2 = 1 (out of range)
 * leaves ST0 unchanged and pushes nothing. */
enum x87_unary_push { X87_PTAN, X87_SINCOS, X87_XTRACT };
uint16_t x87_unary_push(enum x87_unary_push op, x87_f80 *st0, x87_f80 *pushed, x87_f80 a,
                        uint16_t fcw);
/* memory formats <-> 80-bit: size 4 (float), 8 (double), 10 (m80). */
uint16_t x87_load_real(x87_f80 *res, const void *mem, unsigned size);
uint16_t x87_store_real(void *mem, x87_f80 v, unsigned size, uint16_t fcw);
x87_f80 x87_from_int(int64_t v);
/* FIST/FISTP (truncate=false: FCW.RC) / FISTTP; size 2, 4, 8. */
uint16_t x87_to_int(int64_t *out, x87_f80 v, unsigned size, bool truncate, uint16_t fcw);
/* FLD1/FLDL2T/FLDL2E/FLDPI/FLDLG2/FLDLN2/FLDZ by their D9 E8..EE ModRM byte. */
uint16_t x87_const(x87_f80 *res, uint8_t modrm, uint16_t fcw);
/* Compare: returns C3/C2/C0 condition bits (unordered = all), flags in *exc. */
uint16_t x87_compare(x87_f80 a, x87_f80 b, bool quiet, uint16_t *exc);
/* FXAM class in C3/C2/C1/C0 (empty handled by the caller). */
uint16_t x87_examine(x87_f80 a);

#endif
