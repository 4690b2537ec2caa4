/* abi/: ioctls on a VM fd. Behaviour mirrors virt/kvm/kvm_main.c kvm_vm_ioctl() and
 * arch/x86/kvm/x86.c kvm_arch_vm_ioctl() / kvm_vm_ioctl_enable_cap() (Linux 6.12);
 * unknown ioctls are -ENOTTY as there. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "abi/abi_internal.h"

#define KVM_X2APIC_API_VALID (KVM_X2APIC_API_USE_32BIT_IDS | KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK)

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The host TSC (msr/'s counter, unscaled), and L1's TSC for the LAPIC's TSC-deadline timer
 * (lapic.c uses kvm_read_l1_tsc). */
static uint64_t tsc_counter(void *ctx)
{
    (void)ctx; /* the host TSC: emu and msr/ scale it and add the offsets (emu/cpu.h) */
    return __builtin_ia32_rdtsc();
}

static uint64_t guest_tsc(void *ctx)
{
    return emu_read_l1_tsc(ctx);
}

/* msr/ reaches the in-kernel LAPIC through these (x2APIC MSRs, APIC_BASE, TSC deadline). */
static int lapic_rdmsr(void *ctx, uint32_t index, uint64_t *value)
{
    return abi_lapic_rdmsr(ctx, index, value);
}

static int lapic_wrmsr(void *ctx, uint32_t index, uint64_t value)
{
    return abi_lapic_wrmsr(ctx, index, value);
}

static void lapic_base_changed(void *ctx, uint64_t old_value, uint64_t new_value, bool host)
{
    (void)old_value;
    /* msr/ validated the value already; the LAPIC switches mode/address */
    abi_lapic_set_base(ctx, new_value, host);
}

static uint64_t lapic_deadline_get(void *ctx)
{
    return abi_lapic_get_tsc_deadline(ctx);
}

static void lapic_deadline_set(void *ctx, uint64_t value)
{
    abi_lapic_set_tsc_deadline(ctx, value);
}

/* the vPMU's view of the interpreter (msr/pmu.c counts with emu's PMU support) */
static uint64_t pmu_retired(void *ctx) { return emu_pmu_retired(ctx); }
static const struct emu_pmu_counts *pmu_counts(void *ctx) { return emu_pmu_counts(ctx); }
static void pmu_precise(void *ctx, bool on, bool watch) { emu_pmu_set_precise(ctx, on, watch); }
static void pmu_stop(void *ctx, uint64_t icount) { emu_pmu_set_stop(ctx, icount); }
static bool pmu_request(void *ctx) { return emu_pmu_request(ctx); }

/* a counter overflowed with its PMI enabled: LVTPC (kvm_pmu_deliver_pmi); Intel-compatible
 * guests get LVTPC masked by the delivery (kvm_apic_local_deliver) */
static void lapic_pmi(void *ctx, bool intel_compatible)
{
    abi_lapic_local_deliver(ctx, 0x340 /* APIC_LVTPC */, intel_compatible);
}

