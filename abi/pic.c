/* abi/pic.c: the cascaded 8259A pair (master IRQ0-7, slave IRQ8-15 on the
 * master's IRQ2) plus the PIIX ELCR, as KVM's i8259.c models them: fixed and
 * rotating priorities, ICW1-4 init sequence, OCW2/OCW3, auto-EOI, poll mode,
 * edge vs level (ELCR). chip->lock is held by every caller. */
#include <stddef.h>
#include <string.h>

#include "abi/irqchip_internal.h"

/* Every abi_pic is the one embedded in an abi_irqchip. */
static struct abi_irqchip *pic_chip(struct abi_pic *p)
{
    return (struct abi_irqchip *)(void *)((char *)p - offsetof(struct abi_irqchip, pic));
}

/* An ISR bit of unit `u` was cleared: KVM pic_clear_isr -> kvm_notify_acked_irq. */
static void pic_acked(struct abi_pic *p, unsigned u, int irq)
{
    irqchip_notify_acked(pic_chip(p), u ? KVM_IRQCHIP_PIC_SLAVE : KVM_IRQCHIP_PIC_MASTER,
                         (unsigned)irq);
}

/* Lowest priority number (0 = highest) of the set bits in `mask`, given the
 * rotation `priority_add`; 8 if none. */
static int get_priority(const struct pic_unit *s, uint8_t mask)
{
    if (!mask)
        return 8;
    int p = 0;
    while (!(mask & (1u << ((p + s->priority_add) & 7))))
        p++;
    return p;
}

/* Highest-priority requested IRQ that beats the in-service one, or -1. */
static int unit_get_irq(const struct pic_unit *s, bool master)
{
    int prio = get_priority(s, s->irr & ~s->imr);
    if (prio == 8)
        return -1;
    uint8_t in_service = s->isr;
    /* Special fully nested mode: the slave's IRQs may interrupt each other
     * through the cascade even while IRQ2 is in service. */
    if (master && s->special_fully_nested_mode)
        in_service &= ~(1u << 2);
    if (prio < get_priority(s, in_service))
        return (prio + s->priority_add) & 7;
    return -1;
}

/* Line level change on one unit; returns KVM's status (1 new, 0 coalesced, -1 masked). */
static int unit_set_irq(struct pic_unit *s, unsigned irq, int level)
{
    uint8_t mask = 1u << irq;
    int ret = 1;
    if (s->elcr & mask) { /* level triggered */
        if (level) {
            ret = !(s->irr & mask);
            s->irr |= mask;
            s->last_irr |= mask;
        } else {
            s->irr &= ~mask;
            s->last_irr &= ~mask;
        }
    } else { /* edge triggered: latch on the rising edge */
        if (level) {
            if (!(s->last_irr & mask)) {
                ret = !(s->irr & mask);
                s->irr |= mask;
            } /* no new edge: KVM still reports 1 */
            s->last_irr |= mask;
        } else {
            s->last_irr &= ~mask;
        }
    }
    return (s->imr & mask) ? -1 : ret;
}

static void update_output(struct abi_pic *p)
{
    /* A slave request pulses the master's IRQ2 edge (KVM pic_update_irq), so
     * the cascade re-latches after every INTA while the slave still asks. */
    if (unit_get_irq(&p->unit[1], false) >= 0) {
        unit_set_irq(&p->unit[0], 2, 1);
        unit_set_irq(&p->unit[0], 2, 0);
    }
    bool out = unit_get_irq(&p->unit[0], true) >= 0;
    __atomic_store_n(&p->output, out, __ATOMIC_RELEASE);
}

void pic_reset(struct abi_pic *p)
{
    memset(p, 0, sizeof(*p));
    p->unit[0].elcr_mask = 0xf8; /* IRQ0-2 are always edge (PIIX) */
    p->unit[1].elcr_mask = 0xde; /* IRQ8, IRQ13 always edge */
}

int pic_set_irq(struct abi_pic *p, unsigned irq, int level)
{
    if (irq >= 16)
        return -1;
    int r = unit_set_irq(&p->unit[irq >> 3], irq & 7, level);
    update_output(p);
    return r;
}

