/* abi/lapic_deliver.c: interrupt acceptance and delivery in the local APIC:
 * IRR/ISR/TMR, PPR (SDM vol.3 10.8.3.1), INTA and EOI, ICR IPIs with
 * shorthands and physical/logical destinations (SDM 10.6), lowest-priority,
 * NMI/INIT/SIPI, the emu hooks and the HLT wait/kick primitive.
 * Destination rules mirror KVM's kvm_apic_match_dest (lapic.c). */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "abi/irqchip_internal.h"

#define X2APIC_BROADCAST 0xffffffffu
#define XAPIC_BROADCAST 0xffu

/* ---------------- vector bitmaps ---------------- */

static uint32_t *vec_word(struct abi_lapic *l, unsigned base, unsigned vec)
{
    return (uint32_t *)(l->regs + base + 0x10 * (vec >> 5));
}

static int highest_vector(const struct abi_lapic *l, unsigned base)
{
    for (int w = 7; w >= 0; w--) {
        uint32_t v = lapic_reg(l, base + 0x10 * (unsigned)w);
        if (v)
            return w * 32 + 31 - __builtin_clz(v);
    }
    return -1;
}

int lapic_highest_irr(const struct abi_lapic *l)
{
    if (!__atomic_load_n(&l->irr_summary, __ATOMIC_ACQUIRE))
        return -1;
    return highest_vector(l, APIC_REG_IRR);
}

/* Setters publish the IRR bit, then the summary bit. */
static void irr_set(struct abi_lapic *l, unsigned vec)
{
    __atomic_fetch_or(vec_word(l, APIC_REG_IRR, vec), 1u << (vec & 31), __ATOMIC_SEQ_CST);
    __atomic_fetch_or(&l->irr_summary, 1u << (vec >> 5), __ATOMIC_SEQ_CST);
}

/* The owner clears; if the word became empty it drops the summary bit and
 * re-checks, so a setter racing in between is never hidden. */
static void irr_clear(struct abi_lapic *l, unsigned vec)
{
    uint32_t *w = vec_word(l, APIC_REG_IRR, vec);
    uint32_t left = __atomic_and_fetch(w, ~(1u << (vec & 31)), __ATOMIC_SEQ_CST);
    if (!left) {
        __atomic_fetch_and(&l->irr_summary, ~(1u << (vec >> 5)), __ATOMIC_SEQ_CST);
        if (__atomic_load_n(w, __ATOMIC_SEQ_CST))
            __atomic_fetch_or(&l->irr_summary, 1u << (vec >> 5), __ATOMIC_SEQ_CST);
    }
}

void lapic_irr_resync(struct abi_lapic *l)
{
    uint32_t sum = 0;
    for (unsigned w = 0; w < 8; w++)
        if (lapic_reg(l, APIC_REG_IRR + 0x10 * w))
            sum |= 1u << w;
    __atomic_store_n(&l->irr_summary, sum, __ATOMIC_SEQ_CST);
}
int lapic_highest_isr(const struct abi_lapic *l) { return highest_vector(l, APIC_REG_ISR); }

void lapic_update_ppr(struct abi_lapic *l)
{
    uint32_t tpr = lapic_reg(l, APIC_REG_TPR);
    int isr = lapic_highest_isr(l);
    uint32_t isrv = isr < 0 ? 0 : (uint32_t)isr;
    uint32_t ppr = (tpr & 0xf0) >= (isrv & 0xf0) ? tpr : (isrv & 0xf0);
    lapic_set_reg(l, APIC_REG_PPR, ppr);
}

/* Fold a guest MOV to CR8 into TPR (CR8[3:0] = TPR[7:4], SDM 10.8.6.1). */
void lapic_sync_cr8(struct abi_lapic *l, struct cpu *cpu)
{
    if (cpu && cpu->cr8 != l->synced_cr8) {
        l->synced_cr8 = cpu->cr8;
        lapic_set_reg(l, APIC_REG_TPR, (uint32_t)(cpu->cr8 & 0xf) << 4);
        lapic_update_ppr(l);
    }
}

