/* emu-fuzz: differential testing of emu/ against Unicorn 2.0.1 (QEMU TCG).
 *
 * Random sequences of general-purpose instructions (from the form table below) run
 * from identical initial state in both emulators, one instruction at a time. After
 * every instruction the GPRs, RIP and the architecturally DEFINED flags are compared
 * (each form lists the flags the SDM leaves undefined; after comparing, softkvm takes
 * Unicorn's values for those bits so later flag readers see the same input). At the
 * end the data page is compared. Memory operands are RIP-relative into a 4 KiB data
 * page so any register may be clobbered. Exceptions (#DE, #UD) must match by vector.
 *
 * Shared by tools/emu_fuzz/main.c (emu-fuzz --count N --seed S) and the fixed-seed
 * unit test tests/emu/test_diff_unicorn.c. Header-only: static functions.
 */
#ifndef SOFTKVM_EMU_FUZZ_DIFFTEST_H
#define SOFTKVM_EMU_FUZZ_DIFFTEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unicorn/unicorn.h>

#include "emu/internal.h"
#include "tests/emu/emu_test_vm.h"

#define DT_CF 0x001u
#define DT_PF 0x004u
#define DT_AF 0x010u
#define DT_ZF 0x040u
#define DT_SF 0x080u
#define DT_OF 0x800u
#define DT_DF 0x400u
#define DT_ARITH (DT_CF | DT_PF | DT_AF | DT_ZF | DT_SF | DT_OF)

enum {
    DF_BYTE = 1,     /* byte operation: no 66 prefix; reg 4 without REX is AH */
    DF_LOCK = 2,     /* LOCK allowed with a memory destination */
    DF_MEMONLY = 4,
    DF_REGONLY = 8,
    DF_NO66 = 16,
    DF_JCC = 32,     /* rel8 patched to skip the next instruction */
    DF_OPREG = 64,   /* register in the opcode's low 3 bits */
    DF_NOREX = 128,  /* Unicorn 2.0.1 mishandles LAHF/SAHF with a REX prefix */
    DF_X64 = 256,    /* 64-bit mode only */
    DF_X32 = 512,    /* 32-bit mode only (invalid in 64-bit mode) */
};

enum dt_imm { I_NONE, I_B, I_Z, I_V };

struct dt_form {
    uint8_t map;      /* 0 = one byte, 1 = 0F */
    uint8_t opc;
    int8_t digit;     /* ModRM.reg fixed to this, -1 = random register, -2 = no ModRM */
    uint8_t imm;      /* enum dt_imm */
    uint16_t flags;   /* DF_* */
    uint16_t undef;   /* flags the SDM leaves undefined */
};

#define ALU(b, undef)                                                                       \
    {0, (b) + 0, -1, I_NONE, DF_BYTE | DF_LOCK, undef}, {0, (b) + 1, -1, I_NONE, DF_LOCK, undef}, \
        {0, (b) + 2, -1, I_NONE, DF_BYTE, undef}, {0, (b) + 3, -1, I_NONE, 0, undef},           \
        {0, (b) + 4, -2, I_B, DF_BYTE, undef}, {0, (b) + 5, -2, I_Z, 0, undef}
#define GRP(opc, imm, fl, u)                                                                  \
    {0, opc, 0, imm, fl, u}, {0, opc, 1, imm, fl, u}, {0, opc, 2, imm, fl, u}, {0, opc, 3, imm, fl, u}, \
        {0, opc, 4, imm, fl, u}, {0, opc, 5, imm, fl, u}, {0, opc, 6, imm, fl, u},               \
        {0, opc, 7, imm, fl, u}

