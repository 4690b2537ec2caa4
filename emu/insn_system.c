/* emu/: system instructions: HLT CLI STI CPUID RDTSC RDTSCP RDMSR WRMSR LGDT LIDT SGDT
 * SIDT LLDT LTR SLDT STR SMSW LMSW CLTS INVLPG INVPCID WBINVD INVD SWAPGS SYSCALL
 * SYSRET SYSENTER SYSEXIT RDFSBASE.. WRGSBASE RDPID CLAC STAC LAR LSL VERR VERW
 * RDRAND RDSEED VMCALL VMMCALL MONITOR MWAIT, and #UD for features our CPU model lacks (SDM vol.2/3).
 * CPL-0-only instructions are checked by the run loop (DFLAG_PRIVILEGED -> #GP(0)). */
#include <string.h>
#include <sys/random.h>

#include "emu/internal.h"
#include "emu/xsave.h"

#define CR0_TS (1ull << 3)
#define CR4_TSD (1ull << 2)
#define CR4_PCE (1ull << 8)
#define CR0_PE (1ull << 0)
#define CR4_FSGSBASE (1ull << 16)
#define CR4_OSXSAVE (1ull << 18)
#define CR4_UMIP (1ull << 11)
#define CR4_PCIDE (1ull << 17)
#define EFER_SCE (1ull << 0)

/* ---- interrupts flag / halt ---- */

static bool iopl_ok(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    if (!(c->cr0 & 1))
        return true;
    return (unsigned)c->cpl <= ((emu_flags(v) & EMU_FL_IOPL) >> 12);
}

static int h_cli(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    if (!iopl_ok(v))
        emu_raise(v, EMU_GP, 0);
    v->cpu.rflags &= ~(uint64_t)EMU_FL_IF;
    return EMU_H_NEXT;
}

static int h_sti(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    if (!iopl_ok(v))
        emu_raise(v, EMU_GP, 0);
    if (!(v->cpu.rflags & EMU_FL_IF))
        v->cpu.ev.int_shadow |= 1; /* KVM_X86_SHADOW_INT_STI: one-instruction window */
    v->cpu.rflags |= EMU_FL_IF;
    v->kick = 1;
    return EMU_H_NEXT;
}

static int h_hlt(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    emu_icpt_insn(v, EMU_NX_HLT, 0);
    v->cpu.halted = true; /* RIP moves past HLT; the run loop reports EMU_EXIT_HLT */
    return EMU_H_NEXT;
}

/* ---- CPUID (table from emu_set_cpuid, KVM_SET_CPUID2 semantics) ---- */

const struct emu_cpuid_entry *emu_cpuid_find(struct emu_vcpu *v, uint32_t fn, uint32_t idx)
{
    for (unsigned i = 0; i < v->ncpuid; i++) {
        const struct emu_cpuid_entry *e = &v->cpuid[i];
        if (e->function == fn && (!(e->flags & 1) || e->index == idx))
            return e;
    }
    return NULL;
}

bool emu_cpuid_has(struct emu_vcpu *v, uint32_t fn, uint32_t idx, unsigned reg, unsigned bit)
{
    const struct emu_cpuid_entry *e = emu_cpuid_find(v, fn, idx);
    if (!e)
        return false;
    uint32_t r[4] = {e->eax, e->ebx, e->ecx, e->edx};
    return (r[reg & 3] >> bit) & 1;
}

void emu_cpuid_runtime(const struct emu_vcpu *v, uint32_t fn, uint32_t idx, uint32_t r[4])
{
    const struct cpu *c = &v->cpu;
    if (fn == 1) {
        /* OSXSAVE mirrors CR4.OSXSAVE (KVM updates it at runtime) */
        r[2] = (r[2] & ~(1u << 27)) | ((c->cr4 & CR4_OSXSAVE) ? 1u << 27 : 0);
        /* EDX.APIC mirrors IA32_APIC_BASE's global enable (KVM kvm_update_cpuid_runtime:
         * cpuid_entry_change(best, X86_FEATURE_APIC, apic_base & MSR_IA32_APICBASE_ENABLE),
         * run at every APIC base write); apic.flat's apic_disable checks it */
        r[3] = (r[3] & ~(1u << 9)) | ((c->apic_base & (1u << 11)) ? 1u << 9 : 0);
        /* MONITOR after KVM's runtime update from IA32_MISC_ENABLE (cpu.h) */
        if (c->cpuid_mwait != EMU_CPUID_MWAIT_TABLE)
            r[2] = (r[2] & ~(1u << 3)) | (c->cpuid_mwait == EMU_CPUID_MWAIT_SET ? 1u << 3 : 0);
    }
    /* XSAVE area sizes for the XCR0 in force, as KVM rewrites them at KVM_SET_CPUID2 and
     * every XSETBV (cpuid.c kvm_update_cpuid_runtime): 0DH.0 EBX standard format; 0DH.1
     * EBX compacted (XCR0 only in 6.12, not XSS), when XSAVES or XSAVEC is set. The only
     * extended component is AVX, at 576 in both formats. */
    uint32_t xsize = (c->xcr0 & EMU_XFEATURE_YMM) ? EMU_XSAVE_SIZE : EMU_XSAVE_YMM_OFF;
    if (fn == 0xd && idx == 0)
        r[1] = xsize;
    if (fn == 0xd && idx == 1 && (r[0] & ((1u << 1) | (1u << 3))))
        r[1] = xsize;
}

