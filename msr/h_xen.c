/* msr/: the Xen hypercall-page MSR. Its index is chosen by user space with
 * KVM_XEN_HVM_CONFIG (abi/xen.c stores it in msr_vm.xen_hypercall_msr); 6.12
 * kvm_set_msr_common tests `msr && msr == xen_hvm_config.msr` before its switch
 * (x86.c:3352), so the write wins over any in-kernel MSR of that index, reads are
 * untouched (kvm_get_msr_common has no such case), and the filter still applies
 * first. The page itself is written by abi/ (kvm_xen_write_hypercall_page); its
 * "return 1" is reason INVAL / #GP. */
#include "msr/handlers.h"

bool msr_is_xen_hypercall(const struct msr_vcpu *v, uint32_t index)
{
    return index && index == atomic_load_explicit(&v->vm->xen_hypercall_msr,
                                                  memory_order_acquire);
}

int msr_set_xen_hypercall(struct msr_vcpu *v, uint32_t index, uint64_t value, bool host)
{
    (void)index;
    if (!v->xen.write_hypercall_page)
        return MSR_RET_INVAL;
    return v->xen.write_hypercall_page(v->xen.ctx, value, host) ? MSR_RET_INVAL : MSR_RET_OK;
}
