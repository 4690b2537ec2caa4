#include "tests/check_main.h"
/* VM-level irqchip unit tests: 8259 PIC programming and INTA through the
 * BSP's LINT0, IOAPIC redirection (edge, level + EOI, masking), default and
 * custom GSI routing, MSI, KVM_GET/SET_IRQCHIP. Expected values follow Linux
 * 6.12 KVM (i8259.c, ioapic.c, irq_comm.c). */
#include <errno.h>
#include <stdlib.h>

#include "tests/abi/test_irqchip_util.h"

static struct abi_irqchip *chip;
static struct abi_lapic *l0, *l1;

static void setup(void)
{
    chip = abi_irqchip_create();
    ck_assert_ptr_nonnull(chip);
    l0 = abi_lapic_create(chip, NULL, 0, true);
    l1 = abi_lapic_create(chip, NULL, 1, false);
    ck_assert(l0 && l1);
    sw_enable(l0);
    sw_enable(l1);
}

static void teardown(void)
{
    abi_lapic_destroy(l0);
    abi_lapic_destroy(l1);
    abi_irqchip_destroy(chip);
}

static void outb(uint16_t port, uint8_t v)
{
    ck_assert(abi_irqchip_pio(chip, port, false, &v, 1));
}

static uint8_t inb(uint16_t port)
{
    uint8_t v = 0xee;
    ck_assert(abi_irqchip_pio(chip, port, true, &v, 1));
    return v;
}

/* Standard PC init: master base 0x20, slave base 0x28, ICW4 8086 mode. */
static void pic_init(void)
{
    outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x01);
    outb(0xa0, 0x11); outb(0xa1, 0x28); outb(0xa1, 0x02); outb(0xa1, 0x01);
    outb(0x21, 0x00);
    outb(0xa1, 0x00);
}

static void ioapic_write(unsigned reg, uint32_t v)
{
    ck_assert(abi_irqchip_mmio(chip, 0xfec00000, true, &reg, 4));
    ck_assert(abi_irqchip_mmio(chip, 0xfec00010, true, &v, 4));
}

static uint32_t ioapic_read(unsigned reg)
{
    uint32_t v = 0;
    ck_assert(abi_irqchip_mmio(chip, 0xfec00000, true, &reg, 4));
    ck_assert(abi_irqchip_mmio(chip, 0xfec00010, false, &v, 4));
    return v;
}

START_TEST(pic_extint_delivery)
{
    uint8_t v;
    ck_assert(!abi_irqchip_pio(chip, 0x60, true, &v, 1)); /* not a PIC port */
    pic_init();
    ck_assert_uint_eq(inb(0x21), 0);
    /* Edge IRQ 4 (GSI 4 default route also hits IOAPIC pin 4, masked). */
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 4, 1), 1);
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 4, 1), 1); /* no new edge: KVM's PIC still says 1 */
    abi_irqchip_set_irq(chip, 4, 0);
    /* The BSP's LINT0 is ExtINT: its pending vector is the PIC's. */
    ck_assert_int_eq(lapic_irq_pending(l0, NULL), 0x24);
    ck_assert_int_eq(lapic_irq_pending(l1, NULL), -1);
    lapic_irq_ack(l0, NULL, 0x24);
    outb(0x20, 0x0b); /* OCW3: read ISR */
    ck_assert_uint_eq(inb(0x20), 0x10);
    ck_assert_int_eq(lapic_irq_pending(l0, NULL), -1);
    ck_assert(!isr_has(l0, 0x24)); /* ExtINT vectors bypass the LAPIC ISR */
    outb(0x20, 0x20); /* non-specific EOI */
    ck_assert_uint_eq(inb(0x20), 0x00);

    /* Slave IRQ 12 cascades through master IRQ 2. */
    abi_irqchip_set_irq(chip, 12, 1);
    abi_irqchip_set_irq(chip, 12, 0);
    ck_assert_int_eq(take_irq(l0), 0x2c);
    outb(0xa0, 0x20);
    outb(0x20, 0x20);
    /* Masked IRQ: status -1 from the PIC, nothing pending. */
    outb(0x21, 0x02);
    abi_irqchip_set_irq(chip, 1, 1);
    ck_assert_int_eq(lapic_irq_pending(l0, NULL), -1);
    outb(0x21, 0x00);
    ck_assert_int_eq(lapic_irq_pending(l0, NULL), 0x21);
    /* Masking LINT0 cuts the PIC off. */
    mmio_wr(l0, APIC_REG_LVT0, APIC_LVT_MASKED | 0x700);
    ck_assert_int_eq(lapic_irq_pending(l0, NULL), -1);

    /* ELCR: only maskable bits stick. */
    outb(0x4d0, 0xff);
    ck_assert_uint_eq(inb(0x4d0), 0xf8);
    outb(0x4d1, 0xff);
    ck_assert_uint_eq(inb(0x4d1), 0xde);
}
END_TEST

