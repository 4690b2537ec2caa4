/* abi/: vCPU register state ioctls (GET/SET_REGS, SREGS, SREGS2, FPU, XSAVE, XCRS,
 * DEBUGREGS, VCPU_EVENTS, MP_STATE, CPUID2, TRANSLATE, LAPIC).
 *
 * Conversions between the KVM structs and struct cpu; validation mirrors
 * arch/x86/kvm/x86.c (kvm_is_valid_sregs, __set_sregs_common, kvm_vcpu_ioctl_x86_set_*
 * in Linux 6.12). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "abi/abi_internal.h"
#include "emu/xsave.h"

#define CR0_PE (1ull << 0)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define APIC_BASE_BSP (1ull << 8)
#define APIC_BASE_X2APIC (1ull << 10)
#define APIC_BASE_ENABLE (1ull << 11)

/* ---------------- helpers ---------------- */

static void seg_to_kvm(const struct emu_segment *s, struct kvm_segment *k)
{
    memset(k, 0, sizeof *k);
    k->base = s->base;
    k->limit = s->limit;
    k->selector = s->selector;
    k->type = s->type;
    k->present = s->present;
    k->dpl = s->dpl;
    k->db = s->db;
    k->s = s->s;
    k->l = s->l;
    k->g = s->g;
    k->avl = s->avl;
    k->unusable = s->unusable;
}

static void seg_from_kvm(const struct kvm_segment *k, struct emu_segment *s)
{
    s->base = k->base;
    s->limit = k->limit;
    s->selector = k->selector;
    s->type = k->type;
    s->present = k->present;
    s->dpl = k->dpl;
    s->db = k->db;
    s->s = k->s;
    s->l = k->l;
    s->g = k->g;
    s->avl = k->avl;
    /* KVM: a segment that is not present is unusable (VMX "unusable" bit) */
    s->unusable = k->unusable || !k->present;
}

static int get(unsigned long arg, void *dst, size_t n)
{
    return abi_copy_from_user(dst, (void *)arg, n) ? -EFAULT : 0;
}

static int put(unsigned long arg, const void *src, size_t n)
{
    return abi_copy_to_user((void *)arg, src, n) ? -EFAULT : 0;
}

/* Called at vCPU creation: KVM's vcpu reset (kvm_vcpu_reset, SDM vol.3 9.1.1). */
void abi_vcpu_init_state(struct abi_vcpu *v)
{
    struct cpu *c = emu_cpu(v->emu);
    c->apic_base = ABI_APIC_DEFAULT_BASE | APIC_BASE_ENABLE |
                   (v->id == v->vm->boot_cpu_id ? APIC_BASE_BSP : 0);
    if (v->lapic)
        c->apic_base = abi_lapic_get_base(v->lapic);
    /* kvm_arch_vcpu_create: with the irqchip in the kernel, APs wait for INIT/SIPI */
    v->mp_state = (!v->lapic || v->id == v->vm->boot_cpu_id) ? KVM_MP_STATE_RUNNABLE
                                                              : KVM_MP_STATE_UNINITIALIZED;
    /* the kvm_run page: KVM puts PIO data right after it */
    memset(v->run, 0, v->run_size);
}

/* ---------------- REGS ---------------- */

static long get_regs(struct abi_vcpu *v, struct kvm_regs *r)
{
    struct cpu *c = emu_cpu(v->emu);
    r->rax = c->gpr[EMU_RAX];
    r->rbx = c->gpr[EMU_RBX];
    r->rcx = c->gpr[EMU_RCX];
    r->rdx = c->gpr[EMU_RDX];
    r->rsi = c->gpr[EMU_RSI];
    r->rdi = c->gpr[EMU_RDI];
    r->rsp = c->gpr[EMU_RSP];
    r->rbp = c->gpr[EMU_RBP];
    r->r8 = c->gpr[EMU_R8];
    r->r9 = c->gpr[EMU_R9];
    r->r10 = c->gpr[EMU_R10];
    r->r11 = c->gpr[EMU_R11];
    r->r12 = c->gpr[EMU_R12];
    r->r13 = c->gpr[EMU_R13];
    r->r14 = c->gpr[EMU_R14];
    r->r15 = c->gpr[EMU_R15];
    r->rip = c->rip;
    r->rflags = emu_get_rflags(v->emu);
    return 0;
}

