/* abi/irqchip_internal.h: state shared by the irqchip sources (lapic*.c,
 * ioapic.c, pic.c, irqchip*.c). Not a contract: only these files include it. */
#ifndef SOFTKVM_ABI_IRQCHIP_INTERNAL_H
#define SOFTKVM_ABI_IRQCHIP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "abi/irqchip.h"

/* ---- APIC register offsets (SDM vol.3 table 10-1) ---- */
enum {
    APIC_REG_ID = 0x20, APIC_REG_LVR = 0x30, APIC_REG_TPR = 0x80, APIC_REG_APR = 0x90,
    APIC_REG_PPR = 0xa0, APIC_REG_EOI = 0xb0, APIC_REG_RRD = 0xc0, APIC_REG_LDR = 0xd0,
    APIC_REG_DFR = 0xe0, APIC_REG_SVR = 0xf0, APIC_REG_ISR = 0x100, APIC_REG_TMR = 0x180,
    APIC_REG_IRR = 0x200, APIC_REG_ESR = 0x280, APIC_REG_LVTCMCI = 0x2f0,
    APIC_REG_ICR = 0x300, APIC_REG_ICR2 = 0x310, APIC_REG_LVTT = 0x320,
    APIC_REG_LVTTHMR = 0x330, APIC_REG_LVTPC = 0x340, APIC_REG_LVT0 = 0x350,
    APIC_REG_LVT1 = 0x360, APIC_REG_LVTERR = 0x370, APIC_REG_TMICT = 0x380,
    APIC_REG_TMCCT = 0x390, APIC_REG_TDCR = 0x3e0, APIC_REG_SELF_IPI = 0x3f0,
};

#define APIC_LVT_MASKED (1u << 16)
#define APIC_LVT_LEVEL (1u << 15)
#define APIC_LVT_REMOTE_IRR (1u << 14)
#define APIC_LVT_POLARITY (1u << 13)
#define APIC_LVT_PENDING (1u << 12)
#define APIC_MODE_MASK 0x700u
#define APIC_SVR_ENABLE (1u << 8)
#define APIC_SVR_DIRECTED_EOI (1u << 12)
#define APIC_TIMER_MODE_MASK (3u << 17)
#define APIC_TIMER_ONESHOT 0u
#define APIC_TIMER_PERIODIC (1u << 17)
#define APIC_TIMER_TSCDEADLINE (2u << 17)

#define APIC_BASE_BSP (1ull << 8)
#define APIC_BASE_X2APIC (1ull << 10)
#define APIC_BASE_ENABLE (1ull << 11)

/* Delivery modes (ICR / LVT / IOAPIC / MSI bits 10:8). */
enum {
    APIC_DM_FIXED = 0, APIC_DM_LOWEST = 1, APIC_DM_SMI = 2, APIC_DM_REMRD = 3, APIC_DM_NMI = 4,
    APIC_DM_INIT = 5, APIC_DM_STARTUP = 6, APIC_DM_EXTINT = 7,
};
/* ICR destination shorthands (bits 19:18). */
enum { APIC_SH_NONE = 0, APIC_SH_SELF = 1, APIC_SH_ALL = 2, APIC_SH_OTHERS = 3 };

#define ABI_IRQCHIP_MAX_LAPICS 1024 /* KVM_MAX_VCPUS on x86 without MAXSMP */
#define ABI_IRQCHIP_MAX_IDS 4096    /* KVM_MAX_VCPU_IDS = 4 * KVM_MAX_VCPUS */

/* One interrupt message, however it was produced (ICR, IOAPIC RTE, MSI, LVT). */
struct apic_irq {
    uint8_t vector;
    uint8_t delivery_mode;
    bool logical;        /* destination mode */
    bool level;          /* trigger mode: level */
    bool assert;         /* level: assert (INIT de-assert is ignored) */
    uint8_t shorthand;
    uint32_t dest;       /* 8-bit xAPIC or 32-bit x2APIC destination */
    bool x2apic_dest;    /* dest came from an x2APIC-format source (32-bit, 0xffffffff bcast) */
    bool redir_hint;     /* MSI RH=1: treated like lowest priority (KVM msi_redir_hint) */
};

