/* abi/pit.c: the i8254 programmable interval timer as KVM's i8254.c models
 * it (Linux 6.12). Counters are not ticked: a channel's count and OUT are
 * computed from the host CLOCK_MONOTONIC time elapsed since it was loaded
 * (channels 1/2) or from the time left on channel 0's timer, at
 * KVM_PIT_FREQ. Channel 0 in modes 0-4 arms a timer whose expiries raise
 * GSI 0; the timer thread plays both KVM's hrtimer (pit_timer_fn) and its
 * worker (pit_do_work). See abi/pit.h for the contract and the reinject
 * limitation. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "abi/pit.h"

#define PIT_FREQ 1193181u          /* KVM_PIT_FREQ (i8254.h) */
#define PIT_MIN_PERIODIC_NS 200000 /* KVM's min_timer_period_us default (200) */
#define PIT_PORT_BASE 0x40u
#define PIT_PORT_LEN 4u
#define SPEAKER_PORT 0x61u
#define SPEAKER_LEN 4u             /* kvm_create_pit registers 4 bytes at 0x61 */

/* Access states of the count register (i8254.c RW_STATE_*). */
enum { RW_LSB = 1, RW_MSB = 2, RW_WORD0 = 3, RW_WORD1 = 4 };

struct abi_pit {
    struct abi_irqchip *chip;
    bool speaker;                         /* KVM_PIT_SPEAKER_DUMMY: 0x61 is ours */

    pthread_mutex_t lock;                 /* everything below */
    pthread_cond_t cond;                  /* timer thread: state changed */
    struct kvm_pit_channel_state ch[3];   /* KVM's own layout (GET/SET copy it) */
    uint32_t flags;                       /* KVM_PIT_FLAGS_* */
    bool reinject;