static const struct dt_form dt_forms[] = {
    ALU(0x00, 0), ALU(0x08, DT_AF), ALU(0x10, 0), ALU(0x18, 0), ALU(0x20, DT_AF), ALU(0x28, 0),
    ALU(0x30, DT_AF), ALU(0x38, 0),
    /* group 1 (LOCK is #UD for CMP but harmless to try: both must #UD) */
    GRP(0x80, I_B, DF_BYTE | DF_LOCK, DT_AF & 0), GRP(0x81, I_Z, DF_LOCK, 0), GRP(0x83, I_B, DF_LOCK, 0),
    {0, 0x84, -1, I_NONE, DF_BYTE, DT_AF}, {0, 0x85, -1, I_NONE, 0, DT_AF},
    {0, 0xa8, -2, I_B, DF_BYTE, DT_AF}, {0, 0xa9, -2, I_Z, 0, DT_AF},
    {0, 0x86, -1, I_NONE, DF_BYTE | DF_LOCK, 0}, {0, 0x87, -1, I_NONE, DF_LOCK, 0},
    {0, 0x88, -1, I_NONE, DF_BYTE, 0}, {0, 0x89, -1, I_NONE, 0, 0},
    {0, 0x8a, -1, I_NONE, DF_BYTE, 0}, {0, 0x8b, -1, I_NONE, 0, 0},
    {0, 0x8d, -1, I_NONE, DF_MEMONLY, 0},
    {0, 0xc6, 0, I_B, DF_BYTE, 0}, {0, 0xc7, 0, I_Z, 0, 0},
    {0, 0xb0, -2, I_B, DF_BYTE | DF_OPREG, 0}, {0, 0xb8, -2, I_V, DF_OPREG, 0},
    {0, 0x90, -2, I_NONE, DF_OPREG, 0},
    {0, 0x98, -2, I_NONE, 0, 0}, {0, 0x99, -2, I_NONE, 0, 0},
    {0, 0xf5, -2, I_NONE, 0, 0}, {0, 0xf8, -2, I_NONE, 0, 0}, {0, 0xf9, -2, I_NONE, 0, 0},
    {0, 0xfc, -2, I_NONE, 0, 0}, {0, 0xfd, -2, I_NONE, 0, 0},
    {0, 0x9e, -2, I_NONE, DF_NOREX, 0}, {0, 0x9f, -2, I_NONE, DF_NOREX, 0},
    /* shifts and rotates: OF is undefined for counts > 1, AF for shifts */
    GRP(0xc0, I_B, DF_BYTE, DT_OF | DT_AF), GRP(0xc1, I_B, 0, DT_OF | DT_AF),
    GRP(0xd0, I_NONE, DF_BYTE, DT_AF), GRP(0xd1, I_NONE, 0, DT_AF),
    GRP(0xd2, I_NONE, DF_BYTE, DT_OF | DT_AF), GRP(0xd3, I_NONE, 0, DT_OF | DT_AF),
    /* group 3 */
    /* LOCK NOT/NEG are left out: Unicorn 2.0.1's locked NEG flags differ from hardware
     * (tests/emu/test_native.c checks ours against the host CPU) */
    {0, 0xf6, 0, I_B, DF_BYTE, DT_AF}, {0, 0xf6, 2, I_NONE, DF_BYTE, 0},
    {0, 0xf6, 3, I_NONE, DF_BYTE, 0},
    {0, 0xf6, 4, I_NONE, DF_BYTE, DT_SF | DT_ZF | DT_AF | DT_PF},
    {0, 0xf6, 5, I_NONE, DF_BYTE, DT_SF | DT_ZF | DT_AF | DT_PF},
    {0, 0xf6, 6, I_NONE, DF_BYTE, DT_ARITH}, {0, 0xf6, 7, I_NONE, DF_BYTE, DT_ARITH},
    {0, 0xf7, 0, I_Z, 0, DT_AF}, {0, 0xf7, 2, I_NONE, 0, 0}, {0, 0xf7, 3, I_NONE, 0, 0},
    {0, 0xf7, 4, I_NONE, 0, DT_SF | DT_ZF | DT_AF | DT_PF},
    {0, 0xf7, 5, I_NONE, 0, DT_SF | DT_ZF | DT_AF | DT_PF},
    {0, 0xf7, 6, I_NONE, 0, DT_ARITH}, {0, 0xf7, 7, I_NONE, 0, DT_ARITH},
    {0, 0xfe, 0, I_NONE, DF_BYTE | DF_LOCK, 0}, {0, 0xfe, 1, I_NONE, DF_BYTE | DF_LOCK, 0},
    {0, 0xff, 0, I_NONE, DF_LOCK, 0}, {0, 0xff, 1, I_NONE, DF_LOCK, 0},
    {0, 0x69, -1, I_Z, 0, DT_SF | DT_ZF | DT_AF | DT_PF}, {0, 0x6b, -1, I_B, 0, DT_SF | DT_ZF | DT_AF | DT_PF},
    {0, 0x63, -1, I_NONE, DF_X64, 0},
    /* legacy-mode only: INC/DEC r, decimal adjust (SDM: DAA/DAS OF undefined; AAA/AAS
     * OF SF ZF PF undefined; AAM/AAD OF AF CF undefined) */
    {0, 0x40, -2, I_NONE, DF_OPREG | DF_X32, 0}, {0, 0x48, -2, I_NONE, DF_OPREG | DF_X32, 0},
    {0, 0x27, -2, I_NONE, DF_X32 | DF_NO66, DT_OF}, {0, 0x2f, -2, I_NONE, DF_X32 | DF_NO66, DT_OF},
    {0, 0x37, -2, I_NONE, DF_X32 | DF_NO66, DT_OF | DT_SF | DT_ZF | DT_PF},
    {0, 0x3f, -2, I_NONE, DF_X32 | DF_NO66, DT_OF | DT_SF | DT_ZF | DT_PF},
    {0, 0xd4, -2, I_B, DF_X32 | DF_NO66, DT_OF | DT_AF | DT_CF},
    {0, 0xd5, -2, I_B, DF_X32 | DF_NO66, DT_OF | DT_AF | DT_CF},
    {0, 0x70, -2, I_B, DF_JCC, 0}, {0, 0x72, -2, I_B, DF_JCC, 0}, {0, 0x74, -2, I_B, DF_JCC, 0},
    {0, 0x76, -2, I_B, DF_JCC, 0}, {0, 0x78, -2, I_B, DF_JCC, 0}, {0, 0x7a, -2, I_B, DF_JCC, 0},
    {0, 0x7c, -2, I_B, DF_JCC, 0}, {0, 0x7f, -2, I_B, DF_JCC, 0},
    /* two-byte map */
    {1, 0xaf, -1, I_NONE, 0, DT_SF | DT_ZF | DT_AF | DT_PF},
    {1, 0x42, -1, I_NONE, 0, 0}, {1, 0x44, -1, I_NONE, 0, 0}, {1, 0x47, -1, I_NONE, 0, 0},
    {1, 0x4c, -1, I_NONE, 0, 0}, {1, 0x4f, -1, I_NONE, 0, 0}, {1, 0x4a, -1, I_NONE, 0, 0},
    {1, 0x93, -1, I_NONE, DF_BYTE, 0}, {1, 0x95, -1, I_NONE, DF_BYTE, 0}, {1, 0x9c, -1, I_NONE, DF_BYTE, 0},
    {1, 0x9e, -1, I_NONE, DF_BYTE, 0}, {1, 0x98, -1, I_NONE, DF_BYTE, 0}, {1, 0x91, -1, I_NONE, DF_BYTE, 0},
    {1, 0xa3, -1, I_NONE, DF_REGONLY, DT_OF | DT_SF | DT_AF | DT_PF},
    {1, 0xab, -1, I_NONE, DF_REGONLY, DT_OF | DT_SF | DT_AF | DT_PF},
    {1, 0xb3, -1, I_NONE, DF_REGONLY, DT_OF | DT_SF | DT_AF | DT_PF},
    {1, 0xbb, -1, I_NONE, DF_REGONLY, DT_OF | DT_SF | DT_AF | DT_PF},
    {1, 0xba, 4, I_B, 0, DT_OF | DT_SF | DT_AF | DT_PF}, {1, 0xba, 5, I_B, DF_LOCK, DT_OF | DT_SF | DT_AF | DT_PF},
    {1, 0xba, 6, I_B, DF_LOCK, DT_OF | DT_SF | DT_AF | DT_PF}, {1, 0xba, 7, I_B, DF_LOCK, DT_OF | DT_SF | DT_AF | DT_PF},
    {1, 0xbc, -1, I_NONE, 0, DT_CF | DT_OF | DT_SF | DT_AF | DT_PF},
    {1, 0xbd, -1, I_NONE, 0, DT_CF | DT_OF | DT_SF | DT_AF | DT_PF},
    {1, 0xb6, -1, I_NONE, 0, 0}, {1, 0xb7, -1, I_NONE, DF_NO66, 0},
    {1, 0xbe, -1, I_NONE, 0, 0}, {1, 0xbf, -1, I_NONE, DF_NO66, 0},
    {1, 0xc0, -1, I_NONE, DF_BYTE | DF_LOCK, 0}, {1, 0xc1, -1, I_NONE, DF_LOCK, 0},
    /* CMPXCHG with a register destination: Unicorn zero-extends RAX on success, the host
     * CPU does not (tests/emu/test_native.c), so only memory destinations here */
    {1, 0xb0, -1, I_NONE, DF_BYTE | DF_LOCK | DF_MEMONLY, 0}, {1, 0xb1, -1, I_NONE, DF_LOCK | DF_MEMONLY, 0},
    {1, 0xc8, -2, I_NONE, DF_OPREG | DF_NO66, 0},
    /* SHLD/SHRD are not compared here: Unicorn 2.0.1 gets their flags wrong for memory
     * operands (our results match the host CPU, see tests/emu/test_native.c). */
};
#define DT_NFORMS (sizeof dt_forms / sizeof dt_forms[0])

