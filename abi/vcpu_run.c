/* abi/: KVM_RUN. Runs the interpreter in the caller's thread and turns each emu exit
 * into the struct kvm_run exit KVM would produce (arch/x86/kvm/x86.c vcpu_run(),
 * complete_userspace_io callbacks, api.rst "KVM_RUN").
 *
 * Order per call, as in kvm_arch_vcpu_ioctl_run(): validate sync_regs fields, load
 * dirty sync_regs, complete the previous user-space exit (IO-in data, MMIO-read data,
 * MSR result), then honour immediate_exit / a pending signal (-EINTR, KVM_EXIT_INTR),
 * then run. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "abi/abi_internal.h"

#define SYNC_VALID (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS)
#define PIO_DATA_OFFSET (ABI_PIO_PAGE_OFFSET * ABI_PAGE_SIZE)

/* KVM paravirt hypercall ABI (Documentation/virt/kvm/x86/hypercalls.rst) */
#define KVM_HC_VAPIC_POLL_IRQ 1
#define KVM_HC_KICK_CPU 5
#define KVM_HC_SEND_IPI 10
#define KVM_HC_SCHED_YIELD 11
#define KVM_ENOSYS 1000
#define KVM_EPERM 1
#define KVM_EOPNOTSUPP 95
#define KVM_EINVAL 22
#define KVM_FEATURE_PV_UNHALT 7
#define KVM_FEATURE_PV_SEND_IPI 11
#define KVM_FEATURE_PV_SCHED_YIELD 13

/* The vCPU this thread is running, for abi_signal_arrived() (a signal handler has no
 * other way to find it). Thread-local by necessity, not shared state. */
static __thread struct abi_vcpu *this_thread_vcpu;

void abi_signal_arrived(void)
{
    struct abi_vcpu *v = this_thread_vcpu;
    if (!v || !atomic_load(&v->in_run))
        return;
    atomic_store(&v->signalled, true);
    emu_request_stop(v->emu);
    if (v->lapic)
        abi_lapic_kick(v->lapic);
}

bool abi_host_fault(void *addr)
{
    struct abi_vcpu *v = this_thread_vcpu;
    if (!v || !atomic_load(&v->in_run))
        return false;
    return emu_host_fault(v->emu, addr); /* does not return when it is ours */
}