static int h_cpuid(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    emu_icpt_insn(v, EMU_NX_CPUID, 0);
    struct cpu *c = &v->cpu;
    uint32_t fn = (uint32_t)c->gpr[EMU_RAX], idx = (uint32_t)c->gpr[EMU_RCX];
    const struct emu_cpuid_entry *e = emu_cpuid_find(v, fn, idx);
    uint32_t r[4] = {0, 0, 0, 0};
    if (!e) {
        /* KVM (Intel behaviour): a leaf above the class maximum returns the highest
         * basic leaf; other missing leaves read as zero. */
        const struct emu_cpuid_entry *basic = emu_cpuid_find(v, 0, 0);
        const struct emu_cpuid_entry *cls = emu_cpuid_find(v, fn & 0x80000000u, 0);
        if (basic && (!cls || fn > cls->eax))
            e = emu_cpuid_find(v, basic->eax, idx);
    }
    if (e) {
        r[0] = e->eax;
        r[1] = e->ebx;
        r[2] = e->ecx;
        r[3] = e->edx;
        emu_cpuid_runtime(v, e->function, e->index, r);
    }
    c->gpr[EMU_RAX] = r[0];
    c->gpr[EMU_RBX] = r[1];
    c->gpr[EMU_RCX] = r[2];
    c->gpr[EMU_RDX] = r[3];
    return EMU_H_NEXT;
}

/* ---- time stamp counter ---- */

static int h_rdtsc(struct emu_vcpu *v, const struct decoded_insn *d)
{
    if ((v->cpu.cr4 & CR4_TSD) && v->cpu.cpl != 0)
        emu_raise(v, EMU_GP, 0);
    emu_icpt_insn(v, d->op == DOP_RDTSCP ? EMU_NX_RDTSCP : EMU_NX_RDTSC, 0);
    uint64_t t = emu_read_tsc(v);
    if (__builtin_expect(v->nested.guest_mode, 0))
        emu_vmx_timer_after_tsc_read(v);
    v->cpu.gpr[EMU_RAX] = (uint32_t)t;
    v->cpu.gpr[EMU_RDX] = t >> 32;
    return EMU_H_NEXT;
}

static int h_rdtscp(struct emu_vcpu *v, const struct decoded_insn *d)
{
    h_rdtsc(v, d);
    v->cpu.gpr[EMU_RCX] = (uint32_t)v->cpu.tsc_aux;
    return EMU_H_NEXT;
}

static int h_rdpid(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_opnd_write(v, d, 0, v->cpu.tsc_aux);
    return EMU_H_NEXT;
}

/* ---- MSRs: policy lives in msr/ behind emu_msr_ops ---- */

static int msr_exit(struct emu_vcpu *v, bool write, uint32_t index, uint64_t val, uint32_t reason)
{
    struct emu_exit *x = v->exit;
    x->reason = EMU_EXIT_MSR;
    x->msr.is_write = write;
    x->msr.index = index;
    x->msr.reason = reason;
    x->msr.data = write ? val : 0;
    v->pending = write ? EMU_PEND_MSR_WRITE : EMU_PEND_MSR_READ;
    v->pending_next_rip = v->next_rip;
    v->next_rip = v->insn_rip; /* completes in emu_complete_msr */
    return EMU_H_EXIT;
}

static int h_rdmsr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    struct cpu *c = &v->cpu;
    uint32_t idx = (uint32_t)c->gpr[EMU_RCX], reason = 0;
    uint64_t val = 0;
    emu_icpt_msr(v, idx, false); /* L1's MSR permission map first, then L0 (msr/) */
    if (!v->has_msr_ops || !v->msr_ops.rdmsr)
        emu_raise(v, EMU_GP, 0);
    switch (v->msr_ops.rdmsr(v->msr_ops.ctx, c, idx, &val, &reason)) {
    case EMU_MSR_OK:
        c->gpr[EMU_RAX] = (uint32_t)val;
        c->gpr[EMU_RDX] = val >> 32;
        return EMU_H_NEXT;
    case EMU_MSR_EXIT:
        return msr_exit(v, false, idx, 0, reason);
    default:
        emu_raise(v, EMU_GP, 0);
    }
}

static int h_wrmsr(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    struct cpu *c = &v->cpu;
    uint32_t idx = (uint32_t)c->gpr[EMU_RCX], reason = 0;
    uint64_t val = (c->gpr[EMU_RDX] << 32) | (uint32_t)c->gpr[EMU_RAX];
    emu_icpt_msr(v, idx, true);
    if (!v->has_msr_ops || !v->msr_ops.wrmsr)
        emu_raise(v, EMU_GP, 0);
    switch (v->msr_ops.wrmsr(v->msr_ops.ctx, c, idx, val, &reason)) {
    case EMU_MSR_OK:
        /* msr/ may have changed EFER, PAT, FS/GS base...: refresh mode and translations */
        emu_update_mode(v);
        emu_tlb_flush(v);
        return EMU_H_NEXT;
    case EMU_MSR_EXIT:
        return msr_exit(v, true, idx, val, reason);
    default:
        emu_raise(v, EMU_GP, 0);
    }
}

/* ---- descriptor tables ---- */

