/* kvm-fuzz: argument shapes. Each fills an ioctl's argument with values that are mostly
 * near the edges KVM validates (counts at and past their limits, flag bits just outside
 * the valid set, unaligned and wrapping addresses) and sometimes plain random, and
 * returns how many bytes the kernel may read or write there (so a pointer can be made to
 * straddle the end of a mapping exactly inside the argument). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tools/kvm_fuzz/ioctl_fuzz.h"

#define R (&f->rng)
#define MIN(a, b) ((a) < (b) ? (a) : (b))

void fz_argf(struct fz_state *f, const char *fmt, ...)
{
    size_t n = strlen(f->args);
    if (n >= sizeof f->args - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->args + n, sizeof f->args - n, fmt, ap);
    va_end(ap);
}

/* A count: mostly small, sometimes right at or past a limit, sometimes huge. */
static uint32_t count(struct fz_state *f, uint32_t limit)
{
    switch (fz_below(R, 8)) {
    case 0: return 0;
    case 1: return 1;
    case 2: case 3: return (uint32_t)fz_below(R, 8);
    case 4: return limit - 1 + (uint32_t)fz_below(R, 3);
    case 5: return (uint32_t)fz_below(R, limit + 1);
    case 6: return 0xffffffffu - (uint32_t)fz_below(R, 2);
    default: return (uint32_t)fz_interesting(R);
    }
}

/* Pointer fields inside an argument: a buffer in arena2 or a bad pointer. */
uint64_t fz_nested_ptr(struct fz_state *f, size_t len, const char *what)
{
    size_t cap = ARENA_PAGES * 4096;
    len = MIN(len, cap);
    unsigned c = (unsigned)fz_below(R, 100);
    uint8_t *p;
    if (c < 70) {
        p = f->arena2;
        fz_argf(f, " %s=valid", what);
    } else if (c < 77) {
        fz_argf(f, " %s=null", what);
        return 0;
    } else if (c < 84) {
        fz_argf(f, " %s=prot_none", what);
        return (uintptr_t)f->protnone;
    } else if (c < 92 && len > 1) {
        size_t k = 1 + fz_below(R, len - 1); /* the first k bytes are readable */
        fz_argf(f, " %s=straddle%zu/%zu", what, k, len);
        p = f->arena2 + cap - k;
    } else if (c < 96) {
        fz_argf(f, " %s=ro", what);
        return (uintptr_t)f->ro;
    } else {
        fz_argf(f, " %s=kernel", what);
        return 0xffff888000000000ull;
    }
    size_t room = (size_t)(f->arena2 + cap - p);
    fz_fill(R, p, MIN(len, room));
    return (uintptr_t)p;
}

int fz_pick_fd(struct fz_state *f)
{
    switch (fz_below(R, 6)) {
    case 0: case 1: case 2: fz_argf(f, " fd=efd"); return f->efd;
    case 3: fz_argf(f, " fd=efd2"); return f->efd2;
    case 4: fz_argf(f, " fd=null"); return f->nullfd;
    default: fz_argf(f, " fd=-1"); return -1;
    }
}

static const uint32_t msr_pick[] = {
    0x10, 0x1b, 0x3a, 0x48, 0x8b, 0xfe, 0x10a, 0x174, 0x175, 0x176, 0x1a0, 0x1d9, 0x200,
    0x201, 0x277, 0x2ff, 0x345, 0x400, 0x401, 0x47f, 0x480, 0x48d, 0x4d0, 0x6e0, 0x800,
    0x808, 0x830, 0x83f, 0x8ff, 0xc0000080, 0xc0000081, 0xc0000082, 0xc0000100,
    0xc0000102, 0xc0000103, 0xc0010010, 0xc0010114, 0xc0010117, 0x4b564d00, 0x4b564d01,
    0x4b564d02, 0x4b564d03, 0x4b564d04, 0x4b564d05, 0x40000000, 0x40000001, 0xdeadbeef,
};

static uint32_t pick_msr(struct fz_state *f)
{
    if (fz_chance(R, 85))
        return msr_pick[fz_below(R, sizeof msr_pick / sizeof msr_pick[0])] +
               (fz_chance(R, 10) ? (uint32_t)fz_below(R, 4) : 0);
    return (uint32_t)fz_interesting(R);
}

SHAPE(msr_list)
{
    struct kvm_msr_list *l = (void *)buf;
    l->nmsrs = count(f, 64);
    fz_argf(f, " nmsrs=%u", l->nmsrs);
    return MIN(cap, 4 + 4 * (size_t)MIN(l->nmsrs, 4096u));
}