#define DT_CODE TVM_CODE
#define DT_DATA TVM_DATA
#define DT_MAXINSN 24

struct dt_rng {
    uint64_t s;
};
static inline uint64_t dt_next(struct dt_rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* One generated instruction: bytes and which form it came from. */
struct dt_insn {
    uint8_t b[16];
    uint8_t len;
    uint16_t undef;
    int16_t jcc_at; /* offset of the rel8 byte for DF_JCC, else -1 */
};

static void dt_gen_insn(struct dt_rng *r, uint64_t at, struct dt_insn *o, bool m32)
{
    const struct dt_form *f;
    do
        f = &dt_forms[dt_next(r) % DT_NFORMS];
    while ((f->flags & (m32 ? DF_X64 : DF_X32)) != 0);
    unsigned n = 0;
    bool o16 = !(f->flags & (DF_BYTE | DF_NO66 | DF_JCC)) && (dt_next(r) % 5 == 0);
    bool mem = !(f->flags & DF_REGONLY) && f->digit != -2 && ((f->flags & DF_MEMONLY) || dt_next(r) % 3 == 0);
    /* LOCK CMP is #UD; Unicorn 2.0.1 aborts (tcg fatal error) on it, so not generated */
    bool is_cmp = (f->map == 0 && (f->opc == 0x38 || f->opc == 0x39)) ||
                  (f->map == 0 && f->opc >= 0x80 && f->opc <= 0x83 && f->digit == 7);
    bool lock = (f->flags & DF_LOCK) && !is_cmp && mem && dt_next(r) % 3 == 0;
    uint8_t rex = 0;
    if (!m32 && !(f->flags & (DF_JCC | DF_NOREX)) && dt_next(r) % 2) {
        rex = 0x40 | (uint8_t)(dt_next(r) & 0xd); /* W R B (no X: index unused) */
        /* REX.R with a /digit opcode: hardware ignores it, Unicorn raises #UD */
        if (f->digit >= 0)
            rex &= (uint8_t)~4;
    }
    o->jcc_at = -1;
    if (lock)
        o->b[n++] = 0xf0;
    if (o16)
        o->b[n++] = 0x66;
    if (rex)
        o->b[n++] = rex;
    if (f->map == 1)
        o->b[n++] = 0x0f;
    uint8_t opc = f->opc;
    if (f->flags & DF_OPREG) {
        unsigned reg = dt_next(r) % 8;
        /* keep RSP: without REX.B, register 4 is RSP (or AH for byte forms, fine) */
        if (reg == 4 && !(f->flags & DF_BYTE && !rex) && !(rex & 1))
            reg = 5;
        if (f->opc == 0x90 && reg == 0 && !(rex & 1))
            reg = 1; /* 90 is NOP/PAUSE, not xchg */
        opc |= (uint8_t)reg;
    }
    o->b[n++] = opc;
    int disp_at = -1;
    if (f->digit != -2) {
        unsigned reg = f->digit >= 0 ? (unsigned)f->digit : dt_next(r) % 8;
        if (f->digit < 0 && reg == 4 && !(rex & 4) && !((f->flags & DF_BYTE) && !rex))
            reg = 6;
        if (mem) {
            o->b[n++] = (uint8_t)(0x05 | (reg << 3));
            disp_at = (int)n;
            n += 4;
        } else {
            unsigned rm = dt_next(r) % 8;
            if (rm == 4 && !(rex & 1) && !((f->flags & DF_BYTE) && !rex))
                rm = 7;
            o->b[n++] = (uint8_t)(0xc0 | (reg << 3) | rm);
        }
    }
    unsigned isz = 0;
    switch (f->imm) {
    case I_B: isz = 1; break;
    case I_Z: isz = (rex & 8) ? 4 : o16 ? 2 : 4; break; /* REX.W beats 66 */
    case I_V: isz = (rex & 8) ? 8 : o16 ? 2 : 4; break;
    default: break;
    }
    uint64_t imm = dt_next(r);
    if (dt_next(r) % 4 == 0)
        imm &= 0x1f;
    if (f->flags & DF_JCC)
        o->jcc_at = (int16_t)n;
    memcpy(o->b + n, &imm, isz);
    n += isz;
    if (disp_at >= 0) {
        /* RIP-relative (64-bit) or absolute disp32 (32-bit) into the data page */
        uint64_t target = DT_DATA + dt_next(r) % (4096 - 16);
        int32_t disp = m32 ? (int32_t)target : (int32_t)(target - (at + n));
        memcpy(o->b + disp_at, &disp, 4);
    }
    o->len = (uint8_t)n;
    o->undef = f->undef;
}

struct dt_case {
    bool m32; /* 32-bit protected mode instead of 64-bit */
    uint8_t code[DT_MAXINSN * 16];
    unsigned ninsn;
    uint64_t end;
    uint16_t undef[DT_MAXINSN];
    uint64_t gpr[16];
    uint64_t rflags;
    uint8_t data[4096];
};

static void dt_gen_case(struct dt_rng *r, struct dt_case *c, bool m32)
{
    memset(c, 0, sizeof *c);
    c->m32 = m32;
    c->ninsn = 4 + dt_next(r) % (DT_MAXINSN - 4);
    uint64_t at = DT_CODE;
    unsigned off = 0;
    int pending_jcc = -1;
    for (unsigned i = 0; i < c->ninsn; i++) {
        struct dt_insn ins;
        dt_gen_insn(r, at, &ins, m32);
        memcpy(c->code + off, ins.b, ins.len);
        c->undef[i] = ins.undef;
        if (pending_jcc >= 0) {
            c->code[pending_jcc] = ins.len; /* the taken branch skips this instruction */
            pending_jcc = -1;
        }
        if (ins.jcc_at >= 0)
            pending_jcc = (int)off + ins.jcc_at;
        off += ins.len;
        at += ins.len;
    }
    if (pending_jcc >= 0)
        c->code[pending_jcc] = 0;
    c->end = at;
    static const uint64_t edge[] = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff,
                                    0x80000000, 0xffffffff, 0x7fffffffffffffffull,
                                    0x8000000000000000ull, ~0ull};
    for (unsigned i = 0; i < 16; i++) {
        uint64_t x = dt_next(r);
        switch (dt_next(r) % 4) {
        case 0: c->gpr[i] = edge[x % (sizeof edge / sizeof edge[0])]; break;
        case 1: c->gpr[i] = x & 0xff; break;
        default: c->gpr[i] = x; break;
        }
    }
    if (m32)
        for (unsigned i = 0; i < 16; i++)
            c->gpr[i] = i < 8 ? (uint32_t)c->gpr[i] : 0;
    c->gpr[EMU_RSP] = TVM_STACK - 0x1000;
    c->rflags = 2 | (dt_next(r) & (DT_ARITH | DT_DF));
    for (unsigned i = 0; i < 4096; i += 8) {
        uint64_t x = dt_next(r);
        memcpy(c->data + i, &x, 8);
    }
}

