/* abi/lapic_timer.c: the local APIC timer (SDM vol.3 10.5.4): one-shot,
 * periodic and TSC-deadline modes, divide configuration, current count, and
 * the VM's timer thread that fires expiries into IRR and wakes vCPUs.
 * Timing uses the host CLOCK_MONOTONIC; the APIC bus runs at
 * chip->bus_cycle_ns per tick (KVM_CAP_X86_APIC_BUS_CYCLES_NS). */
#include <errno.h>
#include <time.h>

#include "abi/irqchip_internal.h"

/* KVM's min_timer_period_us default: periodic timers faster than this are
 * stretched (limit_periodic_timer_frequency). */
#define MIN_PERIODIC_NS 200000ull

uint64_t irqchip_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t divide_from_tdcr(uint32_t tdcr)
{
    /* TDCR bits 3,1:0 encode divide-by 2,4,...,128,1 (SDM figure 10-10). */
    uint32_t v = ((tdcr & 3) | ((tdcr & 8) >> 1)) + 1;
    return 1u << (v & 7);
}

static uint64_t tick_ns(const struct abi_lapic *l)
{
    return l->chip->bus_cycle_ns * l->divide;
}

/* The mode in effect: LVTT bits 18:17 limited to what the CPU model has
 * (KVM apic_update_lvtt uses timer_mode_mask, also after a raw SET_LAPIC). */
static uint32_t lvtt_mode(const struct abi_lapic *l)
{
    return lapic_reg(l, APIC_REG_LVTT) & l->timer_mode_mask;
}

static void rearm_thread(struct abi_lapic *l)
{
    irqchip_timer_rearm(l->chip);
}

/* Period from TMICT in the current mode; timer_lock held. */
static void compute_period(struct abi_lapic *l)
{
    uint64_t tmict = lapic_reg(l, APIC_REG_TMICT);
    /* Only one-shot and periodic count TMICT; mode 3 is reserved (no timer). */
    if (l->timer_mode != APIC_TIMER_ONESHOT && l->timer_mode != APIC_TIMER_PERIODIC)
        tmict = 0;
    l->period_ns = tmict * tick_ns(l);
    if (l->timer_mode == APIC_TIMER_PERIODIC && l->period_ns && l->period_ns < MIN_PERIODIC_NS)
        l->period_ns = MIN_PERIODIC_NS;
}

void lapic_timer_reset(struct abi_lapic *l)
{
    pthread_mutex_lock(&l->timer_lock);
    l->timer_mode = APIC_TIMER_ONESHOT;
    l->divide = divide_from_tdcr(lapic_reg(l, APIC_REG_TDCR));
    l->period_ns = 0;
    l->expire_ns = 0;
    l->tsc_deadline = 0;
    pthread_mutex_unlock(&l->timer_lock);
}

void lapic_timer_stop(struct abi_lapic *l)
{
    pthread_mutex_lock(&l->timer_lock);
    l->expire_ns = 0;
    l->period_ns = 0;
    pthread_mutex_unlock(&l->timer_lock);
}

void lapic_timer_lvtt_written(struct abi_lapic *l)
{
    pthread_mutex_lock(&l->timer_lock);
    uint32_t mode = lvtt_mode(l);
    if (mode != l->timer_mode) {
        /* KVM apic_update_lvtt: entering or leaving TSC-deadline mode stops
         * the timer and clears TMICT; one-shot <-> periodic keeps it running. */
        if ((mode == APIC_TIMER_TSCDEADLINE) != (l->timer_mode == APIC_TIMER_TSCDEADLINE)) {
            l->expire_ns = 0;
            l->period_ns = 0;
            l->tsc_deadline = 0;
            lapic_set_reg(l, APIC_REG_TMICT, 0);
        }
        l->timer_mode = mode;
        if (l->period_ns && mode == APIC_TIMER_PERIODIC && l->period_ns < MIN_PERIODIC_NS)
            l->period_ns = MIN_PERIODIC_NS;
    }
    pthread_mutex_unlock(&l->timer_lock);
}

void lapic_timer_tmict_written(struct abi_lapic *l)
{
    pthread_mutex_lock(&l->timer_lock);
    compute_period(l);
    l->expire_ns = l->period_ns ? irqchip_now_ns() + l->period_ns : 0;
    pthread_mutex_unlock(&l->timer_lock);
    rearm_thread(l);
}