struct abi_lapic {
    struct abi_irqchip *chip;
    struct emu_vcpu *vcpu;   /* NULL in unit tests */
    struct cpu *cpu;         /* NULL in unit tests */
    uint32_t vcpu_id;
    bool bsp;

    /* The register page in KVM's struct kvm_lapic_state layout; IRR/TMR words
     * are updated with atomics by other threads, everything else only by the
     * owner thread. In x2APIC mode ICR is one 64-bit value at 0x300. */
    uint8_t regs[KVM_APIC_REG_SIZE] __attribute__((aligned(16)));
    uint64_t base;
    bool cpuid_x2apic;
    unsigned maxphyaddr;
    uint32_t timer_mode_mask;  /* LVTT mode bits the CPU model has (KVM timer_mode_mask) */
    unsigned nr_lvt;         /* 5: no CMCI (KVM with mcg_cap lacking MCG_CMCI_P) */
    uint64_t synced_cr8;     /* cpu->cr8 as of our last TPR sync */
    /* KVM_SET_VAPIC_ADDR / KVM_TPR_ACCESS_REPORTING (lapic.c vapic_addr, report_tpr_access) */
    uint64_t vapic_addr;
    bool vapic_check;        /* KVM_APIC_CHECK_VAPIC: sync TPR with the vAPIC page */
    bool tpr_access_reporting;
    bool tpr_report_pending, tpr_report_write;
    uint64_t tpr_report_rip;
    uint64_t access_rip;     /* RIP of the instruction whose MMIO is being handled, else 0 */
    bool pic_vector_pending; /* pending() returned the PIC's vector */
    bool ext_vector_pending; /* pending() returned the extint source's vector */
    int (*extint)(void *ctx); /* abi_lapic_set_extint_source (Xen's upcall vector) */
    void *extint_ctx;
    /* Bit w set when IRR word w may be non-zero: lets the per-instruction
     * pending() hook skip the IRR scan. Maintained with atomics (see
     * lapic_deliver.c); resynced after bulk register writes. */
    uint32_t irr_summary;

    /* Events queued by other threads. */
    uint32_t nmi_pending;    /* count, atomic */
    uint32_t init_pending;   /* atomic */
    uint32_t smi_pending;    /* atomic: an SMI message (KVM_REQ_SMI), handed to emu once */
    uint32_t sipi_pending;   /* atomic; vector in sipi_vector */
    uint32_t sipi_vector;

    /* Timer: mode/period owned by the owner thread under timer_lock; the VM's
     * timer thread fires it. expire_ns = 0 means not armed. */
    pthread_mutex_t timer_lock;
    uint32_t timer_mode;     /* APIC_TIMER_* */
    uint32_t divide;         /* 1..128 */
    uint64_t period_ns;      /* one-shot/periodic length; 0 = stopped */
    uint64_t expire_ns;      /* host CLOCK_MONOTONIC ns of next expiry */
    uint64_t tsc_deadline;
    uint64_t (*read_tsc)(void *ctx);
    void *tsc_ctx;

    struct emu_irq_ops emu_ops;
    uint32_t wake_seq;       /* futex word for abi_lapic_wait/kick */
    uint32_t kicked;         /* abi_lapic_kick() since the last wait returned */
    uint32_t pv_unhalted;    /* KVM's vcpu->arch.pv.pv_unhalted: a PV kick (REMRD) ends the next halt */
    uint32_t sleeping;       /* owner is (about to be) in the futex wait */
};

/* 8259A pair (i8259.c behaviour). */
struct pic_unit {
    uint8_t last_irr, irr, imr, isr, priority_add, irq_base, read_reg_select;
    uint8_t poll, special_mask, init_state, auto_eoi, rotate_on_auto_eoi;
    uint8_t special_fully_nested_mode, init4, elcr, elcr_mask;
};
struct abi_pic {
    struct pic_unit unit[2];
    bool output;             /* INT line to the BSP's LINT0 */
};

