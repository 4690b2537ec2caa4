/* msr/: KVM_X86_SET_MSR_FILTER and the filter lookup (KVM's kvm_vm_ioctl_set_msr_filter,
 * kvm_add_msr_filter, kvm_msr_allowed in arch/x86/kvm/x86.c; api.rst KVM_X86_SET_MSR_FILTER). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msr/msr.h"
#include "msr/msr_index.h"

/* KVM_MSR_FILTER_MAX_BITMAP_SIZE: a range's bitmap may not exceed 0x600 bytes. */
#define MSR_FILTER_MAX_BITMAP_BYTES 0x600
#define MSR_FILTER_RANGE_VALID (KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE)

static void filter_free(struct msr_filter *f)
{
    if (!f)
        return;
    for (unsigned i = 0; i < f->count; i++)
        free(f->ranges[i].bitmap);
    free(f);
}

/* One user range: skipped when empty, else flags, size, then the copy (EFAULT) — in this
 * order, so a range with bad flags AND a bad pointer reports EINVAL. */
static int filter_add_range(struct msr_filter *f, const struct kvm_msr_filter_range *ur,
                            int (*copy_from_user)(void *, const void *, size_t))
{
    if (ur->nmsrs == 0)
        return 0;
    if (ur->flags & ~(uint32_t)MSR_FILTER_RANGE_VALID)
        return -EINVAL;
    if (ur->flags == 0)
        return -EINVAL;
    /* BITS_TO_LONGS(nmsrs) * sizeof(long), computed without overflow */
    size_t bytes = (((size_t)ur->nmsrs + 63) / 64) * 8;
    if (bytes == 0 || bytes > MSR_FILTER_MAX_BITMAP_BYTES)
        return -EINVAL;
    uint64_t *bm = malloc(bytes);
    if (!bm)
        return -ENOMEM;
    int r = copy_from_user(bm, ur->bitmap, bytes);
    if (r) {
        free(bm);
        return r < 0 ? r : -EFAULT;
    }
    f->ranges[f->count++] = (struct msr_filter_range){
        .flags = ur->flags, .nmsrs = ur->nmsrs, .base = ur->base, .bitmap = bm};
    return 0;
}

int msr_vm_set_filter(struct msr_vm *vm, const struct kvm_msr_filter *uf,
                      int (*copy_from_user)(void *dst, const void *usrc, size_t n))
{
    if (uf->flags & ~(uint32_t)KVM_MSR_FILTER_DEFAULT_DENY)
        return -EINVAL;
    bool empty = true;
    for (unsigned i = 0; i < KVM_MSR_FILTER_MAX_RANGES; i++)
        empty &= uf->ranges[i].nmsrs == 0;
    /* DEFAULT_ALLOW is 0: "allow" means the DENY bit is clear. */
    bool default_allow = !(uf->flags & KVM_MSR_FILTER_DEFAULT_DENY);
    if (empty && !default_allow)
        return -EINVAL;

    struct msr_filter *nf = calloc(1, sizeof(*nf));
    if (!nf)
        return -ENOMEM;
    nf->default_allow = default_allow;
    for (unsigned i = 0; i < KVM_MSR_FILTER_MAX_RANGES; i++) {
        int r = filter_add_range(nf, &uf->ranges[i], copy_from_user);
        if (r) {
            filter_free(nf);
            return r;
        }
    }

    /* Publish: readers load vm->filter with acquire after seeing the new generation.
     * The old filter may still be read by a vCPU mid-access, so it is retired, not freed. */
    pthread_mutex_lock(&vm->lock);
    struct msr_filter *old = atomic_exchange_explicit(&vm->filter, nf, memory_order_acq_rel);
    if (old) {
        old->retired_next = vm->retired;
        vm->retired = old;
    }
    atomic_fetch_add_explicit(&vm->filter_gen, 1, memory_order_release);
    pthread_mutex_unlock(&vm->lock);
    return 0;
}

bool msr_filter_allows(const struct msr_filter *f, uint32_t index, uint32_t kind)
{
    /* x2APIC MSRs are never filtered (api.rst: "x2APIC MSRs are always allowed"). */
    if (index >= MSR_X2APIC_FIRST && index <= MSR_X2APIC_LAST)
        return true;
    if (!f)
        return true;
    for (unsigned i = 0; i < f->count; i++) {
        const struct msr_filter_range *r = &f->ranges[i];
        uint32_t end = r->base + r->nmsrs; /* u32 arithmetic, as KVM's */
        if (index >= r->base && index < end && (r->flags & kind)) {
            uint32_t bit = index - r->base;
            return (r->bitmap[bit / 64] >> (bit % 64)) & 1;
        }
    }
    return f->default_allow;
}

void msr_filter_free_all(struct msr_vm *vm)
{
    filter_free(atomic_exchange(&vm->filter, NULL));
    while (vm->retired) {
        struct msr_filter *n = vm->retired->retired_next;
        filter_free(vm->retired);
        vm->retired = n;
    }
}
