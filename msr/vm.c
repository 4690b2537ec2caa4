/* msr/: per-VM MSR state: creation, KVM_CAP_X86_USER_SPACE_MSR, KVM_CAP_MSR_PLATFORM_INFO. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "msr/internal.h"

const struct msr_stat_field msr_stat_fields[] = {
    {"msr_exits_inval", offsetof(struct msr_stats, exits[0])},
    {"msr_exits_unknown", offsetof(struct msr_stats, exits[1])},
    {"msr_exits_filter", offsetof(struct msr_stats, exits[2])},
    {"msr_rdmsr_intercepts", offsetof(struct msr_stats, rdmsr_intercepts)},
    {"msr_wrmsr_intercepts", offsetof(struct msr_stats, wrmsr_intercepts)},
    {"msr_passthrough_hits", offsetof(struct msr_stats, passthrough_hits)},
    {"msr_gp_injected", offsetof(struct msr_stats, gp_injected)},
    {"msr_filter_denials", offsetof(struct msr_stats, filter_denials)},
    {"msr_bitmap_recomputes", offsetof(struct msr_stats, bitmap_recomputes)},
};
const unsigned msr_stat_nfields = sizeof(msr_stat_fields) / sizeof(msr_stat_fields[0]);
_Static_assert(sizeof(msr_stat_fields) / sizeof(msr_stat_fields[0]) ==
                   sizeof(struct msr_stats) / sizeof(uint64_t),
               "every msr_stats counter has a name");

#define USER_SPACE_MSR_VALID \
    (KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_FILTER)

static uint64_t now_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One (CLOCK_MONOTONIC_RAW ns, TSC) sample whose TSC is bracketed tightly around the clock
 * read: a preemption in between would skew the rate (the best of a few tries). */
static void clock_tsc_sample(uint64_t *ns, uint64_t *tsc)
{
    uint64_t best = UINT64_MAX;
    *ns = *tsc = 0;
    for (int i = 0; i < 8; i++) {
        uint64_t a = __builtin_ia32_rdtsc();
        uint64_t t = now_ns(CLOCK_MONOTONIC_RAW);
        uint64_t b = __builtin_ia32_rdtsc();
        if (b - a < best) {
            best = b - a;
            *ns = t;
            *tsc = a + (b - a) / 2;
        }
    }
}

/* Host TSC frequency (kHz) for kvmclock: measured over ~2 ms against CLOCK_MONOTONIC_RAW.
 * Guests compare it with elapsed kvmclock/Hyper-V reference time to 1% (hyperv_clock), so
 * both end points are tight samples. */
static uint64_t calibrate_tsc_khz(void)
{
    uint64_t t0 = 0, c0 = 0, t1 = 0, c1 = 0;
    clock_tsc_sample(&t0, &c0);
    do
        clock_tsc_sample(&t1, &c1);
    while (t1 - t0 < 2000000);
    return (c1 - c0) * 1000000ull / (t1 - t0); /* ticks per ns * 10^6 = ticks per ms */
}

int msr_vm_init(struct msr_vm *vm, enum msr_vendor vendor)
{
    memset(vm, 0, sizeof(*vm));
    vm->vendor = vendor;
    atomic_init(&vm->filter, NULL);
    atomic_init(&vm->filter_gen, 0);
    atomic_init(&vm->user_space_msr_mask, 0);
    atomic_init(&vm->pv_wall_clock, 0);
    vm->platform_info_readable = true; /* kvm_arch_init_vm: guest_can_read_msr_platform_info */
    vm->boot_ns_at_create = now_ns(CLOCK_BOOTTIME);
    vm->tsc_khz = calibrate_tsc_khz();
    return pthread_mutex_init(&vm->lock, NULL) ? -ENOMEM : 0;
}

void msr_vm_destroy(struct msr_vm *vm)
{
    msr_filter_free_all(vm);
    msr_vm_free_pmu_filters(vm);
    pthread_mutex_destroy(&vm->lock);
}

void msr_vm_set_guest_memory(struct msr_vm *vm, msr_guest_write_fn w, msr_guest_read_fn r, void *ctx)
{
    vm->guest_write = w;
    vm->guest_read = r;
    vm->guest_mem_ctx = ctx;
}

int msr_vm_enable_user_space_msr(struct msr_vm *vm, uint64_t mask)
{
    if (mask & ~(uint64_t)USER_SPACE_MSR_VALID)
        return -EINVAL;
    atomic_store(&vm->user_space_msr_mask, (uint32_t)mask);
    return 0;
}

int msr_vm_enable_platform_info(struct msr_vm *vm, uint64_t enable)
{
    vm->platform_info_readable = enable != 0;
    return 0;
}
