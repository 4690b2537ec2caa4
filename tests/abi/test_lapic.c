#include "tests/check_main.h"
/* Local APIC unit tests: register semantics (xAPIC MMIO and x2APIC MSRs),
 * APIC_BASE transitions, IRR/ISR/PPR/EOI, IPIs, KVM_GET/SET_LAPIC, timer
 * modes and the HLT wait/kick primitive. Expected values follow the SDM and
 * Linux 6.12 KVM (arch/x86/kvm/lapic.c). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/abi/test_irqchip_util.h"

static struct abi_irqchip *chip;
static struct abi_lapic *l0, *l1, *l2;

static void setup(void)
{
    chip = abi_irqchip_create();
    ck_assert_ptr_nonnull(chip);
    l0 = abi_lapic_create(chip, NULL, 0, true);
    l1 = abi_lapic_create(chip, NULL, 1, false);
    l2 = abi_lapic_create(chip, NULL, 2, false);
    ck_assert(l0 && l1 && l2);
    set_cpuid_caps(l0);
    set_cpuid_caps(l2); /* l1 stays "before SET_CPUID2" until a test sets it */
}

static void teardown(void)
{
    abi_lapic_destroy(l0);
    abi_lapic_destroy(l1);
    abi_lapic_destroy(l2);
    abi_irqchip_destroy(chip);
}

START_TEST(reset_state)
{
    ck_assert_uint_eq(abi_lapic_get_base(l0), 0xfee00000u | APIC_BASE_ENABLE | APIC_BASE_BSP);
    ck_assert_uint_eq(abi_lapic_get_base(l1), 0xfee00000u | APIC_BASE_ENABLE);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_ID), 1u << 24);
    ck_assert_uint_eq(mmio_rd(l0, APIC_REG_LVR), 0x50014u); /* 6 LVTs, version 0x14 */
    ck_assert_uint_eq(mmio_rd(l0, APIC_REG_SVR), 0xffu);
    ck_assert_uint_eq(mmio_rd(l0, APIC_REG_DFR), 0xffffffffu);
    ck_assert_uint_eq(mmio_rd(l0, APIC_REG_LVT0), 0x700u);   /* BSP: ExtINT, unmasked */
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVT0), APIC_LVT_MASKED);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVTT), APIC_LVT_MASKED);
    ck_assert_int_eq(lapic_irq_pending(l1, NULL), -1);
    /* A duplicate vCPU id is refused; ids go up to KVM_MAX_VCPU_IDS - 1. */
    ck_assert_ptr_null(abi_lapic_create(chip, NULL, 1, false));
    struct abi_lapic *hi = abi_lapic_create(chip, NULL, 4095, false);
    ck_assert_ptr_nonnull(hi);
    ck_assert_ptr_null(abi_lapic_create(chip, NULL, 4096, false));
    abi_lapic_destroy(hi);
    hi = abi_lapic_create(chip, NULL, 4095, false); /* the id is free again */
    ck_assert_ptr_nonnull(hi);
    abi_lapic_destroy(hi);
}
END_TEST

START_TEST(init_reset)
{
    /* INIT (kvm_lapic_reset with init_event): APIC_BASE and the ID survive,
     * the rest returns to its reset value. */
    sw_enable(l1);
    mmio_wr(l1, APIC_REG_ID, 7u << 24);
    mmio_wr(l1, APIC_REG_TPR, 0x30);
    mmio_wr(l1, APIC_REG_LVT1, 0x4ff);
    struct apic_irq a = {.vector = 0x90, .dest = 7};
    ck_assert_int_eq(irqchip_deliver(chip, NULL, &a), 1);
    ck_assert_int_eq(abi_lapic_set_base(l1, 0xfed00000 | APIC_BASE_ENABLE, false), 0);
    abi_lapic_reset(l1, true);
    ck_assert_uint_eq(abi_lapic_get_base(l1), 0xfed00000 | APIC_BASE_ENABLE);
    uint32_t v = 0;
    ck_assert(abi_lapic_mmio(l1, 0xfed00020, false, &v, 4));
    ck_assert_uint_eq(v, 7u << 24);
    ck_assert(abi_lapic_mmio(l1, 0xfed000f0, false, &v, 4));
    ck_assert_uint_eq(v, 0xff);
    ck_assert(abi_lapic_mmio(l1, 0xfed00360, false, &v, 4));
    ck_assert_uint_eq(v, APIC_LVT_MASKED);
    ck_assert(abi_lapic_mmio(l1, 0xfed00080, false, &v, 4));
    ck_assert_uint_eq(v, 0);
    ck_assert(!irr_has(l1, 0x90));
    ck_assert_int_eq(lapic_irq_pending(l1, NULL), -1);
    /* RESET also restores the base and the ID. */
    abi_lapic_reset(l1, false);
    ck_assert_uint_eq(abi_lapic_get_base(l1), 0xfee00000u | APIC_BASE_ENABLE);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_ID), 1u << 24);
}
END_TEST

