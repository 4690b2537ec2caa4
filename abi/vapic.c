/* abi/: the vAPIC page and TPR access reports (KVM_SET_VAPIC_ADDR,
 * KVM_TPR_ACCESS_REPORTING; arch/x86/kvm/x86.c and lapic.c kvm_lapic_set_vapic_addr,
 * kvm_lapic_sync_to_vapic/_from_vapic, report_tpr_access, Linux 6.12). QEMU sets the
 * vAPIC address at every APIC reset; its kvmvapic option ROM uses both for TPR patching. */
#include <errno.h>
#include <string.h>

#include "abi/abi_internal.h"

long abi_vcpu_set_vapic_addr(struct abi_vcpu *v, unsigned long arg)
{
    if (!v->lapic)
        return -EINVAL; /* lapic_in_kernel() is checked before the copy */
    struct kvm_vapic_addr va;
    if (abi_copy_from_user(&va, (void *)arg, sizeof va))
        return -EFAULT;
    if (va.vapic_addr) {
        /* kvm_gfn_to_hva_cache_init: the u32 must be writable guest RAM */
        pthread_rwlock_rdlock(&v->vm->mem_lock);
        bool ok = emu_gpa_to_host(&v->vm->as[0].mem, va.vapic_addr, 4, true) != NULL;
        pthread_rwlock_unlock(&v->vm->mem_lock);
        if (!ok)
            return -EINVAL;
    }
    abi_lapic_set_vapic_addr(v->lapic, va.vapic_addr);
    return 0;
}

long abi_vcpu_tpr_access_reporting(struct abi_vcpu *v, unsigned long arg)
{
    struct kvm_tpr_access_ctl tac;
    if (abi_copy_from_user(&tac, (void *)arg, sizeof tac))
        return -EFAULT;
    if (tac.flags)
        return -EINVAL;
    /* KVM keeps the flag even without an in-kernel LAPIC (it is then never used) */
    v->tpr_access_reporting = tac.enabled != 0;
    if (v->lapic)
        abi_lapic_set_tpr_access_reporting(v->lapic, v->tpr_access_reporting);
    /* copied back unchanged, as x86.c does */
    if (abi_copy_to_user((void *)arg, &tac, sizeof tac))
        return -EFAULT;
    return 0;
}

/* Before the guest runs (caller holds mem_lock for reading). */
void abi_vapic_sync_to(struct abi_vcpu *v)
{
    uint64_t gpa;
    uint32_t data;
    if (!v->lapic || !abi_lapic_vapic_data(v->lapic, &gpa, &data))
        return;
    uint8_t *h = emu_gpa_to_host(&v->vm->as[0].mem, gpa, 4, true);
    /* kvm_write_guest_cached: a vanished slot or bad host mapping is silently skipped */
    if (h && abi_copy_to_user(h, &data, 4) == 0)
        abi_vm_mark_dirty(v->vm, gpa, 4);
}

/* After the guest stopped (caller holds mem_lock for reading). */
void abi_vapic_sync_from(struct abi_vcpu *v)
{
    uint64_t gpa;
    if (!v->lapic || !abi_lapic_vapic_active(v->lapic, &gpa))
        return;
    const uint8_t *h = emu_gpa_to_host(&v->vm->as[0].mem, gpa, 4, false);
    uint32_t data;
    if (h && abi_copy_from_user(&data, h, 4) == 0)
        abi_lapic_vapic_set_tpr(v->lapic, (uint8_t)data);
}

/* KVM_REQ_REPORT_TPR_ACCESS, checked before each guest entry: true if KVM_RUN must return
 * KVM_EXIT_TPR_ACCESS now. */
bool abi_vapic_tpr_exit(struct abi_vcpu *v)
{
    bool write;
    uint64_t rip;
    if (!v->lapic || !abi_lapic_take_tpr_access(v->lapic, &write, &rip))
        return false;
    v->run->exit_reason = KVM_EXIT_TPR_ACCESS;
    v->run->tpr_access.rip = rip;
    v->run->tpr_access.is_write = write;
    return true;
}