static void umip_check(struct emu_vcpu *v)
{
    if ((v->cpu.cr4 & CR4_UMIP) && v->cpu.cpl > 0)
        emu_raise(v, EMU_GP, 0);
}

static void load_dtable(struct emu_vcpu *v, const struct decoded_insn *d, struct emu_dtable *t)
{
    uint64_t ea = emu_opnd_ea(v, d, 0);
    unsigned seg = d->ops[0].seg;
    uint16_t limit = (uint16_t)emu_mem_read(v, seg, ea, 2);
    uint64_t base = v->mode == DECODER_MODE_64 ? emu_mem_read(v, seg, (ea + 2) & emu_mask(d->addrsize), 8)
                                               : emu_mem_read(v, seg, (ea + 2) & emu_mask(d->addrsize), 4);
    if (v->mode == DECODER_MODE_64) {
        if (!emu_canonical(base))
            emu_raise(v, EMU_GP, 0);
    } else if (d->opsize == 2) {
        base &= 0xffffff;
    }
    t->base = base;
    t->limit = limit;
}

static void store_dtable(struct emu_vcpu *v, const struct decoded_insn *d, const struct emu_dtable *t)
{
    umip_check(v);
    uint64_t ea = emu_opnd_ea(v, d, 0);
    unsigned seg = d->ops[0].seg;
    emu_mem_write(v, seg, ea, 2, t->limit);
    emu_mem_write(v, seg, (ea + 2) & emu_mask(d->addrsize), v->mode == DECODER_MODE_64 ? 8 : 4,
                  v->mode == DECODER_MODE_64 ? t->base : (uint32_t)t->base);
}

static int h_lgdt(struct emu_vcpu *v, const struct decoded_insn *d) { emu_icpt_insn(v, EMU_NX_LGDT, 0); load_dtable(v, d, &v->cpu.gdtr); return EMU_H_NEXT; }
static int h_lidt(struct emu_vcpu *v, const struct decoded_insn *d) { emu_icpt_insn(v, EMU_NX_LIDT, 0); load_dtable(v, d, &v->cpu.idtr); return EMU_H_NEXT; }
static int h_sgdt(struct emu_vcpu *v, const struct decoded_insn *d) { emu_icpt_insn(v, EMU_NX_SGDT, 0); store_dtable(v, d, &v->cpu.gdtr); return EMU_H_NEXT; }
static int h_sidt(struct emu_vcpu *v, const struct decoded_insn *d) { emu_icpt_insn(v, EMU_NX_SIDT, 0); store_dtable(v, d, &v->cpu.idtr); return EMU_H_NEXT; }

static bool prot_mode(struct emu_vcpu *v)
{
    return (v->cpu.cr0 & 1) && !(v->cpu.rflags & EMU_FL_VM);
}

/* LLDT / LTR: system descriptor from the GDT (16 bytes in long mode). */
static int load_sys(struct emu_vcpu *v, const struct decoded_insn *d, bool tr)
{
    struct cpu *c = &v->cpu;
    if (!prot_mode(v))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    uint16_t sel = (uint16_t)emu_opnd_read(v, d, 0);
    struct emu_segment *s = &c->seg[tr ? EMU_TR : EMU_LDTR];
    if ((sel & ~3u) == 0) {
        if (tr)
            emu_raise(v, EMU_GP, 0);
        memset(s, 0, sizeof *s);
        s->selector = sel;
        s->unusable = 1;
        return EMU_H_NEXT;
    }
    if (sel & 4)
        emu_raise(v, EMU_GP, sel & 0xfffc);
    uint64_t dd[2];
    if (!emu_read_desc(v, sel, dd, v->long_mode))
        emu_raise(v, EMU_GP, sel & 0xfffc);
    struct emu_segment ns;
    emu_desc_to_seg(dd[0], sel, &ns);
    bool ok = tr ? (!ns.s && (ns.type == 9 || ns.type == 1)) : (!ns.s && ns.type == 2);
    if (tr && v->long_mode && ns.type != 9)
        ok = false;
    if (!ok)
        emu_raise(v, EMU_GP, sel & 0xfffc);
    if (v->long_mode && ((dd[1] >> 40) & 0x1f))
        emu_raise(v, EMU_GP, sel & 0xfffc);
    if (!ns.present)
        emu_raise(v, EMU_NP, sel & 0xfffc);
    if (v->long_mode) {
        ns.base |= dd[1] << 32;
        /* the 64-bit base of a 16-byte system descriptor must be canonical: #GP(selector)
         * after the present check (KVM emulate.c __load_segment_descriptor,
         * emul_is_noncanonical_address; SDM vol.2 LLDT/LTR, vol.3 8.2.3). No LA57 here,
         * so 48 bits. The TSS is not marked busy then. */
        if (!emu_canonical(ns.base))
            emu_raise(v, EMU_GP, sel & 0xfffc);
    }
    if (tr) {
        /* mark the TSS busy in the GDT (SDM "LTR") */
        emu_lin_write(v, c->gdtr.base + (sel & ~7u) + 5, 1, (uint8_t)(dd[0] >> 40) | 2,
                      EMU_ACC_WRITE | EMU_ACC_SYS);
        ns.type |= 2;
    }
    *s = ns;
    return EMU_H_NEXT;
}

