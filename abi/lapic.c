/* abi/lapic.c: local APIC lifecycle (create/destroy, RESET/INIT per KVM
 * kvm_lapic_reset), IA32_APIC_BASE and the xAPIC/x2APIC mode switches
 * (SDM vol.3 10.12.5), KVM_GET/SET_LAPIC and the CPU-model capabilities.
 * Behaviour mirrors Linux 6.12 arch/x86/kvm/lapic.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "abi/irqchip_internal.h"

#define MIN_MAXPHYADDR 36

/* ---------------- IA32_APIC_BASE ---------------- */

uint64_t abi_lapic_get_base(const struct abi_lapic *l)
{
    return __atomic_load_n(&l->base, __ATOMIC_RELAXED);
}

/* KVM __kvm_apic_set_base: enabling reloads the xAPIC ID; toggling EXTD
 * loads the x2APIC ID + derived LDR (SDM 10.12.5.1) or, back in xAPIC mode,
 * the xAPIC ID. The MMIO page follows the base address. */
static void apply_base(struct abi_lapic *l, uint64_t value)
{
    uint64_t old = l->base;
    __atomic_store_n(&l->base, value, __ATOMIC_RELAXED);
    if (l->cpu)
        l->cpu->apic_base = value;

    if ((old ^ value) & APIC_BASE_ENABLE) {
        if (value & APIC_BASE_ENABLE)
            lapic_set_reg(l, APIC_REG_ID, l->vcpu_id << 24);
        else
            lapic_timer_stop(l);
    }
    if ((old ^ value) & APIC_BASE_X2APIC) {
        if (value & APIC_BASE_X2APIC) {
            lapic_set_reg(l, APIC_REG_ID, l->vcpu_id);
            lapic_set_reg(l, APIC_REG_LDR, lapic_x2apic_ldr(l->vcpu_id));
        } else if (value & APIC_BASE_ENABLE) {
            lapic_set_reg(l, APIC_REG_ID, l->vcpu_id << 24);
        }
    }
    lapic_notify(l);
}

int abi_lapic_set_base(struct abi_lapic *l, uint64_t value, bool host_initiated)
{
    unsigned maxpa = l->maxphyaddr ? l->maxphyaddr : MIN_MAXPHYADDR;
    uint64_t reserved = (maxpa >= 64 ? 0 : ~((1ull << maxpa) - 1)) | 0x2ff |
                        (l->cpuid_x2apic ? 0 : APIC_BASE_X2APIC);
    bool old_en = l->base & APIC_BASE_ENABLE, old_x2 = lapic_x2apic_mode(l);
    bool new_en = value & APIC_BASE_ENABLE, new_x2 = value & APIC_BASE_X2APIC;

    if (value & reserved)
        return ABI_IRQCHIP_GP;
    if (new_x2 && !new_en)
        return ABI_IRQCHIP_GP; /* LAPIC_MODE_INVALID */
    if (!host_initiated) {
        if (old_x2 && new_en && !new_x2)
            return ABI_IRQCHIP_GP; /* x2APIC -> xAPIC needs a disable first */
        if (!old_en && new_x2)
            return ABI_IRQCHIP_GP; /* disabled -> x2APIC needs xAPIC first */
    }
    apply_base(l, value);
    return 0;
}

/* ---------------- msr/ hook adapters: APIC_BASE, TSC deadline ---------------- */

void abi_lapic_msr_base_changed(void *lapic, uint64_t old_value, uint64_t new_value, bool host)
{
    (void)old_value;
    (void)host; /* msr/ already applied KVM's kvm_apic_set_base checks */
    apply_base(lapic, new_value);
}

uint64_t abi_lapic_msr_tscdeadline_get(void *lapic)
{
    return abi_lapic_get_tsc_deadline(lapic);
}

void abi_lapic_msr_tscdeadline_set(void *lapic, uint64_t value)
{
    abi_lapic_set_tsc_deadline(lapic, value);
}

/* ---------------- KVM_GET/SET_LAPIC ---------------- */

int abi_lapic_get_state(struct abi_lapic *l, struct kvm_lapic_state *s)
{
    lapic_sync_cr8(l, l->cpu);
    for (unsigned off = 0; off < KVM_APIC_REG_SIZE; off += 4) {
        uint32_t v = lapic_reg(l, off);
        memcpy(s->regs + off, &v, 4);
    }
    uint32_t cc = lapic_timer_tmcct(l);
    memcpy(s->regs + APIC_REG_TMCCT, &cc, 4);
    if (lapic_x2apic_mode(l)) {
        uint32_t id = l->chip->x2apic_format ? l->vcpu_id : l->vcpu_id << 24;
        memcpy(s->regs + APIC_REG_ID, &id, 4);
        /* ICR is one 64-bit register internally; userspace sees ICR + ICR2. */
        uint32_t hi;
        memcpy(&hi, l->regs + APIC_REG_ICR + 4, 4);
        memcpy(s->regs + APIC_REG_ICR2, &hi, 4);
    }
    return 0;
}