static long vm_create_vcpu(struct abi_process *p, struct abi_vm *vm, unsigned long id)
{
    if (id >= ABI_MAX_VCPU_ID || (vm->max_vcpu_ids && id >= vm->max_vcpu_ids))
        return -EINVAL;
    pthread_mutex_lock(&vm->lock);
    long r = 0;
    if (vm->nvcpus >= ABI_MAX_VCPUS) {
        r = -EINVAL;
        goto unlock;
    }
    for (unsigned i = 0; i < vm->nvcpus; i++)
        if (vm->vcpus[i]->id == id) {
            r = -EEXIST;
            goto unlock;
        }
    struct abi_vcpu *v = calloc(1, sizeof *v);
    if (!v) {
        r = -ENOMEM;
        goto unlock;
    }
    v->obj.kind = ABI_VCPU;
    atomic_init(&v->obj.refs, 1);
    pthread_mutex_init(&v->lock, NULL);
    v->id = (uint32_t)id;
    v->vm = vm;
    atomic_fetch_add(&vm->obj.refs, 1);
    v->run_size = ABI_VCPU_MMAP_PAGES * ABI_PAGE_SIZE;
    int fd = abi_memfd("kvm-vcpu", v->run_size, O_CLOEXEC);
    if (fd < 0) {
        r = fd;
        goto fail;
    }
    v->obj.memfd = fd;
    v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (v->run == MAP_FAILED) {
        v->run = NULL;
        r = -ENOMEM;
        goto fail_fd;
    }
    v->emu = emu_vcpu_create(&vm->as[0].mem);
    if (!v->emu) {
        r = -ENOMEM;
        goto fail_fd;
    }
    emu_set_smm_physmem(v->emu, &vm->as[1].mem); /* memslots of address space 1 in SMM */
    struct cpu *cpu = emu_cpu(v->emu);
    cpu->owner = v;
    emu_reset(v->emu); /* before msr/ sets its reset values and the TSC offset */
    abi_vcpu_init_tsc_rate(v);
    v->msr = msr_vcpu_create(&vm->msr, cpu);
    if (!v->msr) {
        r = -ENOMEM;
        goto fail_fd;
    }
    /* one clock for RDTSC (emu), TSC MSRs (msr/) and TSC-deadline (LAPIC); the guest
     * TSC starts at 0 (KVM: kvm_synchronize_tsc at vCPU creation) */
    msr_vcpu_set_tsc_source(v->msr, tsc_counter, v->emu, 0 /* keep the calibrated rate */);
    v->hv = abi_hv_vcpu_create(v, vm->nvcpus);
    if (!v->hv) {
        r = -ENOMEM;
        goto fail_fd;
    }
    v->msr->hv = (struct msr_hv_ops){.get = abi_hv_msr_get, .set = abi_hv_msr_set, .ctx = v};
    abi_hv_set_emu_ops(v);
    v->xen = abi_xen_vcpu_create(vm->nvcpus);
    if (!v->xen) {
        r = -ENOMEM;
        goto fail_fd;
    }
    v->msr->xen = (struct msr_xen_ops){.write_hypercall_page = abi_xen_write_hypercall_page,
                                       .ctx = v};
    v->msr_ops = msr_emu_ops;
    v->msr_ops.ctx = v->msr;
    emu_set_msr_ops(v->emu, &v->msr_ops);
    struct msr_pmu_source src = {.retired = pmu_retired, .counts = pmu_counts,
                                 .set_precise = pmu_precise, .set_stop = pmu_stop,
                                 .request = pmu_request, .ctx = v->emu};
    msr_vcpu_set_pmu_source(v->msr, &src);
    emu_set_pmu_ops(v->emu, &(struct emu_pmu_ops){.event = msr_pmu_event, .ctx = v->msr});
    if (vm->irqchip_state) {
        v->lapic = abi_lapic_create(vm->irqchip_state, v->emu, v->id, v->id == vm->boot_cpu_id);
        if (!v->lapic) {
            r = -ENOMEM;
            goto fail_fd;
        }
        abi_lapic_set_tsc_reader(v->lapic, guest_tsc, v->emu);
        abi_lapic_set_extint_source(v->lapic, abi_xen_upcall_extint, v); /* Xen upcall */
        v->msr->apic = (struct msr_apic_ops){.read = lapic_rdmsr,
                                             .write = lapic_wrmsr,
                                             .base_changed = lapic_base_changed,
                                             .tscdeadline_get = lapic_deadline_get,
                                             .tscdeadline_set = lapic_deadline_set,
                                             .pmi = lapic_pmi,
                                             .ctx = v->lapic};
    }
    abi_vcpu_init_state(v);
    r = abi_obj_install(p, &v->obj, fd);
    if (r < 0)
        goto fail_fd;
    /* vcpus[] is a weak list: the vCPU leaves it when its last fd is closed */
    vm->vcpus[vm->nvcpus++] = v;
    vm->created_vcpu = true;
    abi_report("KVM_CREATE_VCPU %lu served", id);
    goto unlock;
fail_fd:
    close(fd);
fail:
    abi_obj_put(&v->obj);
unlock:
    pthread_mutex_unlock(&vm->lock);
    return r;
}