START_TEST(mmio_register_masks)
{
    set_cpuid_caps(l1);
    mmio_wr(l1, APIC_REG_ID, 0x12345678);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_ID), 0x12000000u);
    mmio_wr(l1, APIC_REG_LDR, 0xabcdef01);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LDR), 0xab000000u);
    mmio_wr(l1, APIC_REG_DFR, 0);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_DFR), 0x0fffffffu);
    mmio_wr(l1, APIC_REG_TPR, 0x1ff);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_TPR), 0xffu);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_PPR), 0xffu);
    mmio_wr(l1, APIC_REG_TDCR, 0xff);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_TDCR), 0xbu);
    /* While software-disabled, LVT writes stay masked. */
    mmio_wr(l1, APIC_REG_LVT1, 0x4ff);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVT1), APIC_LVT_MASKED | 0x4ff);
    sw_enable(l1);
    mmio_wr(l1, APIC_REG_LVTERR, 0xffffffff);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVTERR), APIC_LVT_MASKED | APIC_LVT_PENDING | 0xffu);
    mmio_wr(l1, APIC_REG_LVTT, 0x000200ee);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVTT), 0x000200eeu); /* periodic kept */
    /* SVR clear of the enable bit masks every LVT. */
    mmio_wr(l1, APIC_REG_SVR, 0x0ff);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVTT), 0x000300eeu);
    /* Byte reads return the right lane; misaligned writes are dropped. */
    uint8_t b = 0;
    ck_assert(abi_lapic_mmio(l1, ABI_APIC_DEFAULT_BASE + APIC_REG_ID + 3, false, &b, 1));
    ck_assert_uint_eq(b, 0x12);
    uint16_t h = 0x1234;
    ck_assert(abi_lapic_mmio(l1, ABI_APIC_DEFAULT_BASE + APIC_REG_TPR, true, &h, 2));
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_TPR), 0xffu);
    /* Write-only / reserved registers read as 0; outside the page is not ours. */
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_EOI), 0u);
    ck_assert_uint_eq(mmio_rd(l1, 0x3f0), 0u);
    uint32_t v;
    ck_assert(!abi_lapic_mmio(l1, ABI_APIC_DEFAULT_BASE + 0x1000, false, &v, 4));
    ck_assert(!abi_lapic_mmio(l1, 0xfec00000, false, &v, 4));
}
END_TEST

START_TEST(irr_isr_ppr_eoi)
{
    sw_enable(l0);
    struct apic_irq a = {.vector = 0x31, .delivery_mode = APIC_DM_FIXED, .dest = 0};
    struct apic_irq b = {.vector = 0x52, .delivery_mode = APIC_DM_FIXED, .dest = 0};
    ck_assert_int_eq(irqchip_deliver(chip, NULL, &a), 1);
    ck_assert_int_eq(irqchip_deliver(chip, NULL, &b), 1);
    ck_assert(irr_has(l0, 0x31) && irr_has(l0, 0x52));
    ck_assert(!irr_has(l1, 0x31));

    /* TPR class 5 blocks 0x52 (class equal) and 0x31. */
    mmio_wr(l0, APIC_REG_TPR, 0x50);
    ck_assert_int_eq(lapic_irq_pending(l0, NULL), -1);
    mmio_wr(l0, APIC_REG_TPR, 0x4f);
    ck_assert_int_eq(lapic_irq_pending(l0, NULL), 0x52);
    mmio_wr(l0, APIC_REG_TPR, 0);

    ck_assert_int_eq(take_irq(l0), 0x52);
    ck_assert(isr_has(l0, 0x52) && !irr_has(l0, 0x52));
    ck_assert_uint_eq(mmio_rd(l0, APIC_REG_PPR), 0x50u);
    ck_assert_int_eq(lapic_irq_pending(l0, NULL), -1); /* 0x31 is lower priority */
    mmio_wr(l0, APIC_REG_EOI, 0);
    ck_assert(!isr_has(l0, 0x52));
    ck_assert_uint_eq(mmio_rd(l0, APIC_REG_PPR), 0u);
    ck_assert_int_eq(take_irq(l0), 0x31);
    mmio_wr(l0, APIC_REG_EOI, 0);
    ck_assert_int_eq(lapic_irq_pending(l0, NULL), -1);

    /* Level-triggered acceptance sets TMR; a software-disabled APIC drops fixed IRQs. */
    struct apic_irq lvl = {.vector = 0x60, .level = true, .assert = true, .dest = 0};
    irqchip_deliver(chip, NULL, &lvl);
    ck_assert(lapic_reg(l0, APIC_REG_TMR + 0x30) & 1u);
    struct apic_irq c = {.vector = 0x70, .dest = 1};
    ck_assert_int_eq(irqchip_deliver(chip, NULL, &c), 0);
    ck_assert(!irr_has(l1, 0x70));
}
END_TEST

START_TEST(cr8_is_tpr)
{
    /* A MOV to CR8 (emu writes cpu->cr8) becomes TPR[7:4] at the next hook call. */
    static struct cpu cpu; /* static: struct cpu is large */
    memset(&cpu, 0, sizeof cpu);
    sw_enable(l0);
    struct apic_irq a = {.vector = 0x52}, b = {.vector = 0x61};
    irqchip_deliver(chip, NULL, &a);
    cpu.cr8 = 5;
    ck_assert_int_eq(lapic_irq_pending(l0, &cpu), -1);
    ck_assert_uint_eq(mmio_rd(l0, APIC_REG_TPR), 0x50u);
    ck_assert_uint_eq(mmio_rd(l0, APIC_REG_PPR), 0x50u);
    irqchip_deliver(chip, NULL, &b);
    ck_assert_int_eq(lapic_irq_pending(l0, &cpu), 0x61);
    cpu.cr8 = 0;
    lapic_irq_ack(l0, &cpu, 0x61);
    ck_assert_int_eq(lapic_irq_pending(l0, &cpu), -1); /* 0x52 below ISR 0x61 */
    ck_assert_uint_eq(mmio_rd(l0, APIC_REG_TPR), 0u);
    lapic_eoi(l0);
    ck_assert_int_eq(lapic_irq_pending(l0, &cpu), 0x52);
}
END_TEST

