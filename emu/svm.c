/* emu/: AMD SVM for an L1 hypervisor (APM vol.2 ch.15), mirroring Linux 6.12
 * arch/x86/kvm/svm/nested.c: VMRUN (nested_svm_vmrun, nested_vmcb_check_controls/save,
 * enter_svm_guest_mode), #VMEXIT (nested_svm_vmexit), the intercept predicates
 * (nested_svm_intercept, nested_svm_exit_handled_msr, nested_svm_intercept_ioio), event
 * arbitration in L2 (svm_check_nested_events, svm_interrupt_blocked), and svm.c's
 * VMLOAD/VMSAVE/STGI/CLGI/SKINIT/INVLPGA interceptions. The contract is emu/nested.h.
 * Not yet: nested paging (CPUID 0x8000000A offers no NPT), V_TPR <-> CR8 sync, vGIF,
 * vNMI, LBR virtualization, the pause filter, decode assists. */
#include <errno.h>
#include <string.h>

#include "emu/internal.h"
#include "msr/bitmap.h" /* header-only MSRPM bit positions */

#define CR0_PE (1ull << 0)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_SVME (1ull << 12)

/* VMCB layout (APM vol.2 appendix B; Linux arch/x86/include/asm/svm.h) */
enum {
    C_INTERCEPTS = 0x000, /* six 32-bit words */
    C_IOPM = 0x040, C_MSRPM = 0x048, C_TSC_OFFSET = 0x050, C_ASID = 0x058,
    C_INT_CTL = 0x060, C_INT_VECTOR = 0x064, C_INT_STATE = 0x068,
    C_EXIT_CODE = 0x070, C_EXIT_CODE_HI = 0x074, C_EXIT_INFO1 = 0x078, C_EXIT_INFO2 = 0x080,
    C_EXIT_INT_INFO = 0x088, C_EXIT_INT_INFO_ERR = 0x08c, C_NESTED_CTL = 0x090,
    C_EVENT_INJ = 0x0a8, C_EVENT_INJ_ERR = 0x0ac, C_CLEAN = 0x0c0, C_NEXT_RIP = 0x0c8,
    C_HV_CTL = 0x3e0, C_HV_PA_PAGE = 0x3f0, /* struct hv_vmcb_enlightenments */
    S_ES = 0x400, S_CS = 0x410, S_SS = 0x420, S_DS = 0x430, S_FS = 0x440, S_GS = 0x450,
    S_GDTR = 0x460, S_LDTR = 0x470, S_IDTR = 0x480, S_TR = 0x490, S_CPL = 0x4cb,
    S_EFER = 0x4d0, S_CR4 = 0x548, S_CR3 = 0x550, S_CR0 = 0x558, S_DR7 = 0x560,
    S_DR6 = 0x568, S_RFLAGS = 0x570, S_RIP = 0x578, S_RSP = 0x5d8, S_RAX = 0x5f8,
    S_STAR = 0x600, S_LSTAR = 0x608, S_CSTAR = 0x610, S_SFMASK = 0x618, S_KGSBASE = 0x620,
    S_SYSENTER_CS = 0x628, S_SYSENTER_ESP = 0x630, S_SYSENTER_EIP = 0x638, S_CR2 = 0x640,
};

/* Exit codes (Linux uapi asm/svm.h). For every code below 0xa0 the intercept bit has
 * the same number (word = code / 32), which is how KVM's vmcb12_is_intercept reads them. */
enum {
    SVM_EXIT_READ_CR0 = 0x000, SVM_EXIT_WRITE_CR0 = 0x010, SVM_EXIT_READ_DR0 = 0x020,
    SVM_EXIT_WRITE_DR0 = 0x030, SVM_EXIT_EXCP_BASE = 0x040, SVM_EXIT_INTR = 0x060,
    SVM_EXIT_NMI = 0x061, SVM_EXIT_VINTR = 0x064, SVM_EXIT_IOIO = 0x07b, SVM_EXIT_MSR = 0x07c,
    SVM_EXIT_SHUTDOWN = 0x07f, SVM_EXIT_VMRUN = 0x080, SVM_EXIT_VMMCALL = 0x081,
    SVM_EXIT_ERR = -1,
};
#define INTERCEPT_IOIO_PROT 0x07b
#define INTERCEPT_MSR_PROT 0x07c

/* int_ctl bits */
#define V_TPR_MASK 0x0fu
#define V_IRQ (1u << 8)
#define V_INTR_PRIO_SHIFT 16
#define V_IGN_TPR (1u << 20)
#define V_INTR_MASKING (1u << 24)
#define V_NMI_ENABLE (1u << 26)
/* event_inj / exit_int_info */
#define EVTINJ_VALID (1u << 31)
#define EVTINJ_VALID_ERR (1u << 11)
#define EVTINJ_TYPE_SHIFT 8
#define SVM_NESTED_CTL_NP_ENABLE 1ull

static const uint16_t insn_exit[EMU_NX_COUNT] = {
    [EMU_NX_CPUID] = 0x072, [EMU_NX_HLT] = 0x078, [EMU_NX_INVLPG] = 0x079,
    [EMU_NX_INVD] = 0x076, [EMU_NX_WBINVD] = 0x089, [EMU_NX_RDTSC] = 0x06e,
    [EMU_NX_RDTSCP] = 0x087, [EMU_NX_RDPMC] = 0x06f, [EMU_NX_PAUSE] = 0x077,
    [EMU_NX_MONITOR] = 0x08a, [EMU_NX_MWAIT] = 0x08b, [EMU_NX_XSETBV] = 0x08d,
    [EMU_NX_VMMCALL] = 0x081, [EMU_NX_VMCALL] = 0x081, [EMU_NX_VMRUN] = 0x080,
    [EMU_NX_VMLOAD] = 0x082, [EMU_NX_VMSAVE] = 0x083, [EMU_NX_STGI] = 0x084,
    [EMU_NX_CLGI] = 0x085, [EMU_NX_SKINIT] = 0x086, [EMU_NX_INVLPGA] = 0x07a,
    [EMU_NX_IRET] = 0x074, [EMU_NX_PUSHF] = 0x070, [EMU_NX_POPF] = 0x071,
    [EMU_NX_INTN] = 0x075, [EMU_NX_ICEBP] = 0x088, [EMU_NX_RSM] = 0x073,
    [EMU_NX_SIDT] = 0x066, [EMU_NX_SGDT] = 0x067, [EMU_NX_SLDT] = 0x068,
    [EMU_NX_STR] = 0x069, [EMU_NX_LIDT] = 0x06a, [EMU_NX_LGDT] = 0x06b,
    [EMU_NX_LLDT] = 0x06c, [EMU_NX_LTR] = 0x06d, [EMU_NX_INVPCID] = 0x0a2,
    [EMU_NX_RDPRU] = 0x08e,
};

/* ---- little-endian field access on a VMCB image ---- */

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