static const int dt_uc_regs[16] = {UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
                                   UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
                                   UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
                                   UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15};

static const int dt_uc_regs32[8] = {UC_X86_REG_EAX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_EBX,
                                   UC_X86_REG_ESP, UC_X86_REG_EBP, UC_X86_REG_ESI, UC_X86_REG_EDI};

static void dt_uc_intr(uc_engine *uc, uint32_t intno, void *user)
{
    *(int *)user = (int)intno;
    uc_emu_stop(uc);
}

/* Runs one case in both emulators; returns true when they agree. On disagreement,
 * writes a description to why (if non-NULL). */
static bool dt_run_case(const struct dt_case *c, char *why, size_t whylen)
{
    bool agree = true;
    struct tvm t;
    if (c->m32)
        tvm_init32(&t);
    else
        tvm_init64(&t);
    unsigned ngpr = c->m32 ? 8 : 16;
    uint64_t gmask = c->m32 ? 0xffffffffull : ~0ull;
    enum decoder_mode dmode = c->m32 ? DECODER_MODE_32 : DECODER_MODE_64;
    const int *uregs = c->m32 ? dt_uc_regs32 : dt_uc_regs;
    int urip_reg = c->m32 ? UC_X86_REG_EIP : UC_X86_REG_RIP;
    int ufl_reg = c->m32 ? UC_X86_REG_EFLAGS : UC_X86_REG_RFLAGS;
    memcpy(t.ram + DT_CODE, c->code, c->end - DT_CODE);
    memcpy(t.ram + DT_DATA, c->data, 4096);
    memcpy(t.c->gpr, c->gpr, sizeof c->gpr);
    emu_set_rflags(t.v, c->rflags);

    uc_engine *uc;
    if (uc_open(UC_ARCH_X86, c->m32 ? UC_MODE_32 : UC_MODE_64, &uc) != UC_ERR_OK) {
        snprintf(why, whylen, "uc_open failed");
        tvm_destroy(&t);
        return false;
    }
    uc_mem_map(uc, DT_CODE, 0x1000 * 2, UC_PROT_ALL);
    uc_mem_map(uc, DT_DATA, 0x1000, UC_PROT_ALL);
    uc_mem_map(uc, TVM_STACK - 0x2000, 0x2000, UC_PROT_ALL);
    uc_mem_write(uc, DT_CODE, c->code, c->end - DT_CODE);
    uc_mem_write(uc, DT_DATA, c->data, 4096);
    for (unsigned i = 0; i < ngpr; i++)
        uc_reg_write(uc, uregs[i], &c->gpr[i]);
    uint64_t fl = c->rflags;
    uc_reg_write(uc, ufl_reg, &fl);
    int uc_vec = -1;
    uc_hook hh;
    uc_hook_add(uc, &hh, UC_HOOK_INTR, (void *)dt_uc_intr, &uc_vec, 1, 0);

    uint64_t urip = DT_CODE;
    struct emu_exit x;
    for (unsigned step = 0; step < c->ninsn + 1 && urip < c->end; step++) {
        uint64_t at = urip;
        uc_err ue = uc_emu_start(uc, urip, c->end, 0, 1);
        int uvec = uc_vec;
        if (ue == UC_ERR_INSN_INVALID)
            uvec = 6;
        else if (ue != UC_ERR_OK && uvec < 0) {
            snprintf(why, whylen, "unicorn error %d at %#" PRIx64, ue, at);
            agree = false;
            break;
        }
        t.v->insn_limit = t.v->icount + 1;
        emu_run(t.v, &x);
        int svec = -1;
        if (t.c->halted) /* an exception went through the IDT to its hlt stub */
            svec = tvm_halted_vector(&t);
        else if (x.reason != EMU_EXIT_INTERRUPTED) {
            snprintf(why, whylen, "softkvm exit %d at %#" PRIx64, x.reason, at);
            agree = false;
            break;
        }
        if (uvec >= 0 || svec >= 0) {
            if (uvec != svec) {
                snprintf(why, whylen, "exception mismatch at %#" PRIx64 ": unicorn %d softkvm %d", at,
                         uvec, svec);
                agree = false;
            }
            goto out; /* both faulted the same way: nothing more to compare */
        }
        urip = 0;
        uc_reg_read(uc, urip_reg, &urip);
        uint64_t ufl = 0;
        uc_reg_read(uc, ufl_reg, &ufl);
        /* which instruction was this (for its undefined-flag mask) */
        unsigned idx = 0;
        {
            uint64_t p = DT_CODE;
            struct decoded_insn d;
            while (p < at && idx < c->ninsn) {
                decoder_decode(c->code + (p - DT_CODE), 15, dmode, &d);
                p += d.length;
                idx++;
            }
        }
        uint64_t mask = (DT_ARITH | DT_DF) & ~(uint64_t)c->undef[idx < c->ninsn ? idx : 0];
        uint64_t sfl = emu_get_rflags(t.v);
        if (urip != t.c->rip) {
            snprintf(why, whylen, "rip after %#" PRIx64 ": unicorn %#" PRIx64 " softkvm %#" PRIx64, at,
                     urip, t.c->rip);
            agree = false;
            break;
        }
        for (unsigned i = 0; i < ngpr; i++) {
            uint64_t u = 0;
            uc_reg_read(uc, uregs[i], &u);
            if ((u & gmask) != (t.c->gpr[i] & gmask)) {
                snprintf(why, whylen, "gpr %u after insn at %#" PRIx64 ": unicorn %#" PRIx64
                         " softkvm %#" PRIx64, i, at, u, t.c->gpr[i]);
                agree = false;
                goto out;
            }
        }
        if ((ufl ^ sfl) & mask) {
            snprintf(why, whylen, "rflags after insn at %#" PRIx64 ": unicorn %#" PRIx64
                     " softkvm %#" PRIx64 " (mask %#" PRIx64 ")", at, ufl, sfl, mask);
            agree = false;
            break;
        }
        /* adopt Unicorn's values for the undefined bits */
        emu_set_rflags(t.v, (sfl & mask) | (ufl & ~mask & (DT_ARITH | DT_DF)) | (sfl & ~(uint64_t)(DT_ARITH | DT_DF)));
    }
    if (agree) {
        uint8_t ud[4096];
        uc_mem_read(uc, DT_DATA, ud, sizeof ud);
        for (unsigned i = 0; i < 4096; i++)
            if (ud[i] != t.ram[DT_DATA + i]) {
                snprintf(why, whylen, "data byte %#x: unicorn %#x softkvm %#x", i, ud[i],
                         t.ram[DT_DATA + i]);
                agree = false;
                break;
            }
    }
out:
    uc_close(uc);
    tvm_destroy(&t);
    return agree;
}

/* Hex dump of a case's code for reproduction. */
static void dt_print_case(FILE *f, const struct dt_case *c)
{
    uint64_t p = DT_CODE;
    while (p < c->end) {
        struct decoded_insn d;
        char buf[128];
        decoder_decode(c->code + (p - DT_CODE), 15, c->m32 ? DECODER_MODE_32 : DECODER_MODE_64, &d);
        decoder_format(&d, p, buf, sizeof buf);
        fprintf(f, "  %#" PRIx64 ":", p);
        for (unsigned i = 0; i < d.length; i++)
            fprintf(f, " %02x", c->code[p - DT_CODE + i]);
        fprintf(f, "   %s\n", buf);
        p += d.length ? d.length : 1;
    }
}

#endif
