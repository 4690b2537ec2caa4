/* abi/irqchip.c: the VM-level interrupt controller object (KVM_CREATE_IRQCHIP):
 * lifetime, VM-wide APIC settings, GSI routing and KVM_IRQ_LINE /
 * KVM_SIGNAL_MSI / KVM_GET,SET_IRQCHIP, and guest access to the PIC ports and
 * IOAPIC window. Routing semantics mirror Linux 6.12 irq_comm.c/irqchip.c. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "abi/irqchip_internal.h"

#define KVM_MAX_IRQ_ROUTES 4096 /* Linux: KVM_MAX_IRQ_ROUTES on x86 */

/* ---------------- routing ---------------- */

static bool msi_route_invalid(const struct abi_irqchip *chip, const struct kvm_irq_routing_msi *m)
{
    /* With 32-bit x2APIC IDs, address_hi[7:0] must be zero (KVM kvm_msi_route_invalid). */
    return chip->x2apic_format && (m->address_hi & 0xff);
}

static int check_route(const struct abi_irqchip *chip, const struct kvm_irq_routing_entry *e)
{
    if (e->gsi >= KVM_MAX_IRQ_ROUTES || e->flags)
        return -EINVAL;
    switch (e->type) {
    case KVM_IRQ_ROUTING_IRQCHIP:
        switch (e->u.irqchip.irqchip) {
        case KVM_IRQCHIP_PIC_MASTER:
        case KVM_IRQCHIP_PIC_SLAVE:
            return e->u.irqchip.pin < 8 ? 0 : -EINVAL;
        case KVM_IRQCHIP_IOAPIC:
            return e->u.irqchip.pin < IOAPIC_PINS ? 0 : -EINVAL;
        default:
            return -EINVAL;
        }
    case KVM_IRQ_ROUTING_MSI:
        return msi_route_invalid(chip, &e->u.msi) ? -EINVAL : 0;
    default:
        return -EINVAL; /* Hyper-V SynIC / Xen routes are not offered */
    }
}

int abi_irqchip_set_gsi_routing(struct abi_irqchip *chip, const struct kvm_irq_routing *r)
{
    if (r->nr > KVM_MAX_IRQ_ROUTES || r->flags)
        return -EINVAL;
    struct irq_route *routes = calloc(r->nr ? r->nr : 1, sizeof(*routes));
    if (!routes)
        return -ENOMEM;
    for (unsigned i = 0; i < r->nr; i++) {
        const struct kvm_irq_routing_entry *e = &r->entries[i];
        int err = check_route(chip, e);
        /* A GSI may fan out only to different irqchips (KVM setup_routing_entry). */
        for (unsigned j = 0; !err && j < i; j++) {
            if (routes[j].gsi != e->gsi)
                continue;
            if (routes[j].type != KVM_IRQ_ROUTING_IRQCHIP || e->type != KVM_IRQ_ROUTING_IRQCHIP ||
                routes[j].irqchip == e->u.irqchip.irqchip)
                err = -EINVAL;
        }
        if (err) {
            free(routes);
            return err;
        }
        routes[i] = (struct irq_route){.gsi = e->gsi, .type = e->type};
        if (e->type == KVM_IRQ_ROUTING_IRQCHIP) {
            routes[i].irqchip = e->u.irqchip.irqchip;
            routes[i].pin = e->u.irqchip.pin;
        } else {
            routes[i].msi = e->u.msi;
        }
    }
    pthread_mutex_lock(&chip->lock);
    free(chip->routes);
    chip->routes = routes;
    chip->nroutes = r->nr;
    pthread_mutex_unlock(&chip->lock);
    return 0;
}