#define IOAPIC_PINS 24
struct abi_ioapic {
    uint64_t base_address;
    uint32_t ioregsel;
    uint32_t id;
    uint32_t irr;
    uint32_t irr_delivered;
    union {
        uint64_t bits;
        struct {
            uint8_t vector;
            uint8_t delivery_mode : 3, dest_mode : 1, delivery_status : 1, polarity : 1,
                remote_irr : 1, trig_mode : 1;
            uint8_t mask : 1, reserve : 7;
            uint8_t reserved[4];
            uint8_t dest_id;
        } f;
    } redir[IOAPIC_PINS];
};

struct irq_route {
    uint32_t gsi;
    uint32_t type;           /* KVM_IRQ_ROUTING_IRQCHIP / _MSI */
    uint32_t irqchip, pin;
    struct kvm_irq_routing_msi msi;
};

struct abi_irqchip {
    pthread_mutex_t lock;    /* PIC, IOAPIC, routing */
    struct abi_pic pic;
    struct abi_ioapic ioapic;
    struct irq_route *routes;
    unsigned nroutes;

    /* Live LAPICs, densely packed (delivery and the timer thread walk this),
     * and by vCPU id for duplicate detection. Both under lapics_lock. */
    struct abi_lapic *lapics[ABI_IRQCHIP_MAX_LAPICS];
    unsigned nlive;
    struct abi_lapic *by_id[ABI_IRQCHIP_MAX_IDS];
    unsigned nlapics;        /* ever created (bus cycle lock-out) */
    pthread_mutex_t lapics_lock;

    uint32_t tsc_khz;
    uint64_t bus_cycle_ns;
    bool x2apic_format;
    bool x2apic_broadcast_quirk_disabled;

    /* abi_irqchip_set_ack_notifier; set under lock, read atomically by lapic_eoi */
    abi_irqchip_ack_fn *ack_fn;
    void *ack_ctx;

    pthread_t timer_thread;
    pthread_mutex_t timer_lock;
    pthread_cond_t timer_cond;
    bool timer_stop;
    uint64_t timer_gen;
};

/* ---- lapic.c / lapic_deliver.c / lapic_timer.c ---- */
static inline uint32_t lapic_reg(const struct abi_lapic *l, unsigned off)
{
    return __atomic_load_n((const uint32_t *)(l->regs + off), __ATOMIC_RELAXED);
}
static inline void lapic_set_reg(struct abi_lapic *l, unsigned off, uint32_t v)
{
    __atomic_store_n((uint32_t *)(l->regs + off), v, __ATOMIC_RELAXED);
}
static inline bool lapic_x2apic_mode(const struct abi_lapic *l)
{
    return (__atomic_load_n(&l->base, __ATOMIC_RELAXED) & (APIC_BASE_X2APIC | APIC_BASE_ENABLE)) ==
           (APIC_BASE_X2APIC | APIC_BASE_ENABLE);
}
static inline bool lapic_hw_enabled(const struct abi_lapic *l)
{
    return __atomic_load_n(&l->base, __ATOMIC_RELAXED) & APIC_BASE_ENABLE;
}
static inline bool lapic_sw_enabled(const struct abi_lapic *l)
{
    return lapic_reg(l, APIC_REG_SVR) & APIC_SVR_ENABLE;
}
uint64_t irqchip_now_ns(void);

int lapic_reg_read(struct abi_lapic *l, unsigned off, uint32_t *val);
void lapic_set_version(struct abi_lapic *l);
void lapic_sync_tpr_to_cr8(struct abi_lapic *l);
unsigned lapic_lvt_reg(unsigned index); /* KVM LVT index order: timer .. CMCI */
int lapic_reg_write(struct abi_lapic *l, unsigned off, uint32_t val);
void lapic_update_ppr(struct abi_lapic *l);
void lapic_sync_cr8(struct abi_lapic *l, struct cpu *cpu);
int lapic_highest_irr(const struct abi_lapic *l);
void lapic_irr_resync(struct abi_lapic *l);
int lapic_highest_isr(const struct abi_lapic *l);
void lapic_eoi(struct abi_lapic *l);
void lapic_send_ipi(struct abi_lapic *src, uint32_t icr_low, uint32_t dest);
/* Deliver `irq` to the LAPICs it targets (src = NULL for IOAPIC/MSI);
 * returns the number of LAPICs that accepted it, -1 if none matched. */
