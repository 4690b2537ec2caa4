/* abi/irqchip.h: the in-kernel interrupt controllers (KVM_CREATE_IRQCHIP).
 *
 * CONTRACT between the irqchip code (abi/lapic*.c, abi/ioapic*.c, abi/pic*.c,
 * abi/irqchip*.c; owner) and the rest of abi/ + msr/ (users). Functions may be
 * added; existing ones keep their meaning.
 *
 * Object model mirrors KVM: one struct abi_irqchip per VM (dual 8259 PIC,
 * IOAPIC, GSI routing table, VM-wide APIC settings) and one struct abi_lapic
 * per vCPU, created after the irqchip. Behaviour follows Linux 6.12
 * arch/x86/kvm/{lapic,ioapic,i8259,irq_comm}.c.
 *
 * Threading: every vCPU runs in its own thread. A LAPIC's registers are
 * changed by its own vCPU thread (MMIO/MSR/ioctls on that vCPU); other threads
 * (IPIs, KVM_IRQ_LINE, MSI, the VM's timer thread) only set IRR/TMR bits with
 * atomics, queue NMI/INIT/SIPI, and then call emu_kick() + abi_lapic_kick().
 * VM-level state (PIC/IOAPIC/routing) is under the irqchip's own lock.
 *
 * Errors are returned as negative errno values mirroring KVM's (ioctl
 * handlers can return them as-is); guest-visible faults as ABI_IRQCHIP_GP.
 */
#ifndef SOFTKVM_ABI_IRQCHIP_H
#define SOFTKVM_ABI_IRQCHIP_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "emu/emu.h"

struct abi_irqchip;
struct abi_lapic;

#define ABI_IRQCHIP_GP 1          /* guest access faults: inject #GP(0) */
#define ABI_APIC_DEFAULT_BASE 0xfee00000ull
#define ABI_APIC_MSR_FIRST 0x800u /* x2APIC MSR range (SDM vol.3 10.12.1.2) */
#define ABI_APIC_MSR_LAST 0x8ffu
#define ABI_MSR_TSC_DEADLINE 0x6e0u
#define ABI_IRQCHIP_NR_GSIS 24    /* default routing: GSI 0-15 PIC+IOAPIC, 16-23 IOAPIC */

/* ---------------- VM level ---------------- */

/* KVM_CREATE_IRQCHIP: PIC + IOAPIC + default GSI routing; starts the VM's
 * APIC timer thread. NULL on allocation/thread failure. */
struct abi_irqchip *abi_irqchip_create(void);
/* Destroy after every LAPIC of the VM has been destroyed. */
void abi_irqchip_destroy(struct abi_irqchip *chip);

/* TSC frequency of the CPU model (kHz), used for TSC-deadline mode; default
 * 1000000 (1 GHz). */
void abi_irqchip_set_tsc_khz(struct abi_irqchip *chip, uint32_t khz);
uint32_t abi_irqchip_tsc_khz(const struct abi_irqchip *chip);
/* KVM_CAP_X86_APIC_BUS_CYCLES_NS (default 1 ns, KVM's APIC_BUS_CYCLE_NS_DEFAULT).
 * -EINVAL for 0 / overflowing values and once a LAPIC exists (KVM: after
 * vCPUs are created). Without an irqchip KVM says -ENXIO (abi's job). */
int abi_irqchip_set_bus_cycle_ns(struct abi_irqchip *chip, uint64_t ns);
uint64_t abi_irqchip_bus_cycle_ns(const struct abi_irqchip *chip);
/* KVM_CAP_X2APIC_API flags (KVM_X2APIC_API_USE_32BIT_IDS,
 * KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK). -EINVAL on unknown flags. */
int abi_irqchip_set_x2apic_api(struct abi_irqchip *chip, uint64_t flags);

/* KVM_IRQ_LINE / KVM_IRQ_LINE_STATUS: drive GSI `irq` (through the routing
 * table) to `level`. Returns KVM's status: >0 delivered to that many
 * destinations, 0 coalesced, -1 masked or no route (kvm_set_irq). */
int abi_irqchip_set_irq(struct abi_irqchip *chip, uint32_t irq, int level);
/* KVM_SIGNAL_MSI: number of LAPICs that accepted it; with none, 0 for a
 * directed message (KVM's APIC-map path) and -1 for a broadcast (slow path);
 * -EINVAL for bad flags or, with 32-bit x2APIC IDs, address_hi[7:0] != 0. */
int abi_irqchip_signal_msi(struct abi_irqchip *chip, const struct kvm_msi *msi);
/* KVM_HC_KICK_CPU: a REMRD message to physical APIC ID `apicid` (x86.c kvm_pv_kick_cpu_op),
 * which wakes that vCPU from its halt. */