static long set_regs(struct abi_vcpu *v, const struct kvm_regs *r)
{
    struct cpu *c = emu_cpu(v->emu);
    c->gpr[EMU_RAX] = r->rax;
    c->gpr[EMU_RBX] = r->rbx;
    c->gpr[EMU_RCX] = r->rcx;
    c->gpr[EMU_RDX] = r->rdx;
    c->gpr[EMU_RSI] = r->rsi;
    c->gpr[EMU_RDI] = r->rdi;
    c->gpr[EMU_RSP] = r->rsp;
    c->gpr[EMU_RBP] = r->rbp;
    c->gpr[EMU_R8] = r->r8;
    c->gpr[EMU_R9] = r->r9;
    c->gpr[EMU_R10] = r->r10;
    c->gpr[EMU_R11] = r->r11;
    c->gpr[EMU_R12] = r->r12;
    c->gpr[EMU_R13] = r->r13;
    c->gpr[EMU_R14] = r->r14;
    c->gpr[EMU_R15] = r->r15;
    c->rip = r->rip;
    /* KVM: bit 1 of RFLAGS always reads as 1 */
    emu_set_rflags(v->emu, r->rflags | EMU_FL_FIXED1);
    /* KVM clears a pending exception on SET_REGS (vcpu->arch.exception.pending = false) */
    c->ev.exc_pending = false;
    return 0;
}

/* ---------------- SREGS / SREGS2 ---------------- */

static uint64_t cur_apic_base(struct abi_vcpu *v)
{
    return v->lapic ? abi_lapic_get_base(v->lapic) : emu_cpu(v->emu)->apic_base;
}

static void get_sregs_common(struct abi_vcpu *v, struct kvm_sregs2 *s)
{
    struct cpu *c = emu_cpu(v->emu);
    static const enum emu_sreg order[8] = {EMU_CS, EMU_DS, EMU_ES, EMU_FS,
                                           EMU_GS, EMU_SS, EMU_TR, EMU_LDTR};
    struct kvm_segment *dst[8] = {&s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss, &s->tr, &s->ldt};
    for (int i = 0; i < 8; i++)
        seg_to_kvm(&c->seg[order[i]], dst[i]);
    s->gdt.base = c->gdtr.base;
    s->gdt.limit = c->gdtr.limit;
    s->idt.base = c->idtr.base;
    s->idt.limit = c->idtr.limit;
    s->cr0 = c->cr0;
    s->cr2 = c->cr2;
    s->cr3 = c->cr3;
    s->cr4 = c->cr4;
    s->cr8 = c->cr8;
    s->efer = c->efer;
    s->apic_base = cur_apic_base(v);
}

static long get_sregs(struct abi_vcpu *v, struct kvm_sregs *out)
{
    struct kvm_sregs2 s2;
    memset(&s2, 0, sizeof s2);
    get_sregs_common(v, &s2);
    memset(out, 0, sizeof *out);
    memcpy(out, &s2, offsetof(struct kvm_sregs, interrupt_bitmap));
    struct cpu *c = emu_cpu(v->emu);
    /* an injected (not soft) external interrupt shows in interrupt_bitmap */
    if (c->ev.irq_injected && !c->ev.irq_soft)
        out->interrupt_bitmap[c->ev.irq_vector / 64] |= 1ull << (c->ev.irq_vector % 64);
    return 0;
}

/* kvm_is_valid_sregs() + kvm_is_valid_cr0/cr4() */
static bool sregs_valid(struct abi_vcpu *v, const struct kvm_sregs2 *s)
{
    if ((s->efer & EFER_LME) && (s->cr0 & CR0_PG)) {
        if (!(s->cr4 & CR4_PAE) || !(s->efer & EFER_LMA))
            return false;
        unsigned maxpa = abi_maxphyaddr(v->cpuid, v->ncpuid);
        if (maxpa < 64 && (s->cr3 >> maxpa))
            return false;
    } else if ((s->efer & EFER_LMA) || s->cs.l) {
        return false;
    }
    /* KVM: CR4 bits KVM itself cannot virtualize are always reserved; bits the guest's
     * CPUID lacks only once KVM_SET_CPUID2 was done (cr4_guest_rsvd_bits starts at 0) */
    struct kvm_cpuid_entry2 model[64];
    unsigned nmodel = abi_supported_cpuid(v->vm->sys->vendor, model, 64);
    if (s->cr4 & abi_cr4_reserved_bits(model, nmodel))
        return false;
    if (v->ncpuid && (s->cr4 & abi_cr4_reserved_bits(v->cpuid, v->ncpuid)))
        return false;
    if (s->cr0 >> 32)
        return false;
    if ((s->cr0 & CR0_NW) && !(s->cr0 & CR0_CD))
        return false;
    if ((s->cr0 & CR0_PG) && !(s->cr0 & CR0_PE))
        return false;
    return true;
}