static int default_routing(struct abi_irqchip *chip)
{
    /* irq_comm.c default_routing: GSI 0-15 to both PIC and IOAPIC pin = GSI,
     * GSI 16-23 to the IOAPIC only. */
    unsigned n = 16 * 2 + 8;
    struct kvm_irq_routing *r = calloc(1, sizeof(*r) + n * sizeof(r->entries[0]));
    if (!r)
        return -ENOMEM;
    unsigned k = 0;
    for (unsigned gsi = 0; gsi < ABI_IRQCHIP_NR_GSIS; gsi++) {
        if (gsi < 16) {
            r->entries[k].gsi = gsi;
            r->entries[k].type = KVM_IRQ_ROUTING_IRQCHIP;
            r->entries[k].u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
            r->entries[k].u.irqchip.pin = gsi & 7;
            k++;
        }
        r->entries[k].gsi = gsi;
        r->entries[k].type = KVM_IRQ_ROUTING_IRQCHIP;
        r->entries[k].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        r->entries[k].u.irqchip.pin = gsi;
        k++;
    }
    r->nr = k;
    int err = abi_irqchip_set_gsi_routing(chip, r);
    free(r);
    return err;
}

/* MSI address/data to an interrupt message (Intel SDM vol.3 10.11). chip->lock held. */
static void msi_to_irq(const struct abi_irqchip *chip, uint32_t addr_lo, uint32_t addr_hi,
                       uint32_t data, struct apic_irq *irq)
{
    *irq = (struct apic_irq){
        .vector = data & 0xff,
        .delivery_mode = (data >> 8) & 7,
        .level = data & (1u << 15),
        .assert = true,
        .logical = addr_lo & (1u << 2),
        .redir_hint = addr_lo & (1u << 3),
        .dest = (addr_lo >> 12) & 0xff,
    };
    if (chip->x2apic_format) {
        irq->dest |= addr_hi & 0xffffff00u; /* extended destination ID */
        irq->x2apic_dest = irq->dest > 0xff;
    }
}

static int set_route(struct abi_irqchip *chip, const struct irq_route *rt, int level)
{
    int r;
    switch (rt->type) {
    case KVM_IRQ_ROUTING_IRQCHIP:
        if (rt->irqchip == KVM_IRQCHIP_IOAPIC)
            return ioapic_set_irq(chip, rt->pin, level);
        r = pic_set_irq(&chip->pic, rt->pin + (rt->irqchip == KVM_IRQCHIP_PIC_SLAVE ? 8 : 0), level);
        lapic_kick_pic_acceptors(chip);
        return r;
    case KVM_IRQ_ROUTING_MSI: {
        if (!level)
            return -1;
        struct apic_irq irq;
        msi_to_irq(chip, rt->msi.address_lo, rt->msi.address_hi, rt->msi.data, &irq);
        return irqchip_deliver(chip, NULL, &irq);
    }
    default:
        return -1;
    }
}

int abi_irqchip_set_irq(struct abi_irqchip *chip, uint32_t irq, int level)
{
    int ret = -1;
    pthread_mutex_lock(&chip->lock);
    for (unsigned i = 0; i < chip->nroutes; i++) {
        if (chip->routes[i].gsi != irq)
            continue;
        int r = set_route(chip, &chip->routes[i], level);
        if (r < 0)
            continue;
        ret = r + (ret < 0 ? 0 : ret);
    }
    pthread_mutex_unlock(&chip->lock);
    return ret;
}

int abi_irqchip_signal_msi(struct abi_irqchip *chip, const struct kvm_msi *msi)
{
    if (msi->flags & ~(uint32_t)KVM_MSI_VALID_DEVID)
        return -EINVAL;
    struct kvm_irq_routing_msi m = {.address_lo = msi->address_lo, .address_hi = msi->address_hi,
                                    .data = msi->data};
    if (msi_route_invalid(chip, &m))
        return -EINVAL;
    struct apic_irq irq;
    pthread_mutex_lock(&chip->lock);
    msi_to_irq(chip, msi->address_lo, msi->address_hi, msi->data, &irq);
    int r = irqchip_deliver(chip, NULL, &irq);
    pthread_mutex_unlock(&chip->lock);
    return r;
}

