/* msr/: KVM paravirtual MSRs (Documentation/virt/kvm/x86/msr.rst; x86.c kvm_write_wall_clock,
 * kvm_write_system_time, kvm_pv_enable_async_pf(_int); lapic.c kvm_lapic_set_pv_eoi).
 * The feature gate (KVM_CPUID_FEATURES, enforced with KVM_CAP_ENFORCE_PV_FEATURE_CPUID) is
 * applied by the dispatcher and yields "unsupported" (exit reason UNKNOWN), as in 6.12. */
#include <string.h>
#include <time.h>

#include <errno.h>

#include "msr/internal.h"
#include "msr/bitmap.h"

#define KVM_MSR_ENABLED 1ull
#define ASYNC_PF_DELIVERY_AS_PF_VMEXIT (1ull << 2)
#define ASYNC_PF_DELIVERY_AS_INT (1ull << 3)
#define KVM_FEATURE_ASYNC_PF_VMEXIT 10
#define KVM_FEATURE_ASYNC_PF_INT 14
#define STEAL_RESERVED_MASK (((1ull << 5) - 1) << 1) /* bits 5:1 (KVM_STEAL_ALIGNMENT_BITS 5): 64-byte aligned, bit 0 = enable */

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool pv_has(const struct msr_vcpu *v, unsigned bit)
{
    return !v->enforce_pv_cpuid || (v->feat.kvm_features & (1u << bit));
}

static bool lapic_in_kernel(const struct msr_vcpu *v)
{
    return v->apic.read != NULL;
}

/* Guest memory helpers: failures are silent, as kvm_write_guest failures are in KVM. */
static int gwrite(struct msr_vcpu *v, uint64_t gpa, const void *src, size_t n)
{
    return v->vm->guest_write ? v->vm->guest_write(v->vm->guest_mem_ctx, gpa, src, n) : -1;
}
static int gread(struct msr_vcpu *v, uint64_t gpa, void *dst, size_t n)
{
    return v->vm->guest_read ? v->vm->guest_read(v->vm->guest_mem_ctx, gpa, dst, n) : -1;
}

/* struct pvclock_wall_clock { u32 version, sec, nsec; } — version odd while updating. */
static void write_wall_clock(struct msr_vcpu *v, uint64_t gpa)
{
    uint32_t version;
    if (gread(v, gpa, &version, 4))
        return;
    if (version & 1)
        version++;
    version++;
    if (gwrite(v, gpa, &version, 4))
        return;
    /* wall time at which kvmclock read 0 */
    uint64_t kvmclock = clock_ns(CLOCK_BOOTTIME) - v->vm->boot_ns_at_create;
    uint64_t epoch = clock_ns(CLOCK_REALTIME) - kvmclock;
    uint32_t wc[3] = {version, (uint32_t)(epoch / 1000000000ull), (uint32_t)(epoch % 1000000000ull)};
    gwrite(v, gpa, wc, sizeof(wc));
    version++;
    gwrite(v, gpa, &version, 4);
}

int msr_get_pv_wall_clock(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = atomic_load(&v->vm->pv_wall_clock);
    return MSR_RET_OK;
}

int msr_set_pv_wall_clock(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    atomic_store(&v->vm->pv_wall_clock, val);
    write_wall_clock(v, val);
    return MSR_RET_OK;
}


/* kvm_guest_time_update's hv_clock: the fields every pvclock copy gets (kvmclock page,
 * Xen vcpu_info/vcpu_time_info), version left to the writer. false without a TSC rate. */
