/* emu/: the block cache. Guest code is decoded once into blocks of instruction records
 * whose handler is resolved at translation; the run loop (run.c) looks a block up, checks
 * that guest memory still holds its bytes, and runs its records back to back.
 *
 * Blocks live in one arena per vCPU (mmap'd, committed as it fills) and are found through
 * a direct-mapped table keyed by guest-physical address and decoder mode; a full arena is
 * recycled whole, as QEMU's TCG flushes its translation buffer. Nothing is ever freed one
 * by one, so a block stays intact while it runs even if the table entry is replaced.
 *
 * Keeping blocks true to guest memory (SDM vol.3 8.1.3, 11.6), per page and per epoch:
 * - the vCPU's own stores (self-modifying code, no serialization needed): every page that
 *   holds a valid block is in the vCPU's code set, and a page in the set never gets a
 *   write TLB entry, so each store to it takes the slow path (mem.c translate), which
 *   takes the page out of the set and starts a new code epoch; a store into the running
 *   block also ends it after the store.
 * - writes the vCPU cannot observe (the VMM's own mapping, e.g. virtio DMA of a program
 *   the guest will run, and other vCPUs' stores): the architecture requires the executing
 *   CPU to serialize before running cross-modified code, and it learns of them through an
 *   interrupt (an IPI, a DMA completion) or a new KVM_RUN; so external events, serializing
 *   instructions and emu_run entry start a new epoch too.
 * A block validated in an older epoch is compared byte for byte with guest memory at its
 * next entry (and its page re-enters the set); in the current epoch it runs as it is. */
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include "emu/internal.h"

#define BMAP_SIZE 8192
#define ARENA_SIZE (64u << 20) /* reserved, not committed: pages are touched as it fills */
#define CODE_SET 4096          /* direct-mapped set of host code pages */

struct emu_bcache {
    struct emu_block *map[BMAP_SIZE];
    uintptr_t code[CODE_SET]; /* host page addresses of pages with valid blocks; 0 = none */
    uint8_t *arena;
    size_t used;
};

static inline unsigned code_index(uintptr_t page)
{
    return (unsigned)(((page >> 12) * 0x9e3779b97f4a7c15ull) >> 52) % CODE_SET;
}

/* Watch a page: its write TLB entries go, so the next own store to it is seen. */
static void code_watch(struct emu_vcpu *v, const uint8_t *h)
{
    uintptr_t page = (uintptr_t)h & ~(uintptr_t)0xfff;
    uintptr_t *slot = &v->bcache->code[code_index(page)];
    if (*slot == page)
        return;
    if (*slot)
        v->code_epoch++; /* the evicted page is no longer watched: revalidate everything */
    *slot = page;
    for (unsigned k = EMU_ACC_WRITE; k < EMU_TLB_KINDS; k += 3)
        for (unsigned i = 0; i < EMU_TLB_SIZE; i++)
            if ((uintptr_t)v->tlb[k][i].host == page)
                v->tlb[k][i].tag = 0;
}

bool emu_code_store(struct emu_vcpu *v, const uint8_t *host_page)
{
    struct emu_bcache *bc = v->bcache;
    if (!bc)
        return false;
    uintptr_t page = (uintptr_t)host_page;
    uintptr_t *slot = &bc->code[code_index(page)];
    if (*slot != page)
        return false;
    *slot = 0;
    v->code_epoch++;
    if (host_page == v->code_page)
        v->blk_break = true;
    return true;
}

/* Instructions after which cross-modified code must be visible (SDM vol.3 8.1.3, 9.3
 * serializing instructions), plus HLT (woken by an event) and the world switches. Not
 * IRET: it returns from an event, and an interrupt has started an epoch already; counting
 * it (and exceptions) would revalidate all code at every page fault of a guest kernel. */
static bool serializing(const struct decoded_insn *d)
{
    switch (d->op) {
    case DOP_CPUID: case DOP_INVD:
    case DOP_WBINVD: case DOP_WRMSR: case DOP_LGDT: case DOP_LIDT: case DOP_LLDT:
    case DOP_LTR: case DOP_RSM: case DOP_INVLPG: case DOP_INVPCID: case DOP_HLT:
    case DOP_VMRUN: case DOP_VMLAUNCH: case DOP_VMRESUME:
        return true;
    case DOP_MOV:
        return d->ops[0].kind == DOPND_REG && d->ops[0].reg_class == DREG_CR;
    default:
        return false;
    }
}

static inline unsigned bmap_index(uint64_t gpa)
{
    return (unsigned)((gpa ^ (gpa >> 12) ^ (gpa >> 24)) % BMAP_SIZE);
}

