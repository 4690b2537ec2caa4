/* abi/: the Hyper-V synthetic MSRs, reached from msr/'s table (msr/h_hyperv.c) after the
 * MSR filter, as kvm_{get,set}_msr_common reach kvm_hv_{get,set}_msr_common (Linux 6.12
 * hyperv.c). Return 0 or 1 (refused: #GP, or a user-space exit with reason INVAL). */
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "abi/abi_internal.h"
#include "abi/hyperv.h"

#define SYNDBG_OPTION_USE_HCALLS (1ull << 2) /* hyperv.h HV_X64_SYNDBG_OPTION_USE_HCALLS */
#define CRASH_CTL_NOTIFY (1ull << 63)

/* hv_check_msr_access(): with KVM_CAP_HYPERV_ENFORCE_CPUID each MSR needs its CPUID bit */
static bool msr_access_ok(const struct abi_hv_vcpu *h, uint32_t msr)
{
    if (!h->enforce_cpuid)
        return true;
    uint32_t a = h->cpuid.features_eax, d = h->cpuid.features_edx;
    switch (msr) {
    case HV_MSR_GUEST_OS_ID:
    case HV_MSR_HYPERCALL: return a & HV_F_HYPERCALL;
    case HV_MSR_VP_RUNTIME: return a & HV_F_VP_RUNTIME;
    case HV_MSR_TIME_REF_COUNT: return a & HV_F_TIME_REF_COUNT;
    case HV_MSR_VP_INDEX: return a & HV_F_VP_INDEX;
    case HV_MSR_RESET: return a & HV_F_RESET;
    case HV_MSR_REFERENCE_TSC: return a & HV_F_REFERENCE_TSC;
    case HV_MSR_SCONTROL ... HV_MSR_EOM:
    case HV_MSR_SINT0 ... HV_MSR_SINT15: return a & HV_F_SYNIC;
    case HV_MSR_STIMER0_CONFIG ... HV_MSR_STIMER3_COUNT: return a & HV_F_SYNTIMER;
    case HV_MSR_EOI:
    case HV_MSR_ICR:
    case HV_MSR_TPR:
    case HV_MSR_VP_ASSIST_PAGE: return a & HV_F_APIC_ACCESS;
    case HV_MSR_TSC_FREQUENCY:
    case HV_MSR_APIC_FREQUENCY: return a & HV_F_FREQUENCY_MSRS;
    case HV_MSR_REENLIGHTENMENT_CONTROL:
    case HV_MSR_TSC_EMULATION_CONTROL:
    case HV_MSR_TSC_EMULATION_STATUS: return a & HV_F_REENLIGHTENMENT;
    case HV_MSR_TSC_INVARIANT_CONTROL: return a & HV_F_TSC_INVARIANT;
    case HV_MSR_CRASH_P0 ... HV_MSR_CRASH_CTL: return d & HV_F_CRASH_MSRS;
    case HV_MSR_SYNDBG_OPTIONS:
    case HV_MSR_SYNDBG_CONTROL ... HV_MSR_SYNDBG_PENDING_BUFFER: return d & HV_F_DEBUG_MSRS;
    default: return false;
    }
}

/* kvm_hv_msr_partition_wide() */
static bool partition_wide(uint32_t msr)
{
    switch (msr) {
    case HV_MSR_GUEST_OS_ID:
    case HV_MSR_HYPERCALL:
    case HV_MSR_REFERENCE_TSC:
    case HV_MSR_TIME_REF_COUNT:
    case HV_MSR_CRASH_P0 ... HV_MSR_CRASH_CTL:
    case HV_MSR_RESET:
    case HV_MSR_REENLIGHTENMENT_CONTROL:
    case HV_MSR_TSC_EMULATION_CONTROL:
    case HV_MSR_TSC_EMULATION_STATUS:
    case HV_MSR_TSC_INVARIANT_CONTROL:
    case HV_MSR_SYNDBG_OPTIONS:
    case HV_MSR_SYNDBG_CONTROL ... HV_MSR_SYNDBG_PENDING_BUFFER:
        return true;
    default:
        return false;
    }
}

static bool syndbg_enabled(const struct abi_hv_vcpu *h)
{
    return h->cpuid.syndbg_cap_eax & HV_SYNDBG_CAP_ALLOW_KERNEL_DEBUGGING;
}

/* KVM_REQ_HV_EXIT: the exit is taken at the next instruction boundary (after this WRMSR
 * retires), as KVM takes it before the next guest entry. */
static void request_exit(struct abi_vcpu *v)
{
    v->hv->exit_pending = true;
    emu_request_stop(v->emu);
}

