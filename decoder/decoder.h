/* decoder/: table-driven x86 instruction decoder (16/32/64-bit).
 *
 * CONTRACT shared by decoder/ (producer) and emu/ (consumer). Fields may be
 * added; existing fields and their meaning must not change without updating
 * every user.
 *
 * The opcode identities (enum decoder_op, DOP_*) are generated from the one
 * opcode definition table in decoder/ (see decoder/README or the table file);
 * the same table produces the list of handlers emu/ must provide.
 */
#ifndef SOFTKVM_DECODER_H
#define SOFTKVM_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "decoder/decoder_ops.h" /* enum decoder_op { DOP_INVALID = 0, DOP_ADD, ... , DOP_COUNT } */

#define DECODER_MAX_LEN 15 /* SDM vol.2 2.3.11: instructions longer than 15 bytes #GP */
#define DECODER_MAX_OPERANDS 4

enum decoder_mode {
    DECODER_MODE_16 = 0, /* real mode, vm86, 16-bit protected code segment */
    DECODER_MODE_32 = 1, /* 32-bit protected code segment, compatibility mode with CS.D=1 */
    DECODER_MODE_64 = 2, /* long mode, CS.L=1 */
};

enum decoder_status {
    DECODER_OK = 0,
    DECODER_UD,        /* architecturally invalid encoding: #UD (bad LOCK, bad VEX, undefined) */
    DECODER_TOO_LONG,  /* exceeds 15 bytes: #GP(0) */
    DECODER_TRUNCATED, /* ran out of input bytes before the instruction ended */
};

/* Register numbering inside a class follows the hardware encoding. */
enum decoder_reg_class {
    DREG_NONE = 0,
    DREG_GPR,   /* 0-15 rAX..r15; size from operand size */
    DREG_GPR8H, /* AH, CH, DH, BH (reg 4-7 without REX): number 0-3 = AH,CH,DH,BH */
    DREG_SEG,   /* 0-5 ES CS SS DS FS GS */
    DREG_CR,    /* 0-15 */
    DREG_DR,    /* 0-15 */
    DREG_MMX,   /* 0-7 */
    DREG_XMM,   /* 0-15 (size 16) or YMM (size 32) */
    DREG_ST,    /* x87 ST(i) */
    DREG_RIP,   /* only as a memory base: RIP-relative */
};

enum decoder_operand_kind {
    DOPND_NONE = 0,
    DOPND_REG,
    DOPND_MEM, /* effective address from seg/base/index/scale/disp */
    DOPND_IMM, /* immediate, already sign- or zero-extended per the SDM to 64 bits */
    DOPND_REL, /* relative branch displacement (sign-extended); target = next RIP + imm */
    DOPND_FAR, /* far pointer ptr16:16/32: imm = offset, far_seg = selector */
};

#define DECODER_NO_REG 0xff

struct decoder_operand {
    uint8_t kind;      /* enum decoder_operand_kind */
    uint8_t size;      /* operand size in bytes (1,2,4,8,10,16,32, 0 = n/a e.g. LEA source) */
    uint8_t reg_class; /* for DOPND_REG */
    uint8_t reg;       /* for DOPND_REG */
    /* DOPND_MEM */
    uint8_t seg;   /* effective segment 0-5 (override applied, else DS/SS default) */
    uint8_t base;  /* GPR number, DECODER_NO_REG, or 16 for RIP-relative */
    uint8_t index; /* GPR number or DECODER_NO_REG */
    uint8_t scale; /* 1,2,4,8 */
    int64_t disp;  /* DOPND_MEM displacement; DOPND_IMM/REL/FAR value */
    uint16_t far_seg;
};
#define DECODER_BASE_RIP 16

