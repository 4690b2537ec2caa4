/* emu/: Intel VMX for an L1 hypervisor (SDM vol.3C chapters 24-30), mirroring Linux 6.12
 * arch/x86/kvm/vmx/nested.c: the VMX instructions (handle_vmxon ... handle_invvpid),
 * VMLAUNCH/VMRESUME (nested_vmx_run with nested_vmx_check_controls / _host_state /
 * _guest_state, prepare_vmcs02), VM exits (nested_vmx_vmexit: prepare_vmcs12,
 * load_vmcs12_host_state), the exit predicates (nested_vmx_l1_wants_exit,
 * nested_vmx_exit_handled_msr / _io / _cr, nested_vmx_is_exception_vmexit) and event
 * arbitration in L2 (vmx_check_nested_events). The contract is emu/nested.h; the field
 * table emu/vmcs.c (KVM's vmcs12 layout); the capability values msr/vmx_caps.h.
 * VMCS shadowing is emulated as KVM does: the link-pointer VMCS is cached at VM entry
 * (nested_cache_shadow_vmcs12) and written back at the exit; L2's VMREAD/VMWRITE of a
 * field whose bitmap bit is clear use it without an exit.
 * EPT: L2-physical addresses of L2's page walks and accesses go through L1's EPT tables
 * (ops->tdp from emu/paging.c, on TLB misses: the TLB is flushed at every transition and
 * INVEPT), with EPT-violation / misconfiguration exits (reasons 48/49).
 * "Virtualize APIC accesses" makes every access to the APIC-access page an exit.
 * Not offered (so never entered): unrestricted guest, TPR shadow, APIC-register
 * virtualization, virtual-interrupt delivery, monitor trap flag, PML, VMFUNC, TSC scaling, PERF_GLOBAL_CTRL
 * loading, the wait-for-SIPI / shutdown activity states. */
#include <errno.h>
#include <string.h>

#include "emu/internal.h"
#include "emu/vmcs.h"
#include "msr/bitmap.h" /* header-only MSR-bitmap bit positions */
#include "msr/vmx_caps.h"

#define CR0_PE (1ull << 0)
#define CR0_TS (1ull << 3)
#define CR0_NE (1ull << 5)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_VMXE (1ull << 13)
#define CR4_PCIDE (1ull << 17)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define INVALID_PTR (~0ull)

/* exit reasons (SDM appendix C) */
enum {
    EXIT_EXCEPTION_NMI = 0, EXIT_EXTERNAL_INTERRUPT = 1, EXIT_TRIPLE_FAULT = 2,
    EXIT_INTERRUPT_WINDOW = 7, EXIT_NMI_WINDOW = 8, EXIT_CPUID = 10, EXIT_HLT = 12,
    EXIT_INVD = 13, EXIT_INVLPG = 14, EXIT_RDPMC = 15, EXIT_RDTSC = 16, EXIT_VMCALL = 18,
    EXIT_VMCLEAR = 19, EXIT_VMLAUNCH = 20, EXIT_VMPTRLD = 21, EXIT_VMPTRST = 22,
    EXIT_VMREAD = 23, EXIT_VMRESUME = 24, EXIT_VMWRITE = 25, EXIT_VMOFF = 26, EXIT_VMON = 27,
    EXIT_CR_ACCESS = 28, EXIT_DR_ACCESS = 29, EXIT_IO = 30, EXIT_MSR_READ = 31,
    EXIT_MSR_WRITE = 32, EXIT_INVALID_STATE = 33, EXIT_MSR_LOAD_FAIL = 34, EXIT_MWAIT = 36,
    EXIT_MONITOR = 39, EXIT_PAUSE = 40, EXIT_GDTR_IDTR = 46, EXIT_LDTR_TR = 47,
    EXIT_INVEPT = 50, EXIT_PREEMPTION_TIMER = 52, EXIT_INVVPID = 53, EXIT_WBINVD = 54,
    EXIT_XSETBV = 55,
};
#define EXIT_FAILED_ENTRY 0x80000000u
/* exit qualifications of failed entries (KVM ENTRY_FAIL_*) */
enum { ENTRY_FAIL_DEFAULT = 0, ENTRY_FAIL_PDPTE = 2, ENTRY_FAIL_VMCS_LINK_PTR = 4 };

/* VM-instruction error numbers (SDM 31.4) */
enum {
    VMXERR_VMCLEAR_INVALID_ADDRESS = 2, VMXERR_VMCLEAR_VMXON_POINTER = 3,
    VMXERR_VMLAUNCH_NONCLEAR = 4, VMXERR_VMRESUME_NONLAUNCHED = 5,
    VMXERR_ENTRY_INVALID_CONTROL = 7, VMXERR_ENTRY_INVALID_HOST_STATE = 8,
    VMXERR_VMPTRLD_INVALID_ADDRESS = 9, VMXERR_VMPTRLD_VMXON_POINTER = 10,
    VMXERR_VMPTRLD_BAD_REVISION = 11, VMXERR_UNSUPPORTED_COMPONENT = 12,
    VMXERR_VMWRITE_READ_ONLY = 13, VMXERR_VMXON_IN_ROOT = 15,
    VMXERR_ENTRY_BLOCKED_BY_MOV_SS = 26, VMXERR_INVALID_OPERAND = 28,
};

/* interruption-information fields (SDM 24.8.3, 24.9.2) */
#define INTR_VALID (1u << 31)
#define INTR_HAS_ERROR (1u << 11)
#define INTR_NMI_UNBLOCK (1u << 12)
enum { INTR_EXT = 0, INTR_NMI = 2, INTR_HW_EXC = 3, INTR_SOFT_INT = 4, INTR_PRIV_SW_EXC = 5,
       INTR_SOFT_EXC = 6, INTR_OTHER = 7 };
/* guest interruptibility state (SDM 24.4.2) */
#define GI_STI (1u << 0)
#define GI_MOV_SS (1u << 1)
#define GI_NMI (1u << 3)
enum { ACTIVITY_ACTIVE = 0, ACTIVITY_HLT = 1 };

/* KVM_X86_SHADOW_INT_* values of ev.int_shadow */
#define SHADOW_MOV_SS 1u
#define SHADOW_STI 2u

static uint8_t *vmcs(struct emu_vcpu *v) { return v->nested.vmx.vmcs12; }

/* vmcs12 bytes 8-11: launch state, not a VMCS field (KVM struct vmcs12.launch_state) */
static uint32_t launch_state(struct emu_vcpu *v)
{
    uint32_t s;
    memcpy(&s, vmcs(v) + 8, 4);
    return s;
}

static void set_launched(struct emu_vcpu *v)
{
    uint32_t one = 1;
    memcpy(vmcs(v) + 8, &one, 4);
}
static uint64_t vf(struct emu_vcpu *v, uint32_t f) { return emu_vmcs_get(vmcs(v), f); }
static void vf_set(struct emu_vcpu *v, uint32_t f, uint64_t x) { emu_vmcs_put(vmcs(v), f, x); }

static uint32_t pin(struct emu_vcpu *v) { return (uint32_t)vf(v, VF_PIN_BASED_VM_EXEC_CONTROL); }
static uint32_t proc(struct emu_vcpu *v) { return (uint32_t)vf(v, VF_CPU_BASED_VM_EXEC_CONTROL); }
static uint32_t proc2_cap(struct emu_vcpu *v) { return v->cpu.vmx_caps.proc2_hi; }
static uint32_t proc2(struct emu_vcpu *v)
{
    return (proc(v) & VMX_PROC_SECONDARY) ? (uint32_t)vf(v, VF_SECONDARY_VM_EXEC_CONTROL) : 0;
}

static unsigned maxphyaddr(struct emu_vcpu *v)
{
    const struct emu_cpuid_entry *e = emu_cpuid_find(v, 0x80000008u, 0);
    unsigned w = e ? (e->eax & 0xff) : 36;
    return w >= 32 && w <= 52 ? w : 36;
}

static bool legal_gpa(struct emu_vcpu *v, uint64_t gpa) { return !(gpa >> maxphyaddr(v)); }

/* page_address_valid: 4 KiB aligned and within MAXPHYADDR */
static bool page_ok(struct emu_vcpu *v, uint64_t gpa) { return !(gpa & 0xfff) && legal_gpa(v, gpa); }

static bool ctl_ok(uint32_t val, uint32_t lo, uint32_t hi)
{
    return (val & lo) == lo && !(val & ~hi); /* vmx_control_verify */
}

/* ---- VMsucceed / VMfail (SDM 31.2) ---- */

#define ARITH_FLAGS (EMU_FL_CF | EMU_FL_PF | EMU_FL_AF | EMU_FL_ZF | EMU_FL_SF | EMU_FL_OF)

static int succeed(struct emu_vcpu *v)
{
    emu_flags_update(v, ARITH_FLAGS, 0);
    return EMU_H_NEXT;
}

static int fail_invalid(struct emu_vcpu *v)
{
    emu_flags_update(v, ARITH_FLAGS, EMU_FL_CF);
    return EMU_H_NEXT;
}

/* nested_vmx_fail: VMfailValid with a current VMCS, else VMfailInvalid */
static int fail(struct emu_vcpu *v, uint32_t err)
{
    if (v->nested.vmx.vmptr == INVALID_PTR)
        return fail_invalid(v);
    vf_set(v, VF_VM_INSTRUCTION_ERROR, err);
    emu_flags_update(v, ARITH_FLAGS, EMU_FL_ZF);
    return EMU_H_NEXT;
}

/* ---- segments in VMCS form (SDM 24.4.1: access rights, unusable = bit 16) ---- */

static uint32_t seg_ar(const struct emu_segment *s)
{
    if (s->unusable)
        return 1u << 16;
    return s->type | s->s << 4 | s->dpl << 5 | s->present << 7 | s->avl << 12 | s->l << 13 |
           s->db << 14 | s->g << 15;
}

static void seg_from_ar(struct emu_segment *s, uint32_t ar)
{
    s->type = ar & 0xf, s->s = (ar >> 4) & 1, s->dpl = (ar >> 5) & 3, s->present = (ar >> 7) & 1;
    s->avl = (ar >> 12) & 1, s->l = (ar >> 13) & 1, s->db = (ar >> 14) & 1, s->g = (ar >> 15) & 1;
    s->unusable = (ar >> 16) & 1;
}

/* the guest-state fields of each segment: selector, base, limit, access rights */
static const struct { uint16_t sel, base, limit, ar; } gseg[EMU_NSEGS] = {
    [EMU_ES] = {VF_GUEST_ES_SELECTOR, VF_GUEST_ES_BASE, VF_GUEST_ES_LIMIT, VF_GUEST_ES_AR_BYTES},
    [EMU_CS] = {VF_GUEST_CS_SELECTOR, VF_GUEST_CS_BASE, VF_GUEST_CS_LIMIT, VF_GUEST_CS_AR_BYTES},
    [EMU_SS] = {VF_GUEST_SS_SELECTOR, VF_GUEST_SS_BASE, VF_GUEST_SS_LIMIT, VF_GUEST_SS_AR_BYTES},
    [EMU_DS] = {VF_GUEST_DS_SELECTOR, VF_GUEST_DS_BASE, VF_GUEST_DS_LIMIT, VF_GUEST_DS_AR_BYTES},
    [EMU_FS] = {VF_GUEST_FS_SELECTOR, VF_GUEST_FS_BASE, VF_GUEST_FS_LIMIT, VF_GUEST_FS_AR_BYTES},
    [EMU_GS] = {VF_GUEST_GS_SELECTOR, VF_GUEST_GS_BASE, VF_GUEST_GS_LIMIT, VF_GUEST_GS_AR_BYTES},
    [EMU_LDTR] = {VF_GUEST_LDTR_SELECTOR, VF_GUEST_LDTR_BASE, VF_GUEST_LDTR_LIMIT,
                  VF_GUEST_LDTR_AR_BYTES},
    [EMU_TR] = {VF_GUEST_TR_SELECTOR, VF_GUEST_TR_BASE, VF_GUEST_TR_LIMIT, VF_GUEST_TR_AR_BYTES},
};

/* ---- VM exit (nested_vmx_vmexit) ---- */

/* One MSR of a VM-exit MSR-store list (nested_vmx_store_msr): read as L2's value. */
static bool msr_list_entry(struct emu_vcpu *v, uint64_t gpa, uint32_t i, uint32_t *idx, uint64_t *val)
{
    uint8_t e[16];
    if (!emu_phys_read(v, gpa + 16ull * i, e, sizeof e))
        return false;
    uint32_t resv;
    memcpy(idx, e, 4);
    memcpy(&resv, e + 4, 4);
    memcpy(val, e + 8, 8);
    /* nested_vmx_msr_check_common: no x2APIC range with x2APIC on, no SMM_MONITOR_CTL,
     * reserved dword 0; load lists also refuse FS/GS base */
    if (resv || *idx == 0x9b || ((*idx >> 8) == 0x8 && (v->cpu.apic_base & (1u << 10))))
        return false;
    return true;
}