static int h_lldt(struct emu_vcpu *v, const struct decoded_insn *d) { emu_icpt_insn(v, EMU_NX_LLDT, 0); return load_sys(v, d, false); }
static int h_ltr(struct emu_vcpu *v, const struct decoded_insn *d) { emu_icpt_insn(v, EMU_NX_LTR, 0); return load_sys(v, d, true); }

static int store_sel(struct emu_vcpu *v, const struct decoded_insn *d, unsigned seg)
{
    if (!prot_mode(v))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    umip_check(v);
    uint16_t sel = v->cpu.seg[seg].selector;
    /* register destination gets the zero-extended selector; memory gets 16 bits */
    if (d->ops[0].kind == DOPND_MEM)
        emu_mem_write(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), 2, sel);
    else
        emu_opnd_write(v, d, 0, sel);
    return EMU_H_NEXT;
}

static int h_sldt(struct emu_vcpu *v, const struct decoded_insn *d) { emu_icpt_insn(v, EMU_NX_SLDT, 0); return store_sel(v, d, EMU_LDTR); }
static int h_str(struct emu_vcpu *v, const struct decoded_insn *d) { emu_icpt_insn(v, EMU_NX_STR, 0); return store_sel(v, d, EMU_TR); }

static int h_smsw(struct emu_vcpu *v, const struct decoded_insn *d)
{
    umip_check(v);
    emu_icpt_cr(v, 0, false);
    uint64_t cr0 = emu_nested_cr_read(v, 0, v->cpu.cr0);
    if (d->ops[0].kind == DOPND_MEM)
        emu_mem_write(v, d->ops[0].seg, emu_opnd_ea(v, d, 0), 2, cr0 & 0xffff);
    else
        emu_opnd_write(v, d, 0, cr0);
    return EMU_H_NEXT;
}

/* LMSW: loads CR0 bits 3:0; can set PE but not clear it. */
static int h_lmsw(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_icpt_cr(v, 0, true);
    uint64_t src = emu_opnd_read(v, d, 0) & 0xf;
    uint64_t cr0 = v->cpu.cr0;
    uint64_t n = (cr0 & ~0xeull) | (src & 0xe) | ((cr0 | src) & 1);
    emu_write_cr(v, 0, emu_nested_cr_write(v, 0, n));
    return EMU_H_NEXT;
}

static int h_clts(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    emu_icpt_cr(v, 0, true);
    v->cpu.cr0 = emu_nested_cr_write(v, 0, v->cpu.cr0 & ~CR0_TS);
    return EMU_H_NEXT;
}

static int h_invlpg(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t ea = emu_opnd_ea(v, d, 0);
    const struct emu_segment *s = &v->cpu.seg[d->ops[0].seg];
    uint64_t lin = v->mode == DECODER_MODE_64 ? ((d->ops[0].seg >= EMU_FS) ? s->base + ea : ea)
                                              : (uint32_t)(s->base + ea);
    emu_icpt_insn(v, EMU_NX_INVLPG, lin);
    emu_tlb_flush_page(v, lin);
    return EMU_H_NEXT;
}

/* INVPCID (SDM vol.2): type 0-3; descriptor PCID must be < 4096 and, for type 0, the
 * address canonical. Our TLB is untagged, so every valid form flushes it all. */
static int h_invpcid(struct emu_vcpu *v, const struct decoded_insn *d)
{
    /* #UD without CPUID.(7,0):EBX.INVPCID[10], before the CPL check: KVM clears VMX's
     * "enable INVPCID" (vmx_secondary_exec_control) / SVM intercepts it and injects #UD
     * (svm_recalc_instruction_intercepts) when the guest's CPUID lacks it */
    if (!emu_cpuid_has(v, 7, 0, 1, 10))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    if (v->cpu.cpl != 0)
        emu_raise(v, EMU_GP, 0); /* not in dispatch.c's privileged_ops: #UD comes first */
    emu_icpt_insn(v, EMU_NX_INVPCID, 0);
    uint64_t type = emu_opnd_read(v, d, 0);
    uint64_t ea = emu_opnd_ea(v, d, 1);
    uint64_t desc[2];
    emu_mem_read_buf(v, d->ops[1].seg, ea, desc, 16);
    if (type > 3 || (desc[0] >> 12))
        emu_raise(v, EMU_GP, 0);
    if (type == 0 && !emu_canonical(desc[1]))
        emu_raise(v, EMU_GP, 0);
    if ((type == 0 || type == 1) && !(v->cpu.cr4 & CR4_PCIDE) && (desc[0] & 0xfff))
        emu_raise(v, EMU_GP, 0);
    emu_tlb_flush(v);
    return EMU_H_NEXT;
}

static int h_nop_priv(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_icpt_insn(v, d->op == DOP_INVD ? EMU_NX_INVD : EMU_NX_WBINVD, 0);
    return EMU_H_NEXT; /* WBINVD / INVD: no caches to write back */
}

/* ---- 64-bit segment base instructions ---- */

static int h_swapgs(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    uint64_t t = v->cpu.seg[EMU_GS].base;
    v->cpu.seg[EMU_GS].base = v->cpu.kernel_gs_base;
    v->cpu.kernel_gs_base = t;
    return EMU_H_NEXT;
}

static void fsgs_check(struct emu_vcpu *v)
{
    if (!(v->cpu.cr4 & CR4_FSGSBASE))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
}