/* vmcb_seg: selector, attrib (type S DPL P AVL L DB G), limit, base */
static void seg_load(const uint8_t *p, unsigned off, struct emu_segment *s)
{
    unsigned a = (unsigned)rd(p, off + 2, 2);
    s->selector = (uint16_t)rd(p, off, 2);
    s->limit = (uint32_t)rd(p, off + 4, 4);
    s->base = rd(p, off + 8, 8);
    s->type = a & 0xf, s->s = (a >> 4) & 1, s->dpl = (a >> 5) & 3, s->present = (a >> 7) & 1;
    s->avl = (a >> 8) & 1, s->l = (a >> 9) & 1, s->db = (a >> 10) & 1, s->g = (a >> 11) & 1;
    s->unusable = !s->present; /* svm_get_segment */
}

static void seg_store(uint8_t *p, unsigned off, const struct emu_segment *s)
{
    unsigned a = s->unusable ? 0
                             : (unsigned)(s->type | s->s << 4 | s->dpl << 5 | s->present << 7 |
                                          s->avl << 8 | s->l << 9 | s->db << 10 | s->g << 11);
    wr(p, off, 2, s->selector);
    wr(p, off + 2, 2, a);
    wr(p, off + 4, 4, s->limit);
    wr(p, off + 8, 8, s->base);
}

static void dt_load(const uint8_t *p, unsigned off, struct emu_dtable *t)
{
    t->limit = (uint16_t)rd(p, off + 4, 4);
    t->base = rd(p, off + 8, 8);
}

static void dt_store(uint8_t *p, unsigned off, const struct emu_dtable *t)
{
    wr(p, off, 4, 0);
    wr(p, off + 4, 4, t->limit);
    wr(p, off + 8, 8, t->base);
}

static unsigned maxphyaddr(struct emu_vcpu *v)
{
    const struct emu_cpuid_entry *e = emu_cpuid_find(v, 0x80000008u, 0);
    unsigned w = e ? (e->eax & 0xff) : 36;
    return w >= 32 && w <= 52 ? w : 36;
}

static bool legal_gpa(struct emu_vcpu *v, uint64_t gpa)
{
    return !(gpa >> maxphyaddr(v));
}

/* ---- intercept predicates ---- */

static bool icpt(const struct emu_svm_ctl *ctl, unsigned bit)
{
    return (ctl->intercepts[bit / 32] >> (bit % 32)) & 1;
}

/* Back to L1: guest mode off, GIF clear, L1's state from what VMRUN saved
 * (nested_svm_vmexit's second half; also svm_leave_nested). */
static void load_host(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    struct emu_svm *s = &v->nested.svm;
    v->nested.guest_mode = false;
    v->nested.vectoring.valid = false;
    s->inj_pending = false;
    s->gif_clear = true;
    s->vmcb12_pa = 0;
    const struct emu_svm_host *h = &s->host;
    c->seg[EMU_ES] = h->es, c->seg[EMU_CS] = h->cs, c->seg[EMU_SS] = h->ss, c->seg[EMU_DS] = h->ds;
    c->gdtr = h->gdtr, c->idtr = h->idtr;
    c->efer = h->efer;
    c->cr0 = h->cr0 | CR0_PE;
    c->cr4 = h->cr4;
    c->cr3 = h->cr3;
    emu_flags_set(v, h->rflags);
    c->rip = h->rip;
    c->gpr[EMU_RSP] = h->rsp;
    c->gpr[EMU_RAX] = h->rax;
    c->dr[7] = 0x400;
    emu_debug_update(v);
    c->tsc_offset = h->tsc_offset;
    c->ev.nmi_masked = h->nmi_masked;
    /* what was queued for L2 is not L1's (kvm_clear_exception_queue, nmi_injected) */
    c->ev.exc_pending = c->ev.exc_injected = false;
    c->ev.nmi_injected = false;
    c->ev.int_shadow = 0;
    c->halted = false; /* "in case we halted in L2" */
    if ((c->cr0 & CR0_PG) && (c->cr4 & CR4_PAE) && !(c->efer & EFER_LMA) &&
        !emu_try_load_pdptrs(v, c->cr3))
        c->ev.triple_fault_pending = true; /* nested_svm_load_cr3 failure: KVM_REQ_TRIPLE_FAULT */
    emu_update_mode(v);
    emu_tlb_flush(v);
    v->kick = 1;
}

/* APM 15.5.2 #VMEXIT: L2's state and the exit information into VMCB12, then L1's host
 * state back (nested_svm_vmexit). GIF is clear afterwards. Returns (SMM entry goes on). */
static void vmexit_state(struct emu_vcpu *v, uint32_t code, uint64_t info1, uint64_t info2,
                         uint64_t next_rip)
{
    struct cpu *c = &v->cpu;
    struct emu_svm *s = &v->nested.svm;
    uint8_t vmcb[4096];
    bool mapped = emu_phys_read(v, s->vmcb12_pa, vmcb, sizeof vmcb);
    if (mapped) {
        seg_store(vmcb, S_ES, &c->seg[EMU_ES]);
        seg_store(vmcb, S_CS, &c->seg[EMU_CS]);
        seg_store(vmcb, S_SS, &c->seg[EMU_SS]);
        seg_store(vmcb, S_DS, &c->seg[EMU_DS]);
        dt_store(vmcb, S_GDTR, &c->gdtr);
        dt_store(vmcb, S_IDTR, &c->idtr);
        wr(vmcb, S_EFER, 8, c->efer);
        wr(vmcb, S_CR0, 8, c->cr0);
        wr(vmcb, S_CR3, 8, c->cr3);
        wr(vmcb, S_CR2, 8, c->cr2);
        wr(vmcb, S_CR4, 8, c->cr4);
        wr(vmcb, S_RFLAGS, 8, emu_flags(v));
        wr(vmcb, S_RIP, 8, c->rip);
        wr(vmcb, S_RSP, 8, c->gpr[EMU_RSP]);
        wr(vmcb, S_RAX, 8, c->gpr[EMU_RAX]);
        wr(vmcb, S_DR7, 8, c->dr[7]);
        wr(vmcb, S_DR6, 8, c->dr[6]);
        wr(vmcb, S_CPL, 1, (uint64_t)c->cpl);
        wr(vmcb, C_INT_STATE, 4, c->ev.int_shadow ? 1 : 0);
        wr(vmcb, C_EXIT_CODE, 4, code);
        wr(vmcb, C_EXIT_CODE_HI, 4, code == (uint32_t)SVM_EXIT_ERR ? 0xffffffffu : 0);
        wr(vmcb, C_EXIT_INFO1, 8, info1);
        wr(vmcb, C_EXIT_INFO2, 8, info2);
        /* nested_save_pending_event_to_vmcb12: an event whose delivery the exit interrupted,
         * or an injection not yet delivered, goes back to L1 in EXITINTINFO */
        uint32_t ii = 0, ie = 0;
        const struct emu_nx_vectoring *vc = &v->nested.vectoring;
        if (vc->valid) {
            ii = EVTINJ_VALID | vc->vector | (uint32_t)vc->type << EVTINJ_TYPE_SHIFT |
                 (vc->has_error ? EVTINJ_VALID_ERR : 0);
            ie = vc->error_code;
        } else if (s->inj_pending) {
            ii = s->ctl.event_inj;
            ie = s->ctl.event_inj_err;
        }
        wr(vmcb, C_EXIT_INT_INFO, 4, code == (uint32_t)SVM_EXIT_ERR ? 0 : ii);
        wr(vmcb, C_EXIT_INT_INFO_ERR, 4, code == (uint32_t)SVM_EXIT_ERR ? 0 : ie);
        wr(vmcb, C_NEXT_RIP, 8, next_rip);
        wr(vmcb, C_EVENT_INJ, 4, 0);
        wr(vmcb, C_EVENT_INJ_ERR, 4, 0);
        wr(vmcb, C_INT_CTL, 4, s->ctl.int_ctl);
        emu_phys_write(v, s->vmcb12_pa, vmcb, sizeof vmcb);
    }
    /* Leave guest mode; a VMCB that cannot be written back loses the exit information
     * (KVM fails the kvm_vcpu_map the same way), L1 still gets its state back. */
    load_host(v);
}

