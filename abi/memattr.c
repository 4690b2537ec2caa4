/* abi/: memory attributes (KVM_SET_MEMORY_ATTRIBUTES, 6.12 virt/kvm/kvm_main.c
 * kvm_vm_ioctl_set_mem_attributes) and the private/shared view of guest memory that a
 * KVM_X86_SW_PROTECTED_VM gets from them.
 *
 * KVM keeps one attribute word per gfn in an xarray; the only attribute is PRIVATE, so
 * here the VM keeps the private gfns as a sorted array of disjoint, non-adjacent ranges
 * (struct abi_memattr). The selftests convert page by page, so a change costs a binary
 * search and one memmove. Attributes are VM-wide, not per slot: they outlive a slot's
 * deletion, and a private gfn with no slot is still private (kvm_handle_noslot_fault).
 *
 * What a guest access sees (mmu.c kvm_mmu_page_fault sets PFERR_PRIVATE_ACCESS for a
 * SW-protected VM from the gfn's attribute; kvm_faultin_pfn / kvm_faultin_pfn_private):
 * a shared gfn reads the slot's userspace_addr; a private gfn reads the slot's
 * guest_memfd page at guest_memfd_offset; a private gfn in a slot without guest_memfd
 * (or whose guest_memfd file was closed), or in no slot at all, ends KVM_RUN with
 * KVM_EXIT_MEMORY_FAULT (flags PRIVATE, the 4K page) and EFAULT. abi/memslot.c builds
 * emu's physmem from the slots cut at these ranges (abi_memattr_emit). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "abi/abi_internal.h"
#include "abi/kvm_compat.h"

/* kvm_supported_mem_attributes */
uint64_t abi_vm_supported_mem_attributes(const struct abi_vm *vm)
{
    return !vm || vm->has_private_mem ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
}

/* The first range ending after gfn. */
static unsigned first_after(const struct abi_memattr *a, uint64_t gfn)
{
    unsigned lo = 0, hi = a->n;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (a->r[mid].end <= gfn)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Does every gfn of [start, end) have `priv`? (kvm_range_has_memory_attributes) */
static bool range_is(const struct abi_memattr *a, uint64_t start, uint64_t end, bool priv)
{
    unsigned i = first_after(a, start);
    bool covered = i < a->n && a->r[i].start <= start && a->r[i].end >= end;
    bool touched = i < a->n && a->r[i].start < end;
    return priv ? covered : !touched;
}

/* [start, end) becomes private or shared: the ranges it overlaps or touches are cut
 * or joined. At most one range more than before. */
static int set_range(struct abi_memattr *a, uint64_t start, uint64_t end, bool priv)
{
    if (a->n + 1 > a->cap) {
        unsigned cap = a->cap ? 2 * a->cap : 16;
        struct abi_gfn_range *r = realloc(a->r, cap * sizeof *r);
        if (!r)
            return -ENOMEM;
        a->r = r;
        a->cap = cap;
    }
    /* [i, j): the ranges overlapping [start, end), or adjacent to it when joining */
    unsigned i = first_after(a, priv && start ? start - 1 : start), j = i;
    while (j < a->n && (a->r[j].start < end || (priv && a->r[j].start == end)))
        j++;
    struct abi_gfn_range keep[2];
    unsigned nk = 0;
    if (priv) {
        uint64_t s = start, e = end;
        if (i < j && a->r[i].start < s)
            s = a->r[i].start;
        if (i < j && a->r[j - 1].end > e)
            e = a->r[j - 1].end;
        keep[nk++] = (struct abi_gfn_range){s, e};
    } else if (i < j) {
        if (a->r[i].start < start)
            keep[nk++] = (struct abi_gfn_range){a->r[i].start, start};
        if (a->r[j - 1].end > end)
            keep[nk++] = (struct abi_gfn_range){end, a->r[j - 1].end};
    }
    memmove(&a->r[i + nk], &a->r[j], (a->n - j) * sizeof *a->r);
    memcpy(&a->r[i], keep, nk * sizeof *keep);
    a->n = a->n - (j - i) + nk;
    return 0;
}

long abi_vm_set_memory_attributes(struct abi_vm *vm, unsigned long arg)
{
    struct kvm_memory_attributes m;
    if (abi_copy_from_user(&m, (void *)arg, sizeof m))
        return -EFAULT;
    if (m.flags)
        return -EINVAL;
    if (m.attributes & ~abi_vm_supported_mem_attributes(vm))
        return -EINVAL;
    if (m.size == 0 || m.address + m.size < m.address)
        return -EINVAL;
    if ((m.address | m.size) & (ABI_PAGE_SIZE - 1))
        return -EINVAL;
    uint64_t start = m.address >> 12, end = (m.address + m.size) >> 12;
    bool priv = m.attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE;
    long r = 0;
    pthread_mutex_lock(&vm->lock);
    /* "Nothing to do if the entire range as the desired attributes." */
    if (!range_is(&vm->memattr, start, end, priv)) {
        r = set_range(&vm->memattr, start, end, priv);
        if (!r) /* kvm_arch_pre_set_memory_attributes zaps the range: a new view */
            r = abi_vm_rebuild_views(vm);
    }
    pthread_mutex_unlock(&vm->lock);
    return r;
}

bool abi_vm_gfn_private(const struct abi_vm *vm, uint64_t gfn)
{
    const struct abi_memattr *a = &vm->memattr;
    unsigned i = first_after(a, gfn);
    return i < a->n && a->r[i].start <= gfn;
}

/* Calls out(ctx, gpa, size, private) for [gpa, gpa + size) cut at the private ranges,
 * in gpa order; stops at the first nonzero return. */
int abi_memattr_split(const struct abi_vm *vm, uint64_t gpa, uint64_t size,
                      int (*out)(void *ctx, uint64_t gpa, uint64_t size, bool priv), void *ctx)
{
    const struct abi_memattr *a = &vm->memattr;
    uint64_t pos = gpa >> 12, end = (gpa + size) >> 12;
    for (unsigned i = first_after(a, pos); pos < end; i++) {
        uint64_t ps = i < a->n ? a->r[i].start : end, pe = i < a->n ? a->r[i].end : end;
        if (ps > end)
            ps = pe = end;
        int r;
        if (ps > pos && (r = out(ctx, pos << 12, (ps - pos) << 12, false)))
            return r;
        if (ps < pos)
            ps = pos;
        if (pe > end)
            pe = end;
        if (pe > ps && (r = out(ctx, ps << 12, (pe - ps) << 12, true)))
            return r;
        if (pe > pos)
            pos = pe;
    }
    return 0;
}

void abi_memattr_free(struct abi_memattr *a)
{
    free(a->r);
    memset(a, 0, sizeof *a);
}
