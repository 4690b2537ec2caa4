/* abi/: machine-check ioctls on a vCPU fd: KVM_X86_SETUP_MCE and KVM_X86_SET_MCE
 * (arch/x86/kvm/x86.c kvm_vcpu_ioctl_x86_setup_mce / kvm_vcpu_ioctl_x86_set_mce, 6.12).
 * The bank state lives in msr/ (the MCG and MCi MSRs); this file copies the arguments
 * and applies what the injection asks of the vCPU. */
#include <errno.h>

#include "abi/abi_internal.h"

#define CR4_MCE (1ull << 6)
#define MC_VECTOR 18

long abi_vcpu_setup_mce(struct abi_vcpu *v, unsigned long arg)
{
    uint64_t mcg_cap;
    if (abi_copy_from_user(&mcg_cap, (void *)arg, sizeof mcg_cap))
        return -EFAULT;
    int r = msr_vcpu_setup_mce(v->msr, mcg_cap);
    if (r == 0 && v->lapic) /* kvm_apic_after_set_mcg_cap: CMCI LVT follows MCG_CMCI_P */
        abi_lapic_set_cmci_cap(v->lapic, (mcg_cap >> 10) & 1);
    return r;
}

long abi_vcpu_set_mce(struct abi_vcpu *v, unsigned long arg)
{
    struct kvm_x86_mce m;
    if (abi_copy_from_user(&m, (void *)arg, sizeof m))
        return -EFAULT;
    struct msr_mce mm = {m.status, m.addr, m.misc, m.mcg_status, m.bank};
    struct cpu *c = emu_cpu(v->emu);
    enum msr_mce_action act;
    int r = msr_vcpu_set_mce(v->msr, &mm, c->cr4 & CR4_MCE, &act);
    if (r)
        return r;
    switch (act) {
    case MSR_MCE_EXCEPTION:
        emu_queue_exception(v->emu, MC_VECTOR, false, 0);
        break;
    case MSR_MCE_TRIPLE_FAULT: /* KVM_REQ_TRIPLE_FAULT: the next KVM_RUN exits SHUTDOWN */
        c->shutdown = true;
        break;
    case MSR_MCE_CMCI:
        if (v->lapic)
            abi_lapic_local_deliver(v->lapic, 0x2f0 /* LVTCMCI */, true);
        break;
    case MSR_MCE_NONE:
        break;
    }
    return 0;
}
