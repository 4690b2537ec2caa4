/* msr/: IA32_TSC, IA32_TSC_ADJUST, IA32_TSC_DEADLINE (KVM x86.c: MSR_IA32_TSC,
 * MSR_IA32_TSC_ADJUST cases; lapic.c TSC-deadline). Guest TSC = host TSC + cpu->tsc_offset. */
#include "msr/internal.h"
#include "msr/bitmap.h"

int msr_get_tsc(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host; /* no nesting: L1 offset == current offset */
    *val = msr_guest_tsc(v, v->cpu);
    return MSR_RET_OK;
}

int msr_set_tsc(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    uint64_t now = msr_guest_tsc(v, v->cpu);
    if (host) {
        /* kvm_synchronize_tsc: userspace sets the TSC; TSC_ADJUST is untouched */
        v->cpu->tsc_offset += val - now;
    } else {
        /* guest write: the delta also lands in TSC_ADJUST (SDM vol.3 18.17.3) */
        uint64_t adj = val - now;
        v->cpu->tsc_offset += adj;
        v->k.tsc_adjust += adj;
    }
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
    if (!host)
        v->cpu->tsc_offset += val - v->k.tsc_adjust;
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