START_TEST(ipi_destinations)
{
    sw_enable(l0);
    sw_enable(l1);
    sw_enable(l2);
    /* Physical destination 2. */
    mmio_wr(l0, APIC_REG_ICR2, 2u << 24);
    mmio_wr(l0, APIC_REG_ICR, 0x4041);
    ck_assert(irr_has(l2, 0x41) && !irr_has(l1, 0x41) && !irr_has(l0, 0x41));
    ck_assert_uint_eq(mmio_rd(l0, APIC_REG_ICR) & APIC_LVT_PENDING, 0u); /* never busy */
    /* Shorthands: self, all-including-self, all-excluding-self. */
    mmio_wr(l1, APIC_REG_ICR, (APIC_SH_SELF << 18) | 0x42);
    ck_assert(irr_has(l1, 0x42) && !irr_has(l0, 0x42));
    mmio_wr(l1, APIC_REG_ICR, (APIC_SH_ALL << 18) | 0x43);
    ck_assert(irr_has(l0, 0x43) && irr_has(l1, 0x43) && irr_has(l2, 0x43));
    mmio_wr(l1, APIC_REG_ICR, (APIC_SH_OTHERS << 18) | 0x44);
    ck_assert(irr_has(l0, 0x44) && !irr_has(l1, 0x44) && irr_has(l2, 0x44));
    /* Physical broadcast 0xff. */
    mmio_wr(l0, APIC_REG_ICR2, 0xffu << 24);
    mmio_wr(l0, APIC_REG_ICR, 0x45);
    ck_assert(irr_has(l0, 0x45) && irr_has(l1, 0x45) && irr_has(l2, 0x45));

    /* Logical flat: LDR bits 0x02 (l1) and 0x04 (l2); destination 0x06. */
    mmio_wr(l1, APIC_REG_LDR, 0x02u << 24);
    mmio_wr(l2, APIC_REG_LDR, 0x04u << 24);
    mmio_wr(l0, APIC_REG_ICR2, 0x06u << 24);
    mmio_wr(l0, APIC_REG_ICR, (1u << 11) | 0x46);
    ck_assert(irr_has(l1, 0x46) && irr_has(l2, 0x46) && !irr_has(l0, 0x46));
    /* Logical cluster: cluster 1 member 1 = 0x11; only l2 configured for it. */
    mmio_wr(l1, APIC_REG_DFR, 0);
    mmio_wr(l2, APIC_REG_DFR, 0);
    mmio_wr(l1, APIC_REG_LDR, 0x21u << 24);
    mmio_wr(l2, APIC_REG_LDR, 0x11u << 24);
    mmio_wr(l0, APIC_REG_ICR2, 0x13u << 24);
    mmio_wr(l0, APIC_REG_ICR, (1u << 11) | 0x47);
    ck_assert(irr_has(l2, 0x47) && !irr_has(l1, 0x47));

    /* NMI, INIT (assert only) and SIPI. */
    mmio_wr(l0, APIC_REG_ICR2, 1u << 24);
    mmio_wr(l0, APIC_REG_ICR, (APIC_DM_NMI << 8) | (1u << 14));
    ck_assert(lapic_nmi_pending(l1, NULL));
    ck_assert(!lapic_nmi_pending(l1, NULL));
    mmio_wr(l0, APIC_REG_ICR, (APIC_DM_INIT << 8) | (1u << 15)); /* level de-assert */
    ck_assert(!abi_lapic_take_init(l1));
    mmio_wr(l0, APIC_REG_ICR, (APIC_DM_INIT << 8) | (1u << 14));
    ck_assert(abi_lapic_take_init(l1));
    ck_assert(!abi_lapic_take_init(l1));
    mmio_wr(l0, APIC_REG_ICR, (APIC_DM_STARTUP << 8) | 0x9a);
    uint8_t sv = 0;
    ck_assert(abi_lapic_take_sipi(l1, &sv));
    ck_assert_uint_eq(sv, 0x9a);

    /* Lowest priority to {l1, l2}: exactly one of them receives it. */
    mmio_wr(l1, APIC_REG_DFR, 0xffffffff);
    mmio_wr(l2, APIC_REG_DFR, 0xffffffff);
    mmio_wr(l1, APIC_REG_LDR, 0x02u << 24);
    mmio_wr(l2, APIC_REG_LDR, 0x04u << 24);
    mmio_wr(l0, APIC_REG_ICR2, 0x06u << 24);
    mmio_wr(l0, APIC_REG_ICR, (1u << 11) | (APIC_DM_LOWEST << 8) | 0x48);
    ck_assert_int_eq(irr_has(l1, 0x48) + irr_has(l2, 0x48), 1);
}
END_TEST