/* kvm_set_apic_base() for a host-initiated write without an in-kernel LAPIC */
static int set_apic_base(struct abi_vcpu *v, uint64_t val)
{
    if (v->lapic)
        return abi_lapic_set_base(v->lapic, val, true) ? -EINVAL : 0;
    unsigned maxpa = abi_maxphyaddr(v->cpuid, v->ncpuid);
    const struct kvm_cpuid_entry2 *l1 = abi_cpuid_find(v->cpuid, v->ncpuid, 1, 0);
    bool x2apic = l1 && (l1->ecx & (1u << 21));
    uint64_t reserved = (~0ull << maxpa) | 0x2ff | (x2apic ? 0 : APIC_BASE_X2APIC);
    if (val & reserved)
        return -EINVAL;
    if ((val & APIC_BASE_X2APIC) && !(val & APIC_BASE_ENABLE))
        return -EINVAL; /* LAPIC_MODE_INVALID */
    emu_cpu(v->emu)->apic_base = val;
    return 0;
}

static long set_sregs_common(struct abi_vcpu *v, const struct kvm_sregs2 *s)
{
    if (!sregs_valid(v, s))
        return -EINVAL;
    if (set_apic_base(v, s->apic_base))
        return -EINVAL;
    struct cpu *c = emu_cpu(v->emu);
    static const enum emu_sreg order[8] = {EMU_CS, EMU_DS, EMU_ES, EMU_FS,
                                           EMU_GS, EMU_SS, EMU_TR, EMU_LDTR};
    const struct kvm_segment *src[8] = {&s->cs, &s->ds, &s->es, &s->fs,
                                        &s->gs, &s->ss, &s->tr, &s->ldt};
    for (int i = 0; i < 8; i++)
        seg_from_kvm(src[i], &c->seg[order[i]]);
    c->gdtr.base = s->gdt.base;
    c->gdtr.limit = s->gdt.limit;
    c->idtr.base = s->idt.base;
    c->idtr.limit = s->idt.limit;
    c->cr0 = s->cr0;
    c->cr2 = s->cr2;
    c->cr3 = s->cr3;
    c->cr4 = s->cr4;
    c->cr8 = s->cr8;
    c->efer = s->efer;
    /* KVM: a vCPU that is given state is runnable (the BSP leaves UNINITIALIZED etc.) */
    if (v->mp_state == KVM_MP_STATE_SIPI_RECEIVED && s->cs.selector == 0)
        v->mp_state = KVM_MP_STATE_RUNNABLE;
    return 0;
}

static long set_sregs(struct abi_vcpu *v, const struct kvm_sregs *in)
{
    struct kvm_sregs2 s2;
    memset(&s2, 0, sizeof s2);
    memcpy(&s2, in, offsetof(struct kvm_sregs, interrupt_bitmap));
    long r = set_sregs_common(v, &s2);
    if (r)
        return r;
    struct cpu *c = emu_cpu(v->emu);
    /* the first set bit of interrupt_bitmap becomes the injected interrupt */
    c->ev.irq_injected = false;
    for (int i = 0; i < 256; i++)
        if (in->interrupt_bitmap[i / 64] & (1ull << (i % 64))) {
            c->ev.irq_injected = true;
            c->ev.irq_vector = (uint8_t)i;
            c->ev.irq_soft = false;
            break;
        }
    emu_state_changed(v->emu);
    return 0;
}

static bool pae_paging(const struct cpu *c)
{
    return (c->cr0 & CR0_PG) && (c->cr4 & CR4_PAE) && !(c->efer & EFER_LMA);
}

static long get_sregs2(struct abi_vcpu *v, struct kvm_sregs2 *s)
{
    memset(s, 0, sizeof *s);
    get_sregs_common(v, s);
    struct cpu *c = emu_cpu(v->emu);
    if (pae_paging(c)) {
        memcpy(s->pdptrs, c->pdptrs, sizeof s->pdptrs);
        s->flags |= KVM_SREGS2_FLAGS_PDPTRS_VALID;
    }
    return 0;
}

static long set_sregs2(struct abi_vcpu *v, const struct kvm_sregs2 *s)
{
    if (s->flags & ~(uint64_t)KVM_SREGS2_FLAGS_PDPTRS_VALID)
        return -EINVAL;
    bool pdptrs = s->flags & KVM_SREGS2_FLAGS_PDPTRS_VALID;
    bool pae = (s->cr0 & CR0_PG) && (s->cr4 & CR4_PAE) && !(s->efer & EFER_LMA);
    if (pdptrs && !pae)
        return -EINVAL;
    long r = set_sregs_common(v, s);
    if (r)
        return r;
    emu_state_changed(v->emu); /* reloads PDPTRs from CR3 when in PAE mode */
    if (pdptrs)
        memcpy(emu_cpu(v->emu)->pdptrs, s->pdptrs, sizeof s->pdptrs);
    return 0;
}