static size_t cpuid_common(struct fz_state *f, uint8_t *buf, size_t cap, size_t esz)
{
    struct kvm_cpuid2 *c = (void *)buf;
    c->nent = count(f, 256);
    c->padding = fz_chance(R, 90) ? 0 : (uint32_t)fz_rand(R);
    size_t n = MIN(c->nent, 300u);
    uint8_t *e = buf + 8;
    fz_fill(R, e, n * esz);
    for (size_t i = 0; i < n; i++) {
        uint32_t fn;
        static const uint32_t fns[] = {0, 1, 4, 7, 0xb, 0xd, 0x14, 0x1f, 0x40000000,
                                       0x40000001, 0x80000000, 0x80000001, 0x80000008};
        fn = fz_chance(R, 85) ? fns[fz_below(R, sizeof fns / 4)] : (uint32_t)fz_rand(R);
        memcpy(e + i * esz, &fn, 4);
        if (esz == sizeof(struct kvm_cpuid_entry2)) {
            uint32_t idx = (uint32_t)fz_below(R, 3), fl = (uint32_t)fz_below(R, 8);
            memcpy(e + i * esz + 4, &idx, 4);
            memcpy(e + i * esz + 8, &fl, 4);
        }
    }
    fz_argf(f, " nent=%u", c->nent);
    return MIN(cap, 8 + n * esz);
}

SHAPE(cpuid2) { return cpuid_common(f, buf, cap, sizeof(struct kvm_cpuid_entry2)); }
SHAPE(cpuid1) { return cpuid_common(f, buf, cap, sizeof(struct kvm_cpuid_entry)); }

SHAPE(msrs)
{
    struct kvm_msrs *m = (void *)buf;
    m->nmsrs = count(f, 256);
    m->pad = 0;
    size_t n = MIN(m->nmsrs, 300u);
    for (size_t i = 0; i < n; i++) {
        m->entries[i].index = pick_msr(f);
        m->entries[i].reserved = fz_chance(R, 95) ? 0 : (uint32_t)fz_rand(R);
        m->entries[i].data = fz_interesting(R);
    }
    fz_argf(f, " nmsrs=%u", m->nmsrs);
    return MIN(cap, 8 + n * 16);
}

/* uaddr of a memory slot: inside the guest pool (which has a PROT_NONE hole), or bad. */
static uint64_t slot_uaddr(struct fz_state *f, __u64 *size)
{
    unsigned c = (unsigned)fz_below(R, 100);
    if (c < 70) {
        uint64_t off = fz_below(R, GPOOL_PAGES) * 4096;
        if (*size > GPOOL_PAGES * 4096ull - off && fz_chance(R, 80))
            *size = GPOOL_PAGES * 4096ull - off;
        fz_argf(f, " uaddr=pool+%#llx", (unsigned long long)off);
        return (uintptr_t)f->gpool + off;
    }
    if (c < 78) { fz_argf(f, " uaddr=null"); return 0; }
    if (c < 84) { fz_argf(f, " uaddr=unmapped"); return 0x6f0000000000ull; }
    if (c < 89) { fz_argf(f, " uaddr=prot_none"); return (uintptr_t)f->protnone; }
    if (c < 93) { fz_argf(f, " uaddr=unaligned"); return (uintptr_t)f->gpool + 1 + fz_below(R, 4095); }
    if (c < 97) { fz_argf(f, " uaddr=kernel"); return 0xffff888000000000ull; }
    fz_argf(f, " uaddr=top");
    return 0x7ffffffff000ull - fz_below(R, 4) * 4096;
}

static void region_fields(struct fz_state *f, __u32 *slot, __u32 *flags, __u64 *gpa,
                          __u64 *size, __u64 *uaddr)
{
    *slot = fz_chance(R, 80) ? (uint32_t)fz_below(R, 4)
                             : fz_chance(R, 50) ? (uint32_t)(1u << 16 | fz_below(R, 2))
                                                : (uint32_t)fz_interesting(R);
    static const uint32_t fl[] = {0, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY,
                                  KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY, KVM_MEM_GUEST_MEMFD, 8};
    *flags = fz_chance(R, 90) ? fl[fz_below(R, 6)] : (uint32_t)fz_rand(R);
    switch (fz_below(R, 6)) {
    case 0: *gpa = 0; break;
    case 1: case 2: *gpa = fz_below(R, 64) * 0x10000; break;
    case 3: *gpa = fz_below(R, 1u << 20) * 4096; break;
    case 4: *gpa = ~0ull - fz_below(R, 4) * 4096 - 4095; break;
    default: *gpa = fz_interesting(R);
    }
    switch (fz_below(R, 6)) {
    case 0: *size = 0; break;
    case 1: case 2: *size = (1 + fz_below(R, 16)) * 4096; break;
    case 3: *size = fz_interesting(R) & ~4095ull; break;
    case 4: *size = (1ull << 31) * 4096; break;
    default: *size = fz_interesting(R);
    }
    *uaddr = slot_uaddr(f, size);
    fz_argf(f, " slot=%#x flags=%#x gpa=%#llx size=%#llx", *slot, *flags,
            (unsigned long long)*gpa, (unsigned long long)*size);
}