START_TEST(cmci_and_local_deliver)
{
    uint32_t v;
    ck_assert(abi_lapic_mmio(l1, ABI_APIC_DEFAULT_BASE + APIC_REG_LVTCMCI, false, &v, 4));
    ck_assert_uint_eq(v, 0); /* not a register without CMCI */
    ck_assert_int_eq(abi_lapic_local_deliver(l1, APIC_REG_LVTCMCI, true), 0);
    abi_lapic_set_cmci_cap(l1, true);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVR), 0x60014u);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVTCMCI), APIC_LVT_MASKED);
    sw_enable(l1);
    mmio_wr(l1, APIC_REG_LVTCMCI, 0x5e);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVTCMCI), 0x5eu);
    ck_assert_int_eq(abi_lapic_local_deliver(l1, APIC_REG_LVTCMCI, true), 1);
    ck_assert(irr_has(l1, 0x5e));
    /* LVTPC masks itself after a PMI on Intel-compatible CPUs only. */
    mmio_wr(l1, APIC_REG_LVTPC, 0x5f);
    ck_assert_int_eq(abi_lapic_local_deliver(l1, APIC_REG_LVTPC, false), 1);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVTPC), 0x5fu);
    ck_assert_int_eq(abi_lapic_local_deliver(l1, APIC_REG_LVTPC, true), 1);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVTPC), APIC_LVT_MASKED | 0x5fu);
    ck_assert_int_eq(abi_lapic_local_deliver(l1, APIC_REG_LVTPC, true), 0);
    /* LINT1 as NMI. */
    mmio_wr(l1, APIC_REG_LVT1, APIC_DM_NMI << 8);
    ck_assert_int_eq(abi_lapic_local_deliver(l1, APIC_REG_LVT1, true), 1);
    ck_assert(lapic_nmi_pending(l1, NULL));
    abi_lapic_set_cmci_cap(l1, false);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVR), 0x50014u);
}
END_TEST

START_TEST(apic_base_transitions)
{
    uint64_t base = abi_lapic_get_base(l1);
    /* Reserved bits (0-7, 9, above MAXPHYADDR) fault. */
    ck_assert_int_eq(abi_lapic_set_base(l1, base | 1, false), ABI_IRQCHIP_GP);
    ck_assert_int_eq(abi_lapic_set_base(l1, base | (1ull << 50), false), ABI_IRQCHIP_GP);
    /* x2APIC without enable is an invalid mode. */
    ck_assert_int_eq(abi_lapic_set_base(l1, 0xfee00000 | APIC_BASE_X2APIC, false), ABI_IRQCHIP_GP);
    /* xAPIC -> x2APIC is allowed; ID and LDR become the x2APIC ones. */
    ck_assert_int_eq(abi_lapic_set_base(l1, base | APIC_BASE_X2APIC, false), 0);
    uint64_t v = 0;
    ck_assert_int_eq(abi_lapic_rdmsr(l1, 0x802, &v), 0);
    ck_assert_uint_eq(v, 1);
    ck_assert_int_eq(abi_lapic_rdmsr(l1, 0x80d, &v), 0);
    ck_assert_uint_eq(v, 0x2); /* cluster 0, bit 1 */
    /* x2APIC -> xAPIC directly faults for the guest, works for the host. */
    ck_assert_int_eq(abi_lapic_set_base(l1, base, false), ABI_IRQCHIP_GP);
    ck_assert_int_eq(abi_lapic_set_base(l1, 0xfee00000, false), 0); /* disable */
    ck_assert_int_eq(abi_lapic_set_base(l1, 0xfee00000 | APIC_BASE_X2APIC | APIC_BASE_ENABLE, false),
                     ABI_IRQCHIP_GP); /* disabled -> x2APIC */
    ck_assert_int_eq(abi_lapic_set_base(l1, base, false), 0);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_ID), 1u << 24);
    /* The msr/ adapter applies an already-validated value. */
    abi_lapic_msr_base_changed(l1, base, base | APIC_BASE_X2APIC, false);
    ck_assert_int_eq(abi_lapic_msr_read(l1, 0x802, &v), 0);
    ck_assert_uint_eq(v, 1);
    abi_lapic_msr_base_changed(l1, base | APIC_BASE_X2APIC, base, true);
    ck_assert_int_eq(abi_lapic_msr_read(l1, 0x802, &v), ABI_IRQCHIP_GP);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_ID), 1u << 24);
    /* Without CPUID x2APIC the EXTD bit is reserved. */
    abi_lapic_set_cpu_caps(l1, false, 46);
    ck_assert_int_eq(abi_lapic_set_base(l1, base | APIC_BASE_X2APIC, true), ABI_IRQCHIP_GP);
    /* Relocating the page moves the MMIO window. */
    ck_assert_int_eq(abi_lapic_set_base(l1, 0xfed00000 | APIC_BASE_ENABLE, false), 0);
    uint32_t id = 0;
    ck_assert(abi_lapic_mmio(l1, 0xfed00020, false, &id, 4));
    ck_assert_uint_eq(id, 1u << 24);
    ck_assert(!abi_lapic_mmio(l1, 0xfee00020, false, &id, 4));
}
END_TEST