/* nested_vmx_load_msr: 0 on success, else the 1-based index of the entry that failed. */
static uint32_t load_msr_list(struct emu_vcpu *v, uint64_t gpa, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        uint32_t idx, reason = 0;
        uint64_t val;
        if (!msr_list_entry(v, gpa, i, &idx, &val) || idx == 0xc0000100u || idx == 0xc0000101u)
            return i + 1;
        /* through msr/ as a guest write (KVM kvm_set_msr, host_initiated = 0); a write
         * msr/ would deflect to user space fails the entry, as a refused one does */
        if (!v->has_msr_ops || v->msr_ops.wrmsr(v->msr_ops.ctx, &v->cpu, idx, val, &reason) !=
                                   EMU_MSR_OK)
            return i + 1;
    }
    if (count) {
        emu_update_mode(v);
        emu_tlb_flush(v);
    }
    return 0;
}

static bool store_msr_list(struct emu_vcpu *v, uint64_t gpa, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        uint32_t idx, reason = 0;
        uint64_t val, ignore;
        if (!msr_list_entry(v, gpa, i, &idx, &ignore))
            return false;
        if (!v->has_msr_ops || v->msr_ops.rdmsr(v->msr_ops.ctx, &v->cpu, idx, &val, &reason) !=
                                   EMU_MSR_OK)
            return false;
        if (!emu_phys_write(v, gpa + 16ull * i + 8, &val, 8))
            return false;
    }
    return true;
}

/* load_vmcs12_host_state (SDM 28.5): L1 continues at HOST_RIP with the host-state area. */
static void load_host(struct emu_vcpu *v, bool abort_on_error)
{
    struct cpu *c = &v->cpu;
    struct emu_vmx *x = &v->nested.vmx;
    uint32_t ectl = (uint32_t)vf(v, VF_VM_EXIT_CONTROLS);
    bool ia32e = ectl & VMX_EXIT_HOST_ADDR_SPACE;
    v->nested.guest_mode = false;
    v->nested.vectoring.valid = false;
    x->inj_pending = false;
    x->timer_on = false;
    x->ept_on = false;
    if (x->shadow_loaded) { /* nested_flush_cached_shadow_vmcs12 */
        emu_phys_write(v, vf(v, VF_VMCS_LINK_POINTER), x->shadow12, sizeof x->shadow12);
        x->shadow_loaded = false;
    }
    if (ectl & VMX_EXIT_LOAD_EFER)
        c->efer = vf(v, VF_HOST_IA32_EFER);
    else if (ia32e)
        c->efer |= EFER_LMA | EFER_LME;
    else
        c->efer &= ~(EFER_LMA | EFER_LME);
    c->cr0 = vf(v, VF_HOST_CR0) | (1ull << 4); /* ET */
    c->cr4 = vf(v, VF_HOST_CR4);
    c->cr3 = vf(v, VF_HOST_CR3);
    c->dr[7] = 0x400;
    emu_debug_update(v);
    c->sysenter_cs = (uint32_t)vf(v, VF_HOST_IA32_SYSENTER_CS);
    c->sysenter_esp = vf(v, VF_HOST_IA32_SYSENTER_ESP);
    c->sysenter_eip = vf(v, VF_HOST_IA32_SYSENTER_EIP);
    if (ectl & VMX_EXIT_LOAD_PAT)
        c->pat = vf(v, VF_HOST_IA32_PAT);
    c->gdtr.base = vf(v, VF_HOST_GDTR_BASE), c->gdtr.limit = 0xffff;
    c->idtr.base = vf(v, VF_HOST_IDTR_BASE), c->idtr.limit = 0xffff;
    static const struct { unsigned seg; uint16_t sel; } hs[] = {
        {EMU_ES, VF_HOST_ES_SELECTOR}, {EMU_CS, VF_HOST_CS_SELECTOR}, {EMU_SS, VF_HOST_SS_SELECTOR},
        {EMU_DS, VF_HOST_DS_SELECTOR}, {EMU_FS, VF_HOST_FS_SELECTOR}, {EMU_GS, VF_HOST_GS_SELECTOR},
        {EMU_TR, VF_HOST_TR_SELECTOR}};
    for (unsigned i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        struct emu_segment *s = &c->seg[hs[i].seg];
        uint16_t sel = (uint16_t)vf(v, hs[i].sel);
        *s = (struct emu_segment){.selector = sel, .limit = 0xffffffffu, .type = 3, .s = 1,
                                  .present = 1, .db = 1, .g = 1};
        /* SDM 28.5.2: a null selector makes ES/DS/FS/GS (and SS outside 64-bit) unusable */
        s->unusable = sel == 0 && hs[i].seg != EMU_CS && hs[i].seg != EMU_TR;
        if (hs[i].seg == EMU_CS)
            s->type = 11, s->l = ia32e, s->db = !ia32e;
        if (hs[i].seg == EMU_TR)
            *s = (struct emu_segment){.selector = sel, .base = vf(v, VF_HOST_TR_BASE),
                                      .limit = 0x67, .type = 11, .present = 1};
    }
    c->seg[EMU_FS].base = vf(v, VF_HOST_FS_BASE);
    c->seg[EMU_GS].base = vf(v, VF_HOST_GS_BASE);
    c->seg[EMU_LDTR] = (struct emu_segment){.unusable = 1};
    emu_flags_set(v, EMU_FL_FIXED1);
    c->rip = vf(v, VF_HOST_RIP);
    v->next_rip = c->rip;
    c->gpr[EMU_RSP] = vf(v, VF_HOST_RSP);
    /* L1's offset and ratio again, with what L2's TSC writes moved */
    uint64_t l1_off = emu_cpu_l1_tsc_offset(c);
    c->l2_tsc_mult = EMU_TSC_ONE;
    c->l2_tsc_vmcs_offset = 0;
    emu_cpu_set_l1_tsc(c, l1_off, c->l1_tsc_ratio);
    c->ev.nmi_masked = x->l1_nmi_masked;
    /* what was queued for L2 is not L1's (kvm_clear_exception_queue, nmi_injected) */
    c->ev.exc_pending = c->ev.exc_injected = false;
    c->ev.nmi_injected = false;
    c->ev.int_shadow = 0;
    c->halted = false;
    c->cpl = 0;
    emu_update_mode(v);
    emu_tlb_flush(v);
    if ((c->cr0 & CR0_PG) && (c->cr4 & CR4_PAE) && !(c->efer & EFER_LMA) &&
        !emu_try_load_pdptrs(v, c->cr3))
        c->ev.triple_fault_pending = true; /* nested_vmx_abort: VMX abort is a shutdown */
    if (abort_on_error && load_msr_list(v, vf(v, VF_VM_EXIT_MSR_LOAD_ADDR),
                                        (uint32_t)vf(v, VF_VM_EXIT_MSR_LOAD_COUNT)))
        c->ev.triple_fault_pending = true; /* VMX abort (SDM 28.7) */
    v->kick = 1;
}

/* prepare_vmcs12 / sync_vmcs02_to_vmcs12: L2's state into the guest-state area. */
static void save_guest(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    uint32_t ectl = (uint32_t)vf(v, VF_VM_EXIT_CONTROLS);
    vf_set(v, VF_GUEST_CR0, c->cr0);
    vf_set(v, VF_GUEST_CR3, c->cr3);
    vf_set(v, VF_GUEST_CR4, c->cr4);
    vf_set(v, VF_GUEST_RSP, c->gpr[EMU_RSP]);
    vf_set(v, VF_GUEST_RIP, c->rip);
    vf_set(v, VF_GUEST_RFLAGS, emu_flags(v));
    for (unsigned i = 0; i < EMU_NSEGS; i++) {
        const struct emu_segment *s = &c->seg[i];
        vf_set(v, gseg[i].sel, s->selector);
        vf_set(v, gseg[i].base, s->base);
        vf_set(v, gseg[i].limit, s->limit);
        vf_set(v, gseg[i].ar, seg_ar(s));
    }
    vf_set(v, VF_GUEST_GDTR_BASE, c->gdtr.base);
    vf_set(v, VF_GUEST_GDTR_LIMIT, c->gdtr.limit);
    vf_set(v, VF_GUEST_IDTR_BASE, c->idtr.base);
    vf_set(v, VF_GUEST_IDTR_LIMIT, c->idtr.limit);
    uint32_t gi = (c->ev.int_shadow & SHADOW_STI ? GI_STI : 0) |
                  (c->ev.int_shadow & SHADOW_MOV_SS ? GI_MOV_SS : 0) |
                  (c->ev.nmi_masked ? GI_NMI : 0);
    vf_set(v, VF_GUEST_INTERRUPTIBILITY_INFO, gi);
    vf_set(v, VF_GUEST_ACTIVITY_STATE, c->halted ? ACTIVITY_HLT : ACTIVITY_ACTIVE);
    vf_set(v, VF_GUEST_PENDING_DBG_EXCEPTIONS, 0);
    vf_set(v, VF_GUEST_SYSENTER_CS, c->sysenter_cs);
    vf_set(v, VF_GUEST_SYSENTER_ESP, c->sysenter_esp);
    vf_set(v, VF_GUEST_SYSENTER_EIP, c->sysenter_eip);
    if (ectl & VMX_EXIT_SAVE_DEBUG)
        vf_set(v, VF_GUEST_DR7, c->dr[7]);
    if (ectl & VMX_EXIT_SAVE_EFER)
        vf_set(v, VF_GUEST_IA32_EFER, c->efer);
    if (ectl & VMX_EXIT_SAVE_PAT)
        vf_set(v, VF_GUEST_IA32_PAT, c->pat);
    /* IA32_VMX_MISC[5]: EFER.LMA goes into the IA-32e mode guest entry control */
    uint32_t en = (uint32_t)vf(v, VF_VM_ENTRY_CONTROLS);
    en = (c->efer & EFER_LMA) ? en | VMX_ENTRY_IA32E : en & ~VMX_ENTRY_IA32E;
    vf_set(v, VF_VM_ENTRY_CONTROLS, en);
    if ((ectl & VMX_EXIT_SAVE_PREEMPT) && v->nested.vmx.timer_on) {
        uint64_t now = emu_read_l1_tsc(v);
        uint64_t left = now >= v->nested.vmx.timer_deadline
                            ? 0 : (v->nested.vmx.timer_deadline - now) >> VMX_MISC_TIMER_RATE;
        vf_set(v, VF_VMX_PREEMPTION_TIMER_VALUE, left > 0xffffffffu ? 0xffffffffu : left);
    }
}

/* The VM exit: exit information into VMCS12, L2's state saved, L1's loaded. `reason` with
 * EXIT_FAILED_ENTRY is a VM-entry failure after the checks that VMfail (SDM 27.8): L2
 * never ran, so only the exit information is written. Does not return. */
static _Noreturn void vmexit(struct emu_vcpu *v, uint32_t reason, uint64_t qual,
                             uint32_t intr_info, uint32_t intr_err, uint32_t insn_len)
{
    struct emu_vmx *x = &v->nested.vmx;
    bool failed = reason & EXIT_FAILED_ENTRY;
    if (!failed) {
        save_guest(v);
        vf_set(v, VF_VM_EXIT_INTR_INFO, intr_info);
        vf_set(v, VF_VM_EXIT_INTR_ERROR_CODE, (intr_info & INTR_HAS_ERROR) ? intr_err : 0);
        vf_set(v, VF_VM_EXIT_INSTRUCTION_LEN, insn_len);
        vf_set(v, VF_VMX_INSTRUCTION_INFO, x->exit_insn_info);
        /* vmcs12_save_pending_event: an event whose delivery the exit interrupted, or an
         * injection not yet delivered, goes to the IDT-vectoring information */
        uint32_t idt = 0, idt_err = 0;
        const struct emu_nx_vectoring *vc = &v->nested.vectoring;
        if (vc->valid) {
            unsigned type = vc->type == EMU_NX_EV_SOFT ? INTR_SOFT_INT : vc->type;
            idt = INTR_VALID | vc->vector | type << 8 | (vc->has_error ? INTR_HAS_ERROR : 0);
            idt_err = vc->error_code;
        } else if (x->inj_pending) {
            idt = (uint32_t)vf(v, VF_VM_ENTRY_INTR_INFO_FIELD);
            idt_err = (uint32_t)vf(v, VF_VM_ENTRY_EXCEPTION_ERROR_CODE);
        }
        vf_set(v, VF_IDT_VECTORING_INFO_FIELD, idt);
        vf_set(v, VF_IDT_VECTORING_ERROR_CODE, idt_err);
        set_launched(v);
    } else {
        vf_set(v, VF_VM_EXIT_INTR_INFO, 0);
        vf_set(v, VF_IDT_VECTORING_INFO_FIELD, 0);
    }
    vf_set(v, VF_VM_EXIT_REASON, reason);
    vf_set(v, VF_EXIT_QUALIFICATION, qual);
    /* SDM 27.2.? : every VM exit clears the valid bit of the VM-entry interruption field */
    vf_set(v, VF_VM_ENTRY_INTR_INFO_FIELD, vf(v, VF_VM_ENTRY_INTR_INFO_FIELD) & ~INTR_VALID);
    x->exit_insn_info = 0;
    if (!failed && !store_msr_list(v, vf(v, VF_VM_EXIT_MSR_STORE_ADDR),
                                   (uint32_t)vf(v, VF_VM_EXIT_MSR_STORE_COUNT)))
        v->cpu.ev.triple_fault_pending = true; /* VMX abort */
    load_host(v, true);
    emu_nested_resume_l1(v);
}