SHAPE(region)
{
    struct kvm_userspace_memory_region *m = (void *)buf;
    region_fields(f, &m->slot, &m->flags, &m->guest_phys_addr, &m->memory_size,
                  &m->userspace_addr);
    return MIN(cap, sizeof *m);
}

SHAPE(region2)
{
    struct kvm_userspace_memory_region2 *m = (void *)buf;
    memset(m, 0, sizeof *m);
    region_fields(f, &m->slot, &m->flags, &m->guest_phys_addr, &m->memory_size,
                  &m->userspace_addr);
    if (fz_chance(R, 10))
        m->pad2[fz_below(R, 14)] = fz_rand(R);
    if (fz_chance(R, 10))
        m->guest_memfd = (uint32_t)fz_below(R, 64);
    return MIN(cap, sizeof *m);
}

SHAPE(dirty_log)
{
    struct kvm_dirty_log *d = (void *)buf;
    memset(d, 0, sizeof *d);
    d->slot = fz_chance(R, 85) ? (uint32_t)fz_below(R, 4) : (uint32_t)fz_interesting(R);
    fz_argf(f, " slot=%#x", d->slot);
    d->dirty_bitmap = (void *)(uintptr_t)fz_nested_ptr(f, 16 * 8 / 8 * 8, "bitmap");
    return MIN(cap, sizeof *d);
}

SHAPE(clear_dirty_log)
{
    struct kvm_clear_dirty_log *d = (void *)buf;
    memset(d, 0, sizeof *d);
    d->slot = fz_chance(R, 85) ? (uint32_t)fz_below(R, 4) : (uint32_t)fz_interesting(R);
    d->first_page = fz_chance(R, 70) ? fz_below(R, 4) * 64 : fz_interesting(R);
    d->num_pages = fz_chance(R, 70) ? (uint32_t)fz_below(R, 80) : (uint32_t)fz_interesting(R);
    fz_argf(f, " slot=%#x first=%#llx num=%#x", d->slot, (unsigned long long)d->first_page,
            d->num_pages);
    d->dirty_bitmap = (void *)(uintptr_t)fz_nested_ptr(f, 64, "bitmap");
    return MIN(cap, sizeof *d);
}

SHAPE(enable_cap)
{
    static const uint32_t caps[] = {
        KVM_CAP_X86_USER_SPACE_MSR, KVM_CAP_MSR_PLATFORM_INFO, KVM_CAP_EXCEPTION_PAYLOAD,
        KVM_CAP_X86_TRIPLE_FAULT_EVENT, KVM_CAP_EXIT_ON_EMULATION_FAILURE,
        KVM_CAP_X86_DISABLE_EXITS, KVM_CAP_MAX_VCPU_ID, KVM_CAP_X86_APIC_BUS_CYCLES_NS,
        KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_CAP_X2APIC_API, KVM_CAP_ENFORCE_PV_FEATURE_CPUID,
        KVM_CAP_HYPERV_SYNIC, KVM_CAP_SPLIT_IRQCHIP, KVM_CAP_HALT_POLL, KVM_CAP_DIRTY_LOG_RING,
        KVM_CAP_X86_BUS_LOCK_EXIT, KVM_CAP_PMU_CAPABILITY, KVM_CAP_X86_NOTIFY_VMEXIT,
        KVM_CAP_HYPERV_ENFORCE_CPUID, KVM_CAP_SGX_ATTRIBUTE, KVM_CAP_VM_COPY_ENC_CONTEXT_FROM,
    };
    struct kvm_enable_cap *c = (void *)buf;
    memset(c, 0, sizeof *c);
    c->cap = fz_chance(R, 90) ? caps[fz_below(R, sizeof caps / 4)] : (uint32_t)fz_below(R, 260);
    c->flags = fz_chance(R, 92) ? 0 : (uint32_t)fz_interesting(R);
    for (int i = 0; i < 4; i++)
        c->args[i] = fz_chance(R, 50) ? fz_below(R, 8) : fz_interesting(R);
    fz_argf(f, " cap=%u flags=%#x arg0=%#llx", c->cap, c->flags, (unsigned long long)c->args[0]);
    return MIN(cap, sizeof *c);
}

