/* abi/: Hyper-V hypercalls (Linux 6.12 hyperv.c kvm_hv_hypercall): access checks against
 * the Hyper-V CPUID, PV IPIs (HvCallSendSyntheticClusterIpi{,Ex}), PV TLB flushes
 * (HvFlushVirtualAddress{Space,List}{,Ex}), and the calls KVM hands to user space as
 * KVM_EXIT_HYPERV_HCALL (POST_MESSAGE, SIGNAL_EVENT without an eventfd, SynDbg, extended
 * hypercalls 0x8001..0x8041). */
#include <string.h>

#include "abi/abi_internal.h"
#include "abi/hyperv.h"

#define HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE 0x0002
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST 0x0003
#define HVCALL_NOTIFY_LONG_SPIN_WAIT 0x0008
#define HVCALL_SEND_IPI 0x000b
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX 0x0013
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX 0x0014
#define HVCALL_SEND_IPI_EX 0x0015
#define HVCALL_POST_MESSAGE 0x005c
#define HVCALL_SIGNAL_EVENT 0x005d
#define HVCALL_POST_DEBUG_DATA 0x0069
#define HVCALL_RETRIEVE_DEBUG_DATA 0x006a
#define HVCALL_RESET_DEBUG_SESSION 0x006b
#define HV_EXT_CALL_QUERY_CAPABILITIES 0x8001
#define HV_EXT_CALL_MAX (HV_EXT_CALL_QUERY_CAPABILITIES + 64)

#define HV_STATUS_SUCCESS 0
#define HV_STATUS_INVALID_HYPERCALL_CODE 2
#define HV_STATUS_INVALID_HYPERCALL_INPUT 3
#define HV_STATUS_INVALID_ALIGNMENT 4
#define HV_STATUS_INVALID_PARAMETER 5
#define HV_STATUS_ACCESS_DENIED 6
#define HV_STATUS_OPERATION_DENIED 8
#define HV_STATUS_INVALID_PORT_ID 17

/* hypercall input value (TLFS 3.7) */
#define HC_FAST (1ull << 16)
#define HC_VARHEAD_SHIFT 17
#define HC_VARHEAD_MASK (0x3ffull << 17)   /* 26:17 */
#define HC_REP_COMP_SHIFT 32                /* 43:32 */
#define HC_REP_START_SHIFT 48               /* 59:48 */
#define HC_RSVD_MASK ((0x1full << 27) | (0xfull << 44) | (0xfull << 60))
#define HC_MAX_XMM 6
#define HV_GENERIC_SET_SPARSE_4K 0
#define HV_GENERIC_SET_ALL 1
#define HV_FLUSH_ALL_PROCESSORS (1ull << 0)
#define MAX_SPARSE_BANKS 64
#define KVM_SPARSE_BANKS ((ABI_MAX_VCPUS + 63) / 64) /* banks that can hold a legal VP index */
#define SYNDBG_OPTION_USE_HCALLS (1ull << 2)

struct hcall {
    uint64_t param, ingpa, outgpa;
    uint16_t code, var_cnt, rep_cnt, rep_idx;
    bool fast, rep;
    uint64_t xmm[HC_MAX_XMM * 2]; /* halves: lo, hi of XMM0..5 */
    unsigned consumed; /* XMM halves used by fixed parameters, or input bytes read */
};

bool abi_hv_hypercall_enabled(struct abi_vcpu *v)
{
    return v->hv->enabled && v->vm->hv->guest_os_id;
}

/* What emu asks for the nested enlightenments (emu.h emu_hv_ops) */
static bool emu_hcall_enabled(void *ctx)
{
    return abi_hv_hypercall_enabled(ctx);
}

static uint64_t emu_vp_assist_gpa(void *ctx)
{
    const struct abi_vcpu *v = ctx;
    uint64_t a = v->hv->vapic; /* HV_X64_MSR_VP_ASSIST_PAGE: enable bit 0 */
    return (a & 1) ? a & ~0xfffull : 0;
}