/* ---------------- FPU / XSAVE / XCRS ---------------- */

static long get_fpu(struct abi_vcpu *v, struct kvm_fpu *f)
{
    const struct emu_fpu *e = &emu_cpu(v->emu)->fpu;
    memset(f, 0, sizeof *f);
    memcpy(f->fpr, e->st, sizeof f->fpr);
    f->fcw = e->fcw;
    f->fsw = e->fsw;
    f->ftwx = e->ftw;
    f->last_opcode = e->fop;
    f->last_ip = e->fip;
    f->last_dp = e->fdp;
    memcpy(f->xmm, e->xmm, sizeof f->xmm);
    f->mxcsr = e->mxcsr;
    return 0;
}

static long set_fpu(struct abi_vcpu *v, const struct kvm_fpu *f)
{
    struct emu_fpu *e = &emu_cpu(v->emu)->fpu;
    memcpy(e->st, f->fpr, sizeof f->fpr);
    e->fcw = f->fcw;
    e->fsw = f->fsw;
    e->ftw = f->ftwx;
    e->fop = f->last_opcode;
    e->fip = f->last_ip;
    e->fdp = f->last_dp;
    memcpy(e->xmm, f->xmm, sizeof f->xmm);
    e->mxcsr = f->mxcsr;
    return 0;
}

/* KVM_GET/SET_XSAVE: the region format (standard XSAVE layout, 4096 bytes) is
 * converted by emu (emu/xsave.h), masked with the XCR0 bits we offer. */
static void xsave_fill(struct abi_vcpu *v, uint8_t *x)
{
    memset(x, 0, sizeof(struct kvm_xsave));
    emu_xsave_to_kvm(emu_cpu(v->emu), x, abi_supported_xcr0());
}

static long set_xsave(struct abi_vcpu *v, const uint8_t *x)
{
    return emu_xsave_from_kvm(emu_cpu(v->emu), x, abi_supported_xcr0());
}

static long get_xcrs(struct abi_vcpu *v, struct kvm_xcrs *x)
{
    memset(x, 0, sizeof *x);
    x->nr_xcrs = 1;
    x->xcrs[0].xcr = 0;
    x->xcrs[0].value = emu_cpu(v->emu)->xcr0;
    return 0;
}

static long set_xcrs(struct abi_vcpu *v, const struct kvm_xcrs *x)
{
    if (x->nr_xcrs > KVM_MAX_XCRS || x->flags)
        return -EINVAL;
    /* x86.c kvm_vcpu_ioctl_x86_set_xcrs: only the first XCR0 entry counts, other XCR
     * numbers are skipped; __kvm_set_xcr checks it against guest_supported_xcr0, i.e. the
     * vCPU's CPUID leaf 0DH (nothing but x87 before KVM_SET_CPUID2) */
    for (unsigned i = 0; i < x->nr_xcrs; i++) {
        if (x->xcrs[i].xcr != 0)
            continue;
        const struct kvm_cpuid_entry2 *d = abi_cpuid_find(v->cpuid, v->ncpuid, 0xd, 0);
        uint64_t guest = d ? ((uint64_t)d->edx << 32 | d->eax) & abi_supported_xcr0() : 0;
        uint64_t val = x->xcrs[i].value;
        if (!emu_xcr0_valid(val, guest))
            return -EINVAL;
        emu_cpu(v->emu)->xcr0 = val;
        break;
    }
    return 0;
}

/* ---------------- DEBUGREGS / EVENTS / MP_STATE ---------------- */

static long get_debugregs(struct abi_vcpu *v, struct kvm_debugregs *d)
{
    const struct cpu *c = emu_cpu(v->emu);
    memset(d, 0, sizeof *d);
    memcpy(d->db, c->dr, sizeof d->db);
    d->dr6 = c->dr[6];
    d->dr7 = c->dr[7];
    return 0;
}

static long set_debugregs(struct abi_vcpu *v, const struct kvm_debugregs *d)
{
    if (d->flags || (d->dr6 >> 32) || (d->dr7 >> 32))
        return -EINVAL;
    struct cpu *c = emu_cpu(v->emu);
    memcpy(c->dr, d->db, sizeof d->db);
    c->dr[6] = d->dr6;
    c->dr[7] = d->dr7;
    return 0;
}

