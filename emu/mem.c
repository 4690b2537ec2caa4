/* emu/: guest physical memory, the software TLB and linear-address accesses.
 *
 * The TLB maps linear pages to HOST pointers; an entry is created only after a full
 * page walk for exactly that access kind (read/write/fetch) and privilege succeeded
 * and the A/D bits were set, so a hit needs no further checks. It is flushed on CR3
 * writes, paging-related CR0/CR4/EFER changes, INVLPG/INVPCID and on a new physmem
 * generation. MMIO (no slot) and writes to read-only slots never enter it. */
#include <sched.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "emu/internal.h"

bool emu_host_read(void *dst, const void *host, size_t len)
{
    /* the kernel does the copy and says EFAULT instead of a SIGSEGV here */
    struct iovec l = {.iov_base = dst, .iov_len = len};
    struct iovec r = {.iov_base = (void *)host, .iov_len = len};
    return process_vm_readv(getpid(), &l, 1, &r, 1, 0) == (ssize_t)len;
}

/* The slot holding gpa: binary search over the gpa-sorted slots (KVM: search_memslots
 * over its gfn tree), so 32764 slots cost 15 steps on a TLB miss. */
static const struct emu_slot *gpa_slot(const struct emu_physmem *pm, uint64_t gpa)
{
    unsigned lo = 0, hi = pm->nslots;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const struct emu_slot *s = &pm->slots[mid];
        if (gpa < s->gpa)
            hi = mid;
        else if (gpa - s->gpa >= s->size)
            lo = mid + 1;
        else
            return s;
    }
    return NULL;
}

uint8_t *emu_gpa_to_host(const struct emu_physmem *pm, uint64_t gpa, uint64_t len, bool write)
{
    const struct emu_slot *s = gpa_slot(pm, gpa);
    if (!s || len > s->size - (gpa - s->gpa) || (write && s->readonly) || s->mem_fault)
        return NULL;
    return s->host + (gpa - s->gpa);
}

static void mark_dirty(const struct emu_slot *s, uint64_t gpa)
{
    if (s->dirty_bitmap) {
        uint64_t pfn = s->dirty_first + ((gpa - s->gpa) >> 12);
        __atomic_fetch_or(&s->dirty_bitmap[pfn / 64], 1ull << (pfn % 64), __ATOMIC_RELAXED);
    }
}

/* Guest-physical copies for structures the CPU itself reads and writes (VMCB, MSR and
 * I/O permission maps): RAM only, no MMIO; writes mark the dirty log. */
bool emu_phys_read(struct emu_vcpu *v, uint64_t gpa, void *buf, unsigned len)
{
    const uint8_t *p = emu_gpa_to_host(v->pm, gpa, len, false);
    if (!p)
        return false;
    memcpy(buf, p, len);
    return true;
}

bool emu_phys_write(struct emu_vcpu *v, uint64_t gpa, const void *buf, unsigned len)
{
    uint8_t *p = emu_gpa_to_host(v->pm, gpa, len, true);
    if (!p)
        return false;
    memcpy(p, buf, len);
    const struct emu_slot *s = gpa_slot(v->pm, gpa);
    for (uint64_t a = gpa & ~0xfffull; s && a < gpa + len; a += 4096) {
        mark_dirty(s, a);
        emu_code_store(v, s->host + (a - s->gpa)); /* e.g. a patched hypercall instruction */
    }
    return true;
}

/* KVM's clear/get-and-clear of the dirty log write-protects and flushes every vCPU's TLB
 * before returning (kvm_arch_mmu_enable_log_dirty_pt_masked + kvm_flush_remote_tlbs), so
 * an instruction writing a logged page either completed before (its bit was already set)
 * or faults afterwards and sets the bit again. Here the bit is set at the store, not at a
 * fault: a vCPU between the store and the end of its instruction could set a bit after
 * the VMM cleared it, or a pointer user (LOCK op, bulk string copy, marked before) could
 * store after the clear. So the VMM side waits, after clearing, until the instruction in
 * flight has retired: icount moves on, or the vCPU leaves emu_run (dirty_busy back to 0).
 * dirty_busy only says "this run has written a logged page", so the interpreter loop
 * pays nothing per instruction for it. Never called from v's own thread while v runs. */