void abi_hv_set_emu_ops(struct abi_vcpu *v)
{
    struct emu_hv_ops ops = {.hypercall_enabled = emu_hcall_enabled,
                             .vp_assist_gpa = emu_vp_assist_gpa,
                             .ctx = v};
    emu_set_hv_ops(v->emu, &ops);
}

static bool is_64bit(struct cpu *c)
{
    return (c->efer & (1ull << 10)) && c->seg[EMU_CS].l;
}

static bool syndbg_enabled(const struct abi_hv_vcpu *h)
{
    return h->cpuid.syndbg_cap_eax & HV_SYNDBG_CAP_ALLOW_KERNEL_DEBUGGING;
}

/* hv_check_hypercall_access() */
static bool access_ok(const struct abi_hv_vcpu *h, uint16_t code)
{
    if (!h->enforce_cpuid)
        return true;
    uint32_t eax = h->cpuid.enlightenments_eax, fb = h->cpuid.features_ebx;
    switch (code) {
    case HVCALL_NOTIFY_LONG_SPIN_WAIT:
        return h->cpuid.enlightenments_ebx && h->cpuid.enlightenments_ebx != UINT32_MAX;
    case HVCALL_POST_MESSAGE: return fb & HV_F_POST_MESSAGES;
    case HVCALL_SIGNAL_EVENT: return fb & HV_F_SIGNAL_EVENTS;
    case HVCALL_POST_DEBUG_DATA:
    case HVCALL_RETRIEVE_DEBUG_DATA:
    case HVCALL_RESET_DEBUG_SESSION:
        /* SynDbg off: allowed, so that the call fails with INVALID_HYPERCALL_CODE */
        return !syndbg_enabled(h) || (fb & HV_F_DEBUGGING);
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX:
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX:
        if (!(eax & HV_E_EX_PROCESSOR_MASKS))
            return false;
        /* fall through */
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST:
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE:
        return eax & HV_E_REMOTE_TLB_FLUSH;
    case HVCALL_SEND_IPI_EX:
        if (!(eax & HV_E_EX_PROCESSOR_MASKS))
            return false;
        /* fall through */
    case HVCALL_SEND_IPI:
        return eax & HV_E_CLUSTER_IPI;
    case HV_EXT_CALL_QUERY_CAPABILITIES ... HV_EXT_CALL_MAX:
        return fb & HV_F_EXTENDED_HYPERCALLS;
    default:
        return true;
    }
}

static bool is_xmm_fast(uint16_t code)
{
    switch (code) {
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST:
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE:
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX:
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX:
    case HVCALL_SEND_IPI_EX:
        return true;
    default:
        return false;
    }
}

/* kvm_hv_get_hc_data(): `cnt` u64s of variable input, from XMM halves (fast) or memory */
static int get_hc_data(struct abi_vcpu *v, struct hcall *hc, unsigned cnt, unsigned cap,
                       uint64_t *out)
{
    unsigned n = cnt < cap ? cnt : cap;
    if (hc->fast) {
        if (cnt > 2 * HC_MAX_XMM - hc->consumed)
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        for (unsigned i = 0; i < n; i++)
            out[i] = hc->xmm[hc->consumed + i];
        return 0;
    }
    return abi_hv_guest_read(v->vm, hc->ingpa + hc->consumed, out, n * sizeof *out) ? 1 : 0;
}

/* hv_is_vp_in_sparse_set() */
static bool vp_in_sparse_set(uint32_t vp, uint64_t valid_mask, const uint64_t *banks)
{
    unsigned bank = vp / 64;
    if (bank >= MAX_SPARSE_BANKS || !(valid_mask & (1ull << bank)))
        return false;
    unsigned sbank = bank ? (unsigned)__builtin_popcountll(valid_mask & ((1ull << bank) - 1)) : 0;
    return banks[sbank] & (1ull << (vp % 64));
}

