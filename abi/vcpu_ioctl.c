/* abi/: ioctls on a vCPU fd (virt/kvm/kvm_main.c kvm_vcpu_ioctl + x86.c
 * kvm_arch_vcpu_ioctl, Linux 6.12). Every vCPU ioctl holds the vCPU's lock, like
 * KVM's vcpu->mutex; unknown ones are -EINVAL (x86 kvm_arch_vcpu_ioctl default,
 * verified on this machine's /dev/kvm). */
#include <errno.h>
#include <string.h>

#include "abi/abi_internal.h"

#define GUESTDBG_VALID                                                                     \
    (KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_SW_BP |             \
     KVM_GUESTDBG_USE_HW_BP | KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP |           \
     KVM_GUESTDBG_BLOCKIRQ)

static long set_guest_debug(struct abi_vcpu *v, unsigned long arg)
{
    struct kvm_guest_debug d;
    if (abi_copy_from_user(&d, (void *)arg, sizeof d))
        return -EFAULT;
    /* x86.c kvm_arch_vcpu_ioctl_set_guest_debug: unknown control bits are not refused
     * (GUESTDBG_VALID is only what KVM_CAP_SET_GUEST_DEBUG2 reports); INJECT_DB or else
     * INJECT_BP queue the exception right away, EBUSY while one is pending */
    if (d.control & (KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP)) {
        const struct emu_events *ev = &emu_cpu(v->emu)->ev;
        if (ev->exc_pending || ev->triple_fault_pending) /* kvm_is_exception_pending */
            return -EBUSY;
        emu_queue_exception(v->emu, (d.control & KVM_GUESTDBG_INJECT_DB) ? 1 : 3, false, 0);
    }
    if (!(d.control & KVM_GUESTDBG_ENABLE))
        d.control = 0; /* vcpu->guest_debug = 0 without ENABLE */
    v->guest_debug = d.control;
    emu_set_guest_debug(v->emu,
                        d.control & GUESTDBG_VALID &
                            ~(uint32_t)(KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP),
                        (const uint64_t *)d.arch.debugreg);
    return 0;
}

static long vcpu_enable_cap(struct abi_vcpu *v, unsigned long arg)
{
    struct kvm_enable_cap c;
    if (abi_copy_from_user(&c, (void *)arg, sizeof c))
        return -EFAULT;
    if (c.flags)
        return -EINVAL;
    switch (c.cap) {
    case KVM_CAP_ENFORCE_PV_FEATURE_CPUID:
        return msr_vcpu_enable_pv_enforcement(v->msr, c.args[0]);
    default: {
        long r = abi_hv_enable_cap(v, &c);
        return r == -ENOTTY ? -EINVAL : r;
    }
    }
}

static long set_signal_mask(struct abi_vcpu *v, unsigned long arg)
{
    if (!arg) {
        v->sigmask_set = false;
        return 0;
    }
    struct kvm_signal_mask m;
    if (abi_copy_from_user(&m, (void *)arg, sizeof m))
        return -EFAULT;
    if (m.len != sizeof v->sigmask) /* KVM: len must be sizeof(kernel sigset_t) = 8 */
        return -EINVAL;
    if (abi_copy_from_user(&v->sigmask, (char *)arg + sizeof m, sizeof v->sigmask))
        return -EFAULT;
    v->sigmask_set = true;
    return 0;
}

long abi_vcpu_ioctl(struct abi_process *p, struct abi_vcpu *v, unsigned long req,
                    unsigned long arg)
{
    (void)p;
    long r;
    pthread_mutex_lock(&v->lock);
    switch (req) {
    case KVM_RUN:
        r = arg ? -EINVAL : abi_vcpu_run(v);
        break;
    case KVM_GET_MSRS:
        r = abi_vcpu_get_msrs(v, arg);
        break;
    case KVM_SET_MSRS:
        r = abi_vcpu_set_msrs(v, arg);
        break;
    case KVM_SET_GUEST_DEBUG:
        r = set_guest_debug(v, arg);
        break;
    case KVM_ENABLE_CAP:
        r = vcpu_enable_cap(v, arg);
        break;
    case KVM_SET_SIGNAL_MASK:
        r = set_signal_mask(v, arg);
        break;
    case KVM_HAS_DEVICE_ATTR:
    case KVM_GET_DEVICE_ATTR:
    case KVM_SET_DEVICE_ATTR:
        r = abi_vcpu_device_attr(v, req, arg);
        break;
    case KVM_GET_SUPPORTED_HV_CPUID:
        r = abi_hv_get_supported_cpuid(v, arg);
        break;
    case KVM_PRE_FAULT_MEMORY:
        r = abi_vcpu_pre_fault_memory(v, arg);
        break;
    case KVM_SET_TSC_KHZ:
        r = abi_vcpu_set_tsc_khz(v, arg);
        break;
    case KVM_GET_TSC_KHZ:
        r = abi_vcpu_get_tsc_khz(v); /* virtual_tsc_khz */
        break;
    case KVM_GET_STATS_FD:
        r = abi_stats_fd(v->vm, v);
        break;
    case KVM_INTERRUPT: {
        /* without an in-kernel irqchip: queue an external interrupt (kvm_vcpu_ioctl_interrupt) */
        struct kvm_interrupt irq;
        if (abi_copy_from_user(&irq, (void *)arg, sizeof irq)) {
            r = -EFAULT;
            break;
        }
        if (irq.irq >= 256 /* KVM_NR_INTERRUPTS */ ) {
            r = -EINVAL;
            break;
        }
        if (v->lapic) {
            r = -ENXIO;
            break;
        }
        /* without an irqchip KVM queues it over any queued one (kvm_queue_interrupt);
         * EEXIST is only for a split irqchip's pending ExtINT */
        struct emu_events *ev = &emu_cpu(v->emu)->ev;
        ev->irq_injected = true;
        ev->irq_vector = (uint8_t)irq.irq;
        ev->irq_soft = false;
        r = 0;
        break;
    }
    case KVM_X86_SETUP_MCE:
        r = abi_vcpu_setup_mce(v, arg);
        break;
    case KVM_X86_SET_MCE:
        r = abi_vcpu_set_mce(v, arg);
        break;
    case KVM_SET_VAPIC_ADDR:
        r = abi_vcpu_set_vapic_addr(v, arg);
        break;
    case KVM_TPR_ACCESS_REPORTING:
        r = abi_vcpu_tpr_access_reporting(v, arg);
        break;
    case KVM_XEN_VCPU_GET_ATTR:
        r = abi_xen_vcpu_attr(v, arg, false);
        break;
    case KVM_XEN_VCPU_SET_ATTR:
        r = abi_xen_vcpu_attr(v, arg, true);
        break;
    case KVM_KVMCLOCK_CTRL:
        r = msr_vcpu_kvmclock_paused(v->msr);
        break;
    case KVM_NMI:
        emu_cpu(v->emu)->ev.nmi_pending = true;
        r = 0;
        break;
    case KVM_SMI:
        /* kvm_inject_smi: KVM_REQ_SMI, always 0; process_smi makes it pending (x86.c) */
        emu_cpu(v->emu)->ev.smi_pending = true;
        r = 0;
        break;
    default: {
        bool handled;
        r = abi_vcpu_state_ioctl(v, req, arg, &handled);
        if (!handled)
            r = -EINVAL;
        break;
    }
    }
    pthread_mutex_unlock(&v->lock);
    return r;
}