static int h_rdfsbase(struct emu_vcpu *v, const struct decoded_insn *d) { fsgs_check(v); emu_opnd_write(v, d, 0, v->cpu.seg[EMU_FS].base); return EMU_H_NEXT; }
static int h_rdgsbase(struct emu_vcpu *v, const struct decoded_insn *d) { fsgs_check(v); emu_opnd_write(v, d, 0, v->cpu.seg[EMU_GS].base); return EMU_H_NEXT; }

static int wrbase(struct emu_vcpu *v, const struct decoded_insn *d, unsigned seg)
{
    fsgs_check(v);
    uint64_t b = emu_opnd_read(v, d, 0);
    if (!emu_canonical(b))
        emu_raise(v, EMU_GP, 0);
    v->cpu.seg[seg].base = b;
    return EMU_H_NEXT;
}

static int h_wrfsbase(struct emu_vcpu *v, const struct decoded_insn *d) { return wrbase(v, d, EMU_FS); }
static int h_wrgsbase(struct emu_vcpu *v, const struct decoded_insn *d) { return wrbase(v, d, EMU_GS); }

/* ---- fast system calls (SDM vol.2 SYSCALL/SYSRET/SYSENTER/SYSEXIT) ---- */

static void flat_seg(struct emu_segment *s, uint16_t sel, bool code, bool l64, unsigned dpl)
{
    memset(s, 0, sizeof *s);
    s->selector = sel;
    s->base = 0;
    s->limit = 0xffffffff;
    s->g = 1;
    s->s = 1;
    s->present = 1;
    s->dpl = (uint8_t)dpl;
    s->type = code ? 0xb : 0x3;
    s->l = code && l64;
    s->db = !(code && l64);
}

static int h_syscall(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    struct cpu *c = &v->cpu;
    /* Intel-compatible CPUs have SYSCALL in 64-bit mode only, AMD in every protected
     * mode (SDM vol.2 / APM vol.3 SYSCALL; KVM emulate.c em_syscall: #UD outside
     * PROT64 when guest_cpuid_is_intel_compatible). The decoder accepts it in every
     * mode, so the vendor rule lives here. kvm-unit-tests x86/syscall (AMD CPU model)
     * runs it in 32-bit compatibility mode at CPL 3. */
    if (!prot_mode(v) || (!v->cpu_amd && v->mode != DECODER_MODE_64))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    if (!(c->efer & EFER_SCE))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    uint16_t sel = (uint16_t)(c->star >> 32) & 0xfffc;
    uint64_t fl = emu_flags(v);
    if (v->long_mode) {
        c->gpr[EMU_RCX] = v->next_rip;
        c->gpr[EMU_R11] = fl & ~(uint64_t)EMU_FL_RF;
        v->next_rip = v->mode == DECODER_MODE_64 ? c->lstar : c->cstar;
        emu_flags_set(v, fl & ~(c->sfmask | EMU_FL_RF));
        flat_seg(&c->seg[EMU_CS], sel, true, true, 0);
    } else {
        c->gpr[EMU_RCX] = (uint32_t)v->next_rip;
        v->next_rip = (uint32_t)c->star;
        emu_flags_set(v, fl & ~(uint64_t)(EMU_FL_VM | EMU_FL_IF | EMU_FL_RF));
        flat_seg(&c->seg[EMU_CS], sel, true, false, 0);
    }
    flat_seg(&c->seg[EMU_SS], (uint16_t)(sel + 8), false, false, 0);
    emu_update_mode(v);
    v->tf_trap_after = c->rflags & EMU_FL_TF; /* TF after SFMASK (KVM em_syscall) */
    return EMU_H_NEXT;
}

static int h_sysret(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    /* SDM SYSRET: #UD outside 64-bit mode or without EFER.SCE, then #GP(0) above CPL 0;
     * AMD (APM vol.3 SYSRET) also returns from legacy and compatibility mode. The decoder
     * accepts it in every mode, so the vendor rule and the CPL check (after the #UD) are
     * here. */
    if (!(c->efer & EFER_SCE) || !prot_mode(v) || (!v->cpu_amd && v->mode != DECODER_MODE_64))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    if (c->cpl != 0)
        emu_raise(v, EMU_GP, 0);
    uint16_t base = (uint16_t)(c->star >> 48);
    bool to64 = d->opsize == 8;
    if (v->long_mode) {
        if (to64 && !emu_canonical(c->gpr[EMU_RCX]))
            emu_raise(v, EMU_GP, 0);
        flat_seg(&c->seg[EMU_CS], to64 ? (uint16_t)((base + 16) | 3) : (uint16_t)(base | 3), true, to64, 3);
        v->next_rip = to64 ? c->gpr[EMU_RCX] : (uint32_t)c->gpr[EMU_RCX];
        emu_flags_set(v, (c->gpr[EMU_R11] & 0x3c7fd7) | EMU_FL_FIXED1);
    } else {
        flat_seg(&c->seg[EMU_CS], (uint16_t)(base | 3), true, false, 3);
        v->next_rip = (uint32_t)c->gpr[EMU_RCX];
        c->rflags |= EMU_FL_IF;
    }
    /* SS selector = STAR[63:48]+8 with RPL 3; the cached descriptor is fixed flat data */
    flat_seg(&c->seg[EMU_SS], (uint16_t)((base + 8) | 3), false, false, 3);
    emu_update_mode(v);
    /* TF loaded from R11 traps right after SYSRET, in the user context */
    v->tf_trap_after = c->rflags & EMU_FL_TF;
    v->kick = 1;
    return EMU_H_NEXT;
}