static long get_events(struct abi_vcpu *v, struct kvm_vcpu_events *e)
{
    const struct emu_events *ev = &emu_cpu(v->emu)->ev;
    memset(e, 0, sizeof *e);
    if (v->vm->exception_payload) {
        e->exception.injected = ev->exc_injected;
        e->exception.pending = ev->exc_pending;
        e->exception_has_payload = ev->exc_has_payload;
        e->exception_payload = ev->exc_payload;
    } else {
        /* without the cap, KVM reports a pending exception as injected */
        e->exception.injected = ev->exc_injected || ev->exc_pending;
    }
    e->exception.nr = ev->exc_vector;
    e->exception.has_error_code = ev->exc_has_error_code;
    e->exception.error_code = ev->exc_error_code;
    e->interrupt.injected = ev->irq_injected;
    e->interrupt.nr = ev->irq_vector;
    e->interrupt.soft = ev->irq_soft;
    e->interrupt.shadow = ev->int_shadow;
    e->nmi.injected = ev->nmi_injected;
    e->nmi.pending = ev->nmi_pending;
    e->nmi.masked = ev->nmi_masked;
    /* kvm_vcpu_ioctl_x86_get_vcpu_events: a KVM_REQ_SMI becomes smi_pending first */
    if (v->lapic && abi_lapic_take_smi(v->lapic))
        emu_cpu(v->emu)->ev.smi_pending = true;
    e->smi.smm = ev->smm;
    e->smi.pending = ev->smi_pending;
    e->smi.smm_inside_nmi = ev->smm_inside_nmi;
    e->smi.latched_init = v->lapic && abi_lapic_latched_init(v->lapic);
    e->flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW |
               KVM_VCPUEVENT_VALID_SMM;
    if (v->vm->exception_payload)
        e->flags |= KVM_VCPUEVENT_VALID_PAYLOAD;
    if (v->vm->triple_fault_event) { /* KVM_REQ_TRIPLE_FAULT pending */
        e->triple_fault.pending = ev->triple_fault_pending;
        e->flags |= KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
    }
    return 0;
}