void abi_irqchip_pv_kick(struct abi_irqchip *chip, uint32_t apicid);
/* KVM_HC_SEND_IPI (KVM lapic.c kvm_pv_send_ipi): `icr` to the APIC IDs min + i for each
 * bit i of bitmap_low and min + cluster + i of bitmap_high (cluster 64 in 64-bit mode,
 * else 32). Returns the number of APICs that accepted, -KVM_EINVAL for a logical or
 * shorthand ICR. */
long abi_irqchip_pv_send_ipi(struct abi_irqchip *chip, uint64_t bitmap_low, uint64_t bitmap_high,
                             uint32_t min, uint64_t icr, bool op_64_bit);
/* KVM_SET_GSI_ROUTING (replaces the table). -EINVAL on bad entries. */
int abi_irqchip_set_gsi_routing(struct abi_irqchip *chip, const struct kvm_irq_routing *r);
/* Ack notifier (KVM kvm_register_irq_ack_notifier / kvm_notify_acked_irq):
 * `fn(ctx, gsi)` runs when the guest acknowledges an interrupt of an irqchip
 * pin: an EOI broadcast reaching the IOAPIC pin (level pins, and edge pins
 * while a notifier is installed, as KVM's ioapic_handled_vectors), and the
 * 8259 clearing an ISR bit (EOI command, auto-EOI INTA, poll read). The pin
 * is mapped back to its GSI through the routing table (the last route naming
 * that chip/pin, as kvm_irq_map_chip_pin). It is called from the acking vCPU
 * thread without the irqchip lock held (KVM drops ioapic/pic locks there
 * too), so it may call abi_irqchip_set_irq; for the IOAPIC it runs before
 * Remote IRR is cleared, so a line it lowers is not re-delivered. One
 * notifier per chip (irqfd resampling is the only user); fn = NULL removes
 * it. Removal does not wait for a call in progress: remove only once no vCPU
 * can run (VM teardown). */
typedef void abi_irqchip_ack_fn(void *ctx, uint32_t gsi);
void abi_irqchip_set_ack_notifier(struct abi_irqchip *chip, abi_irqchip_ack_fn *fn, void *ctx);

/* KVM_GET_IRQCHIP / KVM_SET_IRQCHIP (chip_id PIC_MASTER/PIC_SLAVE/IOAPIC). */
int abi_irqchip_get(struct abi_irqchip *chip, struct kvm_irqchip *s);
int abi_irqchip_set(struct abi_irqchip *chip, const struct kvm_irqchip *s);

/* Guest port I/O to the PIC (0x20/0x21, 0xa0/0xa1) and ELCR (0x4d0/0x4d1):
 * true if handled (IN fills `data`); the abi KVM_RUN loop offers every
 * EMU_EXIT_IO to this first, once per element of a string I/O. */
bool abi_irqchip_pio(struct abi_irqchip *chip, uint16_t port, bool in, void *data, unsigned size);
/* Guest MMIO to the IOAPIC window (default 0xfec00000, 0x100 bytes): true if handled. */
bool abi_irqchip_mmio(struct abi_irqchip *chip, uint64_t gpa, bool write, void *data, unsigned len);

/* ---------------- per vCPU ---------------- */

/* KVM_CREATE_VCPU with an in-kernel irqchip: creates the LAPIC, resets it
 * (bsp = vcpu_id == boot cpu id, KVM_SET_BOOT_CPU_ID) and installs the emu
 * irq hooks on `v` (emu_set_irq_ops). The nmi_pending hook hands over one
 * NMI per true return, and only when the CPU can take it now (NMIs not
 * masked, no blocking shadow), since emu does not latch it otherwise.
 * NULL on allocation failure, vcpu_id >= 4096 (KVM_MAX_VCPU_IDS), more than
 * 1024 LAPICs (KVM_MAX_VCPUS) or a duplicate vcpu_id. */
struct abi_lapic *abi_lapic_create(struct abi_irqchip *chip, struct emu_vcpu *v,
                                   uint32_t vcpu_id, bool bsp);
void abi_lapic_destroy(struct abi_lapic *l);
/* Power-on RESET (init_event = false) or INIT (true) per kvm_lapic_reset. */
void abi_lapic_reset(struct abi_lapic *l, bool init_event);

/* Guest CPU capabilities that change APIC behaviour (from KVM_SET_CPUID2):
 * CPUID.1:ECX.x2APIC and MAXPHYADDR (APIC_BASE reserved bits). Defaults: true, 46. */
void abi_lapic_set_cpu_caps(struct abi_lapic *l, bool x2apic, unsigned maxphyaddr);