static long vm_set_region(struct abi_process *p, struct abi_vm *vm, unsigned long arg, bool v2)
{
    struct kvm_userspace_memory_region2 m;
    memset(&m, 0, sizeof m);
    if (v2) {
        if (abi_copy_from_user(&m, (void *)arg, sizeof m))
            return -EFAULT;
    } else {
        struct kvm_userspace_memory_region m1;
        if (abi_copy_from_user(&m1, (void *)arg, sizeof m1))
            return -EFAULT;
        /* v1 cannot carry guest_memfd: kvm_vm_ioctl rejects the flag (6.12) */
        if (m1.flags & KVM_MEM_GUEST_MEMFD)
            return -EINVAL;
        m.slot = m1.slot;
        m.flags = m1.flags;
        m.guest_phys_addr = m1.guest_phys_addr;
        m.memory_size = m1.memory_size;
        m.userspace_addr = m1.userspace_addr;
    }
    return abi_vm_set_memory_region(p, vm, &m, v2);
}

static long vm_enable_cap(struct abi_vm *vm, unsigned long arg)
{
    struct kvm_enable_cap c;
    if (abi_copy_from_user(&c, (void *)arg, sizeof c))
        return -EFAULT;
    if (c.flags)
        return -EINVAL;
    long r = -EINVAL;
    pthread_mutex_lock(&vm->lock);
    switch (c.cap) {
    case KVM_CAP_DISABLE_QUIRKS2: /* 6.12 x86.c 6079-6090: v2 refuses unknown bits... */
        if (c.args[0] & ~(uint64_t)ABI_SUPPORTED_QUIRKS)
            break;
        /* fallthrough */
    case KVM_CAP_DISABLE_QUIRKS: /* ...v1 ignores them; both accumulate */
        /* vCPU threads read the quirks at each entry (vcpu_run.c set_kvm_policy) */
        __atomic_store_n(&vm->disabled_quirks, vm->disabled_quirks | (c.args[0] & ABI_SUPPORTED_QUIRKS),
                         __ATOMIC_RELAXED);
        vm->msr.no_stuff_feature_msrs = vm->disabled_quirks & KVM_X86_QUIRK_STUFF_FEATURE_MSRS;
        vm->msr.misc_enable_mwait_cpuid = vm->disabled_quirks & KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT;
        r = 0;
        break;
    case KVM_CAP_X86_USER_SPACE_MSR:
        r = msr_vm_enable_user_space_msr(&vm->msr, c.args[0]);
        break;
    case KVM_CAP_EXIT_HYPERCALL: /* x86.c: only KVM_EXIT_HYPERCALL_VALID_MASK bits */
        if (c.args[0] & ~(uint64_t)(1u << KVM_HC_MAP_GPA_RANGE))
            break;
        __atomic_store_n(&vm->hypercall_exit_enabled, c.args[0], __ATOMIC_RELAXED);
        r = 0;
        break;
    case KVM_CAP_MSR_PLATFORM_INFO:
        r = msr_vm_enable_platform_info(&vm->msr, c.args[0]);
        break;
    case KVM_CAP_EXCEPTION_PAYLOAD:
        vm->exception_payload = c.args[0] != 0;
        r = 0;
        break;
    case KVM_CAP_X86_TRIPLE_FAULT_EVENT: /* x86.c: any argument, no validation */
        vm->triple_fault_event = c.args[0] != 0;
        r = 0;
        break;
    case KVM_CAP_EXIT_ON_EMULATION_FAILURE: /* x86.c: only 0 or 1 */
        if (c.args[0] & ~1ull)
            break;
        vm->exit_on_emulation_failure = c.args[0] != 0;
        r = 0;
        break;
    case KVM_CAP_HALT_POLL: /* kvm_main.c: any u32; host-side polling, nothing to do here */
        if (c.args[0] == (uint32_t)c.args[0])
            r = 0;
        break;
    case KVM_CAP_X86_BUS_LOCK_EXIT:
        /* x86.c: OFF or EXIT, not both; accepted (without effect) even when bus-lock
         * exits cannot be offered */
        if (!(c.args[0] & ~(uint64_t)(KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT)) &&
            c.args[0] != (KVM_BUS_LOCK_DETECTION_OFF | KVM_BUS_LOCK_DETECTION_EXIT))
            r = 0;
        break;
    case KVM_CAP_X86_DISABLE_EXITS:
        /* 6.12 x86.c: unknown bits EINVAL; the others only ever switch exits off.
         * MWAIT: kvm_can_mwait_in_guest() holds for softkvm's CPU model (MONITOR/MWAIT and
         * ARAT, no MONITOR erratum), so MONITOR/MWAIT then run "natively" (emu/insn_system.c) */
        if (c.args[0] & ~(uint64_t)KVM_X86_DISABLE_VALID_EXITS)
            break;
        vm->disabled_exits |= c.args[0];
        if (c.args[0] & KVM_X86_DISABLE_EXITS_MWAIT)
            __atomic_store_n(&vm->mwait_in_guest, true, __ATOMIC_RELAXED);
        r = 0;
        break;
    case KVM_CAP_MAX_VCPU_ID: /* x86.c: may be set once, not below the BSP id */
        if (c.args[0] > ABI_MAX_VCPU_ID || vm->boot_cpu_id > c.args[0])
            break;
        if (vm->max_vcpu_ids == c.args[0])
            r = 0;
        else if (!vm->max_vcpu_ids) {
            vm->max_vcpu_ids = (uint32_t)c.args[0];
            r = 0;
        }
        break;
    case KVM_CAP_X86_APIC_BUS_CYCLES_NS:
        /* x86.c: 0 or overflowing tmict_to_ns() is EINVAL, no irqchip ENXIO, vCPUs EINVAL */
        if (!c.args[0] || c.args[0] > UINT64_MAX / (0xffffffffull * 128))
            break;
        if (!vm->irqchip_state)
            r = -ENXIO;
        else if (vm->created_vcpu)
            r = -EINVAL;
        else
            r = abi_irqchip_set_bus_cycle_ns(vm->irqchip_state, c.args[0]);
        break;
    case KVM_CAP_PMU_CAPABILITY:
        /* 6.12 x86.c: only KVM_PMU_CAP_DISABLE, only before the first vCPU */
        if ((c.args[0] & ~(uint64_t)KVM_PMU_CAP_DISABLE) || vm->created_vcpu)
            r = -EINVAL;
        else {
            vm->msr.pmu_disabled = (c.args[0] & KVM_PMU_CAP_DISABLE) != 0;
            r = 0;
        }
        break;
    case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
        r = abi_vm_enable_manual_dirty_log(vm, c.args[0]);
        break;
    case KVM_CAP_X2APIC_API:
        if (c.args[0] & ~(uint64_t)KVM_X2APIC_API_VALID)
            break;
        r = vm->irqchip_state ? abi_irqchip_set_x2apic_api(vm->irqchip_state, c.args[0]) : 0;
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&vm->lock);
    return r;
}