/* kvm_hv_send_ipi() */
static uint64_t send_ipi(struct abi_vcpu *v, struct hcall *hc)
{
    uint64_t banks[MAX_SPARSE_BANKS] = {0}, valid_mask;
    uint32_t vector;
    bool all;
    if (!v->lapic)
        return HV_STATUS_INVALID_HYPERCALL_INPUT;
    if (hc->code == HVCALL_SEND_IPI) {
        if (!hc->fast) {
            struct { uint32_t vector, reserved; uint64_t cpu_mask; } in;
            if (abi_hv_guest_read(v->vm, hc->ingpa, &in, sizeof in))
                return HV_STATUS_INVALID_HYPERCALL_INPUT;
            banks[0] = in.cpu_mask;
            vector = in.vector;
        } else {
            if (hc->ingpa >> 32) /* the "reserved" half must be 0 */
                return HV_STATUS_INVALID_HYPERCALL_INPUT;
            banks[0] = hc->outgpa;
            vector = (uint32_t)hc->ingpa;
        }
        all = false;
        valid_mask = 1;
    } else {
        uint64_t format;
        if (!hc->fast) {
            struct { uint32_t vector, reserved; uint64_t format, valid_mask; } in;
            if (abi_hv_guest_read(v->vm, hc->ingpa, &in, sizeof in))
                return HV_STATUS_INVALID_HYPERCALL_INPUT;
            vector = in.vector;
            format = in.format;
            valid_mask = in.valid_mask;
        } else {
            vector = (uint32_t)hc->ingpa;
            format = hc->outgpa;
            valid_mask = hc->xmm[0];
        }
        all = format == HV_GENERIC_SET_ALL;
        if (hc->var_cnt != __builtin_popcountll(valid_mask))
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        if (!all) {
            if (!hc->var_cnt)
                return HV_STATUS_SUCCESS;
            hc->consumed = hc->fast ? 1 : 24; /* offsetof(hv_send_ipi_ex, vp_set.bank_contents) */
            if (get_hc_data(v, hc, hc->var_cnt, KVM_SPARSE_BANKS, banks))
                return HV_STATUS_INVALID_HYPERCALL_INPUT;
        }
    }
    if (vector < 0x10 || vector > 0xff) /* HV_IPI_LOW_VECTOR .. HV_IPI_HIGH_VECTOR */
        return HV_STATUS_INVALID_HYPERCALL_INPUT;
    struct abi_vm *vm = v->vm;
    pthread_mutex_lock(&vm->lock);
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        struct abi_vcpu *t = vm->vcpus[i];
        if (!t->lapic || !t->hv)
            continue;
        if (!all && !vp_in_sparse_set(atomic_load(&t->hv->vp_index), valid_mask, banks))
            continue;
        abi_lapic_deliver_fixed(t->lapic, (uint8_t)vector); /* fails only if APIC disabled */
    }
    pthread_mutex_unlock(&vm->lock);
    return HV_STATUS_SUCCESS;
}

/* kvm_hv_flush_tlb(): validates the input like KVM, then flushes. KVM queues per-vCPU
 * flush requests and always ends up flushing everything the target vCPUs cached; softkvm
 * bumps the VM's physical-memory generation, after which every vCPU drops its TLB (and
 * revalidates its blocks) at its next block boundary: a superset of the requested vCPUs, which
 * the TLFS allows. Reps completed = rep count, as KVM reports. */
