/* abi/: KVM_HAS/GET/SET_DEVICE_ATTR on a vCPU fd (6.12 x86.c kvm_vcpu_ioctl_device_attr,
 * kvm_arch_tsc_has/get/set_attr). x86 has one group, KVM_VCPU_TSC_CTRL, with one attribute,
 * KVM_VCPU_TSC_OFFSET: the vCPU's L1 TSC offset against the host TSC. Anything else is
 * ENXIO; the struct is copied in first (EFAULT), the value pointer at use. */
#include <errno.h>
#include <stdint.h>

#include "abi/abi_internal.h"

long abi_vcpu_device_attr(struct abi_vcpu *v, unsigned long req, unsigned long arg)
{
    struct kvm_device_attr attr;
    if (abi_copy_from_user(&attr, (void *)arg, sizeof attr))
        return -EFAULT;
    if (attr.group != KVM_VCPU_TSC_CTRL || attr.attr != KVM_VCPU_TSC_OFFSET)
        return -ENXIO;
    void *uaddr = (void *)(uintptr_t)attr.addr;
    uint64_t offset;
    switch (req) {
    case KVM_HAS_DEVICE_ATTR:
        return 0;
    case KVM_GET_DEVICE_ATTR:
        offset = msr_tsc_get_offset(v->msr);
        return abi_copy_to_user(uaddr, &offset, sizeof offset) ? -EFAULT : 0;
    default: /* KVM_SET_DEVICE_ATTR */
        if (abi_copy_from_user(&offset, uaddr, sizeof offset))
            return -EFAULT;
        msr_tsc_set_offset(v->msr, offset);
        return 0;
    }
}