SHAPE(msr_filter)
{
    struct kvm_msr_filter *m = (void *)buf;
    memset(m, 0, sizeof *m);
    m->flags = fz_chance(R, 85) ? (uint32_t)fz_below(R, 2) : (uint32_t)fz_interesting(R);
    unsigned n = (unsigned)fz_below(R, KVM_MSR_FILTER_MAX_RANGES + 1);
    fz_argf(f, " flags=%#x nranges=%u", m->flags, n);
    for (unsigned i = 0; i < n; i++) {
        struct kvm_msr_filter_range *r = &m->ranges[i];
        r->flags = fz_chance(R, 85) ? (uint32_t)fz_below(R, 4) : (uint32_t)fz_interesting(R);
        static const uint32_t bases[] = {0, 0x800, 0xc0000000, 0xc0010000, 0x4b564d00, 0xfffffff0};
        r->base = fz_chance(R, 80) ? bases[fz_below(R, 6)] : (uint32_t)fz_rand(R);
        r->nmsrs = fz_chance(R, 30) ? count(f, 0x10000) : (uint32_t)(1 + fz_below(R, 256));
        size_t bytes = ((size_t)MIN(r->nmsrs, 0x100000u) + 7) / 8;
        r->bitmap = (void *)(uintptr_t)fz_nested_ptr(f, bytes, "bm");
        if (i < 3)
            fz_argf(f, "[%#x %#x %#x]", r->flags, r->base, r->nmsrs);
    }
    return MIN(cap, sizeof *m);
}

SHAPE(irq_level)
{
    struct kvm_irq_level *l = (void *)buf;
    l->irq = fz_chance(R, 80) ? (uint32_t)fz_below(R, 26) : (uint32_t)fz_interesting(R);
    l->level = fz_chance(R, 80) ? (uint32_t)fz_below(R, 2) : (uint32_t)fz_rand(R);
    fz_argf(f, " irq=%u level=%u", l->irq, l->level);
    return MIN(cap, sizeof *l);
}

SHAPE(irqchip)
{
    struct kvm_irqchip *c = (void *)buf;
    fz_fill(R, c, sizeof *c);
    c->chip_id = fz_chance(R, 85) ? (uint32_t)fz_below(R, 4) : (uint32_t)fz_rand(R);
    c->pad = 0;
    fz_argf(f, " chip=%u", c->chip_id);
    return MIN(cap, sizeof *c);
}

SHAPE(gsi_routing)
{
    struct kvm_irq_routing *r = (void *)buf;
    r->nr = count(f, 4096);
    r->flags = fz_chance(R, 92) ? 0 : (uint32_t)fz_rand(R);
    size_t n = MIN(r->nr, 4100u);
    for (size_t i = 0; i < n; i++) {
        struct kvm_irq_routing_entry *e = &r->entries[i];
        memset(e, 0, sizeof *e);
        e->gsi = fz_chance(R, 85) ? (uint32_t)fz_below(R, 48) : (uint32_t)fz_interesting(R);
        e->type = fz_chance(R, 90) ? (uint32_t)(1 + fz_below(R, 2)) : (uint32_t)fz_below(R, 8);
        e->flags = fz_chance(R, 92) ? 0 : (uint32_t)fz_below(R, 4);
        if (e->type == KVM_IRQ_ROUTING_IRQCHIP) {
            e->u.irqchip.irqchip = (uint32_t)fz_below(R, 4);
            e->u.irqchip.pin = fz_chance(R, 85) ? (uint32_t)fz_below(R, 26) : (uint32_t)fz_rand(R);
        } else {
            e->u.msi.address_lo = 0xfee00000u | (uint32_t)(fz_below(R, 4) << 12);
            e->u.msi.address_hi = fz_chance(R, 90) ? 0 : (uint32_t)fz_rand(R);
            e->u.msi.data = (uint32_t)fz_rand(R) & 0xc7ff;
        }
    }
    fz_argf(f, " nr=%u flags=%#x", r->nr, r->flags);
    return MIN(cap, 8 + n * sizeof(struct kvm_irq_routing_entry));
}

SHAPE(msi)
{
    struct kvm_msi *m = (void *)buf;
    memset(m, 0, sizeof *m);
    m->address_lo = fz_chance(R, 80) ? 0xfee00000u | (uint32_t)(fz_below(R, 4) << 12) : (uint32_t)fz_rand(R);
    m->address_hi = fz_chance(R, 90) ? 0 : (uint32_t)fz_rand(R);
    m->data = fz_chance(R, 80) ? (uint32_t)(0x20 + fz_below(R, 0xe0)) : (uint32_t)fz_rand(R);
    m->flags = fz_chance(R, 90) ? 0 : (uint32_t)fz_interesting(R);
    m->devid = fz_chance(R, 90) ? 0 : (uint32_t)fz_rand(R);
    fz_argf(f, " addr=%#x data=%#x flags=%#x", m->address_lo, m->data, m->flags);
    return MIN(cap, sizeof *m);
}

SHAPE(pit_config)
{
    struct kvm_pit_config *c = (void *)buf;
    memset(c, 0, sizeof *c);
    c->flags = fz_chance(R, 80) ? (uint32_t)fz_below(R, 2) : (uint32_t)fz_interesting(R);
    fz_argf(f, " flags=%#x", c->flags);
    return MIN(cap, sizeof *c);
}

SHAPE(reinject)
{
    struct kvm_reinject_control *c = (void *)buf;
    fz_fill(R, c, sizeof *c);
    if (fz_chance(R, 80))
        c->pit_reinject = (uint8_t)fz_below(R, 2);
    fz_argf(f, " reinject=%u", c->pit_reinject);
    return MIN(cap, sizeof *c);
}