int abi_lapic_set_state(struct abi_lapic *l, const struct kvm_lapic_state *in)
{
    struct kvm_lapic_state s;
    memcpy(&s, in, sizeof(s));
    uint32_t svr;
    memcpy(&svr, s.regs + APIC_REG_SVR, 4);

    if (lapic_x2apic_mode(l)) {
        uint32_t id;
        memcpy(&id, s.regs + APIC_REG_ID, 4);
        if (l->chip->x2apic_format) {
            if (id != l->vcpu_id)
                return -EINVAL;
        } else {
            /* KVM ignores a mismatched ID from userspace without x2apic_format. */
            id = l->vcpu_id;
            memcpy(s.regs + APIC_REG_ID, &id, 4);
        }
        uint32_t ldr = lapic_x2apic_ldr(l->vcpu_id), lo, hi;
        memcpy(s.regs + APIC_REG_LDR, &ldr, 4);
        memcpy(&lo, s.regs + APIC_REG_ICR, 4);
        memcpy(&hi, s.regs + APIC_REG_ICR2, 4);
        uint64_t icr = lo | (uint64_t)hi << 32;
        memcpy(s.regs + APIC_REG_ICR, &icr, 8);
    }
    lapic_timer_stop(l);
    for (unsigned off = 0; off < KVM_APIC_REG_SIZE; off += 4) {
        uint32_t v;
        memcpy(&v, s.regs + off, 4);
        lapic_set_reg(l, off, v);
    }
    lapic_set_reg(l, APIC_REG_SVR, svr);
    lapic_irr_resync(l);
    lapic_set_version(l);
    lapic_sync_tpr_to_cr8(l);
    lapic_update_ppr(l);
    /* KVM restarts the timer from TMCCT (the remaining count) and then
     * reads TMCCT as 0 in the stored page. */
    lapic_timer_restart_from_regs(l);
    lapic_set_reg(l, APIC_REG_TMCCT, 0);
    lapic_notify(l);
    return 0;
}

/* ---------------- lifecycle ---------------- */

void abi_lapic_reset(struct abi_lapic *l, bool init_event)
{
    lapic_timer_stop(l);
    if (!init_event) {
        uint64_t base = ABI_APIC_DEFAULT_BASE | APIC_BASE_ENABLE | (l->bsp ? APIC_BASE_BSP : 0);
        __atomic_store_n(&l->base, base, __ATOMIC_RELAXED);
        if (l->cpu)
            l->cpu->apic_base = base;
        lapic_set_reg(l, APIC_REG_ID, l->vcpu_id << 24);
    }
    lapic_set_version(l);
    for (unsigned i = 0; i < l->nr_lvt; i++)
        lapic_set_reg(l, lapic_lvt_reg(i), APIC_LVT_MASKED);
    /* KVM_X86_QUIRK_LINT0_REENABLED (default on): BSP's LINT0 is ExtINT, unmasked. */
    if (l->bsp)
        lapic_set_reg(l, APIC_REG_LVT0, APIC_DM_EXTINT << 8);
    lapic_set_reg(l, APIC_REG_DFR, 0xffffffffu);
    lapic_set_reg(l, APIC_REG_SVR, 0xff);
    lapic_set_reg(l, APIC_REG_TPR, 0);
    l->vapic_check = false; /* kvm_lapic_reset clears apic_attention; vapic_addr stays */
    if (!lapic_x2apic_mode(l))
        lapic_set_reg(l, APIC_REG_LDR, 0);
    lapic_set_reg(l, APIC_REG_ESR, 0);
    lapic_set_reg(l, APIC_REG_ICR, 0);
    lapic_set_reg(l, APIC_REG_ICR2, 0);
    lapic_set_reg(l, APIC_REG_TDCR, 0);
    lapic_set_reg(l, APIC_REG_TMICT, 0);
    lapic_set_reg(l, APIC_REG_TMCCT, 0);
    for (unsigned i = 0; i < 8; i++) {
        lapic_set_reg(l, APIC_REG_IRR + 0x10 * i, 0);
        lapic_set_reg(l, APIC_REG_ISR + 0x10 * i, 0);
        lapic_set_reg(l, APIC_REG_TMR + 0x10 * i, 0);
    }
    lapic_irr_resync(l);
    lapic_timer_reset(l);
    __atomic_store_n(&l->nmi_pending, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&l->smi_pending, 0, __ATOMIC_RELAXED); /* KVM: kvm_vcpu_reset smi_pending = 0 */
    if (!init_event) { /* an INIT's own reset leaves the INIT/SIPI latches to the run loop
                        * (KVM keeps apic->pending_events across kvm_lapic_reset) */
        __atomic_store_n(&l->init_pending, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&l->sipi_pending, 0, __ATOMIC_RELAXED);
    }
    l->pic_vector_pending = false;
    lapic_sync_tpr_to_cr8(l);
    lapic_update_ppr(l);
}

static const struct emu_irq_ops lapic_emu_ops_template = {
    .pending = lapic_irq_pending,
    .ack = lapic_irq_ack,
    .nmi_pending = lapic_nmi_pending,
    .smi_pending = lapic_smi_pending,
};