static int h_sysenter(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    struct cpu *c = &v->cpu;
    if (!prot_mode(v) && !(c->cr0 & 1))
        emu_raise(v, EMU_GP, 0);
    uint16_t cs = (uint16_t)c->sysenter_cs & 0xfffc;
    if (!cs)
        emu_raise(v, EMU_GP, 0);
    emu_flags_set(v, emu_flags(v) & ~(uint64_t)(EMU_FL_VM | EMU_FL_IF | EMU_FL_RF));
    flat_seg(&c->seg[EMU_CS], cs, true, v->long_mode, 0);
    flat_seg(&c->seg[EMU_SS], (uint16_t)(cs + 8), false, false, 0);
    c->gpr[EMU_RSP] = v->long_mode ? c->sysenter_esp : (uint32_t)c->sysenter_esp;
    v->next_rip = v->long_mode ? c->sysenter_eip : (uint32_t)c->sysenter_eip;
    emu_update_mode(v);
    return EMU_H_NEXT;
}

static int h_sysexit(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    if (!prot_mode(v))
        emu_raise(v, EMU_GP, 0);
    uint16_t cs = (uint16_t)c->sysenter_cs & 0xfffc;
    if (!cs)
        emu_raise(v, EMU_GP, 0);
    bool to64 = d->opsize == 8;
    flat_seg(&c->seg[EMU_CS], (uint16_t)((cs + (to64 ? 32 : 16)) | 3), true, to64, 3);
    flat_seg(&c->seg[EMU_SS], (uint16_t)((cs + (to64 ? 40 : 24)) | 3), false, false, 3);
    c->gpr[EMU_RSP] = to64 ? c->gpr[EMU_RCX] : (uint32_t)c->gpr[EMU_RCX];
    v->next_rip = to64 ? c->gpr[EMU_RDX] : (uint32_t)c->gpr[EMU_RDX];
    emu_update_mode(v);
    return EMU_H_NEXT;
}

/* ---- SMAP ---- */

static int h_clac(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; v->cpu.rflags &= ~(uint64_t)EMU_FL_AC; return EMU_H_NEXT; }
static int h_stac(struct emu_vcpu *v, const struct decoded_insn *d) { (void)d; v->cpu.rflags |= EMU_FL_AC; return EMU_H_NEXT; }

/* ---- LAR / LSL / VERR / VERW (SDM vol.2): ZF reports success, no faults on bad selectors ---- */

static bool desc_visible(struct emu_vcpu *v, uint16_t sel, struct emu_segment *s, uint64_t *raw)
{
    uint64_t dd[2];
    if ((sel & ~3u) == 0 || !emu_read_desc(v, sel, dd, false))
        return false;
    emu_desc_to_seg(dd[0], sel, s);
    *raw = dd[0];
    bool conf_code = s->s && (s->type & 0xc) == 0xc;
    if (!conf_code && (s->dpl < (unsigned)v->cpu.cpl || s->dpl < (sel & 3u)))
        return false;
    return true;
}

static int lar_lsl(struct emu_vcpu *v, const struct decoded_insn *d, bool lsl)
{
    if (!prot_mode(v))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    uint16_t sel = (uint16_t)emu_opnd_read(v, d, 1);
    struct emu_segment s;
    uint64_t raw;
    bool ok = desc_visible(v, sel, &s, &raw);
    if (ok && !s.s) {
        /* system types valid for LAR: 1-5, 9, 11, 12; LSL: 1-3, 9, 11; long mode: 2, 9, 11 (+12 for LAR) */
        static const uint16_t lar_ok = 0x1a3e, lsl_ok = 0x0a0e, lar_ok64 = 0x1a04, lsl_ok64 = 0x0a04;
        uint16_t m = v->long_mode ? (lsl ? lsl_ok64 : lar_ok64) : (lsl ? lsl_ok : lar_ok);
        ok = (m >> s.type) & 1;
    }
    if (ok)
        emu_opnd_write(v, d, 0, lsl ? s.limit : (raw >> 32) & 0x00f0ff00u);
    emu_flags_update(v, EMU_FL_ZF, ok ? EMU_FL_ZF : 0);
    return EMU_H_NEXT;
}

static int h_lar(struct emu_vcpu *v, const struct decoded_insn *d) { return lar_lsl(v, d, false); }
static int h_lsl(struct emu_vcpu *v, const struct decoded_insn *d) { return lar_lsl(v, d, true); }

static int verx(struct emu_vcpu *v, const struct decoded_insn *d, bool write)
{
    if (!prot_mode(v))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    uint16_t sel = (uint16_t)emu_opnd_read(v, d, 0);
    struct emu_segment s;
    uint64_t raw;
    bool ok = desc_visible(v, sel, &s, &raw) && s.s;
    if (ok)
        ok = write ? !(s.type & 8) && (s.type & 2) : !(s.type & 8) || (s.type & 2);
    emu_flags_update(v, EMU_FL_ZF, ok ? EMU_FL_ZF : 0);
    return EMU_H_NEXT;
}

static int h_verr(struct emu_vcpu *v, const struct decoded_insn *d) { return verx(v, d, false); }
static int h_verw(struct emu_vcpu *v, const struct decoded_insn *d) { return verx(v, d, true); }