/* abi/ must call this on every KVM_SET_CPUID2 with CPUID.1:ECX.TSC_DEADLINE
 * (bit 24). It sets which LVT timer modes exist (KVM's timer_mode_mask):
 * periodic always, TSC-deadline only if supported. Before the first call no
 * mode bit sticks (KVM's mask is 0 until CPUID is set), so the timer is
 * one-shot only. */
void abi_lapic_set_tsc_deadline_cap(struct abi_lapic *l, bool supported);

/* MCG_CAP.MCG_CMCI_P (KVM_X86_SETUP_MCE): adds the CMCI LVT (0x2f0), masked,
 * and bumps the version register's max-LVT field (kvm_apic_after_set_mcg_cap). */
void abi_lapic_set_cmci_cap(struct abi_lapic *l, bool supported);
/* Fire a local interrupt through the LVT entry at register offset `lvt_reg`
 * (0x2f0 CMCI, 0x340 perf counter, 0x350 LINT0, 0x360 LINT1, 0x370 error),
 * as KVM's kvm_apic_local_deliver: nothing if the APIC is hardware-disabled
 * or the entry masked; an LVTPC entry masks itself after delivery when
 * `intel_compatible` (guest CPUID vendor). Returns 1 if an interrupt was accepted. */
int abi_lapic_local_deliver(struct abi_lapic *l, unsigned lvt_reg, bool intel_compatible);

/* An interrupt source ahead of the PIC and the APIC, as kvm_cpu_get_extint asks
 * kvm_xen_has_interrupt first (irq.c): fn(ctx) gives a vector or -1, is consulted
 * wherever the LAPIC decides deliverability (the pending hook, HLT wake-up, runnable),
 * must be lock-free, and a vector it gives is taken without INTA (no IRR/ISR change).
 * NULL removes it. */
void abi_lapic_set_extint_source(struct abi_lapic *l, int (*fn)(void *ctx), void *ctx);

/* Guest TSC reader used by TSC-deadline mode. Default: host CLOCK_MONOTONIC
 * scaled to the chip's TSC kHz plus cpu->tsc_offset. abi/ should install the
 * same function the emulator's RDTSC uses. */
void abi_lapic_set_tsc_reader(struct abi_lapic *l, uint64_t (*read_tsc)(void *ctx), void *ctx);

/* IA32_APIC_BASE (MSR 0x1b). set: 0 or ABI_IRQCHIP_GP (reserved bits, invalid
 * mode, and for guests the x2APIC->xAPIC / disabled->x2APIC transitions,
 * SDM vol.3 10.12.5). Mirrors the value into cpu->apic_base. */
uint64_t abi_lapic_get_base(const struct abi_lapic *l);
int abi_lapic_set_base(struct abi_lapic *l, uint64_t value, bool host_initiated);

/* xAPIC MMIO. Returns true if `gpa` falls in the 4 KiB page at this LAPIC's
 * APIC_BASE address (then the access is done; reads fill `data`), false to
 * leave it to user space. While the APIC is disabled or in x2APIC mode the
 * page reads all-ones and drops writes (KVM_X86_QUIRK_LAPIC_MMIO_HOLE). */
bool abi_lapic_mmio(struct abi_lapic *l, uint64_t gpa, bool write, void *data, unsigned len);

/* x2APIC MSRs 0x800-0x8ff (msr/ hook). 0 or ABI_IRQCHIP_GP (not in x2APIC
 * mode, unknown/read-only register, reserved bits). */
/* Hyper-V HV_X64_MSR_EOI/ICR/TPR: register `off` (0xb0, 0x300, 0x80) in any APIC mode
 * with x2APIC access rules; 0 or nonzero (refused). */
int abi_lapic_hv_reg_read(struct abi_lapic *l, unsigned off, uint64_t *value);
int abi_lapic_hv_reg_write(struct abi_lapic *l, unsigned off, uint64_t value);
/* A fixed edge-triggered interrupt to this LAPIC (and a wake-up); false if dropped. */
bool abi_lapic_deliver_fixed(struct abi_lapic *l, uint8_t vector);
int abi_lapic_rdmsr(struct abi_lapic *l, uint32_t index, uint64_t *value);
int abi_lapic_wrmsr(struct abi_lapic *l, uint32_t index, uint64_t value);
/* IA32_TSC_DEADLINE (0x6e0): reads 0 unless the timer is in TSC-deadline mode. */
uint64_t abi_lapic_get_tsc_deadline(struct abi_lapic *l);
void abi_lapic_set_tsc_deadline(struct abi_lapic *l, uint64_t tsc);

/* Adapters with the signatures of msr/msr.h struct msr_apic_ops (ctx = the
 * struct abi_lapic *), so abi/ can wire them directly:
 *   (struct msr_apic_ops){abi_lapic_msr_read, abi_lapic_msr_write,
 *       abi_lapic_msr_base_changed, abi_lapic_msr_tscdeadline_get,
 *       abi_lapic_msr_tscdeadline_set, lapic}
 * base_changed applies a value msr/ already validated (no checks repeated). */