/* ---------------- ack notifier ---------------- */

void abi_irqchip_set_ack_notifier(struct abi_irqchip *chip, abi_irqchip_ack_fn *fn, void *ctx)
{
    pthread_mutex_lock(&chip->lock);
    chip->ack_ctx = ctx;
    __atomic_store_n(&chip->ack_fn, fn, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&chip->lock);
}

/* GSI of irqchip/pin: the last route naming it wins, as KVM fills its
 * chip[irqchip][pin] map in table order (setup_routing_entry). chip->lock held. */
static int map_chip_pin(const struct abi_irqchip *chip, unsigned irqchip, unsigned pin)
{
    int gsi = -1;
    for (unsigned i = 0; i < chip->nroutes; i++) {
        const struct irq_route *rt = &chip->routes[i];
        if (rt->type == KVM_IRQ_ROUTING_IRQCHIP && rt->irqchip == irqchip && rt->pin == pin)
            gsi = (int)rt->gsi;
    }
    return gsi;
}

void irqchip_notify_acked(struct abi_irqchip *chip, unsigned irqchip, unsigned pin)
{
    abi_irqchip_ack_fn *fn = chip->ack_fn;
    if (!fn)
        return;
    int gsi = map_chip_pin(chip, irqchip, pin);
    if (gsi < 0)
        return;
    void *ctx = chip->ack_ctx;
    /* KVM (kvm_ioapic_update_eoi_one, pic_clear_isr) drops its lock here
     * because notifiers re-enter the irqchip to lower the line. */
    pthread_mutex_unlock(&chip->lock);
    fn(ctx, (uint32_t)gsi);
    pthread_mutex_lock(&chip->lock);
}

/* ---------------- KVM_GET/SET_IRQCHIP ---------------- */

int abi_irqchip_get(struct abi_irqchip *chip, struct kvm_irqchip *s)
{
    int err = 0;
    pthread_mutex_lock(&chip->lock);
    switch (s->chip_id) {
    case KVM_IRQCHIP_PIC_MASTER:
    case KVM_IRQCHIP_PIC_SLAVE:
        pic_get_state(&chip->pic, s->chip_id, &s->chip.pic);
        break;
    case KVM_IRQCHIP_IOAPIC:
        ioapic_get_state(&chip->ioapic, &s->chip.ioapic);
        break;
    default:
        err = -EINVAL;
    }
    pthread_mutex_unlock(&chip->lock);
    return err;
}

int abi_irqchip_set(struct abi_irqchip *chip, const struct kvm_irqchip *s)
{
    int err = 0;
    pthread_mutex_lock(&chip->lock);
    switch (s->chip_id) {
    case KVM_IRQCHIP_PIC_MASTER:
    case KVM_IRQCHIP_PIC_SLAVE:
        pic_set_state(&chip->pic, s->chip_id, &s->chip.pic);
        lapic_kick_pic_acceptors(chip);
        break;
    case KVM_IRQCHIP_IOAPIC:
        ioapic_set_state(chip, &s->chip.ioapic);
        break;
    default:
        err = -EINVAL;
    }
    pthread_mutex_unlock(&chip->lock);
    return err;
}

/* ---------------- guest access ---------------- */

bool abi_irqchip_pio(struct abi_irqchip *chip, uint16_t port, bool in, void *data, unsigned size)
{
    bool pic_port = port == 0x20 || port == 0x21 || port == 0xa0 || port == 0xa1 || port == 0x4d0 ||
                    port == 0x4d1;
    if (!pic_port)
        return false;
    uint8_t *b = data;
    /* KVM's PIC (picdev_read/write) only does byte accesses: wider reads
     * return 0 and wider writes are dropped. */
    if (size != 1) {
        if (in)
            memset(data, 0, size);
        return true;
    }
    pthread_mutex_lock(&chip->lock);
    if (in) {
        pic_ioport_read(&chip->pic, port, b);
    } else {
        pic_ioport_write(&chip->pic, port, b[0]);
        lapic_kick_pic_acceptors(chip);
    }
    pthread_mutex_unlock(&chip->lock);
    return true;
}