/* The #VMEXIT of an intercept: the L2 instruction or event is abandoned. */
static _Noreturn void svm_vmexit(struct emu_vcpu *v, uint32_t code, uint64_t info1, uint64_t info2,
                                 uint64_t next_rip)
{
    vmexit_state(v, code, info1, info2, next_rip);
    emu_nested_resume_l1(v);
}

static bool l2_tlb_flush_direct(struct emu_vcpu *v);

static void svm_insn(struct emu_vcpu *v, enum emu_nx_insn which, uint64_t info)
{
    const struct emu_svm_ctl *ctl = &v->nested.svm.ctl;
    if (which == EMU_NX_VMCALL && icpt(ctl, SVM_EXIT_EXCP_BASE + EMU_UD))
        svm_vmexit(v, SVM_EXIT_EXCP_BASE + EMU_UD, 0, 0, 0); /* VMCALL is #UD on AMD */
    /* nested_svm_exit_special: L2's Hyper-V TLB-flush hypercall is L0's (NESTED_EXIT_HOST);
     * a VMCALL gets there as the VMMCALL KVM patches it into (emulator_fix_hypercall) */
    if ((which == EMU_NX_VMMCALL || which == EMU_NX_VMCALL) && l2_tlb_flush_direct(v))
        return;
    unsigned code = insn_exit[which];
    if (!code || !icpt(ctl, code))
        return;
    /* decode assists are not offered: EXITINFO1 is 0 except for INVLPG/INTn, which
     * KVM's emulation of them expects (svm.c invlpg_interception) */
    uint64_t info1 = (which == EMU_NX_INVLPG || which == EMU_NX_INTN) ? info : 0;
    svm_vmexit(v, code, info1, 0, v->next_rip);
}

/* L1's MSRPM (same layout as L0's, msr/bitmap.h); an MSR outside its three ranges always
 * exits. An MSR L0 intercepts exits to L0, which reads L1's bitmap from memory then
 * (nested_svm_exit_handled_msr); one L0 passes through is decided by the vmcb02 bitmap
 * merged at VMRUN (nested_svm_merge_msrpm), i.e. L1's bits as they were then. A clear bit
 * leaves the access to L0, whose own bitmap, filter and deflection then apply. */
static void svm_msr(struct emu_vcpu *v, uint32_t index, bool write)
{
    const struct emu_svm *s = &v->nested.svm;
    const struct emu_svm_ctl *ctl = &s->ctl;
    if (!icpt(ctl, INTERCEPT_MSR_PROT))
        return;
    struct msr_bitpos p;
    bool exits = true;
    uint8_t b;
    bool merged = s->msrpm_cached && v->has_msr_ops && v->msr_ops.passthrough &&
                  v->msr_ops.passthrough(v->msr_ops.ctx, index, write);
    if (msr_svm_bitpos(index, write, &p)) {
        if (merged)
            exits = (s->l1_msrpm[p.byte] >> p.bit) & 1;
        else if (emu_phys_read(v, ctl->msrpm_pa + p.byte, &b, 1))
            exits = (b >> p.bit) & 1;
    }
    if (exits)
        svm_vmexit(v, SVM_EXIT_MSR, write ? 1 : 0, 0, v->next_rip);
}

/* ---- Hyper-V enlightenments for an L1 hypervisor (svm/hyperv.h, hyperv.c) ---- */

#define HV_VMCB_NESTED_ENLIGHTENMENTS 31 /* a clean bit: "the MSR bitmap did not change" */
#define HV_ENL_NESTED_FLUSH_HYPERCALL (1u << 0)
#define HV_ENL_MSR_BITMAP (1u << 1)
#define HV_VP_ASSIST_NESTED_FEATURES 32 /* hv_vp_assist_page.nested_control.features */
#define HV_DIRECT_HYPERCALL (1u << 0)
#define HV_SVM_EXITCODE_ENL 0xf0000000u
#define HV_SVM_ENL_EXITCODE_TRAP_AFTER_FLUSH 1
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE 0x0002
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST 0x0003
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX 0x0013
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX 0x0014

static bool hv_hypercall_enabled(struct emu_vcpu *v)
{
    return v->hv_ops.hypercall_enabled && v->hv_ops.hypercall_enabled(v->hv_ops.ctx);
}

/* __nested_copy_vmcb_control_to_cache: the clean bits and the enlightenments are taken
 * only while the Hyper-V hypercall interface is enabled */
static void ctl_load_hv(struct emu_vcpu *v, const uint8_t *vmcb, struct emu_svm_ctl *ctl)
{
    bool hv = hv_hypercall_enabled(v);
    ctl->clean = hv ? (uint32_t)rd(vmcb, C_CLEAN, 4) : 0;
    ctl->hv_ctl = hv ? (uint32_t)rd(vmcb, C_HV_CTL, 4) : 0;
    ctl->hv_pa_page = hv ? rd(vmcb, C_HV_PA_PAGE, 8) : 0;
}

/* nested_svm_vmrun_msrpm: L1's bitmap is merged again unless the enlightened MSR bitmap
 * says it did not change (and nothing forced a recalculation). An unreadable bitmap
 * intercepts everything. */
static void merge_msrpm(struct emu_vcpu *v)
{
    struct emu_svm *s = &v->nested.svm;
    if (s->msrpm_cached && hv_hypercall_enabled(v) && (s->ctl.hv_ctl & HV_ENL_MSR_BITMAP) &&
        (s->ctl.clean & (1u << HV_VMCB_NESTED_ENLIGHTENMENTS)))
        return;
    if (!emu_phys_read(v, s->ctl.msrpm_pa, s->l1_msrpm, sizeof s->l1_msrpm))
        memset(s->l1_msrpm, 0xff, sizeof s->l1_msrpm);
    s->msrpm_cached = true;
}

/* kvm_hv_is_tlb_flush_hcall: the hypercall code (RCX in 64-bit mode, else EDX) */
static bool is_tlb_flush_hcall(struct emu_vcpu *v)
{
    bool lm = (v->cpu.efer & EFER_LMA) && v->cpu.seg[EMU_CS].l;
    uint16_t code = (uint16_t)(lm ? v->cpu.gpr[EMU_RCX] : v->cpu.gpr[EMU_RDX]);
    return code == HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE ||
           code == HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST ||
           code == HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX ||
           code == HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX;
}