/* ---------------- wake / notify ---------------- */

/* Bump the sequence, and pay for the syscall only if the owner sleeps. The
 * waiter sets `sleeping` before re-reading its conditions and futex_wait
 * compares wake_seq, so (all seq_cst) a bump is never missed. */
static void futex_wake(struct abi_lapic *l)
{
    __atomic_add_fetch(&l->wake_seq, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&l->sleeping, __ATOMIC_SEQ_CST))
        syscall(SYS_futex, &l->wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Only atomics and the futex syscall: async-signal-safe. */
void abi_lapic_kick(struct abi_lapic *l)
{
    __atomic_store_n(&l->kicked, 1, __ATOMIC_SEQ_CST);
    futex_wake(l);
}

/* An interrupt source changed: make a running vCPU re-check (emu_kick) and a
 * halted one re-evaluate (futex wake, not a "kick"). */
void lapic_notify(struct abi_lapic *l)
{
    if (l->vcpu)
        emu_kick(l->vcpu);
    futex_wake(l);
}

/* ---------------- acceptance (SDM 10.6.2; KVM __apic_accept_irq) ---------------- */

bool lapic_accept_irq(struct abi_lapic *l, const struct apic_irq *irq)
{
    switch (irq->delivery_mode) {
    case APIC_DM_FIXED:
    case APIC_DM_LOWEST: {
        if (irq->level && !irq->assert)
            return false;
        if (!lapic_hw_enabled(l) || !lapic_sw_enabled(l))
            return false; /* a disabled APIC drops fixed interrupts */
        uint32_t bit = 1u << (irq->vector & 31);
        if (irq->level)
            __atomic_fetch_or(vec_word(l, APIC_REG_TMR, irq->vector), bit, __ATOMIC_SEQ_CST);
        else
            __atomic_fetch_and(vec_word(l, APIC_REG_TMR, irq->vector), ~bit, __ATOMIC_SEQ_CST);
        irr_set(l, irq->vector);
        break;
    }
    case APIC_DM_NMI:
        __atomic_add_fetch(&l->nmi_pending, 1, __ATOMIC_SEQ_CST);
        break;
    case APIC_DM_INIT:
        if (irq->level && !irq->assert)
            return false; /* INIT level de-assert: no effect (P4 and later) */
        /* __apic_accept_irq: pending_events = INIT only (a latched SIPI is dropped) */
        __atomic_store_n(&l->sipi_pending, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&l->init_pending, 1, __ATOMIC_SEQ_CST);
        break;
    case APIC_DM_STARTUP:
        __atomic_store_n(&l->sipi_vector, irq->vector, __ATOMIC_SEQ_CST);
        __atomic_store_n(&l->sipi_pending, 1, __ATOMIC_SEQ_CST);
        break;
    case APIC_DM_REMRD:
        /* __apic_accept_irq: the KVM PV kick (kvm_pv_kick_cpu_op) — pv_unhalted makes the
         * vCPU runnable, so a halt (now or the next one) ends; result 1 */
        __atomic_store_n(&l->pv_unhalted, 1, __ATOMIC_SEQ_CST);
        break;
    case APIC_DM_SMI:
        /* __apic_accept_irq: kvm_inject_smi (KVM_REQ_SMI), taken at the next entry */
        __atomic_store_n(&l->smi_pending, 1, __ATOMIC_SEQ_CST);
        if (l->vcpu)
            emu_kick(l->vcpu);
        break;
    default:
        return false; /* ExtINT and reserved modes are not deliverable by message */
    }
    /* INIT/SIPI change the vCPU's run state: a vCPU inside emu_run must come out to the
     * abi run loop, which accepts them (KVM: KVM_REQ_EVENT + kvm_vcpu_kick) */
    if ((irq->delivery_mode == APIC_DM_INIT || irq->delivery_mode == APIC_DM_STARTUP) && l->vcpu)
        emu_request_stop(l->vcpu);
    lapic_notify(l);
    return true;
}

/* ---------------- destination matching ---------------- */

static bool match_physical(const struct abi_lapic *t, uint32_t mda)
{
    if (lapic_x2apic_mode(t))
        return mda == X2APIC_BROADCAST || mda == t->vcpu_id;
    return mda == XAPIC_BROADCAST || mda == (lapic_reg(t, APIC_REG_ID) >> 24);
}

static bool match_logical(const struct abi_lapic *t, uint32_t mda)
{
    uint32_t ldr = lapic_reg(t, APIC_REG_LDR);
    if (lapic_x2apic_mode(t)) {
        if (mda == X2APIC_BROADCAST)
            return true;
        return (ldr >> 16) == (mda >> 16) && (ldr & mda & 0xffff) != 0;
    }
    if (mda == XAPIC_BROADCAST)
        return true;
    uint32_t id = ldr >> 24;
    switch (lapic_reg(t, APIC_REG_DFR) >> 28) {
    case 0xf: /* flat model */
        return (id & mda) != 0;
    case 0x0: /* cluster model */
        return (id >> 4) == (mda >> 4) && (id & mda & 0xf) != 0;
    default:
        return false;
    }
}

static bool match_dest(struct abi_irqchip *chip, const struct abi_lapic *t, const struct abi_lapic *src,
                       const struct apic_irq *irq)
{
    switch (irq->shorthand) {
    case APIC_SH_SELF:
        return t == src;
    case APIC_SH_ALL:
        return true;
    case APIC_SH_OTHERS:
        return t != src;
    default:
        break;
    }
    uint32_t mda = irq->dest;
    /* KVM kvm_apic_mda: a non-IPI xAPIC broadcast reaches x2APIC targets
     * unless userspace disabled that quirk. */
    if (!src && mda == XAPIC_BROADCAST && !irq->x2apic_dest && lapic_x2apic_mode(t) &&
        !chip->x2apic_broadcast_quirk_disabled)
        mda = X2APIC_BROADCAST;
    return irq->logical ? match_logical(t, mda) : match_physical(t, mda);
}

int irqchip_deliver(struct abi_irqchip *chip, struct abi_lapic *src, const struct apic_irq *irq)
{
    struct abi_lapic *lowest[ABI_IRQCHIP_MAX_LAPICS];
    unsigned nlowest = 0;
    /* KVM's result when nothing accepts: a directed (no shorthand, not
     * broadcast) message goes through the APIC map and counts 0; shorthands
     * and broadcasts take the slow path, which says -1 (kvm_irq_delivery_to_apic). */
    bool bcast = irq->dest == 0xffffffffu || (irq->dest == XAPIC_BROADCAST && !irq->x2apic_dest);
    pthread_mutex_lock(&chip->lapics_lock);
    /* with no vCPU there is no APIC map either (kvm_apic_map_get_dest_lapic fails), so
     * the slow path's -1 it is */
    bool slow = !(irq->shorthand == APIC_SH_NONE && !bcast && chip->nlive);
    int delivered = slow ? -1 : 0;
    /* KVM kvm_lowest_prio_delivery: lowest-priority mode, or an MSI whose redirection
     * hint asks for it, whatever its delivery mode (irq_comm.c kvm_irq_delivery_to_apic) */
    bool lowest_prio = (irq->delivery_mode == APIC_DM_LOWEST || irq->redir_hint) &&
                       irq->shorthand != APIC_SH_SELF;
    struct apic_irq fixed;
    if (lowest_prio && slow && !irq->logical && irq->dest == XAPIC_BROADCAST) {
        /* irq_comm.c 58-62: a physical broadcast with lowest priority is sent as fixed */
        fixed = *irq;
        fixed.delivery_mode = APIC_DM_FIXED;
        irq = &fixed;
        lowest_prio = irq->redir_hint; /* kvm_lowest_prio_delivery, asked again */
    }

    for (unsigned i = 0; i < chip->nlive; i++) {
        struct abi_lapic *t = chip->lapics[i];
        if (!t || !lapic_hw_enabled(t) || !match_dest(chip, t, src, irq))
            continue;
        if (lowest_prio) {
            /* the slow path arbitrates among software-enabled APICs only (irq_comm.c
             * 78); the APIC map's single physical target is taken as it is */
            if (!slow || lapic_sw_enabled(t))
                lowest[nlowest++] = t;
            continue;
        }
        if (delivered < 0)
            delivered = 0;
        delivered += lapic_accept_irq(t, irq);
    }
    if (nlowest) {
        /* KVM's default "vector hashing" picks the target by vector among
         * the candidates, which keeps the choice deterministic. */
        struct abi_lapic *t = lowest[irq->vector % nlowest];
        delivered = lapic_accept_irq(t, irq);
    }
    pthread_mutex_unlock(&chip->lapics_lock);
    return delivered;
}

void abi_irqchip_pv_kick(struct abi_irqchip *chip, uint32_t apicid)
{
    struct apic_irq irq = {.delivery_mode = APIC_DM_REMRD, .dest = apicid}; /* physical */
    irqchip_deliver(chip, NULL, &irq);
}

/* The APIC ID a physical destination matches in KVM's APIC map (kvm_recalculate_phys_map):
 * the x2APIC ID in x2APIC mode, the xAPIC ID register otherwise. */
static uint32_t map_phys_id(const struct abi_lapic *t)
{
    return lapic_x2apic_mode(t) ? lapic_reg(t, APIC_REG_ID) : lapic_reg(t, APIC_REG_ID) >> 24;
}

/* __pv_send_ipi: bits below min(64, max_apic_id - min + 1) of one bitmap word. */
static long pv_send_ipi_word(struct abi_irqchip *chip, uint64_t bitmap, uint32_t min,
                             uint32_t max_id, const struct apic_irq *irq)
{
    if (min > max_id)
        return 0;
    uint64_t span = (uint64_t)max_id - min + 1;
    unsigned n = span < 64 ? (unsigned)span : 64;
    long count = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!(bitmap >> i & 1))
            continue;
        for (unsigned k = 0; k < chip->nlive; k++) {
            struct abi_lapic *t = chip->lapics[k];
            if (t && lapic_hw_enabled(t) && map_phys_id(t) == min + i) {
                count += lapic_accept_irq(t, irq);
                break;
            }
        }
    }
    return count;
}

