/* abi/: guest memory slots (KVM_SET_USER_MEMORY_REGION{,2}, KVM_GET_DIRTY_LOG,
 * KVM_CLEAR_DIRTY_LOG with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2).
 *
 * Dirty logging: emu sets a slot's bit on every guest write to it (emu/mem.c),
 * and abi_vm_mark_dirty on writes done for the guest by abi/ and msr/. KVM
 * instead write-protects pages and sets the bit on the first write fault, so
 * "clear a bit" there means "re-protect that page"; here a cleared bit is
 * simply set again by the next write, which gives user space the same log.
 *
 * Validation mirrors virt/kvm/kvm_main.c kvm_set_memory_region() in Linux 6.12:
 * EINVAL for bad flags/alignment/ranges, EEXIST for overlaps, EINVAL for changing
 * a slot's size/address/READONLY, EINVAL when deleting a slot that does not exist.
 * The guest sees memory through emu's struct emu_physmem: the host pointer of a slot
 * is simply the caller's userspace_addr (same process). Adjacent slots that are
 * contiguous in both gpa and host address (and not dirty-logged) are merged into one
 * emu slot; emu's array is sorted by gpa and replaced as a whole on every change. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "abi/abi_internal.h"

#define TASK_SIZE_MAX 0x7ffffffff000ull   /* x86-64 4-level user address space */
#define MEM_MAX_NR_PAGES ((1ull << 31) - 1) /* KVM_MEM_MAX_NR_PAGES */
#define MAX_GFN ((1ull << (48 - 12)) - 1)  /* kvm_mmu_max_gfn() with 48 physical bits */

/* The used slots in gpa order, kept up to date on every change (insert/remove are a
 * binary search and a memmove of ids): a change then costs one pass over the used slots
 * to rebuild emu's view, and an overlap check two comparisons. memslot_perf_test adds
 * 8209 slots one by one; with a sort and three scans per change its setup took 2.6 s. */