static uint64_t flush_tlb(struct abi_vcpu *v, struct hcall *hc)
{
    uint64_t banks[MAX_SPARSE_BANKS] = {0};
    if (hc->code == HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST ||
        hc->code == HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE) {
        if (hc->fast) {
            hc->consumed = 1;
        } else {
            struct { uint64_t address_space, flags, processor_mask; } in;
            if (abi_hv_guest_read(v->vm, hc->ingpa, &in, sizeof in))
                return HV_STATUS_INVALID_HYPERCALL_INPUT;
            hc->consumed = sizeof in;
        }
    } else {
        uint64_t format, valid_mask;
        if (hc->fast) {
            format = hc->xmm[0];
            valid_mask = hc->xmm[1];
            hc->consumed = 2;
        } else {
            struct { uint64_t address_space, flags, format, valid_mask; } in;
            if (abi_hv_guest_read(v->vm, hc->ingpa, &in, sizeof in))
                return HV_STATUS_INVALID_HYPERCALL_INPUT;
            format = in.format;
            valid_mask = in.valid_mask;
            hc->consumed = sizeof in;
        }
        bool all = format != HV_GENERIC_SET_SPARSE_4K;
        if (hc->var_cnt != __builtin_popcountll(valid_mask))
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        if (!all) {
            if (!hc->var_cnt)
                return HV_STATUS_SUCCESS | ((uint64_t)hc->rep_cnt << HC_REP_COMP_SHIFT);
            if (hc->var_cnt > MAX_SPARSE_BANKS ||
                get_hc_data(v, hc, hc->var_cnt, KVM_SPARSE_BANKS, banks))
                return HV_STATUS_INVALID_HYPERCALL_INPUT;
        }
        hc->consumed += hc->fast ? hc->var_cnt : hc->var_cnt * 8u;
    }
    /* the GVA list is read (and must be readable) for the LIST forms that fit KVM's fifo */
    if ((hc->code == HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST ||
         hc->code == HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX) && hc->rep_cnt < 16) {
        uint64_t entries[16];
        if (get_hc_data(v, hc, hc->rep_cnt, hc->rep_cnt, entries))
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
    }
    uint64_t gen = __atomic_add_fetch(&v->vm->as[0].mem.generation, 1, __ATOMIC_SEQ_CST);
    /* KVM makes the flush requests with KVM_REQUEST_WAIT: the hypercall returns only after
     * every target left guest mode, so none runs on with a stale translation. Here: each
     * other vCPU has reached an instruction-block boundary and seen the generation, or is
     * not inside emu_run (it then sees the generation before its next instruction). The
     * list is copied under the lock and waited on without it (vCPUs live as long as the VM). */
    struct abi_vm *vm = v->vm;
    struct emu_vcpu *wait[ABI_MAX_VCPUS];
    unsigned n = 0;
    pthread_mutex_lock(&vm->lock);
    for (unsigned i = 0; i < vm->nvcpus; i++)
        if (vm->vcpus[i] != v && vm->vcpus[i]->emu)
            wait[n++] = vm->vcpus[i]->emu;
    pthread_mutex_unlock(&vm->lock);
    for (unsigned i = 0; i < n; i++)
        emu_wait_generation_seen(wait[i], gen);
    return HV_STATUS_SUCCESS | ((uint64_t)hc->rep_cnt << HC_REP_COMP_SHIFT);
}

/* kvm_hv_hypercall_set_result(): RAX, or EDX:EAX outside 64-bit mode */
static void set_result(struct abi_vcpu *v, uint64_t result)
{
    struct cpu *c = emu_cpu(v->emu);
    if (is_64bit(c)) {
        c->gpr[EMU_RAX] = result;
    } else {
        c->gpr[EMU_RDX] = result >> 32;
        c->gpr[EMU_RAX] = result & 0xffffffffu;
    }
}

/* The hypercall faults: RIP back on the VMCALL/VMMCALL (emu stepped past its 3 bytes). */
static int raise_ud(struct abi_vcpu *v)
{
    emu_cpu(v->emu)->rip -= 3;
    emu_queue_exception(v->emu, 6 /* #UD */, false, 0);
    return 1;
}