long abi_irqchip_pv_send_ipi(struct abi_irqchip *chip, uint64_t bitmap_low, uint64_t bitmap_high,
                             uint32_t min, uint64_t icr, bool op_64_bit)
{
    /* APIC_DEST_MASK (logical) | APIC_SHORT_MASK: only physical, no shorthand */
    if (icr & ((1u << 11) | (3u << 18)))
        return -22; /* -KVM_EINVAL */
    struct apic_irq irq = {
        .vector = icr & 0xff,
        .delivery_mode = (icr >> 8) & 7,
        .assert = icr & (1u << 14),
        .level = icr & (1u << 15),
    };
    pthread_mutex_lock(&chip->lapics_lock);
    /* the map's max_apic_id: the highest x2APIC ID (= vCPU id) of a present APIC; no such
     * APIC, no map: -EOPNOTSUPP as KVM's unset apic_map gives */
    long count = -95;
    uint32_t max_id = 0;
    bool any = false;
    for (unsigned k = 0; k < chip->nlive; k++) {
        struct abi_lapic *t = chip->lapics[k];
        if (t && lapic_hw_enabled(t)) {
            any = true;
            uint32_t id = map_phys_id(t) > t->vcpu_id ? map_phys_id(t) : t->vcpu_id;
            max_id = id > max_id ? id : max_id;
        }
    }
    if (any) {
        count = pv_send_ipi_word(chip, bitmap_low, min, max_id, &irq);
        min += op_64_bit ? 64 : 32; /* u32 arithmetic, as KVM's */
        count += pv_send_ipi_word(chip, bitmap_high, min, max_id, &irq);
    }
    pthread_mutex_unlock(&chip->lapics_lock);
    return count;
}

