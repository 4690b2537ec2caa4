/* abi/: ioctls on the /dev/kvm system fd, and KVM_CHECK_EXTENSION (system and VM fd).
 *
 * Behaviour mirrored from virt/kvm/kvm_main.c kvm_dev_ioctl() and
 * arch/x86/kvm/x86.c kvm_arch_dev_ioctl()/kvm_vm_ioctl_check_extension(). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "abi/abi_internal.h"

/* The capabilities we advertise, each with the value KVM_CHECK_EXTENSION returns.
 * Only what works is listed (README: an honest cap list). Entries whose value
 * depends on the VM/system are computed in abi_check_extension(). */
struct cap_value {
    long cap;
    long value;
};

static const struct cap_value caps_fixed[] = {
    {KVM_CAP_IRQCHIP, 1},
    {KVM_CAP_HLT, 1},
    {KVM_CAP_USER_MEMORY, 1},
    {KVM_CAP_USER_MEMORY2, 1},
    {KVM_CAP_SET_TSS_ADDR, 1},
    {KVM_CAP_SET_IDENTITY_MAP_ADDR, 1},
    {KVM_CAP_EXT_CPUID, 1},
    {KVM_CAP_EXT_EMUL_CPUID, 1},
    {KVM_CAP_NR_MEMSLOTS, ABI_USER_MEM_SLOTS},
    {KVM_CAP_MAX_VCPUS, ABI_MAX_VCPUS},
    {KVM_CAP_MAX_VCPU_ID, ABI_MAX_VCPU_ID},
    {KVM_CAP_MP_STATE, 1},
    {KVM_CAP_SYNC_MMU, 1},
    {KVM_CAP_DESTROY_MEMORY_REGION_WORKS, 1},
    {KVM_CAP_JOIN_MEMORY_REGIONS_WORKS, 1},
    {KVM_CAP_READONLY_MEM, 1},
    {KVM_CAP_IMMEDIATE_EXIT, 1},
    {KVM_CAP_GET_TSC_KHZ, 1},
    /* the guest TSC rate is settable per vCPU and per VM (abi/vcpu_tsc.c; x86.c answers
     * kvm_caps.has_tsc_control for both) */
    {KVM_CAP_TSC_CONTROL, 1},
    /* x86.c: tdp_enabled; softkvm's guest memory is always mapped (abi/vcpu_prefault.c) */
    {KVM_CAP_PRE_FAULT_MEMORY, 1},
    {KVM_CAP_VM_TSC_CONTROL, 1},
    {KVM_CAP_SYNC_REGS, KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS},
    {KVM_CAP_VCPU_EVENTS, 1},
    /* SMM (emu/smm.c): x86.c KVM_CAP_X86_SMM; two memslot address spaces, the second for
     * SMM (kvm_main.c KVM_CAP_MULTI_ADDRESS_SPACE: kvm_arch_nr_memslot_as_ids = 2) */
    {KVM_CAP_X86_SMM, 1},
    {KVM_CAP_MULTI_ADDRESS_SPACE, 2},
    {KVM_CAP_DEBUGREGS, 1},
    {KVM_CAP_XSAVE, 1},
    {KVM_CAP_XCRS, 1},
    {KVM_CAP_SET_GUEST_DEBUG, 1},
    {KVM_CAP_EXCEPTION_PAYLOAD, 1},
    {KVM_CAP_X86_TRIPLE_FAULT_EVENT, 1},
    {KVM_CAP_X86_USER_SPACE_MSR, 1},
    {KVM_CAP_X86_MSR_FILTER, 1},
    /* vPMU (msr/pmu.c): the event filter (also masked events) and KVM_PMU_CAP_DISABLE */
    {KVM_CAP_PMU_EVENT_FILTER, 1},
    {KVM_CAP_PMU_EVENT_MASKED_EVENTS, 1},
    {KVM_CAP_PMU_CAPABILITY, KVM_PMU_CAP_DISABLE},
    {KVM_CAP_MSR_PLATFORM_INFO, 1},
    {KVM_CAP_GET_MSR_FEATURES, 1},
    {KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 1},
    /* Hyper-V (abi/hyperv*.c). Not offered: KVM_CAP_HYPERV_EVENTFD (no KVM_HYPERV_EVENTFD),
     * KVM_CAP_HYPERV_SYNIC/SYNIC2 (SynIC registers exist, but no synthetic timer fires and
     * there are no HV_SINT routes), KVM_CAP_HYPERV_DIRECT_TLBFLUSH and
     * KVM_CAP_HYPERV_ENLIGHTENED_VMCS (nesting). */
    {KVM_CAP_HYPERV, 1},
    {KVM_CAP_HYPERV_VAPIC, 1},
    {KVM_CAP_HYPERV_SPIN, 1},
    {KVM_CAP_HYPERV_TIME, 1},
    {KVM_CAP_HYPERV_VP_INDEX, 1},
    {KVM_CAP_HYPERV_TLBFLUSH, 1},
    {KVM_CAP_HYPERV_SEND_IPI, 1},
    {KVM_CAP_HYPERV_CPUID, 1},
    {KVM_CAP_HYPERV_ENFORCE_CPUID, 1},
    {KVM_CAP_SYS_HYPERV_CPUID, 1},
    {KVM_CAP_DISABLE_QUIRKS, 1},
    {KVM_CAP_DISABLE_QUIRKS2, ABI_SUPPORTED_QUIRKS},
    {KVM_CAP_EXIT_ON_EMULATION_FAILURE, 1},
    /* SW_PROTECTED_VM: private memory from guest_memfd (abi/memattr.c) */
    {KVM_CAP_VM_TYPES, 1 << KVM_X86_DEFAULT_VM | 1 << KVM_X86_SW_PROTECTED_VM},
    {KVM_CAP_MEMORY_FAULT_INFO, 1}, /* KVM_EXIT_MEMORY_FAULT */
    {KVM_CAP_EXIT_HYPERCALL, 1 << KVM_HC_MAP_GPA_RANGE}, /* KVM_EXIT_HYPERCALL_VALID_MASK */
    {KVM_CAP_X86_DISABLE_EXITS, /* MWAIT: kvm_can_mwait_in_guest() (see vm_ioctl.c) */
     KVM_X86_DISABLE_EXITS_HLT | KVM_X86_DISABLE_EXITS_PAUSE | KVM_X86_DISABLE_EXITS_CSTATE |
         KVM_X86_DISABLE_EXITS_MWAIT},
    {KVM_CAP_SET_BOOT_CPU_ID, 1},
    {KVM_CAP_NR_VCPUS, 2},
    {KVM_CAP_IOEVENTFD, 1},
    {KVM_CAP_COALESCED_MMIO, ABI_COALESCED_MMIO_PAGE_OFFSET},
    {KVM_CAP_COALESCED_PIO, 1},
    /* in-kernel i8254 (abi/pit.c) */
    {KVM_CAP_PIT, 1},
    {KVM_CAP_PIT2, 1},
    {KVM_CAP_PIT_STATE2, 1},
    {KVM_CAP_REINJECT_CONTROL, 1},
    {KVM_CAP_ADJUST_CLOCK, KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC},
    {KVM_CAP_X86_APIC_BUS_CYCLES_NS, 1}, /* APIC_BUS_CYCLE_NS_DEFAULT */
    {KVM_CAP_IOEVENTFD_ANY_LENGTH, 1},
    {KVM_CAP_IOEVENTFD_NO_LENGTH, 1},
    {KVM_CAP_IRQ_ROUTING, 4096},   /* KVM_MAX_IRQ_ROUTES: KVM_SET_GSI_ROUTING */
    {KVM_CAP_SIGNAL_MSI, 1},       /* KVM_SIGNAL_MSI */
    {KVM_CAP_IRQ_INJECT_STATUS, 1}, /* KVM_IRQ_LINE_STATUS */
    {KVM_CAP_SREGS2, 1},
    {KVM_CAP_SYS_ATTRIBUTES, 1},   /* KVM_GET/HAS_DEVICE_ATTR on /dev/kvm */
    {KVM_CAP_VCPU_ATTRIBUTES, 1},  /* ... on vCPU fds: KVM_VCPU_TSC_CTRL (abi/vcpu_attr.c) */
    {KVM_CAP_CHECK_EXTENSION_VM, 1},
    {KVM_CAP_ENABLE_CAP_VM, 1},
    {KVM_CAP_ENABLE_CAP, 1},
    {KVM_CAP_USER_NMI, 1},         /* KVM_NMI */
    {KVM_CAP_TSC_DEADLINE_TIMER, 1},
    {KVM_CAP_INTERNAL_ERROR_DATA, 1},
    {KVM_CAP_BINARY_STATS_FD, 1},  /* KVM_GET_STATS_FD */
    {KVM_CAP_SET_GUEST_DEBUG2,
     KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_SW_BP |
         KVM_GUESTDBG_USE_HW_BP | KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP |
         KVM_GUESTDBG_BLOCKIRQ},
    {KVM_CAP_MCE, 32},             /* KVM_MAX_MCE_BANKS: KVM_X86_SETUP_MCE / SET_MCE */
    {KVM_CAP_VAPIC, 1},            /* KVM_SET_VAPIC_ADDR, KVM_TPR_ACCESS_REPORTING */
    {KVM_CAP_KVMCLOCK_CTRL, 1},
    {KVM_CAP_IRQFD, 1},
    {KVM_CAP_IRQFD_RESAMPLE, 1},
    {KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, ABI_DIRTY_LOG_MANUAL_CAPS},
};