static long vm_create_irqchip(struct abi_vm *vm)
{
    long r = 0;
    pthread_mutex_lock(&vm->lock);
    if (vm->irqchip_state)
        r = -EEXIST;
    else if (vm->created_vcpu)
        r = -EINVAL;
    else if (!(vm->irqchip_state = abi_irqchip_create()))
        r = -ENOMEM;
    else
        abi_irqchip_set_tsc_khz(vm->irqchip_state, vm->msr.tsc_khz);
    pthread_mutex_unlock(&vm->lock);
    return r;
}

static long vm_irq_line(struct abi_vm *vm, unsigned long arg, bool status)
{
    struct kvm_irq_level l;
    if (abi_copy_from_user(&l, (void *)arg, sizeof l))
        return -EFAULT;
    if (!vm->irqchip_state)
        return -ENXIO;
    int s = abi_irqchip_set_irq(vm->irqchip_state, l.irq, (int)l.level);
    if (status) {
        l.status = s;
        if (abi_copy_to_user((void *)arg, &l, sizeof l))
            return -EFAULT;
    }
    return 0;
}

/* KVM_GET_CLOCK / KVM_SET_CLOCK: the VM's kvmclock, which msr/ publishes to the guest
 * as CLOCK_BOOTTIME - msr.boot_ns_at_create (KVM: get_kvmclock / kvm_vm_ioctl_set_clock).
 * GET reports the REALTIME and HOST_TSC samples taken together with the clock. */