void emu_dirty_log_sync(struct emu_vcpu *v)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* the bitmap clear before the busy read */
    if (!__atomic_load_n(&v->dirty_busy, __ATOMIC_ACQUIRE))
        return;
    uint64_t seen = __atomic_load_n(&v->icount, __ATOMIC_ACQUIRE);
    while (__atomic_load_n(&v->dirty_busy, __ATOMIC_ACQUIRE) &&
           __atomic_load_n(&v->icount, __ATOMIC_ACQUIRE) == seen)
        sched_yield();
}

void emu_tlb_flush(struct emu_vcpu *v)
{
    memset(v->tlb, 0, sizeof v->tlb);
    v->fetch_tag = 0;
    v->blk_break = true; /* the running block was fetched through the old translations */
    v->chain_gen++;      /* and so were its chains */
}

void emu_tlb_flush_page(struct emu_vcpu *v, uint64_t lin)
{
    /* Entries are 4K-granular even for 2M/1G mappings, and INVLPG of any address in a
     * large page must drop the whole page (SDM vol.3 4.10.4.1): flush everything. */
    (void)lin;
    emu_tlb_flush(v);
}

static inline unsigned tlb_kind(struct emu_vcpu *v, unsigned acc)
{
    bool user = v->cpu.cpl == 3 && !(acc & EMU_ACC_SYS);
    return (acc & EMU_ACC_KIND) + (user ? 3 : 0);
}

/* Translate one linear address to a host pointer (fast path) or NULL if the target is
 * MMIO / read-only-for-write. *gpa_out always gets the guest-physical address. Faults. */
static uint8_t *translate(struct emu_vcpu *v, uint64_t lin, unsigned acc, uint64_t *gpa_out)
{
    unsigned k = tlb_kind(v, acc);
    struct emu_tlb_entry *e = &v->tlb[k][(lin >> 12) % EMU_TLB_SIZE];
    uint64_t tag = (lin & ~0xfffull) | 1;
    if (e->tag == tag) {
        *gpa_out = e->gpa | (lin & 0xfff);
        return e->host + (lin & 0xfff);
    }
    uint64_t gpa;
    uint32_t ec = emu_walk(v, lin, acc, true, &gpa, NULL, NULL);
    if (ec)
        emu_raise_pf(v, lin, EMU_WALK_PFERR(ec));
    *gpa_out = gpa;
    const struct emu_slot *s = gpa_slot(v->pm, gpa);
    bool write = (acc & EMU_ACC_KIND) == EMU_ACC_WRITE;
    if (s && s->mem_fault)
        emu_memory_fault(v, gpa); /* never MMIO: KVM emulates no MMIO for private memory */
    if (!s || (write && s->readonly))
        return NULL;
    uint8_t *host = s->host + (gpa - s->gpa);
    /* a store to a page holding blocks (self-modifying code): they are revalidated, and
     * this store is not cached so the page is watched again once code runs there */
    bool code = write && emu_code_store(v, host - (lin & 0xfff));
    /* dirty-log marking, before the store as KVM's write fault does; with dirty_busy up
     * until the instruction ends, a clear (emu_dirty_log_sync) cannot return between the
     * mark and the store, so a store is never left after a clear without its bit, and a
     * bit is never set long after its store (dirty_log_test's "value too old") */
    if (write && s->dirty_bitmap && !v->dirty_busy)
        __atomic_store_n(&v->dirty_busy, 1, __ATOMIC_SEQ_CST);
    if (write)
        mark_dirty(s, gpa);
    /* pages of a dirty-logged slot are not cached for writes: each write marks the log */
    if (!(write && s->dirty_bitmap) && !code) {
        e->tag = tag;
        e->host = host - (lin & 0xfff);
        e->gpa = gpa & ~0xfffull;
    }
    return host;
}