    /* Channel 0's timer, as KVM's hrtimer: period_ns = 0 until first armed
     * (then counts are read against it even after it stopped); expire_ns is
     * the (last) expiry time; armed = the timer is running. */
    int64_t period_ns;
    int64_t expire_ns;
    bool periodic, armed;
    bool work_queued;                     /* an injection is due (pit_do_work queued) */
    bool stop;
    pthread_t thread;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* mul_u64_u32_div without overflow; negative times wrap as in KVM (u64). */
static uint64_t mul_div(uint64_t a, uint32_t mul, uint32_t div)
{
    return (uint64_t)((unsigned __int128)a * mul / div);
}

/* ---------------- counting (i8254.c pit_get_count / pit_get_out) ---------------- */

static int64_t elapsed_ns(const struct abi_pit *pit, int channel)
{
    if (channel != 0)
        return now_ns() - pit->ch[channel].count_load_time;
    /* __kpit_elapsed: period minus the time left on the (possibly stopped) timer */
    if (!pit->period_ns)
        return 0;
    return pit->period_ns - (pit->expire_ns - now_ns());
}

static uint64_t elapsed_ticks(const struct abi_pit *pit, int channel)
{
    return mul_div((uint64_t)elapsed_ns(pit, channel), PIT_FREQ, 1000000000u);
}

static int get_count(const struct abi_pit *pit, int channel)
{
    const struct kvm_pit_channel_state *c = &pit->ch[channel];
    uint64_t d = elapsed_ticks(pit, channel);
    switch (c->mode) {
    case 0: case 1: case 4: case 5:
        /* the counter wraps to 0xffff after reaching 0 and keeps counting */
        return (int)((c->count - d) & 0xffff);
    case 3:
        /* square wave counts down by 2 per clock (KVM: "may be incorrect for odd counts") */
        return (int)(c->count - (2 * d) % c->count);
    default:
        return (int)(c->count - d % c->count); /* mode 2 and unprogrammed (0xff) */
    }
}

static int get_out(const struct abi_pit *pit, int channel)
{
    const struct kvm_pit_channel_state *c = &pit->ch[channel];
    uint64_t d = elapsed_ticks(pit, channel);
    switch (c->mode) {
    default:
    case 0: /* interrupt on terminal count: OUT rises at 0 and stays high */
        return d >= c->count;
    case 1: /* one-shot: low for the count after the trigger */
        return d < c->count;
    case 2: /* rate generator: one-clock low pulse... as KVM computes it */
        return d % c->count == 0 && d != 0;
    case 3: /* square wave: high for the first half */
        return d % c->count < ((c->count + 1) >> 1);
    case 4: case 5: /* strobes: one pulse at terminal count */
        return d == c->count;
    }
}

static void latch_count(struct abi_pit *pit, int channel)
{
    struct kvm_pit_channel_state *c = &pit->ch[channel];
    /* a second latch before the first is read is ignored (8254 datasheet) */
    if (!c->count_latched) {
        c->latched_count = (uint16_t)get_count(pit, channel);
        c->count_latched = c->rw_mode;
    }
}

static void latch_status(struct abi_pit *pit, int channel)
{
    struct kvm_pit_channel_state *c = &pit->ch[channel];
    /* status byte: OUT, (NULL COUNT = 0, as KVM), RW, mode, BCD */
    if (!c->status_latched) {
        c->status = (uint8_t)((get_out(pit, channel) << 7) | (c->rw_mode << 4) | (c->mode << 1) |
                              c->bcd);
        c->status_latched = 1;
    }
}

static void set_gate(struct abi_pit *pit, int channel, uint8_t val)
{
    struct kvm_pit_channel_state *c = &pit->ch[channel];
    /* modes 1, 2, 3, 5 restart on a rising gate; 0 and 4 would only pause
     * counting, which KVM does not model */
    switch (c->mode) {
    case 1: case 2: case 3: case 5:
        if (c->gate < val)
            c->count_load_time = now_ns();
        break;
    default:
        break;
    }
    c->gate = val;
}

/* ---------------- channel 0 timer ---------------- */

static void stop_timer(struct abi_pit *pit)
{
    /* destroy_pit_timer: the timer stops but keeps its expiry and period,
     * so channel 0 still reads a count */
    pit->armed = false;
}

/* create_pit_timer: `count` PIT clocks from now, then every period if periodic. */
static void start_timer(struct abi_pit *pit, uint32_t count, bool periodic)
{
    if (pit->flags & KVM_PIT_FLAGS_HPET_LEGACY)
        return; /* the HPET drives IRQ0 instead */
    int64_t interval = (int64_t)mul_div(count, 1000000000u, PIT_FREQ);
    pit->period_ns = interval;
    pit->periodic = periodic;
    /* KVM limits periodic timers to min_timer_period_us (the first expiry
     * still comes after the unclamped interval) */
    if (periodic && pit->period_ns < PIT_MIN_PERIODIC_NS)
        pit->period_ns = PIT_MIN_PERIODIC_NS;
    pit->expire_ns = now_ns() + interval;
    pit->armed = true;
    pthread_cond_signal(&pit->cond);
}

/* pit_load_count: a new count (0 means 0x10000) starts counting now. */
static void load_count(struct abi_pit *pit, int channel, uint32_t val)
{
    if (val == 0)
        val = 0x10000;
    pit->ch[channel].count = val;
    if (channel != 0) {
        pit->ch[channel].count_load_time = now_ns();
        return;
    }
    switch (pit->ch[0].mode) {
    case 0: case 1: case 4: /* one-shot (KVM: "FIXME: enhance mode 4 precision") */
        start_timer(pit, val, false);
        break;
    case 2: case 3:
        start_timer(pit, val, true);
        break;
    default: /* mode 5 and unprogrammed: no timer */
        stop_timer(pit);
        break;
    }
}

/* kvm_pit_load_count; with hpet_legacy_start channel 0 only stops its timer. */
static void reload_channels(struct abi_pit *pit, bool hpet_legacy_start)
{
    for (int i = 0; i < 3; i++) {
        if (i == 0 && hpet_legacy_start) {
            uint8_t saved = pit->ch[0].mode;
            pit->ch[0].mode = 0xff;
            load_count(pit, 0, pit->ch[0].count);
            pit->ch[0].mode = saved;
        } else {
            load_count(pit, i, pit->ch[i].count);
        }
    }
}

/* Fire every expiry that is due (pit_timer_fn): returns true if one fired.
 * Missed periods of a late thread all land here at once; they queue one
 * injection, as KVM's worker coalesces queued work without reinject. */
static bool fire_due(struct abi_pit *pit, int64_t now)
{
    if (!pit->armed || pit->expire_ns > now)
        return false;
    if (pit->periodic) {
        int64_t missed = (now - pit->expire_ns) / pit->period_ns + 1;
        pit->expire_ns += missed * pit->period_ns;
    } else {
        pit->armed = false;
    }
    pit->work_queued = true;
    return true;
}

static void wait_for_event(struct abi_pit *pit)
{
    if (!pit->armed) {
        pthread_cond_wait(&pit->cond, &pit->lock);
        return;
    }
    struct timespec ts = {.tv_sec = (time_t)(pit->expire_ns / 1000000000ll),
                          .tv_nsec = (long)(pit->expire_ns % 1000000000ll)};
    pthread_cond_timedwait(&pit->cond, &pit->lock, &ts);
}

static void *timer_thread(void *arg)
{
    struct abi_pit *pit = arg;
    pthread_mutex_lock(&pit->lock);
    while (!pit->stop) {
        if (pit->work_queued) {
            pit->work_queued = false;
            pthread_mutex_unlock(&pit->lock);
            /* pit_do_work: an edge on GSI 0 through the routing table (PIC
             * IRQ0 and IOAPIC), which wakes the target vCPUs. The PIT lock
             * is not held so the irqchip lock never nests inside it. */
            abi_irqchip_set_irq(pit->chip, 0, 1);
            abi_irqchip_set_irq(pit->chip, 0, 0);
            pthread_mutex_lock(&pit->lock);
            continue;
        }
        if (!fire_due(pit, now_ns()))
            wait_for_event(pit);
    }
    pthread_mutex_unlock(&pit->lock);
    return NULL;
}

/* ---------------- port I/O ---------------- */

static void write_command(struct abi_pit *pit, uint8_t val)
{
    int channel = val >> 6;
    if (channel == 3) {
        /* read-back: bits 3:1 select channels, COUNT (bit 5) and STATUS
         * (bit 4) are active low */
        for (channel = 0; channel < 3; channel++) {
            if (!(val & (2 << channel)))
                continue;
            if (!(val & 0x20))
                latch_count(pit, channel);
            if (!(val & 0x10))
                latch_status(pit, channel);
        }
        return;
    }
    struct kvm_pit_channel_state *s = &pit->ch[channel];
    uint8_t access = (val >> 4) & 3;
    if (access == 0) { /* counter latch command */
        latch_count(pit, channel);
        return;
    }
    s->rw_mode = s->read_state = s->write_state = access;
    s->mode = (val >> 1) & 7;
    if (s->mode > 5)
        s->mode -= 4; /* 6 and 7 are aliases of modes 2 and 3 */
    s->bcd = val & 1;
}

static void write_count(struct abi_pit *pit, int channel, uint8_t val)
{
    struct kvm_pit_channel_state *s = &pit->ch[channel];
    switch (s->write_state) {
    default:
    case RW_LSB:
        load_count(pit, channel, val);
        break;
    case RW_MSB:
        load_count(pit, channel, (uint32_t)val << 8);
        break;
    case RW_WORD0:
        s->write_latch = val;
        s->write_state = RW_WORD1;
        break;
    case RW_WORD1:
        load_count(pit, channel, s->write_latch | ((uint32_t)val << 8));
        s->write_state = RW_WORD0;
        break;
    }
}

/* A latched status comes first, then a latched count, else the live count,
 * each in the channel's access mode (8254 datasheet, read-back command). */
static int read_channel(struct abi_pit *pit, int channel)
{
    struct kvm_pit_channel_state *s = &pit->ch[channel];
    int ret;
    if (s->status_latched) {
        s->status_latched = 0;
        return s->status;
    }
    if (s->count_latched) {
        switch (s->count_latched) {
        default:
        case RW_LSB:
            s->count_latched = 0;
            return s->latched_count & 0xff;
        case RW_MSB:
            s->count_latched = 0;
            return s->latched_count >> 8;
        case RW_WORD0:
            s->count_latched = RW_MSB;
            return s->latched_count & 0xff;
        }
    }
    int count = get_count(pit, channel);
    switch (s->read_state) {
    default:
    case RW_LSB:
        ret = count & 0xff;
        break;
    case RW_MSB:
        ret = (count >> 8) & 0xff;
        break;
    case RW_WORD0:
        ret = count & 0xff;
        s->read_state = RW_WORD1;
        break;
    case RW_WORD1:
        ret = (count >> 8) & 0xff;
        s->read_state = RW_WORD0;
        break;
    }
    return ret;
}

/* Port 0x61 as KVM's speaker device: bit 0 gate 2, bit 1 speaker data,
 * bit 4 refresh toggle, bit 5 OUT2. */
static int read_speaker(struct abi_pit *pit)
{
    /* the refresh clock toggles about every 15 us; KVM approximates 2^14 ns */
    unsigned refresh = ((unsigned)now_ns() >> 14) & 1;
    return (!!(pit->flags & KVM_PIT_FLAGS_SPEAKER_DATA_ON) << 1) | pit->ch[2].gate |
           (get_out(pit, 2) << 5) | (int)(refresh << 4);
}

static void write_speaker(struct abi_pit *pit, uint8_t val)
{
    if (val & 2)
        pit->flags |= KVM_PIT_FLAGS_SPEAKER_DATA_ON;
    else
        pit->flags &= ~(uint32_t)KVM_PIT_FLAGS_SPEAKER_DATA_ON;
    set_gate(pit, 2, val & 1);
}

/* IN results are an int copied into up to 4 bytes (KVM memcpy of `ret`). */
static void store_in(void *data, unsigned size, int ret)
{
    uint32_t v = (uint32_t)ret;
    memset(data, 0, size);
    memcpy(data, &v, size < sizeof v ? size : sizeof v);
}

bool abi_pit_pio(struct abi_pit *pit, uint16_t port, bool in, void *data, unsigned size)
{
    /* KVM's io bus only picks a device whose range holds the whole access */
    bool pit_port = port >= PIT_PORT_BASE && port + size <= PIT_PORT_BASE + PIT_PORT_LEN;
    bool speaker_port = pit->speaker && port == SPEAKER_PORT && size <= SPEAKER_LEN;
    if (!pit_port && !speaker_port)
        return false;
    uint8_t val = *(const uint8_t *)data; /* writes use the low byte only */
    int ret = 0;
    pthread_mutex_lock(&pit->lock);
    if (speaker_port) {
        if (in)
            ret = read_speaker(pit);
        else
            write_speaker(pit, val);
    } else {
        unsigned reg = port & 3;
        if (in)
            ret = reg == 3 ? 0 : read_channel(pit, (int)reg); /* 0x43 is write-only */
        else if (reg == 3)
            write_command(pit, val);
        else
            write_count(pit, (int)reg, val);
    }
    pthread_mutex_unlock(&pit->lock);
    if (in)
        store_in(data, size, ret);
    return true;
}

/* ---------------- ioctls ---------------- */

void abi_pit_get_state(struct abi_pit *pit, struct kvm_pit_state *s)
{
    pthread_mutex_lock(&pit->lock);
    memcpy(s->channels, pit->ch, sizeof pit->ch);
    pthread_mutex_unlock(&pit->lock);
}

void abi_pit_set_state(struct abi_pit *pit, const struct kvm_pit_state *s)
{
    pthread_mutex_lock(&pit->lock);
    memcpy(pit->ch, s->channels, sizeof pit->ch);
    reload_channels(pit, false);
    pthread_mutex_unlock(&pit->lock);
}

void abi_pit_get_state2(struct abi_pit *pit, struct kvm_pit_state2 *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&pit->lock);
    memcpy(s->channels, pit->ch, sizeof pit->ch);
    s->flags = pit->flags;
    pthread_mutex_unlock(&pit->lock);
}

