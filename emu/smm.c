/* emu/: system-management mode, mirroring Linux 6.12 arch/x86/kvm/smm.c: SMI entry
 * (enter_smm with the 32/64-bit state-save maps of smm.h), RSM (em_rsm ->
 * emulator_leave_smm), the SMM address-space switch (kvm_smm_changed; x86.c
 * kvm_arch_vcpu_memslots_id) and NMI blocking across SMM (HF_SMM_INSIDE_NMI_MASK).
 * The vendors' enter_smm/leave_smm (leaving and re-entering L2) are emu/svm.c's. The
 * state-save map is KVM's, not a CPU's: KVM's own layout, revision 0x20064 / 0x20000. */
#include <string.h>

#include "emu/internal.h"

#define CR0_PE (1ull << 0)
#define CR0_TS (1ull << 3)
#define CR0_EM (1ull << 2)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_PCIDE (1ull << 17)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

/* offsets in the 512-byte map at SMBASE + 0xfe00 (smm.c check_smram_offsets - 0xfe00) */
enum {
    M64_ES = 0x00, M64_GDTR = 0x60, M64_LDTR = 0x70, M64_IDTR = 0x80, M64_TR = 0x90,
    M64_INT_SHADOW = 0xcb, M64_EFER = 0xd0, M64_REVISION = 0xfc, M64_SMBASE = 0x100,
    M64_CR4 = 0x148, M64_CR3 = 0x150, M64_CR0 = 0x158, M64_DR7 = 0x160, M64_DR6 = 0x168,
    M64_RFLAGS = 0x170, M64_RIP = 0x178, M64_GPRS = 0x180,
    M32_SMBASE = 0xf8, M32_REVISION = 0xfc, M32_CR4 = 0x114, M32_INT_SHADOW = 0x11a,
    M32_DS = 0x12c, M32_FS = 0x138, M32_GS = 0x144, M32_IDTR = 0x150, M32_TR = 0x15c,
    M32_GDTR = 0x16c, M32_LDTR = 0x178, M32_ES = 0x184, M32_CS = 0x190, M32_SS = 0x19c,
    M32_SEL = 0x1a8, /* es cs ss ds fs gs ldtr tr selectors, 4 bytes each */
    M32_DR7 = 0x1c8, M32_DR6 = 0x1cc, M32_GPRS = 0x1d0, M32_EIP = 0x1f0, M32_EFLAGS = 0x1f4,
    M32_CR3 = 0x1f8, M32_CR0 = 0x1fc,
};
#define SMRAM_MAP 0xfe00u
#define SMRAM_SIZE 512u

static uint64_t rd(const uint8_t *p, unsigned off, unsigned n)
{
    uint64_t x = 0;
    memcpy(&x, p + off, n);
    return x;
}

static void wr(uint8_t *p, unsigned off, unsigned n, uint64_t x)
{
    memcpy(p + off, &x, n);
}

/* enter_smm_get_segment_flags / rsm_set_desc_flags: descriptor bits 8-23 */
static uint32_t seg_flags(const struct emu_segment *s)
{
    return (uint32_t)s->g << 23 | (uint32_t)s->db << 22 | (uint32_t)s->l << 21 |
           (uint32_t)s->avl << 20 | (uint32_t)s->present << 15 | (uint32_t)s->dpl << 13 |
           (uint32_t)s->s << 12 | (uint32_t)s->type << 8;
}

static void seg_set_flags(struct emu_segment *s, uint32_t f)
{
    s->g = (f >> 23) & 1, s->db = (f >> 22) & 1, s->l = (f >> 21) & 1, s->avl = (f >> 20) & 1;
    s->present = (f >> 15) & 1, s->dpl = (f >> 13) & 3, s->s = (f >> 12) & 1;
    s->type = (f >> 8) & 15;
    s->unusable = !s->present;
}