/* nested_svm_l2_tlb_flush_enabled: L1 asked for L2's TLB-flush hypercalls to go to L0
 * directly (VMCB enlightenment + VP assist page nested feature) */
static bool l2_tlb_flush_direct(struct emu_vcpu *v)
{
    if (!(v->nested.svm.ctl.hv_ctl & HV_ENL_NESTED_FLUSH_HYPERCALL) || !v->hv_ops.vp_assist_gpa)
        return false;
    uint64_t pa = v->hv_ops.vp_assist_gpa(v->hv_ops.ctx);
    uint32_t features;
    if (!pa || !emu_phys_read(v, pa + HV_VP_ASSIST_NESTED_FEATURES, &features, sizeof features))
        return false;
    return (features & HV_DIRECT_HYPERCALL) && is_tlb_flush_hcall(v);
}

bool emu_hv_l2_flush_lock(struct emu_vcpu *v, bool *exit_to_l1)
{
    *exit_to_l1 = false;
    if (!v->nested.guest_mode || v->nested.ops != &emu_svm_ops)
        return true; /* VMX L2s have no partition assist page here (no eVMCS) */
    uint32_t count;
    if (!emu_phys_read(v, v->nested.svm.ctl.hv_pa_page, &count, sizeof count))
        return false;
    *exit_to_l1 = count != 0;
    return true;
}

/* svm_hv_inject_synthetic_vmexit_post_tlb_flush, outside emu_run (the hypercall is done,
 * RIP is past it): L1 runs next */
void emu_hv_l2_flush_exit(struct emu_vcpu *v)
{
    if (!v->nested.guest_mode || v->nested.ops != &emu_svm_ops)
        return;
    /* NextRIP stays what the VMMCALL's exit to L0 had: the RIP after it */
    vmexit_state(v, HV_SVM_EXITCODE_ENL, HV_SVM_ENL_EXITCODE_TRAP_AFTER_FLUSH, 0, v->cpu.rip);
    v->code_epoch++; /* a world switch, as VMRUN/#VMEXIT inside emu_run */
}

/* nested_svm_intercept_ioio: one IOPM bit per port, all bits of a multi-byte access. */
static void svm_io(struct emu_vcpu *v, const struct emu_nx_io *io)
{
    const struct emu_svm_ctl *ctl = &v->nested.svm.ctl;
    if (!icpt(ctl, INTERCEPT_IOIO_PROT))
        return;
    uint16_t bits = 0;
    unsigned start = io->port % 8, len = start + io->size > 8 ? 2 : 1;
    uint16_t mask = (uint16_t)(((1u << io->size) - 1) << start);
    bool exits = !emu_phys_read(v, ctl->iopm_pa + io->port / 8, &bits, len) || (bits & mask);
    if (!exits)
        return;
    /* EXITINFO1 (APM 15.10.2): port, size, address size, REP, STR, IN */
    uint64_t info1 = (uint64_t)io->port << 16 | (io->in ? 1u : 0) | (io->string ? 4u : 0) |
                     (io->rep ? 8u : 0) | (uint64_t)io->size << 4;
    if (io->string)
        info1 |= io->addrsize == 8 ? 1u << 9 : io->addrsize == 4 ? 1u << 8 : 1u << 7;
    svm_vmexit(v, SVM_EXIT_IOIO, info1, v->next_rip, v->next_rip);
}

static void svm_cr(struct emu_vcpu *v, unsigned cr, bool write)
{
    unsigned code = (write ? SVM_EXIT_WRITE_CR0 : SVM_EXIT_READ_CR0) + (cr & 15);
    if (icpt(&v->nested.svm.ctl, code))
        svm_vmexit(v, code, 0, 0, v->next_rip);
}

static void svm_dr(struct emu_vcpu *v, unsigned dr, bool write)
{
    unsigned code = (write ? SVM_EXIT_WRITE_DR0 : SVM_EXIT_READ_DR0) + (dr & 15);
    if (icpt(&v->nested.svm.ctl, code))
        svm_vmexit(v, code, 0, 0, v->next_rip);
}

/* nested_svm_inject_exception_vmexit: EXITINFO1 = error code, EXITINFO2 = CR2 for #PF
 * (CR2 itself is not written). A reinjected event is not intercepted again. */
static void svm_exception(struct emu_vcpu *v, uint8_t vector, uint32_t err, bool has_cr2,
                          uint64_t cr2, bool reinject)
{
    if (reinject || vector >= 32 || !icpt(&v->nested.svm.ctl, SVM_EXIT_EXCP_BASE + vector))
        return;
    uint64_t info2 = vector == EMU_PF ? (has_cr2 ? cr2 : v->cpu.cr2) : 0;
    bool soft = vector == EMU_BP || vector == EMU_OF; /* INT3/INTO: nRIP after them */
    svm_vmexit(v, SVM_EXIT_EXCP_BASE + vector, err == EMU_NO_ERRCODE ? 0 : err, info2,
               soft ? v->next_rip : 0);
}

/* nested_svm_triple_fault: SHUTDOWN exits only if L1 intercepts it; otherwise the
 * whole vCPU shuts down (KVM_EXIT_SHUTDOWN). */
static void svm_shutdown(struct emu_vcpu *v)
{
    if (icpt(&v->nested.svm.ctl, SVM_EXIT_SHUTDOWN))
        svm_vmexit(v, SVM_EXIT_SHUTDOWN, 0, 0, 0);
}

/* L1's EVENTINJ, delivered through L2's IDT at its first instruction boundary (APM
 * 15.20). Soft events (type 4, and #BP/#OF as exceptions) return to NextRIP (KVM
 * soft_int_next_rip with NRIPS exposed). */
static void deliver_injected(struct emu_vcpu *v)
{
    struct emu_svm *s = &v->nested.svm;
    uint32_t inj = s->ctl.event_inj;
    uint8_t vec = inj & 0xff;
    unsigned type = (inj >> EVTINJ_TYPE_SHIFT) & 7;
    uint32_t err = (inj & EVTINJ_VALID_ERR) ? s->ctl.event_inj_err : EMU_NO_ERRCODE;
    s->inj_pending = false;
    v->cpu.halted = false;
    switch (type) {
    case EMU_NX_EV_NMI:
        emu_take_nmi(v);
        return;
    case EMU_NX_EV_EXCEPTION:
    case EMU_NX_EV_SOFT:
        emu_take_injected(v, vec, (uint8_t)type, err, s->ctl.next_rip);
        return;
    default: /* INTR (types 1, 5-7 are reserved: VMRUN refused them) */
        emu_take_external(v, vec);
        return;
    }
}

/* svm_check_nested_events + svm_interrupt_blocked, at an instruction boundary in L2 with
 * GIF set: NMI, then physical interrupts, then L1's virtual interrupt (V_IRQ). */