START_TEST(x2apic_msrs)
{
    uint64_t v = 0;
    /* Not in x2APIC mode: every x2APIC MSR faults. */
    ck_assert_int_eq(abi_lapic_rdmsr(l0, 0x802, &v), ABI_IRQCHIP_GP);
    ck_assert_int_eq(abi_lapic_set_base(l0, abi_lapic_get_base(l0) | APIC_BASE_X2APIC, false), 0);
    ck_assert_int_eq(abi_lapic_set_base(l1, abi_lapic_get_base(l1) | APIC_BASE_X2APIC, false), 0);
    /* The xAPIC page reads all-ones and ignores writes (LAPIC_MMIO_HOLE quirk). */
    ck_assert_uint_eq(mmio_rd(l0, APIC_REG_LVR), 0xffffffffu);
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x80f, 0x1ff), 0);
    ck_assert_int_eq(abi_lapic_wrmsr(l1, 0x80f, 0x1ff), 0);
    ck_assert_int_eq(abi_lapic_rdmsr(l0, 0x80f, &v), 0);
    ck_assert_uint_eq(v, 0x1ff);
    /* Read-only / write-only / invalid-in-x2APIC registers. */
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x802, 5), ABI_IRQCHIP_GP);   /* ID */
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x80d, 5), ABI_IRQCHIP_GP);   /* LDR */
    ck_assert_int_eq(abi_lapic_rdmsr(l0, 0x80b, &v), ABI_IRQCHIP_GP);  /* EOI */
    ck_assert_int_eq(abi_lapic_rdmsr(l0, 0x80e, &v), ABI_IRQCHIP_GP);  /* DFR */
    ck_assert_int_eq(abi_lapic_rdmsr(l0, 0x831, &v), ABI_IRQCHIP_GP);  /* ICR2 */
    ck_assert_int_eq(abi_lapic_rdmsr(l0, 0x83f, &v), ABI_IRQCHIP_GP);  /* SELF IPI */
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x808, 1ull << 32), ABI_IRQCHIP_GP);
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x828, 1), ABI_IRQCHIP_GP);   /* ESR non-zero */
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x828, 0), 0);
    /* ICR: 64-bit, reserved bits fault, dest in 63:32. */
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x830, 1ull << 13), ABI_IRQCHIP_GP);
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x830, 1ull << 16), ABI_IRQCHIP_GP);
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x830, 1ull << 20), ABI_IRQCHIP_GP);
    /* bit 15 is the trigger mode, not reserved: Linux's INIT assert (level) is 0xc500 */
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x830, (1ull << 32) | 0xc500), 0);
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x830, (1ull << 32) | 0x4061), 0);
    ck_assert(irr_has(l1, 0x61));
    ck_assert_int_eq(abi_lapic_rdmsr(l0, 0x830, &v), 0);
    ck_assert_uint_eq(v, (1ull << 32) | 0x4061);
    /* Logical x2APIC: cluster 0, bit 1 = vCPU 1. */
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x830, (0x2ull << 32) | (1u << 11) | 0x62), 0);
    ck_assert(irr_has(l1, 0x62) && !irr_has(l0, 0x62));
    /* Self IPI. */
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x83f, 0x163), ABI_IRQCHIP_GP);
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x83f, 0x63), 0);
    ck_assert(irr_has(l0, 0x63));
    /* EOI via MSR. */
    ck_assert_int_eq(take_irq(l0), 0x63);
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x80b, 0), 0);
    ck_assert(!isr_has(l0, 0x63));
    /* Broadcast 0xffffffff reaches the xAPIC-mode l2 too. */
    sw_enable(l2);
    ck_assert_int_eq(abi_lapic_wrmsr(l0, 0x830, (0xffffffffull << 32) | 0x64), 0);
    ck_assert(irr_has(l1, 0x64) && irr_has(l2, 0x64) == false);
}
END_TEST

START_TEST(get_set_state)
{
    struct kvm_lapic_state s;
    sw_enable(l1);
    mmio_wr(l1, APIC_REG_TPR, 0x20);
    ck_assert_int_eq(abi_lapic_get_state(l1, &s), 0);
    uint32_t v;
    memcpy(&v, s.regs + APIC_REG_TPR, 4);
    ck_assert_uint_eq(v, 0x20);
    memcpy(&v, s.regs + APIC_REG_ID, 4);
    ck_assert_uint_eq(v, 1u << 24);
    /* Round trip with a changed LDR and pending IRR. */
    v = 0x08u << 24;
    memcpy(s.regs + APIC_REG_LDR, &v, 4);
    v = 1u << 5;
    memcpy(s.regs + APIC_REG_IRR + 0x20, &v, 4); /* vector 0x45 */
    ck_assert_int_eq(abi_lapic_set_state(l1, &s), 0);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LDR), 0x08u << 24);
    ck_assert_int_eq(lapic_irq_pending(l1, NULL), 0x45);

    /* x2APIC: the ID reads as id << 24 unless KVM_X2APIC_API_USE_32BIT_IDS;
     * ICR is split into ICR/ICR2. */
    ck_assert_int_eq(abi_lapic_set_base(l1, abi_lapic_get_base(l1) | APIC_BASE_X2APIC, false), 0);
    ck_assert_int_eq(abi_lapic_wrmsr(l1, 0x830, (7ull << 32) | 0x33), 0);
    ck_assert_int_eq(abi_lapic_get_state(l1, &s), 0);
    memcpy(&v, s.regs + APIC_REG_ID, 4);
    ck_assert_uint_eq(v, 1u << 24);
    memcpy(&v, s.regs + APIC_REG_ICR2, 4);
    ck_assert_uint_eq(v, 7);
    memcpy(&v, s.regs + APIC_REG_ICR, 4);
    ck_assert_uint_eq(v, 0x33);
    ck_assert_int_eq(abi_irqchip_set_x2apic_api(chip, KVM_X2APIC_API_USE_32BIT_IDS), 0);
    ck_assert_int_eq(abi_irqchip_set_x2apic_api(chip, 4), -EINVAL);
    ck_assert_int_eq(abi_lapic_get_state(l1, &s), 0);
    memcpy(&v, s.regs + APIC_REG_ID, 4);
    ck_assert_uint_eq(v, 1);
    ck_assert_int_eq(abi_lapic_set_state(l1, &s), 0);
    v = 2;
    memcpy(s.regs + APIC_REG_ID, &v, 4);
    ck_assert_int_eq(abi_lapic_set_state(l1, &s), -EINVAL);
    /* LDR is forced to the x2APIC value on set. */
    v = 1;
    memcpy(s.regs + APIC_REG_ID, &v, 4);
    v = 0xdead;
    memcpy(s.regs + APIC_REG_LDR, &v, 4);
    ck_assert_int_eq(abi_lapic_set_state(l1, &s), 0);
    uint64_t m;
    ck_assert_int_eq(abi_lapic_rdmsr(l1, 0x80d, &m), 0);
    ck_assert_uint_eq(m, 2);
    ck_assert_int_eq(abi_lapic_rdmsr(l1, 0x830, &m), 0);
    ck_assert_uint_eq(m, (7ull << 32) | 0x33);
}
END_TEST