int irqchip_deliver(struct abi_irqchip *chip, struct abi_lapic *src, const struct apic_irq *irq);
bool lapic_accept_irq(struct abi_lapic *l, const struct apic_irq *irq);
void lapic_notify(struct abi_lapic *l);
void lapic_kick_pic_acceptors(struct abi_irqchip *chip);
uint32_t lapic_x2apic_ldr(uint32_t id);

/* emu hooks (installed by abi_lapic_create; tests call them directly). */
int lapic_irq_pending(void *ctx, struct cpu *cpu);
void lapic_irq_ack(void *ctx, struct cpu *cpu, int vector);
bool lapic_nmi_pending(void *ctx, struct cpu *cpu);
bool lapic_smi_pending(void *ctx, struct cpu *cpu);

void lapic_timer_reset(struct abi_lapic *l);
void lapic_timer_lvtt_written(struct abi_lapic *l);
void lapic_timer_tmict_written(struct abi_lapic *l);
void lapic_timer_tdcr_written(struct abi_lapic *l);
uint32_t lapic_timer_tmcct(struct abi_lapic *l);
void lapic_timer_restart_from_regs(struct abi_lapic *l);
void lapic_timer_stop(struct abi_lapic *l);
/* Fires `l`'s timer if due; returns its next expiry (0 = none). */
uint64_t lapic_timer_poll(struct abi_lapic *l, uint64_t now);
int irqchip_timer_start(struct abi_irqchip *chip);
void irqchip_timer_stop(struct abi_irqchip *chip);
void irqchip_timer_rearm(struct abi_irqchip *chip);

/* ---- irqchip.c ---- */
/* The guest acked irqchip/pin (KVM_IRQCHIP_*): run the ack notifier, if any.
 * Called with chip->lock held; drops it around the notifier (see irqchip.h). */
void irqchip_notify_acked(struct abi_irqchip *chip, unsigned irqchip, unsigned pin);
static inline bool irqchip_has_ack_notifier(struct abi_irqchip *chip)
{
    return __atomic_load_n(&chip->ack_fn, __ATOMIC_ACQUIRE) != NULL;
}

/* ---- pic.c ---- */
void pic_reset(struct abi_pic *p);
/* Set IRQ line (0-15) level; chip->lock held. Returns KVM-style status. */
int pic_set_irq(struct abi_pic *p, unsigned irq, int level);
int pic_read_irq(struct abi_pic *p); /* INTA: vector */
int pic_peek_irq(struct abi_pic *p); /* vector INTA would return, no side effects */
bool pic_has_output(struct abi_pic *p);
int pic_ioport_read(struct abi_pic *p, uint16_t port, uint8_t *val);
int pic_ioport_write(struct abi_pic *p, uint16_t port, uint8_t val);
void pic_get_state(const struct abi_pic *p, unsigned unit, struct kvm_pic_state *s);
void pic_set_state(struct abi_pic *p, unsigned unit, const struct kvm_pic_state *s);

/* ---- ioapic.c ---- */
void ioapic_reset(struct abi_ioapic *io);
int ioapic_set_irq(struct abi_irqchip *chip, unsigned pin, int level);
/* EOI broadcast of `vector`; `level` = the LAPIC's TMR bit (KVM trigger_mode). */
void ioapic_eoi(struct abi_irqchip *chip, uint8_t vector, bool level);
uint32_t ioapic_mmio_read(struct abi_irqchip *chip, unsigned off);
void ioapic_mmio_write(struct abi_irqchip *chip, unsigned off, uint32_t val);
void ioapic_get_state(const struct abi_ioapic *io, struct kvm_ioapic_state *s);
void ioapic_set_state(struct abi_irqchip *chip, const struct kvm_ioapic_state *s);

#endif