static bool svm_events(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    struct emu_events *ev = &c->ev;
    struct emu_svm *s = &v->nested.svm;
    if (s->inj_pending) {
        deliver_injected(v);
        return true;
    }
    bool exit_nmi = icpt(&s->ctl, SVM_EXIT_NMI);
    if (exit_nmi || (!ev->nmi_masked && !ev->int_shadow)) { /* STI shadow too: svm_nmi_blocked */
        bool nmi = ev->nmi_pending || ev->nmi_injected;
        if (!nmi && v->has_irq_ops && v->irq_ops.nmi_pending && v->irq_ops.nmi_pending(v->irq_ops.ctx, c))
            nmi = true;
        if (nmi) {
            if (exit_nmi) {
                ev->nmi_pending = true; /* still L1's to take, after its STGI */
                ev->nmi_injected = false;
                svm_vmexit(v, SVM_EXIT_NMI, 0, 0, 0);
            }
            emu_take_nmi(v);
            return true;
        }
    }
    bool exit_intr = icpt(&s->ctl, SVM_EXIT_INTR);
    bool blocked = (s->ctl.int_ctl & V_INTR_MASKING) ? !(s->host.rflags & EMU_FL_IF)
                                                      : !(c->rflags & EMU_FL_IF);
    if (!exit_intr && ev->int_shadow)
        blocked = true; /* VM exits are not held off by the interrupt shadow */
    if (!blocked) {
        if (ev->irq_injected) {
            if (exit_intr)
                svm_vmexit(v, SVM_EXIT_INTR, 0, 0, 0);
            ev->irq_injected = false;
            c->halted = false;
            emu_take_external(v, ev->irq_vector);
            return true;
        }
        int vec = v->has_irq_ops && v->irq_ops.pending ? v->irq_ops.pending(v->irq_ops.ctx, c) : -1;
        if (vec >= 0) {
            if (exit_intr) /* the interrupt stays in L1's APIC */
                svm_vmexit(v, SVM_EXIT_INTR, 0, 0, 0);
            if (v->irq_ops.ack)
                v->irq_ops.ack(v->irq_ops.ctx, c, vec);
            c->halted = false;
            emu_take_external(v, (uint8_t)vec);
            return true;
        }
    }
    uint32_t ic = s->ctl.int_ctl;
    if ((ic & V_IRQ) && (c->rflags & EMU_FL_IF) && !ev->int_shadow &&
        ((ic & V_IGN_TPR) || ((ic >> V_INTR_PRIO_SHIFT) & 0xf) > (ic & V_TPR_MASK))) {
        if (icpt(&s->ctl, SVM_EXIT_VINTR))
            svm_vmexit(v, SVM_EXIT_VINTR, 0, 0, 0);
        s->ctl.int_ctl &= ~V_IRQ; /* taken: V_IRQ reads back clear at #VMEXIT */
        c->halted = false;
        emu_take_external(v, (uint8_t)s->ctl.int_vector);
        return true;
    }
    return false;
}

const struct emu_nested_ops emu_svm_ops = {
    .insn = svm_insn, .msr = svm_msr, .io = svm_io, .cr = svm_cr, .dr = svm_dr,
    .exception = svm_exception, .shutdown = svm_shutdown, .events = svm_events,
};

/* ---- the SVM instructions ---- */

/* nested_svm_check_permissions: #UD without EFER.SVME or paging, #GP(0) above CPL 0. */
static void check_permissions(struct emu_vcpu *v)
{
    if (!(v->cpu.efer & EFER_SVME) || !(v->cpu.cr0 & CR0_PG))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    if (v->cpu.cpl != 0)
        emu_raise(v, EMU_GP, 0);
}

static uint64_t rax_pa(struct emu_vcpu *v, const struct decoded_insn *d)
{
    return v->cpu.gpr[EMU_RAX] & emu_mask(d->addrsize);
}

/* VMCB12's controls into the cache (nested_copy_vmcb_control_to_cache) and back. */
static void ctl_load(const uint8_t *vmcb, struct emu_svm_ctl *ctl)
{
    for (unsigned i = 0; i < 6; i++)
        ctl->intercepts[i] = (uint32_t)rd(vmcb, C_INTERCEPTS + 4 * i, 4);
    ctl->iopm_pa = rd(vmcb, C_IOPM, 8) & ~0xfffull;
    ctl->msrpm_pa = rd(vmcb, C_MSRPM, 8) & ~0xfffull;
    ctl->tsc_offset = rd(vmcb, C_TSC_OFFSET, 8);
    ctl->asid = (uint32_t)rd(vmcb, C_ASID, 4);
    ctl->int_ctl = (uint32_t)rd(vmcb, C_INT_CTL, 4);
    ctl->int_vector = (uint32_t)rd(vmcb, C_INT_VECTOR, 4) & 0xff;
    ctl->int_state = (uint32_t)rd(vmcb, C_INT_STATE, 4);
    ctl->event_inj = (uint32_t)rd(vmcb, C_EVENT_INJ, 4);
    ctl->event_inj_err = (uint32_t)rd(vmcb, C_EVENT_INJ_ERR, 4);
    ctl->next_rip = rd(vmcb, C_NEXT_RIP, 8);
}

static void ctl_store(uint8_t *vmcb, const struct emu_svm_ctl *ctl, bool inj_pending)
{
    for (unsigned i = 0; i < 6; i++)
        wr(vmcb, C_INTERCEPTS + 4 * i, 4, ctl->intercepts[i]);
    wr(vmcb, C_IOPM, 8, ctl->iopm_pa);
    wr(vmcb, C_MSRPM, 8, ctl->msrpm_pa);
    wr(vmcb, C_TSC_OFFSET, 8, ctl->tsc_offset);
    wr(vmcb, C_ASID, 4, ctl->asid);
    wr(vmcb, C_INT_CTL, 4, ctl->int_ctl);
    wr(vmcb, C_INT_VECTOR, 4, ctl->int_vector);
    wr(vmcb, C_INT_STATE, 4, ctl->int_state);
    wr(vmcb, C_EVENT_INJ, 4, inj_pending ? ctl->event_inj : 0);
    wr(vmcb, C_EVENT_INJ_ERR, 4, inj_pending ? ctl->event_inj_err : 0);
    wr(vmcb, C_NEXT_RIP, 8, ctl->next_rip);
}