void lapic_send_ipi(struct abi_lapic *src, uint32_t icr_low, uint32_t dest)
{
    struct apic_irq irq = {
        .vector = icr_low & 0xff,
        .delivery_mode = (icr_low >> 8) & 7,
        .logical = icr_low & (1u << 11),
        .assert = icr_low & (1u << 14),
        .level = icr_low & (1u << 15),
        .shorthand = (icr_low >> 18) & 3,
        .dest = dest,
        .x2apic_dest = lapic_x2apic_mode(src),
    };
    irqchip_deliver(src->chip, src, &irq);
}

/* ---------------- EOI (SDM 10.8.5) ---------------- */

void lapic_eoi(struct abi_lapic *l)
{
    int vec = lapic_highest_isr(l);
    if (vec < 0)
        return;
    uint32_t bit = 1u << (vec & 31);
    __atomic_fetch_and(vec_word(l, APIC_REG_ISR, (unsigned)vec), ~bit, __ATOMIC_SEQ_CST);
    lapic_update_ppr(l);
    /* Level-triggered: broadcast the EOI to the IOAPIC (no directed EOI).
     * With an ack notifier installed edge vectors go too, as KVM puts the
     * vectors of pins with notifiers into ioapic_handled_vectors. */
    bool level = lapic_reg(l, APIC_REG_TMR + 0x10 * ((unsigned)vec >> 5)) & bit;
    if (level || irqchip_has_ack_notifier(l->chip)) {
        pthread_mutex_lock(&l->chip->lock);
        ioapic_eoi(l->chip, (uint8_t)vec, level);
        pthread_mutex_unlock(&l->chip->lock);
    }
    lapic_notify(l);
}