/* An instruction exit: length of the instruction, RIP at it. */
static _Noreturn void insn_exit(struct emu_vcpu *v, uint32_t reason, uint64_t qual)
{
    vmexit(v, reason, qual, 0, 0, v->insn ? v->insn->length : 0);
}

/* ---- VMX-instruction information (SDM 27.2.5 table 27-13/14) ---- */

static uint32_t insn_info(const struct decoded_insn *d, int mem, int reg2)
{
    uint32_t info = (d->addrsize == 2 ? 0u : d->addrsize == 4 ? 1u : 2u) << 7;
    if (mem >= 0) {
        const struct decoder_operand *o = &d->ops[mem];
        if (o->kind == DOPND_MEM) {
            unsigned sc = o->scale == 8 ? 3 : o->scale == 4 ? 2 : o->scale == 2 ? 1 : 0;
            info |= sc | (uint32_t)o->seg << 15;
            info |= o->index == DECODER_NO_REG ? 1u << 22 : (uint32_t)(o->index & 15) << 18;
            info |= (o->base == DECODER_NO_REG || o->base == DECODER_BASE_RIP)
                        ? 1u << 27 : (uint32_t)(o->base & 15) << 23;
        } else {
            info |= 1u << 10 | (uint32_t)(o->reg & 15) << 3;
        }
    }
    if (reg2 >= 0)
        info |= (uint32_t)(d->ops[reg2].reg & 15) << 28;
    return info;
}

static uint64_t mem_disp(const struct decoded_insn *d, unsigned i)
{
    return d->ops[i].kind == DOPND_MEM ? (uint64_t)d->ops[i].disp : 0;
}

/* ---- exit predicates (emu_nested_ops) ---- */

static void vmx_insn(struct emu_vcpu *v, enum emu_nx_insn which, uint64_t info)
{
    uint32_t p = proc(v), p2 = proc2(v);
    const struct decoded_insn *d = v->insn;
    struct emu_vmx *x = &v->nested.vmx;
    switch (which) {
    case EMU_NX_CPUID: insn_exit(v, EXIT_CPUID, 0);          /* unconditional */
    case EMU_NX_INVD: insn_exit(v, EXIT_INVD, 0);            /* unconditional */
    case EMU_NX_XSETBV: insn_exit(v, EXIT_XSETBV, 0);        /* unconditional */
    case EMU_NX_VMCALL: insn_exit(v, EXIT_VMCALL, 0);        /* unconditional */
    case EMU_NX_HLT: if (p & VMX_PROC_HLT) insn_exit(v, EXIT_HLT, 0); return;
    case EMU_NX_INVLPG: if (p & VMX_PROC_INVLPG) insn_exit(v, EXIT_INVLPG, info); return;
    case EMU_NX_RDPMC: if (p & VMX_PROC_RDPMC) insn_exit(v, EXIT_RDPMC, 0); return;
    case EMU_NX_RDTSC: if (p & VMX_PROC_RDTSC) insn_exit(v, EXIT_RDTSC, 0); return;
    /* RDTSCP and INVPCID are #UD unless their enable control is set (SDM 25.3); softkvm
     * offers neither control */
    case EMU_NX_RDTSCP:
    case EMU_NX_INVPCID: emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    case EMU_NX_PAUSE: if (p & VMX_PROC_PAUSE) insn_exit(v, EXIT_PAUSE, 0); return;
    case EMU_NX_MONITOR: if (p & VMX_PROC_MONITOR) insn_exit(v, EXIT_MONITOR, 0); return;
    case EMU_NX_MWAIT: if (p & VMX_PROC_MWAIT) insn_exit(v, EXIT_MWAIT, 0); return;
    case EMU_NX_WBINVD: if (p2 & VMX_PROC2_WBINVD) insn_exit(v, EXIT_WBINVD, 0); return;
    case EMU_NX_SGDT: case EMU_NX_SIDT: case EMU_NX_LGDT: case EMU_NX_LIDT:
        if (p2 & VMX_PROC2_DESC) {
            /* instruction identity in bits 29:28: SGDT 0, SIDT 1, LGDT 2, LIDT 3 */
            uint32_t id = which == EMU_NX_SGDT ? 0 : which == EMU_NX_SIDT ? 1 : which == EMU_NX_LGDT ? 2 : 3;
            x->exit_insn_info = (insn_info(d, 0, -1) & ~(1u << 10)) | id << 28 |
                                (d->opsize == 4 ? 1u << 11 : 0);
            insn_exit(v, EXIT_GDTR_IDTR, mem_disp(d, 0));
        }
        return;
    case EMU_NX_SLDT: case EMU_NX_STR: case EMU_NX_LLDT: case EMU_NX_LTR:
        if (p2 & VMX_PROC2_DESC) {
            uint32_t id = which == EMU_NX_SLDT ? 0 : which == EMU_NX_STR ? 1 : which == EMU_NX_LLDT ? 2 : 3;
            x->exit_insn_info = insn_info(d, 0, -1) | id << 28;
            insn_exit(v, EXIT_LDTR_TR, mem_disp(d, 0));
        }
        return;
    default:
        /* VMMCALL (AMD), the SVM instructions, IRET, PUSHF/POPF, INT n, ICEBP, RSM, RDPRU:
         * no VMX exit; softkvm handles them as for L1 */
        return;
    }
}

/* nested_vmx_exit_handled_msr: without "use MSR bitmaps" every access exits; else L1's
 * bitmap bit decides, an MSR outside the two ranges always exits. A clear bit leaves the
 * access to L0 (msr/: its bitmap, filter and user-space deflection), i.e. KVM's merged
 * vmcs02 bitmap (nested_vmx_prepare_msr_bitmap). */
static void vmx_msr(struct emu_vcpu *v, uint32_t index, bool write)
{
    bool exits = true;
    if (proc(v) & VMX_PROC_MSR_BITMAPS) {
        struct msr_bitpos p;
        uint8_t b;
        if (msr_vmx_bitpos(index, write, &p) &&
            emu_phys_read(v, vf(v, VF_MSR_BITMAP) + p.byte, &b, 1))
            exits = (b >> p.bit) & 1;
    }
    if (exits)
        insn_exit(v, write ? EXIT_MSR_WRITE : EXIT_MSR_READ, 0);
}

/* nested_vmx_check_io_bitmaps / nested_vmx_exit_handled_io */
static void vmx_io(struct emu_vcpu *v, const struct emu_nx_io *io)
{
    uint32_t p = proc(v);
    bool exits;
    if (!(p & VMX_PROC_IO_BITMAPS)) {
        exits = p & VMX_PROC_UNCOND_IO;
    } else {
        exits = false;
        for (unsigned i = 0; i < io->size && !exits; i++) {
            unsigned port = io->port + i;
            uint8_t b;
            if (port > 0xffff) {
                exits = true; /* wraps around: exits (SDM 25.1.3) */
                break;
            }
            uint64_t bm = port < 0x8000 ? vf(v, VF_IO_BITMAP_A) : vf(v, VF_IO_BITMAP_B);
            if (!emu_phys_read(v, bm + (port & 0x7fff) / 8, &b, 1) || ((b >> (port & 7)) & 1))
                exits = true;
        }
    }
    if (!exits)
        return;
    /* qualification (SDM table 28-5): size-1, IN, string, REP, immediate operand, port */
    const struct decoded_insn *d = v->insn;
    bool imm = d && d->nops > 0 && (d->ops[0].kind == DOPND_IMM || (d->nops > 1 && d->ops[1].kind == DOPND_IMM));
    uint64_t q = (uint64_t)(io->size - 1) | (io->in ? 8u : 0) | (io->string ? 16u : 0) |
                 (io->rep ? 32u : 0) | (imm ? 64u : 0) | (uint64_t)io->port << 16;
    if (io->string) /* IA32_VMX_BASIC[54]: address size and segment of INS/OUTS */
        v->nested.vmx.exit_insn_info =
            (io->addrsize == 2 ? 0u : io->addrsize == 4 ? 1u : 2u) << 7 |
            (uint32_t)(io->in ? EMU_ES : (d && (d->prefixes & DPFX_SEG) ? d->seg_override : EMU_DS)) << 15;
    insn_exit(v, EXIT_IO, q);
}

/* nested_vmx_exit_handled_cr */
static void vmx_cr(struct emu_vcpu *v, unsigned cr, bool write)
{
    const struct decoded_insn *d = v->insn;
    uint32_t p = proc(v);
    if (!d)
        return;
    if (d->op == DOP_CLTS) {
        uint64_t mask = vf(v, VF_CR0_GUEST_HOST_MASK), shadow = vf(v, VF_CR0_READ_SHADOW);
        if ((mask & CR0_TS) && (shadow & CR0_TS))
            insn_exit(v, EXIT_CR_ACCESS, 2u << 4);
        return;
    }
    if (d->op == DOP_LMSW) {
        uint64_t mask = vf(v, VF_CR0_GUEST_HOST_MASK), shadow = vf(v, VF_CR0_READ_SHADOW);
        uint64_t val = emu_opnd_read(v, d, 0) & 0xffff;
        bool mem = d->ops[0].kind == DOPND_MEM;
        if ((mask & 0xe & (val ^ shadow)) || ((mask & 1) && !(shadow & 1) && (val & 1)))
            insn_exit(v, EXIT_CR_ACCESS, 3u << 4 | (mem ? 1u << 6 : (uint64_t)(d->ops[0].reg & 15) << 8) |
                                             val << 16);
        return;
    }
    if (d->op == DOP_SMSW)
        return; /* never exits; reads the guest CR0 */
    unsigned gpr = write ? d->ops[1].reg & 15 : d->ops[0].reg & 15;
    uint64_t q = cr | (write ? 0u : 1u << 4) | (uint64_t)gpr << 8;
    bool exits = false;
    if (write) {
        uint64_t val = emu_gpr_read(v, gpr, 8);
        if (v->mode != DECODER_MODE_64)
            val = (uint32_t)val;
        if (cr == 0 || cr == 4) {
            uint64_t mask = vf(v, cr == 0 ? VF_CR0_GUEST_HOST_MASK : VF_CR4_GUEST_HOST_MASK);
            uint64_t shadow = vf(v, cr == 0 ? VF_CR0_READ_SHADOW : VF_CR4_READ_SHADOW);
            exits = mask & (val ^ shadow);
        } else if (cr == 3) {
            exits = p & VMX_PROC_CR3_LOAD; /* CR3-target count is 0 (IA32_VMX_MISC) */
        } else if (cr == 8) {
            exits = p & VMX_PROC_CR8_LOAD;
        }
    } else {
        exits = (cr == 3 && (p & VMX_PROC_CR3_STORE)) || (cr == 8 && (p & VMX_PROC_CR8_STORE));
    }
    if (exits)
        insn_exit(v, EXIT_CR_ACCESS, q);
}

/* CR0/CR4 reads in L2: bits set in the guest/host mask read from the read shadow. */
static uint64_t vmx_cr_read(struct emu_vcpu *v, unsigned cr, uint64_t val)
{
    if (cr != 0 && cr != 4)
        return val;
    uint64_t mask = vf(v, cr == 0 ? VF_CR0_GUEST_HOST_MASK : VF_CR4_GUEST_HOST_MASK);
    uint64_t shadow = vf(v, cr == 0 ? VF_CR0_READ_SHADOW : VF_CR4_READ_SHADOW);
    return (val & ~mask) | (shadow & mask);
}

/* A CR0/CR4 write in L2 that did not exit leaves the L1-owned (masked) bits as they are. */
static uint64_t vmx_cr_write(struct emu_vcpu *v, unsigned cr, uint64_t val)
{
    if (cr != 0 && cr != 4)
        return val;
    uint64_t mask = vf(v, cr == 0 ? VF_CR0_GUEST_HOST_MASK : VF_CR4_GUEST_HOST_MASK);
    uint64_t cur = cr == 0 ? v->cpu.cr0 : v->cpu.cr4;
    return (val & ~mask) | (cur & mask);
}

static void vmx_dr(struct emu_vcpu *v, unsigned dr, bool write)
{
    const struct decoded_insn *d = v->insn;
    if (!(proc(v) & VMX_PROC_MOV_DR) || !d)
        return;
    unsigned gpr = write ? d->ops[1].reg & 15 : d->ops[0].reg & 15;
    insn_exit(v, EXIT_DR_ACCESS, (dr & 7) | (write ? 0u : 1u << 4) | (uint64_t)gpr << 8);
}