START_TEST(pic_modes)
{
    pic_init();
    mmio_wr(l0, APIC_REG_LVT0, APIC_LVT_MASKED | 0x700); /* observe the PIC alone */
    /* Priority: IRQ3 beats IRQ5; poll mode (OCW3 P) returns 0x80|irq and acks. */
    abi_irqchip_set_irq(chip, 5, 1);
    abi_irqchip_set_irq(chip, 3, 1);
    outb(0x20, 0x0c);
    ck_assert_uint_eq(inb(0x20), 0x83);
    outb(0x20, 0x0b);
    ck_assert_uint_eq(inb(0x20), 0x00); /* poll read does not leave IRQ3 in service */
    /* INTA of IRQ5 then rotate-on-specific-EOI (OCW2 0xe5): IRQ5 becomes lowest. */
    ck_assert_int_eq(pic_read_irq(&chip->pic), 0x25);
    outb(0x20, 0x0b);
    ck_assert_uint_eq(inb(0x20), 0x20);
    outb(0x20, 0xe5);
    ck_assert_uint_eq(inb(0x20), 0x00);
    struct kvm_irqchip st = {.chip_id = KVM_IRQCHIP_PIC_MASTER};
    ck_assert_int_eq(abi_irqchip_get(chip, &st), 0);
    ck_assert_uint_eq(st.chip.pic.priority_add, 6);
    /* Now IRQ6 has top priority, IRQ5 the lowest: IRQ5 and IRQ6 pending -> 6. */
    abi_irqchip_set_irq(chip, 5, 0);
    abi_irqchip_set_irq(chip, 5, 1);
    abi_irqchip_set_irq(chip, 6, 1);
    ck_assert_int_eq(pic_read_irq(&chip->pic), 0x26);
    outb(0x20, 0x66); /* specific EOI for IRQ6 */
    ck_assert_int_eq(pic_read_irq(&chip->pic), 0x25);
    outb(0x20, 0x20);
    /* Auto-EOI (ICW4 bit 1): nothing stays in service. */
    outb(0x20, 0x11); outb(0x21, 0x30); outb(0x21, 0x04); outb(0x21, 0x03);
    ck_assert_uint_eq(inb(0x21), 0); /* ICW1 cleared the mask */
    abi_irqchip_set_irq(chip, 7, 0);
    abi_irqchip_set_irq(chip, 7, 1);
    ck_assert_int_eq(pic_read_irq(&chip->pic), 0x37);
    outb(0x20, 0x0b);
    ck_assert_uint_eq(inb(0x20), 0x00);
    /* Nothing requested: spurious IRQ7 vector. */
    ck_assert_int_eq(pic_read_irq(&chip->pic), 0x37);
    /* Level-triggered (ELCR) line stays requested until lowered. */
    outb(0x4d0, 0x08);
    abi_irqchip_set_irq(chip, 3, 0);
    abi_irqchip_set_irq(chip, 3, 1);
    outb(0x20, 0x0a);
    ck_assert_uint_eq(inb(0x20) & 0x08, 0x08);
    ck_assert_int_eq(pic_read_irq(&chip->pic), 0x33);
    ck_assert_uint_eq(inb(0x20) & 0x08, 0x08); /* IRR kept: still asserted */
    abi_irqchip_set_irq(chip, 3, 0);
    ck_assert_uint_eq(inb(0x20) & 0x08, 0x00);
}
END_TEST