void abi_pit_set_state2(struct abi_pit *pit, const struct kvm_pit_state2 *s)
{
    pthread_mutex_lock(&pit->lock);
    bool start_legacy = !(pit->flags & KVM_PIT_FLAGS_HPET_LEGACY) &&
                        (s->flags & KVM_PIT_FLAGS_HPET_LEGACY);
    memcpy(pit->ch, s->channels, sizeof pit->ch);
    pit->flags = s->flags;
    reload_channels(pit, start_legacy);
    pthread_mutex_unlock(&pit->lock);
}

void abi_pit_set_reinject(struct abi_pit *pit, bool reinject)
{
    pthread_mutex_lock(&pit->lock);
    pit->reinject = reinject;
    pthread_mutex_unlock(&pit->lock);
}

bool abi_pit_reinject(struct abi_pit *pit)
{
    pthread_mutex_lock(&pit->lock);
    bool r = pit->reinject;
    pthread_mutex_unlock(&pit->lock);
    return r;
}

/* ---------------- lifetime ---------------- */

/* kvm_pit_reset: flags 0; every channel unprogrammed (mode 0xff) with the
 * maximum count; gates high except channel 2's (port 0x61 bit 0). */
static void pit_reset(struct abi_pit *pit)
{
    pit->flags = 0;
    for (int i = 0; i < 3; i++) {
        pit->ch[i].mode = 0xff;
        pit->ch[i].gate = i != 2;
        load_count(pit, i, 0);
    }
}

