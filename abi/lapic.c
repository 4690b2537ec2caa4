/* abi/lapic.c: local APIC register file, xAPIC MMIO, x2APIC MSRs, APIC_BASE,
 * KVM_GET/SET_LAPIC, lifecycle. Behaviour mirrors Linux 6.12
 * arch/x86/kvm/lapic.c (register masks, x2APIC rules); SDM vol.3 chapter 10. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "abi/irqchip_internal.h"

#define APIC_VERSION 0x14u
#define MIN_MAXPHYADDR 36

/* LVT write masks (KVM apic_lvt_mask): vector, delivery status, mask bit,
 * plus delivery mode for the non-timer LVTs and polarity/trigger for LINTs. */
#define LVT_MASK (APIC_LVT_MASKED | APIC_LVT_PENDING | 0xffu)
#define LINT_MASK (LVT_MASK | APIC_MODE_MASK | APIC_LVT_POLARITY | APIC_LVT_REMOTE_IRR | APIC_LVT_LEVEL)

struct lvt_desc {
    unsigned reg;
    uint32_t mask;
};
/* Index order = KVM's LVT index (timer, thermal, perf, LINT0, LINT1, error, CMCI). */
static const struct lvt_desc lvt_table[] = {
    {APIC_REG_LVTT, LVT_MASK | APIC_TIMER_MODE_MASK},
    {APIC_REG_LVTTHMR, LVT_MASK | APIC_MODE_MASK},
    {APIC_REG_LVTPC, LVT_MASK | APIC_MODE_MASK},
    {APIC_REG_LVT0, LINT_MASK},
    {APIC_REG_LVT1, LINT_MASK},
    {APIC_REG_LVTERR, LVT_MASK},
    {APIC_REG_LVTCMCI, LVT_MASK | APIC_MODE_MASK},
};

static int lvt_index(unsigned off)
{
    for (unsigned i = 0; i < sizeof(lvt_table) / sizeof(lvt_table[0]); i++)
        if (lvt_table[i].reg == off)
            return (int)i;
    return -1;
}

uint32_t lapic_x2apic_ldr(uint32_t id)
{
    /* SDM 10.12.10.2: cluster = id[31:4] in LDR[31:16], 1 << id[3:0] in LDR[15:0]. */
    return ((id >> 4) << 16) | (1u << (id & 0xf));
}

static void set_version(struct abi_lapic *l)
{
    /* No directed EOI: KVM only offers it without an in-kernel IOAPIC. */
    lapic_set_reg(l, APIC_REG_LVR, APIC_VERSION | ((l->nr_lvt - 1) << 16));
}

static void sync_tpr_to_cr8(struct abi_lapic *l)
{
    if (l->cpu) {
        l->cpu->cr8 = lapic_reg(l, APIC_REG_TPR) >> 4;
        l->synced_cr8 = l->cpu->cr8;
    }
}

/* ---------------- readable registers ---------------- */

static bool reg_readable(const struct abi_lapic *l, unsigned off)
{
    switch (off) {
    case APIC_REG_ID: case APIC_REG_LVR: case APIC_REG_TPR: case APIC_REG_PPR:
    case APIC_REG_LDR: case APIC_REG_SVR: case APIC_REG_ESR: case APIC_REG_ICR:
    case APIC_REG_LVTT: case APIC_REG_LVTTHMR: case APIC_REG_LVTPC: case APIC_REG_LVT0:
    case APIC_REG_LVT1: case APIC_REG_LVTERR: case APIC_REG_TMICT: case APIC_REG_TMCCT:
    case APIC_REG_TDCR:
        return true;
    case APIC_REG_LVTCMCI:
        return l->nr_lvt > 6;
    case APIC_REG_APR: case APIC_REG_DFR: case APIC_REG_ICR2:
        return !lapic_x2apic_mode(l); /* not valid in x2APIC mode */
    default:
        return off >= APIC_REG_ISR && off < APIC_REG_IRR + 0x80;
    }
}

int lapic_reg_read(struct abi_lapic *l, unsigned off, uint32_t *val)
{
    if (off > 0x3f0 || (off & 0xf) || !reg_readable(l, off))
        return ABI_IRQCHIP_GP;
    if (off == APIC_REG_TPR || off == APIC_REG_PPR)
        lapic_sync_cr8(l, l->cpu); /* a MOV to CR8 changed TPR/PPR */
    if (off == APIC_REG_TMCCT)
        *val = lapic_timer_tmcct(l);
    else
        *val = lapic_reg(l, off);
    return 0;
}

/* ---------------- writes ---------------- */

static void set_svr(struct abi_lapic *l, uint32_t val)
{
    lapic_set_reg(l, APIC_REG_SVR, val & 0x3ff);
    if (!(val & APIC_SVR_ENABLE)) {
        /* SDM 10.4.7.2: software disable masks every LVT entry. */
        for (unsigned i = 0; i < l->nr_lvt; i++)
            lapic_set_reg(l, lvt_table[i].reg, lapic_reg(l, lvt_table[i].reg) | APIC_LVT_MASKED);
        lapic_timer_lvtt_written(l);
    }
    lapic_notify(l);
}

