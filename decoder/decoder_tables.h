/* decoder/: layout of the generated decode tables (decoder_tables.c, made by
 * decoder/gen/opgen.c from decoder/opcodes.tbl). Private to decoder/. */
#ifndef SOFTKVM_DECODER_TABLES_H
#define SOFTKVM_DECODER_TABLES_H
#include <stdint.h>

#include "decoder/decoder_opnd.h"

/* maps: 0 one-byte, 1 0F, 2 0F38, 3 0F3A, 4..6 the same three under VEX */
#define DEC_NMAPS 7

/* One candidate encoding of an opcode byte. Constraint fields use 0 = "any". */
struct dec_entry {
    uint16_t op;
    uint8_t reg;   /* ModRM.reg required, 0xff any */
    uint8_t mod;   /* 1 memory only, 2 register only */
    uint8_t rm;    /* ModRM.rm required (with mod 3), 0xff any */
    uint8_t pfx;   /* mandatory prefix: 1 none, 2 66, 3 F3, 4 F2 */
    uint8_t osz;   /* required effective operand size in bytes */
    uint8_t asz;   /* required effective address size */
    uint8_t w;     /* 1 W0, 2 W1 */
    uint8_t b0;    /* REX.B must be 0 */
    uint8_t l;     /* 1 L0, 2 L1 */
    uint8_t modes; /* bit per enum decoder_mode */
    uint8_t d64;   /* default 64-bit operand size in long mode (SDM 2.2.1.5) */
    uint8_t f64;   /* operand size forced to 64 in long mode */
    uint8_t lock;  /* LOCK allowed when the destination is memory */
    uint8_t cond;
    uint8_t vexnovvvv; /* VEX.vvvv must be 1111b */
    uint8_t opnd[4];   /* enum dec_opnd_type, Intel order */
    uint8_t opflags;   /* copy of decoder_op_info[op].flags (saves a cache line per decode) */
    uint32_t kmask, kval; /* the constraints above except modes/osz as (key & kmask) == kval */
    uint8_t nopnd;        /* number of operands in opnd[] */
    uint8_t shape;        /* 1 Ev,Gv 2 Gv,Ev 3 Eb,Gb 4 Gb,Eb 5 Jb 6 Jz 7 Zv: decoded without the generic loop */
};

/* Instruction key bits compared against dec_entry.kmask/kval (see decoder.c make_key). */
#define DKEY_REG(r) ((unsigned)(r))          /* bits 0-2 ModRM.reg */
#define DKEY_MEM (1u << 3)                   /* mod != 3 */
#define DKEY_REGFORM (1u << 4)               /* mod == 3 */
#define DKEY_RM(r) ((unsigned)(r) << 5)      /* bits 5-7 */
#define DKEY_MP(p) ((unsigned)(p) << 8)      /* bits 8-10 mandatory prefix code */
#define DKEY_ASZ(a) ((unsigned)(a) << 11)    /* bits 11-14 address size */
#define DKEY_W (1u << 15)
#define DKEY_REXB (1u << 16)
#define DKEY_L (1u << 17)
#define DKEY_VVVV (1u << 18)                 /* VEX.vvvv != 0 */

struct dec_slot {
    uint16_t first;
    uint8_t count;
    uint8_t modrm;
    uint8_t simple; /* one entry without constraints: no matching needed */
};

/* hidden: libsoftkvm is built -fPIC; hidden tables are reached RIP-relative, not via the GOT */
#define DEC_HIDDEN __attribute__((visibility("hidden")))
extern DEC_HIDDEN const struct dec_entry dec_entries[];
extern DEC_HIDDEN const struct dec_slot dec_slots[DEC_NMAPS][256];
extern DEC_HIDDEN const unsigned dec_nentries;

#endif