/* ---------------- emu hooks ---------------- */

/* KVM kvm_apic_accept_pic_intr: the PIC reaches a vCPU through LINT0 in
 * ExtINT mode, or directly when the APIC is hardware-disabled. */
static bool accepts_pic(const struct abi_lapic *l)
{
    uint32_t lvt0 = lapic_reg(l, APIC_REG_LVT0);
    if (!lapic_hw_enabled(l))
        return true;
    return !(lvt0 & APIC_LVT_MASKED) && ((lvt0 >> 8) & 7) == APIC_DM_EXTINT;
}

/* Highest deliverable vector now, or -1; *from_pic says it is the PIC's, *from_ext the
 * extint source's (taken first, as kvm_cpu_get_extint does with Xen's upcall vector).
 * No side effects beyond the CR8 fold, so any thread may ask. */
static int deliverable(struct abi_lapic *l, struct cpu *cpu, bool *from_pic, bool *from_ext)
{
    lapic_sync_cr8(l, cpu);
    *from_pic = false;
    *from_ext = false;
    if (l->extint) {
        int e = l->extint(l->extint_ctx);
        if (e >= 0) {
            *from_ext = true;
            return e;
        }
    }
    struct abi_irqchip *chip = l->chip;
    if (__atomic_load_n(&chip->pic.output, __ATOMIC_ACQUIRE) && accepts_pic(l)) {
        pthread_mutex_lock(&chip->lock);
        int v = pic_has_output(&chip->pic) ? pic_peek_irq(&chip->pic) : -1;
        pthread_mutex_unlock(&chip->lock);
        if (v >= 0) {
            *from_pic = true;
            return v;
        }
    }
    if (!lapic_hw_enabled(l))
        return -1;
    int irr = lapic_highest_irr(l);
    if (irr < 0 || (uint32_t)(irr & 0xf0) <= lapic_reg(l, APIC_REG_PPR))
        return -1;
    return irr;
}

/* emu hook (owner thread): remembers whether ack() must INTA the PIC. */
int lapic_irq_pending(void *ctx, struct cpu *cpu)
{
    struct abi_lapic *l = ctx;
    bool from_pic, from_ext;
    int v = deliverable(l, cpu, &from_pic, &from_ext);
    l->pic_vector_pending = from_pic;
    l->ext_vector_pending = from_ext;
    return v;
}

