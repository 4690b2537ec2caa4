/* decoder/: Intel-syntax disassembly of a decoded instruction (for traces and
 * tests). Style follows the common objdump/Capstone Intel output:
 *   "add qword ptr [rax + rbx*8 + 0x10], 5". */
#include <stdarg.h>
#include <stdio.h>

#include "decoder/decoder.h"

static const char *const gpr64[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                      "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"};
static const char *const gpr32[16] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
                                      "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d"};
static const char *const gpr16[16] = {"ax", "cx", "dx", "bx", "sp", "bp", "si", "di",
                                      "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w"};
static const char *const gpr8[16] = {"al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil",
                                     "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b"};
static const char *const gpr8h[4] = {"ah", "ch", "dh", "bh"};
static const char *const segs[8] = {"es", "cs", "ss", "ds", "fs", "gs", "?", "?"};

struct out {
    char *buf;
    size_t size;
    int n;
};

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = (size_t)o->n < o->size ? o->size - (size_t)o->n : 0;
    int k = vsnprintf(room ? o->buf + o->n : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0)
        o->n += k;
}

static const char *gpr_name(unsigned reg, unsigned size)
{
    reg &= 15;
    switch (size) {
    case 1: return gpr8[reg];
    case 2: return gpr16[reg];
    case 4: return gpr32[reg];
    default: return gpr64[reg];
    }
}