/* nested_vmx_is_exception_vmexit / nested_vmx_inject_exception_vmexit. A reinjected
 * event is not intercepted again. */
static void vmx_exception(struct emu_vcpu *v, uint8_t vector, uint32_t err, bool has_cr2,
                          uint64_t cr2, bool reinject)
{
    if (reinject || vector >= 32)
        return;
    uint32_t bitmap = (uint32_t)vf(v, VF_EXCEPTION_BITMAP);
    bool bit = (bitmap >> vector) & 1;
    if (vector == EMU_PF) {
        uint32_t e = err == EMU_NO_ERRCODE ? 0 : err;
        bool ineq = (e & (uint32_t)vf(v, VF_PAGE_FAULT_ERROR_CODE_MASK)) !=
                    (uint32_t)vf(v, VF_PAGE_FAULT_ERROR_CODE_MATCH);
        bit = bit ^ ineq;
    }
    if (!bit)
        return;
    const struct decoded_insn *d = v->insn;
    unsigned type = INTR_HW_EXC;
    uint32_t len = 0;
    if (d && (vector == EMU_BP || vector == EMU_OF) && (d->op == DOP_INT3 || d->op == DOP_INTO))
        type = INTR_SOFT_EXC, len = d->length;
    else if (d && vector == EMU_DB && d->op == DOP_INT1 && v->cpu.rip == v->insn_rip)
        type = INTR_PRIV_SW_EXC, len = d->length;
    uint32_t info = INTR_VALID | vector | type << 8 | (err != EMU_NO_ERRCODE ? INTR_HAS_ERROR : 0);
    uint64_t q = vector == EMU_PF ? (has_cr2 ? cr2 : v->cpu.cr2) : 0;
    /* hardware never reports error-code bits 31:16 (KVM truncates to u16 likewise) */
    vmexit(v, EXIT_EXCEPTION_NMI, q, info, (uint16_t)err, len);
}

/* nested_vmx_triple_fault: a triple fault in L2 always exits (reason 2). */
static void vmx_shutdown(struct emu_vcpu *v)
{
    vmexit(v, EXIT_TRIPLE_FAULT, 0, 0, 0, 0);
}

/* VM-entry event injection (SDM 27.6), at L2's first instruction boundary. */
static void deliver_injected(struct emu_vcpu *v)
{
    struct emu_vmx *x = &v->nested.vmx;
    uint32_t info = (uint32_t)vf(v, VF_VM_ENTRY_INTR_INFO_FIELD);
    uint8_t vec = info & 0xff;
    unsigned type = (info >> 8) & 7;
    uint32_t err = (info & INTR_HAS_ERROR) ? (uint32_t)vf(v, VF_VM_ENTRY_EXCEPTION_ERROR_CODE)
                                           : EMU_NO_ERRCODE;
    uint64_t ret = v->cpu.rip + vf(v, VF_VM_ENTRY_INSTRUCTION_LEN);
    x->inj_pending = false;
    v->cpu.halted = false;
    switch (type) {
    case INTR_NMI:
        emu_take_nmi(v);
        return;
    case INTR_HW_EXC:
        emu_take_injected(v, vec, EMU_NX_EV_EXCEPTION, err, v->cpu.rip);
        return;
    case INTR_SOFT_INT:
    case INTR_PRIV_SW_EXC:
    case INTR_SOFT_EXC:
        emu_take_injected(v, vec, EMU_NX_EV_SOFT, err, ret);
        return;
    default:
        emu_take_external(v, vec);
        return;
    }
}

static uint64_t l1_tsc(struct emu_vcpu *v)
{
    return emu_read_l1_tsc(v);
}

/* An L2 RDTSC/RDTSCP reads the TSC, then looks at the preemption timer once more: the
 * timer is otherwise checked at the event checks between blocks, and a host thread
 * descheduled between that check and the read would let L2 see a TSC past the deadline,
 * which hardware (counting down at every instruction) never shows
 * (vmx_preemption_timer_test: "L2 PT expiry TSC > L2 TSC deadline" under host load).
 * Reading first keeps it exact: if the timer has not expired now, it had not at the read. */
void emu_vmx_timer_after_tsc_read(struct emu_vcpu *v)
{
    struct emu_vmx *x = &v->nested.vmx;
    if (v->nested.guest_mode && v->nested.ops == &emu_vmx_ops && x->timer_on &&
        l1_tsc(v) >= x->timer_deadline) {
        x->timer_on = false;
        vmexit(v, EXIT_PREEMPTION_TIMER, 0, 0, 0, 0); /* before the RDTSC retires */
    }
}

/* vmx_check_nested_events at an instruction boundary in L2: injected event, preemption
 * timer, NMI (exit or delivery), NMI window, external interrupt (exit or delivery),
 * interrupt window. */
static bool vmx_events(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    struct emu_events *ev = &c->ev;
    struct emu_vmx *x = &v->nested.vmx;
    if (x->inj_pending) {
        deliver_injected(v);
        return true;
    }
    if (x->timer_on && l1_tsc(v) >= x->timer_deadline) {
        x->timer_on = false;
        vmexit(v, EXIT_PREEMPTION_TIMER, 0, 0, 0, 0);
    }
    uint32_t pn = pin(v), p = proc(v);
    bool exit_nmi = pn & VMX_PIN_NMI_EXITING;
    bool nmi = ev->nmi_pending || ev->nmi_injected;
    if (!nmi && v->has_irq_ops && v->irq_ops.nmi_pending && (exit_nmi || (!ev->nmi_masked && !ev->int_shadow)))
        nmi = v->irq_ops.nmi_pending(v->irq_ops.ctx, c);
    if (nmi && exit_nmi) {
        /* the NMI is consumed by the exit and blocks NMIs in L1 (KVM vmx_set_nmi_mask) */
        ev->nmi_pending = ev->nmi_injected = false;
        x->l1_nmi_masked = true;
        vmexit(v, EXIT_EXCEPTION_NMI, 0, INTR_VALID | INTR_NMI << 8 | EMU_NMI, 0, 0);
    }
    if (nmi && !ev->nmi_masked && !ev->int_shadow) {
        emu_take_nmi(v);
        return true;
    }
    if ((p & VMX_PROC_NMI_WINDOW) && !ev->nmi_masked && !(ev->int_shadow & SHADOW_MOV_SS))
        vmexit(v, EXIT_NMI_WINDOW, 0, 0, 0, 0);
    bool exit_intr = pn & VMX_PIN_EXT_INTR;
    bool l2_open = (c->rflags & EMU_FL_IF) && !ev->int_shadow;
    if (exit_intr || l2_open) {
        if (ev->irq_injected) {
            if (exit_intr) {
                ev->irq_injected = false;
                vmexit(v, EXIT_EXTERNAL_INTERRUPT, 0, INTR_VALID | ev->irq_vector, 0, 0);
            }
            ev->irq_injected = false;
            c->halted = false;
            emu_take_external(v, ev->irq_vector);
            return true;
        }
        int vec = v->has_irq_ops && v->irq_ops.pending ? v->irq_ops.pending(v->irq_ops.ctx, c) : -1;
        if (vec >= 0) {
            if (exit_intr) {
                /* "acknowledge interrupt on exit" takes the vector from the APIC; without
                 * it the interrupt stays pending for L1 (SDM 27.2.2) */
                uint32_t info = 0;
                if (vf(v, VF_VM_EXIT_CONTROLS) & VMX_EXIT_ACK_INTR) {
                    if (v->irq_ops.ack)
                        v->irq_ops.ack(v->irq_ops.ctx, c, vec);
                    info = INTR_VALID | (uint32_t)vec;
                }
                vmexit(v, EXIT_EXTERNAL_INTERRUPT, 0, info, 0, 0);
            }
            if (v->irq_ops.ack)
                v->irq_ops.ack(v->irq_ops.ctx, c, vec);
            c->halted = false;
            emu_take_external(v, (uint8_t)vec);
            return true;
        }
    }
    if ((p & VMX_PROC_INTR_WINDOW) && l2_open)
        vmexit(v, EXIT_INTERRUPT_WINDOW, 0, 0, 0, 0);
    if (x->timer_on)
        v->kick = 1; /* look at the timer again at the next boundary */
    return false;
}

/* ---- EPT (SDM 29.3.2-29.3.3; KVM's nested EPT MMU, paging_tmpl.h with EPT entries) ---- */

enum { EXIT_EPT_VIOLATION = 48, EXIT_EPT_MISCONFIG = 49 };

static bool ept_misconfigured(struct emu_vcpu *v, uint64_t e, int level)
{
    unsigned rwx = e & 7;
    if (rwx == 2 || rwx == 6)
        return true; /* writable without readable */
    if (rwx == 4 && !(v->cpu.vmx_caps.ept_vpid & VMX_EPT_EXEC_ONLY))
        return true;
    if (e & 0x000fffffffffffffull & ~((1ull << maxphyaddr(v)) - 1) & ~0xfffull)
        return true; /* address bits beyond MAXPHYADDR */
    bool leaf = level == 1 || ((level == 2 || level == 3) && (e & 0x80));
    if (level == 4 && (e & 0xf8))
        return true; /* PML4E: bits 7:3 reserved */
    if (level == 3 && (e & 0x80) && !(v->cpu.vmx_caps.ept_vpid & VMX_EPT_1G))
        return true;
    if (!leaf)
        return (e & 0x78) != 0; /* non-leaf: bits 6:3 reserved */
    unsigned mt = (e >> 3) & 7;
    if (mt == 2 || mt == 3 || mt == 7)
        return true; /* reserved memory types */
    if (level == 3 && (e & 0x3ffff000ull))
        return true;
    if (level == 2 && (e & 0x1ff000ull))
        return true;
    return false;
}

/* "Virtualize APIC accesses" without TPR shadow / APIC-register virtualization: every
 * linear access whose physical address is in the APIC-access page is an APIC-access VM
 * exit (reason 44) before it happens (SDM 30.4.1, 30.4.3; qualification table 28-6:
 * offset, access type 0 read / 1 write / 2 fetch / 3 during event delivery). */
static void apic_access_check(struct emu_vcpu *v, uint64_t pa, unsigned acc)
{
    if (!(proc2(v) & VMX_PROC2_APIC_ACCESS) || !v->in_run ||
        (pa & ~0xfffull) != (vf(v, VF_APIC_ACCESS_ADDR) & ~0xfffull))
        return;
    unsigned kind = acc & EMU_ACC_KIND;
    uint64_t type = v->delivering ? 3 : kind == EMU_ACC_WRITE ? 1 : kind == EMU_ACC_FETCH ? 2 : 0;
    vmexit(v, 44, (pa & 0xfff) | type << 12, 0, 0, 0);
}

static bool vmx_tdp(struct emu_vcpu *v, uint64_t *gpa, unsigned acc, uint64_t lin, bool final)
{
    if (!v->nested.vmx.ept_on) {
        if (final)
            apic_access_check(v, *gpa, acc);
        return true;
    }
    uint64_t a = *gpa, pa_mask = ((1ull << maxphyaddr(v)) - 1) & ~0xfffull;
    uint64_t table = vf(v, VF_EPT_POINTER) & pa_mask;
    unsigned kind = acc & EMU_ACC_KIND;
    unsigned need = kind == EMU_ACC_WRITE ? 2 : kind == EMU_ACC_FETCH ? 4 : 1;
    unsigned perms = 7;
    uint64_t e = 0, page = 4096;
    bool violation = false;
    for (int level = 4; level >= 1; level--) {
        unsigned idx = (a >> (12 + 9 * (level - 1))) & 0x1ff;
        if (!emu_phys_read(v, table + idx * 8, &e, 8)) {
            if (v->in_run)
                emu_unimplemented(v); /* EPT tables outside RAM */
            return false;
        }
        if (!(e & 7)) {
            perms = 0;
            violation = true; /* not present */
            break;
        }
        if (ept_misconfigured(v, e, level)) {
            if (!v->in_run)
                return false;
            vf_set(v, VF_GUEST_PHYSICAL_ADDRESS, a);
            vmexit(v, EXIT_EPT_MISCONFIG, 0, 0, 0, 0);
        }
        perms &= e & 7;
        if (level == 1 || (e & 0x80)) {
            page = level == 3 ? 1ull << 30 : level == 2 ? 2ull << 20 : 4096;
            break;
        }
        table = e & pa_mask;
    }
    if (violation || !(perms & need)) {
        if (!v->in_run)
            return false;
        /* qualification (SDM table 28-7): the access (read/write/fetch), the effective
         * permissions, guest-linear valid, and whether it was the final translation */
        uint64_t q = need | (uint64_t)perms << 3 | 1u << 7 | (final ? 1u << 8 : 0);
        vf_set(v, VF_GUEST_PHYSICAL_ADDRESS, a);
        vf_set(v, VF_GUEST_LINEAR_ADDRESS, lin);
        vmexit(v, EXIT_EPT_VIOLATION, q, 0, 0, 0);
    }
    *gpa = ((e & pa_mask) & ~(page - 1)) | (a & (page - 1));
    if (final)
        apic_access_check(v, *gpa, acc);
    return true;
}