bool emu_block_cache_alloc(struct emu_vcpu *v)
{
    if (v->bcache)
        return true;
    struct emu_bcache *bc = mmap(NULL, sizeof *bc, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (bc == MAP_FAILED)
        return false;
    bc->arena = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (bc->arena == MAP_FAILED) {
        munmap(bc, sizeof *bc);
        return false;
    }
    bc->used = 0;
    v->bcache = bc;
    return true;
}

void emu_block_cache_free(struct emu_vcpu *v)
{
    if (!v->bcache)
        return;
    munmap(v->bcache->arena, ARENA_SIZE);
    munmap(v->bcache, sizeof *v->bcache);
    v->bcache = NULL;
}

int emu_h_priv(struct emu_vcpu *v, const struct decoded_insn *d)
{
    if (v->cpu.cpl != 0)
        emu_raise(v, EMU_GP, 0); /* CPL-0-only op (emu_op_privileged) */
    const struct emu_binsn *r =
        (const struct emu_binsn *)((const uint8_t *)d - offsetof(struct emu_binsn, d));
    return r->real(v, d);
}

void emu_block_cache_flush(struct emu_vcpu *v)
{
    struct emu_bcache *bc = v->bcache;
    if (!bc)
        return;
    memset(bc->map, 0, sizeof bc->map);
    memset(bc->code, 0, sizeof bc->code);
    /* the running block (if any) keeps its memory until the next translation; new
     * blocks are only made at block boundaries (emu_block_get), never inside one */
    bc->used = 0;
    v->blk_break = true;
    v->chain_gen++;
}

int emu_h_invalid(struct emu_vcpu *v, const struct decoded_insn *d)
{
    if (d->status == DECODER_UD)
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    if (d->status == DECODER_TOO_LONG)
        emu_raise(v, EMU_GP, 0); /* > 15 bytes (SDM vol.2 2.3.11) */
    emu_unimplemented(v);
}

/* The decoder's DFLAG_ENDS_BLOCK is per op and merges all forms: MOV and POP end a block
 * only in their segment / control / debug register forms (a new SS shadow, mode or
 * paging), not as plain data moves. A conditional jump does not end it either: the
 * fall-through goes on in the same block, and when the jump is taken the run loop leaves
 * the block there (next_rip moved) and chains the target like any other successor. */
static bool ends_block(const struct decoded_insn *d)
{
    if (d->op >= DOP_JO && d->op <= DOP_JG)
        return false;
    if (d->op == DOP_MOV || d->op == DOP_POP) {
        for (unsigned i = 0; i < d->nops; i++) {
            const struct decoder_operand *o = &d->ops[i];
            if (o->kind == DOPND_REG &&
                (o->reg_class == DREG_SEG || o->reg_class == DREG_CR || o->reg_class == DREG_DR))
                return true;
        }
        return false;
    }
    return d->flags & (DFLAG_BRANCH | DFLAG_ENDS_BLOCK);
}

/* Decode the block at h into the arena. Worst case per record: one emu_binsn. */
static struct emu_block *translate(struct emu_vcpu *v, const uint8_t *h, unsigned avail,
                                         uint64_t gpa, unsigned idx)
{
    struct emu_bcache *bc = v->bcache;
    size_t need = sizeof(struct emu_block) + EMU_BLOCK_MAX * sizeof(struct emu_binsn) + 4096;
    if (bc->used + need > ARENA_SIZE) {
        memset(bc->map, 0, sizeof bc->map);
        bc->used = 0;
        v->chain_gen++; /* chains may point into the recycled arena */
    }
    bool serial = false, cond = false;
    struct emu_block *b = (struct emu_block *)(bc->arena + bc->used);
    unsigned n = 0, off = 0;
    while (n < EMU_BLOCK_MAX && off < avail) {
        struct emu_binsn *r = &b->ins[n];
        enum decoder_status st = decoder_decode(h + off, avail - off, v->mode, &r->d);
        if (st == DECODER_TRUNCATED)
            break; /* crosses the page: the single-instruction path decodes it */
        /* a serializing instruction past a conditional jump starts its own block: the
         * run loop starts the new epoch at the entry of a block that holds one, which
         * must be the path that reaches it, not every pass through the jump */
        if (st == DECODER_OK && cond && serializing(&r->d))
            break;
        r->off = (uint16_t)off;
        r->fn = st == DECODER_OK ? emu_handler_for(r->d.op) : NULL;
        r->priv = st == DECODER_OK && emu_op_privileged(r->d.op);
        if (!r->fn) {
            r->fn = emu_h_invalid;
        } else if (r->priv) {
            r->real = r->fn;
            r->fn = emu_h_priv;
        } else {
            r->fn = emu_fast_handler(&r->d, r->fn);
        }
        n++;
        off += r->d.length;
        bool ser = st == DECODER_OK && serializing(&r->d);
        serial |= ser;
        cond |= st == DECODER_OK && r->d.op >= DOP_JO && r->d.op <= DOP_JG;
        if (st != DECODER_OK || r->fn == emu_h_invalid || ser || ends_block(&r->d))
            break;
    }
    if (n == 0)
        return NULL;
    b->gpa = gpa;
    b->mode = (uint8_t)v->mode;
    b->n = (uint16_t)n;
    b->nbytes = (uint16_t)off;
    b->serial = serial;
    b->host = h;
    b->succ[0] = b->succ[1] = NULL;
    b->succ_gen[0] = b->succ_gen[1] = 0;
    b->succ_rip[0] = b->succ_rip[1] = 0;
    b->epoch = v->code_epoch;
    uint8_t *copy = (uint8_t *)&b->ins[n];
    memcpy(copy, h, off);
    b->bytes = copy;
    bc->used += ((size_t)(copy + off - (uint8_t *)b) + 15) & ~(size_t)15;
    bc->map[idx] = b;
    code_watch(v, h);
    return b;
}

struct emu_block *emu_block_get(struct emu_vcpu *v, const uint8_t *h, unsigned avail,
                                      uint64_t gpa)
{
    unsigned idx = bmap_index(gpa);
    struct emu_block *b = v->bcache->map[idx];
    if (__builtin_expect(b && b->gpa == gpa && b->mode == v->mode, 1)) {
        if (__builtin_expect(b->epoch == v->code_epoch, 1))
            return b;
        if (b->nbytes <= avail && !memcmp(b->bytes, h, b->nbytes)) {
            b->epoch = v->code_epoch;
            code_watch(v, h);
            return b;
        }
    }
    return translate(v, h, avail, gpa, idx);
}