const char *decoder_reg_name(const struct decoder_operand *op)
{
    static const char *const crs[16] = {"cr0", "cr1", "cr2", "cr3", "cr4", "cr5", "cr6", "cr7",
                                        "cr8", "cr9", "cr10", "cr11", "cr12", "cr13", "cr14", "cr15"};
    static const char *const drs[16] = {"dr0", "dr1", "dr2", "dr3", "dr4", "dr5", "dr6", "dr7",
                                        "dr8", "dr9", "dr10", "dr11", "dr12", "dr13", "dr14", "dr15"};
    static const char *const mms[8] = {"mm0", "mm1", "mm2", "mm3", "mm4", "mm5", "mm6", "mm7"};
    static const char *const sts[8] = {"st(0)", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"};
    static const char *const xmms[16] = {"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
                                         "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"};
    static const char *const ymms[16] = {"ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7",
                                         "ymm8", "ymm9", "ymm10", "ymm11", "ymm12", "ymm13", "ymm14", "ymm15"};
    if (op->kind != DOPND_REG)
        return "";
    switch (op->reg_class) {
    case DREG_GPR: return gpr_name(op->reg, op->size);
    case DREG_GPR8H: return gpr8h[op->reg & 3];
    case DREG_SEG: return segs[op->reg & 7];
    case DREG_CR: return crs[op->reg & 15];
    case DREG_DR: return drs[op->reg & 15];
    case DREG_MMX: return mms[op->reg & 7];
    case DREG_XMM: return op->size == 32 ? ymms[op->reg & 15] : xmms[op->reg & 15];
    case DREG_ST: return sts[op->reg & 7];
    default: return "?";
    }
}

unsigned decoder_vsib_index_size(const struct decoded_insn *in)
{
    /* SDM 2.3.12: dword-index gathers of qword elements use an XMM index even
     * with VEX.256 (vm32x); the others follow VEX.L (vm32x/y, vm64x/y). */
    if (in->op == DOP_VPGATHERDQ || in->op == DOP_VGATHERDPD)
        return 16;
    return in->vex_l ? 32 : 16;
}

static const char *ptr_name(unsigned size)
{
    switch (size) {
    case 1: return "byte ptr ";
    case 2: return "word ptr ";
    case 4: return "dword ptr ";
    case 6: return "fword ptr ";
    case 8: return "qword ptr ";
    case 10: return "xword ptr ";
    case 16: return "xmmword ptr ";
    case 32: return "ymmword ptr ";
    default: return "";
    }
}

static void put_hex(struct out *o, uint64_t v)
{
    if (v <= 9)
        put(o, "%llu", (unsigned long long)v);
    else
        put(o, "0x%llx", (unsigned long long)v);
}

static void put_mem(struct out *o, const struct decoded_insn *in, const struct decoder_operand *op)
{
    put(o, "%s", ptr_name(op->size));
    /* The override is shown where it was written, except on the ES:rDI string
     * destination, which it cannot change (SDM vol.2 MOVS/STOS/SCAS/INS). */
    int es_rdi = (in->flags & DFLAG_STRING) && op->base == 7 && op->seg == 0;
    if (es_rdi && in->mode != DECODER_MODE_64)
        put(o, "es:"); /* outside 64-bit mode the fixed ES segment is spelled out */
    else if ((in->prefixes & DPFX_SEG) && !es_rdi)
        put(o, "%s:", segs[in->seg_override & 7]);
    put(o, "[");
    int any = 0;
    if (op->base == DECODER_BASE_RIP) {
        put(o, in->addrsize == 4 ? "eip" : "rip"); /* 67 + RIP-relative uses EIP (SDM 2.2.1.6) */
        any = 1;
    } else if (op->base != DECODER_NO_REG) {
        put(o, "%s", gpr_name(op->base, in->addrsize));
        any = 1;
    }
    if (op->index != DECODER_NO_REG) {
        struct decoder_operand vix = {.kind = DOPND_REG, .reg_class = DREG_XMM, .reg = op->index,
                                      .size = (uint8_t)decoder_vsib_index_size(in)};
        put(o, "%s%s", any ? " + " : "",
            (in->flags & DFLAG_VSIB) ? decoder_reg_name(&vix) : gpr_name(op->index, in->addrsize));
        if (op->scale != 1)
            put(o, "*%u", op->scale);
        any = 1;
    }
    if (!any) {
        uint64_t mask = in->addrsize == 8 ? ~0ull : (1ull << (8 * in->addrsize)) - 1;
        put_hex(o, (uint64_t)op->disp & mask);
    } else if (op->disp > 0) {
        put(o, " + ");
        put_hex(o, (uint64_t)op->disp);
    } else if (op->disp < 0) {
        put(o, " - ");
        put_hex(o, -(uint64_t)op->disp);
    }
    put(o, "]");
}

int decoder_format(const struct decoded_insn *in, uint64_t rip, char *buf, size_t size)
{
    struct out o = {buf, size, 0};
    if (size)
        buf[0] = 0;
    if (in->status != DECODER_OK) {
        put(&o, "(bad)");
        return o.n;
    }
    if (in->prefixes & DPFX_LOCK)
        put(&o, "lock ");
    if ((in->flags & DFLAG_STRING) && (in->prefixes & DPFX_REP))
        put(&o, "rep ");
    else if ((in->flags & DFLAG_STRING) && (in->prefixes & DPFX_REPNE))
        put(&o, "repne ");
    put(&o, "%s", decoder_op_name(in->op));
    for (unsigned k = 0; k < in->nops; k++) {
        const struct decoder_operand *op = &in->ops[k];
        put(&o, k ? ", " : " ");
        switch (op->kind) {
        case DOPND_REG: put(&o, "%s", decoder_reg_name(op)); break;
        case DOPND_MEM: put_mem(&o, in, op); break;
        case DOPND_IMM:
            if (op->disp < 0 && op->size >= in->opsize && op->size > 1) {
                put(&o, "-");
                put_hex(&o, -(uint64_t)op->disp);
            } else {
                uint64_t mask = op->size >= 8 || op->size == 0 ? ~0ull : (1ull << (8 * op->size)) - 1;
                put_hex(&o, (uint64_t)op->disp & mask);
            }
            break;
        case DOPND_REL: {
            uint64_t t = rip + in->length + (uint64_t)op->disp;
            if (in->mode != DECODER_MODE_64)
                t &= in->opsize == 2 ? 0xffff : 0xffffffff;
            put_hex(&o, t);
            break;
        }
        case DOPND_FAR:
            put(&o, "0x%x:", op->far_seg);
            put_hex(&o, (uint64_t)op->disp);
            break;
        default: put(&o, "?"); break;
        }
    }
    return o.n;
}