void lapic_irq_ack(void *ctx, struct cpu *cpu, int vector)
{
    struct abi_lapic *l = ctx;
    (void)cpu;
    if (l->ext_vector_pending) { /* no INTA: the source stays asserted until cleared */
        l->ext_vector_pending = false;
        return;
    }
    if (l->pic_vector_pending) {
        l->pic_vector_pending = false;
        pthread_mutex_lock(&l->chip->lock);
        pic_read_irq(&l->chip->pic);
        pthread_mutex_unlock(&l->chip->lock);
        return;
    }
    if (vector < 0 || vector > 255)
        return;
    irr_clear(l, (unsigned)vector);
    __atomic_fetch_or(vec_word(l, APIC_REG_ISR, (unsigned)vector), 1u << (vector & 31), __ATOMIC_SEQ_CST);
    lapic_update_ppr(l);
}

/* KVM_REQ_SMI -> process_smi: the latched SMI becomes the vCPU's smi_pending. */
bool lapic_smi_pending(void *ctx, struct cpu *cpu)
{
    (void)cpu;
    struct abi_lapic *l = ctx;
    return __atomic_load_n(&l->smi_pending, __ATOMIC_RELAXED) &&
           __atomic_exchange_n(&l->smi_pending, 0, __ATOMIC_ACQ_REL);
}

bool abi_lapic_take_smi(struct abi_lapic *l)
{
    return lapic_smi_pending(l, NULL);
}

/* Hands one queued NMI to the CPU per true return. The interpreter does not
 * latch a hook NMI it cannot take yet, so one is consumed only when the CPU
 * can take it now: NMIs not blocked (SDM vol.3 6.7.1) and no MOV-SS/STI
 * shadow (STI or MOV SS: KVM blocks NMIs in both). */
/* NMIs queued by senders are folded the way KVM's process_nmi (x86.c) folds nmi_queued
 * into nmi_pending: at most two (one being taken, one latched), and only one while NMIs
 * are blocked; the rest are lost, as on hardware (SDM vol.3 6.7.1: one NMI is latched
 * while the handler runs). Folded here, on the target's thread, where the CPU's NMI
 * blocking is known: a blocked CPU leaves at most one, an unblocked one takes one and
 * leaves at most one. kvm-unit-tests x86/apic "pending nmi": 10 self-NMIs from the
 * handler are one more NMI. */