static long set_events(struct abi_vcpu *v, const struct kvm_vcpu_events *events)
{
    uint32_t valid = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                     KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
                     KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
    if (events->flags & ~valid)
        return -EINVAL;
    /* x86.c kvm_vcpu_ioctl_x86_set_vcpu_events: without VALID_PAYLOAD "pending" and the
     * payload are ignored; with it, pending wins over injected */
    struct kvm_vcpu_events copy = *events;
    struct kvm_vcpu_events *e = &copy;
    if (e->flags & KVM_VCPUEVENT_VALID_PAYLOAD) {
        if (!v->vm->exception_payload)
            return -EINVAL;
        if (e->exception.pending)
            e->exception.injected = 0;
        else
            e->exception_has_payload = 0;
    } else {
        e->exception.pending = 0;
        e->exception_has_payload = 0;
    }
    if ((e->exception.injected || e->exception.pending) &&
        (e->exception.nr > 31 || e->exception.nr == 2 /* NMI */))
        return -EINVAL;
    if ((e->flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT) && !v->vm->triple_fault_event)
        return -EINVAL;
    /* INITs are latched while in SMM: not together with INIT_RECEIVED */
    if ((e->flags & KVM_VCPUEVENT_VALID_SMM) && (e->smi.smm || e->smi.pending) &&
        v->mp_state == KVM_MP_STATE_INIT_RECEIVED)
        return -EINVAL;
    struct emu_events *ev = &emu_cpu(v->emu)->ev;
    ev->exc_injected = e->exception.injected;
    ev->exc_pending = e->exception.pending;
    ev->exc_vector = e->exception.nr;
    ev->exc_has_error_code = e->exception.has_error_code;
    ev->exc_error_code = e->exception.error_code;
    ev->exc_has_payload = (e->flags & KVM_VCPUEVENT_VALID_PAYLOAD) && e->exception_has_payload;
    ev->exc_payload = ev->exc_has_payload ? e->exception_payload : 0;
    ev->irq_injected = e->interrupt.injected;
    ev->irq_vector = e->interrupt.nr;
    ev->irq_soft = e->interrupt.soft;
    if (e->flags & KVM_VCPUEVENT_VALID_SHADOW)
        ev->int_shadow = e->interrupt.shadow;
    ev->nmi_injected = e->nmi.injected;
    if (e->flags & KVM_VCPUEVENT_VALID_NMI_PENDING)
        ev->nmi_pending = e->nmi.pending;
    ev->nmi_masked = e->nmi.masked;
    if (e->flags & KVM_VCPUEVENT_VALID_SMM) {
        /* a change of SMM leaves guest mode, then switches the address space
         * (kvm_leave_nested, kvm_smm_changed) */
        emu_smm_set(v->emu, e->smi.smm);
        ev->smi_pending = e->smi.pending;
        if (e->smi.smm)
            ev->smm_inside_nmi = e->smi.smm_inside_nmi;
        if (v->lapic)
            abi_lapic_set_latched_init(v->lapic, e->smi.latched_init);
    }
    if (e->flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
        ev->triple_fault_pending = e->triple_fault.pending;
    return 0;
}

static long get_mp_state(struct abi_vcpu *v, struct kvm_mp_state *m)
{
    struct cpu *c = emu_cpu(v->emu);
    uint32_t st = v->mp_state;
    if (st == KVM_MP_STATE_RUNNABLE && c->halted)
        st = KVM_MP_STATE_HALTED;
    if (st == KVM_MP_STATE_HALTED && v->lapic &&
        abi_lapic_runnable(v->lapic, emu_get_rflags(v->emu) & EMU_FL_IF))
        st = KVM_MP_STATE_RUNNABLE;
    m->mp_state = st;
    return 0;
}

static long set_mp_state(struct abi_vcpu *v, const struct kvm_mp_state *m)
{
    switch (m->mp_state) {
    case KVM_MP_STATE_RUNNABLE:
        break;
    case KVM_MP_STATE_UNINITIALIZED:
    case KVM_MP_STATE_INIT_RECEIVED:
    case KVM_MP_STATE_HALTED:
    case KVM_MP_STATE_SIPI_RECEIVED:
    case KVM_MP_STATE_AP_RESET_HOLD:
        if (!v->lapic) /* KVM: only RUNNABLE without an in-kernel LAPIC */
            return -EINVAL;
        break;
    default:
        return -EINVAL;
    }
    /* AP_RESET_HOLD (SEV-ES) blocks and wakes like HALTED in KVM's vcpu_block(); it is
     * kept as HALTED here (so KVM_GET_MP_STATE reports 3, not 9) */
    uint32_t st = m->mp_state == KVM_MP_STATE_AP_RESET_HOLD ? KVM_MP_STATE_HALTED : m->mp_state;
    v->mp_state = st;
    emu_cpu(v->emu)->halted = st == KVM_MP_STATE_HALTED;
    return 0;
}

/* ---------------- CPUID2 / TRANSLATE / LAPIC ---------------- */

/* The two tables as the guest sees them (emu_cpuid_runtime) are the same. */
static bool cpuid_runtime_equal(struct abi_vcpu *v, const struct kvm_cpuid_entry2 *e, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct kvm_cpuid_entry2 a = e[i], b = v->cpuid[i];
        uint32_t ra[4] = {a.eax, a.ebx, a.ecx, a.edx}, rb[4] = {b.eax, b.ebx, b.ecx, b.edx};
        emu_cpuid_runtime(v->emu, a.function, a.index, ra);
        emu_cpuid_runtime(v->emu, b.function, b.index, rb);
        if (a.function != b.function || a.index != b.index || a.flags != b.flags ||
            memcmp(ra, rb, sizeof ra))
            return false;
    }
    return true;
}

