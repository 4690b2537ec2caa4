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
 * emu slot, so KVM's 32764 user slots fit into emu's EMU_MAX_SLOTS. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "abi/abi_internal.h"

#define TASK_SIZE_MAX 0x7ffffffff000ull   /* x86-64 4-level user address space */
#define MEM_MAX_NR_PAGES ((1ull << 31) - 1) /* KVM_MEM_MAX_NR_PAGES */
#define MAX_GFN ((1ull << (48 - 12)) - 1)  /* kvm_mmu_max_gfn() with 48 physical bits */

static int cmp_slot_gpa(const void *a, const void *b)
{
    const struct abi_memslot *x = *(struct abi_memslot *const *)a;
    const struct abi_memslot *y = *(struct abi_memslot *const *)b;
    return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/* Stop every vCPU at an instruction boundary and keep them out of emu_run while
 * vm->mem changes. emu_request_stop is re-issued until the write lock is ours, since
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

/* Rebuild emu's view from the KVM slots (caller holds vm->lock). */
static int rebuild_physmem(struct abi_vm *vm)
{
    unsigned n = 0;
    while (vm->slot_hi > 0 && !vm->slots[vm->slot_hi - 1].used)
        vm->slot_hi--;
    for (unsigned i = 0; i < vm->slot_hi; i++)
        if (vm->slots[i].used)
            n++;
    struct abi_memslot **sorted = calloc(n ? n : 1, sizeof *sorted);
    if (!sorted)
        return -ENOMEM;
    n = 0;
    bool in_order = true;
    for (unsigned i = 0; i < vm->slot_hi; i++)
        if (vm->slots[i].used) {
            if (n && sorted[n - 1]->gpa > vm->slots[i].gpa)
                in_order = false;
            sorted[n++] = &vm->slots[i];
        }
    if (!in_order)
        qsort(sorted, n, sizeof *sorted, cmp_slot_gpa);

    struct emu_slot tmp[EMU_MAX_SLOTS];
    unsigned ne = 0;
    for (unsigned i = 0; i < n; i++) {
        struct abi_memslot *s = sorted[i];
        bool ro = s->flags & KVM_MEM_READONLY;
        if (ne > 0) {
            struct emu_slot *prev = &tmp[ne - 1];
            if (!prev->dirty_bitmap && !s->dirty && prev->readonly == ro &&
                prev->gpa + prev->size == s->gpa &&
                prev->host + prev->size == (uint8_t *)(uintptr_t)s->uaddr) {
                prev->size += s->size;
                continue;
            }
        }
        if (ne == EMU_MAX_SLOTS) {
            free(sorted);
            return -ENOSPC;
        }
        tmp[ne++] = (struct emu_slot){.gpa = s->gpa,
                                      .size = s->size,
                                      .host = s->null_standin ? s->null_standin
                                                              : (uint8_t *)(uintptr_t)s->uaddr,
                                      .readonly = ro,
                                      .dirty_bitmap = s->dirty};
    }
    free(sorted);
    abi_vm_mem_write_lock(vm);
    memcpy(vm->mem.slots, tmp, ne * sizeof tmp[0]);
    if (ne < vm->mem.nslots)
        memset(&vm->mem.slots[ne], 0, (vm->mem.nslots - ne) * sizeof tmp[0]);
    vm->mem.nslots = ne;
    __atomic_add_fetch(&vm->mem.generation, 1, __ATOMIC_RELEASE);
    abi_vm_mem_write_unlock(vm);
    return 0;
}

static bool overlaps_other(struct abi_vm *vm, unsigned id, uint64_t gpa, uint64_t size)
{
    for (unsigned i = 0; i < vm->slot_hi; i++) {
        const struct abi_memslot *s = &vm->slots[i];
        if (i == id || !s->used)
            continue;
        if (gpa < s->gpa + s->size && s->gpa < gpa + size)
            return true;
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

long abi_vm_set_memory_region(struct abi_vm *vm, const struct kvm_userspace_memory_region2 *m,
                              bool v2)
{
    uint32_t valid = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY;
    (void)v2; /* guest_memfd (KVM_MEM_GUEST_MEMFD) needs a private-memory VM type: EINVAL */
    if (m->flags & ~valid)
        return -EINVAL;
    uint32_t as_id = m->slot >> 16, id = m->slot & 0xffff;
    /* x86 has 2 address spaces (SMM); we provide only the normal one (no SMM support). */
    if (as_id >= 1 || id >= ABI_USER_MEM_SLOTS)
        return -EINVAL;
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
    pthread_mutex_lock(&vm->lock);
    struct abi_memslot *old = &vm->slots[id];
    if (m->memory_size == 0) { /* delete */
        if (!old->used) {
            r = -EINVAL;
            goto out;
        }
        struct abi_memslot saved = *old;
        memset(old, 0, sizeof *old);
        r = rebuild_physmem(vm);
        if (r) {
            *old = saved;
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
        if (m->userspace_addr != old->uaddr || m->memory_size != old->size ||
            ((m->flags ^ old->flags) & KVM_MEM_READONLY)) {
            r = -EINVAL;
            goto out;
        }
        if (m->guest_phys_addr == old->gpa && m->flags == old->flags)
            goto out; /* nothing changes */
    }
    if ((!old->used || neu.gpa != old->gpa) && overlaps_other(vm, id, neu.gpa, neu.size)) {
        r = -EEXIST;
        goto out;
    }
    /* x86.c kvm_arch_prepare_memory_region: a new or moved slot must end below
     * kvm_mmu_max_gfn(), 2^MAXPHYADDR (48 bits, abi/cpuid.c) */
    if ((!old->used || neu.gpa != old->gpa) &&
        (neu.gpa >> 12) + (neu.size >> 12) - 1 > MAX_GFN) {
        r = -EINVAL;
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
    *old = neu;
    if (id + 1 > vm->slot_hi)
        vm->slot_hi = id + 1;
    r = rebuild_physmem(vm);
    if (r) {
        if (neu.dirty != saved.dirty)
            free(neu.dirty);
        *old = saved;
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
    return r;
}

/* The dirty-logged slot named by a KVM slot number, or NULL with *err set:
 * -EINVAL for an address space or id out of range, -ENOENT for no slot or no
 * logging (kvm_get_dirty_log_protect). vm->lock held for the lookup. */
static struct abi_memslot *logged_slot(struct abi_vm *vm, uint32_t slot, long *err)
{
    uint32_t as_id = slot >> 16, id = slot & 0xffff;
    *err = -EINVAL;
    if (as_id >= 1 || id >= ABI_USER_MEM_SLOTS)
        return NULL;
    struct abi_memslot *s = &vm->slots[id];
    *err = -ENOENT;
    if (!s->used || !s->dirty)
        return NULL;
    *err = 0;
    return s;
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
    struct abi_memslot *s = logged_slot(vm, log.slot, &r);
    if (!s)
        goto out;
    bool manual = vm->manual_dirty_log & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
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
void abi_vm_mark_dirty(struct abi_vm *vm, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < vm->mem.nslots; i++) {
        struct emu_slot *s = &vm->mem.slots[i];
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
    if (!vm->slots)
        return;
    for (unsigned i = 0; i < ABI_USER_MEM_SLOTS; i++) {
        free(vm->slots[i].dirty);
        if (vm->slots[i].null_standin)
            munmap(vm->slots[i].null_standin, vm->slots[i].size);
    }
    free(vm->slots);
    vm->slots = NULL;
}