bool lapic_nmi_pending(void *ctx, struct cpu *cpu)
{
    struct abi_lapic *l = ctx;
    uint32_t n = __atomic_load_n(&l->nmi_pending, __ATOMIC_ACQUIRE);
    if (cpu && cpu->ev.nmi_masked) {
        while (n > 1 && !__atomic_compare_exchange_n(&l->nmi_pending, &n, 1, false,
                                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            ;
        return false;
    }
    if (cpu && cpu->ev.int_shadow)
        return false;
    while (n) {
        uint32_t left = n > 2 ? 1 : n - 1;
        if (__atomic_compare_exchange_n(&l->nmi_pending, &n, left, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return true;
    }
    return false;
}

/* ---------------- INIT / SIPI / HLT ---------------- */

bool abi_lapic_take_init(struct abi_lapic *l)
{
    return __atomic_exchange_n(&l->init_pending, 0, __ATOMIC_ACQ_REL) != 0;
}

bool abi_lapic_latched_init(struct abi_lapic *l)
{
    return __atomic_load_n(&l->init_pending, __ATOMIC_ACQUIRE) != 0;
}

void abi_lapic_set_latched_init(struct abi_lapic *l, bool on)
{
    __atomic_store_n(&l->init_pending, on ? 1u : 0u, __ATOMIC_RELEASE);
}

bool abi_lapic_take_sipi(struct abi_lapic *l, uint8_t *vector)
{
    if (!__atomic_exchange_n(&l->sipi_pending, 0, __ATOMIC_ACQ_REL))
        return false;
    *vector = (uint8_t)__atomic_load_n(&l->sipi_vector, __ATOMIC_ACQUIRE);
    return true;
}

bool abi_lapic_runnable(struct abi_lapic *l, bool irq_allowed)
{
    if (__atomic_load_n(&l->nmi_pending, __ATOMIC_ACQUIRE) ||
        __atomic_load_n(&l->pv_unhalted, __ATOMIC_ACQUIRE) || /* kvm_arch_vcpu_runnable */
        __atomic_load_n(&l->smi_pending, __ATOMIC_ACQUIRE)) /* kvm_vcpu_has_events: SMI */
        return true;
    if (__atomic_load_n(&l->init_pending, __ATOMIC_ACQUIRE) ||
        __atomic_load_n(&l->sipi_pending, __ATOMIC_ACQUIRE))
        return true;
    if (!irq_allowed)
        return false;
    bool from_pic, from_ext;
    return deliverable(l, l->cpu, &from_pic, &from_ext) >= 0;
}

static enum abi_lapic_wake wait_ret(struct abi_lapic *l, enum abi_lapic_wake w)
{
    __atomic_store_n(&l->sleeping, 0, __ATOMIC_SEQ_CST);
    return w;
}

enum abi_lapic_wake abi_lapic_wait(struct abi_lapic *l, bool irq_allowed)
{
    for (;;) {
        __atomic_store_n(&l->sleeping, 1, __ATOMIC_SEQ_CST);
        uint32_t seq = __atomic_load_n(&l->wake_seq, __ATOMIC_SEQ_CST);
        if (__atomic_exchange_n(&l->kicked, 0, __ATOMIC_SEQ_CST))
            return wait_ret(l, ABI_LAPIC_WAKE_KICK);
        if (__atomic_load_n(&l->init_pending, __ATOMIC_SEQ_CST) ||
            __atomic_load_n(&l->sipi_pending, __ATOMIC_SEQ_CST))
            return wait_ret(l, ABI_LAPIC_WAKE_EVENT);
        /* a PV kick ends the halt and is consumed by it (x86.c vcpu_block: a HALTED vCPU
         * made runnable clears pv_unhalted) */
        if (__atomic_exchange_n(&l->pv_unhalted, 0, __ATOMIC_SEQ_CST))
            return wait_ret(l, ABI_LAPIC_WAKE_IRQ);
        if (__atomic_load_n(&l->nmi_pending, __ATOMIC_SEQ_CST) ||
            __atomic_load_n(&l->smi_pending, __ATOMIC_SEQ_CST) ||
            (irq_allowed && abi_lapic_runnable(l, true)))
            return wait_ret(l, ABI_LAPIC_WAKE_IRQ);
        /* The timer thread fires expiries into IRR and bumps wake_seq, so a
         * plain futex wait covers timers, IPIs and kicks; a signal handler
         * interrupts it with EINTR. */
        long r = syscall(SYS_futex, &l->wake_seq, FUTEX_WAIT_PRIVATE, seq, NULL, NULL, 0);
        if (r == -1 && errno == EINTR)
            return wait_ret(l, ABI_LAPIC_WAKE_SIGNAL);
        /* Otherwise woken (or EAGAIN: seq moved): loop and re-check. */
    }
}

/* The PIC's INT output went (or may have gone) high: wake the vCPUs whose
 * LINT0 takes ExtINT (KVM kvm_pic_update_irq -> kick). chip->lock held. */
void lapic_kick_pic_acceptors(struct abi_irqchip *chip)
{
    if (!pic_has_output(&chip->pic))
        return;
    pthread_mutex_lock(&chip->lapics_lock);
    for (unsigned i = 0; i < chip->nlive; i++) {
        struct abi_lapic *l = chip->lapics[i];
        if (l && accepts_pic(l))
            lapic_notify(l);
    }
    pthread_mutex_unlock(&chip->lapics_lock);
}

/* kvm_apic_set_irq() with a fixed, edge-triggered vector (Hyper-V PV IPIs, kvm_hv_send_ipi_
 * to_many): false when the APIC is disabled and drops it. */
bool abi_lapic_deliver_fixed(struct abi_lapic *l, uint8_t vector)
{
    struct apic_irq irq = {.vector = vector, .delivery_mode = APIC_DM_FIXED};
    if (!lapic_accept_irq(l, &irq))
        return false;
    lapic_notify(l);
    return true;
}