START_TEST(timer_oneshot_and_count)
{
    sw_enable(l1);
    mmio_wr(l1, APIC_REG_TDCR, 0xb);          /* divide by 1 */
    mmio_wr(l1, APIC_REG_LVTT, 0x50);         /* one-shot, vector 0x50 */
    mmio_wr(l1, APIC_REG_TMICT, 4000000000u); /* 4 s at 1 ns/tick */
    uint32_t c1 = mmio_rd(l1, APIC_REG_TMCCT);
    sleep_ns(5000000);
    uint32_t c2 = mmio_rd(l1, APIC_REG_TMCCT);
    ck_assert_uint_le(c1, 4000000000u);
    ck_assert_uint_gt(c1, c2);
    ck_assert_uint_ge(c1 - c2, 5000000); /* at least the 5 ms slept, in counts */
    ck_assert(!irr_has(l1, 0x50));
    /* Re-arm short and wait for the timer thread to fire it. */
    mmio_wr(l1, APIC_REG_TMICT, 1000000);
    for (int i = 0; i < 2000 && !irr_has(l1, 0x50); i++)
        sleep_ns(1000000);
    ck_assert(irr_has(l1, 0x50));
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_TMCCT), 0);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_TMICT), 1000000);

    /* Masked: the count expires, no interrupt. */
    ck_assert_int_eq(take_irq(l1), 0x50);
    mmio_wr(l1, APIC_REG_EOI, 0);
    mmio_wr(l1, APIC_REG_LVTT, APIC_LVT_MASKED | 0x50);
    mmio_wr(l1, APIC_REG_TMICT, 100000);
    sleep_ns(20000000);
    ck_assert(!irr_has(l1, 0x50));
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_TMCCT), 0);
}
END_TEST

START_TEST(timer_bus_cycle_and_divide)
{
    ck_assert_int_eq(abi_irqchip_set_bus_cycle_ns(chip, 5), -EINVAL); /* vCPUs exist */
    struct abi_irqchip *c2 = abi_irqchip_create();
    ck_assert_int_eq(abi_irqchip_set_bus_cycle_ns(c2, 0), -EINVAL);
    ck_assert_int_eq(abi_irqchip_set_bus_cycle_ns(c2, 1ull << 40), -EINVAL); /* overflow */
    ck_assert_int_eq(abi_irqchip_set_bus_cycle_ns(c2, 10), 0);
    struct abi_lapic *a = abi_lapic_create(c2, NULL, 0, true);
    sw_enable(a);
    mmio_wr(a, APIC_REG_TDCR, 0x1);        /* divide by 4: 40 ns per count */
    mmio_wr(a, APIC_REG_LVTT, 0x51);
    uint64_t t0 = irqchip_now_ns();
    mmio_wr(a, APIC_REG_TMICT, 100000000);  /* 4 s */
    sleep_ns(10000000);
    uint64_t t1 = irqchip_now_ns();
    uint32_t c = mmio_rd(a, APIC_REG_TMCCT);
    uint64_t t2 = irqchip_now_ns();
    /* The count left must match the time elapsed at 40 ns per count, bounded
     * by the clock reads around the TMICT write and the TMCCT read. */
    uint64_t hi = (4000000000ull - (t1 - t0)) / 40 + 1, lo = (4000000000ull - (t2 - t0)) / 40;
    ck_assert_uint_le(c, hi);
    ck_assert_uint_ge(c, lo > 100 ? lo - 100 : 0);
    ck_assert_uint_lt(c, 100000000 - 250000); /* >= 10 ms elapsed */
    abi_lapic_destroy(a);
    abi_irqchip_destroy(c2);
}
END_TEST

START_TEST(timer_periodic)
{
    sw_enable(l2);
    mmio_wr(l2, APIC_REG_TDCR, 0xb);
    mmio_wr(l2, APIC_REG_LVTT, APIC_TIMER_PERIODIC | 0x52);
    mmio_wr(l2, APIC_REG_TMICT, 2000000); /* 2 ms */
    int fired = 0;
    for (int i = 0; i < 400 && fired < 3; i++) {
        sleep_ns(500000);
        if (take_irq(l2) == 0x52) {
            fired++;
            mmio_wr(l2, APIC_REG_EOI, 0);
        }
    }
    ck_assert_int_eq(fired, 3);
    ck_assert_uint_gt(mmio_rd(l2, APIC_REG_TMCCT), 0); /* still running */
    mmio_wr(l2, APIC_REG_TMICT, 0);                    /* stops */
    ck_assert_uint_eq(mmio_rd(l2, APIC_REG_TMCCT), 0);
}
END_TEST

static uint64_t fake_tsc;
static uint64_t read_fake_tsc(void *ctx)
{
    (void)ctx;
    return __atomic_load_n(&fake_tsc, __ATOMIC_SEQ_CST);
}

/* A deadline at or before the current TSC is pending as soon as the MSR write returns
 * (KVM start_sw_tscdeadline expires it synchronously), not when the timer thread runs. */