void lapic_timer_tdcr_written(struct abi_lapic *l)
{
    pthread_mutex_lock(&l->timer_lock);
    uint32_t old = l->divide;
    l->divide = divide_from_tdcr(lapic_reg(l, APIC_REG_TDCR));
    if (l->divide != old && l->period_ns && l->expire_ns) {
        /* The remaining count keeps counting at the new rate (KVM
         * update_target_expiration). */
        uint64_t now = irqchip_now_ns();
        uint64_t rem = l->expire_ns > now ? l->expire_ns - now : 0;
        rem = (uint64_t)((unsigned __int128)rem * l->divide / old);
        compute_period(l);
        l->expire_ns = now + rem;
    }
    pthread_mutex_unlock(&l->timer_lock);
    rearm_thread(l);
}

uint32_t lapic_timer_tmcct(struct abi_lapic *l)
{
    pthread_mutex_lock(&l->timer_lock);
    uint32_t count = 0;
    if (l->timer_mode != APIC_TIMER_TSCDEADLINE && lapic_reg(l, APIC_REG_TMICT) && l->period_ns &&
        l->expire_ns) {
        uint64_t now = irqchip_now_ns();
        uint64_t rem = l->expire_ns > now ? l->expire_ns - now : 0;
        if (l->timer_mode == APIC_TIMER_PERIODIC) {
            /* A periodic count reloads at once even if the timer thread has
             * not yet run the expiry. */
            rem = l->expire_ns > now ? rem % l->period_ns
                                     : l->period_ns - (now - l->expire_ns) % l->period_ns;
        }
        count = (uint32_t)(rem / tick_ns(l));
    }
    pthread_mutex_unlock(&l->timer_lock);
    return count;
}

void lapic_timer_restart_from_regs(struct abi_lapic *l)
{
    pthread_mutex_lock(&l->timer_lock);
    l->timer_mode = lvtt_mode(l);
    l->divide = divide_from_tdcr(lapic_reg(l, APIC_REG_TDCR));
    l->expire_ns = 0;
    l->tsc_deadline = 0;
    compute_period(l);
    if (l->timer_mode != APIC_TIMER_TSCDEADLINE && l->period_ns) {
        uint64_t cc = lapic_reg(l, APIC_REG_TMCCT);
        l->expire_ns = irqchip_now_ns() + (cc ? cc * tick_ns(l) : l->period_ns);
    }
    pthread_mutex_unlock(&l->timer_lock);
    rearm_thread(l);
}

/* ---------------- TSC deadline ---------------- */

/* the guest TSC's rate (virtual_tsc_khz: lapic.c converts deadlines with it) */
static uint32_t tsc_khz(const struct abi_lapic *l)
{
    uint32_t k = l->cpu && l->cpu->tsc_khz ? l->cpu->tsc_khz : l->chip->tsc_khz;
    return k ? k : 1;
}

static uint64_t default_read_tsc(struct abi_lapic *l)
{
    uint64_t ns = irqchip_now_ns();
    uint64_t tsc = (uint64_t)((unsigned __int128)ns * tsc_khz(l) / 1000000u);
    return tsc + (l->cpu ? l->cpu->tsc_offset : 0);
}

static uint64_t read_tsc(struct abi_lapic *l)
{
    return l->read_tsc ? l->read_tsc(l->tsc_ctx) : default_read_tsc(l);
}

void abi_lapic_set_tsc_reader(struct abi_lapic *l, uint64_t (*fn)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&l->timer_lock);
    l->read_tsc = fn;
    l->tsc_ctx = ctx;
    pthread_mutex_unlock(&l->timer_lock);
}

uint64_t abi_lapic_get_tsc_deadline(struct abi_lapic *l)
{
    pthread_mutex_lock(&l->timer_lock);
    uint64_t v = (lapic_hw_enabled(l) && l->timer_mode == APIC_TIMER_TSCDEADLINE) ? l->tsc_deadline : 0;
    pthread_mutex_unlock(&l->timer_lock);
    return v;
}

void abi_lapic_set_tsc_deadline(struct abi_lapic *l, uint64_t deadline)
{
    pthread_mutex_lock(&l->timer_lock);
    /* KVM kvm_set_lapic_tscdeadline_msr: ignored unless in TSC-deadline mode. */
    if (!lapic_hw_enabled(l) || l->timer_mode != APIC_TIMER_TSCDEADLINE) {
        pthread_mutex_unlock(&l->timer_lock);
        return;
    }
    l->tsc_deadline = deadline;
    l->expire_ns = 0;
    bool passed = false;
    if (deadline) {
        uint64_t now_tsc = read_tsc(l), now = irqchip_now_ns();
        uint32_t khz = tsc_khz(l);
        l->expire_ns = deadline <= now_tsc
                           ? now
                           : now + (uint64_t)((unsigned __int128)(deadline - now_tsc) * 1000000u / khz);
        if (!l->expire_ns)
            l->expire_ns = 1;
        passed = deadline <= now_tsc;
    }
    pthread_mutex_unlock(&l->timer_lock);
    /* A deadline already passed expires now, in the writer's WRMSR, not when the timer
     * thread wakes: the interrupt is pending at the next instruction boundary (KVM
     * start_sw_tscdeadline: apic_timer_expired() when tscdeadline <= guest_tsc).
     * kvm-unit-tests x86/apic "tsc deadline timer" writes the current TSC and expects
     * the interrupt before the CPUID right after. */
    if (passed)
        lapic_timer_poll(l, irqchip_now_ns());
    rearm_thread(l);
}

