/* abi/: KVM_SET_PMU_EVENT_FILTER, validated exactly as arch/x86/kvm/pmu.c
 * kvm_vm_ioctl_set_pmu_event_filter (6.12) does, then handed to the vPMU
 * (msr/pmu_filter.c), which every vCPU applies at its next entry. */
#include <errno.h>
#include <stdlib.h>

#include "abi/abi_internal.h"

#define MAX_EVENTS 300 /* KVM_PMU_EVENT_FILTER_MAX_EVENTS */
#define FLAG_MASKED_EVENTS 1u
/* masked-event entry fields (uapi asm/kvm.h); the event select is the vendor's EVENTSEL_EVENT */
#define MASKED_UMASK_MASK (0xffull << 56)
#define MASKED_UMASK_MATCH (0xffull << 8)
#define MASKED_EXCLUDE (1ull << 55)

long abi_vm_set_pmu_event_filter(struct abi_vm *vm, unsigned long arg)
{
    struct kvm_pmu_event_filter f;
    if (abi_copy_from_user(&f, (void *)arg, sizeof f))
        return -EFAULT;
    if (f.action != KVM_PMU_EVENT_ALLOW && f.action != KVM_PMU_EVENT_DENY)
        return -EINVAL;
    if (f.flags & ~FLAG_MASKED_EVENTS)
        return -EINVAL;
    if (f.nevents > MAX_EVENTS)
        return -E2BIG;
    uint64_t *ev = calloc(f.nevents ? f.nevents : 1, sizeof *ev);
    if (!ev)
        return -ENOMEM;
    long r = 0;
    if (abi_copy_from_user(ev, (char *)arg + sizeof f, f.nevents * sizeof *ev))
        r = -EFAULT;
    /* prepare_filter_lists: masked events may only use the masked-entry fields */
    uint64_t evsel = vm->sys->vendor == ABI_VENDOR_AMD ? 0xffull | 0xfull << 32 : 0xffull;
    uint64_t mask = evsel | MASKED_UMASK_MASK | MASKED_UMASK_MATCH | MASKED_EXCLUDE;
    for (uint32_t i = 0; !r && (f.flags & FLAG_MASKED_EVENTS) && i < f.nevents; i++)
        if (ev[i] & ~mask)
            r = -EINVAL;
    if (!r)
        r = msr_vm_set_pmu_filter(&vm->msr, &f, ev);
    free(ev);
    return r;
}
