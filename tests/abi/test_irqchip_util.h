/* Shared helpers for the irqchip unit tests (test_lapic*.c, test_irqchip*.c).
 * LAPICs are created without an emu vCPU (v = NULL): the tests drive the emu
 * hooks (pending/ack/nmi) directly, the way the interpreter would. */
#ifndef SOFTKVM_TESTS_TEST_IRQCHIP_UTIL_H
#define SOFTKVM_TESTS_TEST_IRQCHIP_UTIL_H

#include <check.h>
#include <string.h>
#include <time.h>

#include "abi/irqchip_internal.h"

/* The LAPIC code references these emu entry points; with v = NULL they are
 * never called. Weak so the real ones win whenever libsoftkvm provides them. */
__attribute__((weak)) void emu_kick(struct emu_vcpu *v) { (void)v; }
__attribute__((weak)) void emu_set_irq_ops(struct emu_vcpu *v, const struct emu_irq_ops *o)
{
    (void)v;
    (void)o;
}
__attribute__((weak)) struct cpu *emu_cpu(struct emu_vcpu *v)
{
    (void)v;
    return NULL;
}

static inline uint32_t mmio_rd(struct abi_lapic *l, unsigned off)
{
    uint32_t v = 0xdeadbeef;
    ck_assert(abi_lapic_mmio(l, ABI_APIC_DEFAULT_BASE + off, false, &v, 4));
    return v;
}

static inline void mmio_wr(struct abi_lapic *l, unsigned off, uint32_t v)
{
    ck_assert(abi_lapic_mmio(l, ABI_APIC_DEFAULT_BASE + off, true, &v, 4));
}

static inline bool irr_has(struct abi_lapic *l, unsigned vec)
{
    return lapic_reg(l, APIC_REG_IRR + 0x10 * (vec >> 5)) & (1u << (vec & 31));
}

static inline bool isr_has(struct abi_lapic *l, unsigned vec)
{
    return lapic_reg(l, APIC_REG_ISR + 0x10 * (vec >> 5)) & (1u << (vec & 31));
}

static inline void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    nanosleep(&ts, NULL);
}

/* What abi/ does at KVM_SET_CPUID2 for a CPU model with TSC-deadline. */
static inline void set_cpuid_caps(struct abi_lapic *l)
{
    abi_lapic_set_tsc_deadline_cap(l, true);
}

/* Software-enable a LAPIC with SVR vector 0xff. */
static inline void sw_enable(struct abi_lapic *l)
{
    mmio_wr(l, APIC_REG_SVR, APIC_SVR_ENABLE | 0xff);
}

/* Take the interrupt the CPU would take now (INTA), or -1. */
static inline int take_irq(struct abi_lapic *l)
{
    int v = lapic_irq_pending(l, NULL);
    if (v >= 0)
        lapic_irq_ack(l, NULL, v);
    return v;
}

#endif