START_TEST(timer_tsc_deadline_passed_is_synchronous)
{
    sw_enable(l1);
    abi_lapic_set_tsc_deadline_cap(l1, true);
    abi_lapic_set_tsc_reader(l1, read_fake_tsc, NULL);
    fake_tsc = 1000000;
    mmio_wr(l1, APIC_REG_LVTT, APIC_TIMER_TSCDEADLINE | 0x54);
    abi_lapic_set_tsc_deadline(l1, fake_tsc); /* "now": already due */
    ck_assert(irr_has(l1, 0x54));
    ck_assert_uint_eq(abi_lapic_get_tsc_deadline(l1), 0); /* cleared on expiry */
}
END_TEST

START_TEST(timer_tsc_deadline)
{
    sw_enable(l1);
    /* Before KVM_SET_CPUID2 no mode bit sticks; without CPUID TSC_DEADLINE
     * only periodic does. */
    mmio_wr(l1, APIC_REG_LVTT, APIC_TIMER_PERIODIC | 0x53);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVTT), 0x53u);
    abi_lapic_set_tsc_deadline_cap(l1, false);
    mmio_wr(l1, APIC_REG_LVTT, APIC_TIMER_TSCDEADLINE | APIC_TIMER_PERIODIC | 0x53);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_LVTT), APIC_TIMER_PERIODIC | 0x53u);
    mmio_wr(l1, APIC_REG_LVTT, 0x53);
    abi_lapic_set_tsc_deadline_cap(l1, true);
    abi_lapic_set_tsc_reader(l1, read_fake_tsc, NULL);
    fake_tsc = 1000000;
    /* Not in TSC-deadline mode: the MSR write is ignored and reads 0. */
    abi_lapic_set_tsc_deadline(l1, 5);
    ck_assert_uint_eq(abi_lapic_get_tsc_deadline(l1), 0);
    mmio_wr(l1, APIC_REG_TMICT, 12345);
    mmio_wr(l1, APIC_REG_LVTT, APIC_TIMER_TSCDEADLINE | 0x53);
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_TMICT), 0); /* mode switch clears TMICT */
    mmio_wr(l1, APIC_REG_TMICT, 12345);                /* ignored in this mode */
    ck_assert_uint_eq(mmio_rd(l1, APIC_REG_TMICT), 0);
    /* 1 GHz TSC: a deadline 3e9 cycles ahead is 3 s away. */
    abi_lapic_set_tsc_deadline(l1, fake_tsc + 3000000000u);
    ck_assert_uint_eq(abi_lapic_get_tsc_deadline(l1), 3001000000u);
    sleep_ns(2000000);
    ck_assert(!irr_has(l1, 0x53));
    /* Re-programmed 3 ms ahead: fires. */
    abi_lapic_set_tsc_deadline(l1, fake_tsc + 3000000);
    ck_assert_uint_eq(abi_lapic_get_tsc_deadline(l1), 4000000);
    for (int i = 0; i < 2000 && !irr_has(l1, 0x53); i++)
        sleep_ns(1000000);
    ck_assert(irr_has(l1, 0x53));
    ck_assert_uint_eq(abi_lapic_get_tsc_deadline(l1), 0); /* cleared on expiry */
    /* A deadline in the past fires at once. */
    ck_assert_int_eq(take_irq(l1), 0x53);
    mmio_wr(l1, APIC_REG_EOI, 0);
    abi_lapic_set_tsc_deadline(l1, 10);
    for (int i = 0; i < 2000 && !irr_has(l1, 0x53); i++)
        sleep_ns(1000000);
    ck_assert(irr_has(l1, 0x53));
    /* Writing 0 disarms. */
    ck_assert_int_eq(take_irq(l1), 0x53);
    mmio_wr(l1, APIC_REG_EOI, 0);
    abi_lapic_set_tsc_deadline(l1, fake_tsc + 3000000000u);
    abi_lapic_set_tsc_deadline(l1, 0);
    ck_assert_uint_eq(abi_lapic_get_tsc_deadline(l1), 0);
    sleep_ns(10000000);
    ck_assert(!irr_has(l1, 0x53));
}
END_TEST

/* ---------------- HLT wait / wake ---------------- */