int lapic_reg_write(struct abi_lapic *l, unsigned off, uint32_t val)
{
    bool x2 = lapic_x2apic_mode(l);
    int lvt = lvt_index(off);

    if (lvt >= 0) {
        if ((unsigned)lvt >= l->nr_lvt)
            return ABI_IRQCHIP_GP;
        if (!lapic_sw_enabled(l))
            val |= APIC_LVT_MASKED;
        val &= lvt_table[lvt].mask;
        if (off == APIC_REG_LVTT)
            val &= ~APIC_TIMER_MODE_MASK | l->timer_mode_mask;
        lapic_set_reg(l, off, val);
        if (off == APIC_REG_LVTT)
            lapic_timer_lvtt_written(l);
        lapic_notify(l);
        return 0;
    }

    switch (off) {
    case APIC_REG_ID:
        if (x2)
            return ABI_IRQCHIP_GP;
        lapic_set_reg(l, APIC_REG_ID, val & 0xff000000u);
        return 0;
    case APIC_REG_TPR:
        lapic_set_reg(l, APIC_REG_TPR, val & 0xff);
        sync_tpr_to_cr8(l);
        lapic_update_ppr(l);
        lapic_notify(l);
        return 0;
    case APIC_REG_EOI:
        lapic_eoi(l);
        return 0;
    case APIC_REG_LDR:
        if (x2)
            return ABI_IRQCHIP_GP;
        lapic_set_reg(l, APIC_REG_LDR, val & 0xff000000u);
        return 0;
    case APIC_REG_DFR:
        if (x2)
            return ABI_IRQCHIP_GP;
        lapic_set_reg(l, APIC_REG_DFR, val | 0x0fffffffu);
        return 0;
    case APIC_REG_SVR:
        set_svr(l, val);
        return 0;
    case APIC_REG_ICR:
        /* xAPIC only (x2APIC goes through abi_lapic_wrmsr). Delivery is
         * instantaneous, so the busy bit always reads 0. */
        val &= ~APIC_LVT_PENDING;
        lapic_set_reg(l, APIC_REG_ICR, val);
        lapic_send_ipi(l, val, lapic_reg(l, APIC_REG_ICR2) >> 24);
        return 0;
    case APIC_REG_ICR2:
        if (x2)
            return ABI_IRQCHIP_GP;
        lapic_set_reg(l, APIC_REG_ICR2, val & 0xff000000u);
        return 0;
    case APIC_REG_TMICT:
        if ((lapic_reg(l, APIC_REG_LVTT) & APIC_TIMER_MODE_MASK) == APIC_TIMER_TSCDEADLINE)
            return 0; /* ignored in TSC-deadline mode (SDM 10.5.4.1) */
        lapic_set_reg(l, APIC_REG_TMICT, val);
        lapic_timer_tmict_written(l);
        return 0;
    case APIC_REG_TDCR:
        lapic_set_reg(l, APIC_REG_TDCR, val & 0xb);
        lapic_timer_tdcr_written(l);
        return 0;
    case APIC_REG_ESR:
        return (x2 && val != 0) ? ABI_IRQCHIP_GP : 0;
    case APIC_REG_SELF_IPI:
        if (!x2 || (val & ~0xffu))
            return ABI_IRQCHIP_GP;
        lapic_send_ipi(l, (APIC_SH_SELF << 18) | (val & 0xff), 0);
        return 0;
    default:
        return ABI_IRQCHIP_GP;
    }
}

/* ---------------- xAPIC MMIO ---------------- */

bool abi_lapic_mmio(struct abi_lapic *l, uint64_t gpa, bool write, void *data, unsigned len)
{
    uint64_t page = l->base & ~0xfffull;
    if (gpa < page || gpa >= page + 0x1000)
        return false;
    unsigned off = (unsigned)(gpa - page);

    /* Hardware-disabled or x2APIC: KVM_X86_QUIRK_LAPIC_MMIO_HOLE (on by
     * default) makes the page read all-ones and drop writes. */
    if (!lapic_hw_enabled(l) || lapic_x2apic_mode(l)) {
        if (!write)
            memset(data, 0xff, len);
        return true;
    }
    if (write) {
        /* SDM 10.4.1: registers are written as aligned 32-bit quantities;
         * KVM ignores anything else. */
        if (len == 4 && !(off & 0xf)) {
            uint32_t v;
            memcpy(&v, data, 4);
            lapic_reg_write(l, off & 0xff0, v);
        }
        return true;
    }
    memset(data, 0, len);
    unsigned align = off & 0xf;
    uint32_t v;
    if (align + len <= 4 && (len == 1 || len == 2 || len == 4) &&
        lapic_reg_read(l, off & 0xff0, &v) == 0)
        memcpy(data, (uint8_t *)&v + align, len);
    return true;
}