/* ---- random numbers: host entropy, CF=1 on success (SDM "RDRAND") ---- */

static int h_rdrand(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t r = 0;
    bool ok = getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r;
    emu_opnd_write(v, d, 0, ok ? r : 0);
    emu_flags_update(v, EMU_FL_CF | EMU_FL_PF | EMU_FL_AF | EMU_FL_ZF | EMU_FL_SF | EMU_FL_OF,
                     ok ? EMU_FL_CF : 0);
    return EMU_H_NEXT;
}

/* ---- hypercalls: the layer above decides (KVM handles VMCALL/VMMCALL in the kernel) ---- */

/* The other vendor's hypercall instruction. The hardware raises #UD, which KVM always
 * intercepts and emulates (handle_ud -> em_hypercall, EmulateOnUD): VMCALL carries Priv
 * (CPL > 0: #GP(0)), VMMCALL carries Prot (real or virtual-8086 mode: #UD), checked in
 * x86_emulate_insn before the semantics. Then emulator_fix_hypercall (x86.c): with
 * KVM_X86_QUIRK_FIX_HYPERCALL_INSN disabled, #UD; else the native instruction
 * (svm_patch_hypercall / vmx_patch_hypercall) is written over it and the guest
 * re-executes it (em_hypercall leaves RIP in place). */
static int foreign_hypercall(struct emu_vcpu *v, const struct decoded_insn *d)
{
    if (d->op == DOP_VMCALL && v->cpu.cpl != 0)
        emu_raise(v, EMU_GP, 0);
    if (d->op == DOP_VMMCALL && !prot_mode(v))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    if (v->policy.no_fix_hypercall)
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    static const uint8_t vmcall[3] = {0x0f, 0x01, 0xc1}, vmmcall[3] = {0x0f, 0x01, 0xd9};
    const uint8_t *native = d->op == DOP_VMCALL ? vmmcall : vmcall;
    /* emulator_write_emulated(ctxt, kvm_rip_read(vcpu), ...): KVM passes RIP itself as
     * the linear address (not CS.base + RIP; the same with the flat segments of 64-bit
     * mode), a data write at the guest's CPL through its page tables, so a read-only code
     * page faults as KVM's would. Guest memory only: the write goes through the memslots. */
    emu_lin_write_buf(v, v->insn_rip, native, sizeof vmcall, EMU_ACC_WRITE);
    v->next_rip = v->insn_rip; /* a store into code: the next fetch decodes the new bytes */
    return EMU_H_NEXT;
}

static int h_hypercall(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_icpt_insn(v, d->op == DOP_VMCALL ? EMU_NX_VMCALL : EMU_NX_VMMCALL, 0);
    if ((d->op == DOP_VMCALL && v->policy.flavour == EMU_FLAVOUR_SVM) ||
        (d->op == DOP_VMMCALL && v->policy.flavour == EMU_FLAVOUR_VMX))
        return foreign_hypercall(v, d);
    v->exit->reason = EMU_EXIT_HYPERCALL;
    return EMU_H_EXIT; /* RIP already past the instruction */
}

/* ---- MONITOR / MWAIT ----
 * The CPU model has them (SDM vol.2 "MONITOR", "MWAIT"): MONITOR arms nothing softkvm
 * could wait on, and MWAIT returns at once, which the SDM allows ("other
 * implementation-dependent events may also cause the processor to exit"). KVM never
 * lets them run in the guest unless KVM_X86_DISABLE_EXITS_MWAIT: it intercepts both and
 * emulates them as NOPs (x86.c kvm_emulate_monitor_mwait), with #UD when
 * KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS is disabled and the guest's CPUID lacks MONITOR. */

static bool guest_cpuid_mwait(struct emu_vcpu *v)
{
    if (v->cpu.cpuid_mwait != EMU_CPUID_MWAIT_TABLE)
        return v->cpu.cpuid_mwait == EMU_CPUID_MWAIT_SET;
    const struct emu_cpuid_entry *e = emu_cpuid_find(v, 1, 0);
    return e && (e->ecx & (1u << 3));
}

/* The instruction's own fault checks (SDM exception tables, CPL already checked): MONITOR
 * #GP(0) for ECX != 0 (no extensions), and the address DS:rAX (segment override allowed)
 * is checked as a byte load — segment limit / canonical form, then the page walk (#PF);
 * MWAIT #GP(0) for ECX bits other than bit 0 (treat interrupts as break events). */
static void monitor_mwait_checks(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint32_t ecx = (uint32_t)v->cpu.gpr[EMU_RCX];
    if (d->op == DOP_MWAIT) {
        if (ecx & ~1u)
            emu_raise(v, EMU_GP, 0);
        return;
    }
    if (ecx)
        emu_raise(v, EMU_GP, 0);
    unsigned seg = (d->prefixes & DPFX_SEG) ? d->seg_override : EMU_DS;
    uint64_t lin = emu_seg_lin(v, seg, v->cpu.gpr[EMU_RAX] & emu_mask(d->addrsize), 1,
                               EMU_ACC_READ);
    (void)emu_lin_ptr(v, lin, 1, EMU_ACC_READ); /* faults only; NULL (MMIO) is fine */
}