/* nested_vmx_check_eptp: WB memory type, 4-level walk, A/D only if offered, reserved 0 */
static bool eptp_ok(struct emu_vcpu *v, uint64_t eptp)
{
    uint64_t caps = v->cpu.vmx_caps.ept_vpid;
    unsigned mt = eptp & 7;
    if (!((mt == 6 && (caps & VMX_EPT_WB)) || (mt == 0 && (caps & (1ull << 8)))))
        return false;
    if (((eptp >> 3) & 7) != 3 || !(caps & VMX_EPT_WALK_4))
        return false;
    if ((eptp & (1u << 6)) && !(caps & VMX_EPT_AD))
        return false;
    if ((eptp & 0xf80) || !legal_gpa(v, eptp & ~0xfffull))
        return false;
    return true;
}

const struct emu_nested_ops emu_vmx_ops = {
    .insn = vmx_insn, .msr = vmx_msr, .io = vmx_io, .cr = vmx_cr, .dr = vmx_dr,
    .cr_read = vmx_cr_read, .cr_write = vmx_cr_write, .tdp = vmx_tdp,
    .exception = vmx_exception, .shutdown = vmx_shutdown, .events = vmx_events,
};

/* ---- CR0/CR4 in VMX operation ---- */

static bool fixed_ok(uint64_t val, uint64_t fixed0, uint64_t fixed1)
{
    return (val & fixed0) == fixed0 && !(val & ~fixed1);
}

bool emu_vmx_cr_valid(struct emu_vcpu *v, unsigned cr, uint64_t val)
{
    const struct emu_vmx_caps *k = &v->cpu.vmx_caps;
    if (!v->cpu.vmxon)
        return true;
    if (cr == 0)
        return fixed_ok(val, k->cr0_fixed0, k->cr0_fixed1);
    if (cr == 4)
        return fixed_ok(val, k->cr4_fixed0, k->cr4_fixed1);
    return true;
}

/* ---- the VMX instructions ---- */

/* SDM 31.3 common checks: #UD outside VMX operation or in real / virtual-8086 /
 * compatibility mode; a VM exit in VMX non-root operation; #GP(0) above CPL 0
 * (nested_vmx_check_permission). */
static void check_permission(struct emu_vcpu *v, uint32_t exit_reason, uint32_t info, uint64_t qual)
{
    struct cpu *c = &v->cpu;
    if (!c->vmxon || !(c->cr0 & CR0_PE) || (c->rflags & EMU_FL_VM) ||
        ((c->efer & EFER_LMA) && !c->seg[EMU_CS].l))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    if (v->nested.guest_mode) {
        /* VMX instructions in L2 always exit to L1 (nested_vmx_l1_wants_exit) */
        v->nested.vmx.exit_insn_info = info;
        insn_exit(v, exit_reason, qual);
    }
    if (c->cpl != 0)
        emu_raise(v, EMU_GP, 0);
}

/* The 64-bit VMCS pointer operand (nested_vmx_get_vmptr). */
static uint64_t read_ptr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    if (d->ops[0].kind != DOPND_MEM)
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    return emu_mem_read(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), 8);
}

/* Write the cached vmcs12 back to L1's memory (nested_release_vmcs12). */
static void release_vmcs12(struct emu_vcpu *v)
{
    struct emu_vmx *x = &v->nested.vmx;
    if (x->vmptr == INVALID_PTR)
        return;
    emu_phys_write(v, x->vmptr, x->vmcs12, sizeof x->vmcs12);
    x->vmptr = INVALID_PTR;
}

/* free_nested: leave VMX operation (also for KVM_SET_NESTED_STATE and FEATURE_CONTROL). */
static void leave_vmx(struct emu_vcpu *v)
{
    if (v->nested.guest_mode && v->nested.ops == &emu_vmx_ops)
        load_host(v, false); /* vmx_leave_nested: nested_vmx_vmexit(-1) */
    release_vmcs12(v);
    v->cpu.vmxon = false;
    v->nested.vmx.smm_vmxon = false; /* free_nested; smm.guest_mode stays, as in KVM */
    v->nested.vmx.vmxon_ptr = INVALID_PTR;
}

/* A VMX L2 runs on L1's EPT: KVM's vcpu->arch.mmu is then the nested (guest) MMU, not
 * the TDP one (softkvm offers SVM's L1 no NPT, so only VMX has this). */
bool emu_nested_tdp_active(struct emu_vcpu *v)
{
    return v->nested.guest_mode && v->nested.ops == &emu_vmx_ops && v->nested.vmx.ept_on;
}

/* kvm_leave_nested for VMX (vmx_leave_nested): L2 ends as nested_vmx_vmexit(-1) ends it,
 * then free_nested ends VMX operation too (also one SMM suspended). */
void emu_vmx_leave_guest(struct emu_vcpu *v)
{
    if (v->cpu.vmxon || v->nested.vmx.smm_vmxon)
        leave_vmx(v);
}

static int h_vmxon(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    struct emu_vmx *x = &v->nested.vmx;
    /* CR4.VMXE (checked before the VM exit, KVM handle_vmxon) and the mode checks */
    if (d->ops[0].kind != DOPND_MEM || !(c->cr4 & CR4_VMXE) || !(c->cr0 & CR0_PE) ||
        (c->rflags & EMU_FL_VM) || ((c->efer & EFER_LMA) && !c->seg[EMU_CS].l))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    if (v->nested.guest_mode) {
        x->exit_insn_info = insn_info(d, 0, -1);
        insn_exit(v, EXIT_VMON, mem_disp(d, 0));
    }
    if (c->cpl != 0)
        emu_raise(v, EMU_GP, 0);
    if (c->vmxon)
        return fail(v, VMXERR_VMXON_IN_ROOT);
    /* invalid CR0/CR4 and FEATURE_CONTROL (LOCKED | VMX outside SMX) are #GP */
    if (!fixed_ok(c->cr0, c->vmx_caps.cr0_fixed0, c->vmx_caps.cr0_fixed1) ||
        !fixed_ok(c->cr4, c->vmx_caps.cr4_fixed0, c->vmx_caps.cr4_fixed1) ||
        (c->feature_control & 5) != 5)
        emu_raise(v, EMU_GP, 0);
    uint64_t ptr = read_ptr(v, d);
    uint32_t rev = 0;
    if (!page_ok(v, ptr) || !emu_phys_read(v, ptr, &rev, 4) || rev != VMX_VMCS12_REVISION)
        return fail_invalid(v);
    x->vmxon_ptr = ptr;
    x->vmptr = INVALID_PTR;
    c->vmxon = true;
    return succeed(v);
}

static int h_vmxoff(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    check_permission(v, EXIT_VMOFF, 0, 0);
    leave_vmx(v);
    return succeed(v);
}

static int h_vmclear(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_vmx *x = &v->nested.vmx;
    check_permission(v, EXIT_VMCLEAR, insn_info(d, 0, -1), mem_disp(d, 0));
    uint64_t ptr = read_ptr(v, d);
    if (!page_ok(v, ptr))
        return fail(v, VMXERR_VMCLEAR_INVALID_ADDRESS);
    if (ptr == x->vmxon_ptr)
        return fail(v, VMXERR_VMCLEAR_VMXON_POINTER);
    if (ptr == x->vmptr)
        release_vmcs12(v);
    /* launch state "clear" in the VMCS region (KVM writes vmcs12->launch_state = 0) */
    uint32_t zero = 0;
    emu_phys_write(v, ptr + 8, &zero, 4);
    return succeed(v);
}

static int h_vmptrld(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct emu_vmx *x = &v->nested.vmx;
    check_permission(v, EXIT_VMPTRLD, insn_info(d, 0, -1), mem_disp(d, 0));
    uint64_t ptr = read_ptr(v, d);
    if (!page_ok(v, ptr))
        return fail(v, VMXERR_VMPTRLD_INVALID_ADDRESS);
    if (ptr == x->vmxon_ptr)
        return fail(v, VMXERR_VMPTRLD_VMXON_POINTER);
    if (ptr != x->vmptr) {
        uint8_t page[4096];
        /* an unbacked page reads as all ones: a bad revision (KVM handle_vmptrld) */
        if (!emu_phys_read(v, ptr, page, sizeof page))
            memset(page, 0xff, sizeof page);
        uint32_t rev;
        memcpy(&rev, page, 4);
        /* bit 31 = shadow VMCS, which needs VMCS shadowing in IA32_VMX_PROCBASED_CTLS2 */
        if ((rev & 0x7fffffffu) != VMX_VMCS12_REVISION ||
            ((rev >> 31) && !(v->cpu.vmx_caps.proc2_hi & VMX_PROC2_SHADOW_VMCS)))
            return fail(v, VMXERR_VMPTRLD_BAD_REVISION);
        release_vmcs12(v);
        memcpy(x->vmcs12, page, sizeof page);
        x->vmptr = ptr;
    }
    return succeed(v);
}

static int h_vmptrst(struct emu_vcpu *v, const struct decoded_insn *d)
{
    check_permission(v, EXIT_VMPTRST, insn_info(d, 0, -1), mem_disp(d, 0));
    if (d->ops[0].kind != DOPND_MEM)
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    emu_mem_write(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), 8, v->nested.vmx.vmptr);
    return succeed(v);
}

/* VMREAD/VMWRITE in L2 (nested_vmx_exit_handled_vmcs_access): without VMCS shadowing, or
 * with the field's bit set in L1's VMREAD/VMWRITE bitmap, they exit; otherwise they use
 * the shadow VMCS. Returns the vmcs12 image the instruction works on, NULL = VMfailInvalid. */
static uint8_t *vmcs_access_target(struct emu_vcpu *v, const struct decoded_insn *d, bool write)
{
    struct cpu *c = &v->cpu;
    struct emu_vmx *x = &v->nested.vmx;
    if (!c->vmxon || !(c->cr0 & CR0_PE) || (c->rflags & EMU_FL_VM) ||
        ((c->efer & EFER_LMA) && !c->seg[EMU_CS].l))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    unsigned memop = write ? 1 : 0, regop = write ? 0 : 1;
    if (v->nested.guest_mode) {
        uint64_t field = emu_gpr_read(v, d->ops[regop].reg, 8);
        bool exits = true;
        uint8_t b;
        if ((proc2(v) & VMX_PROC2_SHADOW_VMCS) && !(field >> 15) &&
            emu_phys_read(v, vf(v, write ? VF_VMWRITE_BITMAP : VF_VMREAD_BITMAP) + field / 8, &b, 1))
            exits = (b >> (field & 7)) & 1;
        if (exits) {
            x->exit_insn_info = insn_info(d, (int)memop, (int)regop);
            insn_exit(v, write ? EXIT_VMWRITE : EXIT_VMREAD, mem_disp(d, memop));
        }
    }
    if (c->cpl != 0)
        emu_raise(v, EMU_GP, 0);
    if (x->vmptr == INVALID_PTR)
        return NULL;
    if (v->nested.guest_mode)
        return x->shadow_loaded ? x->shadow12 : NULL; /* link pointer INVALID_GPA */
    return x->vmcs12;
}

/* VMREAD Ey, Gy: field encoding in the register operand (ops[1]) */
static int h_vmread(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint8_t *img = vmcs_access_target(v, d, false);
    if (!img)
        return fail_invalid(v);
    uint64_t encq = emu_opnd_read(v, d, 1);
    uint32_t enc = (uint32_t)encq;
    unsigned off, w;
    if (encq >> 32 || !emu_vmcs_locate(enc, &off, &w))
        return fail(v, VMXERR_UNSUPPORTED_COMPONENT);
    emu_opnd_write(v, d, 0, emu_vmcs_get(img, enc));
    return succeed(v);
}

/* VMWRITE Gy, Ey: field encoding in ops[0], value in ops[1] */
static int h_vmwrite(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint8_t *img = vmcs_access_target(v, d, true);
    if (!img)
        return fail_invalid(v);
    uint64_t val = emu_opnd_read(v, d, 1);
    uint64_t encq = emu_opnd_read(v, d, 0);
    uint32_t enc = (uint32_t)encq;
    unsigned off, w;
    if (encq >> 32 || !emu_vmcs_locate(enc, &off, &w))
        return fail(v, VMXERR_UNSUPPORTED_COMPONENT);
    /* exit-information fields are writable with IA32_VMX_MISC[29] */
    if (emu_vmcs_readonly(enc) && !(v->cpu.vmx_caps.misc & (1u << 29)))
        return fail(v, VMXERR_VMWRITE_READ_ONLY);
    /* KVM drops the reserved bits of the segment access rights, as some CPUs do */
    if (enc >= VF_GUEST_ES_AR_BYTES && enc <= VF_GUEST_TR_AR_BYTES)
        val &= 0x1f0ff;
    emu_vmcs_put(img, enc, val);
    return succeed(v);
}

/* INVEPT (handle_invept): single-context (1) and global (2) as IA32_VMX_EPT_VPID_CAP
 * offers them; the TLB holds combined translations only, so both flush it. */