SHAPE(clock)
{
    struct kvm_clock_data *c = (void *)buf;
    memset(c, 0, sizeof *c);
    c->clock = fz_interesting(R);
    c->flags = fz_chance(R, 80) ? (uint32_t)fz_below(R, 8) : (uint32_t)fz_interesting(R);
    c->realtime = fz_interesting(R);
    fz_argf(f, " flags=%#x", c->flags);
    return MIN(cap, sizeof *c);
}

SHAPE(ioeventfd)
{
    struct kvm_ioeventfd *e = (void *)buf;
    memset(e, 0, sizeof *e);
    e->datamatch = fz_interesting(R);
    e->addr = fz_chance(R, 70) ? 0x1000 * fz_below(R, 16) + fz_below(R, 8) : fz_interesting(R);
    static const uint32_t lens[] = {0, 1, 2, 4, 8, 3, 16};
    e->len = fz_chance(R, 90) ? lens[fz_below(R, 7)] : (uint32_t)fz_rand(R);
    e->fd = fz_pick_fd(f);
    e->flags = fz_chance(R, 85) ? (uint32_t)fz_below(R, 8) : (uint32_t)fz_interesting(R);
    if (fz_chance(R, 5))
        e->pad[fz_below(R, 36)] = 1;
    fz_argf(f, " addr=%#llx len=%u flags=%#x", (unsigned long long)e->addr, e->len, e->flags);
    return MIN(cap, sizeof *e);
}

SHAPE(irqfd)
{
    struct kvm_irqfd *q = (void *)buf;
    memset(q, 0, sizeof *q);
    q->fd = (uint32_t)fz_pick_fd(f);
    q->gsi = fz_chance(R, 85) ? (uint32_t)fz_below(R, 26) : (uint32_t)fz_interesting(R);
    q->flags = fz_chance(R, 85) ? (uint32_t)fz_below(R, 4) : (uint32_t)fz_interesting(R);
    q->resamplefd = (uint32_t)fz_pick_fd(f);
    if (fz_chance(R, 5))
        q->pad[fz_below(R, 16)] = 1;
    fz_argf(f, " gsi=%u flags=%#x", q->gsi, q->flags);
    return MIN(cap, sizeof *q);
}

SHAPE(zone)
{
    struct kvm_coalesced_mmio_zone *z = (void *)buf;
    memset(z, 0, sizeof *z);
    z->addr = fz_chance(R, 70) ? 0x1000 * fz_below(R, 8) : fz_interesting(R);
    z->size = fz_chance(R, 70) ? (uint32_t)fz_below(R, 9) : (uint32_t)fz_interesting(R);
    z->pio = fz_chance(R, 85) ? (uint32_t)fz_below(R, 2) : (uint32_t)fz_rand(R);
    fz_argf(f, " addr=%#llx size=%#x pio=%u", (unsigned long long)z->addr, z->size, z->pio);
    return MIN(cap, sizeof *z);
}

static void segment(struct fz_state *f, struct kvm_segment *s)
{
    fz_fill(R, s, sizeof *s);
    if (fz_chance(R, 70)) {
        s->base = fz_chance(R, 50) ? 0 : fz_interesting(R);
        s->limit = fz_chance(R, 50) ? 0xffffffff : (uint32_t)fz_interesting(R);
        s->type = (uint8_t)fz_below(R, 16);
        s->present = (uint8_t)fz_below(R, 2);
        s->dpl = (uint8_t)fz_below(R, 4);
        s->db = (uint8_t)fz_below(R, 2);
        s->s = (uint8_t)fz_below(R, 2);
        s->l = (uint8_t)fz_below(R, 2);
        s->g = (uint8_t)fz_below(R, 2);
        s->avl = 0;
        s->unusable = (uint8_t)fz_below(R, 2);
    }
}

static void cr_bits(struct fz_state *f, __u64 *cr0, __u64 *cr4, __u64 *efer)
{
    static const uint64_t cr0s[] = {0x60000010, 0x11, 0x80000011, 0x80050033, 0x80000001, 0xe0000011};
    static const uint64_t cr4s[] = {0, 0x20, 0x620, 0x6a0, 0x3006a0, 0x1000, 0x400000};
    static const uint64_t efers[] = {0, 0x500, 0xd01, 0x100, 0x400, 0x1000, 0x2000};
    *cr0 = fz_chance(R, 85) ? cr0s[fz_below(R, 6)] : fz_interesting(R);
    *cr4 = fz_chance(R, 85) ? cr4s[fz_below(R, 7)] : fz_interesting(R);
    *efer = fz_chance(R, 85) ? efers[fz_below(R, 7)] : fz_interesting(R);
}