/* MMIO, in pieces of at most 8 bytes with one exit each, as KVM's fragments (x86.c
 * emulator_read_write_onepage, complete_emulated_mmio: run->mmio.len = min(8, len)).
 * A read piece suspends the instruction until the VMM answers; it then restarts and is
 * served, in order, the answers it already has (KVM's read cache, emulate.c
 * read_emulated), so each piece is asked for once. Writes are recorded: the first piece
 * is reported once the instruction completes (RIP already advanced, as KVM does), the
 * others by the following emu_runs before the guest goes on. */
void emu_mmio_drop(struct emu_vcpu *v)
{
    v->mmio_nrd = v->mmio_rdpos = 0;
    v->mmio_replay = false;
}

/* The KVM_EXIT_MMIO of one piece (at most 8 bytes): a read when data is NULL. */
static void mmio_exit(struct emu_vcpu *v, uint64_t gpa, unsigned n, const uint8_t *data)
{
    struct emu_exit *x = v->exit;
    x->reason = EMU_EXIT_MMIO;
    x->mmio.gpa = gpa;
    x->mmio.len = (uint8_t)n;
    x->mmio.is_write = data != NULL;
    x->mmio.rip = v->insn_rip;
    memset(x->mmio.data, 0, sizeof x->mmio.data);
    if (data)
        memcpy(x->mmio.data, data, n);
}

static void mmio_read(struct emu_vcpu *v, uint64_t gpa, void *buf, unsigned len)
{
    uint8_t *b = buf;
    for (unsigned n; len; gpa += n, b += n, len -= n) {
        n = len > 8 ? 8 : len;
        if (v->mmio_rdpos < v->mmio_nrd) {
            const struct emu_mmio_piece *p = &v->mmio_rd[v->mmio_rdpos];
            if (p->gpa == gpa && p->len == n) {
                memcpy(b, p->data, n);
                v->mmio_rdpos++;
                continue;
            }
            v->mmio_nrd = v->mmio_rdpos; /* it went another way: the rest is not its */
        }
        /* a read after a recorded write, or more pieces than one instruction has */
        if (v->exit_ready || v->mmio_nrd == EMU_MMIO_PIECES)
            emu_unimplemented(v);
        mmio_exit(v, gpa, n, NULL);
        v->pending = EMU_PEND_MMIO_READ;
        v->mmio_gpa = gpa;
        v->mmio_len = (uint8_t)n;
        v->mmio_rip = v->insn_rip;
        emu_suspend(v);
    }
}

static void mmio_write(struct emu_vcpu *v, uint64_t gpa, const void *buf, unsigned len)
{
    const uint8_t *b = buf;
    for (unsigned n; len; gpa += n, b += n, len -= n) {
        n = len > 8 ? 8 : len;
        if (v->exit_ready) {
            if (v->mmio_nwr == EMU_MMIO_WPIECES)
                emu_unimplemented(v);
            struct emu_mmio_piece *p = &v->mmio_wr[v->mmio_nwr++];
            p->gpa = gpa;
            p->len = (uint8_t)n;
            memset(p->data, 0, sizeof p->data);
            memcpy(p->data, b, n);
            v->mmio_wrip = v->insn_rip;
            continue;
        }
        mmio_exit(v, gpa, n, b);
        v->exit_ready = true;
    }
}

/* The next recorded write piece of the last instruction as this run's exit; false if
 * none is left. */
bool emu_mmio_next_write(struct emu_vcpu *v)
{
    if (v->mmio_wrpos >= v->mmio_nwr) {
        v->mmio_nwr = v->mmio_wrpos = 0;
        return false;
    }
    const struct emu_mmio_piece *p = &v->mmio_wr[v->mmio_wrpos++];
    struct emu_exit *x = v->exit;
    x->reason = EMU_EXIT_MMIO;
    x->mmio.gpa = p->gpa;
    x->mmio.len = p->len;
    x->mmio.is_write = true;
    x->mmio.rip = v->mmio_wrip;
    memcpy(x->mmio.data, p->data, sizeof x->mmio.data);
    if (v->mmio_wrpos == v->mmio_nwr)
        v->mmio_nwr = v->mmio_wrpos = 0;
    return true;
}

