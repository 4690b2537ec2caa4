/* abi/: KVM_PRE_FAULT_MEMORY (6.12 kvm_main.c kvm_vcpu_pre_fault_memory, mmu.c
 * kvm_arch_vcpu_pre_fault_memory / kvm_tdp_map_page). softkvm has no second-level page
 * tables to fill, so "mapping" a page means what KVM's fault-in decides: the GPA has a
 * memslot in the vCPU's address space (else RET_PF_EMULATE: -ENOENT) and the slot's host
 * page can be read (else the error pfn: -EFAULT). Pages go one at a time (KVM may take a
 * huge page per step; the range left afterwards is the same). KVM's signal_pending()
 * check between steps has no counterpart: outside KVM_RUN a signal's handler has already
 * run when we could look, and a step costs a lookup and a one-byte probe. */
#include <errno.h>

#include "abi/abi_internal.h"
#include "abi/kvm_compat.h"

#define PAGE 4096ull

/* kvm_arch_vcpu_pre_fault_memory: bytes mapped (> 0) or -errno */
static long map_one(struct abi_vcpu *v, uint64_t gpa, uint64_t size)
{
    if (emu_nested_tdp_active(v->emu))
        return -EOPNOTSUPP; /* kvm_tdp_map_page: only the TDP MMU is indexed by GPA */
    struct abi_vm *vm = v->vm;
    const struct emu_physmem *pm = emu_cpu(v->emu)->ev.smm ? &vm->as[1].mem : &vm->as[0].mem;
    pthread_rwlock_rdlock(&vm->mem_lock);
    const uint8_t *h = emu_gpa_to_host(pm, gpa, 1, false);
    uint8_t probe;
    long r = !h ? -ENOENT : abi_copy_from_user(&probe, h, 1) ? -EFAULT : 0;
    pthread_rwlock_unlock(&vm->mem_lock);
    if (r)
        return r;
    uint64_t end = (gpa & ~(PAGE - 1)) + PAGE; /* PG_LEVEL_4K */
    return (long)(size < end - gpa ? size : end - gpa);
}

static long pre_fault(struct abi_vcpu *v, struct kvm_pre_fault_memory *range)
{
    if (range->flags)
        return -EINVAL;
    if ((range->gpa & (PAGE - 1)) || (range->size & (PAGE - 1)) ||
        range->gpa + range->size <= range->gpa)
        return -EINVAL;
    uint64_t full = range->size;
    long r = 0;
    do {
        r = map_one(v, range->gpa, range->size);
        if (r < 0)
            break;
        range->size -= (uint64_t)r;
        range->gpa += (uint64_t)r;
    } while (range->size);
    /* success if at least one page was mapped */
    return full == range->size ? r : 0;
}

long abi_vcpu_pre_fault_memory(struct abi_vcpu *v, unsigned long arg)
{
    struct kvm_pre_fault_memory range;
    if (abi_copy_from_user(&range, (void *)arg, sizeof range))
        return -EFAULT;
    long r = pre_fault(v, &range);
    if (abi_copy_to_user((void *)arg, &range, sizeof range)) /* the range left */
        r = -EFAULT;
    return r;
}