static long set_cpuid2(struct abi_vcpu *v, unsigned long arg)
{
    struct kvm_cpuid2 hdr;
    if (get(arg, &hdr, sizeof hdr))
        return -EFAULT;
    if (hdr.nent > ABI_MAX_CPUID_ENTRIES)
        return -E2BIG;
    struct kvm_cpuid_entry2 *e = calloc(hdr.nent ? hdr.nent : 1, sizeof *e);
    struct emu_cpuid_entry *ee = calloc(hdr.nent ? hdr.nent : 1, sizeof *ee);
    if (!e || !ee) {
        free(e);
        free(ee);
        return -ENOMEM;
    }
    if (get(arg + sizeof hdr, e, hdr.nent * sizeof *e)) {
        free(e);
        free(ee);
        return -EFAULT;
    }
    /* cpuid.c kvm_update_pv_runtime/__kvm_update_cpuid_runtime: with HLT exits disabled
     * KVM clears KVM_FEATURE_PV_UNHALT in the KVM leaves it finds by signature */
    if (v->vm->disabled_exits & KVM_X86_DISABLE_EXITS_HLT) {
        for (uint32_t base = 0x40000000; base < 0x40010000; base += 0x100) {
            const struct kvm_cpuid_entry2 *sig = abi_cpuid_find(e, hdr.nent, base, 0);
            if (!sig || memcmp(&sig->ebx, "KVMK", 4) || memcmp(&sig->ecx, "VMKV", 4) ||
                memcmp(&sig->edx, "M\0\0\0", 4))
                continue;
            for (unsigned i = 0; i < hdr.nent; i++)
                if (e[i].function == base + 1)
                    e[i].eax &= ~(1u << 7); /* KVM_FEATURE_PV_UNHALT */
            break;
        }
    }
    /* KVM 6.12: after the first KVM_RUN only an identical CPUID may be set, compared after
     * the runtime updates of both (kvm_set_cpuid: __kvm_update_cpuid_runtime on the new
     * table, kvm_cpuid_check_equal against the vCPU's updated one) */
    if (v->stat_exits && (hdr.nent != v->ncpuid || !cpuid_runtime_equal(v, e, hdr.nent))) {
        free(e);
        free(ee);
        return -EINVAL;
    }
    for (unsigned i = 0; i < hdr.nent; i++)
        ee[i] = (struct emu_cpuid_entry){e[i].function, e[i].index, e[i].flags,
                                         e[i].eax,      e[i].ebx,   e[i].ecx,
                                         e[i].edx};
    free(v->cpuid);
    free(v->emu_cpuid);
    v->cpuid = e;
    v->emu_cpuid = ee;
    v->ncpuid = hdr.nent;
    emu_set_cpuid(v->emu, ee, hdr.nent);
    msr_vcpu_set_cpuid(v->msr, e, hdr.nent);
    abi_hv_set_cpuid(v);
    if (v->lapic) {
        const struct kvm_cpuid_entry2 *l1 = abi_cpuid_find(e, hdr.nent, 1, 0);
        abi_lapic_set_cpu_caps(v->lapic, l1 && (l1->ecx & (1u << 21)),
                               abi_maxphyaddr(e, hdr.nent));
        abi_lapic_set_tsc_deadline_cap(v->lapic, l1 && (l1->ecx & (1u << 24)));
    }
    return 0;
}

/* The old KVM_SET_CPUID (cpuid.c kvm_vcpu_ioctl_set_cpuid): entries without index and
 * flags, converted and set like KVM_SET_CPUID2. */
static long set_cpuid1(struct abi_vcpu *v, unsigned long arg)
{
    struct kvm_cpuid hdr;
    if (get(arg, &hdr, sizeof hdr))
        return -EFAULT;
    if (hdr.nent > ABI_MAX_CPUID_ENTRIES)
        return -E2BIG;
    size_t n = hdr.nent ? hdr.nent : 1;
    struct kvm_cpuid_entry *e1 = calloc(n, sizeof *e1);
    struct kvm_cpuid2 *c2 = calloc(1, sizeof *c2 + n * sizeof(struct kvm_cpuid_entry2));
    long r = -ENOMEM;
    if (e1 && c2) {
        r = -EFAULT;
        if (!get(arg + sizeof hdr, e1, hdr.nent * sizeof *e1)) {
            c2->nent = hdr.nent;
            for (unsigned i = 0; i < hdr.nent; i++)
                c2->entries[i] = (struct kvm_cpuid_entry2){.function = e1[i].function,
                                                           .eax = e1[i].eax, .ebx = e1[i].ebx,
                                                           .ecx = e1[i].ecx, .edx = e1[i].edx};
            r = set_cpuid2(v, (unsigned long)c2); /* reads our own buffer */
        }
    }
    free(e1);
    free(c2);
    return r;
}

static long get_cpuid2(struct abi_vcpu *v, unsigned long arg)
{
    struct kvm_cpuid2 hdr;
    if (get(arg, &hdr, sizeof hdr))
        return -EFAULT;
    if (hdr.nent < v->ncpuid)
        return -E2BIG; /* nent left as the caller gave it (checked on real KVM) */
    for (unsigned i = 0; i < v->ncpuid; i++) {
        struct kvm_cpuid_entry2 e = v->cpuid[i];
        /* KVM's runtime updates are made in its own table, so KVM_GET_CPUID2 shows them */
        uint32_t r[4] = {e.eax, e.ebx, e.ecx, e.edx};
        emu_cpuid_runtime(v->emu, e.function, e.index, r);
        e.eax = r[0], e.ebx = r[1], e.ecx = r[2], e.edx = r[3];
        if (put(arg + sizeof hdr + i * sizeof e, &e, sizeof e))
            return -EFAULT;
    }
    hdr.nent = v->ncpuid;
    return put(arg, &hdr, sizeof hdr);
}