/* ---------------- expiry ---------------- */

uint64_t lapic_timer_poll(struct abi_lapic *l, uint64_t now)
{
    pthread_mutex_lock(&l->timer_lock);
    if (l->expire_ns && now >= l->expire_ns) {
        /* SDM 10.5.4 / KVM apic_local_deliver: LVTT fires a fixed interrupt
         * unless masked; the count still expires when masked. */
        uint32_t lvtt = lapic_reg(l, APIC_REG_LVTT);
        if (lapic_hw_enabled(l) && !(lvtt & APIC_LVT_MASKED)) {
            struct apic_irq irq = {.vector = lvtt & 0xff, .delivery_mode = APIC_DM_FIXED};
            lapic_accept_irq(l, &irq);
        }
        if (l->timer_mode == APIC_TIMER_PERIODIC && l->period_ns) {
            l->expire_ns += l->period_ns;
            if (l->expire_ns <= now) /* missed periods coalesce into one */
                l->expire_ns = now + l->period_ns - (now - l->expire_ns) % l->period_ns;
        } else {
            l->expire_ns = 0;
            if (l->timer_mode == APIC_TIMER_TSCDEADLINE)
                l->tsc_deadline = 0;
        }
    }
    uint64_t next = l->expire_ns;
    pthread_mutex_unlock(&l->timer_lock);
    return next;
}

static void *timer_thread(void *arg)
{
    struct abi_irqchip *chip = arg;
    pthread_mutex_lock(&chip->timer_lock);
    while (!chip->timer_stop) {
        uint64_t gen = chip->timer_gen;
        pthread_mutex_unlock(&chip->timer_lock);

        uint64_t now = irqchip_now_ns(), next = 0;
        pthread_mutex_lock(&chip->lapics_lock);
        for (unsigned i = 0; i < chip->nlive; i++) {
            struct abi_lapic *l = chip->lapics[i];
            if (!l)
                continue;
            uint64_t e = lapic_timer_poll(l, now);
            if (e && (!next || e < next))
                next = e;
        }
        pthread_mutex_unlock(&chip->lapics_lock);

        pthread_mutex_lock(&chip->timer_lock);
        if (chip->timer_stop || gen != chip->timer_gen)
            continue;
        if (!next) {
            pthread_cond_wait(&chip->timer_cond, &chip->timer_lock);
        } else {
            struct timespec ts = {.tv_sec = (time_t)(next / 1000000000ull),
                                  .tv_nsec = (long)(next % 1000000000ull)};
            pthread_cond_timedwait(&chip->timer_cond, &chip->timer_lock, &ts);
        }
    }
    pthread_mutex_unlock(&chip->timer_lock);
    return NULL;
}

int irqchip_timer_start(struct abi_irqchip *chip)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&chip->timer_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&chip->timer_lock, NULL);
    chip->timer_stop = false;
    int r = pthread_create(&chip->timer_thread, NULL, timer_thread, chip);
    if (r) {
        pthread_cond_destroy(&chip->timer_cond);
        pthread_mutex_destroy(&chip->timer_lock);
        return -r;
    }
    return 0;
}

void irqchip_timer_stop(struct abi_irqchip *chip)
{
    pthread_mutex_lock(&chip->timer_lock);
    chip->timer_stop = true;
    pthread_cond_signal(&chip->timer_cond);
    pthread_mutex_unlock(&chip->timer_lock);
    pthread_join(chip->timer_thread, NULL);
    pthread_cond_destroy(&chip->timer_cond);
    pthread_mutex_destroy(&chip->timer_lock);
}

void irqchip_timer_rearm(struct abi_irqchip *chip)
{
    pthread_mutex_lock(&chip->timer_lock);
    chip->timer_gen++;
    pthread_cond_signal(&chip->timer_cond);
    pthread_mutex_unlock(&chip->timer_lock);
}