bool abi_irqchip_mmio(struct abi_irqchip *chip, uint64_t gpa, bool write, void *data, unsigned len)
{
    pthread_mutex_lock(&chip->lock);
    uint64_t base = chip->ioapic.base_address;
    if (gpa < base || gpa >= base + 0x100) {
        pthread_mutex_unlock(&chip->lock);
        return false;
    }
    unsigned off = (unsigned)(gpa - base);
    if (write) {
        uint32_t v = 0; /* an 8-byte write stores its low 32 bits */
        memcpy(&v, data, len < 4 ? len : 4);
        ioapic_mmio_write(chip, off, v);
    } else {
        uint64_t v = ioapic_mmio_read(chip, off);
        memset(data, 0, len);
        memcpy(data, &v, len < 8 ? len : 8);
    }
    pthread_mutex_unlock(&chip->lock);
    return true;
}

/* ---------------- lifecycle and settings ---------------- */

struct abi_irqchip *abi_irqchip_create(void)
{
    struct abi_irqchip *chip = calloc(1, sizeof(*chip));
    if (!chip)
        return NULL;
    pthread_mutex_init(&chip->lock, NULL);
    pthread_mutex_init(&chip->lapics_lock, NULL);
    chip->tsc_khz = 1000000;
    chip->bus_cycle_ns = 1; /* KVM APIC_BUS_CYCLE_NS_DEFAULT */
    pic_reset(&chip->pic);
    ioapic_reset(&chip->ioapic);
    if (default_routing(chip))
        goto fail;

    /* The timer thread must never take the process's signals (the VMM's
     * vCPU-kick signals belong to vCPU threads). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int err = irqchip_timer_start(chip);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        goto fail;
    return chip;
fail:
    free(chip->routes);
    pthread_mutex_destroy(&chip->lock);
    pthread_mutex_destroy(&chip->lapics_lock);
    free(chip);
    return NULL;
}

void abi_irqchip_destroy(struct abi_irqchip *chip)
{
    if (!chip)
        return;
    irqchip_timer_stop(chip);
    free(chip->routes);
    pthread_mutex_destroy(&chip->lock);
    pthread_mutex_destroy(&chip->lapics_lock);
    free(chip);
}

void abi_irqchip_set_tsc_khz(struct abi_irqchip *chip, uint32_t khz)
{
    chip->tsc_khz = khz ? khz : 1;
}

uint32_t abi_irqchip_tsc_khz(const struct abi_irqchip *chip)
{
    return chip->tsc_khz;
}

int abi_irqchip_set_bus_cycle_ns(struct abi_irqchip *chip, uint64_t ns)
{
    /* KVM: 0 or a value that overflows U32_MAX * 128 (max TMICT x max
     * divisor) is refused, and so is any change once a vCPU exists. */
    if (!ns || ns > UINT64_MAX / (0xffffffffull * 128))
        return -EINVAL;
    pthread_mutex_lock(&chip->lapics_lock);
    int err = chip->nlapics ? -EINVAL : 0;
    if (!err)
        chip->bus_cycle_ns = ns;
    pthread_mutex_unlock(&chip->lapics_lock);
    return err;
}

uint64_t abi_irqchip_bus_cycle_ns(const struct abi_irqchip *chip)
{
    return chip->bus_cycle_ns;
}

int abi_irqchip_set_x2apic_api(struct abi_irqchip *chip, uint64_t flags)
{
    if (flags & ~(uint64_t)(KVM_X2APIC_API_USE_32BIT_IDS | KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK))
        return -EINVAL;
    chip->x2apic_format = flags & KVM_X2APIC_API_USE_32BIT_IDS;
    chip->x2apic_broadcast_quirk_disabled = flags & KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK;
    return 0;
}
