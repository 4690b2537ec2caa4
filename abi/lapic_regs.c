/* abi/lapic_regs.c: the local APIC register file: per-register read/write
 * rules (KVM kvm_lapic_reg_read/write masks), xAPIC MMIO, x2APIC MSRs
 * (SDM vol.3 10.12.1.2), LVT local delivery. Behaviour mirrors Linux 6.12
 * arch/x86/kvm/lapic.c; SDM vol.3 chapter 10. */
#include <string.h>

#include "abi/irqchip_internal.h"

#define APIC_VERSION 0x14u

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

void lapic_set_version(struct abi_lapic *l)
{
    /* No directed EOI: KVM only offers it without an in-kernel IOAPIC. */
    lapic_set_reg(l, APIC_REG_LVR, APIC_VERSION | ((l->nr_lvt - 1) << 16));
}

void lapic_sync_tpr_to_cr8(struct abi_lapic *l)
{
    if (l->cpu) {
        l->cpu->cr8 = lapic_reg(l, APIC_REG_TPR) >> 4;
        l->synced_cr8 = l->cpu->cr8;
    }
}

unsigned lapic_lvt_reg(unsigned index)
{
    return lvt_table[index].reg;
}

/* KVM_TPR_ACCESS_REPORTING: a guest read or write of TASKPRI (MMIO or x2APIC MSR) makes
 * the vCPU exit with KVM_EXIT_TPR_ACCESS once the instruction is done (lapic.c
 * __report_tpr_access: rip of the accessing instruction, KVM_REQ_REPORT_TPR_ACCESS). */
static void report_tpr_access(struct abi_lapic *l, bool write)
{
    if (!l->tpr_access_reporting)
        return;
    l->tpr_report_pending = true;
    l->tpr_report_write = write;
    l->tpr_report_rip = l->access_rip ? l->access_rip : l->cpu ? l->cpu->rip : 0;
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
    if (off == APIC_REG_TPR)
        report_tpr_access(l, false);
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
        report_tpr_access(l, true);
        lapic_set_reg(l, APIC_REG_TPR, val & 0xff);
        lapic_sync_tpr_to_cr8(l);
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
    return abi_lapic_hv_reg_read(l, (index - ABI_APIC_MSR_FIRST) << 4, value);
}

/* KVM's X2APIC_ICR_RESERVED_BITS: 31:20, 17:16, 13. */
#define X2APIC_ICR_RESERVED 0xfff32000ull /* lapic.c X2APIC_ICR_RESERVED_BITS: 31:20, 17:16, 13 */

int abi_lapic_wrmsr(struct abi_lapic *l, uint32_t index, uint64_t value)
{
    if (index < ABI_APIC_MSR_FIRST || index > ABI_APIC_MSR_LAST || !lapic_x2apic_mode(l))
        return ABI_IRQCHIP_GP;
    return abi_lapic_hv_reg_write(l, (index - ABI_APIC_MSR_FIRST) << 4, value);
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

void abi_lapic_set_cmci_cap(struct abi_lapic *l, bool supported)
{
    unsigned n = supported ? 7 : 6;
    for (unsigned i = l->nr_lvt; i < n; i++)
        lapic_set_reg(l, lvt_table[i].reg, APIC_LVT_MASKED);
    l->nr_lvt = n;
    lapic_set_version(l);
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


/* ---------------- Hyper-V synthetic APIC MSRs (KVM kvm_hv_vapic_msr_{read,write}) ------
 * HV_X64_MSR_EOI/ICR/TPR reach the register whatever the APIC mode (xAPIC included), with
 * x2APIC rules: ICR is one 64-bit register, every other register 32-bit (lapic.c
 * kvm_lapic_msr_read/write). */

int abi_lapic_hv_reg_read(struct abi_lapic *l, unsigned off, uint64_t *value)
{
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

int abi_lapic_hv_reg_write(struct abi_lapic *l, unsigned off, uint64_t value)
{
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