static int h_monitor_mwait(struct emu_vcpu *v, const struct decoded_insn *d)
{
    /* CPL > 0: #UD (SDM; ring-3 MONITOR is not offered). Faults based on privilege level
     * come before a VM exit on VMX (SDM vol.3 26.1.1) and on SVM every exception check
     * comes before the intercept (APM vol.2 15.9; the 6.12 selftest monitor_mwait_test
     * relies on it), so this is the guest's #UD also when KVM intercepts. */
    if (v->cpu.cpl != 0)
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    bool svm = v->policy.flavour == EMU_FLAVOUR_SVM;
    if (svm || v->policy.mwait_in_guest)
        monitor_mwait_checks(v, d);
    emu_icpt_insn(v, d->op == DOP_MONITOR ? EMU_NX_MONITOR : EMU_NX_MWAIT, 0);
    if (v->policy.mwait_in_guest)
        return EMU_H_NEXT; /* runs "natively": the checks above are all there is */
    /* KVM's MONITOR/MWAIT exit (SVM_EXIT_MONITOR/MWAIT, EXIT_REASON_MONITOR/MWAIT_INSTRUCTION) */
    if (v->policy.mwait_ud && !guest_cpuid_mwait(v))
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE); /* kvm_handle_invalid_op */
    return EMU_H_NEXT; /* kvm_emulate_as_nop */
}

/* Features absent from the CPU model (no SGX, SMX, RTM, PKU, SMM, RDPMC counters,
 * nested virtualization): hardware without them raises #UD. */
static int h_absent(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
}

static int h_rdpmc(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    /* SDM RDPMC: #GP(0) at CPL > 0 in protected mode unless CR4.PCE (also KVM's
     * kvm_pmu_rdpmc check); that check precedes the intercept */
    struct cpu *c = &v->cpu;
    if (!(c->cr4 & CR4_PCE) && c->cpl != 0 && (c->cr0 & CR0_PE))
        emu_raise(v, EMU_GP, 0);
    emu_icpt_insn(v, EMU_NX_RDPMC, 0);
    /* the counter is the vPMU's (msr/pmu.c kvm_pmu_rdpmc); none, or no such counter: #GP */
    uint64_t val;
    if (!v->has_msr_ops || !v->msr_ops.rdpmc ||
        v->msr_ops.rdpmc(v->msr_ops.ctx, c, (uint32_t)c->gpr[EMU_RCX], &val))
        emu_raise(v, EMU_GP, 0);
    c->gpr[EMU_RAX] = (uint32_t)val;
    c->gpr[EMU_RDX] = val >> 32;
    return EMU_H_NEXT;
}

static int h_nop_any(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)v;
    (void)d;
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_system_handlers[] = {
    {DOP_CLI, h_cli}, {DOP_STI, h_sti}, {DOP_HLT, h_hlt}, {DOP_CPUID, h_cpuid},
    {DOP_RDTSC, h_rdtsc}, {DOP_RDTSCP, h_rdtscp}, {DOP_RDPID, h_rdpid},
    {DOP_RDMSR, h_rdmsr}, {DOP_WRMSR, h_wrmsr},
    {DOP_LGDT, h_lgdt}, {DOP_LIDT, h_lidt}, {DOP_SGDT, h_sgdt}, {DOP_SIDT, h_sidt},
    {DOP_LLDT, h_lldt}, {DOP_LTR, h_ltr}, {DOP_SLDT, h_sldt}, {DOP_STR, h_str},
    {DOP_SMSW, h_smsw}, {DOP_LMSW, h_lmsw}, {DOP_CLTS, h_clts},
    {DOP_INVLPG, h_invlpg}, {DOP_INVPCID, h_invpcid}, {DOP_WBINVD, h_nop_priv}, {DOP_INVD, h_nop_priv},
    {DOP_SWAPGS, h_swapgs}, {DOP_RDFSBASE, h_rdfsbase}, {DOP_RDGSBASE, h_rdgsbase},
    {DOP_WRFSBASE, h_wrfsbase}, {DOP_WRGSBASE, h_wrgsbase},
    {DOP_SYSCALL, h_syscall}, {DOP_SYSRET, h_sysret}, {DOP_SYSENTER, h_sysenter},
    {DOP_SYSEXIT, h_sysexit}, {DOP_CLAC, h_clac}, {DOP_STAC, h_stac},
    /* ENDBR32/64 are NOPs while CET is not enabled (SDM vol.1 17.3.1); softkvm offers no
     * CET, so always */
    {DOP_ENDBR64, h_nop_any}, {DOP_ENDBR32, h_nop_any},
    {DOP_LAR, h_lar}, {DOP_LSL, h_lsl}, {DOP_VERR, h_verr}, {DOP_VERW, h_verw},
    {DOP_RDRAND, h_rdrand}, {DOP_RDSEED, h_rdrand},
    {DOP_VMCALL, h_hypercall}, {DOP_VMMCALL, h_hypercall},
    {DOP_MONITOR, h_monitor_mwait}, {DOP_MWAIT, h_monitor_mwait},
    {DOP_RDPMC, h_rdpmc},
    {DOP_ENCLS, h_absent}, {DOP_ENCLU, h_absent}, {DOP_GETSEC, h_absent},
    {DOP_XBEGIN, h_absent}, {DOP_XABORT, h_absent}, {DOP_XEND, h_absent}, {DOP_XTEST, h_absent},
    {DOP_RDPKRU, h_absent}, {DOP_WRPKRU, h_absent},
    {0, NULL},
};
