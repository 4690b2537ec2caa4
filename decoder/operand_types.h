/* decoder/: meaning of the generated operand types (private to decoder/). */
#ifndef SOFTKVM_DECODER_OPERAND_TYPES_H
#define SOFTKVM_DECODER_OPERAND_TYPES_H
#include <stdint.h>

#include "decoder/decoder_opnd.h"

/* where an operand comes from */
enum dec_src {
    S_NONE,
    S_E,   /* ModRM r/m: register (mod 3) or memory */
    S_R,   /* ModRM r/m as a register whatever mod says (MOV CR/DR, SDM "mod ignored") */
    S_M,   /* ModRM r/m, memory only (table constrains mod) */
    S_G,   /* ModRM.reg */
    S_H,   /* VEX.vvvv */
    S_Z,   /* low 3 opcode bits + REX.B */
    S_FIX, /* fixed register `fix` */
    S_IMM, /* immediate of nbytes */
    S_I1,  /* the constant 1 of the D0/D1 shifts */
    S_J,   /* relative displacement */
    S_AP,  /* direct far pointer */
    S_O,   /* moffs */
    S_X,   /* DS:rSI */
    S_Y,   /* ES:rDI */
    S_L,   /* register in imm8[7:4] */
    S_MV,  /* VSIB memory: ModRM must select a SIB whose index is a vector register */
};

/* size codes above the literal byte sizes */
enum {
    SZ_V = 200, /* operand size */
    SZ_Z,       /* 2 if operand size is 2 else 4 */
    SZ_Y,       /* 8 if operand size is 8 else 4 */
    SZ_X,       /* 32 if VEX.L else 16 */
    SZ_P,       /* far pointer: operand size + 2 */
    SZ_S,       /* LGDT/SGDT pseudo-descriptor: 10 in 64-bit mode else 6 */
    SZ_A,       /* BOUND: two operand-size words */
    SZ_ENV,     /* x87 environment: 14 or 28 */
    SZ_FST,     /* x87 state: 94 or 108 */
    SZ_H,       /* half vector: 16 if VEX.L else 8 */
    SZ_QTR,     /* quarter vector: 8 if VEX.L else 4 */
    SZ_OCT,     /* eighth vector: 4 if VEX.L else 2 */
};

struct dec_opnd_desc {
    uint8_t src;    /* enum dec_src */
    uint8_t cls;    /* enum decoder_reg_class */
    uint8_t size;   /* literal bytes or SZ_* */
    uint8_t nbytes; /* immediate bytes (literal or SZ_*) */
    uint8_t fix;    /* S_FIX register number; for S_E vector/MMX forms the register size when mod=3 */
    uint8_t sext;   /* immediate is sign-extended */
};

extern __attribute__((visibility("hidden"))) const struct dec_opnd_desc dec_opnd_desc[OT_COUNT];

#endif