/* 64-bit map segment: selector, attributes (flags >> 8), limit, base */
static void seg64_store(uint8_t *m, unsigned off, const struct emu_segment *s)
{
    wr(m, off, 2, s->selector);
    wr(m, off + 2, 2, seg_flags(s) >> 8);
    wr(m, off + 4, 4, s->limit);
    wr(m, off + 8, 8, s->base);
}

static void seg64_load(const uint8_t *m, unsigned off, struct emu_segment *s)
{
    s->selector = (uint16_t)rd(m, off, 2);
    seg_set_flags(s, (uint32_t)rd(m, off + 2, 2) << 8);
    s->limit = (uint32_t)rd(m, off + 4, 4);
    s->base = rd(m, off + 8, 8);
}

/* 32-bit map segment: flags, limit, base (selector stored apart) */
static void seg32_store(uint8_t *m, unsigned off, unsigned sel_off, const struct emu_segment *s)
{
    wr(m, off, 4, seg_flags(s));
    wr(m, off + 4, 4, s->limit);
    wr(m, off + 8, 4, (uint32_t)s->base);
    wr(m, sel_off, 4, s->selector);
}

static void seg32_load(const uint8_t *m, unsigned off, unsigned sel_off, struct emu_segment *s)
{
    seg_set_flags(s, (uint32_t)rd(m, off, 4));
    s->limit = (uint32_t)rd(m, off + 4, 4);
    s->base = (uint32_t)rd(m, off + 8, 4);
    s->selector = (uint16_t)rd(m, sel_off, 4);
}

/* guest_cpuid_has(X86_FEATURE_LM): decides which map KVM uses */
static bool guest_lm(struct emu_vcpu *v)
{
    const struct emu_cpuid_entry *e = emu_cpuid_find(v, 0x80000001u, 0);
    return e && (e->edx & (1u << 29));
}

/* kvm_smm_changed: HF_SMM_MASK and the address space the vCPU's memory accesses use
 * (address space 1 in SMM); leaving SMM also drops HF_SMM_INSIDE_NMI_MASK. */
static void smm_changed(struct emu_vcpu *v, bool smm)
{
    struct cpu *c = &v->cpu;
    c->ev.smm = smm;
    if (!smm)
        c->ev.smm_inside_nmi = false;
    struct emu_physmem *pm = smm && v->pm_as[1] ? v->pm_as[1] : v->pm_as[0];
    if (pm != v->pm) {
        v->pm = pm;
        emu_block_cache_flush(v); /* blocks are keyed by guest-physical address */
    }
    emu_flush_caches(v); /* kvm_mmu_reset_context: translations go */
    v->kick = 1;         /* KVM_REQ_EVENT: a latched SMI/NMI is looked at again */
}

void emu_set_smm_physmem(struct emu_vcpu *v, struct emu_physmem *pm)
{
    v->pm_as[1] = pm;
    if (v->cpu.ev.smm)
        smm_changed(v, true);
}

void emu_smm_set(struct emu_vcpu *v, bool smm)
{
    if (v->cpu.ev.smm == smm)
        return;
    emu_svm_leave_guest(v); /* x86.c: kvm_leave_nested before kvm_smm_changed */
    emu_vmx_leave_guest(v);
    smm_changed(v, smm);
    emu_update_mode(v);
}