static void synic_exit(struct abi_vcpu *v, uint32_t msr)
{
    struct abi_hv_vcpu *h = v->hv;
    memset(&h->exit, 0, sizeof h->exit);
    h->exit.type = KVM_EXIT_HYPERV_SYNIC;
    h->exit.u.synic.msr = msr;
    h->exit.u.synic.control = h->synic.control;
    h->exit.u.synic.evt_page = h->synic.evt_page;
    h->exit.u.synic.msg_page = h->synic.msg_page;
    request_exit(v);
}

static void syndbg_exit(struct abi_vcpu *v, uint32_t msr)
{
    struct abi_hv_vm *hv = v->vm->hv;
    struct abi_hv_vcpu *h = v->hv;
    memset(&h->exit, 0, sizeof h->exit);
    h->exit.type = KVM_EXIT_HYPERV_SYNDBG;
    h->exit.u.syndbg.msr = msr;
    h->exit.u.syndbg.control = hv->syndbg_control;
    h->exit.u.syndbg.send_page = hv->syndbg_send;
    h->exit.u.syndbg.recv_page = hv->syndbg_recv;
    h->exit.u.syndbg.pending_page = hv->syndbg_pending;
    request_exit(v);
}

/* The hypercall page: VMCALL (Intel) or VMMCALL (AMD) and RET (kvm_hv_set_msr_pw); with
 * Xen hypercalls intercepted too, "orl $0x80000000, %eax" first, the bit Xen's
 * dispatcher sends back to Hyper-V (abi/xen_hcall.c). */
static int write_hypercall_page(struct abi_vcpu *v, uint64_t data)
{
    uint8_t insn[9];
    unsigned i = 0;
    if (abi_xen_hypercall_enabled(v->vm)) {
        static const uint8_t orl[5] = {0x0d, 0x00, 0x00, 0x00, 0x80};
        memcpy(insn, orl, sizeof orl);
        i = sizeof orl;
    }
    insn[i++] = 0x0f;
    insn[i++] = 0x01;
    insn[i++] = v->vm->sys->vendor == ABI_VENDOR_AMD ? 0xd9 : 0xc1;
    insn[i++] = 0xc3;
    return abi_hv_guest_write(v->vm, data & ~0xfffull, insn, i) ? 1 : 0;
}

static int set_pw(struct abi_vcpu *v, uint32_t msr, uint64_t data, bool host)
{
    struct abi_hv_vm *hv = v->vm->hv;
    switch (msr) {
    case HV_MSR_GUEST_OS_ID:
        hv->guest_os_id = data;
        if (!data) /* a zero guest OS id disables the hypercall page */
            hv->hypercall &= ~1ull;
        return 0;
    case HV_MSR_HYPERCALL:
        if (!hv->guest_os_id) /* stays disabled (the write is dropped) */
            return 0;
        if ((data & 1) && write_hypercall_page(v, data))
            return 1;
        hv->hypercall = data;
        return 0;
    case HV_MSR_REFERENCE_TSC:
        hv->tsc_page = data;
        if (data & 1) {
            hv->tsc_status = host ? HV_TSC_HOST_CHANGED : HV_TSC_GUEST_CHANGED;
            /* KVM_REQ_MASTERCLOCK_UPDATE is served before the guest runs again: the same
             * as filling the page now */
            abi_hv_setup_tsc_page_locked(v);
        } else {
            hv->tsc_status = HV_TSC_UNSET;
        }
        return 0;
    case HV_MSR_CRASH_P0 ... HV_MSR_CRASH_P4:
        hv->crash_param[msr - HV_MSR_CRASH_P0] = data;
        return 0;
    case HV_MSR_CRASH_CTL:
        if (host)
            hv->crash_ctl = data & CRASH_CTL_NOTIFY;
        /* a guest CRASH_NOTIFY is KVM_REQ_HV_CRASH, a KVM_EXIT_SYSTEM_EVENT(CRASH): not
         * modelled, the write is accepted (see the report in tests/selftests-expected) */
        return 0;
    case HV_MSR_RESET:
        /* data == 1 requests KVM_REQ_HV_RESET (KVM_EXIT_SYSTEM_EVENT RESET); other values
         * are ignored. softkvm does not model the reset exit: the write is accepted. */
        return 0;
    case HV_MSR_REENLIGHTENMENT_CONTROL:
        hv->reenlightenment_control = data;
        return 0;
    case HV_MSR_TSC_EMULATION_CONTROL:
        hv->tsc_emulation_control = data;
        return 0;
    case HV_MSR_TSC_EMULATION_STATUS:
        if (data && !host)
            return 1;
        hv->tsc_emulation_status = data;
        return 0;
    case HV_MSR_TIME_REF_COUNT:
        return host ? 0 : 1; /* read-only; host writes ignored */
    case HV_MSR_TSC_INVARIANT_CONTROL:
        if (data & ~1ull)
            return 1;
        if (!host && hv->invtsc_control && !data)
            return 1; /* the guest cannot turn it off again */
        hv->invtsc_control = data;
        return 0;
    case HV_MSR_SYNDBG_OPTIONS:
    case HV_MSR_SYNDBG_CONTROL ... HV_MSR_SYNDBG_PENDING_BUFFER:
        if (!syndbg_enabled(v->hv) && !host)
            return 1;
        switch (msr) {
        case HV_MSR_SYNDBG_CONTROL:
            hv->syndbg_control = data;
            if (!host)
                syndbg_exit(v, msr);
            break;
        case HV_MSR_SYNDBG_STATUS: hv->syndbg_status = data; break;
        case HV_MSR_SYNDBG_SEND_BUFFER: hv->syndbg_send = data; break;
        case HV_MSR_SYNDBG_RECV_BUFFER: hv->syndbg_recv = data; break;
        case HV_MSR_SYNDBG_PENDING_BUFFER:
            hv->syndbg_pending = data;
            if (!host)
                syndbg_exit(v, msr);
            break;
        case HV_MSR_SYNDBG_OPTIONS: hv->syndbg_options = data; break;
        }
        return 0;
    default:
        return 1;
    }
}