START_TEST(ioapic_edge_and_mask)
{
    ck_assert_uint_eq(ioapic_read(0x01), 0x170011u);
    ck_assert_uint_eq(ioapic_read(0x10 + 2 * 10), 0x10000u); /* masked at reset */
    ioapic_write(0x00, 0x0f000000);
    ck_assert_uint_eq(ioapic_read(0x00), 0x0f000000u);
    /* Pin 10 -> vector 0x40, fixed, physical dest 1, edge. */
    ioapic_write(0x11 + 2 * 10, 1u << 24);
    ioapic_write(0x10 + 2 * 10, 0x40);
    /* KVM creates the PIC unmasked, so the GSI's PIC route counts too. */
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 10, 1), 2);
    abi_irqchip_set_irq(chip, 10, 0);
    ck_assert_int_eq(take_irq(l1), 0x40);
    mmio_wr(l1, APIC_REG_EOI, 0);
    outb(0xa1, 0xff); /* from here on only the IOAPIC route counts */
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 10, 1), 1);
    ck_assert(irr_has(l1, 0x40) && !irr_has(l0, 0x40));
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 10, 1), 0); /* still high */
    abi_irqchip_set_irq(chip, 10, 0);
    ck_assert_int_eq(take_irq(l1), 0x40);
    mmio_wr(l1, APIC_REG_EOI, 0);
    /* Masked pin (and masked PIC line): -1. */
    ioapic_write(0x10 + 2 * 10, 0x10040);
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 10, 1), -1);
    ck_assert(!irr_has(l1, 0x40));
    /* Out-of-range redirection index reads all-ones. */
    ck_assert_uint_eq(ioapic_read(0x10 + 2 * 24), 0xffffffffu);
    /* IOREGSEL is 8 bits; only offsets 0x00/0x10 are registers. */
    ioapic_write(0x101, 0);
    uint32_t sel = 0;
    ck_assert(abi_irqchip_mmio(chip, 0xfec00000, false, &sel, 4));
    ck_assert_uint_eq(sel, 0x01);
    ck_assert(abi_irqchip_mmio(chip, 0xfec00004, false, &sel, 4));
    ck_assert_uint_eq(sel, 0);
    /* The PIC answers bytes only. */
    uint16_t w = 0xffff;
    ck_assert(abi_irqchip_pio(chip, 0x21, true, &w, 2));
    ck_assert_uint_eq(w, 0);
    /* Not our window. */
    uint32_t v;
    ck_assert(!abi_irqchip_mmio(chip, 0xfec00100, false, &v, 4));
    /* GSI 16-23 route to the IOAPIC only; unrouted GSIs report -1. */
    ioapic_write(0x11 + 2 * 20, 0);
    ioapic_write(0x10 + 2 * 20, 0x41);
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 20, 1), 1);
    ck_assert(irr_has(l0, 0x41));
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 30, 1), -1);
}
END_TEST

START_TEST(ioapic_level_eoi)
{
    outb(0x21, 0xff); /* PIC fully masked: only the IOAPIC route delivers */
    /* Pin 5 level-triggered to vCPU 0 vector 0x55. */
    ioapic_write(0x11 + 2 * 5, 0);
    ioapic_write(0x10 + 2 * 5, (1u << 15) | 0x55);
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 5, 1), 1);
    ck_assert(lapic_reg(l0, APIC_REG_TMR + 0x20) & (1u << 0x15));
    ck_assert_uint_eq(ioapic_read(0x10 + 2 * 5) & (1u << 14), 1u << 14); /* Remote IRR */
    ck_assert_int_eq(take_irq(l0), 0x55);
    /* While Remote IRR is set, a re-assert is not delivered. */
    abi_irqchip_set_irq(chip, 5, 1);
    ck_assert(!irr_has(l0, 0x55));
    /* EOI with the line still high: Remote IRR clears and it is re-delivered. */
    mmio_wr(l0, APIC_REG_EOI, 0);
    ck_assert(irr_has(l0, 0x55));
    ck_assert_int_eq(take_irq(l0), 0x55);
    abi_irqchip_set_irq(chip, 5, 0);
    mmio_wr(l0, APIC_REG_EOI, 0);
    ck_assert(!irr_has(l0, 0x55));
    ck_assert_uint_eq(ioapic_read(0x10 + 2 * 5) & (1u << 14), 0);
    /* Remote IRR is read-only for the guest. */
    ioapic_write(0x10 + 2 * 5, (1u << 15) | (1u << 14) | 0x55);
    ck_assert_uint_eq(ioapic_read(0x10 + 2 * 5) & (1u << 14), 0);
}
END_TEST

START_TEST(get_set_irqchip)
{
    pic_init();
    ioapic_write(0x10 + 2 * 3, 0x1834); /* bit 12 (delivery status) is read-only */
    struct kvm_irqchip s = {.chip_id = KVM_IRQCHIP_PIC_MASTER};
    ck_assert_int_eq(abi_irqchip_get(chip, &s), 0);
    ck_assert_uint_eq(s.chip.pic.irq_base, 0x20);
    ck_assert_uint_eq(s.chip.pic.elcr_mask, 0xf8);
    s.chip.pic.imr = 0x5a;
    ck_assert_int_eq(abi_irqchip_set(chip, &s), 0);
    ck_assert_uint_eq(inb(0x21), 0x5a);
    s = (struct kvm_irqchip){.chip_id = KVM_IRQCHIP_IOAPIC};
    ck_assert_int_eq(abi_irqchip_get(chip, &s), 0);
    ck_assert_uint_eq(s.chip.ioapic.base_address, 0xfec00000u);
    ck_assert_uint_eq(s.chip.ioapic.redirtbl[3].bits, 0x0834u);
    ck_assert_uint_eq(s.chip.ioapic.redirtbl[4].fields.mask, 1);
    s.chip.ioapic.redirtbl[4].bits = 0x77; /* unmasked, vector 0x77, dest 0 */
    s.chip.ioapic.irr = 1u << 4;           /* pending line is re-injected */
    ck_assert_int_eq(abi_irqchip_set(chip, &s), 0);
    ck_assert_uint_eq(ioapic_read(0x10 + 2 * 4), 0x77u);
    ck_assert(irr_has(l0, 0x77));
    s.chip_id = 3;
    ck_assert_int_eq(abi_irqchip_get(chip, &s), -EINVAL);
    ck_assert_int_eq(abi_irqchip_set(chip, &s), -EINVAL);
}
END_TEST