static void save_64(struct emu_vcpu *v, uint8_t *m)
{
    struct cpu *c = &v->cpu;
    static const unsigned order[6] = {EMU_ES, EMU_CS, EMU_SS, EMU_DS, EMU_FS, EMU_GS};
    for (unsigned i = 0; i < 16; i++)
        wr(m, M64_GPRS + 8 * (15 - i), 8, c->gpr[i]);
    wr(m, M64_RIP, 8, c->rip);
    wr(m, M64_RFLAGS, 8, emu_flags(v));
    wr(m, M64_DR6, 8, c->dr[6]);
    wr(m, M64_DR7, 8, c->dr[7]);
    wr(m, M64_CR0, 8, c->cr0);
    wr(m, M64_CR3, 8, c->cr3);
    wr(m, M64_CR4, 8, c->cr4);
    wr(m, M64_SMBASE, 4, c->smbase);
    wr(m, M64_REVISION, 4, 0x00020064);
    wr(m, M64_EFER, 8, c->efer);
    seg64_store(m, M64_TR, &c->seg[EMU_TR]);
    wr(m, M64_IDTR + 4, 4, c->idtr.limit);
    wr(m, M64_IDTR + 8, 8, c->idtr.base);
    seg64_store(m, M64_LDTR, &c->seg[EMU_LDTR]);
    wr(m, M64_GDTR + 4, 4, c->gdtr.limit);
    wr(m, M64_GDTR + 8, 8, c->gdtr.base);
    for (unsigned i = 0; i < 6; i++)
        seg64_store(m, M64_ES + 16 * i, &c->seg[order[i]]);
    wr(m, M64_INT_SHADOW, 1, c->ev.int_shadow);
}

static const unsigned m32_seg[EMU_NSEGS] = {
    [EMU_ES] = M32_ES, [EMU_CS] = M32_CS, [EMU_SS] = M32_SS, [EMU_DS] = M32_DS,
    [EMU_FS] = M32_FS, [EMU_GS] = M32_GS, [EMU_TR] = M32_TR, [EMU_LDTR] = M32_LDTR,
};
/* es cs ss ds fs gs ldtr tr: the selector slots' order */
static const unsigned m32_sel[EMU_NSEGS] = {
    [EMU_ES] = 0, [EMU_CS] = 1, [EMU_SS] = 2, [EMU_DS] = 3, [EMU_FS] = 4, [EMU_GS] = 5,
    [EMU_LDTR] = 6, [EMU_TR] = 7,
};

static void save_32(struct emu_vcpu *v, uint8_t *m)
{
    struct cpu *c = &v->cpu;
    wr(m, M32_CR0, 4, c->cr0);
    wr(m, M32_CR3, 4, c->cr3);
    wr(m, M32_EFLAGS, 4, emu_flags(v));
    wr(m, M32_EIP, 4, c->rip);
    for (unsigned i = 0; i < 8; i++)
        wr(m, M32_GPRS + 4 * i, 4, c->gpr[i]);
    wr(m, M32_DR6, 4, c->dr[6]);
    wr(m, M32_DR7, 4, c->dr[7]);
    for (unsigned s = 0; s < EMU_NSEGS; s++)
        seg32_store(m, m32_seg[s], M32_SEL + 4 * m32_sel[s], &c->seg[s]);
    wr(m, M32_GDTR + 4, 4, c->gdtr.limit);
    wr(m, M32_GDTR + 8, 4, (uint32_t)c->gdtr.base);
    wr(m, M32_IDTR + 4, 4, c->idtr.limit);
    wr(m, M32_IDTR + 8, 4, (uint32_t)c->idtr.base);
    wr(m, M32_CR4, 4, c->cr4);
    wr(m, M32_REVISION, 4, 0x00020000);
    wr(m, M32_SMBASE, 4, c->smbase);
    wr(m, M32_INT_SHADOW, 1, c->ev.int_shadow);
}

/* x86.c kvm_check_and_inject_events' SMI step, after exceptions and before NMIs: an SMI
 * is taken unless the vCPU is in SMM (svm_smi_blocked / vmx_smi_allowed; GIF is checked
 * by the caller). Returns true if it was taken. */
bool emu_smm_take_smi(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    if (!c->ev.smi_pending || c->ev.smm)
        return false;
    emu_svm_smi_intercept(v); /* L1 intercepting SMIs gets SVM_EXIT_SMI first */
    c->ev.smi_pending = false;
    c->smi_count++;
    c->halted = false; /* an SMI wakes a halted vCPU (kvm_vcpu_has_events) */
    emu_smm_enter(v);
    return true;
}

