/* abi/ioapic.c: the 82093AA I/O APIC (version 0x11, 24 pins, no EOI
 * register) as KVM's ioapic.c models it: indirect IOREGSEL/IOWIN access,
 * redirection table with read-only Remote IRR/delivery status, edge vs level
 * pins, and EOI broadcast from the LAPICs clearing Remote IRR and
 * re-delivering a still-asserted level pin. chip->lock held by all callers. */
#include <string.h>

#include "abi/irqchip_internal.h"

#define IOAPIC_DEFAULT_BASE 0xfec00000ull
#define IOAPIC_VERSION 0x11u
#define IOREGSEL 0x00
#define IOWIN 0x10

void ioapic_reset(struct abi_ioapic *io)
{
    memset(io, 0, sizeof(*io));
    for (unsigned i = 0; i < IOAPIC_PINS; i++)
        io->redir[i].f.mask = 1;
    io->base_address = IOAPIC_DEFAULT_BASE;
}

/* Send pin's redirection entry as an interrupt message (KVM ioapic_service). */
static int service(struct abi_irqchip *chip, unsigned pin)
{
    struct abi_ioapic *io = &chip->ioapic;
    typeof(io->redir[0]) *e = &io->redir[pin];
    if (e->f.mask || (e->f.trig_mode && e->f.remote_irr))
        return -1;
    struct apic_irq irq = {
        .vector = e->f.vector,
        .delivery_mode = e->f.delivery_mode,
        .logical = e->f.dest_mode,
        .level = e->f.trig_mode,
        .assert = true,
        .dest = e->f.dest_id,
    };
    if (!e->f.trig_mode)
        io->irr_delivered |= 1u << pin;
    int ret = irqchip_deliver(chip, NULL, &irq);
    if (ret > 0 && e->f.trig_mode)
        e->f.remote_irr = 1;
    return ret;
}

int ioapic_set_irq(struct abi_irqchip *chip, unsigned pin, int level)
{
    struct abi_ioapic *io = &chip->ioapic;
    if (pin >= IOAPIC_PINS)
        return -1;
    uint32_t mask = 1u << pin;
    if (!level) {
        io->irr &= ~mask;
        return 1;
    }
    uint32_t old = io->irr;
    io->irr |= mask;
    if (!io->redir[pin].f.trig_mode) { /* edge: only a rising edge delivers */
        io->irr_delivered &= ~mask;
        if (old == io->irr)
            return 0;
    }
    return service(chip, pin);
}

void ioapic_eoi(struct abi_irqchip *chip, uint8_t vector, bool level)
{
    struct abi_ioapic *io = &chip->ioapic;
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
        if (io->redir[pin].f.vector != vector)
            continue;
        /* KVM kvm_ioapic_update_eoi_one: ack notifiers first (chip->lock is
         * dropped there), then Remote IRR, so a line the notifier lowered
         * (irqfd resampling) is not delivered again. */
        irqchip_notify_acked(chip, KVM_IRQCHIP_IOAPIC, pin);
        typeof(io->redir[0]) *e = &io->redir[pin];
        if (!level || !e->f.trig_mode)
            continue;
        e->f.remote_irr = 0;
        if (!e->f.mask && (io->irr & (1u << pin)))
            service(chip, pin); /* line still asserted: deliver again */
    }
}

static uint32_t read_indirect(const struct abi_ioapic *io)
{
    switch (io->ioregsel) {
    case 0x00: /* ID */
    case 0x02: /* arbitration ID */
        return (io->id & 0xf) << 24;
    case 0x01: /* version: max redirection entry in 23:16 */
        return ((IOAPIC_PINS - 1) << 16) | IOAPIC_VERSION;
    default: {
        uint32_t idx = (io->ioregsel - 0x10) >> 1;
        uint64_t v = ~0ull;
        if (io->ioregsel >= 0x10 && idx < IOAPIC_PINS)
            v = io->redir[idx].bits;
        return (io->ioregsel & 1) ? (uint32_t)(v >> 32) : (uint32_t)v;
    }
    }
}

static void write_indirect(struct abi_irqchip *chip, uint32_t val)
{
    struct abi_ioapic *io = &chip->ioapic;
    switch (io->ioregsel) {
    case 0x00:
        io->id = (val >> 24) & 0xf;
        return;
    case 0x01: case 0x02:
        return; /* read-only */
    default:
        break;
    }
    uint32_t idx = (io->ioregsel - 0x10) >> 1;
    if (io->ioregsel < 0x10 || idx >= IOAPIC_PINS)
        return;
    typeof(io->redir[0]) *e = &io->redir[idx];
    uint8_t remote_irr = e->f.remote_irr, status = e->f.delivery_status;
    if (io->ioregsel & 1)
        e->bits = (e->bits & 0xffffffffull) | ((uint64_t)val << 32);
    else
        e->bits = (e->bits & ~0xffffffffull) | val;
    e->f.remote_irr = remote_irr;
    e->f.delivery_status = status;
    /* Guests (Linux, Xen) expect switching a pin to edge to clear Remote IRR,
     * the 82093AA's substitute for an EOI register. */
    if (!e->f.trig_mode)
        e->f.remote_irr = 0;
    if (e->f.trig_mode && (io->irr & (1u << idx)) && !e->f.mask && !e->f.remote_irr)
        service(chip, idx);
}

/* Only the exact offsets 0x00 and 0x10 are registers (KVM ioapic_mmio_read/
 * write switch on the offset itself); everything else reads 0, drops writes. */
uint32_t ioapic_mmio_read(struct abi_irqchip *chip, unsigned off)
{
    switch (off) {
    case IOREGSEL:
        return chip->ioapic.ioregsel;
    case IOWIN:
        return read_indirect(&chip->ioapic);
    default:
        return 0;
    }
}

void ioapic_mmio_write(struct abi_irqchip *chip, unsigned off, uint32_t val)
{
    switch (off) {
    case IOREGSEL:
        chip->ioapic.ioregsel = val & 0xff; /* an 8-bit register */
        break;
    case IOWIN:
        write_indirect(chip, val);
        break;
    default:
        break;
    }
}

void ioapic_get_state(const struct abi_ioapic *io, struct kvm_ioapic_state *s)
{
    memset(s, 0, sizeof(*s));
    s->base_address = io->base_address;
    s->ioregsel = io->ioregsel;
    s->id = io->id;
    /* KVM reports IRR without the edge pins already delivered. */
    s->irr = io->irr & ~io->irr_delivered;
    for (unsigned i = 0; i < IOAPIC_PINS; i++)
        s->redirtbl[i].bits = io->redir[i].bits;
}

void ioapic_set_state(struct abi_irqchip *chip, const struct kvm_ioapic_state *s)
{
    struct abi_ioapic *io = &chip->ioapic;
    io->base_address = s->base_address;
    io->ioregsel = s->ioregsel;
    io->id = s->id;
    io->irr = 0;
    io->irr_delivered = 0;
    for (unsigned i = 0; i < IOAPIC_PINS; i++)
        io->redir[i].bits = s->redirtbl[i].bits;
    /* KVM kvm_ioapic_inject_all: re-assert the saved IRR lines. */
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
        if (s->irr & (1u << pin))
            ioapic_set_irq(chip, pin, 1);
}
