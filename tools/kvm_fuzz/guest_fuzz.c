/* kvm-fuzz --mode guest: random instruction bytes run by a 64-bit guest with 4-level
 * paging, at CPL0 or CPL3, among memory slots with awkward edges.
 *
 * Guest physical layout (every slot's host memory has PROT_NONE guard pages around it, so
 * a host access that leaves a slot faults and is reported as a guard touch):
 *   slot 0  0x000000 2 MiB   page tables, GDT, IDT, TSS, stacks, harness, random code
 *   slot 1  0x400000 64 KiB  KVM_MEM_READONLY, random pattern; must never change
 *   slot 2  0x600000 12 KiB  dirty-logged
 *   slot 3  0x603000 8 KiB   gpa-adjacent to slot 2, host memory elsewhere
 *   slot 4  0x605000 4 KiB   gpa- and host-adjacent to slot 3 (softkvm merges the two)
 *   slot 5  0x700000 4 KiB   host page PROT_NONE (guest access: KVM_RUN EFAULT)
 *   slot 6  0x800000 4 KiB   userspace_addr NULL (likewise)
 * Paging identity-maps 0-1 GiB with 2 MiB pages, plus: a page table outside every slot
 * (linear 0xa00000), a page table inside the read-only slot (0xc00000, so A/D updates
 * there must not write it), a PDE with reserved bits (0xe00000), a PDPT outside every
 * slot (linear 512 GiB) and a PML4E with reserved bits (1 TiB).
 *
 * Each iteration rewrites the system area, sets CPL0 or CPL3 state and runs:
 *   harness: `mov ecx,K; 1: mov rax,[rsi]; add [rdi],rax; mov rdx,[rbx]; xor rax,rdx;
 *            dec ecx; jnz 1b`, loads random GPRs, `out 0xf0,al`, jmp to the random code,
 * with rsi/rdi/rbx on slot edges (8-byte accesses across the slot 2/3 and 3/4 borders).
 * Counting: an iteration's harness instructions (1 + 6K + 16) are counted when its
 * `out 0xf0` exit arrives, i.e. when all of them have retired; this count is exact and
 * needs no single-stepping. The random code that follows runs until an exit (HLT in the
 * exception handler, I/O, MMIO, shutdown, EFAULT or the 20 ms timer); those runs are
 * counted as runs and exits, not as instructions. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "tools/kvm_fuzz/fuzz.h"

#define PAGE 4096u
#define SLOT0_SIZE 0x200000u
#define RO_GPA 0x400000u
#define RO_SIZE 0x10000u
#define S2_GPA 0x600000u
#define S3_GPA 0x603000u
#define S4_GPA 0x605000u
#define BAD_GPA 0x700000u
#define NULL_GPA 0x800000u
#define PML4 0x1000u
#define PDPT 0x2000u
#define PD 0x3000u
#define GDT 0x4000u
#define IDT 0x5000u
#define TSS 0x6000u
#define HANDLER 0x7000u
#define IST_TOP 0xa000u
#define RSP0_TOP 0xc000u
#define HARNESS 0x10000u
#define RANDOM_CODE 0x11000u
#define REGBLOCK 0x12000u
#define SYS_END 0x13000u
#define HARNESS_K 2000u
#define HARNESS_INSNS (1u + 6u * HARNESS_K + 16u) /* mov ecx, loop, 15 loads, out */
#define PORT_DONE 0xf0

struct gstate {
    struct fz_rng rng;
    int sys, vm, vcpu;
    struct kvm_run *run;
    long mmap_size;
    uint8_t *slot0, *ro, *s2, *s34, *bad;
    uint8_t ro_copy[RO_SIZE];
    uint8_t sys_template[SYS_END];
};

static uint64_t seed;
static bool quiet;

struct gtotals {
    uint64_t iters, insns, runs, exits_by_reason[64], efault, eintr, other_err, ro_mmio_writes,
        harness_done, cpl3;
};
static struct gtotals gt;

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static int must(long r, const char *what)
{
    if (r < 0) {
        fprintf(stderr, "kvm-fuzz guest: %s: %s\n", what, fz_errname(r));
        exit(2);
    }
    return (int)r;
}