/* A guest access of 1, 2, 4 or 8 bytes is one host load or store: aligned accesses of
 * these sizes (and unaligned ones within a cache line) are single-copy atomic (SDM vol.3
 * 9.1.1), and another vCPU must never see half of one. A variable-size memcpy() gives no
 * such promise, and in a program that defines its own memcpy (the KVM selftests link a
 * byte loop, string_override.c, which the preload library's calls bind to) it copies
 * byte by byte: hyperv_tlb_flush's worker read a half-written expectation
 * (0x0000000000020202 for 0x0202020202020202). Larger accesses (SSE, x87, buffers) are
 * copied in 8-byte pieces, which is what the SDM promises for them. */
static inline void copy_guest(void *dst, const void *src, unsigned len)
{
    switch (len) {
    case 1: *(uint8_t *)dst = *(const uint8_t *)src; return;
    case 2: { uint16_t x; memcpy(&x, src, 2); memcpy(dst, &x, 2); return; }
    case 4: { uint32_t x; memcpy(&x, src, 4); memcpy(dst, &x, 4); return; }
    case 8: { uint64_t x; memcpy(&x, src, 8); memcpy(dst, &x, 8); return; }
    default: break;
    }
    uint8_t *d = dst;
    const uint8_t *s = src;
    for (; len >= 8; len -= 8, d += 8, s += 8) {
        uint64_t x;
        memcpy(&x, s, 8);
        memcpy(d, &x, 8);
    }
    for (; len; len--)
        *d++ = *s++;
}

/* Copy within one page. */
/* `write` is the data direction; `acc` the permission check (a read may be checked as
 * a write, e.g. the read half of a read-modify-write). */
static void access_page(struct emu_vcpu *v, uint64_t lin, void *buf, unsigned len, unsigned acc,
                        bool write)
{
    uint64_t gpa;
    uint8_t *h = translate(v, lin, acc, &gpa);
    if (h) {
        if (write) {
            copy_guest(h, buf, len);
        } else {
            copy_guest(buf, h, len);
        }
    } else if (write) {
        mmio_write(v, gpa, buf, len);
    } else {
        mmio_read(v, gpa, buf, len);
    }
}

static void access_buf(struct emu_vcpu *v, uint64_t lin, void *buf, unsigned len, unsigned acc,
                       bool write)
{
    if (!v->long_mode)
        lin = (uint32_t)lin;
    unsigned first = 4096 - (lin & 0xfff);
    if (len <= first) {
        access_page(v, lin, buf, len, acc, write);
        return;
    }
    /* page crossing: check both pages before writing either (no partial writes) */
    if (write) {
        uint64_t g;
        translate(v, lin, acc, &g);
        translate(v, v->long_mode ? lin + first : (uint32_t)(lin + first), acc, &g);
    }
    uint8_t *b = buf;
    while (len) {
        unsigned n = 4096 - (lin & 0xfff);
        if (n > len)
            n = len;
        access_page(v, lin, b, n, acc, write);
        lin = v->long_mode ? lin + n : (uint32_t)(lin + n);
        b += n;
        len -= n;
    }
}

uint64_t emu_lin_read(struct emu_vcpu *v, uint64_t lin, unsigned size, unsigned acc)
{
    if (__builtin_expect(v->dbg_data, 0))
        emu_debug_data(v, lin, size, false);
    struct emu_tlb_entry *e = &v->tlb[tlb_kind(v, acc)][(lin >> 12) % EMU_TLB_SIZE];
    if (e->tag == ((lin & ~0xfffull) | 1) && (lin & 0xfff) + size <= 4096) {
        const uint8_t *p = e->host + (lin & 0xfff);
        switch (size) {
        case 1: return *p;
        case 2: { uint16_t x; memcpy(&x, p, 2); return x; }
        case 4: { uint32_t x; memcpy(&x, p, 4); return x; }
        default: { uint64_t x; memcpy(&x, p, 8); return x; }
        }
    }
    uint64_t x = 0;
    access_buf(v, lin, &x, size, acc, false);
    return x;
}