SHAPE(sregs)
{
    struct kvm_sregs *s = (void *)buf;
    fz_fill(R, s, sizeof *s);
    struct kvm_segment *segs[] = {&s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss, &s->tr, &s->ldt};
    for (int i = 0; i < 8; i++)
        segment(f, segs[i]);
    cr_bits(f, &s->cr0, &s->cr4, &s->efer);
    s->apic_base = fz_chance(R, 80) ? 0xfee00900 | (fz_below(R, 2) << 10) : fz_interesting(R);
    if (fz_chance(R, 80))
        memset(s->interrupt_bitmap, 0, sizeof s->interrupt_bitmap);
    fz_argf(f, " cr0=%#llx cr4=%#llx efer=%#llx", (unsigned long long)s->cr0,
            (unsigned long long)s->cr4, (unsigned long long)s->efer);
    return MIN(cap, sizeof *s);
}

SHAPE(sregs2)
{
    struct kvm_sregs2 *s = (void *)buf;
    fz_fill(R, s, sizeof *s);
    struct kvm_segment *segs[] = {&s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss, &s->tr, &s->ldt};
    for (int i = 0; i < 8; i++)
        segment(f, segs[i]);
    cr_bits(f, &s->cr0, &s->cr4, &s->efer);
    s->flags = fz_chance(R, 80) ? (uint32_t)fz_below(R, 2) : (uint32_t)fz_interesting(R);
    fz_argf(f, " flags=%#llx cr0=%#llx", (unsigned long long)s->flags, (unsigned long long)s->cr0);
    return MIN(cap, sizeof *s);
}

SHAPE(regs)
{
    struct kvm_regs *r = (void *)buf;
    fz_fill(R, r, sizeof *r);
    r->rflags = fz_chance(R, 70) ? 2 | (fz_rand(R) & 0x3f7fd5) : fz_interesting(R);
    fz_argf(f, " rflags=%#llx", (unsigned long long)r->rflags);
    return MIN(cap, sizeof *r);
}

SHAPE(events)
{
    struct kvm_vcpu_events *e = (void *)buf;
    fz_fill(R, e, sizeof *e);
    e->flags = fz_chance(R, 80) ? (uint32_t)fz_below(R, 64) : (uint32_t)fz_interesting(R);
    e->exception.nr = fz_chance(R, 80) ? (uint8_t)fz_below(R, 33) : (uint8_t)fz_rand(R);
    e->exception.injected = (uint8_t)fz_below(R, 2);
    e->exception.pending = (uint8_t)fz_below(R, 2);
    e->exception.has_error_code = (uint8_t)fz_below(R, 2);
    e->exception_has_payload = (uint8_t)fz_below(R, 2);
    e->nmi.injected = (uint8_t)fz_below(R, 2);
    e->nmi.pending = (uint8_t)fz_below(R, 2);
    e->smi.smm = (uint8_t)fz_below(R, 2);
    if (fz_chance(R, 70))
        memset(e->reserved, 0, sizeof e->reserved);
    fz_argf(f, " flags=%#x exc=%u inj=%u pend=%u", e->flags, e->exception.nr,
            e->exception.injected, e->exception.pending);
    return MIN(cap, sizeof *e);
}

SHAPE(mp_state)
{
    struct kvm_mp_state *m = (void *)buf;
    m->mp_state = fz_chance(R, 85) ? (uint32_t)fz_below(R, 10) : (uint32_t)fz_rand(R);
    fz_argf(f, " mp=%u", m->mp_state);
    return MIN(cap, sizeof *m);
}

SHAPE(nested)
{
    struct kvm_nested_state *n = (void *)buf;
    size_t len = MIN(cap, 0x4000);
    fz_fill(R, buf, len);
    n->flags = fz_chance(R, 70) ? (uint16_t)fz_below(R, 8) : (uint16_t)fz_rand(R);
    n->format = fz_chance(R, 85) ? (uint16_t)fz_below(R, 2) : (uint16_t)fz_rand(R);
    static const uint32_t sizes[] = {0, 128, 0x80 + 0x1000, 0x80 + 0x2000, 0x80 + 0x3000, 0x2080};
    n->size = fz_chance(R, 85) ? sizes[fz_below(R, 6)] : (uint32_t)fz_interesting(R);
    fz_argf(f, " flags=%#x format=%u size=%#x", n->flags, n->format, n->size);
    return MIN(len, n->size > 0x80 ? n->size : 0x80);
}

SHAPE(guest_debug)
{
    struct kvm_guest_debug *d = (void *)buf;
    fz_fill(R, d, sizeof *d);
    d->control = fz_chance(R, 80) ? (uint32_t)(fz_rand(R) & 0x1f0003) : (uint32_t)fz_interesting(R);
    d->pad = 0;
    fz_argf(f, " control=%#x", d->control);
    return MIN(cap, sizeof *d);
}