/* ---------------- x2APIC MSRs ---------------- */

int abi_lapic_rdmsr(struct abi_lapic *l, uint32_t index, uint64_t *value)
{
    if (index < ABI_APIC_MSR_FIRST || index > ABI_APIC_MSR_LAST || !lapic_x2apic_mode(l))
        return ABI_IRQCHIP_GP;
    unsigned off = (index - ABI_APIC_MSR_FIRST) << 4;
    if (off == APIC_REG_ICR) {
        uint64_t icr;
        memcpy(&icr, l->regs + APIC_REG_ICR, 8);
        *value = icr;
        return 0;
    }
    uint32_t v;
    if (lapic_reg_read(l, off, &v))
        return ABI_IRQCHIP_GP;
    *value = v;
    return 0;
}

/* KVM's X2APIC_ICR_RESERVED_BITS: 31:20, 17:16, 13. */
#define X2APIC_ICR_RESERVED 0xfff3a000ull

int abi_lapic_wrmsr(struct abi_lapic *l, uint32_t index, uint64_t value)
{
    if (index < ABI_APIC_MSR_FIRST || index > ABI_APIC_MSR_LAST || !lapic_x2apic_mode(l))
        return ABI_IRQCHIP_GP;
    unsigned off = (index - ABI_APIC_MSR_FIRST) << 4;
    if (off == APIC_REG_ICR) {
        if (value & X2APIC_ICR_RESERVED)
            return ABI_IRQCHIP_GP;
        value &= ~(uint64_t)APIC_LVT_PENDING;
        memcpy(l->regs + APIC_REG_ICR, &value, 8);
        lapic_send_ipi(l, (uint32_t)value, (uint32_t)(value >> 32));
        return 0;
    }
    if (value >> 32)
        return ABI_IRQCHIP_GP; /* bits 63:32 reserved in every other register */
    return lapic_reg_write(l, off, (uint32_t)value);
}

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

/* ---------------- msr/ hook adapters (struct msr_apic_ops) ---------------- */

int abi_lapic_msr_read(void *lapic, uint32_t index, uint64_t *value)
{
    return abi_lapic_rdmsr(lapic, index, value);
}

int abi_lapic_msr_write(void *lapic, uint32_t index, uint64_t value)
{
    return abi_lapic_wrmsr(lapic, index, value);
}

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
    set_version(l);
    sync_tpr_to_cr8(l);
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
    set_version(l);
    for (unsigned i = 0; i < l->nr_lvt; i++)
        lapic_set_reg(l, lvt_table[i].reg, APIC_LVT_MASKED);
    /* KVM_X86_QUIRK_LINT0_REENABLED (default on): BSP's LINT0 is ExtINT, unmasked. */
    if (l->bsp)
        lapic_set_reg(l, APIC_REG_LVT0, APIC_DM_EXTINT << 8);
    lapic_set_reg(l, APIC_REG_DFR, 0xffffffffu);
    lapic_set_reg(l, APIC_REG_SVR, 0xff);
    lapic_set_reg(l, APIC_REG_TPR, 0);
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
    __atomic_store_n(&l->init_pending, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&l->sipi_pending, 0, __ATOMIC_RELAXED);
    l->pic_vector_pending = false;
    sync_tpr_to_cr8(l);
    lapic_update_ppr(l);
}

static const struct emu_irq_ops lapic_emu_ops_template = {
    .pending = lapic_irq_pending,
    .ack = lapic_irq_ack,
    .nmi_pending = lapic_nmi_pending,
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

void abi_lapic_set_cmci_cap(struct abi_lapic *l, bool supported)
{
    unsigned n = supported ? 7 : 6;
    for (unsigned i = l->nr_lvt; i < n; i++)
        lapic_set_reg(l, lvt_table[i].reg, APIC_LVT_MASKED);
    l->nr_lvt = n;
    set_version(l);
}

int abi_lapic_local_deliver(struct abi_lapic *l, unsigned lvt_reg, bool intel_compatible)
{
    int idx = lvt_index(lvt_reg);
    if (idx < 0 || (unsigned)idx >= l->nr_lvt)
        return 0;
    uint32_t v = lapic_reg(l, lvt_reg);
    if (!lapic_hw_enabled(l) || (v & APIC_LVT_MASKED))
        return 0;
    struct apic_irq irq = {
        .vector = v & 0xff,
        .delivery_mode = (v >> 8) & 7,
        .level = v & APIC_LVT_LEVEL,
        .assert = true,
    };
    int r = lapic_accept_irq(l, &irq);
    /* Intel: a PMI masks LVTPC so the handler can re-arm it (SDM 18.x). */
    if (r && lvt_reg == APIC_REG_LVTPC && intel_compatible)
        lapic_set_reg(l, APIC_REG_LVTPC, v | APIC_LVT_MASKED);
    return r;
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