static int h_invept(struct emu_vcpu *v, const struct decoded_insn *d)
{
    check_permission(v, EXIT_INVEPT, insn_info(d, 1, 0), mem_disp(d, 1));
    uint64_t caps = v->cpu.vmx_caps.ept_vpid;
    if (!(proc2_cap(v) & VMX_PROC2_EPT) || !(caps & VMX_EPT_INVEPT))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    uint64_t type = emu_gpr_read(v, d->ops[0].reg, v->mode == DECODER_MODE_64 ? 8 : 4);
    uint8_t desc[16];
    emu_mem_read_buf(v, d->ops[1].seg, emu_opnd_ea(v, d, 1), desc, sizeof desc);
    uint64_t eptp;
    memcpy(&eptp, desc, 8);
    uint32_t types = (uint32_t)(caps >> 24) & 6; /* bit 25: single-context, bit 26: global */
    if (type > 2 || !((types >> type) & 1))
        return fail(v, VMXERR_INVALID_OPERAND);
    if (type == 1 && !eptp_ok(v, eptp))
        return fail(v, VMXERR_INVALID_OPERAND);
    emu_tlb_flush(v);
    return succeed(v);
}

/* INVVPID (handle_invvpid): types 0-3 offered; the TLB is untagged, so every valid
 * request flushes everything. */
static int h_invvpid(struct emu_vcpu *v, const struct decoded_insn *d)
{
    check_permission(v, EXIT_INVVPID, insn_info(d, 1, 0), mem_disp(d, 1));
    uint64_t type = emu_gpr_read(v, d->ops[0].reg, v->mode == DECODER_MODE_64 ? 8 : 4);
    uint8_t desc[16];
    emu_mem_read_buf(v, d->ops[1].seg, emu_opnd_ea(v, d, 1), desc, sizeof desc);
    uint64_t vpid, lin;
    memcpy(&vpid, desc, 8);
    memcpy(&lin, desc + 8, 8);
    uint32_t types = (uint32_t)(v->cpu.vmx_caps.ept_vpid >> 40) & 0xf;
    if (type > 3 || !((types >> type) & 1))
        return fail(v, VMXERR_INVALID_OPERAND);
    if (vpid >> 16)
        return fail(v, VMXERR_INVALID_OPERAND); /* reserved descriptor bits */
    if (type == 0 && (!vpid || !emu_canonical(lin)))
        return fail(v, VMXERR_INVALID_OPERAND);
    if ((type == 1 || type == 3) && !vpid)
        return fail(v, VMXERR_INVALID_OPERAND);
    emu_tlb_flush(v);
    return succeed(v);
}

/* VMFUNC: no VM functions are enabled (secondary control 13 not offered): #UD. */
static int h_vmfunc(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
}

/* ---- VMLAUNCH / VMRESUME ---- */

/* nested_vmx_check_controls (nested_check_vm_execution/exit/entry_controls) */
static bool check_controls(struct emu_vcpu *v)
{
    const struct emu_vmx_caps *k = &v->cpu.vmx_caps;
    uint32_t pn = pin(v), p = proc(v), p2 = (uint32_t)vf(v, VF_SECONDARY_VM_EXEC_CONTROL);
    uint32_t ex = (uint32_t)vf(v, VF_VM_EXIT_CONTROLS), en = (uint32_t)vf(v, VF_VM_ENTRY_CONTROLS);
    if (!ctl_ok(pn, k->pin_lo, k->pin_hi) || !ctl_ok(p, k->proc_lo, k->proc_hi))
        return false;
    if ((p & VMX_PROC_SECONDARY) && !ctl_ok(p2, k->proc2_lo, k->proc2_hi))
        return false;
    if (!(p & VMX_PROC_SECONDARY))
        p2 = 0;
    if (vf(v, VF_CR3_TARGET_COUNT) > ((k->misc >> 16) & 0x1ff))
        return false;
    if ((p & VMX_PROC_IO_BITMAPS) &&
        (!page_ok(v, vf(v, VF_IO_BITMAP_A)) || !page_ok(v, vf(v, VF_IO_BITMAP_B))))
        return false;
    if ((p & VMX_PROC_MSR_BITMAPS) && !page_ok(v, vf(v, VF_MSR_BITMAP)))
        return false;
    /* nested_vmx_check_nmi_controls */
    if (!(pn & VMX_PIN_NMI_EXITING) && (pn & VMX_PIN_VIRTUAL_NMIS))
        return false;
    if (!(pn & VMX_PIN_VIRTUAL_NMIS) && (p & VMX_PROC_NMI_WINDOW))
        return false;
    if ((p2 & VMX_PROC2_VPID) && !vf(v, VF_VIRTUAL_PROCESSOR_ID))
        return false;
    if ((p2 & VMX_PROC2_EPT) && !eptp_ok(v, vf(v, VF_EPT_POINTER)))
        return false;
    if ((p2 & VMX_PROC2_APIC_ACCESS) && !page_ok(v, vf(v, VF_APIC_ACCESS_ADDR)))
        return false; /* nested_vmx_check_apic_access_controls */
    if ((p2 & VMX_PROC2_SHADOW_VMCS) &&
        (!page_ok(v, vf(v, VF_VMREAD_BITMAP)) || !page_ok(v, vf(v, VF_VMWRITE_BITMAP))))
        return false; /* nested_vmx_check_shadow_vmcs_controls */
    /* exit controls; MSR-store/load lists: 16-byte aligned, in MAXPHYADDR */
    if (!ctl_ok(ex, k->exit_lo, k->exit_hi) || !ctl_ok(en, k->entry_lo, k->entry_hi))
        return false;
    static const struct { uint16_t count, addr; } lists[] = {
        {VF_VM_EXIT_MSR_STORE_COUNT, VF_VM_EXIT_MSR_STORE_ADDR},
        {VF_VM_EXIT_MSR_LOAD_COUNT, VF_VM_EXIT_MSR_LOAD_ADDR},
        {VF_VM_ENTRY_MSR_LOAD_COUNT, VF_VM_ENTRY_MSR_LOAD_ADDR}};
    uint32_t max_msrs = 512u * (((uint32_t)(k->misc >> 25) & 7) + 1);
    for (unsigned i = 0; i < 3; i++) {
        uint64_t n = vf(v, lists[i].count), a = vf(v, lists[i].addr);
        if (!n)
            continue;
        if (n > max_msrs || (a & 15) || !legal_gpa(v, a) || !legal_gpa(v, a + n * 16 - 1))
            return false;
    }
    /* event injection (nested_check_vm_entry_controls; SDM 26.2.1.3) */
    uint32_t info = (uint32_t)vf(v, VF_VM_ENTRY_INTR_INFO_FIELD);
    if (info & INTR_VALID) {
        unsigned type = (info >> 8) & 7, vec = info & 0xff;
        bool pe = vf(v, VF_GUEST_CR0) & CR0_PE;
        bool want_err = pe && type == INTR_HW_EXC &&
                        (vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21);
        uint32_t len = (uint32_t)vf(v, VF_VM_ENTRY_INSTRUCTION_LEN);
        if (type == 1 || type == INTR_OTHER || (info & 0x7ffff000u))
            return false; /* reserved type, MTF "other event" not offered, reserved bits */
        if ((type == INTR_NMI && vec != 2) || (type == INTR_HW_EXC && vec > 31))
            return false;
        if (!!(info & INTR_HAS_ERROR) != want_err)
            return false;
        if ((info & INTR_HAS_ERROR) && (vf(v, VF_VM_ENTRY_EXCEPTION_ERROR_CODE) >> 16))
            return false;
        if ((type == INTR_SOFT_INT || type == INTR_PRIV_SW_EXC || type == INTR_SOFT_EXC) &&
            (len < 1 || len > 15))
            return false; /* IA32_VMX_MISC[30] (zero-length) is not offered */
    }
    return true;
}

static bool canon(uint64_t a) { return emu_canonical(a); }

/* nested_vmx_check_address_space_size + nested_vmx_check_host_state (SDM 26.2.2-26.2.4) */
static bool check_host_state(struct emu_vcpu *v)
{
    const struct emu_vmx_caps *k = &v->cpu.vmx_caps;
    uint32_t ex = (uint32_t)vf(v, VF_VM_EXIT_CONTROLS), en = (uint32_t)vf(v, VF_VM_ENTRY_CONTROLS);
    bool ia32e = ex & VMX_EXIT_HOST_ADDR_SPACE;
    uint64_t cr0 = vf(v, VF_HOST_CR0), cr4 = vf(v, VF_HOST_CR4), cr3 = vf(v, VF_HOST_CR3);
    if (!!(v->cpu.efer & EFER_LMA) != ia32e)
        return false; /* L1 returns in the mode it runs in (address_space_size check) */
    if (!fixed_ok(cr0, k->cr0_fixed0, k->cr0_fixed1) || !fixed_ok(cr4, k->cr4_fixed0, k->cr4_fixed1) ||
        !legal_gpa(v, cr3 & ~0xfffull))
        return false;
    if (!canon(vf(v, VF_HOST_IA32_SYSENTER_ESP)) || !canon(vf(v, VF_HOST_IA32_SYSENTER_EIP)))
        return false;
    if ((ex & VMX_EXIT_LOAD_PAT)) {
        uint64_t pat = vf(v, VF_HOST_IA32_PAT);
        for (unsigned i = 0; i < 8; i++) {
            unsigned t = (pat >> (8 * i)) & 0xff;
            if (t == 2 || t == 3 || t > 7)
                return false;
        }
    }
    if (ia32e) {
        if (!(cr4 & CR4_PAE))
            return false;
    } else {
        if ((en & VMX_ENTRY_IA32E) || (cr4 & CR4_PCIDE) || (vf(v, VF_HOST_RIP) >> 32))
            return false;
    }
    static const uint16_t sels[] = {VF_HOST_ES_SELECTOR, VF_HOST_CS_SELECTOR, VF_HOST_SS_SELECTOR,
                                    VF_HOST_DS_SELECTOR, VF_HOST_FS_SELECTOR, VF_HOST_GS_SELECTOR,
                                    VF_HOST_TR_SELECTOR};
    for (unsigned i = 0; i < sizeof sels / sizeof sels[0]; i++)
        if (vf(v, sels[i]) & 7)
            return false; /* RPL and TI must be 0 */
    if (!vf(v, VF_HOST_CS_SELECTOR) || !vf(v, VF_HOST_TR_SELECTOR) ||
        (!vf(v, VF_HOST_SS_SELECTOR) && !ia32e))
        return false;
    if (!canon(vf(v, VF_HOST_FS_BASE)) || !canon(vf(v, VF_HOST_GS_BASE)) ||
        !canon(vf(v, VF_HOST_GDTR_BASE)) || !canon(vf(v, VF_HOST_IDTR_BASE)) ||
        !canon(vf(v, VF_HOST_TR_BASE)) || (ia32e && !canon(vf(v, VF_HOST_RIP))))
        return false;
    if (ex & VMX_EXIT_LOAD_EFER) {
        uint64_t efer = vf(v, VF_HOST_IA32_EFER);
        if ((efer & ~0xd01ull) || !!(efer & EFER_LMA) != ia32e || !!(efer & EFER_LME) != ia32e)
            return false;
    }
    return true;
}

/* nested_vmx_check_guest_state + the segment/RIP/RFLAGS checks hardware does on vmcs02
 * (SDM 26.3.1): 0 = valid, else the exit qualification + 1. */