static void add_slot(struct gstate *g, uint32_t slot, uint32_t flags, uint64_t gpa,
                     uint64_t size, void *host)
{
    struct kvm_userspace_memory_region m = {.slot = slot, .flags = flags,
                                            .guest_phys_addr = gpa, .memory_size = size,
                                            .userspace_addr = (uintptr_t)host};
    must(fz_ioctl(g->vm, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&m), "memory slot");
}

static void build_system_area(struct gstate *g)
{
    uint8_t *t = g->sys_template;
    memset(t, 0, sizeof g->sys_template);
    const uint64_t P = 1, W = 2, U = 4, PS = 0x80;
    /* page tables */
    put64(t + PML4, PDPT | P | W | U);
    put64(t + PML4 + 8, 0x7fff000 | P | W | U);        /* PDPT outside every slot */
    put64(t + PML4 + 16, 0x000ffffffffff000ull | P | W | U); /* reserved bits */
    put64(t + PDPT, PD | P | W | U);
    for (unsigned i = 0; i < 512; i++)
        put64(t + PD + 8 * i, (uint64_t)i << 21 | P | W | U | PS);
    put64(t + PD + 8 * 5, 0x3ff000 | P | W | U);          /* PT outside every slot */
    put64(t + PD + 8 * 6, (RO_GPA + 0xf000) | P | W | U); /* PT in the read-only slot */
    put64(t + PD + 8 * 7, 0x000f000000e00000ull | P | W | U | PS); /* reserved bits */
    /* GDT: null, kcode64, kdata, ucode32, udata, ucode64, TSS (16 bytes) */
    static const uint64_t gdt[] = {0, 0x00af9a000000ffffull, 0x00cf92000000ffffull,
                                   0x00cffa000000ffffull, 0x00cff2000000ffffull,
                                   0x00affa000000ffffull};
    memcpy(t + GDT, gdt, sizeof gdt);
    uint64_t tss_lo = 0x67 | (uint64_t)(TSS & 0xffffff) << 16 | 0xbull << 40 | 1ull << 47;
    put64(t + GDT + 0x30, tss_lo);
    /* IDT: every vector -> HANDLER, IST1, DPL3 (INT n from CPL3 works too) */
    for (unsigned v = 0; v < 256; v++) {
        uint8_t *e = t + IDT + 16 * v;
        uint64_t lo = (HANDLER & 0xffff) | 8ull << 16 | 1ull << 32 | 0xeeull << 40 |
                      (uint64_t)(HANDLER >> 16) << 48;
        put64(e, lo);
        put64(e + 8, 0);
    }
    /* TSS: RSP0, IST1 */
    put64(t + TSS + 4, RSP0_TOP);
    put64(t + TSS + 0x24, IST_TOP);
    /* exception handler: hlt (exit to user space ends the iteration) */
    static const uint8_t h[] = {0xf4, 0xeb, 0xfd};
    memcpy(t + HANDLER, h, sizeof h);
    /* harness */
    uint8_t *c = t + HARNESS;
    *c++ = 0xb9;                                    /* mov ecx, K */
    uint32_t k = HARNESS_K;
    memcpy(c, &k, 4);
    c += 4;
    uint8_t *loop = c;
    static const uint8_t body[] = {0x48, 0x8b, 0x06,  /* mov rax,[rsi] */
                                   0x48, 0x01, 0x07,  /* add [rdi],rax */
                                   0x48, 0x8b, 0x13,  /* mov rdx,[rbx] */
                                   0x48, 0x31, 0xd0,  /* xor rax,rdx */
                                   0xff, 0xc9};       /* dec ecx */
    memcpy(c, body, sizeof body);
    c += sizeof body;
    *c++ = 0x75;                                    /* jnz loop */
    *c = (uint8_t)(loop - (c + 1));
    c++;
    /* 15 loads of random GPRs from REGBLOCK: mov reg, [abs32] (all but rsp) */
    for (unsigned r = 0; r < 16; r++) {
        if (r == 4)
            continue;
        *c++ = (uint8_t)(0x48 | (r >= 8 ? 4 : 0));
        *c++ = 0x8b;
        *c++ = (uint8_t)(0x04 | (r & 7) << 3);
        *c++ = 0x25;
        uint32_t a = REGBLOCK + 8 * r;
        memcpy(c, &a, 4);
        c += 4;
    }
    *c++ = 0xe6;                                    /* out PORT_DONE, al */
    *c++ = PORT_DONE;
    *c++ = 0xe9;                                    /* jmp RANDOM_CODE */
    int32_t rel = (int32_t)(RANDOM_CODE - (HARNESS + (uint32_t)(c + 4 - (t + HARNESS))));
    memcpy(c, &rel, 4);
}