struct waiter {
    struct abi_lapic *l;
    bool irq_allowed;
    enum abi_lapic_wake result;
    int done;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    w->result = abi_lapic_wait(w->l, w->irq_allowed);
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static bool wait_done(struct waiter *w)
{
    for (int i = 0; i < 2000 && !__atomic_load_n(&w->done, __ATOMIC_SEQ_CST); i++)
        sleep_ns(1000000);
    return __atomic_load_n(&w->done, __ATOMIC_SEQ_CST);
}

static void on_sigusr1(int sig) { (void)sig; }

START_TEST(wait_wake)
{
    sw_enable(l0);
    sw_enable(l1);
    pthread_t t;
    struct waiter w = {.l = l1, .irq_allowed = true};

    /* IPI from another vCPU wakes a halted one. */
    pthread_create(&t, NULL, wait_thread, &w);
    sleep_ns(20000000);
    ck_assert(!__atomic_load_n(&w.done, __ATOMIC_SEQ_CST));
    mmio_wr(l0, APIC_REG_ICR2, 1u << 24);
    mmio_wr(l0, APIC_REG_ICR, 0x66);
    ck_assert(wait_done(&w));
    pthread_join(t, NULL);
    ck_assert_int_eq(w.result, ABI_LAPIC_WAKE_IRQ);

    /* With IF=0 the pending IRQ does not wake it, a kick does. */
    w = (struct waiter){.l = l1, .irq_allowed = false};
    pthread_create(&t, NULL, wait_thread, &w);
    sleep_ns(20000000);
    ck_assert(!__atomic_load_n(&w.done, __ATOMIC_SEQ_CST));
    abi_lapic_kick(l1);
    ck_assert(wait_done(&w));
    pthread_join(t, NULL);
    ck_assert_int_eq(w.result, ABI_LAPIC_WAKE_KICK);

    /* A timer expiry wakes it. */
    ck_assert_int_eq(take_irq(l1), 0x66);
    mmio_wr(l1, APIC_REG_EOI, 0);
    w = (struct waiter){.l = l1, .irq_allowed = true};
    mmio_wr(l1, APIC_REG_TDCR, 0xb);
    mmio_wr(l1, APIC_REG_LVTT, 0x67);
    mmio_wr(l1, APIC_REG_TMICT, 10000000); /* 10 ms */
    pthread_create(&t, NULL, wait_thread, &w);
    ck_assert(wait_done(&w));
    pthread_join(t, NULL);
    ck_assert_int_eq(w.result, ABI_LAPIC_WAKE_IRQ);
    ck_assert_int_eq(lapic_irq_pending(l1, NULL), 0x67);

    /* INIT wakes even with IF=0; a signal interrupts the wait. */
    w = (struct waiter){.l = l2, .irq_allowed = false};
    pthread_create(&t, NULL, wait_thread, &w);
    sleep_ns(10000000);
    mmio_wr(l0, APIC_REG_ICR2, 2u << 24);
    mmio_wr(l0, APIC_REG_ICR, (APIC_DM_INIT << 8) | (1u << 14));
    ck_assert(wait_done(&w));
    pthread_join(t, NULL);
    ck_assert_int_eq(w.result, ABI_LAPIC_WAKE_EVENT);
    ck_assert(abi_lapic_take_init(l2));

    struct sigaction sa = {.sa_handler = on_sigusr1};
    sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART */
    w = (struct waiter){.l = l2, .irq_allowed = false};
    pthread_create(&t, NULL, wait_thread, &w);
    sleep_ns(20000000);
    pthread_kill(t, SIGUSR1);
    ck_assert(wait_done(&w));
    pthread_join(t, NULL);
    ck_assert_int_eq(w.result, ABI_LAPIC_WAKE_SIGNAL);
}
END_TEST

/* A halted vCPU loop (wait, take, EOI) against a sender that waits for each
 * IPI to be handled: a lost wake-up would stall the sender. */
struct pingpong {
    struct abi_lapic *l;
    int handled;
    int stop;
};

static void *halter(void *arg)
{
    struct pingpong *p = arg;
    while (!__atomic_load_n(&p->stop, __ATOMIC_SEQ_CST)) {
        enum abi_lapic_wake w = abi_lapic_wait(p->l, true);
        if (w != ABI_LAPIC_WAKE_IRQ)
            continue;
        if (take_irq(p->l) == 0x70) {
            lapic_eoi(p->l);
            __atomic_add_fetch(&p->handled, 1, __ATOMIC_SEQ_CST);
        }
    }
    return NULL;
}

START_TEST(ipi_pingpong_no_lost_wakeup)
{
    sw_enable(l0);
    sw_enable(l1);
    struct pingpong p = {.l = l1};
    pthread_t t;
    pthread_create(&t, NULL, halter, &p);
    const int n = 20000;
    int stalled = 0;
    uint64_t t0 = irqchip_now_ns();
    for (int i = 0; i < n && !stalled; i++) {
        mmio_wr(l0, APIC_REG_ICR2, 1u << 24);
        mmio_wr(l0, APIC_REG_ICR, 0x70);
        uint64_t start = irqchip_now_ns();
        while (__atomic_load_n(&p.handled, __ATOMIC_SEQ_CST) <= i) {
            if (irqchip_now_ns() - start > 2000000000ull) {
                stalled = 1;
                break;
            }
        }
    }
    uint64_t t1 = irqchip_now_ns();
    __atomic_store_n(&p.stop, 1, __ATOMIC_SEQ_CST);
    abi_lapic_kick(l1);
    pthread_join(t, NULL);
    ck_assert_int_eq(stalled, 0);
    ck_assert_int_eq(p.handled, n);
    fprintf(stderr, "ipi round trip: %.1f us\n", (double)(t1 - t0) / n / 1000.0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lapic");
    TCase *tc = tcase_create("lapic");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, reset_state);
    tcase_add_test(tc, init_reset);
    tcase_add_test(tc, mmio_register_masks);
    tcase_add_test(tc, irr_isr_ppr_eoi);
    tcase_add_test(tc, cr8_is_tpr);
    tcase_add_test(tc, ipi_destinations);
    tcase_add_test(tc, cmci_and_local_deliver);
    tcase_add_test(tc, apic_base_transitions);
    tcase_add_test(tc, x2apic_msrs);
    tcase_add_test(tc, get_set_state);
    tcase_add_test(tc, timer_oneshot_and_count);
    tcase_add_test(tc, timer_bus_cycle_and_divide);
    tcase_add_test(tc, timer_periodic);
    tcase_add_test(tc, timer_tsc_deadline);
    tcase_add_test(tc, timer_tsc_deadline_passed_is_synchronous);
    tcase_add_test(tc, wait_wake);
    tcase_add_test(tc, ipi_pingpong_no_lost_wakeup);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