static long vm_clock(struct abi_vm *vm, unsigned long arg, bool set)
{
    struct kvm_clock_data d;
    if (set) {
        if (abi_copy_from_user(&d, (void *)arg, sizeof d))
            return -EFAULT;
        /* KVM_CLOCK_VALID_FLAGS: what KVM_GET_CLOCK may return, TSC_STABLE included */
        if (d.flags & ~(uint32_t)(KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC))
            return -EINVAL;
        uint64_t boot = now_ns(CLOCK_BOOTTIME);
        uint64_t clock = d.clock;
        if (d.flags & KVM_CLOCK_REALTIME) {
            /* advance by the realtime elapsed since the caller sampled it */
            uint64_t rt = now_ns(CLOCK_REALTIME);
            if (rt > d.realtime)
                clock += rt - d.realtime;
        }
        vm->msr.boot_ns_at_create = boot - clock;
        abi_hv_clock_changed(vm);
        atomic_fetch_add(&vm->clock_gen, 1); /* every vCPU refreshes its kvmclock page */
        return 0;
    }
    memset(&d, 0, sizeof d);
    d.realtime = now_ns(CLOCK_REALTIME);
    d.host_tsc = __builtin_ia32_rdtsc();
    d.clock = now_ns(CLOCK_BOOTTIME) - vm->msr.boot_ns_at_create;
    d.flags = KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;
    return abi_copy_to_user((void *)arg, &d, sizeof d) ? -EFAULT : 0;
}

static long vm_irqchip_state(struct abi_vm *vm, unsigned long arg, bool set)
{
    struct kvm_irqchip c;
    if (abi_copy_from_user(&c, (void *)arg, sizeof c))
        return -EFAULT;
    if (!vm->irqchip_state)
        return -ENXIO;
    if (set)
        return abi_irqchip_set(vm->irqchip_state, &c);
    int r = abi_irqchip_get(vm->irqchip_state, &c);
    if (r)
        return r;
    return abi_copy_to_user((void *)arg, &c, sizeof c) ? -EFAULT : 0;
}

static long vm_gsi_routing(struct abi_vm *vm, unsigned long arg)
{
    struct kvm_irq_routing hdr;
    if (abi_copy_from_user(&hdr, (void *)arg, sizeof hdr))
        return -EFAULT;
    if (hdr.nr > 4096 /* KVM_MAX_IRQ_ROUTES */ || hdr.flags)
        return -EINVAL;
    if (!vm->irqchip_state)
        return -EINVAL;
    size_t sz = sizeof hdr + hdr.nr * sizeof(struct kvm_irq_routing_entry);
    struct kvm_irq_routing *r = malloc(sz);
    if (!r)
        return -ENOMEM;
    long ret = abi_copy_from_user(r, (void *)arg, sz) ? -EFAULT : 0;
    if (!ret) {
        r->nr = hdr.nr;
        ret = abi_irqchip_set_gsi_routing(vm->irqchip_state, r);
    }
    free(r);
    return ret;
}

static long vm_signal_msi(struct abi_vm *vm, unsigned long arg)
{
    struct kvm_msi m;
    if (abi_copy_from_user(&m, (void *)arg, sizeof m))
        return -EFAULT;
    if (!vm->irqchip_state)
        return -EINVAL;
    return abi_irqchip_signal_msi(vm->irqchip_state, &m);
}

/* KVM_CREATE_PIT2 (config from user space first) and the old KVM_CREATE_PIT,
 * which always gets the speaker stub (x86.c kvm_arch_vm_ioctl). */