START_TEST(msi_and_routing)
{
    struct kvm_msi msi = {.address_lo = 0xfee00000 | (1u << 12), .data = 0x4070};
    ck_assert_int_eq(abi_irqchip_signal_msi(chip, &msi), 1);
    ck_assert(irr_has(l1, 0x70));
    msi.address_lo = 0xfee00000 | (9u << 12); /* no such APIC: 0, as KVM's APIC map path */
    ck_assert_int_eq(abi_irqchip_signal_msi(chip, &msi), 0);
    msi.address_lo = 0xfee00000 | (0xffu << 12); /* broadcast: slow path counts */
    msi.data = 0x4072;
    ck_assert_int_eq(abi_irqchip_signal_msi(chip, &msi), 2);
    ck_assert(irr_has(l0, 0x72) && irr_has(l1, 0x72));
    /* Redirection hint with a logical destination of both: one receives it. */
    mmio_wr(l0, APIC_REG_LDR, 0x01u << 24);
    mmio_wr(l1, APIC_REG_LDR, 0x02u << 24);
    msi.address_lo = 0xfee00000 | (0x03u << 12) | (1u << 3) | (1u << 2);
    msi.data = 0x73;
    ck_assert_int_eq(abi_irqchip_signal_msi(chip, &msi), 1);
    ck_assert_int_eq(irr_has(l0, 0x73) + irr_has(l1, 0x73), 1);
    msi.address_lo = 0xfee00000 | (0x03u << 12) | (1u << 2); /* no hint: both */
    msi.data = 0x74;
    ck_assert_int_eq(abi_irqchip_signal_msi(chip, &msi), 2);
    msi.flags = 4;
    ck_assert_int_eq(abi_irqchip_signal_msi(chip, &msi), -EINVAL);
    msi.flags = 0;
    ck_assert_int_eq(abi_irqchip_set_x2apic_api(chip, KVM_X2APIC_API_USE_32BIT_IDS), 0);
    msi.address_hi = 1;
    ck_assert_int_eq(abi_irqchip_signal_msi(chip, &msi), -EINVAL);

    /* Custom routing: GSI 7 -> MSI to vCPU 0 vector 0x71. */
    struct {
        struct kvm_irq_routing r;
        struct kvm_irq_routing_entry e[2];
    } rt = {0};
    rt.r.nr = 1;
    rt.e[0] = (struct kvm_irq_routing_entry){.gsi = 7, .type = KVM_IRQ_ROUTING_MSI};
    rt.e[0].u.msi.address_lo = 0xfee00000;
    rt.e[0].u.msi.data = 0x71;
    ck_assert_int_eq(abi_irqchip_set_gsi_routing(chip, &rt.r), 0);
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 7, 1), 1);
    ck_assert(irr_has(l0, 0x71));
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 4, 1), -1); /* default routes are gone */

    /* Invalid tables are refused and leave the old one in place. */
    rt.e[0] = (struct kvm_irq_routing_entry){.gsi = 1, .type = KVM_IRQ_ROUTING_IRQCHIP};
    rt.e[0].u.irqchip.irqchip = KVM_IRQCHIP_PIC_MASTER;
    rt.e[0].u.irqchip.pin = 8;
    ck_assert_int_eq(abi_irqchip_set_gsi_routing(chip, &rt.r), -EINVAL);
    rt.e[0].u.irqchip.pin = 1;
    rt.e[1] = rt.e[0];
    rt.r.nr = 2;
    ck_assert_int_eq(abi_irqchip_set_gsi_routing(chip, &rt.r), -EINVAL); /* same chip twice */
    rt.e[1].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
    rt.e[1].u.irqchip.pin = 24;
    ck_assert_int_eq(abi_irqchip_set_gsi_routing(chip, &rt.r), -EINVAL);
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 7, 1), 1);
    rt.e[1].u.irqchip.pin = 1;
    ck_assert_int_eq(abi_irqchip_set_gsi_routing(chip, &rt.r), 0);
    ck_assert_int_eq(abi_irqchip_set_irq(chip, 7, 1), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("irqchip");
    TCase *tc = tcase_create("irqchip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, pic_extint_delivery);
    tcase_add_test(tc, pic_modes);
    tcase_add_test(tc, ioapic_edge_and_mask);
    tcase_add_test(tc, ioapic_level_eoi);
    tcase_add_test(tc, get_set_irqchip);
    tcase_add_test(tc, msi_and_routing);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