static unsigned order_lower_bound(const struct abi_aspace *as, uint64_t gpa)
{
    unsigned lo = 0, hi = as->nslot_order;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (as->slots[as->slot_order[mid]].gpa < gpa)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int cmp_order(const void *a, const void *b, void *ctx)
{
    const struct abi_memslot *slots = ctx;
    uint64_t x = slots[*(const uint32_t *)a].gpa, y = slots[*(const uint32_t *)b].gpa;
    return x < y ? -1 : x > y;
}

static int order_alloc(struct abi_aspace *as)
{
    if (!as->slot_order && !(as->slot_order = malloc(ABI_USER_MEM_SLOTS * sizeof *as->slot_order)))
        return -ENOMEM;
    return 0;
}

/* From scratch (after a failed change put slots back). */
static void order_reset(struct abi_aspace *as)
{
    as->nslot_order = 0;
    for (unsigned i = 0; i < as->slot_hi; i++)
        if (as->slots[i].used)
            as->slot_order[as->nslot_order++] = i;
    qsort_r(as->slot_order, as->nslot_order, sizeof *as->slot_order, cmp_order, as->slots);
}

static void order_insert(struct abi_aspace *as, uint32_t id)
{
    unsigned pos = order_lower_bound(as, as->slots[id].gpa);
    memmove(&as->slot_order[pos + 1], &as->slot_order[pos],
            (as->nslot_order - pos) * sizeof *as->slot_order);
    as->slot_order[pos] = id;
    as->nslot_order++;
}

/* Before slot id's gpa changes: its position is found by its present gpa. */
static void order_remove(struct abi_aspace *as, uint32_t id)
{
    unsigned pos = order_lower_bound(as, as->slots[id].gpa);
    while (pos < as->nslot_order && as->slot_order[pos] != id)
        pos++;
    if (pos == as->nslot_order)
        return;
    as->nslot_order--;
    memmove(&as->slot_order[pos], &as->slot_order[pos + 1],
            (as->nslot_order - pos) * sizeof *as->slot_order);
}

/* Stop every vCPU at an instruction boundary and keep them out of emu_run while
 * as->mem changes. emu_request_stop is re-issued until the write lock is ours, since
 * a vCPU may enter emu_run after a request was consumed. Caller holds vm->lock. */
void abi_vm_mem_write_lock(struct abi_vm *vm)
{
    for (;;) {
        for (unsigned i = 0; i < vm->nvcpus; i++)
            if (atomic_load(&vm->vcpus[i]->in_run))
                emu_request_stop(vm->vcpus[i]->emu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (pthread_rwlock_timedwrlock(&vm->mem_lock, &ts) == 0)
            return;
    }
}

void abi_vm_mem_write_unlock(struct abi_vm *vm)
{
    pthread_rwlock_unlock(&vm->mem_lock);
}

/* The host memory emu sees for a slot: userspace_addr, or for address 0 its PROT_NONE
 * stand-in (abi_memslot.null_standin). */
static uint8_t *slot_host(const struct abi_memslot *s)
{
    return s->null_standin ? s->null_standin : (uint8_t *)(uintptr_t)s->uaddr;
}

static bool emu_mergeable(const struct emu_slot *x, const struct emu_slot *y)
{
    if (x->mem_fault || y->mem_fault)
        return x->mem_fault && y->mem_fault && x->gpa + x->size == y->gpa;
    return !x->dirty_bitmap && !y->dirty_bitmap && x->readonly == y->readonly &&
           x->gpa + x->size == y->gpa && x->host + x->size == y->host;
}

/* emu's view being built: slots in gpa order, merged where mergeable. */
struct view_build {
    struct emu_slot *a;
    unsigned n, cap;
    const struct abi_memslot *s; /* the KVM slot being cut, NULL in a gap between slots */
};

static int view_push(struct view_build *b, const struct emu_slot *e)
{
    if (b->n > 0 && emu_mergeable(&b->a[b->n - 1], e)) {
        b->a[b->n - 1].size += e->size;
        return 0;
    }
    if (b->n == b->cap) {
        unsigned cap = b->cap ? 2 * b->cap : 8;
        struct emu_slot *g = realloc(b->a, cap * sizeof *g);
        if (!g)
            return -ENOMEM;
        b->a = g;
        b->cap = cap;
    }
    b->a[b->n++] = *e;
    return 0;
}

/* One piece of a slot (or of a gap) with one attribute (abi/memattr.c): shared reads
 * userspace_addr, private the guest_memfd, and private without one faults. */
static int view_piece(void *ctx, uint64_t gpa, uint64_t size, bool priv)
{
    struct view_build *b = ctx;
    const struct abi_memslot *s = b->s;
    struct emu_slot e = {.gpa = gpa, .size = size};
    if (!s || (priv && !s->gmem)) {
        if (!priv)
            return 0; /* a shared gap: no slot, MMIO */
        e.mem_fault = true;
    } else if (priv) {
        e.host = s->gmem->map + s->gmem_off + (gpa - s->gpa);
    } else {
        e.host = slot_host(s) + (gpa - s->gpa);
        e.readonly = s->flags & KVM_MEM_READONLY;
        e.dirty_bitmap = s->dirty;
        e.dirty_first = (gpa - s->gpa) >> 12;
    }
    return view_push(b, &e);
}

#define VIEW_END (1ull << 52) /* above every gfn a guest can reach (MAXPHYADDR <= 52) */

/* Rebuild emu's view from the KVM slots in gpa order (caller holds vm->lock), cut at
 * the VM's private ranges. */
static int rebuild_physmem(struct abi_vm *vm, struct abi_aspace *as)
{
    while (as->slot_hi > 0 && !as->slots[as->slot_hi - 1].used)
        as->slot_hi--;
    struct view_build b = {0};
    uint64_t pos = 0;
    int r = 0;
    for (unsigned i = 0; !r && i <= as->nslot_order; i++) {
        const struct abi_memslot *s = i < as->nslot_order ? &as->slots[as->slot_order[i]] : NULL;
        uint64_t gap_end = s ? s->gpa : VIEW_END;
        b.s = NULL;
        if (vm->memattr.n && gap_end > pos)
            r = abi_memattr_split(vm, pos, gap_end - pos, view_piece, &b);
        if (!s || r)
            break;
        b.s = s;
        r = vm->memattr.n ? abi_memattr_split(vm, s->gpa, s->size, view_piece, &b)
                          : view_piece(&b, s->gpa, s->size, false);
        pos = s->gpa + s->size;
    }
    if (r) {
        free(b.a);
        return r;
    }
    if (!b.a && !(b.a = malloc(sizeof *b.a)))
        return -ENOMEM;
    abi_vm_mem_write_lock(vm);
    struct emu_slot *old = as->mem.slots;
    as->mem.slots = b.a;
    as->mem.nslots = b.n;
    as->mem_cap = b.cap ? b.cap : 1;
    __atomic_add_fetch(&vm->as[0].mem.generation, 1, __ATOMIC_RELEASE); /* counts both */
    abi_vm_mem_write_unlock(vm);
    free(old);
    return 0;
}

int abi_vm_rebuild_views(struct abi_vm *vm)
{
    int r = 0;
    for (unsigned i = 0; i < 2 && !r; i++)
        if (vm->as[i].slots)
            r = rebuild_physmem(vm, &vm->as[i]);
    return r;
}


/* A new slot (id was unused): only its neighbours in emu's view can change — it joins
 * the run before it, the run after it, both, or becomes an entry of its own — which
 * is what a full rebuild's left-to-right merging would give, in O(log n) plus one
 * memmove instead of a pass over every slot. */
static int add_physmem(struct abi_vm *vm, struct abi_aspace *as, unsigned id)
{
    const struct abi_memslot *s = &as->slots[id];
    struct emu_slot b = {.gpa = s->gpa,
                         .size = s->size,
                         .host = slot_host(s),
                         .readonly = s->flags & KVM_MEM_READONLY,
                         .dirty_bitmap = s->dirty};
    abi_vm_mem_write_lock(vm);
    struct emu_physmem *pm = &as->mem;
    unsigned n = pm->nslots, lo = 0, hi = n;
    while (lo < hi) { /* k = lo: the first emu slot above b */
        unsigned mid = lo + (hi - lo) / 2;
        if (pm->slots[mid].gpa < b.gpa)
            lo = mid + 1;
        else
            hi = mid;
    }
    unsigned k = lo;
    int r = 0;
    if (k > 0 && emu_mergeable(&pm->slots[k - 1], &b)) {
        pm->slots[k - 1].size += b.size;
        if (k < n && emu_mergeable(&pm->slots[k - 1], &pm->slots[k])) {
            pm->slots[k - 1].size += pm->slots[k].size;
            memmove(&pm->slots[k], &pm->slots[k + 1], (n - k - 1) * sizeof b);
            pm->nslots--;
        }
    } else if (k < n && emu_mergeable(&b, &pm->slots[k])) {
        pm->slots[k].gpa = b.gpa;
        pm->slots[k].host = b.host;
        pm->slots[k].size += b.size;
    } else {
        if (n + 1 > as->mem_cap) {
            unsigned cap = as->mem_cap ? 2 * as->mem_cap : 8;
            struct emu_slot *grown = realloc(pm->slots, cap * sizeof b);
            if (!grown) {
                r = -ENOMEM;
                goto out;
            }
            pm->slots = grown;
            as->mem_cap = cap;
        }
        memmove(&pm->slots[k + 1], &pm->slots[k], (n - k) * sizeof b);
        pm->slots[k] = b;
        pm->nslots++;
    }
    __atomic_add_fetch(&vm->as[0].mem.generation, 1, __ATOMIC_RELEASE); /* counts both */
out:
    abi_vm_mem_write_unlock(vm);
    return r;
}

/* Sorted and non-overlapping: only the nearest other slot below gpa and the nearest
 * other slot at or above it can overlap [gpa, gpa + size). */
static bool overlaps_other(struct abi_aspace *as, unsigned id, uint64_t gpa, uint64_t size)
{
    unsigned pos = order_lower_bound(as, gpa);
    for (unsigned i = pos; i-- > 0;) {
        if (as->slot_order[i] == id)
            continue;
        const struct abi_memslot *s = &as->slots[as->slot_order[i]];
        if (s->gpa + s->size > gpa)
            return true;
        break;
    }
    for (unsigned i = pos; i < as->nslot_order; i++) {
        if (as->slot_order[i] == id)
            continue;
        return as->slots[as->slot_order[i]].gpa < gpa + size;
    }
    return false;
}

/* A slot's new bitmap: all pages dirty with KVM_DIRTY_LOG_INITIALLY_SET
 * (kvm_prepare_memory_region: bitmap_set(0, npages)), else clear. */
static uint64_t *alloc_dirty(uint64_t size, bool initially_set)
{
    uint64_t pages = size / ABI_PAGE_SIZE, words = (pages + 63) / 64;
    uint64_t *b = calloc(words ? words : 1, sizeof(uint64_t));
    if (!b || !initially_set)
        return b;
    for (uint64_t w = 0; w < pages / 64; w++)
        b[w] = ~0ull;
    if (pages % 64)
        b[pages / 64] = (1ull << (pages % 64)) - 1;
    return b;
}

/* Another slot bound to an overlapping part of g (kvm_gmem_commit_memory_region's
 * xa_find over the file's bindings): -EEXIST. */
static bool gmem_range_bound(struct abi_vm *vm, const struct abi_gmem *g, uint64_t off,
                             uint64_t size)
{
    for (unsigned a = 0; a < 2; a++)
        for (unsigned i = 0; vm->as[a].slots && i < vm->as[a].slot_hi; i++) {
            const struct abi_memslot *s = &vm->as[a].slots[i];
            if (s->used && s->gmem == g && s->gmem_off < off + size && off < s->gmem_off + s->size)
                return true;
        }
    return false;
}

void abi_vm_gmem_unbind(struct abi_vm *vm, struct abi_gmem *g)
{
    pthread_mutex_lock(&vm->lock);
    bool any = false;
    for (unsigned a = 0; a < 2; a++)
        for (unsigned i = 0; vm->as[a].slots && i < vm->as[a].slot_hi; i++)
            if (vm->as[a].slots[i].gmem == g) {
                vm->as[a].slots[i].gmem = NULL;
                any = true;
            }
    /* no vCPU may keep a pointer into the file's mapping: a new view (which can only
     * fail on ENOMEM; then the old one is kept and the mapping with it, see gmem.c) */
    if (any && abi_vm_rebuild_views(vm))
        g->map_pinned = true;
    pthread_mutex_unlock(&vm->lock);
}

long abi_vm_set_memory_region(struct abi_process *p, struct abi_vm *vm,
                              const struct kvm_userspace_memory_region2 *m, bool v2)
{
    (void)v2; /* KVM_SET_USER_MEMORY_REGION cannot carry KVM_MEM_GUEST_MEMFD (vm_ioctl.c) */
    /* check_memory_region_flags: guest_memfd for private-memory VMs, without dirty
     * logging and without READONLY */
    uint32_t valid = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY;
    if (vm->has_private_mem)
        valid |= KVM_MEM_GUEST_MEMFD;
    if (m->flags & KVM_MEM_GUEST_MEMFD)
        valid &= ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY);
    if (m->flags & ~valid)
        return -EINVAL;
    bool gm = m->flags & KVM_MEM_GUEST_MEMFD;
    if (gm && ((m->guest_memfd_offset & (ABI_PAGE_SIZE - 1)) ||
               m->guest_memfd_offset + m->memory_size < m->guest_memfd_offset))
        return -EINVAL;
    uint32_t as_id = m->slot >> 16, id = m->slot & 0xffff;
    /* x86's two address spaces: 0 normal, 1 SMM (KVM_ADDRESS_SPACE_NUM = 2) */
    if (as_id >= 2 || id >= ABI_USER_MEM_SLOTS)
        return -EINVAL;
    struct abi_aspace *as = &vm->as[as_id];
    if ((m->memory_size & (ABI_PAGE_SIZE - 1)) || (m->guest_phys_addr & (ABI_PAGE_SIZE - 1)))
        return -EINVAL;
    if ((m->userspace_addr & (ABI_PAGE_SIZE - 1)) || m->userspace_addr > TASK_SIZE_MAX ||
        m->memory_size > TASK_SIZE_MAX - m->userspace_addr)
        return -EINVAL;
    if (m->guest_phys_addr + m->memory_size < m->guest_phys_addr)
        return -EINVAL;
    if (m->memory_size / ABI_PAGE_SIZE > MEM_MAX_NR_PAGES)
        return -EINVAL;

    long r = 0;
    struct abi_gmem *gref = NULL; /* our reference for the lookup, put after unlocking */
    pthread_mutex_lock(&vm->lock);
    if (!as->slots && !(as->slots = calloc(ABI_USER_MEM_SLOTS, sizeof *as->slots))) {
        r = -ENOMEM; /* address space 1's table is made at its first slot */
        goto out;
    }
    if ((r = order_alloc(as)) != 0)
        goto out;
    struct abi_memslot *old = &as->slots[id];
    if (m->memory_size == 0) { /* delete */
        if (!old->used) {
            r = -EINVAL;
            goto out;
        }
        struct abi_memslot saved = *old;
        order_remove(as, id);
        memset(old, 0, sizeof *old);
        r = rebuild_physmem(vm, as);
        if (r) {
            *old = saved;
            if (id + 1 > as->slot_hi)
                as->slot_hi = id + 1;
            order_reset(as);
            goto out;
        }
        free(saved.dirty);
        if (saved.null_standin)
            munmap(saved.null_standin, saved.size);
        goto out;
    }
    struct abi_memslot neu = {.used = true,
                              .flags = m->flags,
                              .gpa = m->guest_phys_addr,
                              .size = m->memory_size,
                              .uaddr = m->userspace_addr};
    if (old->used) {
        /* "Private memslots are immutable, they can only be deleted." */
        if (gm || m->userspace_addr != old->uaddr || m->memory_size != old->size ||
            ((m->flags ^ old->flags) & (KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD))) {
            r = -EINVAL;
            goto out;
        }
        if (m->guest_phys_addr == old->gpa && m->flags == old->flags)
            goto out; /* nothing changes */
    }
    if ((!old->used || neu.gpa != old->gpa) && overlaps_other(as, id, neu.gpa, neu.size)) {
        r = -EEXIST;
        goto out;
    }
    if (gm) { /* kvm_gmem_prepare_memory_region: this VM's guest_memfd, range inside it */
        if (!(gref = abi_gmem_from_fd(p, (int)m->guest_memfd, &r)))
            goto out;
        if (gref->vm != vm || m->guest_memfd_offset + m->memory_size > gref->size) {
            r = -EINVAL;
            goto out;
        }
        neu.gmem = gref;
        neu.gmem_off = m->guest_memfd_offset;
    }
    /* x86.c kvm_arch_prepare_memory_region: a new or moved slot must end below
     * kvm_mmu_max_gfn(), 2^MAXPHYADDR (48 bits, abi/cpuid.c) */
    if ((!old->used || neu.gpa != old->gpa) &&
        (neu.gpa >> 12) + (neu.size >> 12) - 1 > MAX_GFN) {
        r = -EINVAL;
        goto out;
    }
    if (gm && gmem_range_bound(vm, gref, neu.gmem_off, neu.size)) {
        r = -EEXIST; /* kvm_gmem_commit_memory_region */
        goto out;
    }
    if (old->used) {
        neu.null_standin = old->null_standin; /* same uaddr and size */
    } else if (!neu.uaddr) {
        void *sm = mmap(NULL, neu.size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                        -1, 0);
        if (sm == MAP_FAILED) {
            r = -ENOMEM;
            goto out;
        }
        neu.null_standin = sm;
    }
    if (neu.flags & KVM_MEM_LOG_DIRTY_PAGES) {
        /* keep the bitmap across a flags-only change that keeps logging on */
        if (old->used && old->dirty && neu.gpa == old->gpa)
            neu.dirty = old->dirty;
        else if (!(neu.dirty = alloc_dirty(neu.size,
                                           vm->manual_dirty_log & KVM_DIRTY_LOG_INITIALLY_SET))) {
            r = -ENOMEM;
            goto fail_standin;
        }
    }
    struct abi_memslot saved = *old;
    if (old->used)
        order_remove(as, id);
    *old = neu;
    if (id + 1 > as->slot_hi)
        as->slot_hi = id + 1;
    order_insert(as, id);
    r = saved.used || vm->memattr.n ? rebuild_physmem(vm, as) : add_physmem(vm, as, id);
    if (r) {
        if (neu.dirty != saved.dirty)
            free(neu.dirty);
        *old = saved;
        if (id + 1 > as->slot_hi)
            as->slot_hi = id + 1;
        order_reset(as);
        goto fail_standin;
    }
    if (saved.dirty && saved.dirty != neu.dirty)
        free(saved.dirty);
    goto out;
fail_standin:
    if (neu.null_standin && !old->used)
        munmap(neu.null_standin, neu.size);
out:
    pthread_mutex_unlock(&vm->lock);
    if (gref) /* the binding is no reference (kvm_set_memory_region: fput) */
        abi_obj_put(&gref->obj);
    return r;
}

/* The dirty-logged slot named by a KVM slot number, or NULL with *err set:
 * -EINVAL for an address space or id out of range, -ENOENT for no slot or no
 * logging (kvm_get_dirty_log_protect). vm->lock held for the lookup. */
static struct abi_memslot *logged_slot(struct abi_vm *vm, uint32_t slot, long *err)
{
    uint32_t as_id = slot >> 16, id = slot & 0xffff;
    *err = -EINVAL;
    if (as_id >= 2 || id >= ABI_USER_MEM_SLOTS)
        return NULL;
    *err = -ENOENT;
    if (!vm->as[as_id].slots)
        return NULL;
    struct abi_memslot *s = &vm->as[as_id].slots[id];
    *err = -ENOENT;
    if (!s->used || !s->dirty)
        return NULL;
    *err = 0;
    return s;
}

/* After bits were cleared: as KVM's remote TLB flush, no vCPU may still be inside an
 * instruction that stored to a logged page (emu_dirty_log_sync). Outside vm->lock: a
 * vCPU's instruction may itself need the lock. */
static void sync_vcpus(struct abi_vm *vm)
{
    struct emu_vcpu *e[ABI_MAX_VCPUS];
    unsigned n = 0;
    pthread_mutex_lock(&vm->lock);
    for (unsigned i = 0; i < vm->nvcpus; i++)
        if (vm->vcpus[i] && vm->vcpus[i]->emu)
            e[n++] = vm->vcpus[i]->emu;
    pthread_mutex_unlock(&vm->lock);
    for (unsigned i = 0; i < n; i++)
        emu_dirty_log_sync(e[i]);
}

/* KVM_GET_DIRTY_LOG: copy and clear, or with manual protection only copy
 * (kvm_get_dirty_log_protect: the bits stay until KVM_CLEAR_DIRTY_LOG). */
long abi_vm_get_dirty_log(struct abi_vm *vm, unsigned long arg)
{
    struct kvm_dirty_log log;
    if (abi_copy_from_user(&log, (void *)arg, sizeof log))
        return -EFAULT;
    long r = 0;
    pthread_mutex_lock(&vm->lock);
    bool manual = vm->manual_dirty_log & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
    struct abi_memslot *s = logged_slot(vm, log.slot, &r);
    if (!s)
        goto out;
    uint64_t words = (s->size / ABI_PAGE_SIZE + 63) / 64;
    uint64_t *snap = calloc(words ? words : 1, sizeof *snap);
    if (!snap) {
        r = -ENOMEM;
        goto out;
    }
    for (uint64_t i = 0; i < words; i++)
        snap[i] = manual ? __atomic_load_n(&s->dirty[i], __ATOMIC_ACQUIRE)
                         : __atomic_exchange_n(&s->dirty[i], 0, __ATOMIC_ACQ_REL);
    if (abi_copy_to_user(log.dirty_bitmap, snap, words * sizeof *snap)) {
        /* put the bits back: nothing was reported */
        for (uint64_t i = 0; !manual && i < words; i++)
            __atomic_fetch_or(&s->dirty[i], snap[i], __ATOMIC_ACQ_REL);
        r = -EFAULT;
    }
    free(snap);
out:
    pthread_mutex_unlock(&vm->lock);
    if (r == 0 && !manual)
        sync_vcpus(vm);
    return r;
}

/* kvm_clear_dirty_log_protect's range rule: first_page 64-aligned (checked
 * before the slot lookup), the range inside the slot, and num_pages a
 * multiple of 64 unless the range runs to the slot's end. */
static bool clear_range_ok(const struct kvm_clear_dirty_log *log, uint64_t npages)
{
    return log->first_page <= npages && log->num_pages <= npages - log->first_page &&
           (log->num_pages == npages - log->first_page || !(log->num_pages & 63));
}

/* KVM_CLEAR_DIRTY_LOG (kvm_vm_ioctl_clear_dirty_log). KVM accepts it with or
 * without manual protection enabled; so do we. Bits past the slot's end in
 * the caller's last word are harmless: they are never set. */
long abi_vm_clear_dirty_log(struct abi_vm *vm, unsigned long arg)
{
    struct kvm_clear_dirty_log log;
    if (abi_copy_from_user(&log, (void *)arg, sizeof log))
        return -EFAULT;
    if ((log.slot >> 16) >= 1 || (log.slot & 0xffff) >= ABI_USER_MEM_SLOTS)
        return -EINVAL;
    if (log.first_page & 63)
        return -EINVAL;
    long r = 0;
    pthread_mutex_lock(&vm->lock);
    struct abi_memslot *s = logged_slot(vm, log.slot, &r);
    if (!s)
        goto out;
    if (!clear_range_ok(&log, s->size / ABI_PAGE_SIZE)) {
        r = -EINVAL;
        goto out;
    }
    uint64_t words = ((uint64_t)log.num_pages + 63) / 64;
    uint64_t *mask = calloc(words ? words : 1, sizeof *mask);
    if (!mask) {
        r = -ENOMEM;
        goto out;
    }
    if (abi_copy_from_user(mask, log.dirty_bitmap, words * sizeof *mask)) {
        r = -EFAULT;
    } else {
        uint64_t *d = s->dirty + log.first_page / 64;
        for (uint64_t i = 0; i < words; i++)
            if (mask[i]) /* a vCPU may set bits meanwhile: clear only the asked ones */
                __atomic_fetch_and(&d[i], ~mask[i], __ATOMIC_ACQ_REL);
    }
    free(mask);
out:
    pthread_mutex_unlock(&vm->lock);
    if (r == 0)
        sync_vcpus(vm);
    return r;
}

/* kvm_vm_ioctl_enable_cap_generic: INITIALLY_SET only together with ENABLE;
 * args[0] replaces the setting (0 turns manual protection off again). */
long abi_vm_enable_manual_dirty_log(struct abi_vm *vm, uint64_t flags)
{
    uint64_t allowed = (flags & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)
                           ? ABI_DIRTY_LOG_MANUAL_CAPS
                           : KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
    if (flags & ~allowed)
        return -EINVAL;
    vm->manual_dirty_log = flags;
    return 0;
}

/* Writes done by the layers above (MSR-driven guest writes, PIO string data). */
static void free_aspace(struct abi_aspace *as);

void abi_vm_mark_dirty(struct abi_vm *vm, uint64_t gpa, uint64_t len)
{
    struct abi_aspace *as = &vm->as[0]; /* abi/ and msr/ write for the guest outside SMM */
    for (unsigned i = 0; i < as->mem.nslots; i++) {
        struct emu_slot *s = &as->mem.slots[i];
        if (!s->dirty_bitmap || gpa < s->gpa || gpa >= s->gpa + s->size)
            continue;
        for (uint64_t a = gpa & ~(uint64_t)(ABI_PAGE_SIZE - 1); a < gpa + len && a < s->gpa + s->size;
             a += ABI_PAGE_SIZE) {
            uint64_t pg = (a - s->gpa) / ABI_PAGE_SIZE;
            __atomic_fetch_or(&s->dirty_bitmap[pg / 64], 1ull << (pg % 64), __ATOMIC_RELAXED);
        }
    }
}

void abi_vm_free_slots(struct abi_vm *vm)
{
    for (unsigned i = 0; i < 2; i++)
        free_aspace(&vm->as[i]);
}

static void free_aspace(struct abi_aspace *as)
{
    if (!as->slots)
        return;
    for (unsigned i = 0; i < ABI_USER_MEM_SLOTS; i++) {
        free(as->slots[i].dirty);
        if (as->slots[i].null_standin)
            munmap(as->slots[i].null_standin, as->slots[i].size);
    }
    free(as->slots);
    as->slots = NULL;
    free(as->mem.slots);
    as->mem.slots = NULL;
    free(as->slot_order);
    as->slot_order = NULL;
    as->nslot_order = 0;
    as->mem.nslots = 0;
}