bool msr_vcpu_pvclock(struct msr_vcpu *v, struct msr_pvclock *t)
{
    if (!v->vm->tsc_khz)
        return false;
    /* ns = ((tsc_delta << shift) * mul) >> 32 ; pick shift so mul fits in 32 bits. The
     * rate is L1's: the host's scaled by L1's ratio (kvm_guest_time_update tgt_tsc_khz) */
    uint64_t khz = emu_scale_tsc(v->vm->tsc_khz, v->cpu->l1_tsc_ratio);
    if (!khz)
        return false;
    int shift = 0;
    uint64_t mul = (1000000ull << 32) / khz; /* 2^32 * ns per tick */
    while (mul >= (1ull << 32)) { mul >>= 1; shift++; }
    while (mul < (1ull << 31) && shift > -31) { mul <<= 1; shift--; }
    t->tsc_timestamp = msr_l1_tsc(v, v->cpu); /* kvm_read_l1_tsc */
    t->system_time = clock_ns(CLOCK_BOOTTIME) - v->vm->boot_ns_at_create;
    t->mul = (uint32_t)mul;
    t->shift = (int8_t)shift;
    /* PVCLOCK_TSC_STABLE_BIT: all vCPUs share one synchronised TSC (msr_tsc_host_write), the
     * situation in which KVM's master clock sets it */
    t->flags = 1;
    return true;
}

void msr_vcpu_update_kvmclock(struct msr_vcpu *v)
{
    if (!v->k.pv_time_active || !v->vm->tsc_khz) /* kvm_guest_time_update: pv_time.active */
        return;
    uint64_t gpa = v->k.pv_time_gpa;
    struct msr_pvclock t;
    if (gread(v, gpa, &t, sizeof(t)))
        return;
    uint32_t version = (t.version + 1) | 1; /* odd: update in progress */
    t.version = version;
    if (gwrite(v, gpa, &t, 4))
        return;
    msr_vcpu_pvclock(v, &t);
    if (v->k.pv_guest_stopped) { /* KVM_KVMCLOCK_CTRL: PVCLOCK_GUEST_STOPPED, reported once */
        t.flags |= 2;
        v->k.pv_guest_stopped = false;
    }
    gwrite(v, gpa, &t, sizeof(t));
    version++;
    gwrite(v, gpa, &version, 4);
}

/* KVM_KVMCLOCK_CTRL (x86.c kvm_set_guest_paused): -EINVAL unless kvmclock is enabled;
 * the next clock update tells the guest it was stopped (soft-lockup watchdogs). */
int msr_vcpu_kvmclock_paused(struct msr_vcpu *v)
{
    if (!v->k.pv_time_active)
        return -EINVAL;
    v->k.pv_guest_stopped = true;
    msr_vcpu_update_kvmclock(v);
    return 0;
}

int msr_get_pv_system_time(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.pv_system_time;
    return MSR_RET_OK;
}

int msr_set_pv_system_time(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    /* x86.c kvm_write_system_time: the MSR value is stored whatever it is; bit 0 activates
     * the pv_time cache at the GPA, clear deactivates it. kvm_gpc_activate refuses a
     * 32-byte pvclock_vcpu_time_info that would cross a page (pfncache.c
     * kvm_gpc_is_valid_len) before touching the cache: an active cache keeps its old GPA,
     * an inactive one stays inactive (so KVM_KVMCLOCK_CTRL is then EINVAL). */
    v->k.pv_system_time = val;
    uint64_t gpa = val & ~1ull;
    if (!(val & KVM_MSR_ENABLED)) {
        v->k.pv_time_active = false;
    } else if ((gpa & 0xfff) + sizeof(struct msr_pvclock) <= 0x1000) {
        v->k.pv_time_active = true;
        v->k.pv_time_gpa = gpa;
    }
    msr_vcpu_update_kvmclock(v);
    return MSR_RET_OK;
}

int msr_get_pv_async_pf(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)host;
    switch (i) {
    case MSR_KVM_ASYNC_PF_EN: *val = v->k.pv_async_pf_en; break;
    case MSR_KVM_ASYNC_PF_INT: *val = v->k.pv_async_pf_int; break;
    default: *val = 0; break; /* ACK reads 0 */
    }
    return MSR_RET_OK;
}