/* enter_smm */
void emu_smm_enter(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    uint8_t m[SMRAM_SIZE];
    memset(m, 0, sizeof m);
    bool lm = guest_lm(v);
    if (lm)
        save_64(v, m);
    else
        save_32(v, m);
    /* the vendor leaves L2 after the map holds L2's state (svm_enter_smm) */
    bool ok = emu_svm_smm_enter(v, m, lm) && emu_vmx_smm_enter(v);
    smm_changed(v, true);
    /* written in SMM, i.e. into address space 1 (kvm_vcpu_write_guest after the switch) */
    if (!ok || !emu_phys_write(v, c->smbase + SMRAM_MAP, m, sizeof m))
        c->ev.triple_fault_pending = true; /* KVM: kvm_vm_dead; here the vCPU shuts down */
    if (c->ev.nmi_masked)
        c->ev.smm_inside_nmi = true;
    else
        c->ev.nmi_masked = true;
    emu_flags_set(v, EMU_FL_FIXED1);
    c->rip = 0x8000;
    c->ev.int_shadow = 0;
    c->cr0 &= ~(CR0_PE | CR0_EM | CR0_TS | CR0_PG);
    c->cr4 = 0;
    c->idtr.base = 0, c->idtr.limit = 0; /* undocumented: IDT limit 0 in SMM */
    c->dr[7] = 0x400;
    emu_debug_update(v);
    struct emu_segment cs = {.selector = (uint16_t)(c->smbase >> 4), .base = c->smbase,
                             .limit = 0xffffffffu, .type = 3, .s = 1, .present = 1, .g = 1};
    struct emu_segment ds = cs;
    ds.selector = 0, ds.base = 0;
    c->seg[EMU_CS] = cs;
    c->seg[EMU_DS] = c->seg[EMU_ES] = c->seg[EMU_FS] = c->seg[EMU_GS] = c->seg[EMU_SS] = ds;
    if (lm) {
        /* svm_set_efer: clearing EFER.SVME sets GIF (SMM then runs with GIF = 1) */
        if (c->efer & (1ull << 12))
            v->nested.svm.gif_clear = false;
        c->efer = 0;
    }
    v->code_epoch++; /* an external event: other writers' code is visible (emu/block.c) */
    emu_update_mode(v);
    emu_tlb_flush(v);
}

/* rsm_enter_protected_mode: CR3, CR4 without PCIDE, CR0, then PCIDE (and PCID) */
static void rsm_cr(struct emu_vcpu *v, uint64_t cr0, uint64_t cr3, uint64_t cr4)
{
    struct cpu *c = &v->cpu;
    c->cr3 = cr3;
    c->cr4 = cr4;
    c->cr0 = cr0;
    if ((cr0 & CR0_PG) && (c->efer & EFER_LME))
        c->efer |= EFER_LMA;
    if ((cr0 & CR0_PG) && (cr4 & CR4_PAE) && !(c->efer & EFER_LMA))
        emu_try_load_pdptrs(v, cr3);
}

static void load_32(struct emu_vcpu *v, const uint8_t *m)
{
    struct cpu *c = &v->cpu;
    emu_flags_set(v, rd(m, M32_EFLAGS, 4) | EMU_FL_FIXED1);
    v->next_rip = rd(m, M32_EIP, 4);
    for (unsigned i = 0; i < 8; i++)
        c->gpr[i] = rd(m, M32_GPRS + 4 * i, 4);
    c->dr[6] = (uint32_t)rd(m, M32_DR6, 4) | 0xffff0ff0u;
    c->dr[7] = (uint32_t)rd(m, M32_DR7, 4) | 0x400;
    emu_debug_update(v);
    for (unsigned s = 0; s < EMU_NSEGS; s++)
        seg32_load(m, m32_seg[s], M32_SEL + 4 * m32_sel[s], &c->seg[s]);
    c->gdtr.base = rd(m, M32_GDTR + 8, 4), c->gdtr.limit = (uint16_t)rd(m, M32_GDTR + 4, 4);
    c->idtr.base = rd(m, M32_IDTR + 8, 4), c->idtr.limit = (uint16_t)rd(m, M32_IDTR + 4, 4);
    c->smbase = rd(m, M32_SMBASE, 4);
    rsm_cr(v, rd(m, M32_CR0, 4), rd(m, M32_CR3, 4), rd(m, M32_CR4, 4));
    c->ev.int_shadow = (uint8_t)rd(m, M32_INT_SHADOW, 1);
}