/* VMCB12 consistency checks (nested_vmcb_check_controls, __nested_vmcb_check_save). */
static bool vmcb12_valid(struct emu_vcpu *v, const uint8_t *vmcb, const struct emu_svm_ctl *ctl)
{
    if (!icpt(ctl, SVM_EXIT_VMRUN) || ctl->asid == 0)
        return false;
    if (rd(vmcb, C_NESTED_CTL, 8) & SVM_NESTED_CTL_NP_ENABLE)
        return false; /* NPT is not offered to L1 (KVM with npt_enabled = false) */
    uint64_t msrpm = ctl->msrpm_pa & ~0xfffull, iopm = ctl->iopm_pa & ~0xfffull;
    if (!legal_gpa(v, msrpm) || !legal_gpa(v, msrpm + 0x2000 - 1) || !legal_gpa(v, iopm) ||
        !legal_gpa(v, iopm + 0x3000 - 1))
        return false;
    if ((ctl->int_ctl & V_NMI_ENABLE) && !icpt(ctl, SVM_EXIT_NMI))
        return false;
    /* event types 1 and 5-7 are reserved: VMRUN fails (APM 15.20) */
    unsigned type = (ctl->event_inj >> EVTINJ_TYPE_SHIFT) & 7;
    if ((ctl->event_inj & EVTINJ_VALID) && (type == 1 || type > 4))
        return false;
    uint64_t efer = rd(vmcb, S_EFER, 8), cr0 = rd(vmcb, S_CR0, 8), cr4 = rd(vmcb, S_CR4, 8);
    uint64_t cr3 = rd(vmcb, S_CR3, 8);
    if (!(efer & EFER_SVME))
        return false;
    if ((!(cr0 & CR0_CD) && (cr0 & CR0_NW)) || (cr0 >> 32))
        return false;
    if ((rd(vmcb, S_DR6, 8) >> 32) || (rd(vmcb, S_DR7, 8) >> 32))
        return false;
    if ((efer & EFER_LME) && (cr0 & CR0_PG)) {
        unsigned cs_attr = (unsigned)rd(vmcb, S_CS + 2, 2);
        if (!(cr4 & CR4_PAE) || !(cr0 & CR0_PE) || !legal_gpa(v, cr3 & ~0xfffull))
            return false;
        if ((cs_attr & (1u << 9)) && (cs_attr & (1u << 10)))
            return false; /* CS.L with CS.D */
    }
    /* reserved CR4 bits (63:26 and 15) and EFER bits (kvm_valid_efer's complement of
     * SCE LME LMA NXE SVME LMSLE FFXSR TCE AUTOIBRS) */
    if (cr4 & (~0x3ffffffull | (1ull << 15)))
        return false;
    if (efer & ~0x20fd01ull)
        return false;
    return true;
}

static bool enter_guest(struct emu_vcpu *v, uint64_t pa, const uint8_t *vmcb,
                        const struct emu_svm_ctl *ctl);

static int h_vmrun(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    struct emu_svm *s = &v->nested.svm;
    check_permissions(v);
    emu_icpt_insn(v, EMU_NX_VMRUN, 0); /* L1 always intercepts VMRUN in its L2 */
    if (!c->vm_hsave_pa)
        emu_raise(v, EMU_GP, 0);
    if (c->ev.smm)
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE); /* nested_svm_vmrun: no VMRUN in SMM */
    uint64_t pa = rax_pa(v, d) & ~0xfffull;
    uint8_t vmcb[4096];
    if (!legal_gpa(v, pa) || !emu_phys_read(v, pa, vmcb, sizeof vmcb))
        emu_raise(v, EMU_GP, 0);

    struct emu_svm_ctl ctl;
    ctl_load(vmcb, &ctl);
    ctl_load_hv(v, vmcb, &ctl);

    if (!vmcb12_valid(v, vmcb, &ctl)) {
        /* VMEXIT_INVALID straight back to L1 after the VMRUN, GIF clear */
        wr(vmcb, C_EXIT_CODE, 4, (uint32_t)SVM_EXIT_ERR);
        wr(vmcb, C_EXIT_CODE_HI, 4, 0xffffffffu);
        wr(vmcb, C_EXIT_INFO1, 8, 0);
        wr(vmcb, C_EXIT_INFO2, 8, 0);
        wr(vmcb, C_EVENT_INJ, 4, 0);
        wr(vmcb, C_EVENT_INJ_ERR, 4, 0);
        emu_phys_write(v, pa, vmcb, sizeof vmcb);
        s->gif_clear = true;
        return EMU_H_NEXT;
    }

    /* L1's state for the #VMEXIT (svm_copy_vmrun_state into vmcb01) */
    struct emu_svm_host *h = &s->host;
    h->es = c->seg[EMU_ES], h->cs = c->seg[EMU_CS], h->ss = c->seg[EMU_SS], h->ds = c->seg[EMU_DS];
    h->gdtr = c->gdtr, h->idtr = c->idtr;
    h->efer = c->efer, h->cr0 = c->cr0, h->cr3 = c->cr3, h->cr4 = c->cr4;
    h->rflags = emu_flags(v);
    h->rip = v->next_rip;
    h->rsp = c->gpr[EMU_RSP];
    h->rax = c->gpr[EMU_RAX];
    h->tsc_offset = c->tsc_offset;
    h->nmi_masked = c->ev.nmi_masked;

    bool ok = enter_guest(v, pa, vmcb, &ctl);
    v->next_rip = rd(vmcb, S_RIP, 8);
    if (!ok)
        svm_vmexit(v, (uint32_t)SVM_EXIT_ERR, 0, 0, 0); /* nested_svm_load_cr3 failed */
    return EMU_H_NEXT;
}

/* enter_svm_guest_mode: L2's state from VMCB12 (nested_vmcb02_prepare_save), guest mode
 * on, GIF set (VMRUN then sets next_rip to the same RIP; RSM loads SMRAM over it). False: the
 * PAE PDPTEs could not be loaded (the caller takes VMEXIT_INVALID). */
static bool enter_guest(struct emu_vcpu *v, uint64_t pa, const uint8_t *vmcb,
                        const struct emu_svm_ctl *ctlp)
{
    struct cpu *c = &v->cpu;
    struct emu_svm *s = &v->nested.svm;
    struct emu_svm_ctl ctl = *ctlp;
    seg_load(vmcb, S_ES, &c->seg[EMU_ES]);
    seg_load(vmcb, S_CS, &c->seg[EMU_CS]);
    seg_load(vmcb, S_SS, &c->seg[EMU_SS]);
    seg_load(vmcb, S_DS, &c->seg[EMU_DS]);
    dt_load(vmcb, S_GDTR, &c->gdtr);
    dt_load(vmcb, S_IDTR, &c->idtr);
    uint64_t efer = rd(vmcb, S_EFER, 8);
    if (!(efer & EFER_LME))
        efer &= ~EFER_LMA; /* SVM ignores EFER.LMA without LME */
    c->efer = efer;
    c->cr0 = rd(vmcb, S_CR0, 8);
    c->cr4 = rd(vmcb, S_CR4, 8);
    c->cr3 = rd(vmcb, S_CR3, 8);
    c->cr2 = rd(vmcb, S_CR2, 8);
    c->gpr[EMU_RAX] = rd(vmcb, S_RAX, 8);
    c->gpr[EMU_RSP] = rd(vmcb, S_RSP, 8);
    c->dr[7] = rd(vmcb, S_DR7, 8) | 0x400;
    emu_debug_update(v);
    c->dr[6] = rd(vmcb, S_DR6, 8) | 0xffff0ff0u;
    emu_flags_set(v, rd(vmcb, S_RFLAGS, 8) | EMU_FL_FIXED1);
    c->rip = rd(vmcb, S_RIP, 8);
    c->tsc_offset += ctl.tsc_offset; /* kvm_calc_nested_tsc_offset at the default ratio */
    c->ev.nmi_masked = false; /* L2's NMI blocking is its own (no vNMI) */
    c->ev.int_shadow = 0;
    s->ctl = ctl;
    s->vmcb12_pa = pa;
    merge_msrpm(v);
    s->inj_pending = (ctl.event_inj & EVTINJ_VALID) != 0;
    s->gif_clear = false; /* enter_svm_guest_mode: svm_set_gif(svm, true) */
    v->nested.ops = &emu_svm_ops;
    v->nested.guest_mode = true;
    v->nested.vectoring.valid = false;
    emu_update_mode(v);
    c->cpl = (int)rd(vmcb, S_CPL, 1) & 3; /* the VMCB's CPL, as vmcb02->save.cpl */
    emu_tlb_flush(v); /* nested_svm_transition_tlb_flush: every ASID switch flushes */
    v->kick = 1;
    return !((c->cr0 & CR0_PG) && (c->cr4 & CR4_PAE) && !(c->efer & EFER_LMA) &&
             !emu_try_load_pdptrs(v, c->cr3));
}