bool pic_has_output(struct abi_pic *p)
{
    return __atomic_load_n(&p->output, __ATOMIC_ACQUIRE);
}

static void intack(struct abi_pic *p, unsigned u, int irq)
{
    struct pic_unit *s = &p->unit[u];
    if (!(s->elcr & (1u << irq)))
        s->irr &= ~(1u << irq); /* edge: the request is consumed */
    if (s->auto_eoi) {
        if (s->rotate_on_auto_eoi)
            s->priority_add = (irq + 1) & 7;
        pic_acked(p, u, irq); /* KVM: set then clear ISR, notifying the ack */
    } else {
        s->isr |= 1u << irq;
    }
}

static int resolve(struct abi_pic *p, bool ack)
{
    int irq = unit_get_irq(&p->unit[0], true);
    if (irq < 0) /* spurious IRQ7 */
        return p->unit[0].irq_base + 7;
    if (ack)
        intack(p, 0, irq);
    if (irq != 2)
        return p->unit[0].irq_base + irq;
    int irq2 = unit_get_irq(&p->unit[1], false);
    if (irq2 < 0)
        irq2 = 7; /* spurious IRQ15 */
    else if (ack)
        intack(p, 1, irq2);
    return p->unit[1].irq_base + irq2;
}

int pic_peek_irq(struct abi_pic *p)
{
    return resolve(p, false);
}

int pic_read_irq(struct abi_pic *p)
{
    int v = resolve(p, true);
    update_output(p);
    return v;
}

/* ---------------- port I/O ---------------- */

static void unit_reinit(struct abi_pic *p, unsigned u)
{
    /* ICW1: KVM kvm_pic_reset, keeping ELCR and level-triggered requests;
     * KVM notifies an ack for every edge request dropped here. */
    struct pic_unit *s = &p->unit[u];
    uint8_t edge_irr = s->irr & ~s->elcr;
    s->last_irr = 0;
    s->irr &= s->elcr;
    s->imr = 0;
    s->isr = 0;
    s->priority_add = 0;
    s->special_mask = 0;
    s->read_reg_select = 0;
    if (!s->init4) {
        s->special_fully_nested_mode = 0;
        s->auto_eoi = 0;
    }
    s->init_state = 1;
    for (int irq = 0; irq < 8; irq++)
        if (edge_irr & (1u << irq))
            pic_acked(p, u, irq);
}

static void ocw2(struct abi_pic *p, unsigned u, uint8_t val)
{
    struct pic_unit *s = &p->unit[u];
    unsigned cmd = val >> 5;
    int prio, irq;
    switch (cmd) {
    case 0: case 4: /* rotate in auto-EOI mode clear/set */
        s->rotate_on_auto_eoi = cmd >> 2;
        break;
    case 1: case 5: /* non-specific EOI (5: and rotate) */
        prio = get_priority(s, s->isr);
        if (prio != 8) {
            irq = (prio + s->priority_add) & 7;
            if (cmd == 5)
                s->priority_add = (irq + 1) & 7;
            s->isr &= ~(1u << irq);
            pic_acked(p, u, irq);
        }
        break;
    case 3: /* specific EOI */
        s->isr &= ~(1u << (val & 7));
        pic_acked(p, u, val & 7);
        break;
    case 6: /* set priority */
        s->priority_add = (val + 1) & 7;
        break;
    case 7: /* rotate on specific EOI */
        irq = val & 7;
        s->priority_add = (irq + 1) & 7;
        s->isr &= ~(1u << irq);
        pic_acked(p, u, irq);
        break;
    default:
        break;
    }
}

static void unit_write(struct abi_pic *p, unsigned u, bool data_port, uint8_t val)
{
    struct pic_unit *s = &p->unit[u];
    if (!data_port) {
        if (val & 0x10) { /* ICW1 */
            s->init4 = val & 1;
            unit_reinit(p, u);
        } else if (val & 0x08) { /* OCW3 */
            if (val & 0x04)
                s->poll = 1;
            if (val & 0x02)
                s->read_reg_select = val & 1;
            if (val & 0x40)
                s->special_mask = (val >> 5) & 1;
        } else {
            ocw2(p, u, val);
        }
        return;
    }
    switch (s->init_state) {
    case 0: /* OCW1: interrupt mask */
        s->imr = val;
        break;
    case 1: /* ICW2: vector base */
        s->irq_base = val & 0xf8;
        s->init_state = 2;
        break;
    case 2: /* ICW3: cascade wiring (fixed here) */
        s->init_state = s->init4 ? 3 : 0;
        break;
    case 3: /* ICW4 */
        s->special_fully_nested_mode = (val >> 4) & 1;
        s->auto_eoi = (val >> 1) & 1;
        s->init_state = 0;
        break;
    }
}

