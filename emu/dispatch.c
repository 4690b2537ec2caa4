/* emu/: merges every semantic file's {DOP, handler} list into one DOP-indexed table,
 * once (pthread_once), on first use. */
#include <pthread.h>
#include <stddef.h>

#include "emu/internal.h"
#include "emu/simd_insn.h" /* emu_{simd,xsave,x87,avx,fma,aes}_handlers */

static const struct emu_handler_entry *const lists[] = {
    emu_alu_handlers,   emu_muldiv_handlers, emu_shift_handlers, emu_bit_handlers,
    emu_bcd_handlers,   emu_mov_handlers,    emu_stack_handlers, emu_branch_handlers,
    emu_string_handlers, emu_system_handlers, emu_io_handlers, emu_svm_handlers, emu_vmx_handlers,
    emu_smm_handlers,
    emu_simd_handlers,  emu_xsave_handlers,  emu_x87_handlers,   emu_avx_handlers,
    emu_fma_handlers,   emu_aes_handlers,
};

/* Ops that are CPL-0-only in every form (#GP(0) otherwise). The decoder's per-op
 * DFLAG_PRIVILEGED merges all forms of an op (MOV CRn is privileged, MOV r/m is not),
 * so the form-dependent cases (MOV CR/DR) check CPL in their handlers. */
static const uint16_t privileged_ops[] = {
    DOP_HLT, DOP_LGDT, DOP_LIDT, DOP_LLDT, DOP_LTR, DOP_LMSW, DOP_CLTS, DOP_INVLPG,
    DOP_INVD, DOP_WBINVD, DOP_RDMSR, DOP_WRMSR, DOP_SWAPGS, DOP_SYSRET, DOP_SYSEXIT,
    DOP_XSETBV, DOP_XSAVES, DOP_XRSTORS, DOP_CLAC, DOP_STAC,
};

static emu_handler_fn *table[DOP_COUNT]; /* written once under pthread_once, then immutable */
static emu_handler_fn *semantic[DOP_COUNT]; /* the lists' handlers only (emu/opcheck) */
static bool privileged[DOP_COUNT];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build(void)
{
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++)
        for (const struct emu_handler_entry *e = lists[l]; e->op; e++)
            if (e->op < DOP_COUNT)
                table[e->op] = semantic[e->op] = e->fn;
    /* the named missing ops (emu/insn_missing.c): #UD or INTERNAL_ERROR, never a NULL */
    for (const struct emu_missing_op *m = emu_missing_ops; m->op; m++)
        if (m->op < DOP_COUNT && !table[m->op])
            table[m->op] = emu_h_missing;
    for (size_t i = 0; i < sizeof privileged_ops / sizeof privileged_ops[0]; i++)
        privileged[privileged_ops[i]] = true;
}

bool emu_op_privileged(uint16_t op)
{
    pthread_once(&table_once, build);
    return op < DOP_COUNT && privileged[op];
}

emu_handler_fn *emu_handler_for(uint16_t op)
{
    pthread_once(&table_once, build);
    return op < DOP_COUNT ? table[op] : NULL;
}

emu_handler_fn *emu_semantic_handler_for(uint16_t op)
{
    pthread_once(&table_once, build);
    return op < DOP_COUNT ? semantic[op] : NULL;
}