int abi_lapic_msr_read(void *lapic, uint32_t index, uint64_t *value);
int abi_lapic_msr_write(void *lapic, uint32_t index, uint64_t value);
void abi_lapic_msr_base_changed(void *lapic, uint64_t old_value, uint64_t new_value, bool host);
uint64_t abi_lapic_msr_tscdeadline_get(void *lapic);
void abi_lapic_msr_tscdeadline_set(void *lapic, uint64_t value);

/* KVM_GET_LAPIC / KVM_SET_LAPIC (x2APIC ID/LDR/ICR rules per KVM_CAP_X2APIC_API). */
int abi_lapic_get_state(struct abi_lapic *l, struct kvm_lapic_state *s);
int abi_lapic_set_state(struct abi_lapic *l, const struct kvm_lapic_state *s);

/* Pending INIT / SIPI received by IPI (the abi run loop turns them into
 * mp_state changes: INIT -> KVM_MP_STATE_INIT_RECEIVED, SIPI -> CS:IP = vector<<8).
 * Each call consumes the event. */
bool abi_lapic_take_init(struct abi_lapic *l);
bool abi_lapic_take_sipi(struct abi_lapic *l, uint8_t *vector);
/* The INIT latch as KVM_GET/SET_VCPU_EVENTS see it (smi.latched_init; lapic.c
 * kvm_lapic_latched_init, KVM_APIC_INIT in pending_events): an INIT stays latched in SMM. */
bool abi_lapic_latched_init(struct abi_lapic *l);
void abi_lapic_set_latched_init(struct abi_lapic *l, bool on);
/* An SMI received by APIC message and not yet handed to emu (consumed by this call). */
bool abi_lapic_take_smi(struct abi_lapic *l);

/* HLT support. abi_lapic_wait blocks the calling (owner vCPU) thread until
 * there is an event: a deliverable interrupt (only if `irq_allowed`, i.e.
 * RFLAGS.IF=1), an NMI, INIT/SIPI, a timer expiry (which makes an interrupt
 * pending), abi_lapic_kick(), or a signal handler ran in this thread. */
enum abi_lapic_wake {
    ABI_LAPIC_WAKE_IRQ = 0,   /* an interrupt/NMI is deliverable: resume guest */
    ABI_LAPIC_WAKE_EVENT,     /* INIT or SIPI pending: consume with take_init/take_sipi,
                               * or the next wait returns EVENT again */
    ABI_LAPIC_WAKE_KICK,      /* abi_lapic_kick() (e.g. immediate_exit, destroy) */
    ABI_LAPIC_WAKE_SIGNAL,    /* interrupted by a signal: KVM_RUN returns -EINTR */
};
enum abi_lapic_wake abi_lapic_wait(struct abi_lapic *l, bool irq_allowed);
/* Wake abi_lapic_wait. Async-signal-safe (futex); callable from any thread. */
void abi_lapic_kick(struct abi_lapic *l);

/* Whether the LAPIC has an interrupt/NMI/event that makes a halted vCPU
 * runnable (KVM_GET_MP_STATE). No side effects: any thread may ask. */
bool abi_lapic_runnable(struct abi_lapic *l, bool irq_allowed);

/* KVM_SET_VAPIC_ADDR (0 = off; abi checks the page is guest memory) and the syncs KVM
 * does around every guest entry/exit (lapic.c kvm_lapic_sync_to_vapic/_from_vapic):
 * vapic_data gives the u32 to store at `gpa` before running (false: no vAPIC page);
 * vapic_active says whether to read it back after; vapic_set_tpr applies its low byte. */
void abi_lapic_set_vapic_addr(struct abi_lapic *l, uint64_t gpa);
bool abi_lapic_vapic_data(struct abi_lapic *l, uint64_t *gpa, uint32_t *data);
bool abi_lapic_vapic_active(const struct abi_lapic *l, uint64_t *gpa);
void abi_lapic_vapic_set_tpr(struct abi_lapic *l, uint8_t tpr);
/* KVM_TPR_ACCESS_REPORTING: guest TPR reads/writes (MMIO, x2APIC MSR) are recorded;
 * take_tpr_access consumes one report (KVM_EXIT_TPR_ACCESS). set_access_rip tells the
 * LAPIC the RIP of the instruction whose MMIO abi is handling (0 = use cpu->rip). */
void abi_lapic_set_tpr_access_reporting(struct abi_lapic *l, bool on);
void abi_lapic_set_access_rip(struct abi_lapic *l, uint64_t rip);
bool abi_lapic_take_tpr_access(struct abi_lapic *l, bool *is_write, uint64_t *rip);

#endif