bool abi_thread_interrupt(struct abi_process *p, unsigned long t)
{
    bool found = false;
    pthread_mutex_lock(&p->lock);
    for (int fd = 0; fd < p->nfds; fd++) {
        struct abi_obj *o = p->fds[fd];
        if (!o || o->kind != ABI_VCPU)
            continue;
        struct abi_vcpu *v = (struct abi_vcpu *)o;
        if (atomic_load(&v->in_run) && pthread_equal(v->run_thread, (pthread_t)t)) {
            atomic_store(&v->signalled, true);
            emu_request_stop(v->emu);
            if (v->lapic)
                abi_lapic_kick(v->lapic);
            found = true;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return found;
}

static void sync_regs_out(struct abi_vcpu *v)
{
    struct kvm_run *run = v->run;
    bool handled;
    /* reuse the state ioctls' converters by calling them on the run page itself */
    if (run->kvm_valid_regs & KVM_SYNC_X86_REGS)
        abi_vcpu_state_ioctl(v, KVM_GET_REGS, (unsigned long)&run->s.regs.regs, &handled);
    if (run->kvm_valid_regs & KVM_SYNC_X86_SREGS)
        abi_vcpu_state_ioctl(v, KVM_GET_SREGS, (unsigned long)&run->s.regs.sregs, &handled);
    if (run->kvm_valid_regs & KVM_SYNC_X86_EVENTS)
        abi_vcpu_state_ioctl(v, KVM_GET_VCPU_EVENTS, (unsigned long)&run->s.regs.events,
                             &handled);
}

/* sync_regs in: KVM applies REGS, SREGS, EVENTS and clears each dirty bit it used. */
static long sync_regs_in(struct abi_vcpu *v)
{
    struct kvm_run *run = v->run;
    bool handled;
    long r;
    if (run->kvm_dirty_regs & KVM_SYNC_X86_REGS) {
        r = abi_vcpu_state_ioctl(v, KVM_SET_REGS, (unsigned long)&run->s.regs.regs, &handled);
        if (r)
            return r;
        run->kvm_dirty_regs &= ~KVM_SYNC_X86_REGS;
    }
    if (run->kvm_dirty_regs & KVM_SYNC_X86_SREGS) {
        r = abi_vcpu_state_ioctl(v, KVM_SET_SREGS, (unsigned long)&run->s.regs.sregs, &handled);
        if (r)
            return r;
        run->kvm_dirty_regs &= ~KVM_SYNC_X86_SREGS;
    }
    if (run->kvm_dirty_regs & KVM_SYNC_X86_EVENTS) {
        r = abi_vcpu_state_ioctl(v, KVM_SET_VCPU_EVENTS, (unsigned long)&run->s.regs.events,
                                 &handled);
        if (r)
            return r;
        run->kvm_dirty_regs &= ~KVM_SYNC_X86_EVENTS;
    }
    return 0;
}

/* Finish the instruction that exited to user space last time. */
static void complete_pending(struct abi_vcpu *v)
{
    if (!v->pending_completion)
        return;
    v->pending_completion = false;
    struct kvm_run *run = v->run;
    switch (v->exit.reason) {
    case EMU_EXIT_IO:
        if (v->exit.io.in)
            emu_complete_io(v->emu, (uint8_t *)run + run->io.data_offset);
        else
            emu_complete_io(v->emu, NULL);
        break;
    case EMU_EXIT_MMIO:
        emu_complete_mmio(v->emu, v->exit.mmio.is_write ? NULL : run->mmio.data);
        break;
    case EMU_EXIT_MSR:
        emu_complete_msr(v->emu, run->msr.error != 0,
                         v->exit.msr.is_write ? 0 : run->msr.data);
        break;
    case EMU_EXIT_HYPERCALL: /* KVM_EXIT_XEN / KVM_EXIT_HYPERV_HCALL: user space's result */
        if (v->hypercall_user) { /* complete_hypercall_exit */
            v->hypercall_user = false;
            struct cpu *c = emu_cpu(v->emu);
            bool long_mode = (c->efer & (1ull << 10)) && c->seg[EMU_CS].l;
            c->gpr[EMU_RAX] = long_mode ? run->hypercall.ret : (uint32_t)run->hypercall.ret;
        } else if (!abi_xen_complete_user(v)) {
            abi_hv_complete_user(v);
        }
        break;
    default:
        break;
    }
}

static bool pv_feature(struct abi_vcpu *v, unsigned bit)
{
    if (!v->msr->enforce_pv_cpuid)
        return true;
    const struct kvm_cpuid_entry2 *e = abi_cpuid_find(v->cpuid, v->ncpuid, 0x40000001, 0);
    return e && (e->eax & (1u << bit));
}

/* What KVM decides inside the guest's instructions (emu.h emu_kvm_policy), read at each
 * entry: another thread may disable quirks or exits between two runs. */
static void set_kvm_policy(struct abi_vcpu *v)
{
    uint64_t q = __atomic_load_n(&v->vm->disabled_quirks, __ATOMIC_RELAXED);
    struct emu_kvm_policy p = {
        .flavour = v->vm->sys->vendor == ABI_VENDOR_AMD ? EMU_FLAVOUR_SVM : EMU_FLAVOUR_VMX,
        .no_fix_hypercall = q & KVM_X86_QUIRK_FIX_HYPERCALL_INSN,
        .mwait_ud = q & KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS,
        .mwait_in_guest = __atomic_load_n(&v->vm->mwait_in_guest, __ATOMIC_RELAXED),
        /* kvm_intel allow_smaller_maxphyaddr with EPT; the host's width is the supported
         * CPUID's 0x80000008 (abi/cpuid.c) */
        .tdp_maxphyaddr = v->vm->sys->vendor == ABI_VENDOR_INTEL ? 48 : 0,
        .pause_in_guest = __atomic_load_n(&v->vm->disabled_exits, __ATOMIC_RELAXED) &
                          KVM_X86_DISABLE_EXITS_PAUSE,
    };
    emu_set_kvm_policy(v->emu, &p);
}

/* KVM_HC_MAP_GPA_RANGE with KVM_CAP_EXIT_HYPERCALL (x86.c __kvm_emulate_hypercall):
 * KVM_EXIT_HYPERCALL carries it to user space, whose run->hypercall.ret becomes RAX at
 * the next KVM_RUN (complete_hypercall_exit). Returns -1 when it was not exited. */
static int64_t map_gpa_range(struct abi_vcpu *v, uint64_t gpa, uint64_t npages, uint64_t attrs,
                             bool long_mode)
{
    uint64_t on = __atomic_load_n(&v->vm->hypercall_exit_enabled, __ATOMIC_RELAXED);
    if (!(on & (1u << KVM_HC_MAP_GPA_RANGE)))
        return -KVM_ENOSYS;
    if ((gpa & (ABI_PAGE_SIZE - 1)) || !npages || (gpa >> 12) + npages <= (gpa >> 12))
        return -KVM_EINVAL;
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_HYPERCALL;
    memset(&run->hypercall, 0, sizeof run->hypercall);
    run->hypercall.nr = KVM_HC_MAP_GPA_RANGE;
    run->hypercall.args[0] = gpa;
    run->hypercall.args[1] = npages;
    run->hypercall.args[2] = attrs;
    run->hypercall.longmode = long_mode; /* 6.12's flags: KVM_EXIT_HYPERCALL_LONG_MODE */
    v->hypercall_user = true;
    return 1;
}

/* kvm_emulate_hypercall(): the in-kernel KVM_HC_* set. RAX = result. Returns false when
 * the hypercall exits to user space instead. */
static bool handle_hypercall(struct abi_vcpu *v)
{
    struct cpu *c = emu_cpu(v->emu);
    uint64_t nr = c->gpr[EMU_RAX];
    bool long_mode = (c->efer & (1ull << 10)) && c->seg[EMU_CS].l;
    if (!long_mode)
        nr &= 0xffffffffu;
    int64_t ret;
    if (c->cpl != 0) {
        ret = -KVM_EPERM;
    } else {
        switch (nr) {
        case KVM_HC_VAPIC_POLL_IRQ:
            ret = 0;
            break;
        case KVM_HC_KICK_CPU:
            /* x86.c kvm_emulate_hypercall: kvm_pv_kick_cpu_op(a1 = RCX, the APIC ID) */
            ret = pv_feature(v, KVM_FEATURE_PV_UNHALT) ? 0 : -KVM_ENOSYS;
            if (ret == 0 && v->vm->irqchip_state)
                abi_irqchip_pv_kick(v->vm->irqchip_state, (uint32_t)c->gpr[EMU_RCX]);
            break;
        case KVM_HC_SCHED_YIELD:
            ret = pv_feature(v, KVM_FEATURE_PV_SCHED_YIELD) ? 0 : -KVM_ENOSYS;
            break;
        case KVM_HC_SEND_IPI: {
            /* x86.c kvm_emulate_hypercall: a0..a3 = RBX RCX RDX RSI, 32 bits outside
             * 64-bit mode; kvm_pv_send_ipi(a0 bitmap low, a1 high, a2 min, a3 ICR).
             * KVM_FEATURE_PV_SEND_IPI is not in our supported CPUID (so it only runs
             * without PV enforcement), but the hypercall works as KVM's does. */
            uint64_t mask = long_mode ? ~0ull : 0xffffffffull;
            if (!pv_feature(v, KVM_FEATURE_PV_SEND_IPI))
                ret = -KVM_ENOSYS;
            else if (!v->vm->irqchip_state)
                ret = -KVM_EOPNOTSUPP; /* no in-kernel LAPIC: no APIC map */
            else
                ret = abi_irqchip_pv_send_ipi(v->vm->irqchip_state, c->gpr[EMU_RBX] & mask,
                                              c->gpr[EMU_RCX] & mask,
                                              (uint32_t)c->gpr[EMU_RDX], c->gpr[EMU_RSI] & mask,
                                              long_mode);
            break;
        }
        case KVM_HC_MAP_GPA_RANGE: {
            uint64_t mask = long_mode ? ~0ull : 0xffffffffull;
            ret = map_gpa_range(v, c->gpr[EMU_RBX] & mask, c->gpr[EMU_RCX] & mask,
                                c->gpr[EMU_RDX] & mask, long_mode);
            if (ret == 1)
                return false;
            break;
        }
        default:
            ret = -KVM_ENOSYS;
            break;
        }
    }
    c->gpr[EMU_RAX] = long_mode ? (uint64_t)ret : (uint32_t)ret;
    return true;
}

/* Port I/O the in-kernel PIC claims (kernel_pio): every element of a string I/O must be
 * handled by it, else the whole access goes to user space as KVM does. */
/* One element of port I/O to the in-kernel devices: the PIC/ELCR, then the
 * PIT (and its speaker port) when the VM has one. */
static bool kernel_pio_one(struct abi_vcpu *v, uint16_t port, bool in, void *data, unsigned size)
{
    if (abi_irqchip_pio(v->vm->irqchip_state, port, in, data, size))
        return true;
    struct abi_pit *pit = abi_vm_pit(v->vm);
    return pit && abi_pit_pio(pit, port, in, data, size);
}

static bool irqchip_pio(struct abi_vcpu *v)
{
    struct emu_exit *x = &v->exit;
    uint32_t count = x->io.count ? x->io.count : 1;
    if ((size_t)count * x->io.size > sizeof x->io.data)
        return false;
    uint8_t buf[sizeof x->io.data];
    memcpy(buf, x->io.data, (size_t)count * x->io.size);
    for (uint32_t i = 0; i < count; i++)
        if (!kernel_pio_one(v, x->io.port, x->io.in, buf + i * x->io.size, x->io.size))
            return false; /* PIC and PIT own whole ports, so this happens at i == 0 */
    emu_complete_io(v->emu, x->io.in ? buf : NULL);
    return true;
}

/* kvm_apic_accept_events (lapic.c): INIT resets the vCPU (kvm_vcpu_reset(init_event)) and
 * leaves an AP waiting for SIPI; a SIPI starts a vCPU in INIT_RECEIVED at vector << 12
 * (and is dropped in any other state). */
static void accept_events(struct abi_vcpu *v)
{
    if (!v->lapic)
        return;
    if (emu_cpu(v->emu)->ev.smm) {
        /* kvm_apic_init_sipi_allowed: INIT stays latched in SMM, a SIPI is dropped */
        uint8_t vec;
        abi_lapic_take_sipi(v->lapic, &vec);
        return;
    }
    if (abi_lapic_take_init(v->lapic)) {
        emu_init_signal(v->emu);
        msr_vcpu_reset(v->msr, true);
        abi_lapic_reset(v->lapic, true);
        v->mp_state = v->id == v->vm->boot_cpu_id ? KVM_MP_STATE_RUNNABLE
                                                   : KVM_MP_STATE_INIT_RECEIVED;
    }
    /* after the INIT: a SIPI sent right behind it (SeaBIOS does) starts the AP now */
    uint8_t vec;
    if (abi_lapic_take_sipi(v->lapic, &vec) && v->mp_state == KVM_MP_STATE_INIT_RECEIVED) {
        struct cpu *c = emu_cpu(v->emu);
        c->seg[EMU_CS].selector = (uint16_t)(vec << 8);
        c->seg[EMU_CS].base = (uint64_t)vec << 12;
        c->rip = 0;
        c->halted = false;
        emu_state_changed(v->emu);
        v->mp_state = KVM_MP_STATE_RUNNABLE;
    }
}

/* A vCPU that is not RUNNABLE (INIT_RECEIVED, UNINITIALIZED) sleeps until an INIT/SIPI
 * arrives (KVM vcpu_block). Returns 1 to go on, -EINTR for a signal or immediate_exit. */
static int wait_for_sipi(struct abi_vcpu *v)
{
    for (;;) {
        enum abi_lapic_wake w = abi_lapic_wait(v->lapic, false);
        if (w == ABI_LAPIC_WAKE_SIGNAL || atomic_load(&v->signalled))
            return -EINTR;
        if (w == ABI_LAPIC_WAKE_EVENT)
            return 1;
        if (w == ABI_LAPIC_WAKE_KICK && v->run->immediate_exit)
            return -EINTR;
    }
}

/* svm.c shutdown_interception (2252-2280): on SVM a triple fault in guest code is the
 * SHUTDOWN intercept, after which KVM clears the VMCB and INIT-resets the vCPU
 * (kvm_vcpu_reset(vcpu, true)) before reporting KVM_EXIT_SHUTDOWN; the vCPU stays
 * runnable at the reset vector. The MSRs SVM keeps in the VMCB save area go with the
 * cleared page (svm_get_msr 2926-2960 reads them from vmcb01): STAR, LSTAR, CSTAR, SFMASK,
 * KERNEL_GS_BASE, SYSENTER_CS and the low halves of SYSENTER_ESP/EIP (the high halves are
 * svm->sysenter_*_hi). PAT is vcpu->arch.pat, copied back by init_vmcb (1329). A shutdown
 * KVM requested itself (KVM_REQ_TRIPLE_FAULT) resets nothing, on either vendor. A shutdown
 * in SMM leaves SMM first. */
static void svm_shutdown_reset(struct abi_vcpu *v)
{
    emu_smm_set(v->emu, false); /* 2271-2273: is_smm -> kvm_smm_changed(vcpu, false) */
    emu_init_signal(v->emu);
    struct cpu *c = emu_cpu(v->emu);
    c->star = c->lstar = c->cstar = c->sfmask = c->kernel_gs_base = 0;
    c->sysenter_cs = 0;
    c->sysenter_esp &= ~0xffffffffull;
    c->sysenter_eip &= ~0xffffffffull;
    msr_vcpu_reset(v->msr, true);
    if (v->lapic)
        abi_lapic_reset(v->lapic, true);
    emu_state_changed(v->emu);
}

/* Turn an emu exit into a kvm_run exit. Returns 1 to keep running in the kernel
 * (handled here), 0 to return to user space, or -errno. */
static int handle_exit(struct abi_vcpu *v)
{
    struct kvm_run *run = v->run;
    struct emu_exit *x = &v->exit;
    switch (x->reason) {
    case EMU_EXIT_NONE:
        return 1;
    case EMU_EXIT_IO: {
        if (v->vm->irqchip_state && irqchip_pio(v))
            return 1;
        if (!x->io.in && x->io.count <= 1 &&
            (abi_ioeventfd_signal(v->vm, true, x->io.port, x->io.data, x->io.size) ||
             abi_coalesced_write(v->vm, true, x->io.port, x->io.data, x->io.size))) {
            emu_complete_io(v->emu, NULL);
            return 1;
        }
        size_t bytes = (size_t)x->io.size * x->io.count;
        if (bytes > ABI_PAGE_SIZE)
            bytes = ABI_PAGE_SIZE;
        run->exit_reason = KVM_EXIT_IO;
        run->io.direction = x->io.in ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT;
        run->io.size = x->io.size;
        run->io.port = x->io.port;
        run->io.count = x->io.count;
        run->io.data_offset = PIO_DATA_OFFSET;
        if (!x->io.in)
            memcpy((uint8_t *)run + PIO_DATA_OFFSET, x->io.data, bytes);
        v->pending_completion = true;
        v->stat_io_exits++;
        return 0;
    }
    case EMU_EXIT_MMIO:
        if (x->mmio.is_write &&
            (abi_ioeventfd_signal(v->vm, false, x->mmio.gpa, x->mmio.data, x->mmio.len) ||
             abi_coalesced_write(v->vm, false, x->mmio.gpa, x->mmio.data, x->mmio.len))) {
            emu_complete_mmio(v->emu, NULL);
            return 1;
        }
        if (v->vm->irqchip_state) {
            uint8_t buf[8];
            memcpy(buf, x->mmio.data, sizeof buf);
            if (abi_irqchip_mmio(v->vm->irqchip_state, x->mmio.gpa, x->mmio.is_write, buf,
                                 x->mmio.len)) {
                emu_complete_mmio(v->emu, x->mmio.is_write ? NULL : buf);
                return 1;
            }
        }
        if (v->lapic) {
            uint8_t buf[8];
            memcpy(buf, x->mmio.data, sizeof buf);
            abi_lapic_set_access_rip(v->lapic, x->mmio.rip);
            bool mine = abi_lapic_mmio(v->lapic, x->mmio.gpa, x->mmio.is_write, buf, x->mmio.len);
            abi_lapic_set_access_rip(v->lapic, 0);
            if (mine) {
                emu_complete_mmio(v->emu, x->mmio.is_write ? NULL : buf);
                return 1;
            }
        }
        run->exit_reason = KVM_EXIT_MMIO;
        run->mmio.phys_addr = x->mmio.gpa;
        run->mmio.len = x->mmio.len;
        run->mmio.is_write = x->mmio.is_write;
        memset(run->mmio.data, 0, sizeof run->mmio.data);
        if (x->mmio.is_write)
            memcpy(run->mmio.data, x->mmio.data, x->mmio.len);
        v->pending_completion = true;
        v->stat_mmio_exits++;
        return 0;
    case EMU_EXIT_HLT:
        v->stat_halt_exits++;
        if (v->lapic) {
            /* in-kernel irqchip: HLT blocks until something wakes the vCPU */
            for (;;) {
                enum abi_lapic_wake w =
                    abi_lapic_wait(v->lapic, emu_get_rflags(v->emu) & EMU_FL_IF);
                if (w == ABI_LAPIC_WAKE_SIGNAL || atomic_load(&v->signalled))
                    return -EINTR;
                if (w == ABI_LAPIC_WAKE_IRQ) {
                    emu_cpu(v->emu)->halted = false;
                    return 1;
                }
                if (w == ABI_LAPIC_WAKE_EVENT)
                    return 1; /* INIT resets the vCPU; a SIPI to a running one is dropped */
                if (v->run->immediate_exit)
                    return -EINTR;
            }
        }
        /* no in-kernel LAPIC: user space emulates the halt, the vCPU stays runnable
         * (KVM __kvm_emulate_halt sets mp_state only with lapic_in_kernel) */
        emu_cpu(v->emu)->halted = false;
        run->exit_reason = KVM_EXIT_HLT;
        return 0;
    case EMU_EXIT_SHUTDOWN:
        /* KVM_REQ_TRIPLE_FAULT is consumed when it is reported (x86.c vcpu_enter_guest,
         * vmx handle_triple_fault): the next KVM_RUN runs the vCPU again instead of
         * shutting down at once forever. */
        emu_cpu(v->emu)->shutdown = false;
        if (!x->shutdown.requested && v->vm->sys->vendor == ABI_VENDOR_AMD)
            svm_shutdown_reset(v);
        run->exit_reason = KVM_EXIT_SHUTDOWN;
        return 0;
    case EMU_EXIT_MSR:
        run->exit_reason = x->msr.is_write ? KVM_EXIT_X86_WRMSR : KVM_EXIT_X86_RDMSR;
        memset(&run->msr, 0, sizeof run->msr);
        run->msr.reason = x->msr.reason;
        run->msr.index = x->msr.index;
        run->msr.data = x->msr.is_write ? x->msr.data : 0;
        v->pending_completion = true;
        v->stat_msr_exits++;
        return 0;
    case EMU_EXIT_INTERNAL:
        if (getenv("SOFTKVM_DEBUG")) /* diagnostics for developers; off by default */
            fprintf(stderr, "softkvm: internal error %u at rip %#llx, %u bytes %02x %02x %02x %02x\n",
                    x->internal.suberror, (unsigned long long)emu_cpu(v->emu)->rip,
                    x->internal.insn_len, x->internal.insn_bytes[0], x->internal.insn_bytes[1],
                    x->internal.insn_bytes[2], x->internal.insn_bytes[3]);
        run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
        memset(&run->internal, 0, sizeof run->internal);
        run->emulation_failure.suberror = x->internal.suberror;
        if (x->internal.suberror == KVM_INTERNAL_ERROR_EMULATION && x->internal.insn_len) {
            /* prepare_emulation_failure_exit(): flags + insn_size/bytes = 3 data words */
            run->emulation_failure.ndata = 3;
            run->emulation_failure.flags = KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
            run->emulation_failure.insn_size = x->internal.insn_len;
            memcpy(run->emulation_failure.insn_bytes, x->internal.insn_bytes,
                   sizeof run->emulation_failure.insn_bytes);
        }
        return 0;
    case EMU_EXIT_DEBUG:
        run->exit_reason = KVM_EXIT_DEBUG;
        memset(&run->debug, 0, sizeof run->debug);
        run->debug.arch.exception = x->debug.exception;
        run->debug.arch.pc = x->debug.pc;
        run->debug.arch.dr6 = x->debug.dr6;
        run->debug.arch.dr7 = x->debug.dr7;
        return 0;
    case EMU_EXIT_INTERRUPTED:
        /* a signal, or a memslot update that paused us (then just go on), or a Hyper-V
         * MSR write that KVM reports as KVM_EXIT_HYPERV (KVM_REQ_HV_EXIT) */
        if (atomic_load(&v->signalled))
            return -EINTR;
        return abi_hv_take_exit(v) ? 0 : 1;
    case EMU_EXIT_HYPERCALL:
        /* kvm_emulate_hypercall: Xen's ABI when intercepted, then Hyper-V's once the
         * guest enabled it */
        if (abi_xen_hypercall_enabled(v->vm)) {
            if (abi_xen_hypercall(v))
                return 1;
            v->pending_completion = true;
            return 0;
        }
        if (abi_hv_hypercall_enabled(v)) {
            if (abi_hv_hypercall(v))
                return 1;
            v->pending_completion = true;
            return 0;
        }
        if (handle_hypercall(v))
            return 1;
        v->pending_completion = true;
        return 0;
    case EMU_EXIT_HOST_FAULT:
        /* mmu.c kvm_handle_error_pfn: the slot's host address cannot be mapped */
        return -EFAULT;
    case EMU_EXIT_MEMORY_FAULT: { /* kvm_mmu_prepare_memory_fault_exit, then -EFAULT */
        run->exit_reason = KVM_EXIT_MEMORY_FAULT;
        struct abi_kvm_memory_fault mf = {.flags = KVM_MEMORY_EXIT_FLAG_PRIVATE,
                                          .gpa = x->mem_fault.gpa,
                                          .size = x->mem_fault.size};
        memcpy(&run->mmio, &mf, sizeof mf);
        return -EFAULT;
    }
    case EMU_EXIT_FAIL_ENTRY:
        run->exit_reason = KVM_EXIT_FAIL_ENTRY;
        run->fail_entry.hardware_entry_failure_reason = x->fail_entry.hardware_entry_failure_reason;
        run->fail_entry.cpu = 0;
        return 0;
    }
    run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
    run->internal.suberror = KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON;
    run->internal.ndata = 1;
    run->internal.data[0] = x->reason;
    return 0;
}

/* kvm_vcpu_ready_for_interrupt_injection (x86.c): IF=1, no STI/MOV-SS shadow, nothing
 * half-injected, no exception pending. */
static bool ready_for_injection(struct abi_vcpu *v)
{
    const struct emu_events *ev = &emu_cpu(v->emu)->ev;
    return (emu_get_rflags(v->emu) & EMU_FL_IF) && !ev->int_shadow && !ev->irq_injected &&
           !ev->nmi_injected && !ev->exc_pending && !ev->exc_injected;
}

/* request_interrupt_window without an in-kernel PIC (dm_request_for_irq_injection): emu
 * asks this hook at every boundary where it could take an interrupt, i.e. when the window
 * is open; the vCPU then stops so KVM_RUN can exit with KVM_EXIT_IRQ_WINDOW_OPEN (VMX's
 * interrupt-window exiting). */
static int window_pending(void *ctx, struct cpu *cpu)
{
    (void)cpu;
    struct abi_vcpu *v = ctx;
    if (ready_for_injection(v))
        emu_request_stop(v->emu);
    return -1;
}

static bool window_exit(struct abi_vcpu *v)
{
    if (v->vm->irqchip_state || !v->run->request_interrupt_window || !ready_for_injection(v))
        return false;
    v->run->exit_reason = KVM_EXIT_IRQ_WINDOW_OPEN;
    return true;
}

/* post_kvm_run_save (x86.c): the state KVM reports in kvm_run after every KVM_RUN. QEMU
 * takes APIC_BASE and CR8 from here (kvm_arch_post_run) and writes them back with its next
 * full register put, so they must be current. */
static void post_run_save(struct abi_vcpu *v)
{
    struct kvm_run *run = v->run;
    struct cpu *c = emu_cpu(v->emu);
    /* post_kvm_run_save: KVM_RUN_X86_SMM in SMM (no guest-mode flag yet) */
    run->flags = c->ev.smm ? KVM_RUN_X86_SMM : 0;
    run->if_flag = (emu_get_rflags(v->emu) & EMU_FL_IF) != 0;
    run->cr8 = c->cr8; /* the LAPIC keeps cr8 = TPR[7:4] in sync (kvm_lapic_get_cr8) */
    run->apic_base = v->lapic ? abi_lapic_get_base(v->lapic) : c->apic_base;
    /* kvm_vcpu_ready_for_interrupt_injection, or always with the PIC in the kernel */
    run->ready_for_interrupt_injection = v->vm->irqchip_state != NULL || ready_for_injection(v);
}

/* current->sched_info.run_delay of the calling thread (ns spent runnable but waiting
 * for a CPU), what KVM's steal time reports: field 2 of /proc/thread-self/schedstat. The
 * file stays open per vCPU and thread, so an update costs one pread. 0 if unreadable. */
uint64_t abi_vcpu_run_delay(struct abi_vcpu *v)
{
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (v->schedstat_tid != tid) {
        if (v->schedstat_tid)
            close(v->schedstat_fd);
        v->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
        v->schedstat_tid = v->schedstat_fd >= 0 ? tid : 0;
        if (!v->schedstat_tid)
            return 0;
    }
    char buf[96];
    ssize_t n = pread(v->schedstat_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    unsigned long long run, delay;
    return sscanf(buf, "%llu %llu", &run, &delay) == 2 ? delay : 0;
}

long abi_vcpu_run(struct abi_vcpu *v)
{
    struct kvm_run *run = v->run;
    run->flags = 0; /* kvm_arch_vcpu_ioctl_run; post_run_save sets KVM_RUN_X86_SMM */
    long r = -EINVAL;
    /* kvm_arch_vcpu_ioctl_run: an AP that never got INIT blocks (below) before sync_regs
     * are checked or the last exit is completed */
    bool uninit_ap = v->mp_state == KVM_MP_STATE_UNINITIALIZED && v->lapic;
    if (!uninit_ap && ((run->kvm_valid_regs & ~SYNC_VALID) || (run->kvm_dirty_regs & ~SYNC_VALID) ||
                       (r = sync_regs_in(v)) != 0)) {
        post_run_save(v); /* KVM's error paths also go through post_kvm_run_save */
        return r;
    }
    if (!uninit_ap)
        complete_pending(v);

    sigset_t old;
    if (v->sigmask_set) {
        sigset_t m;
        sigemptyset(&m);
        memcpy(&m, &v->sigmask, sizeof v->sigmask);
        /* a guest access to bad slot memory is a SIGSEGV/SIGBUS here (abi_host_fault), where
         * KVM's own accesses raise nothing: blocked, they would kill the process */
        sigdelset(&m, SIGSEGV);
        sigdelset(&m, SIGBUS);
        pthread_sigmask(SIG_SETMASK, &m, &old);
    }
    this_thread_vcpu = v;
    v->run_thread = pthread_self();
    atomic_store(&v->signalled, false);
    atomic_store(&v->in_run, true);
    v->stat_exits++;
    msr_vcpu_sync(v->msr);
    unsigned cg = atomic_load(&v->vm->clock_gen);
    bool clock_changed = cg != v->clock_gen;
    if (clock_changed) { /* KVM_REQ_CLOCK_UPDATE after KVM_SET_CLOCK */
        v->clock_gen = cg;
        msr_vcpu_update_kvmclock(v->msr);
        abi_hv_update_tsc_page(v); /* kvm_guest_time_update -> kvm_hv_setup_tsc_page */
    }
    abi_xen_clock_update(v, clock_changed); /* ... and the Xen pvclock copies */

    /* immediate_exit: -EINTR without touching exit_reason (KVM checks wants_to_run
     * before vcpu_run(); verified on this machine's /dev/kvm) */
    if (!v->lapic) { /* the window hook costs a call per instruction: only when asked */
        struct emu_irq_ops w = {.pending = window_pending, .ctx = v};
        emu_set_irq_ops(v->emu, run->request_interrupt_window ? &w : NULL);
    }
    bool immediate = run->immediate_exit;
    int h = immediate ? -EINTR : 1;
    if (h == 1 && v->mp_state == KVM_MP_STATE_UNINITIALIZED && v->lapic) {
        /* kvm_arch_vcpu_ioctl_run: an AP that never got INIT blocks, accepts what woke
         * it, and returns -EAGAIN (the VMM calls KVM_RUN again) */
        h = wait_for_sipi(v);
        if (h == 1) {
            accept_events(v);
            h = -EAGAIN;
        }
    }
    if (h == 1) {
        if (abi_xen_msr_enabled(v->vm)) /* record_steal_time: Xen's runstate instead */
            abi_xen_runstate_running(v, abi_vcpu_run_delay(v));
        else
            msr_vcpu_record_steal_time(v->msr, abi_vcpu_run_delay(v));
        abi_hv_sync_invtsc(v); /* another vCPU may have set TSC_INVARIANT_CONTROL */
    }
    while (h == 1) {
        if (atomic_load(&v->signalled)) {
            h = -EINTR;
            break;
        }
        accept_events(v);
        if (v->mp_state == KVM_MP_STATE_INIT_RECEIVED ||
            v->mp_state == KVM_MP_STATE_UNINITIALIZED) {
            if (!v->lapic) { /* cannot happen: SET_MP_STATE refuses these without a LAPIC */
                h = -EINVAL;
                break;
            }
            h = wait_for_sipi(v);
            continue;
        }
        if (v->mp_state == KVM_MP_STATE_SIPI_RECEIVED)
            v->mp_state = KVM_MP_STATE_RUNNABLE; /* user space set CS:IP for the SIPI */
        if (window_exit(v)) {
            h = 0;
            break;
        }
        if (abi_vapic_tpr_exit(v)) {
            h = 0;
            break;
        }
        memset(&v->exit, 0, offsetof(struct emu_exit, io));
        set_kvm_policy(v);
        pthread_rwlock_rdlock(&v->vm->mem_lock);
        abi_vapic_sync_to(v);
        emu_run(v->emu, &v->exit);
        abi_vapic_sync_from(v);
        pthread_rwlock_unlock(&v->vm->mem_lock);
        h = handle_exit(v);
    }
    atomic_store(&v->in_run, false);
    this_thread_vcpu = NULL;
    if (v->sigmask_set)
        pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (h == -EINTR && !immediate) {
        /* KVM: a signal or immediate_exit makes KVM_RUN fail with EINTR, KVM_EXIT_INTR */
        run->exit_reason = KVM_EXIT_INTR;
        v->stat_signal_exits++;
    }
    sync_regs_out(v);
    post_run_save(v);
    return h < 0 ? h : 0;
}