static int init_sync(struct abi_pit *pit)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca))
        return -ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int r = pthread_cond_init(&pit->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (r)
        return -r;
    r = pthread_mutex_init(&pit->lock, NULL);
    if (r) {
        pthread_cond_destroy(&pit->cond);
        return -r;
    }
    return 0;
}

struct abi_pit *abi_pit_create(struct abi_irqchip *chip, uint32_t flags)
{
    struct abi_pit *pit = calloc(1, sizeof *pit);
    if (!pit)
        return NULL;
    pit->chip = chip;
    pit->speaker = flags & KVM_PIT_SPEAKER_DUMMY;
    pit->reinject = true; /* kvm_create_pit: kvm_pit_set_reinject(pit, true) */
    if (init_sync(pit)) {
        free(pit);
        return NULL;
    }
    pit_reset(pit);
    if (pthread_create(&pit->thread, NULL, timer_thread, pit)) {
        pthread_mutex_destroy(&pit->lock);
        pthread_cond_destroy(&pit->cond);
        free(pit);
        return NULL;
    }
    return pit;
}

void abi_pit_destroy(struct abi_pit *pit)
{
    if (!pit)
        return;
    pthread_mutex_lock(&pit->lock);
    pit->stop = true;
    pthread_cond_signal(&pit->cond);
    pthread_mutex_unlock(&pit->lock);
    pthread_join(pit->thread, NULL);
    pthread_mutex_destroy(&pit->lock);
    pthread_cond_destroy(&pit->cond);
    free(pit);
}