/* VMLOAD / VMSAVE (svm_copy_vmloadsave_state): FS GS TR LDTR with their hidden parts,
 * KernelGsBase, STAR LSTAR CSTAR SFMASK, SYSENTER_CS/ESP/EIP. */
static int vmloadsave(struct emu_vcpu *v, const struct decoded_insn *d, bool load)
{
    struct cpu *c = &v->cpu;
    check_permissions(v);
    emu_icpt_insn(v, load ? EMU_NX_VMLOAD : EMU_NX_VMSAVE, 0);
    uint64_t pa = rax_pa(v, d) & ~0xfffull;
    uint8_t vmcb[4096];
    if (!legal_gpa(v, pa) || !emu_phys_read(v, pa, vmcb, sizeof vmcb))
        emu_raise(v, EMU_GP, 0);
    static const struct { unsigned off, seg; } segs[] = {
        {S_FS, EMU_FS}, {S_GS, EMU_GS}, {S_TR, EMU_TR}, {S_LDTR, EMU_LDTR}};
    struct { unsigned off; uint64_t *f; } msrs[] = {
        {S_KGSBASE, &c->kernel_gs_base}, {S_STAR, &c->star}, {S_LSTAR, &c->lstar},
        {S_CSTAR, &c->cstar}, {S_SFMASK, &c->sfmask}, {S_SYSENTER_CS, &c->sysenter_cs},
        {S_SYSENTER_ESP, &c->sysenter_esp}, {S_SYSENTER_EIP, &c->sysenter_eip}};
    for (unsigned i = 0; i < 4; i++) {
        if (load)
            seg_load(vmcb, segs[i].off, &c->seg[segs[i].seg]);
        else
            seg_store(vmcb, segs[i].off, &c->seg[segs[i].seg]);
    }
    for (unsigned i = 0; i < sizeof msrs / sizeof msrs[0]; i++) {
        if (load)
            *msrs[i].f = rd(vmcb, msrs[i].off, 8);
        else
            wr(vmcb, msrs[i].off, 8, *msrs[i].f);
    }
    if (!load && !emu_phys_write(v, pa, vmcb, sizeof vmcb))
        emu_raise(v, EMU_GP, 0);
    return EMU_H_NEXT;
}

static int h_vmload(struct emu_vcpu *v, const struct decoded_insn *d) { return vmloadsave(v, d, true); }
static int h_vmsave(struct emu_vcpu *v, const struct decoded_insn *d) { return vmloadsave(v, d, false); }

static int h_stgi(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    check_permissions(v);
    emu_icpt_insn(v, EMU_NX_STGI, 0);
    v->nested.svm.gif_clear = false;
    v->kick = 1; /* held-off NMIs and interrupts are taken at the next boundary */
    return EMU_H_NEXT;
}

static int h_clgi(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    check_permissions(v);
    emu_icpt_insn(v, EMU_NX_CLGI, 0);
    v->nested.svm.gif_clear = true;
    return EMU_H_NEXT;
}

/* SKINIT: KVM offers no SKINIT/DEV (svm.c skinit_interception queues #UD). */
static int h_skinit(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    emu_icpt_insn(v, EMU_NX_SKINIT, 0);
    emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
}

/* INVLPGA rAX, ECX: our TLB is untagged, so the ASID is irrelevant (svm.c
 * invlpga_interception flushes the address). */