static int get_pw(struct abi_vcpu *v, uint32_t msr, uint64_t *data, bool host)
{
    struct abi_hv_vm *hv = v->vm->hv;
    switch (msr) {
    case HV_MSR_GUEST_OS_ID: *data = hv->guest_os_id; return 0;
    case HV_MSR_HYPERCALL: *data = hv->hypercall; return 0;
    case HV_MSR_TIME_REF_COUNT: *data = abi_hv_time_ref_locked(v); return 0;
    case HV_MSR_REFERENCE_TSC: *data = hv->tsc_page; return 0;
    case HV_MSR_CRASH_P0 ... HV_MSR_CRASH_P4: *data = hv->crash_param[msr - HV_MSR_CRASH_P0]; return 0;
    case HV_MSR_CRASH_CTL: *data = hv->crash_ctl; return 0;
    case HV_MSR_RESET: *data = 0; return 0;
    case HV_MSR_REENLIGHTENMENT_CONTROL: *data = hv->reenlightenment_control; return 0;
    case HV_MSR_TSC_EMULATION_CONTROL: *data = hv->tsc_emulation_control; return 0;
    case HV_MSR_TSC_EMULATION_STATUS: *data = hv->tsc_emulation_status; return 0;
    case HV_MSR_TSC_INVARIANT_CONTROL: *data = hv->invtsc_control; return 0;
    case HV_MSR_SYNDBG_OPTIONS:
    case HV_MSR_SYNDBG_CONTROL ... HV_MSR_SYNDBG_PENDING_BUFFER:
        if (!syndbg_enabled(v->hv) && !host)
            return 1;
        switch (msr) {
        case HV_MSR_SYNDBG_CONTROL: *data = hv->syndbg_control; break;
        case HV_MSR_SYNDBG_STATUS: *data = hv->syndbg_status; break;
        case HV_MSR_SYNDBG_SEND_BUFFER: *data = hv->syndbg_send; break;
        case HV_MSR_SYNDBG_RECV_BUFFER: *data = hv->syndbg_recv; break;
        case HV_MSR_SYNDBG_PENDING_BUFFER: *data = hv->syndbg_pending; break;
        default: *data = hv->syndbg_options; break;
        }
        return 0;
    default:
        return 1;
    }
}

/* current_task_runtime_100ns(): CPU time of the vCPU's thread, in 100 ns */
static uint64_t runtime_100ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) / 100;
}

