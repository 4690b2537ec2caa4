/* msr/: the VM's PMU event filter (KVM_SET_PMU_EVENT_FILTER) as Linux 6.12 pmu.c
 * prepare_filter_lists keeps it: plain events become masked entries with an all-ones
 * umask mask (events with bits outside event select + umask are dropped, they can never
 * match), then the entries are sorted by event select with the excludes last. abi/
 * validates the ioctl; vCPUs apply a new filter at their next entry (KVM_REQ_PMU). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msr/internal.h"

#define MASKED_EXCLUDE (1ull << 55)
#define MASKED_UMASK_MASK_ALL (0xffull << 56)

/* filter_sort_cmp: KVM_PMU_MASKED_ENTRY_EVENT_SELECT | KVM_PMU_MASKED_ENTRY_EXCLUDE */
static int cmp_u64(const void *a, const void *b)
{
    const uint64_t key = 0xf000000ffull | MASKED_EXCLUDE;
    uint64_t x = *(const uint64_t *)a & key, y = *(const uint64_t *)b & key;
    return (x > y) - (x < y);
}

int msr_vm_set_pmu_filter(struct msr_vm *vm, const struct kvm_pmu_event_filter *hdr,
                          const uint64_t *events)
{
    uint64_t evsel = vm->vendor == MSR_VENDOR_AMD ? 0xf000000ffull : 0xffull;
    struct msr_pmu_filter *f = calloc(1, sizeof(*f) + (hdr->nevents + 1) * sizeof(uint64_t));
    if (!f)
        return -ENOMEM;
    f->action = hdr->action;
    f->fixed_counter_bitmap = hdr->fixed_counter_bitmap;
    f->flags = hdr->flags;
    uint32_t n = 0;
    for (uint32_t i = 0; i < hdr->nevents; i++) {
        uint64_t e = events[i];
        if (!(hdr->flags & 1u /* KVM_PMU_EVENT_FLAG_MASKED_EVENTS */)) {
            /* convert_to_masked_filter */
            if (e & ~(evsel | 0xff00ull))
                continue;
            e |= MASKED_UMASK_MASK_ALL;
        }
        f->events[n++] = e;
    }
    f->nevents = n;
    /* filter_sort_cmp: by event select with EXCLUDE, a more significant bit, so the
     * sorted list is the includes followed by the excludes */
    qsort(f->events, n, sizeof(uint64_t), cmp_u64);
    uint32_t inc = 0;
    while (inc < n && !(f->events[inc] & MASKED_EXCLUDE))
        inc++;
    f->nr_includes = inc;
    pthread_mutex_lock(&vm->lock);
    struct msr_pmu_filter *old = atomic_exchange(&vm->pmu_filter, f);
    if (old) {
        old->retired_next = vm->pmu_filter_retired; /* freed at VM destroy (no RCU) */
        vm->pmu_filter_retired = old;
    }
    atomic_fetch_add(&vm->pmu_filter_gen, 1);
    pthread_mutex_unlock(&vm->lock);
    return 0;
}

void msr_vm_free_pmu_filters(struct msr_vm *vm)
{
    struct msr_pmu_filter *f = atomic_exchange(&vm->pmu_filter, NULL);
    free(f);
    while ((f = vm->pmu_filter_retired)) {
        vm->pmu_filter_retired = f->retired_next;
        free(f);
    }
}