int msr_set_pv_async_pf(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)host;
    if (i == MSR_KVM_ASYNC_PF_ACK) {
        if (val & 1)
            v->k.pv_async_pf_ack_pending = 0;
        return MSR_RET_OK;
    }
    if (i == MSR_KVM_ASYNC_PF_INT) {
        if ((val >> 8) || !lapic_in_kernel(v))
            return MSR_RET_INVAL;
        v->k.pv_async_pf_int = val;
        return MSR_RET_OK;
    }
    /* ASYNC_PF_EN: bits 5:4 reserved; delivery modes need their feature bits */
    if (val & 0x30)
        return MSR_RET_INVAL;
    if (!pv_has(v, KVM_FEATURE_ASYNC_PF_VMEXIT) && (val & ASYNC_PF_DELIVERY_AS_PF_VMEXIT))
        return MSR_RET_INVAL;
    if (!pv_has(v, KVM_FEATURE_ASYNC_PF_INT) && (val & ASYNC_PF_DELIVERY_AS_INT))
        return MSR_RET_INVAL;
    if (!lapic_in_kernel(v))
        return val ? MSR_RET_INVAL : MSR_RET_OK;
    if ((val & KVM_MSR_ENABLED) && (val & ASYNC_PF_DELIVERY_AS_INT)) {
        uint64_t probe;
        if (gread(v, val & ~0x3full, &probe, sizeof(probe))) /* gfn_to_hva_cache_init */
            return MSR_RET_INVAL;
    }
    v->k.pv_async_pf_en = val;
    return MSR_RET_OK;
}

int msr_get_pv_steal_time(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.pv_steal_time;
    return MSR_RET_OK;
}

int msr_set_pv_steal_time(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    if (val & STEAL_RESERVED_MASK)
        return MSR_RET_INVAL;
    v->k.pv_steal_time = val;
    return MSR_RET_OK;
}

/* struct kvm_steal_time (uapi asm/kvm_para.h): steal, version, flags, preempted, pads */
struct steal_time {
    uint64_t steal;
    uint32_t version, flags;
    uint8_t preempted, u8_pad[3];
    uint32_t pad[11];
};
_Static_assert(sizeof(struct steal_time) == 64, "kvm_steal_time is 64 bytes");

/* 6.12 x86.c record_steal_time (3249-3341), at every KVM_RUN (kvm_arch_vcpu_load makes
 * KVM_REQ_STEAL_UPDATE): the guest-visible steal grows by the time the vCPU's thread
 * waited on a run queue since the last update (sched_info.run_delay, read by abi/ from
 * /proc/thread-self/schedstat), inside an odd/even version pair; preempted is cleared.
 * softkvm never sets preempted (KVM does when the scheduler takes the CPU from a vCPU
 * inside the guest), so guests' vcpu_is_preempted() says no. */
void msr_vcpu_record_steal_time(struct msr_vcpu *v, uint64_t run_delay_ns)
{
    uint64_t msr = v->k.pv_steal_time;
    if (!(msr & KVM_MSR_ENABLED))
        return;
    uint64_t gpa = msr & ~0x3full;
    struct steal_time st;
    if (gread(v, gpa, &st, sizeof st))
        return;
    st.preempted = 0;
    if (st.version & 1)
        st.version++; /* first write: the guest's memory held junk */
    st.version++;
    if (gwrite(v, gpa, &st, sizeof st))
        return;
    st.steal += run_delay_ns - v->k.pv_last_steal;
    v->k.pv_last_steal = run_delay_ns;
    gwrite(v, gpa, &st.steal, sizeof st.steal);
    st.version++;
    gwrite(v, gpa + 8, &st.version, sizeof st.version);
}

int msr_get_pv_eoi(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.pv_eoi_en;
    return MSR_RET_OK;
}

int msr_set_pv_eoi(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    uint64_t addr = val & ~KVM_MSR_ENABLED;
    if (addr & 3)
        return MSR_RET_INVAL;
    if (val & KVM_MSR_ENABLED) {
        uint8_t probe;
        if (gread(v, addr, &probe, 1))
            return MSR_RET_INVAL;
    }
    v->k.pv_eoi_en = val;
    return MSR_RET_OK;
}

int msr_get_pv_poll(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->k.pv_poll_control;
    return MSR_RET_OK;
}

int msr_set_pv_poll(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    if (val & ~1ull) /* only the enable bit */
        return MSR_RET_INVAL;
    v->k.pv_poll_control = val;
    return MSR_RET_OK;
}