static int synic_set(struct abi_vcpu *v, uint32_t msr, uint64_t data, bool host)
{
    struct abi_hv_vcpu *h = v->hv;
    if (!h->synic.active && (!host || data))
        return 1;
    switch (msr) {
    case HV_MSR_SCONTROL:
        h->synic.control = data;
        if (!host)
            synic_exit(v, msr);
        return 0;
    case HV_MSR_SVERSION:
        if (!host)
            return 1;
        h->synic.version = data;
        return 0;
    case HV_MSR_SIEFP:
    case HV_MSR_SIMP:
        /* enabling a page from the guest clears it, unless SYNIC2 said not to */
        if ((data & 1) && !host && !h->synic.dont_zero_pages) {
            static const uint8_t zero[4096];
            if (abi_hv_guest_write(v->vm, data & ~0xfffull, zero, sizeof zero))
                return 1;
        }
        if (msr == HV_MSR_SIEFP)
            h->synic.evt_page = data;
        else
            h->synic.msg_page = data;
        if (!host)
            synic_exit(v, msr);
        return 0;
    case HV_MSR_EOM:
        /* kvm_hv_notify_acked_sint for every SINT: re-delivers pending timer messages and
         * acks SINT GSIs; softkvm has neither firing timers nor HV_SINT routes */
        return 0;
    default: { /* SINTx */
        uint64_t vec = data & HV_SYNIC_SINT_VECTOR_MASK;
        /* vectors 0-15 are invalid unless masked, but the host may zero the register */
        if (vec < HV_SYNIC_FIRST_VALID_VECTOR && !host && !(data & HV_SYNIC_SINT_MASKED))
            return 1;
        atomic_store(&h->synic.sint[msr - HV_MSR_SINT0], data);
        return 0;
    }
    }
}

static int synic_get(struct abi_vcpu *v, uint32_t msr, uint64_t *data, bool host)
{
    struct abi_hv_vcpu *h = v->hv;
    if (!h->synic.active && !host)
        return 1;
    switch (msr) {
    case HV_MSR_SCONTROL: *data = h->synic.control; return 0;
    case HV_MSR_SVERSION: *data = h->synic.version; return 0;
    case HV_MSR_SIEFP: *data = h->synic.evt_page; return 0;
    case HV_MSR_SIMP: *data = h->synic.msg_page; return 0;
    case HV_MSR_EOM: *data = 0; return 0;
    default: *data = atomic_load(&h->synic.sint[msr - HV_MSR_SINT0]); return 0;
    }
}

/* stimer_set_config / stimer_set_count: the registers and their rules; the timers are
 * not armed (softkvm does not advertise HV_MSR_SYNTIMER_AVAILABLE) */
static int stimer_set(struct abi_vcpu *v, uint32_t msr, uint64_t data, bool host)
{
    struct abi_hv_vcpu *h = v->hv;
    unsigned t = (msr - HV_MSR_STIMER0_CONFIG) / 2;
    if (!h->synic.active && (!host || data))
        return 1;
    if ((msr - HV_MSR_STIMER0_CONFIG) % 2 == 0) {
        bool direct = data & (1ull << 12);
        if (!host && h->enforce_cpuid && direct && !(h->cpuid.features_edx & HV_F_STIMER_DIRECT))
            return 1;
        bool old_enable = h->stimer[t].config & 1;
        unsigned sintx = (data >> 16) & 0xf;
        if (old_enable && !direct && sintx == 0)
            data &= ~1ull; /* enable with SINT 0 in message mode is refused silently */
        h->stimer[t].config = data;
    } else {
        h->stimer[t].count = data;
        if (!host) {
            if (!data)
                h->stimer[t].config &= ~1ull;
            else if (h->stimer[t].config & (1ull << 3)) /* auto_enable */
                h->stimer[t].config |= 1;
        }
    }
    return 0;
}

static int set_vcpu(struct abi_vcpu *v, uint32_t msr, uint64_t data, bool host)
{
    struct abi_hv_vcpu *h = v->hv;
    switch (msr) {
    case HV_MSR_VP_INDEX: {
        uint32_t idx = (uint32_t)data;
        if (!host || idx >= ABI_MAX_VCPUS)
            return 1;
        uint32_t old = atomic_load(&h->vp_index);
        if (idx == old)
            return 0;
        if (old == h->vcpu_idx)
            atomic_fetch_add(&v->vm->hv->num_mismatched_vp_indexes, 1);
        else if (idx == h->vcpu_idx)
            atomic_fetch_sub(&v->vm->hv->num_mismatched_vp_indexes, 1);
        atomic_store(&h->vp_index, idx);
        return 0;
    }
    case HV_MSR_VP_ASSIST_PAGE:
        if (data & 1) {
            /* clear apic_assist only: the rest may hold migrated state. (KVM also points
             * PV EOI at the page; softkvm never sets apic_assist, so EOIs stay ordinary.) */
            uint32_t zero = 0;
            if (abi_hv_guest_write(v->vm, data & ~0xfffull, &zero, sizeof zero))
                return 1;
        }
        h->vapic = data;
        return 0;
    case HV_MSR_EOI:
        return v->lapic ? abi_lapic_hv_reg_write(v->lapic, 0xb0, data) != 0 : 1;
    case HV_MSR_ICR:
        return v->lapic ? abi_lapic_hv_reg_write(v->lapic, 0x300, data) != 0 : 1;
    case HV_MSR_TPR:
        return v->lapic ? abi_lapic_hv_reg_write(v->lapic, 0x80, data) != 0 : 1;
    case HV_MSR_VP_RUNTIME:
        if (!host)
            return 1;
        h->runtime_offset = (int64_t)(data - runtime_100ns());
        return 0;
    case HV_MSR_SCONTROL ... HV_MSR_EOM:
    case HV_MSR_SINT0 ... HV_MSR_SINT15:
        return synic_set(v, msr, data, host);
    case HV_MSR_STIMER0_CONFIG ... HV_MSR_STIMER3_COUNT:
        return stimer_set(v, msr, data, host);
    case HV_MSR_TSC_FREQUENCY:
    case HV_MSR_APIC_FREQUENCY:
        return host ? 0 : 1;
    default:
        return 1;
    }
}