static uint64_t interesting_addr(struct gstate *g)
{
    static const uint64_t a[] = {
        SLOT0_SIZE - 1, SLOT0_SIZE - 4, SLOT0_SIZE - 8, SLOT0_SIZE, RO_GPA, RO_GPA + RO_SIZE - 8,
        RO_GPA + RO_SIZE - 3, RO_GPA + RO_SIZE, S2_GPA, S3_GPA - 4, S3_GPA - 1, S4_GPA - 4,
        S4_GPA + PAGE - 4, S4_GPA + PAGE, BAD_GPA, BAD_GPA + 8, NULL_GPA, NULL_GPA + 0xff8,
        0xa00000, 0xa00ff8, 0xc00000, 0xc01000, 0xe00000, 0x8000000000ull, 0x10000000000ull,
        0x800000000000ull, 0xffff800000000000ull, 0x20000, 0xfee00000, PML4, IDT, RANDOM_CODE,
    };
    struct fz_rng *r = &g->rng;
    if (fz_chance(r, 75))
        return a[fz_below(r, sizeof a / sizeof a[0])] + (fz_chance(r, 30) ? fz_below(r, 16) : 0);
    return fz_interesting(r);
}

static void setup(struct gstate *g)
{
    g->sys = must(fz_open_kvm(), "open /dev/kvm");
    g->mmap_size = must(fz_ioctl(g->sys, KVM_GET_VCPU_MMAP_SIZE, 0), "mmap size");
    g->vm = must(fz_ioctl(g->sys, KVM_CREATE_VM, 0), "KVM_CREATE_VM");
    fz_ioctl(g->vm, KVM_SET_TSS_ADDR, 0xfffbd000);
    g->slot0 = fz_map_guarded(SLOT0_SIZE / PAGE, 4, "slot 0 (0x000000, 2 MiB)");
    g->ro = fz_map_guarded(RO_SIZE / PAGE, 4, "slot 1 (read-only, 0x400000)");
    g->s2 = fz_map_guarded(3, 4, "slot 2 (0x600000, dirty-logged)");
    g->s34 = fz_map_guarded(3, 4, "slots 3+4 (0x603000-0x606000)");
    g->bad = fz_map_guarded(1, 4, "slot 5 (PROT_NONE host page)");
    mprotect(g->bad, PAGE, PROT_NONE);
    fz_fill(&g->rng, g->ro, RO_SIZE);
    memcpy(g->ro_copy, g->ro, RO_SIZE);
    add_slot(g, 0, 0, 0, SLOT0_SIZE, g->slot0);
    add_slot(g, 1, KVM_MEM_READONLY, RO_GPA, RO_SIZE, g->ro);
    add_slot(g, 2, KVM_MEM_LOG_DIRTY_PAGES, S2_GPA, 3 * PAGE, g->s2);
    add_slot(g, 3, 0, S3_GPA, 2 * PAGE, g->s34);
    add_slot(g, 4, 0, S4_GPA, PAGE, g->s34 + 2 * PAGE);
    add_slot(g, 5, 0, BAD_GPA, PAGE, g->bad);
    add_slot(g, 6, 0, NULL_GPA, PAGE, NULL);
    g->vcpu = must(fz_ioctl(g->vm, KVM_CREATE_VCPU, 0), "KVM_CREATE_VCPU");
    void *m = mmap(NULL, (size_t)g->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, g->vcpu, 0);
    if (m == MAP_FAILED) {
        perror("kvm-fuzz guest: mmap kvm_run");
        exit(2);
    }
    g->run = m;
    /* the supported CPUID, so SSE/long mode features are there as on a real host */
    static uint8_t cbuf[8 + 256 * sizeof(struct kvm_cpuid_entry2)];
    struct kvm_cpuid2 *c = (void *)cbuf;
    c->nent = 256;
    if (fz_ioctl(g->sys, KVM_GET_SUPPORTED_CPUID, (uintptr_t)c) >= 0)
        fz_ioctl(g->vcpu, KVM_SET_CPUID2, (uintptr_t)c);
    build_system_area(g);
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code, unsigned dpl)
{
    *s = (struct kvm_segment){.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
                              .present = 1, .dpl = (uint8_t)dpl, .db = !code, .s = 1,
                              .l = code, .g = 1};
}