static uint8_t poll_read(struct abi_pic *p, unsigned u)
{
    struct pic_unit *s = &p->unit[u];
    int irq = unit_get_irq(s, u == 0);
    if (irq < 0)
        return 0x07;
    if (u == 1) {
        p->unit[0].isr &= ~(1u << 2);
        p->unit[0].irr &= ~(1u << 2);
    }
    s->irr &= ~(1u << irq);
    s->isr &= ~(1u << irq);
    pic_acked(p, u, irq);
    return 0x80 | (uint8_t)irq; /* OCW3 poll word: bit 7 = interrupt present */
}

/* Ports 0x20/0x21 (master), 0xa0/0xa1 (slave), 0x4d0/0x4d1 (ELCR).
 * Returns 0 if the port belongs to the PIC, -1 otherwise. */
int pic_ioport_write(struct abi_pic *p, uint16_t port, uint8_t val)
{
    switch (port) {
    case 0x20: case 0x21: case 0xa0: case 0xa1:
        unit_write(p, port >= 0xa0, port & 1, val);
        break;
    case 0x4d0: case 0x4d1:
        p->unit[port & 1].elcr = val & p->unit[port & 1].elcr_mask;
        break;
    default:
        return -1;
    }
    update_output(p);
    return 0;
}

int pic_ioport_read(struct abi_pic *p, uint16_t port, uint8_t *val)
{
    switch (port) {
    case 0x20: case 0x21: case 0xa0: case 0xa1: {
        unsigned u = port >= 0xa0;
        struct pic_unit *s = &p->unit[u];
        if (s->poll) {
            s->poll = 0;
            *val = poll_read(p, u);
        } else if (!(port & 1)) {
            *val = s->read_reg_select ? s->isr : s->irr;
        } else {
            *val = s->imr;
        }
        break;
    }
    case 0x4d0: case 0x4d1:
        *val = p->unit[port & 1].elcr;
        break;
    default:
        return -1;
    }
    update_output(p);
    return 0;
}

/* ---------------- KVM_GET/SET_IRQCHIP ---------------- */

void pic_get_state(const struct abi_pic *p, unsigned unit, struct kvm_pic_state *st)
{
    const struct pic_unit *s = &p->unit[unit];
    *st = (struct kvm_pic_state){
        .last_irr = s->last_irr, .irr = s->irr, .imr = s->imr, .isr = s->isr,
        .priority_add = s->priority_add, .irq_base = s->irq_base,
        .read_reg_select = s->read_reg_select, .poll = s->poll, .special_mask = s->special_mask,
        .init_state = s->init_state, .auto_eoi = s->auto_eoi,
        .rotate_on_auto_eoi = s->rotate_on_auto_eoi,
        .special_fully_nested_mode = s->special_fully_nested_mode, .init4 = s->init4,
        .elcr = s->elcr, .elcr_mask = s->elcr_mask,
    };
}

void pic_set_state(struct abi_pic *p, unsigned unit, const struct kvm_pic_state *st)
{
    struct pic_unit *s = &p->unit[unit];
    *s = (struct pic_unit){
        .last_irr = st->last_irr, .irr = st->irr, .imr = st->imr, .isr = st->isr,
        .priority_add = st->priority_add, .irq_base = st->irq_base,
        .read_reg_select = st->read_reg_select, .poll = st->poll, .special_mask = st->special_mask,
        .init_state = st->init_state, .auto_eoi = st->auto_eoi,
        .rotate_on_auto_eoi = st->rotate_on_auto_eoi,
        .special_fully_nested_mode = st->special_fully_nested_mode, .init4 = st->init4,
        .elcr = st->elcr, .elcr_mask = st->elcr_mask,
    };
    update_output(p);
}