SHAPE(sigmask)
{
    struct kvm_signal_mask *m = (void *)buf;
    static const uint32_t lens[] = {8, 8, 0, 4, 16, 128};
    m->len = fz_chance(R, 90) ? lens[fz_below(R, 6)] : (uint32_t)fz_rand(R);
    uint64_t mask = fz_chance(R, 50) ? 0 : fz_rand(R);
    /* the fuzzer ends runaway KVM_RUNs with SIGALRM: it must stay deliverable */
    mask &= ~(1ull << (14 - 1));
    memcpy(m->sigset, &mask, 8);
    fz_argf(f, " len=%u mask=%#llx", m->len, (unsigned long long)mask);
    return MIN(cap, 4 + MIN((size_t)m->len, 256));
}

SHAPE(device_attr)
{
    struct kvm_device_attr *a = (void *)buf;
    a->flags = fz_chance(R, 90) ? 0 : (uint32_t)fz_rand(R);
    a->group = fz_chance(R, 80) ? (uint32_t)fz_below(R, 3) : (uint32_t)fz_rand(R);
    a->attr = fz_chance(R, 80) ? fz_below(R, 3) : fz_interesting(R);
    fz_argf(f, " group=%u attr=%#llx", a->group, (unsigned long long)a->attr);
    a->addr = fz_nested_ptr(f, 8, "addr");
    return MIN(cap, sizeof *a);
}

SHAPE(xsave)
{
    size_t len = MIN(cap, 4096);
    fz_fill(R, buf, len);
    uint64_t bv = fz_chance(R, 80) ? fz_below(R, 8) : fz_interesting(R);
    uint64_t comp = fz_chance(R, 85) ? 0 : fz_interesting(R);
    memcpy(buf + 512, &bv, 8);
    memcpy(buf + 520, &comp, 8);
    if (fz_chance(R, 70))
        memset(buf + 528, 0, 48);
    uint32_t mxcsr = fz_chance(R, 80) ? 0x1f80 : (uint32_t)fz_rand(R);
    memcpy(buf + 24, &mxcsr, 4);
    fz_argf(f, " xstate_bv=%#llx xcomp=%#llx mxcsr=%#x", (unsigned long long)bv,
            (unsigned long long)comp, mxcsr);
    return len;
}

SHAPE(xcrs)
{
    struct kvm_xcrs *x = (void *)buf;
    memset(x, 0, sizeof *x);
    x->nr_xcrs = fz_chance(R, 85) ? (uint32_t)fz_below(R, 3) : count(f, 16);
    x->flags = fz_chance(R, 90) ? 0 : (uint32_t)fz_rand(R);
    static const uint64_t vals[] = {1, 3, 7, 0xe7, 0x207, 2, 0};
    for (int i = 0; i < KVM_MAX_XCRS; i++) {
        x->xcrs[i].xcr = fz_chance(R, 85) ? 0 : (uint32_t)fz_interesting(R);
        x->xcrs[i].value = fz_chance(R, 85) ? vals[fz_below(R, 7)] : fz_interesting(R);
    }
    fz_argf(f, " nr=%u xcr0=%#llx", x->nr_xcrs, (unsigned long long)x->xcrs[0].value);
    return MIN(cap, sizeof *x);
}

SHAPE(debugregs)
{
    struct kvm_debugregs *d = (void *)buf;
    fz_fill(R, d, sizeof *d);
    if (fz_chance(R, 70)) {
        d->dr6 = 0xffff0ff0 | (fz_rand(R) & 0xf);
        d->dr7 = 0x400 | (fz_rand(R) & 0xff);
    }
    d->flags = fz_chance(R, 90) ? 0 : (uint32_t)fz_rand(R);
    fz_argf(f, " dr6=%#llx dr7=%#llx flags=%#llx", (unsigned long long)d->dr6,
            (unsigned long long)d->dr7, (unsigned long long)d->flags);
    return MIN(cap, sizeof *d);
}

SHAPE(mce)
{
    struct kvm_x86_mce *m = (void *)buf;
    fz_fill(R, m, sizeof *m);
    m->bank = fz_chance(R, 85) ? (uint8_t)fz_below(R, 34) : (uint8_t)fz_rand(R);
    if (fz_chance(R, 60))
        m->status |= 1ull << 63;
    m->mcg_status = fz_chance(R, 50) ? fz_below(R, 8) : m->mcg_status;
    fz_argf(f, " bank=%u status=%#llx", m->bank, (unsigned long long)m->status);
    return MIN(cap, sizeof *m);
}

SHAPE(u64)
{
    uint64_t v = fz_chance(R, 50) ? fz_below(R, 40) | (fz_below(R, 2) << 8) : fz_interesting(R);
    memcpy(buf, &v, 8);
    fz_argf(f, " val=%#llx", (unsigned long long)v);
    return MIN(cap, 8);
}