static long vm_create_pit(struct abi_vm *vm, unsigned long arg, bool v2)
{
    struct kvm_pit_config cfg = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (v2 && abi_copy_from_user(&cfg, (void *)arg, sizeof cfg))
        return -EFAULT;
    long r = 0;
    pthread_mutex_lock(&vm->lock);
    if (vm->pit)
        r = -EEXIST;
    else if (!vm->irqchip_state) /* KVM: !pic_in_kernel() */
        r = -ENOENT;
    else {
        struct abi_pit *pit = abi_pit_create(vm->irqchip_state, cfg.flags);
        if (pit)
            __atomic_store_n(&vm->pit, pit, __ATOMIC_RELEASE);
        else
            r = -ENOMEM;
    }
    pthread_mutex_unlock(&vm->lock);
    return r;
}

/* KVM_GET_PIT copies the argument in before checking for a PIT; KVM_GET_PIT2
 * does not (x86.c). */
static long vm_get_pit(struct abi_vm *vm, unsigned long arg, bool v2)
{
    struct abi_pit *pit = abi_vm_pit(vm);
    if (v2) {
        struct kvm_pit_state2 s;
        if (!pit)
            return -ENXIO;
        abi_pit_get_state2(pit, &s);
        return abi_copy_to_user((void *)arg, &s, sizeof s) ? -EFAULT : 0;
    }
    struct kvm_pit_state s;
    if (abi_copy_from_user(&s, (void *)arg, sizeof s))
        return -EFAULT;
    if (!pit)
        return -ENXIO;
    abi_pit_get_state(pit, &s);
    return abi_copy_to_user((void *)arg, &s, sizeof s) ? -EFAULT : 0;
}

static long vm_set_pit(struct abi_vm *vm, unsigned long arg, bool v2)
{
    union {
        struct kvm_pit_state s1;
        struct kvm_pit_state2 s2;
    } u;
    if (abi_copy_from_user(&u, (void *)arg, v2 ? sizeof u.s2 : sizeof u.s1))
        return -EFAULT;
    struct abi_pit *pit = abi_vm_pit(vm);
    if (!pit)
        return -ENXIO;
    if (v2)
        abi_pit_set_state2(pit, &u.s2);
    else
        abi_pit_set_state(pit, &u.s1);
    return 0;
}

static long vm_reinject_control(struct abi_vm *vm, unsigned long arg)
{
    struct kvm_reinject_control c;
    if (abi_copy_from_user(&c, (void *)arg, sizeof c))
        return -EFAULT;
    struct abi_pit *pit = abi_vm_pit(vm);
    if (!pit)
        return -ENXIO;
    abi_pit_set_reinject(pit, c.pit_reinject);
    return 0;
}