static void load_64(struct emu_vcpu *v, const uint8_t *m)
{
    struct cpu *c = &v->cpu;
    static const unsigned order[6] = {EMU_ES, EMU_CS, EMU_SS, EMU_DS, EMU_FS, EMU_GS};
    for (unsigned i = 0; i < 16; i++)
        c->gpr[i] = rd(m, M64_GPRS + 8 * (15 - i), 8);
    v->next_rip = rd(m, M64_RIP, 8);
    emu_flags_set(v, rd(m, M64_RFLAGS, 8) | EMU_FL_FIXED1);
    c->dr[6] = rd(m, M64_DR6, 8) | 0xffff0ff0u;
    c->dr[7] = rd(m, M64_DR7, 8) | 0x400;
    emu_debug_update(v);
    c->smbase = rd(m, M64_SMBASE, 4);
    c->efer = rd(m, M64_EFER, 8) & ~EFER_LMA;
    seg64_load(m, M64_TR, &c->seg[EMU_TR]);
    c->idtr.limit = (uint16_t)rd(m, M64_IDTR + 4, 4), c->idtr.base = rd(m, M64_IDTR + 8, 8);
    seg64_load(m, M64_LDTR, &c->seg[EMU_LDTR]);
    c->gdtr.limit = (uint16_t)rd(m, M64_GDTR + 4, 4), c->gdtr.base = rd(m, M64_GDTR + 8, 8);
    rsm_cr(v, rd(m, M64_CR0, 8), rd(m, M64_CR3, 8), rd(m, M64_CR4, 8));
    for (unsigned i = 0; i < 6; i++)
        seg64_load(m, M64_ES + 16 * i, &c->seg[order[i]]);
    c->ev.int_shadow = (uint8_t)rd(m, M64_INT_SHADOW, 1);
}

/* RSM (emulate.c em_rsm -> smm.c emulator_leave_smm): #UD outside SMM; a failure to
 * re-enter the saved state is a shutdown (ctxt->ops->triple_fault). */
static int h_rsm(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    struct cpu *c = &v->cpu;
    emu_icpt_insn(v, EMU_NX_RSM, 0);
    if (!c->ev.smm)
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    uint8_t m[SMRAM_SIZE];
    if (!emu_phys_read(v, c->smbase + SMRAM_MAP, m, sizeof m))
        emu_unimplemented(v); /* X86EMUL_UNHANDLEABLE: an emulation failure */
    if (!c->ev.smm_inside_nmi)
        c->ev.nmi_masked = false;
    smm_changed(v, false);
    /* KVM first goes back to a flat real-mode state (CR0.PE/PG, CR4.PAE/PCIDE, EFER
     * cleared) so the saved CR/EFER values load in a legal order; writing the fields
     * directly has the same outcome */
    c->cr0 &= ~(CR0_PE | CR0_PG);
    c->cr4 &= ~(CR4_PAE | CR4_PCIDE);
    c->efer = 0;
    bool lm = guest_lm(v);
    /* the vendor re-enters L2 before the map loads over it (smm.c FIXME: as KVM does) */
    bool ok = (lm ? emu_svm_smm_leave(v, m) : true) && emu_vmx_smm_leave(v);
    if (ok) {
        if (lm)
            load_64(v, m);
        else
            load_32(v, m);
    } else {
        c->ev.triple_fault_pending = true;
    }
    v->code_epoch++;
    emu_update_mode(v); /* emulator_recalc_and_set_mode */
    if (v->nested.guest_mode)
        c->cpl = c->seg[EMU_SS].dpl;
    emu_tlb_flush(v);
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_smm_handlers[] = {
    {DOP_RSM, h_rsm},
    {0, NULL},
};