/* enum decoder_prefix bits in decoded_insn.prefixes */
#define DPFX_LOCK 0x0001
#define DPFX_REP 0x0002   /* F3 (effective: last of F2/F3 wins, SDM 2.1.1) */
#define DPFX_REPNE 0x0004 /* F2 */
#define DPFX_OPSIZE 0x0008
#define DPFX_ADDRSIZE 0x0010
#define DPFX_SEG 0x0020 /* a segment override was present: see seg_override */
#define DPFX_REX 0x0040
#define DPFX_VEX 0x0080
#define DPFX_EVEX 0x0100

/* decoded_insn.flags */
#define DFLAG_LOCK_OK 0x01    /* LOCK is legal on this form (memory destination RMW) */
#define DFLAG_MODRM 0x02      /* has a ModRM byte */
#define DFLAG_BRANCH 0x04     /* may change RIP other than by falling through */
#define DFLAG_PRIVILEGED 0x08 /* CPL 0 only (#GP otherwise) */
#define DFLAG_ENDS_BLOCK 0x10 /* decoded-insn cache block must end after this (branches, mode changes, serializing) */
#define DFLAG_STRING 0x20     /* string instruction: REP semantics apply */
#define DFLAG_VSIB 0x40       /* (added by decoder/) the memory operand's index is an XMM/YMM register (VSIB gathers, SDM 2.3.12) */

struct decoded_insn {
    uint16_t op;       /* enum decoder_op */
    uint8_t status;    /* enum decoder_status */
    uint8_t length;    /* bytes consumed, 1..15 */
    uint8_t mode;      /* enum decoder_mode used */
    uint8_t opsize;    /* effective operand size in bytes: 2, 4 or 8 (1 for byte forms) */
    uint8_t addrsize;  /* effective address size in bytes: 2, 4 or 8 */
    uint8_t nops;      /* number of explicit operands in ops[] (Intel order: dest first) */
    uint16_t prefixes; /* DPFX_* */
    uint8_t flags;     /* DFLAG_* */
    uint8_t seg_override; /* 0-5 when DPFX_SEG */
    uint8_t rex;       /* raw REX byte (0 if none) */
    uint8_t vex_l;     /* VEX.L / EVEX.L'L */
    uint8_t vex_vvvv;  /* VEX.vvvv decoded (register number, not inverted) */
    uint8_t vex_w;
    uint8_t opcode_map; /* 0 = one-byte, 1 = 0F, 2 = 0F38, 3 = 0F3A */
    uint8_t opcode;     /* the opcode byte within its map */
    uint8_t modrm;
    uint8_t sib;
    uint8_t cond;      /* condition code 0-15 for Jcc/SETcc/CMOVcc/FCMOVcc, else 0 */
    struct decoder_operand ops[DECODER_MAX_OPERANDS];
};

/* Decode one instruction from bytes[0..len). Never reads past len. Returns the
 * status (also stored in out->status). On DECODER_UD out->length is the length
 * consumed so far (for reporting), on DECODER_TRUNCATED the caller should fetch
 * more bytes (page crossing). */
enum decoder_status decoder_decode(const uint8_t *bytes, size_t len, enum decoder_mode mode,
                                   struct decoded_insn *out);

/* Lower-case Intel mnemonic of an op ("add", "jne", "cmovg"...). */
const char *decoder_op_name(uint16_t op);

/* Lower-case name of a DOPND_REG operand ("rax", "r8d", "ah", "xmm3", "ymm3",
 * "st(1)", "cr3", "es"...); "" for other kinds. (Added by decoder/.) */
const char *decoder_reg_name(const struct decoder_operand *op);

/* With DFLAG_VSIB: width in bytes (16 XMM, 32 YMM) of the vector index register. (Added by decoder/.) */
unsigned decoder_vsib_index_size(const struct decoded_insn *insn);

/* Intel-syntax disassembly, e.g. "add qword ptr [rax + rbx*8 + 0x10], 5".
 * Returns the number of characters written (snprintf semantics). */
int decoder_format(const struct decoded_insn *insn, uint64_t rip, char *buf, size_t size);

#endif
