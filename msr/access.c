/* msr/: the access paths. Host-initiated (KVM_GET/SET_MSRS) and guest-initiated
 * (intercepted RDMSR/WRMSR: filter -> in-kernel handler -> user-space deflection or #GP),
 * mirroring KVM's kvm_do_msr_access, kvm_{get,set}_msr_with_filter, kvm_msr_user_space
 * and kvm_emulate_{rd,wr}msr (arch/x86/kvm/x86.c). */
#include "msr/internal.h"
#include "msr/bitmap.h"
#include "msr/handlers.h"

int msr_do_access(struct msr_vcpu *v, uint32_t index, uint64_t *data, bool write, bool host)
{
    if (write && msr_is_xen_hypercall(v, index))
        return msr_set_xen_hypercall(v, index, *data, host);
    const struct msr_entry *e = msr_table_lookup(v->vm->vendor, index);
    int r;
    if (!e) {
        r = MSR_RET_UNSUPPORTED;
    } else {
        r = msr_gate_check(v, e->gate, host);
        if (r == MSR_RET_OK) {
            if (write)
                r = e->set ? e->set(v, index, *data, host) : MSR_RET_UNSUPPORTED;
            else
                r = e->get ? e->get(v, index, data, host) : MSR_RET_UNSUPPORTED;
        }
    }
    /* a failed read never leaks anything */
    if (r && !write)
        *data = 0;
    if (r != MSR_RET_UNSUPPORTED)
        return r;
    /* Userspace may read, and write 0 to, any MSR KVM advertises even if not fully
     * supported (for reads *data was zeroed above). */
    if (host && *data == 0 && msr_is_advertised(v->vm->vendor, index))
        return MSR_RET_OK;
    return r;
}

int msr_vcpu_get(struct msr_vcpu *v, uint32_t index, uint64_t *value)
{
    return msr_do_access(v, index, value, false, true);
}

/* kvm_is_immutable_feature_msr: the CPU-model MSRs (all feature MSRs but UCODE_REV) */
static bool immutable_feature_msr(enum msr_vendor vendor, uint32_t index)
{
    const struct msr_entry *e = msr_table_lookup(vendor, index);
    return ((e && (e->flags & MSR_F_FEATURE)) ||
            (index >= MSR_IA32_VMX_BASIC && index <= MSR_IA32_VMX_VMFUNC)) &&
           index != MSR_IA32_UCODE_REV;
}

int msr_vcpu_set(struct msr_vcpu *v, uint32_t index, uint64_t value)
{
    /* do_set_msr(): after KVM_RUN, a feature MSR may only be "written" with its value */
    if (v->has_run && immutable_feature_msr(v->vm->vendor, index)) {
        uint64_t cur;
        if (msr_do_access(v, index, &cur, false, true) || cur != value)
            return MSR_RET_INVAL;
    }
    return msr_do_access(v, index, &value, true, true);
}

/* KVM's kvm_msr_reason(): the exit reason for a failed guest access. */
static uint32_t exit_reason_of(int r)
{
    switch (r) {
    case MSR_RET_UNSUPPORTED: return KVM_MSR_EXIT_REASON_UNKNOWN;
    case MSR_RET_FILTERED: return KVM_MSR_EXIT_REASON_FILTER;
    default: return KVM_MSR_EXIT_REASON_INVAL;
    }
}

static unsigned reason_slot(uint32_t reason)
{
    return reason == KVM_MSR_EXIT_REASON_INVAL ? 0 : reason == KVM_MSR_EXIT_REASON_UNKNOWN ? 1 : 2;
}

/* Common tail: a failure either deflects to user space (reason in the VM's mask) or #GP. */
static enum emu_msr_result guest_result(struct msr_vcpu *v, int r, uint32_t *reason)
{
    if (r == MSR_RET_OK)
        return EMU_MSR_OK;
    uint32_t why = exit_reason_of(r);
    if (r == MSR_RET_FILTERED)
        v->stats.filter_denials++;
    if (atomic_load_explicit(&v->vm->user_space_msr_mask, memory_order_relaxed) & why) {
        *reason = why;
        v->stats.exits[reason_slot(why)]++;
        return EMU_MSR_EXIT;
    }
    v->stats.gp_injected++;
    return EMU_MSR_GP;
}

/* A fault on a passed-through MSR is raised by the CPU itself: KVM never sees it, so it is
 * always a #GP, never a user-space exit. */
static enum emu_msr_result passthrough_result(struct msr_vcpu *v, enum emu_msr_result r)
{
    if (r != EMU_MSR_OK)
        v->stats.gp_injected++;
    return r;
}

static enum emu_msr_result guest_rdmsr(void *ctx, struct cpu *cpu, uint32_t index,
                                       uint64_t *value, uint32_t *reason)
{
    struct msr_vcpu *v = ctx;
    msr_vcpu_sync(v);
    /* The hardware gate, in case the caller did not consult it (same result either way). */
    if (!msr_bitmap_intercepted(v, index, false))
        return passthrough_result(v, msr_passthrough_read(v, cpu, index, value));
    v->stats.rdmsr_intercepts++;
    int r;
    if (!msr_filter_allows(v->filter, index, KVM_MSR_FILTER_READ)) {
        *value = 0;
        r = MSR_RET_FILTERED;
    } else {
        r = msr_do_access(v, index, value, false, false);
    }
    return guest_result(v, r, reason);
}

static enum emu_msr_result guest_wrmsr(void *ctx, struct cpu *cpu, uint32_t index,
                                       uint64_t value, uint32_t *reason)
{
    struct msr_vcpu *v = ctx;
    msr_vcpu_sync(v);
    if (!msr_bitmap_intercepted(v, index, true))
        return passthrough_result(v, msr_passthrough_write(v, cpu, index, value));
    v->stats.wrmsr_intercepts++;
    int r;
    if (!msr_filter_allows(v->filter, index, KVM_MSR_FILTER_WRITE))
        r = MSR_RET_FILTERED;
    else
        r = msr_do_access(v, index, &value, true, false);
    return guest_result(v, r, reason);
}

/* L0's "hardware" MSR bitmap passes the access through (msr/bitmap.h) */
static bool guest_passthrough(void *ctx, uint32_t index, bool write)
{
    return !msr_bitmap_intercepted(ctx, index, write);
}

static int guest_rdpmc(void *ctx, struct cpu *cpu, uint32_t ecx, uint64_t *value)
{
    (void)cpu;
    return msr_pmu_rdpmc(ctx, ecx, value);
}

const struct emu_msr_ops msr_emu_ops = {
    .rdmsr = guest_rdmsr,
    .wrmsr = guest_wrmsr,
    .passthrough = guest_passthrough,
    .rdpmc = guest_rdpmc,
    .ctx = NULL,
};