static int get_vcpu(struct abi_vcpu *v, uint32_t msr, uint64_t *data, bool host)
{
    struct abi_hv_vcpu *h = v->hv;
    switch (msr) {
    case HV_MSR_VP_INDEX: *data = atomic_load(&h->vp_index); return 0;
    case HV_MSR_EOI: return v->lapic ? abi_lapic_hv_reg_read(v->lapic, 0xb0, data) != 0 : 1;
    case HV_MSR_ICR: return v->lapic ? abi_lapic_hv_reg_read(v->lapic, 0x300, data) != 0 : 1;
    case HV_MSR_TPR: return v->lapic ? abi_lapic_hv_reg_read(v->lapic, 0x80, data) != 0 : 1;
    case HV_MSR_VP_ASSIST_PAGE: *data = h->vapic; return 0;
    case HV_MSR_VP_RUNTIME: *data = runtime_100ns() + (uint64_t)h->runtime_offset; return 0;
    case HV_MSR_SCONTROL ... HV_MSR_EOM:
    case HV_MSR_SINT0 ... HV_MSR_SINT15:
        return synic_get(v, msr, data, host);
    case HV_MSR_STIMER0_CONFIG ... HV_MSR_STIMER3_COUNT: {
        unsigned t = (msr - HV_MSR_STIMER0_CONFIG) / 2;
        *data = (msr - HV_MSR_STIMER0_CONFIG) % 2 ? h->stimer[t].count : h->stimer[t].config;
        return 0;
    }
    case HV_MSR_TSC_FREQUENCY: *data = (uint64_t)msr_vcpu_tsc_khz(v->msr) * 1000; return 0;
    case HV_MSR_APIC_FREQUENCY: {
        uint64_t ns = v->vm->irqchip_state ? abi_irqchip_bus_cycle_ns(v->vm->irqchip_state) : 1;
        *data = 1000000000ull / (ns ? ns : 1);
        return 0;
    }
    default:
        return 1;
    }
}

/* kvm_hv_{set,get}_msr_common: the guest needs Hyper-V in its CPUID; then the CPUID bit
 * (if enforced), partition-wide MSRs under the VM's lock. */
int abi_hv_msr_set(void *vcpu, uint32_t msr, uint64_t data, bool host)
{
    struct abi_vcpu *v = vcpu;
    if (!host && !v->hv->enabled)
        return 1;
    if (!host && !msr_access_ok(v->hv, msr))
        return 1;
    if (!partition_wide(msr))
        return set_vcpu(v, msr, data, host);
    pthread_mutex_lock(&v->vm->hv->lock);
    int r = set_pw(v, msr, data, host);
    pthread_mutex_unlock(&v->vm->hv->lock);
    if (!r && msr == HV_MSR_TSC_INVARIANT_CONTROL)
        abi_hv_sync_invtsc(v);
    return r;
}

int abi_hv_msr_get(void *vcpu, uint32_t msr, uint64_t *data, bool host)
{
    struct abi_vcpu *v = vcpu;
    if (!host && !v->hv->enabled)
        return 1;
    if (!host && !msr_access_ok(v->hv, msr))
        return 1;
    if (!partition_wide(msr))
        return get_vcpu(v, msr, data, host);
    pthread_mutex_lock(&v->vm->hv->lock);
    int r = get_pw(v, msr, data, host);
    pthread_mutex_unlock(&v->vm->hv->lock);
    return r;
}
