/* msr/: the Hyper-V synthetic MSRs. KVM's kvm_get_msr_common/kvm_set_msr_common hand
 * every HV_X64_MSR_* case to kvm_hv_get/set_msr_common (x86.c, 6.12 lines 3659 and 4010),
 * after the filter and before user-space deflection; here the table row does the same and
 * the Hyper-V model itself lives with the VM-wide state in abi/ (abi/hyperv_msr.c). A
 * refusal is reason INVAL, as KVM's "return 1". */
#include "msr/handlers.h"

int msr_get_hyperv(struct msr_vcpu *v, uint32_t index, uint64_t *value, bool host)
{
    if (!v->hv.get)
        return MSR_RET_INVAL;
    return v->hv.get(v->hv.ctx, index, value, host) ? MSR_RET_INVAL : MSR_RET_OK;
}

int msr_set_hyperv(struct msr_vcpu *v, uint32_t index, uint64_t value, bool host)
{
    if (!v->hv.set)
        return MSR_RET_INVAL;
    return v->hv.set(v->hv.ctx, index, value, host) ? MSR_RET_INVAL : MSR_RET_OK;
}