static long translate(struct abi_vcpu *v, unsigned long arg)
{
    struct kvm_translation t;
    if (get(arg, &t, sizeof t))
        return -EFAULT;
    uint64_t gpa = 0;
    bool w = false, u = false;
    bool ok = emu_translate(v->emu, t.linear_address, &gpa, &w, &u);
    t.physical_address = ok ? gpa : ~0ull; /* KVM: INVALID_GPA when unmapped */
    t.valid = ok;
    t.writeable = ok && w;
    t.usermode = ok && u;
    return put(arg, &t, sizeof t);
}

/* ---------------- dispatch of the state ioctls ---------------- */

long abi_vcpu_state_ioctl(struct abi_vcpu *v, unsigned long req, unsigned long arg, bool *handled)
{
    union {
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        struct kvm_sregs2 sregs2;
        struct kvm_fpu fpu;
        struct kvm_xsave xsave;
        struct kvm_xcrs xcrs;
        struct kvm_debugregs dbg;
        struct kvm_vcpu_events ev;
        struct kvm_mp_state mp;
        struct kvm_lapic_state lapic;
    } u;
    long r;
    *handled = true;
    memset(&u, 0, sizeof u);
#define GET_OP(REQ, FIELD, FN)                                                             \
    case REQ:                                                                              \
        r = FN(v, &u.FIELD);                                                               \
        return r ? r : put(arg, &u.FIELD, sizeof u.FIELD);
#define SET_OP(REQ, FIELD, FN)                                                             \
    case REQ:                                                                              \
        if (get(arg, &u.FIELD, sizeof u.FIELD))                                            \
            return -EFAULT;                                                                \
        return FN(v, &u.FIELD);
    switch (req) {
        GET_OP(KVM_GET_REGS, regs, get_regs)
        SET_OP(KVM_SET_REGS, regs, set_regs)
        GET_OP(KVM_GET_SREGS, sregs, get_sregs)
        SET_OP(KVM_SET_SREGS, sregs, set_sregs)
        GET_OP(KVM_GET_SREGS2, sregs2, get_sregs2)
        SET_OP(KVM_SET_SREGS2, sregs2, set_sregs2)
        GET_OP(KVM_GET_FPU, fpu, get_fpu)
        SET_OP(KVM_SET_FPU, fpu, set_fpu)
        GET_OP(KVM_GET_XCRS, xcrs, get_xcrs)
        SET_OP(KVM_SET_XCRS, xcrs, set_xcrs)
        GET_OP(KVM_GET_DEBUGREGS, dbg, get_debugregs)
        SET_OP(KVM_SET_DEBUGREGS, dbg, set_debugregs)
        GET_OP(KVM_GET_VCPU_EVENTS, ev, get_events)
        SET_OP(KVM_SET_VCPU_EVENTS, ev, set_events)
        GET_OP(KVM_GET_MP_STATE, mp, get_mp_state)
        SET_OP(KVM_SET_MP_STATE, mp, set_mp_state)
    case KVM_GET_XSAVE:
    case KVM_GET_XSAVE2: /* size = KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) = sizeof(kvm_xsave) */
        xsave_fill(v, (uint8_t *)&u.xsave);
        return put(arg, &u.xsave, sizeof u.xsave);
    case KVM_SET_XSAVE:
        if (get(arg, &u.xsave, sizeof u.xsave))
            return -EFAULT;
        return set_xsave(v, (const uint8_t *)&u.xsave);
    case KVM_SET_CPUID2:
        return set_cpuid2(v, arg);
    case KVM_SET_CPUID:
        return set_cpuid1(v, arg);
    case KVM_GET_NESTED_STATE:
        return abi_vcpu_get_nested_state(v, arg);
    case KVM_SET_NESTED_STATE:
        return abi_vcpu_set_nested_state(v, arg);
    case KVM_GET_CPUID2:
        return get_cpuid2(v, arg);
    case KVM_TRANSLATE:
        return translate(v, arg);
    case KVM_GET_LAPIC:
        if (!v->lapic)
            return -EINVAL;
        r = abi_lapic_get_state(v->lapic, &u.lapic);
        return r ? r : put(arg, &u.lapic, sizeof u.lapic);
    case KVM_SET_LAPIC:
        if (!v->lapic)
            return -EINVAL;
        if (get(arg, &u.lapic, sizeof u.lapic))
            return -EFAULT;
        return abi_lapic_set_state(v->lapic, &u.lapic);
    default:
        *handled = false;
        return -EINVAL;
    }
#undef GET_OP
#undef SET_OP
}