int abi_hv_hypercall(struct abi_vcpu *v)
{
    struct cpu *c = emu_cpu(v->emu);
    struct abi_hv_vcpu *h = v->hv;
    /* #UD from CPL > 0 and from real mode (TLFS) */
    if (c->cpl != 0 || !(c->cr0 & 1))
        return raise_ud(v);
    struct hcall hc;
    memset(&hc, 0, sizeof hc);
    if (is_64bit(c)) {
        hc.param = c->gpr[EMU_RCX];
        hc.ingpa = c->gpr[EMU_RDX];
        hc.outgpa = c->gpr[EMU_R8];
    } else {
        hc.param = (c->gpr[EMU_RDX] << 32) | (uint32_t)c->gpr[EMU_RAX];
        hc.ingpa = (c->gpr[EMU_RBX] << 32) | (uint32_t)c->gpr[EMU_RCX];
        hc.outgpa = (c->gpr[EMU_RDI] << 32) | (uint32_t)c->gpr[EMU_RSI];
    }
    hc.code = hc.param & 0xffff;
    hc.var_cnt = (uint16_t)((hc.param & HC_VARHEAD_MASK) >> HC_VARHEAD_SHIFT);
    hc.fast = hc.param & HC_FAST;
    hc.rep_cnt = (hc.param >> HC_REP_COMP_SHIFT) & 0xfff;
    hc.rep_idx = (hc.param >> HC_REP_START_SHIFT) & 0xfff;
    hc.rep = hc.rep_cnt || hc.rep_idx;

    uint64_t ret = HV_STATUS_SUCCESS;
    if (!access_ok(h, hc.code)) {
        ret = HV_STATUS_ACCESS_DENIED;
        goto complete;
    }
    if (hc.param & HC_RSVD_MASK) {
        ret = HV_STATUS_INVALID_HYPERCALL_INPUT;
        goto complete;
    }
    if (hc.fast && is_xmm_fast(hc.code)) {
        if (h->enforce_cpuid && !(h->cpuid.features_edx & HV_F_XMM_INPUT))
            return raise_ud(v);
        for (unsigned r = 0; r < HC_MAX_XMM; r++) {
            memcpy(&hc.xmm[2 * r], c->fpu.xmm[r], 8);
            memcpy(&hc.xmm[2 * r + 1], c->fpu.xmm[r] + 8, 8);
        }
    }
    switch (hc.code) {
    case HVCALL_NOTIFY_LONG_SPIN_WAIT:
        ret = hc.rep || hc.var_cnt ? HV_STATUS_INVALID_HYPERCALL_INPUT : HV_STATUS_SUCCESS;
        break;
    case HVCALL_SIGNAL_EVENT:
        if (hc.rep || hc.var_cnt) {
            ret = HV_STATUS_INVALID_HYPERCALL_INPUT;
            break;
        }
        if (!hc.fast) { /* kvm_hvcall_signal_event: the connection id is in memory */
            if ((hc.ingpa & 7) || (hc.ingpa & 0xfff) + 8 > 4096 ||
                abi_hv_guest_read(v->vm, hc.ingpa, &hc.ingpa, sizeof hc.ingpa)) {
                ret = HV_STATUS_INVALID_ALIGNMENT;
                break;
            }
        }
        if (hc.ingpa & 0xffff00000000ull) {
            ret = HV_STATUS_INVALID_PORT_ID;
            break;
        }
        if (hc.ingpa & ~(uint64_t)KVM_HYPERV_CONN_ID_MASK) {
            ret = HV_STATUS_INVALID_HYPERCALL_INPUT;
            break;
        }
        /* no KVM_HYPERV_EVENTFD: no connection is known in-kernel; maybe user space knows */
        /* fall through */
    case HVCALL_POST_MESSAGE:
        if (hc.rep || hc.var_cnt || !h->synic.active) {
            ret = HV_STATUS_INVALID_HYPERCALL_INPUT;
            break;
        }
        goto user_exit;
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST:
        if (hc.var_cnt) {
            ret = HV_STATUS_INVALID_HYPERCALL_INPUT;
            break;
        }
        /* fall through */
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX:
        if (!hc.rep_cnt || hc.rep_idx) {
            ret = HV_STATUS_INVALID_HYPERCALL_INPUT;
            break;
        }
        ret = flush_tlb(v, &hc);
        break;
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE:
        if (hc.var_cnt) {
            ret = HV_STATUS_INVALID_HYPERCALL_INPUT;
            break;
        }
        /* fall through */
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX:
        if (hc.rep) {
            ret = HV_STATUS_INVALID_HYPERCALL_INPUT;
            break;
        }
        ret = flush_tlb(v, &hc);
        break;
    case HVCALL_SEND_IPI:
        if (hc.var_cnt) {
            ret = HV_STATUS_INVALID_HYPERCALL_INPUT;
            break;
        }
        /* fall through */
    case HVCALL_SEND_IPI_EX:
        if (hc.rep) {
            ret = HV_STATUS_INVALID_HYPERCALL_INPUT;
            break;
        }
        ret = send_ipi(v, &hc);
        break;
    case HVCALL_POST_DEBUG_DATA:
    case HVCALL_RETRIEVE_DEBUG_DATA:
        if (hc.fast) {
            ret = HV_STATUS_INVALID_PARAMETER;
            break;
        }
        /* fall through */
    case HVCALL_RESET_DEBUG_SESSION: {
        if (!syndbg_enabled(h)) {
            ret = HV_STATUS_INVALID_HYPERCALL_CODE;
            break;
        }
        pthread_mutex_lock(&v->vm->hv->lock);
        bool hcalls = v->vm->hv->syndbg_options & SYNDBG_OPTION_USE_HCALLS;
        pthread_mutex_unlock(&v->vm->hv->lock);
        if (!hcalls) {
            ret = HV_STATUS_OPERATION_DENIED;
            break;
        }
        goto user_exit;
    }
    case HV_EXT_CALL_QUERY_CAPABILITIES ... HV_EXT_CALL_MAX:
        if (hc.fast) {
            ret = HV_STATUS_INVALID_PARAMETER;
            break;
        }
        goto user_exit;
    default:
        ret = HV_STATUS_INVALID_HYPERCALL_CODE;
        break;
    }
complete: {
    /* kvm_hv_hypercall_complete: an L2's TLB flush also reads the partition assist page,
     * whose lock count asks for the synthetic #VMEXIT after it */
    bool to_l1 = false;
    bool flush = hc.code == HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE ||
                 hc.code == HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST ||
                 hc.code == HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX ||
                 hc.code == HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX;
    if ((ret & 0xffff) == HV_STATUS_SUCCESS && flush && !emu_hv_l2_flush_lock(v->emu, &to_l1))
        ret = HV_STATUS_INVALID_HYPERCALL_INPUT;
    set_result(v, ret);
    if (to_l1)
        emu_hv_l2_flush_exit(v->emu);
    return 1;
}
user_exit: {
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_HYPERV;
    memset(&run->hyperv, 0, sizeof run->hyperv);
    run->hyperv.type = KVM_EXIT_HYPERV_HCALL;
    run->hyperv.u.hcall.input = hc.param;
    run->hyperv.u.hcall.params[0] = hc.ingpa;
    run->hyperv.u.hcall.params[1] = hc.outgpa;
    h->hcall_in_user = true;
    return 0;
}
}

/* kvm_hv_hypercall_complete_userspace(): the result user space left in the run page */
void abi_hv_complete_user(struct abi_vcpu *v)
{
    if (!v->hv->hcall_in_user)
        return;
    v->hv->hcall_in_user = false;
    set_result(v, v->run->hyperv.u.hcall.result);
}

bool abi_hv_take_exit(struct abi_vcpu *v)
{
    struct abi_hv_vcpu *h = v->hv;
    if (!h || !h->exit_pending)
        return false;
    h->exit_pending = false;
    v->run->exit_reason = KVM_EXIT_HYPERV;
    v->run->hyperv = h->exit;
    return true;
}
