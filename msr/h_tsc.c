/* msr/: IA32_TSC, IA32_TSC_ADJUST, IA32_TSC_DEADLINE (KVM x86.c: MSR_IA32_TSC,
 * MSR_IA32_TSC_ADJUST cases; lapic.c TSC-deadline). Guest TSC = scaled host TSC + offset
 * (emu/cpu.h emu_cpu_set_l1_tsc). */
#include <time.h>

#include "msr/internal.h"
#include "msr/bitmap.h"

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The guest TSC's rate (KVM virtual_tsc_khz); a struct cpu whose rate abi never set runs
 * at the VM's calibrated one. */
uint32_t msr_vcpu_tsc_khz(const struct msr_vcpu *v)
{
    return v->cpu->tsc_khz ? v->cpu->tsc_khz : (uint32_t)v->vm->tsc_khz;
}

static uint64_t ns_to_cycles(const struct msr_vcpu *v, uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * msr_vcpu_tsc_khz(v) / 1000000u);
}

/* __kvm_synchronize_tsc (caller holds vm->lock) */
static void sync_tsc_locked(struct msr_vcpu *v, uint64_t offset, uint64_t tsc, uint64_t ns,
                            bool matched)
{
    struct msr_vm *vm = v->vm;
    vm->last_tsc_nsec = ns;
    vm->last_tsc_write = tsc;
    vm->last_tsc_khz = msr_vcpu_tsc_khz(v);
    vm->last_tsc_offset = offset;
    emu_cpu_set_l1_tsc(v->cpu, offset, v->cpu->l1_tsc_ratio); /* kvm_vcpu_write_tsc_offset */
    if (!matched)
        vm->cur_tsc_offset = offset; /* a new generation */
}

/* kvm_synchronize_tsc (x86.c): a host-side TSC write, or vCPU creation (data 0). The
 * offset is L1's (kvm_compute_l1_tsc_offset). Creation and explicit zero writes always
 * synchronise; another user write does when it lands within one second of virtual cycles
 * of where the last write's TSC would be now, and only once user space has set a TSC.
 * Synchronising at the same rate takes the current generation's offset (the host TSC is
 * stable), so all vCPUs of a VM share one TSC. */
void msr_tsc_host_write(struct msr_vcpu *v, uint64_t data, bool creation)
{
    struct msr_vm *vm = v->vm;
    uint32_t khz = msr_vcpu_tsc_khz(v);
    pthread_mutex_lock(&vm->lock);
    uint64_t offset = data - emu_scale_tsc(msr_tsc_counter(v), v->cpu->l1_tsc_ratio);
    uint64_t ns = mono_ns();
    uint64_t elapsed = ns - vm->last_tsc_nsec;
    bool synchronizing = false, matched = false;
    if (khz) {
        if (data == 0) {
            synchronizing = true;
        } else if (vm->user_set_tsc) {
            uint64_t exp = vm->last_tsc_write + ns_to_cycles(v, elapsed), hz = (uint64_t)khz * 1000;
            synchronizing = data < exp + hz && data + hz > exp;
        }
    }
    if (!creation)
        vm->user_set_tsc = true;
    if (synchronizing && khz == vm->last_tsc_khz) {
        offset = vm->cur_tsc_offset;
        matched = true;
    }
    sync_tsc_locked(v, offset, data, ns, matched);
    pthread_mutex_unlock(&vm->lock);
}

uint64_t msr_tsc_get_offset(struct msr_vcpu *v)
{
    return emu_cpu_l1_tsc_offset(v->cpu); /* L1's (l1_tsc_offset) */
}

/* kvm_arch_tsc_set_attr KVM_VCPU_TSC_OFFSET */
void msr_tsc_set_offset(struct msr_vcpu *v, uint64_t offset)
{
    struct msr_vm *vm = v->vm;
    uint32_t khz = msr_vcpu_tsc_khz(v);
    pthread_mutex_lock(&vm->lock);
    bool matched = khz && vm->last_tsc_khz == khz && vm->last_tsc_offset == offset;
    uint64_t tsc = emu_scale_tsc(msr_tsc_counter(v), v->cpu->l1_tsc_ratio) + offset;
    vm->user_set_tsc = true;
    sync_tsc_locked(v, offset, tsc, mono_ns(), matched);
    pthread_mutex_unlock(&vm->lock);
    msr_vcpu_update_kvmclock(v);
}

int msr_get_tsc(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i;
    /* host reads see L1's TSC, guest reads the running level's (kvm_get_msr_common) */
    *val = host ? msr_l1_tsc(v, v->cpu) : msr_guest_tsc(v, v->cpu);
    return MSR_RET_OK;
}

int msr_set_tsc(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    if (host) {
        /* kvm_synchronize_tsc: userspace sets the TSC; TSC_ADJUST is untouched */
        msr_tsc_host_write(v, val, false);
    } else {
        /* a guest write sets L1's TSC, from L2 too (kvm_set_msr_common: adj =
         * kvm_compute_l1_tsc_offset(data) - l1_tsc_offset); the delta also lands in
         * TSC_ADJUST (SDM vol.3 18.17.3) */
        uint64_t adj = val - msr_l1_tsc(v, v->cpu);
        emu_cpu_set_l1_tsc(v->cpu, emu_cpu_l1_tsc_offset(v->cpu) + adj, v->cpu->l1_tsc_ratio);
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
    if (!host) { /* adjust_tsc_offset_guest: L1's offset */
        emu_cpu_set_l1_tsc(v->cpu, emu_cpu_l1_tsc_offset(v->cpu) + (val - v->k.tsc_adjust),
                           v->cpu->l1_tsc_ratio);
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