static int check_guest_state(struct emu_vcpu *v)
{
    const struct emu_vmx_caps *k = &v->cpu.vmx_caps;
    uint32_t en = (uint32_t)vf(v, VF_VM_ENTRY_CONTROLS);
    bool ia32e = en & VMX_ENTRY_IA32E;
    uint64_t cr0 = vf(v, VF_GUEST_CR0), cr4 = vf(v, VF_GUEST_CR4);
    if (!fixed_ok(cr0, k->cr0_fixed0, k->cr0_fixed1) || !fixed_ok(cr4, k->cr4_fixed0, k->cr4_fixed1))
        return 1 + ENTRY_FAIL_DEFAULT;
    if (!legal_gpa(v, vf(v, VF_GUEST_CR3) & ~0xfffull))
        return 1 + ENTRY_FAIL_DEFAULT; /* nested_vmx_load_cr3: kvm_vcpu_is_legal_cr3 */
    if ((en & VMX_ENTRY_LOAD_DEBUG) && (vf(v, VF_GUEST_DR7) >> 32))
        return 1 + ENTRY_FAIL_DEFAULT;
    uint64_t link = vf(v, VF_VMCS_LINK_POINTER);
    if (link != INVALID_PTR) {
        /* nested_vmx_check_vmcs_link_ptr: the shadow bit matches "VMCS shadowing" */
        uint32_t rev = 0;
        bool shadow = proc2(v) & VMX_PROC2_SHADOW_VMCS;
        if (!page_ok(v, link) || !emu_phys_read(v, link, &rev, 4) ||
            (rev & 0x7fffffffu) != VMX_VMCS12_REVISION || (rev >> 31) != shadow)
            return 1 + ENTRY_FAIL_VMCS_LINK_PTR;
    }
    if (en & VMX_ENTRY_LOAD_EFER) {
        uint64_t efer = vf(v, VF_GUEST_IA32_EFER);
        if ((efer & ~0xd01ull) || !!(efer & EFER_LMA) != ia32e ||
            ((cr0 & CR0_PG) && !!(efer & EFER_LME) != ia32e))
            return 1 + ENTRY_FAIL_DEFAULT;
    }
    if (ia32e && (!(cr0 & CR0_PG) || !(cr4 & CR4_PAE)))
        return 1 + ENTRY_FAIL_DEFAULT;
    uint64_t act = vf(v, VF_GUEST_ACTIVITY_STATE);
    if (act != ACTIVITY_ACTIVE && !(act == ACTIVITY_HLT && (k->misc & (1u << 6))))
        return 1 + ENTRY_FAIL_DEFAULT;
    uint64_t rfl = vf(v, VF_GUEST_RFLAGS);
    if (!(rfl & EMU_FL_FIXED1) || (rfl & 0xffffffffffc08028ull) || (rfl & EMU_FL_VM))
        return 1 + ENTRY_FAIL_DEFAULT;
    uint32_t cs_ar = (uint32_t)vf(v, VF_GUEST_CS_AR_BYTES), tr_ar = (uint32_t)vf(v, VF_GUEST_TR_AR_BYTES);
    uint32_t ss_ar = (uint32_t)vf(v, VF_GUEST_SS_AR_BYTES);
    bool cs_l = ia32e && ((cs_ar >> 13) & 1);
    if (!cs_l && (vf(v, VF_GUEST_RIP) >> 32))
        return 1 + ENTRY_FAIL_DEFAULT;
    if (cs_l && !canon(vf(v, VF_GUEST_RIP)))
        return 1 + ENTRY_FAIL_DEFAULT;
    /* CS: usable, present, code; TR: usable busy TSS, S = 0; SS DPL = CS DPL (SDM 26.3.1.2) */
    if ((cs_ar & (1u << 16)) || !(cs_ar & (1u << 7)) || !(cs_ar & (1u << 3)) || !(cs_ar & (1u << 4)))
        return 1 + ENTRY_FAIL_DEFAULT;
    if ((tr_ar & (1u << 16)) || !(tr_ar & (1u << 7)) || (tr_ar & (1u << 4)) ||
        ((tr_ar & 0xf) != 11 && ((tr_ar & 0xf) != 3 || ia32e)) || (vf(v, VF_GUEST_TR_SELECTOR) & 4))
        return 1 + ENTRY_FAIL_DEFAULT;
    if (!(ss_ar & (1u << 16)) && ((ss_ar >> 5) & 3) != ((cs_ar >> 5) & 3))
        return 1 + ENTRY_FAIL_DEFAULT;
    uint32_t ldtr_ar = (uint32_t)vf(v, VF_GUEST_LDTR_AR_BYTES);
    if (!(ldtr_ar & (1u << 16)) && ((ldtr_ar & 0xf) != 2 || (ldtr_ar & (1u << 4)) || !(ldtr_ar & (1u << 7))))
        return 1 + ENTRY_FAIL_DEFAULT;
    if (!canon(vf(v, VF_GUEST_GDTR_BASE)) || !canon(vf(v, VF_GUEST_IDTR_BASE)) ||
        !canon(vf(v, VF_GUEST_FS_BASE)) || !canon(vf(v, VF_GUEST_GS_BASE)) ||
        !canon(vf(v, VF_GUEST_TR_BASE)))
        return 1 + ENTRY_FAIL_DEFAULT;
    return 0;
}

/* prepare_vmcs02 for what softkvm runs: L2's registers from the guest-state area. */
static void load_guest(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    uint32_t en = (uint32_t)vf(v, VF_VM_ENTRY_CONTROLS);
    bool ia32e = en & VMX_ENTRY_IA32E;
    for (unsigned i = 0; i < EMU_NSEGS; i++) {
        struct emu_segment *s = &c->seg[i];
        s->selector = (uint16_t)vf(v, gseg[i].sel);
        s->base = vf(v, gseg[i].base);
        s->limit = (uint32_t)vf(v, gseg[i].limit);
        seg_from_ar(s, (uint32_t)vf(v, gseg[i].ar));
    }
    c->gdtr.base = vf(v, VF_GUEST_GDTR_BASE), c->gdtr.limit = (uint16_t)vf(v, VF_GUEST_GDTR_LIMIT);
    c->idtr.base = vf(v, VF_GUEST_IDTR_BASE), c->idtr.limit = (uint16_t)vf(v, VF_GUEST_IDTR_LIMIT);
    /* nested_vmx_calc_efer */
    if (en & VMX_ENTRY_LOAD_EFER)
        c->efer = vf(v, VF_GUEST_IA32_EFER);
    else if (ia32e)
        c->efer |= EFER_LMA | EFER_LME;
    else
        c->efer &= ~(EFER_LMA | EFER_LME);
    c->cr0 = vf(v, VF_GUEST_CR0) | (1ull << 4);
    c->cr4 = vf(v, VF_GUEST_CR4);
    c->cr3 = vf(v, VF_GUEST_CR3);
    if (en & VMX_ENTRY_LOAD_DEBUG)
        c->dr[7] = vf(v, VF_GUEST_DR7) | 0x400;
    emu_debug_update(v);
    if (en & VMX_ENTRY_LOAD_PAT)
        c->pat = vf(v, VF_GUEST_IA32_PAT);
    c->sysenter_cs = (uint32_t)vf(v, VF_GUEST_SYSENTER_CS);
    c->sysenter_esp = vf(v, VF_GUEST_SYSENTER_ESP);
    c->sysenter_eip = vf(v, VF_GUEST_SYSENTER_EIP);
    c->gpr[EMU_RSP] = vf(v, VF_GUEST_RSP);
    c->rip = vf(v, VF_GUEST_RIP);
    v->next_rip = c->rip;
    emu_flags_set(v, vf(v, VF_GUEST_RFLAGS) | EMU_FL_FIXED1);
    uint32_t gi = (uint32_t)vf(v, VF_GUEST_INTERRUPTIBILITY_INFO);
    c->ev.int_shadow = (gi & GI_STI ? SHADOW_STI : 0) | (gi & GI_MOV_SS ? SHADOW_MOV_SS : 0);
    c->ev.nmi_masked = gi & GI_NMI;
    v->nested.vmx.ept_on = proc2(v) & VMX_PROC2_EPT;
    /* prepare_vmcs02: kvm_calc_nested_tsc_offset / _multiplier from VMCS12 (vmx.c
     * vmx_get_l2_tsc_offset / vmx_get_l2_tsc_multiplier: the multiplier only with both
     * TSC offsetting and "use TSC scaling") */
    uint64_t l1_off = emu_cpu_l1_tsc_offset(c);
    bool offsetting = proc(v) & VMX_PROC_TSC_OFFSET;
    c->l2_tsc_vmcs_offset = offsetting ? vf(v, VF_TSC_OFFSET) : 0;
    c->l2_tsc_mult = offsetting && (proc2(v) & VMX_PROC2_TSC_SCALING) ? vf(v, VF_TSC_MULTIPLIER)
                                                                      : EMU_TSC_ONE;
    emu_cpu_set_l1_tsc(c, l1_off, c->l1_tsc_ratio);
}

/* nested_cache_shadow_vmcs12 */
static void cache_shadow(struct emu_vcpu *v)
{
    struct emu_vmx *x = &v->nested.vmx;
    uint64_t link = vf(v, VF_VMCS_LINK_POINTER);
    x->shadow_loaded = (proc2(v) & VMX_PROC2_SHADOW_VMCS) && link != INVALID_PTR &&
                       emu_phys_read(v, link, x->shadow12, sizeof x->shadow12);
}

static int vmrun(struct emu_vcpu *v, const struct decoded_insn *d, bool launch)
{
    struct cpu *c = &v->cpu;
    struct emu_vmx *x = &v->nested.vmx;
    (void)d;
    check_permission(v, launch ? EXIT_VMLAUNCH : EXIT_VMRESUME, 0, 0);
    if (x->vmptr == INVALID_PTR)
        return fail_invalid(v);
    uint32_t rev;
    memcpy(&rev, x->vmcs12, 4);
    if (rev >> 31)
        return fail_invalid(v); /* a shadow VMCS cannot be launched (CF, no error number) */
    if (c->ev.int_shadow & SHADOW_MOV_SS)
        return fail(v, VMXERR_ENTRY_BLOCKED_BY_MOV_SS);
    if (!!launch_state(v) == launch)
        return fail(v, launch ? VMXERR_VMLAUNCH_NONCLEAR : VMXERR_VMRESUME_NONLAUNCHED);
    if (!check_controls(v))
        return fail(v, VMXERR_ENTRY_INVALID_CONTROL);
    if (!check_host_state(v))
        return fail(v, VMXERR_ENTRY_INVALID_HOST_STATE);
    /* From here a failure is a VM exit with bit 31 set: L1 continues at HOST_RIP. The
     * VMLAUNCH/VMRESUME itself completes first (RFLAGS cleared by the host state). */
    x->l1_nmi_masked = c->ev.nmi_masked;
    x->exit_insn_info = 0;
    v->nested.ops = &emu_vmx_ops;
    int bad = check_guest_state(v);
    if (bad)
        vmexit(v, EXIT_FAILED_ENTRY | EXIT_INVALID_STATE, (uint64_t)(bad - 1), 0, 0, 0);
    /* nested_get_vmcs12_pages: an APIC-access page outside guest RAM ends KVM_RUN with
     * KVM_INTERNAL_ERROR_EMULATION, the VMLAUNCH/VMRESUME not executed */
    uint8_t probe;
    if ((proc2(v) & VMX_PROC2_APIC_ACCESS) &&
        !emu_phys_read(v, vf(v, VF_APIC_ACCESS_ADDR) & ~0xfffull, &probe, 1))
        emu_unimplemented(v);
    load_guest(v);
    v->nested.guest_mode = true;
    v->nested.vectoring.valid = false;
    c->halted = false;
    emu_update_mode(v);
    c->cpl = c->seg[EMU_SS].dpl;
    emu_tlb_flush(v); /* every transition flushes: VPIDs need no tagging */
    if ((c->cr0 & CR0_PG) && (c->cr4 & CR4_PAE) && !(c->efer & EFER_LMA) &&
        !emu_try_load_pdptrs(v, c->cr3)) {
        v->nested.guest_mode = false;
        vmexit(v, EXIT_FAILED_ENTRY | EXIT_INVALID_STATE, ENTRY_FAIL_PDPTE, 0, 0, 0);
    }
    uint32_t bad_msr = load_msr_list(v, vf(v, VF_VM_ENTRY_MSR_LOAD_ADDR),
                                     (uint32_t)vf(v, VF_VM_ENTRY_MSR_LOAD_COUNT));
    if (bad_msr) {
        /* L2 never runs: L1's state comes back from the host-state area */
        v->nested.guest_mode = false;
        vmexit(v, EXIT_FAILED_ENTRY | EXIT_MSR_LOAD_FAIL, bad_msr, 0, 0, 0);
    }
    x->inj_pending = vf(v, VF_VM_ENTRY_INTR_INFO_FIELD) & INTR_VALID;
    cache_shadow(v);
    x->timer_on = false;
    if (pin(v) & VMX_PIN_PREEMPTION_TIMER) {
        x->timer_on = true;
        x->timer_deadline = (l1_tsc(v) >> VMX_MISC_TIMER_RATE << VMX_MISC_TIMER_RATE) +
                            ((uint64_t)(uint32_t)vf(v, VF_VMX_PREEMPTION_TIMER_VALUE) << VMX_MISC_TIMER_RATE);
    }
    /* HLT activity state: L2 waits unless an event is injected (KVM nested_vmx_run) */
    if (vf(v, VF_GUEST_ACTIVITY_STATE) == ACTIVITY_HLT && !x->inj_pending)
        c->halted = true;
    v->kick = 1;
    return EMU_H_NEXT;
}

static int h_vmlaunch(struct emu_vcpu *v, const struct decoded_insn *d) { return vmrun(v, d, true); }
static int h_vmresume(struct emu_vcpu *v, const struct decoded_insn *d) { return vmrun(v, d, false); }

const struct emu_handler_entry emu_vmx_handlers[] = {
    {DOP_VMXON, h_vmxon}, {DOP_VMXOFF, h_vmxoff}, {DOP_VMCLEAR, h_vmclear},
    {DOP_VMPTRLD, h_vmptrld}, {DOP_VMPTRST, h_vmptrst}, {DOP_VMREAD, h_vmread},
    {DOP_VMWRITE, h_vmwrite}, {DOP_VMLAUNCH, h_vmlaunch}, {DOP_VMRESUME, h_vmresume},
    {DOP_INVEPT, h_invept}, {DOP_INVVPID, h_invvpid}, {DOP_VMFUNC, h_vmfunc},
    {0, NULL},
};