long abi_check_extension(struct abi_system *s, struct abi_vm *vm, long cap)
{
    (void)s;
    (void)vm;
    if (cap == KVM_CAP_MAX_VCPU_ID && vm && vm->max_vcpu_ids)
        return vm->max_vcpu_ids;
    if (cap == KVM_CAP_XSAVE2)
        return 4096; /* KVM: max(sizeof(struct kvm_xsave), xstate size of guest features) */
    if (cap == KVM_CAP_NESTED_STATE) { /* get_state(NULL): the largest state (abi/vcpu_nested.c) */
        enum abi_vendor ven = vm ? vm->sys->vendor : s ? s->vendor : abi_vendor_current();
        return abi_nested_state_max_size(ven);
    }
    /* x86.c: allow_smaller_maxphyaddr; kvm_intel's is set (abi/module_params.c), svm.c
     * has !npt_enabled, and NPT is on */
    if (cap == KVM_CAP_SMALLER_MAXPHYADDR) {
        enum abi_vendor ven = vm ? vm->sys->vendor : s ? s->vendor : abi_vendor_current();
        return ven == ABI_VENDOR_INTEL;
    }
    if (cap == KVM_CAP_XEN_HVM)
        return abi_xen_caps();
    /* kvm_main.c: !kvm || kvm_arch_has_private_mem(kvm) */
    if (cap == KVM_CAP_GUEST_MEMFD)
        return !vm || vm->has_private_mem;
    if (cap == KVM_CAP_MEMORY_ATTRIBUTES)
        return (long)abi_vm_supported_mem_attributes(vm);
    for (size_t i = 0; i < sizeof caps_fixed / sizeof caps_fixed[0]; i++)
        if (caps_fixed[i].cap == cap)
            return caps_fixed[i].value;
    return 0;
}