static void prepare(struct gstate *g, bool cpl3)
{
    struct fz_rng *r = &g->rng;
    memcpy(g->slot0, g->sys_template, SYS_END);
    fz_fill(r, g->slot0 + RANDOM_CODE, PAGE);
    uint64_t *regs = (uint64_t *)(g->slot0 + REGBLOCK);
    for (unsigned i = 0; i < 16; i++)
        regs[i] = interesting_addr(g);
    /* harness pointers: 8-byte accesses at slot edges that stay inside guest memory */
    static const uint64_t rsi[] = {SLOT0_SIZE - 8, S3_GPA - 4, S4_GPA - 4, RO_GPA + RO_SIZE - 8};
    static const uint64_t rdi[] = {S2_GPA + 0x100, S3_GPA - 3, S4_GPA - 5, 0x30000};
    static const uint64_t rbx[] = {RO_GPA + 0x100, RO_GPA + RO_SIZE - 8, S4_GPA + PAGE - 8};

    struct kvm_sregs s;
    must(fz_ioctl(g->vcpu, KVM_GET_SREGS, (uintptr_t)&s), "KVM_GET_SREGS");
    if (cpl3) {
        seg(&s.cs, 0x2b, 0xb, true, 3);
        seg(&s.ss, 0x23, 3, false, 3);
    } else {
        seg(&s.cs, 0x08, 0xb, true, 0);
        seg(&s.ss, 0x10, 3, false, 0);
    }
    s.ds = s.es = s.fs = s.gs = s.ss;
    s.tr = (struct kvm_segment){.base = TSS, .limit = 0x67, .selector = 0x30, .type = 0xb,
                                .present = 1};
    s.ldt = (struct kvm_segment){.unusable = 1};
    s.gdt.base = GDT;
    s.gdt.limit = 0x3f;
    s.idt.base = IDT;
    s.idt.limit = 0xfff;
    s.cr0 = 0x80010033 & ~(fz_chance(r, 20) ? 0x10000ull : 0); /* WP sometimes off */
    s.cr3 = PML4;
    s.cr4 = 0x620;
    s.efer = 0xd01;
    memset(s.interrupt_bitmap, 0, sizeof s.interrupt_bitmap);
    must(fz_ioctl(g->vcpu, KVM_SET_SREGS, (uintptr_t)&s), "KVM_SET_SREGS");

    struct kvm_regs rg;
    memset(&rg, 0, sizeof rg);
    rg.rip = HARNESS;
    rg.rsp = fz_chance(r, 15) ? interesting_addr(g) : RSP0_TOP - 0x800;
    rg.rflags = 2 | (cpl3 ? 0x3000 : 0); /* IOPL 3: the harness's OUT works at CPL3 */
    rg.rsi = rsi[fz_below(r, 4)];
    rg.rdi = rdi[fz_below(r, 4)];
    rg.rbx = rbx[fz_below(r, 3)];
    must(fz_ioctl(g->vcpu, KVM_SET_REGS, (uintptr_t)&rg), "KVM_SET_REGS");
    struct kvm_vcpu_events ev;
    memset(&ev, 0, sizeof ev); /* no exception or interrupt left over from the last run */
    fz_ioctl(g->vcpu, KVM_SET_VCPU_EVENTS, (uintptr_t)&ev);
}

/* The transcript line of an iteration (not in --quiet). */
static void report(struct gstate *g, uint64_t it, bool cpl3, unsigned runs, const char *end)
{
    if (quiet)
        return;
    struct kvm_regs rg;
    uint64_t rip = fz_ioctl(g->vcpu, KVM_GET_REGS, (uintptr_t)&rg) < 0 ? ~0ull : rg.rip;
    printf("S=%llu it=%llu cpl=%u runs=%u end=%s rip=%#llx\n", (unsigned long long)seed,
           (unsigned long long)it, cpl3 ? 3 : 0, runs, end, (unsigned long long)rip);
}