long abi_vm_ioctl(struct abi_process *p, struct abi_vm *vm, unsigned long req, unsigned long arg)
{
    switch (req) {
    case KVM_CREATE_GUEST_MEMFD:
        return abi_vm_create_guest_memfd(p, vm, arg);
    case KVM_SET_MEMORY_ATTRIBUTES:
        return abi_vm_set_memory_attributes(vm, arg);
    case KVM_CREATE_VCPU:
        return vm_create_vcpu(p, vm, arg);
    case KVM_SET_USER_MEMORY_REGION:
        return vm_set_region(p, vm, arg, false);
    case KVM_SET_USER_MEMORY_REGION2:
        return vm_set_region(p, vm, arg, true);
    case KVM_GET_DIRTY_LOG:
        return abi_vm_get_dirty_log(vm, arg);
    case KVM_CLEAR_DIRTY_LOG:
        return abi_vm_clear_dirty_log(vm, arg);
    case KVM_CHECK_EXTENSION:
        return abi_check_extension(vm->sys, vm, (long)arg);
    case KVM_ENABLE_CAP:
        return vm_enable_cap(vm, arg);
    case KVM_X86_SET_MSR_FILTER:
        return abi_vm_set_msr_filter(vm, arg);
    case KVM_SET_TSS_ADDR:
        /* KVM: the three TSS pages must fit below 4G */
        if (arg > (unsigned long)(uint32_t)(-3 * (int)ABI_PAGE_SIZE))
            return -EINVAL;
        vm->tss_addr = arg;
        vm->tss_addr_set = true;
        return 0;
    case KVM_SET_IDENTITY_MAP_ADDR: {
        uint64_t a;
        if (vm->created_vcpu) /* x86.c checks this before copying the address */
            return -EINVAL;
        if (abi_copy_from_user(&a, (void *)arg, sizeof a))
            return -EFAULT;
        vm->identity_map_addr = a;
        return 0;
    }
    case KVM_SET_BOOT_CPU_ID:
        if (vm->created_vcpu)
            return -EBUSY;
        if (arg > ABI_MAX_VCPU_ID || (vm->max_vcpu_ids && arg > vm->max_vcpu_ids))
            return -EINVAL;
        vm->boot_cpu_id = (uint32_t)arg;
        return 0;
    case KVM_CREATE_IRQCHIP:
        return vm_create_irqchip(vm);
    case KVM_IRQ_LINE:
        return vm_irq_line(vm, arg, false);
    case KVM_IRQ_LINE_STATUS:
        return vm_irq_line(vm, arg, true);
    case KVM_GET_IRQCHIP:
        return vm_irqchip_state(vm, arg, false);
    case KVM_SET_IRQCHIP:
        return vm_irqchip_state(vm, arg, true);
    case KVM_SET_GSI_ROUTING:
        return vm_gsi_routing(vm, arg);
    case KVM_SIGNAL_MSI:
        return vm_signal_msi(vm, arg);
    case KVM_CREATE_PIT:
        return vm_create_pit(vm, arg, false);
    case KVM_CREATE_PIT2:
        return vm_create_pit(vm, arg, true);
    case KVM_GET_PIT:
        return vm_get_pit(vm, arg, false);
    case KVM_GET_PIT2:
        return vm_get_pit(vm, arg, true);
    case KVM_SET_PIT:
        return vm_set_pit(vm, arg, false);
    case KVM_SET_PIT2:
        return vm_set_pit(vm, arg, true);
    case KVM_REINJECT_CONTROL:
        return vm_reinject_control(vm, arg);
    case KVM_SET_CLOCK:
        return vm_clock(vm, arg, true);
    case KVM_GET_CLOCK:
        return vm_clock(vm, arg, false);
    case KVM_SET_TSC_KHZ:
        return abi_vm_set_tsc_khz(vm, arg);
    case KVM_GET_TSC_KHZ:
        return abi_vm_get_tsc_khz(vm);
    case KVM_SET_NR_MMU_PAGES: /* (6.12 has no KVM_GET_NR_MMU_PAGES any more: ENOTTY) */
        return arg < 64 /* KVM_MIN_ALLOC_MMU_PAGES */ ? -EINVAL : 0;
    case KVM_GET_STATS_FD:
        return abi_stats_fd(vm, NULL);
    case KVM_IOEVENTFD:
        return abi_vm_ioeventfd(vm, arg);
    case KVM_IRQFD:
        return abi_vm_irqfd(vm, arg);
    case KVM_SET_PMU_EVENT_FILTER:
        return abi_vm_set_pmu_event_filter(vm, arg);
    case KVM_RESET_DIRTY_RINGS:
        return -EINVAL; /* kvm_vm_ioctl_reset_dirty_pages: no dirty ring enabled */
    case KVM_CREATE_DEVICE: {
        /* kvm_ioctl_create_device: no device type is registered here (KVM has VFIO) */
        struct kvm_create_device cd;
        if (abi_copy_from_user(&cd, (void *)arg, sizeof cd))
            return -EFAULT;
        return -ENODEV;
    }
    case KVM_XEN_HVM_CONFIG:
        return abi_xen_hvm_config(vm, arg);
    case KVM_XEN_HVM_GET_ATTR:
        return abi_xen_hvm_attr(vm, arg, false);
    case KVM_XEN_HVM_SET_ATTR:
        return abi_xen_hvm_attr(vm, arg, true);
    case KVM_REGISTER_COALESCED_MMIO:
        return abi_vm_coalesced_zone(vm, arg, true);
    case KVM_UNREGISTER_COALESCED_MMIO:
        return abi_vm_coalesced_zone(vm, arg, false);
    default:
        return -ENOTTY;
    }
}