static long sys_create_vm(struct abi_process *p, struct abi_system *s, unsigned long type)
{
    /* x86 kvm_arch_init_vm: only advertised VM types (6.12 KVM_CAP_VM_TYPES). */
    if (type != KVM_X86_DEFAULT_VM && type != KVM_X86_SW_PROTECTED_VM)
        return -EINVAL;
    struct abi_vm *vm = calloc(1, sizeof *vm);
    if (!vm)
        return -ENOMEM;
    vm->has_private_mem = type == KVM_X86_SW_PROTECTED_VM;
    vm->as[0].slots = calloc(ABI_USER_MEM_SLOTS, sizeof *vm->as[0].slots);
    if (!vm->as[0].slots) {
        free(vm);
        return -ENOMEM;
    }
    int fd = abi_memfd("kvm-vm", 0, O_CLOEXEC);
    if (fd < 0) {
        free(vm->as[0].slots);
        free(vm);
        return fd;
    }
    vm->obj.kind = ABI_VM;
    atomic_init(&vm->obj.refs, 1);
    vm->obj.memfd = fd;
    pthread_mutex_init(&vm->lock, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* a pending memslot update must not be starved by vCPUs re-entering emu_run */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&vm->mem_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    atomic_fetch_add(&s->obj.refs, 1);
    vm->sys = s;
    vm->hv = abi_hv_vm_create();
    vm->xen = abi_xen_vm_create();
    int r = vm->hv && vm->xen ? abi_msr_vm_init(vm) : -ENOMEM;
    if (r >= 0)
        r = abi_coalesced_init(vm);
    if (r >= 0)
        r = abi_obj_install(p, &vm->obj, fd);
    if (r >= 0)
        abi_report("KVM_CREATE_VM served, vendor %s", s->vendor == ABI_VENDOR_AMD ? "amd" : "intel");
    if (r < 0) {
        close(fd);
        abi_obj_put(&vm->obj);
    }
    return r;
}

static long sys_get_cpuid(struct abi_system *s, unsigned long arg, bool emulated)
{
    struct kvm_cpuid2 hdr;
    if (abi_copy_from_user(&hdr, (void *)arg, sizeof hdr))
        return -EFAULT;
    if (hdr.nent < 1)
        return -E2BIG;
    if (hdr.nent > ABI_MAX_CPUID_ENTRIES)
        hdr.nent = ABI_MAX_CPUID_ENTRIES;
    struct kvm_cpuid_entry2 *e = calloc(ABI_MAX_CPUID_ENTRIES, sizeof *e);
    if (!e)
        return -ENOMEM;
    if (emulated) {
        /* cpuid.c sanity_check_entries: the caller's padding must be zero (and readable) */
        bool bad = abi_copy_from_user(e, (char *)arg + sizeof hdr, hdr.nent * sizeof *e) != 0;
        for (unsigned i = 0; i < hdr.nent && !bad; i++)
            bad = e[i].padding[0] || e[i].padding[1] || e[i].padding[2];
        if (bad) {
            free(e);
            return -EINVAL;
        }
        memset(e, 0, ABI_MAX_CPUID_ENTRIES * sizeof *e);
    }
    unsigned n = emulated ? abi_emulated_cpuid(e, ABI_MAX_CPUID_ENTRIES)
                          : abi_supported_cpuid(s->vendor, e, ABI_MAX_CPUID_ENTRIES);
    long r = 0;
    if (n > hdr.nent) {
        r = -E2BIG; /* KVM leaves the caller's nent alone in this case */
    } else {
        hdr.nent = n;
        if (abi_copy_to_user((void *)arg, &hdr, sizeof hdr) ||
            abi_copy_to_user((char *)arg + sizeof hdr, e, n * sizeof *e))
            r = -EFAULT;
    }
    free(e);
    return r;
}

/* KVM_GET_DEVICE_ATTR on /dev/kvm: group KVM_X86_GRP_CPU, attr KVM_X86_XCOMP_GUEST_SUPP
 * returns the XSAVE features a guest may enable (x86.c kvm_x86_dev_get_attr). */
static long sys_get_device_attr(unsigned long arg)
{
    struct kvm_device_attr a;
    if (abi_copy_from_user(&a, (void *)arg, sizeof a))
        return -EFAULT;
    if (a.group != 0 /* KVM_X86_GRP_CPU */)
        return -ENXIO;
    if (a.attr != KVM_X86_XCOMP_GUEST_SUPP)
        return -ENXIO;
    uint64_t v = abi_supported_xcr0();
    if (abi_copy_to_user((void *)(uintptr_t)a.addr, &v, sizeof v))
        return -EFAULT;
    return 0;
}

static long sys_has_device_attr(unsigned long arg)
{
    struct kvm_device_attr a;
    if (abi_copy_from_user(&a, (void *)arg, sizeof a))
        return -EFAULT;
    return (a.group == 0 && a.attr == KVM_X86_XCOMP_GUEST_SUPP) ? 0 : -ENXIO;
}

long abi_system_ioctl(struct abi_process *p, struct abi_system *s, unsigned long req,
                      unsigned long arg)
{
    switch (req) {
    case KVM_GET_API_VERSION:
        return arg ? -EINVAL : KVM_API_VERSION;
    case KVM_CREATE_VM:
        return sys_create_vm(p, s, arg);
    case KVM_CHECK_EXTENSION:
        return abi_check_extension(s, NULL, (long)arg);
    case KVM_GET_VCPU_MMAP_SIZE:
        return arg ? -EINVAL : (long)(ABI_VCPU_MMAP_PAGES * ABI_PAGE_SIZE);
    case KVM_GET_SUPPORTED_CPUID:
        return sys_get_cpuid(s, arg, false);
    case KVM_GET_EMULATED_CPUID:
        return sys_get_cpuid(s, arg, true);
    case KVM_GET_SUPPORTED_HV_CPUID: /* KVM_CAP_SYS_HYPERV_CPUID */
        return abi_hv_get_supported_cpuid(NULL, arg);
    case KVM_GET_MSR_INDEX_LIST:
        return abi_msr_index_list(arg, false);
    case KVM_GET_MSR_FEATURE_INDEX_LIST:
        return abi_msr_index_list(arg, true);
    case KVM_GET_MSRS:
        return abi_msr_feature_get(s, arg);
    case KVM_GET_DEVICE_ATTR:
        return sys_get_device_attr(arg);
    case KVM_X86_GET_MCE_CAP_SUPPORTED: {
        uint64_t caps = msr_mce_cap_supported(s->vendor == ABI_VENDOR_AMD ? MSR_VENDOR_AMD
                                                                          : MSR_VENDOR_INTEL);
        return abi_copy_to_user((void *)arg, &caps, sizeof caps) ? -EFAULT : 0;
    }
    case KVM_HAS_DEVICE_ATTR:
        return sys_has_device_attr(arg);
    default:
        /* kvm_dev_ioctl: unknown system ioctls are -EINVAL (kvm_arch_dev_ioctl). */
        return -EINVAL;
    }
}