SHAPE(translation)
{
    struct kvm_translation *t = (void *)buf;
    fz_fill(R, t, sizeof *t);
    t->linear_address = fz_interesting(R);
    fz_argf(f, " la=%#llx", (unsigned long long)t->linear_address);
    return MIN(cap, sizeof *t);
}

SHAPE(interrupt)
{
    struct kvm_interrupt *i = (void *)buf;
    i->irq = fz_chance(R, 80) ? (uint32_t)fz_below(R, 257) : (uint32_t)fz_interesting(R);
    fz_argf(f, " irq=%u", i->irq);
    return MIN(cap, sizeof *i);
}

SHAPE(tpr)
{
    struct kvm_tpr_access_ctl *t = (void *)buf;
    fz_fill(R, t, sizeof *t);
    t->enabled = fz_chance(R, 80) ? (uint32_t)fz_below(R, 2) : (uint32_t)fz_rand(R);
    t->flags = fz_chance(R, 80) ? 0 : (uint32_t)fz_rand(R);
    if (fz_chance(R, 80))
        memset(t->reserved, 0, sizeof t->reserved);
    fz_argf(f, " enabled=%u flags=%#x", t->enabled, t->flags);
    return MIN(cap, sizeof *t);
}

SHAPE(create_device)
{
    struct kvm_create_device *d = (void *)buf;
    d->type = fz_chance(R, 85) ? (uint32_t)fz_below(R, 12) : (uint32_t)fz_rand(R);
    d->fd = (uint32_t)-1;
    /* KVM_CREATE_DEVICE_TEST mostly, so no device fds pile up */
    d->flags = fz_chance(R, 80) ? KVM_CREATE_DEVICE_TEST : (uint32_t)fz_below(R, 4);
    fz_argf(f, " type=%u flags=%#x", d->type, d->flags);
    return MIN(cap, sizeof *d);
}

SHAPE(guest_memfd)
{
    uint64_t v[5] = {0};
    v[0] = fz_chance(R, 70) ? fz_below(R, 16) * 4096 : fz_interesting(R); /* size */
    v[1] = fz_chance(R, 80) ? fz_below(R, 2) : fz_interesting(R);        /* flags */
    memcpy(buf, v, sizeof v < cap ? sizeof v : cap);
    fz_argf(f, " size=%#llx flags=%#llx", (unsigned long long)v[0], (unsigned long long)v[1]);
    return MIN(cap, 64);
}

SHAPE(pmu_filter)
{
    struct kvm_pmu_event_filter *p = (void *)buf;
    memset(p, 0, sizeof *p);
    p->action = (uint32_t)fz_below(R, 3);
    p->nevents = count(f, 300);
    p->fixed_counter_bitmap = (uint32_t)fz_rand(R);
    p->flags = fz_chance(R, 80) ? 0 : (uint32_t)fz_rand(R);
    size_t n = MIN(p->nevents, 400u);
    fz_fill(R, p->events, n * 8);
    fz_argf(f, " action=%u nevents=%u", p->action, p->nevents);
    return MIN(cap, sizeof *p + n * 8);
}

SHAPE(lapic)
{
    size_t len = MIN(cap, sizeof(struct kvm_lapic_state));
    fz_fill(R, buf, len);
    if (fz_chance(R, 70)) {
        uint32_t id = (uint32_t)fz_below(R, 4) << 24;
        memcpy(buf + 0x20, &id, 4);
    }
    return len;
}

INTARG(vm_type)
{
    uint64_t v = fz_chance(R, 85) ? fz_below(R, 5) : fz_interesting(R);
    fz_argf(f, " type=%#llx", (unsigned long long)v);
    return v;
}

INTARG(cap)
{
    uint64_t v = fz_chance(R, 90) ? fz_below(R, 245) : fz_interesting(R);
    fz_argf(f, " cap=%llu", (unsigned long long)v);
    return v;
}

INTARG(vcpu_id)
{
    static const uint64_t ids[] = {0, 1, 2, 3, 1023, 1024, 4095, 4096, 0x80000000u};
    uint64_t v = fz_chance(R, 90) ? ids[fz_below(R, 9)] : fz_interesting(R);
    fz_argf(f, " id=%#llx", (unsigned long long)v);
    return v;
}

INTARG(tss)
{
    static const uint64_t a[] = {0xfffbd000, 0xfeffd000, 0xfffff000, 0xfffbd001, 0x100000000ull};
    uint64_t v = fz_chance(R, 80) ? a[fz_below(R, 5)] : fz_interesting(R);
    fz_argf(f, " addr=%#llx", (unsigned long long)v);
    return v;
}

INTARG(boot_id)
{
    uint64_t v = fz_chance(R, 85) ? fz_below(R, 5) : fz_interesting(R);
    fz_argf(f, " id=%#llx", (unsigned long long)v);
    return v;
}

INTARG(any)
{
    uint64_t v = fz_interesting(R);
    fz_argf(f, " arg=%#llx", (unsigned long long)v);
    return v;
}