struct abi_lapic *abi_lapic_create(struct abi_irqchip *chip, struct emu_vcpu *v, uint32_t vcpu_id,
                                   bool bsp)
{
    if (!chip || vcpu_id >= ABI_IRQCHIP_MAX_IDS)
        return NULL;
    struct abi_lapic *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->chip = chip;
    l->vcpu = v;
    l->cpu = v ? emu_cpu(v) : NULL;
    l->vcpu_id = vcpu_id;
    l->bsp = bsp;
    l->cpuid_x2apic = true;
    l->maxphyaddr = 46;
    l->nr_lvt = 6;
    l->timer_mode_mask = 0; /* KVM: no timer mode bits until KVM_SET_CPUID2 */
    pthread_mutex_init(&l->timer_lock, NULL);

    pthread_mutex_lock(&chip->lapics_lock);
    if (chip->by_id[vcpu_id] || chip->nlive >= ABI_IRQCHIP_MAX_LAPICS) {
        pthread_mutex_unlock(&chip->lapics_lock);
        pthread_mutex_destroy(&l->timer_lock);
        free(l);
        return NULL;
    }
    abi_lapic_reset(l, false);
    chip->by_id[vcpu_id] = l;
    chip->lapics[chip->nlive++] = l;
    chip->nlapics++;
    pthread_mutex_unlock(&chip->lapics_lock);

    if (v) {
        /* The contract does not say emu copies the ops, so they live in the LAPIC. */
        struct emu_irq_ops ops = lapic_emu_ops_template;
        ops.ctx = l;
        l->emu_ops = ops;
        emu_set_irq_ops(v, &l->emu_ops);
    }
    return l;
}

void abi_lapic_destroy(struct abi_lapic *l)
{
    if (!l)
        return;
    struct abi_irqchip *chip = l->chip;
    pthread_mutex_lock(&chip->lapics_lock);
    lapic_timer_stop(l);
    chip->by_id[l->vcpu_id] = NULL;
    for (unsigned i = 0; i < chip->nlive; i++) {
        if (chip->lapics[i] == l) {
            chip->lapics[i] = chip->lapics[--chip->nlive];
            break;
        }
    }
    pthread_mutex_unlock(&chip->lapics_lock);
    if (l->vcpu)
        emu_set_irq_ops(l->vcpu, NULL);
    pthread_mutex_destroy(&l->timer_lock);
    free(l);
}

void abi_lapic_set_extint_source(struct abi_lapic *l, int (*fn)(void *ctx), void *ctx)
{
    l->extint_ctx = ctx;
    l->extint = fn;
}

void abi_lapic_set_tsc_deadline_cap(struct abi_lapic *l, bool supported)
{
    /* KVM: 3 << 17 with TSC_DEADLINE_TIMER in CPUID, else 1 << 17. */
    l->timer_mode_mask = supported ? APIC_TIMER_MODE_MASK : APIC_TIMER_PERIODIC;
}

void abi_lapic_set_cpu_caps(struct abi_lapic *l, bool x2apic, unsigned maxphyaddr)
{
    l->cpuid_x2apic = x2apic;
    l->maxphyaddr = maxphyaddr;
}

/* ---------------- vAPIC page and TPR access reports ---------------- */

void abi_lapic_set_vapic_addr(struct abi_lapic *l, uint64_t gpa)
{
    l->vapic_addr = gpa;
    l->vapic_check = gpa != 0;
}

bool abi_lapic_vapic_data(struct abi_lapic *l, uint64_t *gpa, uint32_t *data)
{
    if (!l->vapic_check)
        return false;
    lapic_sync_cr8(l, l->cpu); /* a MOV to CR8 may have changed TPR */
    int irr = lapic_highest_irr(l), isr = lapic_highest_isr(l);
    if (irr < 0)
        irr = 0;
    if (isr < 0)
        isr = 0;
    /* lapic.c kvm_lapic_sync_to_vapic: TPR, ISR class, highest IRR vector */
    *data = (lapic_reg(l, APIC_REG_TPR) & 0xff) | (((uint32_t)isr & 0xf0) << 8) | ((uint32_t)irr << 24);
    *gpa = l->vapic_addr;
    return true;
}

bool abi_lapic_vapic_active(const struct abi_lapic *l, uint64_t *gpa)
{
    *gpa = l->vapic_addr;
    return l->vapic_check;
}

void abi_lapic_vapic_set_tpr(struct abi_lapic *l, uint8_t tpr)
{
    lapic_set_reg(l, APIC_REG_TPR, tpr);
    lapic_sync_tpr_to_cr8(l);
    lapic_update_ppr(l);
}

void abi_lapic_set_tpr_access_reporting(struct abi_lapic *l, bool on)
{
    l->tpr_access_reporting = on;
    if (!on)
        l->tpr_report_pending = false;
}

void abi_lapic_set_access_rip(struct abi_lapic *l, uint64_t rip)
{
    l->access_rip = rip;
}

bool abi_lapic_take_tpr_access(struct abi_lapic *l, bool *is_write, uint64_t *rip)
{
    if (!l->tpr_report_pending)
        return false;
    l->tpr_report_pending = false;
    *is_write = l->tpr_report_write;
    *rip = l->tpr_report_rip;
    return true;
}
