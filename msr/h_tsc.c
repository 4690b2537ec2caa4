/* msr/: IA32_TSC, IA32_TSC_ADJUST, IA32_TSC_DEADLINE (KVM x86.c: MSR_IA32_TSC,
 * MSR_IA32_TSC_ADJUST cases; lapic.c TSC-deadline). Guest TSC = host TSC + cpu->tsc_offset. */
#include <time.h>

#include "msr/internal.h"
#include "msr/bitmap.h"

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* kvm_synchronize_tsc(): a host-side TSC write (or vCPU creation, which writes 0) that lands
 * within one second's worth of ticks of where the previous write's TSC would be now is taken
 * as "meant to be in sync": the vCPU gets the extrapolated value, so all vCPUs of a VM share
 * one TSC. Otherwise the written value starts a new synchronisation point. */
void msr_tsc_host_write(struct msr_vcpu *v, uint64_t data, bool creation)
{
    struct msr_vm *vm = v->vm;
    uint64_t khz = vm->tsc_khz ? vm->tsc_khz : 1000000;
    uint64_t hz = khz * 1000;
    pthread_mutex_lock(&vm->lock);
    uint64_t now = mono_ns();
    if (vm->tsc_synced) {
        uint64_t elapsed = now - vm->tsc_sync_ns;
        uint64_t expect = vm->tsc_sync_value + (uint64_t)((unsigned __int128)elapsed * khz / 1000000u);
        /* creation and explicit zero writes always synchronise (KVM's "data == 0" rule) */
        if (creation || data == 0 || (data < expect + hz && data + hz > expect))
            data = expect;
    }
    vm->tsc_synced = true;
    vm->tsc_sync_value = data;
    vm->tsc_sync_ns = now;
    pthread_mutex_unlock(&vm->lock);
    /* the TSC user space sets is L1's (kvm_synchronize_tsc sets l1_tsc_offset) */
    v->cpu->tsc_offset = data - msr_tsc_counter(v) + v->cpu->l2_tsc_offset;
}

uint64_t msr_tsc_get_offset(struct msr_vcpu *v)
{
    return v->cpu->tsc_offset - v->cpu->l2_tsc_offset; /* L1's (l1_tsc_offset) */
}

void msr_tsc_set_offset(struct msr_vcpu *v, uint64_t offset)
{
    struct msr_vm *vm = v->vm;
    pthread_mutex_lock(&vm->lock);
    vm->tsc_synced = true;
    vm->tsc_sync_value = msr_tsc_counter(v) + offset;
    vm->tsc_sync_ns = mono_ns();
    pthread_mutex_unlock(&vm->lock);
    v->cpu->tsc_offset = offset + v->cpu->l2_tsc_offset; /* L1's; a VMX L2 keeps its own on top */
    msr_vcpu_update_kvmclock(v);
}

int msr_get_tsc(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i;
    /* host reads see L1's TSC, guest reads the running level's (kvm_get_msr_common) */
    *val = msr_guest_tsc(v, v->cpu) - (host ? v->cpu->l2_tsc_offset : 0);
    return MSR_RET_OK;
}

int msr_set_tsc(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    /* a guest write sets L1's TSC, from L2 too (kvm_set_msr_common computes the new L1
     * offset, kvm_compute_l1_tsc_offset); l2_tsc_offset is 0 outside a VMX L2 */
    uint64_t now = msr_guest_tsc(v, v->cpu) - v->cpu->l2_tsc_offset;
    if (host) {
        /* kvm_synchronize_tsc: userspace sets the TSC; TSC_ADJUST is untouched */
        msr_tsc_host_write(v, val, false);
    } else {
        /* guest write: the delta also lands in TSC_ADJUST (SDM vol.3 18.17.3) */
        uint64_t adj = val - now;
        v->cpu->tsc_offset += adj;
        v->k.tsc_adjust += adj;
    }
    msr_vcpu_update_kvmclock(v); /* KVM_REQ_CLOCK_UPDATE: keep pvclock consistent */
    return MSR_RET_OK;
}

int msr_get_tsc_adjust(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.tsc_adjust;
    return MSR_RET_OK;
}

int msr_set_tsc_adjust(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    /* KVM silently ignores the write when CPUID lacks TSC_ADJUST (no fault) */
    if (!v->feat.tsc_adjust)
        return MSR_RET_OK;
    if (!host) {
        v->cpu->tsc_offset += val - v->k.tsc_adjust;
        msr_vcpu_update_kvmclock(v);
    }
    v->k.tsc_adjust = val;
    return MSR_RET_OK;
}

int msr_get_tsc_deadline(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->apic.tscdeadline_get ? v->apic.tscdeadline_get(v->apic.ctx) : 0;
    return MSR_RET_OK;
}

int msr_set_tsc_deadline(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    if (v->apic.tscdeadline_set)
        v->apic.tscdeadline_set(v->apic.ctx, val);
    return MSR_RET_OK;
}