/* One iteration: up to 32 KVM_RUNs, until an exit that ends it. */
static void iterate(struct gstate *g, uint64_t it)
{
    struct fz_rng *r = &g->rng;
    bool cpl3 = fz_chance(r, 50);
    gt.cpl3 += cpl3;
    prepare(g, cpl3);
    bool done = false;
    for (unsigned n = 0; n < 32; n++) {
        fz_set_context("guest seed %llu iteration %llu (CPL%u) KVM_RUN %u",
                       (unsigned long long)seed, (unsigned long long)it, cpl3 ? 3 : 0, n);
        fz_run_timer(20000);
        long rc = fz_ioctl(g->vcpu, KVM_RUN, 0);
        fz_run_timer(0);
        gt.runs++;
        if (rc < 0) {
            if (rc == -EINTR)
                gt.eintr++;
            else if (rc == -EFAULT)
                gt.efault++;
            else
                gt.other_err++;
            report(g, it, cpl3, n + 1, fz_errname(rc));
            return;
        }
        struct kvm_run *k = g->run;
        gt.exits_by_reason[k->exit_reason < 64 ? k->exit_reason : 63]++;
        switch (k->exit_reason) {
        case KVM_EXIT_IO:
            if (k->io.direction == KVM_EXIT_IO_OUT && k->io.port == PORT_DONE && !done) {
                done = true; /* random code jumping back into the harness is not counted */
                gt.insns += HARNESS_INSNS;
                gt.harness_done++;
            } else if (k->io.direction == KVM_EXIT_IO_IN) {
                fz_fill(r, (uint8_t *)k + k->io.data_offset, (size_t)k->io.size * k->io.count);
            }
            continue;
        case KVM_EXIT_MMIO:
            if (k->mmio.is_write && k->mmio.phys_addr >= RO_GPA &&
                k->mmio.phys_addr < RO_GPA + RO_SIZE)
                gt.ro_mmio_writes++;
            if (!k->mmio.is_write)
                fz_fill(r, k->mmio.data, sizeof k->mmio.data);
            continue;
        default: { /* HLT (exception handler), shutdown, internal error, ... */
            char e[32];
            snprintf(e, sizeof e, "exit%u", k->exit_reason);
            report(g, it, cpl3, n + 1, e);
            return;
        }
        }
    }
}

int fz_guest_main(const struct fz_opts *o)
{
    static struct gstate st;
    struct gstate *g = &st;
    seed = o->seed;
    quiet = o->quiet;
    fz_rng_seed(&g->rng, o->seed);
    setup(g);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int bad = 0;
    static uint64_t bitmap[8];
    for (uint64_t it = 0; it < o->count; it++) {
        iterate(g, it);
        gt.iters++;
        if (memcmp(g->ro, g->ro_copy, RO_SIZE)) {
            unsigned off = 0;
            while (g->ro[off] == g->ro_copy[off])
                off++;
            fprintf(stderr,
                    "kvm-fuzz guest: READ-ONLY SLOT CHANGED in iteration %llu: gpa %#x %#x -> %#x\n",
                    (unsigned long long)it, RO_GPA + off, g->ro_copy[off], g->ro[off]);
            bad = 1;
            memcpy(g->ro, g->ro_copy, RO_SIZE);
        }
        if (it % 64 == 63) {
            struct kvm_dirty_log d = {.slot = 2, .dirty_bitmap = bitmap};
            fz_ioctl(g->vm, KVM_GET_DIRTY_LOG, (uintptr_t)&d);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("kvm-fuzz guest: seed %llu backend %s: %llu iterations (%llu at CPL3) in %.1f s: "
           "%llu guest instructions counted (%llu harness runs), %llu KVM_RUNs, "
           "EFAULT %llu, EINTR %llu, other errors %llu, read-only slot MMIO writes %llu, "
           "read-only slot %s, %lu guard touches, 0 crashes\n",
           (unsigned long long)o->seed, fz_backend() == FZ_REAL ? "real" : "softkvm",
           (unsigned long long)gt.iters, (unsigned long long)gt.cpl3, secs,
           (unsigned long long)gt.insns, (unsigned long long)gt.harness_done,
           (unsigned long long)gt.runs, (unsigned long long)gt.efault,
           (unsigned long long)gt.eintr, (unsigned long long)gt.other_err,
           (unsigned long long)gt.ro_mmio_writes, bad ? "CHANGED" : "unchanged",
           fz_guard_touches);
    printf("exit reasons:");
    for (unsigned i = 0; i < 64; i++)
        if (gt.exits_by_reason[i])
            printf(" %u=%llu", i, (unsigned long long)gt.exits_by_reason[i]);
    printf("\n");
    return bad || fz_guard_touches;
}