/* ---- run entry ---- */

/* KVM's guest_state_valid for a restricted L2 (vmx.c tr_valid, cs/ss checks): state
 * user space put there with KVM_SET_SREGS that VMX could not run. */
static bool l2_state_runnable(struct emu_vcpu *v)
{
    const struct cpu *c = &v->cpu;
    const struct emu_segment *tr = &c->seg[EMU_TR], *cs = &c->seg[EMU_CS];
    if (!(c->cr0 & CR0_PE))
        return false; /* real mode needs unrestricted guest (not offered) */
    if (tr->unusable || (tr->selector & 4) || (tr->type != 3 && tr->type != 11) || !tr->present)
        return false;
    if (cs->unusable || !(cs->type & 8) || !cs->present)
        return false;
    return true;
}

/* msr/ saw a host FEATURE_CONTROL write of 0: vmx_leave_nested happens now */
static void honour_leave_request(struct emu_vcpu *v)
{
    if (v->cpu.vmx_leave_req) {
        v->cpu.vmx_leave_req = false;
        if (v->cpu.vmxon)
            leave_vmx(v);
    }
}

void emu_vmx_run_entry(struct emu_vcpu *v)
{
    honour_leave_request(v);
    if (v->nested.guest_mode && v->nested.ops == &emu_vmx_ops && !l2_state_runnable(v)) {
        /* KVM does not emulate invalid guest state for L2: it synthesizes a triple fault
         * exit (vmx.c __vmx_handle_exit, vmx_invalid_nested_guest_state) */
        v->delivering = false;
        save_guest(v);
        vf_set(v, VF_VM_EXIT_REASON, EXIT_TRIPLE_FAULT);
        vf_set(v, VF_EXIT_QUALIFICATION, 0);
        vf_set(v, VF_VM_EXIT_INTR_INFO, 0);
        vf_set(v, VF_IDT_VECTORING_INFO_FIELD, 0);
        vf_set(v, VF_VM_ENTRY_INTR_INFO_FIELD, vf(v, VF_VM_ENTRY_INTR_INFO_FIELD) & ~INTR_VALID);
        load_host(v, true);
    }
}

/* ---- KVM_GET/SET_NESTED_STATE (vmx_get_nested_state / vmx_set_nested_state) ---- */

static bool guest_has_vmx(struct emu_vcpu *v)
{
    const struct emu_cpuid_entry *e = emu_cpuid_find(v, 1, 0);
    return e && (e->ecx & (1u << 5));
}

void emu_vmx_get_nested_state(struct emu_vcpu *v, struct emu_vmx_nested_state *st, uint8_t *image)
{
    struct emu_vmx *x = &v->nested.vmx;
    *st = (struct emu_vmx_nested_state){.vmxon_pa = INVALID_PTR, .vmcs12_pa = INVALID_PTR,
                                        .size = 128};
    honour_leave_request(v); /* KVM left VMX operation at the FEATURE_CONTROL write */
    if (!guest_has_vmx(v) || !(v->cpu.vmxon || x->smm_vmxon))
        return;
    st->vmxon_pa = x->vmxon_ptr;
    st->vmcs12_pa = x->vmptr;
    if (x->vmptr != INVALID_PTR) {
        st->has_vmcs12 = true;
        st->size += EMU_VMX_VMCS12_SIZE;
    }
    st->smm_flags = (x->smm_vmxon ? EMU_VMX_NESTED_SMM_VMXON : 0) |
                    (x->smm_guest_mode ? EMU_VMX_NESTED_SMM_GUEST_MODE : 0);
    if (v->nested.guest_mode && v->nested.ops == &emu_vmx_ops) {
        st->flags |= EMU_NESTED_GUEST_MODE | (x->inj_pending ? EMU_NESTED_RUN_PENDING : 0);
        if ((pin(v) & VMX_PIN_PREEMPTION_TIMER) && x->timer_on) {
            st->vmx_flags |= EMU_VMX_PREEMPTION_TIMER_DEADLINE;
            st->preemption_timer_deadline = x->timer_deadline;
        }
        /* sync_vmcs02_to_vmcs12: the authoritative L2 state is the running one */
        save_guest(v);
        if (x->shadow_loaded) {
            st->has_shadow = true;
            st->size += EMU_VMX_VMCS12_SIZE;
        }
    }
    if (st->has_vmcs12)
        memcpy(image, x->vmcs12, EMU_VMX_VMCS12_SIZE);
    if (st->has_shadow)
        memcpy(image + EMU_VMX_VMCS12_SIZE, x->shadow12, EMU_VMX_VMCS12_SIZE);
}

int emu_vmx_set_nested_state(struct emu_vcpu *v, const struct emu_vmx_nested_state *st,
                             const uint8_t *image, bool copy_failed)
{
    struct cpu *c = &v->cpu;
    struct emu_vmx *x = &v->nested.vmx;
    if (st->vmxon_pa == INVALID_PTR) {
        if (st->smm_flags || st->vmcs12_pa != INVALID_PTR || (st->flags & ~EMU_VMX_NESTED_EVMCS))
            return -EINVAL;
    } else if (!guest_has_vmx(v) || !page_ok(v, st->vmxon_pa)) {
        return -EINVAL;
    }
    if ((st->smm_flags & EMU_VMX_NESTED_SMM_GUEST_MODE) && (st->flags & EMU_NESTED_GUEST_MODE))
        return -EINVAL;
    if (st->smm_flags & ~(EMU_VMX_NESTED_SMM_GUEST_MODE | EMU_VMX_NESTED_SMM_VMXON))
        return -EINVAL;
    if (st->vmx_flags & ~EMU_VMX_PREEMPTION_TIMER_DEADLINE)
        return -EINVAL;
    /* SMM suspends VMX: no guest mode or pending VM entry in SMM; outside SMM no SMM flags */
    if (c->ev.smm ? (st->flags & (EMU_NESTED_GUEST_MODE | EMU_NESTED_RUN_PENDING)) : st->smm_flags)
        return -EINVAL;
    if ((st->smm_flags & EMU_VMX_NESTED_SMM_GUEST_MODE) && !(st->smm_flags & EMU_VMX_NESTED_SMM_VMXON))
        return -EINVAL;
    if (st->flags & EMU_VMX_NESTED_EVMCS)
        return -EINVAL; /* no enlightened VMCS */
    if (c->vmxon || x->smm_vmxon)
        leave_vmx(v); /* vmx_leave_nested */
    if (st->vmxon_pa == INVALID_PTR)
        return 0;
    x->vmxon_ptr = st->vmxon_pa;
    x->vmptr = INVALID_PTR;
    c->vmxon = true; /* enter_vmx_operation */
    if (st->size < 128 + EMU_VMX_VMCS12_SIZE) {
        /* an empty VMXON state is allowed without a VMCS */
        if ((st->flags & (EMU_NESTED_GUEST_MODE | EMU_VMX_NESTED_EVMCS)) ||
            st->vmcs12_pa != INVALID_PTR)
            return -EINVAL;
        return 0;
    }
    if (st->vmcs12_pa == INVALID_PTR || st->vmcs12_pa == st->vmxon_pa || !page_ok(v, st->vmcs12_pa))
        return -EINVAL;
    x->vmptr = st->vmcs12_pa;
    if (st->smm_flags & EMU_VMX_NESTED_SMM_VMXON) { /* (only with a vmcs12, as in KVM) */
        x->smm_vmxon = true;
        c->vmxon = false;
        if (st->smm_flags & EMU_VMX_NESTED_SMM_GUEST_MODE)
            x->smm_guest_mode = true;
    }
    if (copy_failed || !image)
        return -EFAULT;
    memcpy(x->vmcs12, image, EMU_VMX_VMCS12_SIZE);
    uint32_t rev;
    memcpy(&rev, x->vmcs12, 4);
    if ((rev & 0x7fffffffu) != VMX_VMCS12_REVISION)
        return -EINVAL; /* hdr.revision_id is bits 30:0, bit 31 the shadow flag */
    if (!(st->flags & EMU_NESTED_GUEST_MODE))
        return 0;
    uint64_t link = vf(v, VF_VMCS_LINK_POINTER);
    bool shadow = (proc2(v) & VMX_PROC2_SHADOW_VMCS) && link != INVALID_PTR;
    if (shadow) {
        if (st->size < 128 + 2 * EMU_VMX_VMCS12_SIZE)
            return -EINVAL;
        if (copy_failed || !st->has_shadow)
            return -EFAULT;
        memcpy(&rev, image + EMU_VMX_VMCS12_SIZE, 4);
        if ((rev & 0x7fffffffu) != VMX_VMCS12_REVISION || !(rev >> 31))
            return -EINVAL;
    }
    if (!check_controls(v) || !check_host_state(v) || check_guest_state(v))
        return -EINVAL;
    /* nested_vmx_enter_non_root_mode(from_vmentry = false): L2's state from vmcs12 (synced
     * at the GET), the events user space restored kept */
    uint8_t int_shadow = c->ev.int_shadow;
    bool nmi = c->ev.nmi_masked;
    x->l1_nmi_masked = false;
    x->exit_insn_info = 0;
    v->nested.ops = &emu_vmx_ops;
    load_guest(v);
    c->ev.int_shadow = int_shadow;
    c->ev.nmi_masked = nmi;
    v->nested.guest_mode = true;
    v->nested.vectoring.valid = false;
    emu_update_mode(v);
    c->cpl = c->seg[EMU_SS].dpl;
    emu_tlb_flush(v);
    if ((c->cr0 & CR0_PG) && (c->cr4 & CR4_PAE) && !(c->efer & EFER_LMA))
        emu_try_load_pdptrs(v, c->cr3);
    x->shadow_loaded = shadow;
    if (shadow)
        memcpy(x->shadow12, image + EMU_VMX_VMCS12_SIZE, EMU_VMX_VMCS12_SIZE);
    x->inj_pending = (st->flags & EMU_NESTED_RUN_PENDING) &&
                     (vf(v, VF_VM_ENTRY_INTR_INFO_FIELD) & INTR_VALID);
    x->timer_on = pin(v) & VMX_PIN_PREEMPTION_TIMER;
    if (st->vmx_flags & EMU_VMX_PREEMPTION_TIMER_DEADLINE)
        x->timer_deadline = st->preemption_timer_deadline;
    else if (x->timer_on)
        x->timer_deadline = l1_tsc(v) +
                            ((uint64_t)(uint32_t)vf(v, VF_VMX_PREEMPTION_TIMER_VALUE) << VMX_MISC_TIMER_RATE);
    v->kick = 1;
    return 0;
}

/* ---- SMM (emu/smm.c calls these where 6.12 calls vmx_enter_smm / vmx_leave_smm) ---- */

/* vmx_enter_smm (vmx.c): an L2 ends as nested_vmx_vmexit(-1) ends it (its state synced to
 * vmcs12, no exit information for L1), and VMX operation is suspended until RSM. The
 * state-save map already holds L2's registers. */
bool emu_vmx_smm_enter(struct emu_vcpu *v)
{
    struct emu_vmx *x = &v->nested.vmx;
    x->smm_guest_mode = v->nested.guest_mode && v->nested.ops == &emu_vmx_ops;
    if (x->smm_guest_mode) {
        save_guest(v);
        load_host(v, false);
    }
    x->smm_vmxon = v->cpu.vmxon;
    v->cpu.vmxon = false;
    return true;
}

/* vmx_leave_smm: VMX operation back, and the L2 the SMI interrupted re-entered from vmcs12
 * (nested_vmx_enter_non_root_mode(from_vmentry = false), nested_run_pending = 1) before
 * RSM loads the map over it. False: the re-entry failed (RSM then shuts down). */
bool emu_vmx_smm_leave(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    struct emu_vmx *x = &v->nested.vmx;
    if (x->smm_vmxon) {
        c->vmxon = true;
        x->smm_vmxon = false;
    }
    if (!x->smm_guest_mode)
        return true;
    if (x->vmptr == INVALID_PTR)
        return false; /* from_vmentry = false: no VM-entry checks, only prepare_vmcs02 */
    x->l1_nmi_masked = c->ev.nmi_masked;
    x->exit_insn_info = 0;
    v->nested.ops = &emu_vmx_ops;
    load_guest(v);
    v->nested.guest_mode = true;
    v->nested.vectoring.valid = false;
    x->inj_pending = vf(v, VF_VM_ENTRY_INTR_INFO_FIELD) & INTR_VALID;
    cache_shadow(v);
    x->timer_on = pin(v) & VMX_PIN_PREEMPTION_TIMER;
    if (x->timer_on)
        x->timer_deadline = l1_tsc(v) +
                            ((uint64_t)(uint32_t)vf(v, VF_VMX_PREEMPTION_TIMER_VALUE) << VMX_MISC_TIMER_RATE);
    x->smm_guest_mode = false;
    v->kick = 1;
    return true;
}