static int h_invlpga(struct emu_vcpu *v, const struct decoded_insn *d)
{
    check_permissions(v);
    emu_icpt_insn(v, EMU_NX_INVLPGA, 0);
    emu_tlb_flush_page(v, v->cpu.gpr[EMU_RAX] & emu_mask(d->addrsize));
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_svm_handlers[] = {
    {DOP_VMRUN, h_vmrun}, {DOP_VMLOAD, h_vmload}, {DOP_VMSAVE, h_vmsave},
    {DOP_STGI, h_stgi}, {DOP_CLGI, h_clgi}, {DOP_SKINIT, h_skinit}, {DOP_INVLPGA, h_invlpga},
    {0, NULL},
};

/* ---- KVM_GET/SET_NESTED_STATE (svm/nested.c svm_get_nested_state / svm_set_nested_state) ---- */

/* The host state as VMRUN saved it, in save-area format: at hsave + 0x400 for SMM
 * (svm_copy_vmrun_state: SMM reuses vmcb01, and so may the SMI handler), and in the
 * KVM_GET/SET_NESTED_STATE image (svm_get_nested_state copies vmcb01's save area). */
static void host_store(uint8_t *p, const struct emu_svm_host *h)
{
    seg_store(p, S_ES, &h->es);
    seg_store(p, S_CS, &h->cs);
    seg_store(p, S_SS, &h->ss);
    seg_store(p, S_DS, &h->ds);
    dt_store(p, S_GDTR, &h->gdtr);
    dt_store(p, S_IDTR, &h->idtr);
    wr(p, S_RFLAGS, 8, h->rflags | EMU_FL_FIXED1);
    wr(p, S_EFER, 8, h->efer);
    wr(p, S_CR0, 8, h->cr0);
    wr(p, S_CR3, 8, h->cr3);
    wr(p, S_CR4, 8, h->cr4);
    wr(p, S_RAX, 8, h->rax);
    wr(p, S_RSP, 8, h->rsp);
    wr(p, S_RIP, 8, h->rip);
    wr(p, S_CPL, 1, 0);
}

static void host_load(const uint8_t *p, struct emu_svm_host *h)
{
    seg_load(p, S_ES, &h->es);
    seg_load(p, S_CS, &h->cs);
    seg_load(p, S_SS, &h->ss);
    seg_load(p, S_DS, &h->ds);
    dt_load(p, S_GDTR, &h->gdtr);
    dt_load(p, S_IDTR, &h->idtr);
    h->rflags = rd(p, S_RFLAGS, 8) | EMU_FL_FIXED1;
    h->efer = rd(p, S_EFER, 8);
    h->cr0 = rd(p, S_CR0, 8), h->cr3 = rd(p, S_CR3, 8), h->cr4 = rd(p, S_CR4, 8);
    h->rax = rd(p, S_RAX, 8), h->rsp = rd(p, S_RSP, 8), h->rip = rd(p, S_RIP, 8);
}


uint32_t emu_svm_get_nested_state(struct emu_vcpu *v, uint64_t *vmcb_pa, uint8_t *image)
{
    struct emu_svm *s = &v->nested.svm;
    uint32_t flags = s->gif_clear ? 0 : EMU_NESTED_GIF_SET;
    if (!v->nested.guest_mode || v->nested.ops != &emu_svm_ops)
        return flags;
    flags |= EMU_NESTED_GUEST_MODE | (s->inj_pending ? EMU_NESTED_RUN_PENDING : 0);
    *vmcb_pa = s->vmcb12_pa;
    memset(image, 0, EMU_SVM_NESTED_IMAGE_SIZE);
    ctl_store(image, &s->ctl, s->inj_pending);
    host_store(image, &s->host);
    wr(image, S_DR7, 8, 0x400);
    wr(image, S_DR6, 8, 0xffff0ff0u);
    return flags;
}

int emu_svm_set_nested_state(struct emu_vcpu *v, uint32_t flags, uint64_t vmcb_pa,
                             const uint8_t *image)
{
    struct cpu *c = &v->cpu;
    struct emu_svm *s = &v->nested.svm;
    if (flags & ~(EMU_NESTED_GUEST_MODE | EMU_NESTED_RUN_PENDING | EMU_NESTED_GIF_SET))
        return -EINVAL;
    /* without EFER.SVME only "GIF set, not in guest mode" is a valid state */
    if (!(c->efer & EFER_SVME) && flags != EMU_NESTED_GIF_SET)
        return -EINVAL;
    if (!(flags & EMU_NESTED_GUEST_MODE)) {
        if (v->nested.guest_mode)
            load_host(v); /* svm_leave_nested: the vCPU runs vmcb01, L1's state */
        s->gif_clear = !(flags & EMU_NESTED_GIF_SET);
        return 0;
    }
    if ((vmcb_pa & 0xfff) || !legal_gpa(v, vmcb_pa) || !image)
        return -EINVAL; /* page_address_valid */
    struct emu_svm_ctl ctl;
    ctl_load(image, &ctl);
    /* the controls as VMRUN checks them, and L1's saved state as VMRUN left it */
    uint64_t hcr0 = rd(image, S_CR0, 8), hefer = rd(image, S_EFER, 8);
    if (!vmcb12_valid(v, image, &ctl))
        return -EINVAL;
    if (!(c->cr0 & CR0_CD) && (c->cr0 & CR0_NW))
        return -EINVAL; /* the current (L2) CR0 */
    if (!(hcr0 & CR0_PG) || !(hcr0 & CR0_PE) || (rd(image, S_RFLAGS, 8) & EMU_FL_VM) ||
        ((hefer & EFER_LMA) && !(hefer & EFER_LME)))
        return -EINVAL;
    /* The registers already hold L2's state: whether or not the vCPU was in guest mode,
     * only the nested bookkeeping is replaced. */
    struct emu_svm_host *h = &s->host;
    host_load(image, h);
    h->tsc_offset = c->tsc_offset - ctl.tsc_offset; /* the TSC user space restored is L2's */
    h->nmi_masked = false;
    s->ctl = ctl;
    s->vmcb12_pa = vmcb_pa;
    s->msrpm_cached = false; /* svm_set_nested_state: force_msr_bitmap_recalc */
    merge_msrpm(v);
    s->inj_pending = (flags & EMU_NESTED_RUN_PENDING) && (ctl.event_inj & EVTINJ_VALID);
    s->gif_clear = !(flags & EMU_NESTED_GIF_SET);
    v->nested.ops = &emu_svm_ops;
    v->nested.guest_mode = true;
    v->nested.vectoring.valid = false;
    emu_tlb_flush(v);
    v->kick = 1;
    return 0;
}

/* kvm_leave_nested for SVM (svm_leave_nested): back to L1's state, no exit information. */
void emu_svm_leave_guest(struct emu_vcpu *v)
{
    if (v->nested.guest_mode && v->nested.ops == &emu_svm_ops)
        load_host(v);
}

/* ---- SMM (svm.c svm_enter_smm / svm_leave_smm, svm_check_nested_events' SMI) ---- */

#define SVM_EXIT_SMI 0x062
#define SMRAM_SVM_GUEST_FLAG 0xd8 /* offsets in the 64-bit state-save map (smm.h) */
#define SMRAM_SVM_VMCB_GPA 0xe0
#define SMRAM_EFER 0xd0

/* An SMI in L2 that L1 intercepts is SVM_EXIT_SMI first (the SMI stays pending and is
 * taken in L1 afterwards). Returns when L1 does not intercept. */
void emu_svm_smi_intercept(struct emu_vcpu *v)
{
    if (v->nested.guest_mode && v->nested.ops == &emu_svm_ops &&
        icpt(&v->nested.svm.ctl, SVM_EXIT_SMI))
        svm_vmexit(v, SVM_EXIT_SMI, 0, 0, 0);
}

bool emu_svm_smm_enter(struct emu_vcpu *v, uint8_t *smram, bool lm)
{
    struct emu_svm *s = &v->nested.svm;
    if (!v->nested.guest_mode || v->nested.ops != &emu_svm_ops)
        return true;
    if (!lm)
        return false; /* the 32-bit map keeps no EFER / SVM state */
    wr(smram, SMRAM_SVM_GUEST_FLAG, 8, 1);
    wr(smram, SMRAM_SVM_VMCB_GPA, 8, s->vmcb12_pa);
    vmexit_state(v, 0xf0000000u /* SVM_EXIT_SW: nested_svm_simple_vmexit */, 0, 0, 0);
    uint8_t page[4096];
    uint64_t hsave = v->cpu.vm_hsave_pa & ~0xfffull;
    if (!emu_phys_read(v, hsave, page, sizeof page))
        return false;
    host_store(page, &s->host);
    return emu_phys_write(v, hsave, page, sizeof page);
}

bool emu_svm_smm_leave(struct emu_vcpu *v, const uint8_t *smram)
{
    struct cpu *c = &v->cpu;
    struct emu_svm *s = &v->nested.svm;
    if (!rd(smram, SMRAM_SVM_GUEST_FLAG, 8))
        return true;
    const struct emu_cpuid_entry *e = emu_cpuid_find(v, 0x80000001u, 0);
    if (!e || !(e->ecx & (1u << 2)) || !(rd(smram, SMRAM_EFER, 8) & EFER_SVME))
        return false;
    uint64_t pa = rd(smram, SMRAM_SVM_VMCB_GPA, 8);
    uint8_t vmcb[4096], page[4096];
    if ((pa & 0xfff) || !emu_phys_read(v, pa, vmcb, sizeof vmcb) ||
        !emu_phys_read(v, c->vm_hsave_pa & ~0xfffull, page, sizeof page))
        return false;
    struct emu_svm_ctl ctl;
    ctl_load(vmcb, &ctl);
    ctl_load_hv(v, vmcb, &ctl);
    if (!vmcb12_valid(v, vmcb, &ctl)) /* nested_svm_check_cached_vmcb12 */
        return false;
    /* L1's state for the next #VMEXIT from the host save area (vmcb01 was used by SMM) */
    host_load(page, &s->host);
    s->host.tsc_offset = c->tsc_offset;
    s->host.nmi_masked = c->ev.nmi_masked;
    return enter_guest(v, pa, vmcb, &ctl);
}