void emu_lin_write(struct emu_vcpu *v, uint64_t lin, unsigned size, uint64_t val, unsigned acc)
{
    acc = (acc & ~EMU_ACC_KIND) | EMU_ACC_WRITE;
    if (__builtin_expect(v->dbg_data, 0))
        emu_debug_data(v, lin, size, true);
    struct emu_tlb_entry *e = &v->tlb[tlb_kind(v, acc)][(lin >> 12) % EMU_TLB_SIZE];
    if (e->tag == ((lin & ~0xfffull) | 1) && (lin & 0xfff) + size <= 4096) {
        copy_guest(e->host + (lin & 0xfff), &val, size); /* one store, see copy_guest */
        return;
    }
    access_buf(v, lin, &val, size, acc, true);
}

void emu_lin_read_buf(struct emu_vcpu *v, uint64_t lin, void *buf, unsigned len, unsigned acc)
{
    if (__builtin_expect(v->dbg_data, 0) && (acc & EMU_ACC_KIND) != EMU_ACC_FETCH)
        emu_debug_data(v, lin, len, false);
    access_buf(v, lin, buf, len, acc, false);
}

void emu_lin_write_buf(struct emu_vcpu *v, uint64_t lin, const void *buf, unsigned len,
                       unsigned acc)
{
    if (__builtin_expect(v->dbg_data, 0))
        emu_debug_data(v, lin, len, true);
    access_buf(v, lin, (void *)buf, len, (acc & ~EMU_ACC_KIND) | EMU_ACC_WRITE, true);
}

bool emu_lin_probe_write(struct emu_vcpu *v, uint64_t lin, unsigned size)
{
    if (!v->long_mode)
        lin = (uint32_t)lin;
    uint64_t last = v->long_mode ? lin + size - 1 : (uint32_t)(lin + size - 1), gpa;
    bool ram = translate(v, lin, EMU_ACC_WRITE, &gpa) != NULL;
    if ((last ^ lin) & ~0xfffull)
        ram = (translate(v, last, EMU_ACC_WRITE, &gpa) != NULL) && ram;
    return ram;
}

void *emu_lin_ptr(struct emu_vcpu *v, uint64_t lin, unsigned size, unsigned acc)
{
    if (__builtin_expect(v->dbg_data, 0))
        emu_debug_data(v, lin, size, (acc & EMU_ACC_KIND) == EMU_ACC_WRITE);
    if (!v->long_mode)
        lin = (uint32_t)lin;
    if ((lin & 0xfff) + size > 4096)
        return NULL;
    uint64_t gpa;
    return translate(v, lin, acc, &gpa);
}

/* Fetch helper for the run loop: host pointer to the code at lin and the number of
 * bytes readable there before the page ends (0 + *gpa for MMIO code). */
uint8_t *emu_fetch_ptr(struct emu_vcpu *v, uint64_t lin, unsigned *avail, uint64_t *gpa)
{
    if (!v->long_mode)
        lin = (uint32_t)lin;
    uint64_t tag = (lin & ~0xfffull) | ((uint64_t)v->cpu.cpl << 1) | 1;
    *avail = 4096 - (lin & 0xfff);
    if (v->fetch_tag == tag) {
        *gpa = v->fetch_gpa | (lin & 0xfff);
        return v->fetch_host + (lin & 0xfff);
    }
    uint8_t *h = translate(v, lin, EMU_ACC_FETCH, gpa);
    if (h) {
        v->fetch_tag = tag;
        v->fetch_host = h - (lin & 0xfff);
        v->fetch_gpa = *gpa & ~0xfffull;
    }
    return h;
}
