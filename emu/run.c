/* emu/: the run loop: pending-exit completion, event injection at instruction
 * boundaries, fetch through the decode cache, dispatch, fault handling with
 * #DF / triple-fault escalation (SDM vol.3 6.15, tables 6-4/6-5). */
#include <sched.h>
#include <stddef.h>
#include <string.h>

#include "emu/internal.h"

/* --- completions (KVM: complete_userspace_io / complete_emulated_msr) --- */

static void finish_io_in(struct emu_vcpu *v);

/* KVM completes a pending IN at the start of the next KVM_RUN even when immediate_exit
 * makes that KVM_RUN return -EINTR at once (kvm_arch_vcpu_ioctl_run runs
 * complete_userspace_io first): the selftests' vcpu_save_state relies on it. A plain IN
 * cannot fault, so it is finished right here; INS (memory writes) finishes in emu_run. */
void emu_complete_io(struct emu_vcpu *v, const void *in_data)
{
    if (v->pending != EMU_PEND_IO_IN)
        return;
    if (in_data)
        memcpy(v->io_data, in_data, (size_t)v->io_in_reg_size * v->io_count);
    if (!v->io_string) {
        v->pending = EMU_PEND_NONE;
        finish_io_in(v);
    }
}

void emu_complete_mmio(struct emu_vcpu *v, const void *read_data)
{
    if (v->pending == EMU_PEND_MMIO_READ && read_data) {
        /* the answer joins those the instruction already had (emu/mem.c mmio_read) */
        struct emu_mmio_piece *p = &v->mmio_rd[v->mmio_nrd++];
        p->gpa = v->mmio_gpa;
        p->len = v->mmio_len;
        memcpy(p->data, read_data, v->mmio_len);
        v->mmio_replay = true;
        v->pending = EMU_PEND_NONE;
    }
}

void emu_complete_msr(struct emu_vcpu *v, bool error, uint64_t data)
{
    struct cpu *c = &v->cpu;
    if (v->pending != EMU_PEND_MSR_READ && v->pending != EMU_PEND_MSR_WRITE)
        return;
    if (error) {
        emu_queue_exception(v, EMU_GP, true, 0);
    } else {
        if (v->pending == EMU_PEND_MSR_READ) {
            c->gpr[EMU_RAX] = (uint32_t)data;
            c->gpr[EMU_RDX] = data >> 32;
        }
        c->rip = v->pending_next_rip;
    }
    v->pending = EMU_PEND_NONE;
}

/* IN / INS finish here, on the next emu_run after emu_complete_io (KVM semantics):
 * the register/memory is written and RIP advances (or, for REP INS with count left,
 * stays so the instruction continues). */
static void finish_io_in(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    unsigned sz = v->io_in_reg_size;
    const struct decoded_insn *d = &v->scratch;
    if (!v->io_string) {
        uint64_t val = 0;
        memcpy(&val, v->io_data, sz);
        emu_gpr_write(v, EMU_RAX, sz, val);
        c->rip = v->pending_next_rip;
        return;
    }
    unsigned as = d->addrsize;
    bool rep = d->prefixes & (DPFX_REP | DPFX_REPNE);
    int64_t step = (emu_flags(v) & EMU_FL_DF) ? -(int64_t)sz : (int64_t)sz;
    if (v->io_mmio_dst && rep && step > 0) {
        /* to MMIO, forward: the batch is one write (KVM's OP_MEM_STR writeback of its
         * read-ahead buffer), which leaves in 8-byte exits (emu/mem.c mmio_write) */
        uint64_t m = c->gpr[EMU_RCX] & emu_mask(as);
        if (m > v->io_count)
            m = v->io_count;
        if (m) {
            uint64_t di = c->gpr[EMU_RDI] & emu_mask(as);
            uint64_t lin = emu_seg_lin(v, EMU_ES, di, (unsigned)(m * sz), EMU_ACC_WRITE);
            emu_lin_write_buf(v, lin, v->io_data, (unsigned)(m * sz), EMU_ACC_WRITE);
            emu_gpr_write(v, EMU_RDI, as, di + m * sz);
            emu_gpr_write(v, EMU_RCX, as, (c->gpr[EMU_RCX] & emu_mask(as)) - m);
        }
        if ((c->gpr[EMU_RCX] & emu_mask(as)) == 0)
            c->rip = v->pending_next_rip;
        return;
    }
    for (unsigned i = 0; i < v->io_count; i++) {
        /* KVM re-executes the REP INS and consumes min(RCX, batched) elements: user
         * space may have lowered RCX during the exit (userspace_io_test) */
        if (rep && (c->gpr[EMU_RCX] & emu_mask(as)) == 0)
            break;
        uint64_t di = c->gpr[EMU_RDI] & emu_mask(as);
        uint64_t val = 0;
        memcpy(&val, v->io_data + i * sz, sz);
        emu_mem_write(v, EMU_ES, di, sz, val);
        emu_gpr_write(v, EMU_RDI, as, di + (uint64_t)step);
        if (rep)
            emu_gpr_write(v, EMU_RCX, as, (c->gpr[EMU_RCX] & emu_mask(as)) - 1);
    }
    if (!rep || (c->gpr[EMU_RCX] & emu_mask(as)) == 0)
        c->rip = v->pending_next_rip;
}

/* --- fetch --- */

static void fill_internal(struct emu_vcpu *v)
{
    struct emu_exit *x = v->exit;
    x->reason = EMU_EXIT_INTERNAL;
    x->internal.suberror = 1; /* KVM_INTERNAL_ERROR_EMULATION */
    memset(x->internal.insn_bytes, 0, sizeof x->internal.insn_bytes);
    const uint8_t *bytes = v->insn_bytes;
    unsigned len = v->insn_len;
    if (v->blk && v->insn >= &v->blk->ins[0].d && v->insn <= &v->blk->ins[v->blk->n - 1].d) {
        /* a block record: its bytes are in the block's copy */
        const struct emu_binsn *r = (const struct emu_binsn *)((const uint8_t *)v->insn -
                                                                offsetof(struct emu_binsn, d));
        bytes = v->blk->bytes + r->off;
        len = r->d.length;
    }
    x->internal.insn_len = (uint8_t)len;
    memcpy(x->internal.insn_bytes, bytes, len > 15 ? 15 : len);
}

/* Decode one instruction that crosses a page (or sits in MMIO) into v->scratch. */
static const struct decoded_insn *fetch_slow(struct emu_vcpu *v, uint64_t lin, const uint8_t *h,
                                             unsigned avail, emu_handler_fn **fn, bool *priv)
{
    uint8_t buf[DECODER_MAX_LEN];
    unsigned n = 0;
    v->blk = NULL;
    if (h) {
        n = avail < DECODER_MAX_LEN ? avail : DECODER_MAX_LEN;
        memcpy(buf, h, n);
    } else {
        v->insn_len = 0;
        emu_unimplemented(v); /* executing from MMIO */
    }
    struct decoded_insn *d = &v->scratch;
    if (decoder_decode(buf, n, v->mode, d) == DECODER_TRUNCATED) {
        uint64_t next = v->mode == DECODER_MODE_64 ? lin + n : (uint32_t)(lin + n);
        emu_lin_read_buf(v, next, buf + n, DECODER_MAX_LEN - n, EMU_ACC_FETCH);
        decoder_decode(buf, DECODER_MAX_LEN, v->mode, d);
    }
    memcpy(v->insn_bytes, buf, sizeof buf);
    v->insn_len = d->length;
    *fn = d->status == DECODER_OK ? emu_handler_for(d->op) : NULL;
    *priv = d->status == DECODER_OK && emu_op_privileged(d->op);
    if (!*fn)
        *fn = emu_h_invalid;
    return d;
}

/* --- events --- */

static bool is_contributory(unsigned vec)
{
    return vec == EMU_DE || (vec >= EMU_TS && vec <= EMU_GP);
}

/* Fault-class exceptions (KVM x86.c exception_type() == EXCPT_FAULT): everything but #DB
 * (trap- or fault-like, never sets RF), #BP/#OF (traps), #DF/#MC (aborts); reserved
 * vectors count as faults. */
static bool is_fault_class(unsigned vec)
{
    return vec < 32 && vec != EMU_DB && vec != EMU_NMI && vec != EMU_BP && vec != EMU_OF &&
           vec != EMU_DF && vec != EMU_MC;
}

static bool has_error_code(unsigned vec)
{
    return vec == EMU_DF || (vec >= EMU_TS && vec <= EMU_PF) || vec == EMU_AC || vec == EMU_CP;
}

static void shutdown(struct emu_vcpu *v)
{
    /* a triple fault in L2 is a VM exit when L1 intercepts it (SVM SHUTDOWN intercept,
     * VMX exit reason 2; KVM nested_svm_triple_fault / nested_vmx_triple_fault) */
    if (v->nested.guest_mode) {
        v->delivering = false;
        v->nested.ops->shutdown(v);
    }
    v->cpu.shutdown = true;
    v->delivering = false;
    v->exit->reason = EMU_EXIT_SHUTDOWN;
    v->exit->shutdown.requested = false;
}

static void vectoring_begin(struct emu_vcpu *v, uint8_t vec, uint8_t type, uint32_t err)
{
    struct emu_nx_vectoring *vc = &v->nested.vectoring;
    vc->valid = true;
    vc->vector = vec;
    vc->type = type;
    vc->has_error = err != EMU_NO_ERRCODE;
    vc->error_code = vc->has_error ? err : 0;
}

/* Deliver a hardware exception (fault class: return RIP = faulting instruction).
 * `reinject`: the exception was already being delivered (KVM "injected"): L1's
 * intercepts saw it then. Returns false if the vCPU shut down. */
static bool take_exception(struct emu_vcpu *v, uint8_t vec, uint32_t err, bool has_cr2,
                           uint64_t cr2, bool reinject)
{
    if (!has_error_code(vec) || !(v->cpu.cr0 & 1))
        err = EMU_NO_ERRCODE;
    else if (err == EMU_NO_ERRCODE)
        err = 0;
    /* L1's exception intercepts see each exception before #DF merging, and the #DF again
     * (KVM kvm_multiple_exception: is_exception_vmexit first, then the class rules) */
    if (v->nested.guest_mode)
        v->nested.ops->exception(v, vec, err, has_cr2, cr2, reinject);
    if (v->delivering) {
        unsigned first = v->delivering_vector;
        if (first == EMU_DF) {
            shutdown(v); /* SDM 6.15 interrupt 8: fault while delivering #DF -> shutdown */
            return false;
        }
        if ((is_contributory(first) && is_contributory(vec)) ||
            (first == EMU_PF && (vec == EMU_PF || is_contributory(vec)))) {
            if (has_cr2)
                v->cpu.cr2 = cr2; /* the #PF happened, then merged into #DF */
            vec = EMU_DF;
            err = (v->cpu.cr0 & 1) ? 0 : EMU_NO_ERRCODE;
            has_cr2 = false;
            if (v->nested.guest_mode)
                v->nested.ops->exception(v, vec, err, false, 0, false);
        }
    }
    if (has_cr2)
        v->cpu.cr2 = cr2;
    /* A fault pushes RFLAGS with RF=1, so the IRET back restarts the instruction without
     * its instruction breakpoint firing again (SDM vol.3 18.3.1.1; KVM x86.c
     * kvm_inject_exception: "Fault-class exceptions, except #DBs, set RF=1 in the RFLAGS
     * value pushed on the stack"). Only once L1 did not take it (above). */
    if (is_fault_class(vec))
        emu_flags_set(v, emu_flags(v) | EMU_FL_RF);
    /* an exception ends the instruction the MOV SS shadow held #DB traps for; a #DB
     * clears DR7.GD (KVM kvm_inject_exception) */
    v->dbg_pending = 0;
    if (vec == EMU_DB && (v->cpu.dr[7] & (1ull << 13))) {
        v->cpu.dr[7] &= ~(1ull << 13);
        emu_debug_update(v);
    }
    v->delivering = true;
    v->delivering_vector = vec;
    vectoring_begin(v, vec, EMU_NX_EV_EXCEPTION, err);
    emu_deliver_event(v, vec, err, false, v->cpu.rip);
    v->nested.vectoring.valid = false;
    v->delivering = false;
    return true;
}

/* Deliver an external event (NMI, interrupt): same nesting rules. */
void emu_take_external(struct emu_vcpu *v, uint8_t vec)
{
    v->code_epoch++; /* code other CPUs or the VMM wrote is visible now (emu/block.c) */
    v->delivering = true;
    v->delivering_vector = vec == EMU_NMI ? EMU_NMI : 0xff;
    vectoring_begin(v, vec, vec == EMU_NMI ? EMU_NX_EV_NMI : EMU_NX_EV_INTR, EMU_NO_ERRCODE);
    emu_deliver_event(v, vec, EMU_NO_ERRCODE, false, v->cpu.rip);
    v->nested.vectoring.valid = false;
    v->delivering = false;
}

void emu_take_injected(struct emu_vcpu *v, uint8_t vec, uint8_t type, uint32_t err,
                       uint64_t return_rip)
{
    v->code_epoch++;
    if (type == EMU_NX_EV_EXCEPTION && vec != EMU_BP && vec != EMU_OF) {
        take_exception(v, vec, err, false, 0, true);
        return;
    }
    v->delivering = true;
    v->delivering_vector = vec;
    vectoring_begin(v, vec, type, EMU_NO_ERRCODE);
    emu_deliver_event(v, vec, EMU_NO_ERRCODE, type == EMU_NX_EV_SOFT, return_rip);
    v->nested.vectoring.valid = false;
    v->delivering = false;
}

void emu_take_nmi(struct emu_vcpu *v)
{
    struct emu_events *ev = &v->cpu.ev;
    ev->nmi_pending = ev->nmi_injected = false;
    ev->nmi_masked = true; /* until IRET (SDM vol.3 6.7.1) */
    v->cpu.halted = false;
    emu_take_external(v, EMU_NMI);
}

/* Returns true if an event was delivered (or the CPU is ready to run). */
static void inject_events(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    struct emu_events *ev = &c->ev;
    if (v->has_irq_ops && v->irq_ops.smi_pending && v->irq_ops.smi_pending(v->irq_ops.ctx, c))
        ev->smi_pending = true; /* process_smi */
    if (ev->exc_pending || ev->exc_injected) {
        bool reinject = ev->exc_injected;
        ev->exc_pending = ev->exc_injected = false;
        bool cr2 = ev->exc_vector == EMU_PF && ev->exc_has_payload;
        take_exception(v, ev->exc_vector, ev->exc_has_error_code ? ev->exc_error_code : EMU_NO_ERRCODE,
                       cr2, cr2 ? ev->exc_payload : 0, reinject);
        return;
    }
    if (ev->triple_fault_pending) {
        ev->triple_fault_pending = false;
        shutdown(v);
        v->exit->shutdown.requested = true;
        return;
    }
    /* GIF = 0 (CLGI, or just after #VMEXIT) holds off SMIs, NMIs and interrupts
     * (APM 15.17, svm_smi_blocked) */
    if (v->nested.svm.gif_clear)
        return;
    if (ev->smi_pending && emu_smm_take_smi(v))
        return; /* kvm_check_and_inject_events: can_inject = false after enter_smm */
    if (v->nested.guest_mode) {
        v->nested.ops->events(v); /* L1's interrupt controls decide (intercept or L2's IDT) */
        return;
    }
    /* an NMI is taken from the APIC only when it can be delivered (not lost while masked) */
    /* NMIs wait out STI and MOV-SS shadows alike (KVM svm_nmi_blocked: int_state &
     * SVM_INTERRUPT_SHADOW_MASK; vmx_nmi_blocked: GUEST_INTR_STATE_STI | MOV_SS) */
    if (!ev->nmi_masked && !ev->int_shadow) {
        bool nmi = ev->nmi_pending || ev->nmi_injected;
        if (!nmi && v->has_irq_ops && v->irq_ops.nmi_pending && v->irq_ops.nmi_pending(v->irq_ops.ctx, c))
            nmi = true;
        if (nmi) {
            emu_take_nmi(v);
            return;
        }
    } else if (ev->nmi_masked && v->has_irq_ops && v->irq_ops.nmi_pending) {
        /* blocked: the APIC folds its queued NMIs to the one a CPU latches (KVM
         * process_nmi's limit while NMIs are masked); it hands none out */
        (void)v->irq_ops.nmi_pending(v->irq_ops.ctx, c);
    }
    /* KVM_GUESTDBG_BLOCKIRQ (0x100000): no interrupts while the VMM single-steps */
    bool can_irq = (c->rflags & EMU_FL_IF) && !ev->int_shadow && !(v->dbg_control & 0x100000u);
    if (ev->irq_injected) {
        if (!can_irq && !ev->irq_soft)
            return;
        ev->irq_injected = false;
        c->halted = false;
        emu_take_external(v, ev->irq_vector);
        return;
    }
    if (can_irq && v->has_irq_ops && v->irq_ops.pending) {
        int vec = v->irq_ops.pending(v->irq_ops.ctx, c);
        if (vec >= 0) {
            if (v->irq_ops.ack)
                v->irq_ops.ack(v->irq_ops.ctx, c, vec);
            c->halted = false;
            emu_take_external(v, (uint8_t)vec);
        }
    }
}

/* --- the loop --- */

/* A new physical-memory generation (memslots, remote TLB flush): drop the translations,
 * then publish that it was seen (emu_wait_generation_seen). */
static void sync_generation(struct emu_vcpu *v)
{
    uint64_t gen = __atomic_load_n(&v->pm_as[0]->generation, __ATOMIC_ACQUIRE);
    emu_flush_caches(v);
    __atomic_store_n(&v->pm_gen, gen, __ATOMIC_RELEASE);
}

/* Everything looked at once per block (and before a single step): memslot generation,
 * stop requests, pending events and halt. Returns false when emu_run must return. */
static inline bool attention(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    struct emu_exit *x = v->exit;
    if (__builtin_expect(v->pm_as[0]->generation != v->pm_gen, 0))
        sync_generation(v);
    if (__builtin_expect(__atomic_load_n(&v->stop_req, __ATOMIC_RELAXED), 0)) {
        __atomic_store_n(&v->stop_req, 0, __ATOMIC_RELAXED);
        x->reason = EMU_EXIT_INTERRUPTED;
        return false;
    }
    struct emu_events *ev = &c->ev;
    if (__atomic_load_n(&v->kick, __ATOMIC_RELAXED) || ev->exc_pending || ev->exc_injected ||
        ev->nmi_pending || ev->nmi_injected || ev->irq_injected || ev->triple_fault_pending ||
        ev->smi_pending ||
        c->halted || v->has_irq_ops) {
        __atomic_store_n(&v->kick, 0, __ATOMIC_RELAXED);
        inject_events(v);
        if (c->shutdown)
            return false;
        if (c->halted) {
            x->reason = EMU_EXIT_HLT;
            return false;
        }
        if (__atomic_load_n(&v->stop_req, __ATOMIC_RELAXED)) { /* an irq hook asked to stop here (interrupt window) */
            __atomic_store_n(&v->stop_req, 0, __ATOMIC_RELAXED);
            x->reason = EMU_EXIT_INTERRUPTED;
            return false;
        }
    }
    return true;
}

/* One instruction with everything checked around it: guest-debug exits and breakpoints,
 * EFLAGS.TF, data breakpoints. Returns false when emu_run must return. */
static bool step_one(struct emu_vcpu *v, const struct decoded_insn *d, emu_handler_fn *fn,
                     bool priv)
{
    struct cpu *c = &v->cpu;
    struct emu_exit *x = v->exit;
    struct emu_events *ev = &c->ev;
    uint64_t rip = c->rip;
    v->insn = d;
    v->insn_rip = rip;
    uint64_t next = rip + d->length;
    if (v->mode == DECODER_MODE_16)
        next = (uint16_t)next;
    else if (v->mode == DECODER_MODE_32)
        next = (uint32_t)next;
    v->next_rip = next;
    bool rf = c->rflags & EMU_FL_RF;
    /* a code breakpoint comes before the instruction's own faults (SDM vol.3 6.9); not
     * again for an instruction restarted after an MMIO read, which was past them (KVM
     * re-executes it in the emulator, EMULTYPE_NO_DECODE, without a breakpoint check) */
    bool restart = v->mmio_replay;
    if (__builtin_expect(v->dbg_gexec != 0, 0) && !rf && !restart)
        emu_debug_exec_check(v, v->mode == DECODER_MODE_64 ? rip
                                                           : (uint32_t)(c->seg[EMU_CS].base + rip));
    if (priv && c->cpl != 0 && d->status == DECODER_OK)
        emu_raise(v, EMU_GP, 0);
    if (__builtin_expect(v->dbg_control != 0, 0) && !restart) {
        uint64_t lin = v->mode == DECODER_MODE_64 ? rip : (uint32_t)(c->seg[EMU_CS].base + rip);
        if (emu_debug_before(v, lin))
            return false;
        if (d->status == DECODER_OK && d->op == DOP_INT3 && emu_debug_int3_exit(v))
            return false;
    }
    v->dbg_gdata_hit = 0; /* hits of an event delivery before this instruction do not count */
    v->pmu_acc = 0;
    unsigned cpl = c->cpl; /* the vPMU counts an instruction at the CPL it ran at */
    uint8_t shadow = ev->int_shadow;
    /* SYSCALL/SYSRET: the TF they leave decides (v->tf_trap_after), not this one */
    bool tf = (c->rflags & EMU_FL_TF) && d->op != DOP_SYSCALL && d->op != DOP_SYSRET;
    int r = fn(v, d);
    /* an IN or RDMSR/WRMSR that exits to user space completes at the next KVM_RUN: the
     * single-step trap follows it there (KVM complete_fast_pio_in /
     * complete_emulated_msr -> kvm_skip_emulated_instruction -> kvm_vcpu_do_singlestep) */
    if (__builtin_expect(tf && v->pending != EMU_PEND_NONE, 0)) {
        v->tf_trap_after = true;
        tf = false;
    }
    /* this instruction opened a MOV SS / POP SS shadow: its #DB traps wait for the next */
    bool movss = !(shadow & 2) && (ev->int_shadow & 2);
    /* RF is cleared when an instruction completes, except by IRET, which loads it (SDM
     * vol.3 18.3.1.1); a faulting instruction does not get here. An RF of 1 (from IRET
     * or KVM_SET_REGS) sends the next instruction through this path (run_loop). */
    if (rf && d->op != DOP_IRET && d->op != DOP_IRETD && d->op != DOP_IRETQ)
        c->rflags &= ~(uint64_t)EMU_FL_RF;
    if (shadow)
        ev->int_shadow = 0; /* the shadow covers exactly one instruction */
    c->rip = v->next_rip;
    /* release: the instruction's guest stores before the count emu_dirty_log_sync reads */
    __atomic_store_n(&v->icount, v->icount + 1, __ATOMIC_RELEASE);
    if (__builtin_expect(v->pmu_precise, 0))
        emu_pmu_account(v, d, cpl);
    if (__builtin_expect(tf || v->dbg_control || v->dbg_data_hit || v->dbg_gdata_hit ||
                         v->dbg_pending, 0)) {
        bool soft = d->op == DOP_INT || d->op == DOP_INT3 || d->op == DOP_INTO || d->op == DOP_INT1;
        emu_debug_after(v, tf, soft, movss);
        if (x->reason == EMU_EXIT_DEBUG)
            return false;
    }
    return !(r == EMU_H_EXIT || v->exit_ready);
}

/* KVM finishes an MMIO read at the next KVM_RUN by running the instruction again
 * before anything else: complete_emulated_mmio -> complete_emulated_io ->
 * kvm_emulate_instruction(EMULTYPE_NO_DECODE), ahead of vcpu_run and its event
 * injection. So the instruction at mmio_rip runs here, alone, with the answers it has
 * (emu/mem.c mmio_read); they are dropped once it is over, so no other instruction (an
 * interrupt handler reading the same register, the next one) can be served them. If
 * user space moved RIP meanwhile, the instruction is abandoned with its answers.
 * Returns false when emu_run must return. */
static bool replay_mmio_insn(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    if (c->rip != v->mmio_rip) {
        emu_mmio_drop(v);
        return true;
    }
    v->mmio_rdpos = 0;
    uint64_t lin = v->mode == DECODER_MODE_64 ? c->rip : (uint32_t)(c->seg[EMU_CS].base + c->rip);
    unsigned avail;
    uint64_t gpa;
    uint8_t *h = emu_fetch_ptr(v, lin, &avail, &gpa);
    struct emu_block *b = h ? emu_block_get(v, h, avail, gpa) : NULL;
    bool go;
    if (b) {
        v->blk = b;
        go = step_one(v, &b->ins[0].d, b->ins[0].fn, b->ins[0].priv);
    } else {
        emu_handler_fn *fn;
        bool priv;
        const struct decoded_insn *d = fetch_slow(v, lin, h, avail, &fn, &priv);
        go = step_one(v, d, fn, priv);
    }
    emu_mmio_drop(v); /* it completed (a fault or a new MMIO read longjmps past this) */
    if (go && v->insn_limit != 0 && v->icount >= v->insn_limit) {
        v->exit->reason = EMU_EXIT_INTERRUPTED;
        return false;
    }
    return go;
}

/* Runs blocks until v->exit is filled. Faults longjmp out. Kept out of line:
 * inlined into emu_run (which calls setjmp) every local would live on the stack and
 * be reloaded after each call. */
static __attribute__((noinline)) void run_loop(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    struct emu_exit *x = v->exit;
    struct emu_events *ev = &c->ev;
    struct emu_block *prev = NULL; /* the block that ran last, for chaining */
    for (;;) {
        if (__builtin_expect(v->tf_trap_after, 0)) {
            v->tf_trap_after = false;
            emu_debug_tf_trap(v);
        }
        if (!attention(v))
            return;
        struct emu_block *b = NULL;
        uint64_t rip0 = c->rip;
        unsigned link = 2;
        if (prev) {
            /* chained: the successor this block had last time, if nothing that could
             * change the fetch (TLB, mode, CPL, cache) happened since */
            link = prev->succ_rip[0] == rip0 ? 0 : prev->succ_rip[1] == rip0 ? 1 : 2;
            if (link < 2 && prev->succ_gen[link] == v->chain_gen &&
                prev->succ[link]->epoch == v->code_epoch)
                b = prev->succ[link];
        }
        if (!b) {
            uint64_t lin = v->mode == DECODER_MODE_64 ? rip0 : (uint32_t)(c->seg[EMU_CS].base + rip0);
            unsigned avail;
            uint64_t gpa;
            uint8_t *h = emu_fetch_ptr(v, lin, &avail, &gpa);
            b = h ? emu_block_get(v, h, avail, gpa) : NULL;
            if (!b) {
                emu_handler_fn *fn;
                bool priv;
                const struct decoded_insn *d = fetch_slow(v, lin, h, avail, &fn, &priv);
                prev = NULL;
                if (!step_one(v, d, fn, priv))
                    return;
                goto check_limit;
            }
            if (prev) {
                unsigned s = link < 2 ? link : prev->succ_gen[0] == v->chain_gen ? 1 : 0;
                prev->succ[s] = b;
                prev->succ_rip[s] = rip0;
                prev->succ_gen[s] = v->chain_gen;
            }
        }
        prev = NULL;
        v->blk = b;
        /* debugging (guest-debug, TF, data breakpoints) and instruction limits run
         * instruction by instruction through the same records */
        unsigned n = b->n;
        if (__builtin_expect(v->dbg_control || v->dbg_data || (c->rflags & (EMU_FL_TF | EMU_FL_RF)), 0)) {
            if (!step_one(v, &b->ins[0].d, b->ins[0].fn, b->ins[0].priv))
                return;
            goto check_limit;
        }
        if (__builtin_expect(v->stop_at != 0, 0)) {
            /* differential single-stepping, or a vPMU stop point (exact overflow) */
            uint64_t left = v->stop_at > v->icount ? v->stop_at - v->icount : 1;
            if (left < n)
                n = (unsigned)left;
        }
        v->code_page = (const uint8_t *)((uintptr_t)b->host & ~(uintptr_t)0xfff);
        v->blk_break = false;
        if (b->serial)
            v->code_epoch++; /* before: the block may end in a fault or an exit */
        static const uint64_t rip_mask[] = {
            [DECODER_MODE_16] = 0xffff, [DECODER_MODE_32] = 0xffffffff, [DECODER_MODE_64] = ~0ull,
        };
        uint64_t rmask = rip_mask[v->mode];
        /* STI / MOV SS / POP SS end their block, so a shadow is only ever live at a block's
         * first instruction: it runs alone and events are looked at right after it */
        uint8_t shadow = ev->int_shadow;
        if (shadow)
            n = 1;
        /* RIP stays in a register across the records; what the handlers and the fault
         * path read (insn, insn_rip, next_rip, cpu.rip) is stored for every instruction.
         * The retired count is published once per block (or exit, or fault: emu_run adds
         * the records before the faulting one): emu_dirty_log_sync only needs it to move
         * after the stores of the instruction in flight, which a block-end release gives. */
        const struct emu_binsn *r = b->ins, *end = r + n;
        uint64_t rip = c->rip;
        for (;;) {
            uint64_t next = (rip + r->d.length) & rmask;
            v->insn = &r->d;
            v->insn_rip = rip;
            v->next_rip = next;
            int ret = r->fn(v, &r->d); /* privileged forms check CPL in emu_h_priv */
            rip = v->next_rip;
            c->rip = rip;
            if (__builtin_expect((ret | v->exit_ready) != 0, 0)) {
                /* release: the instructions' stores before the count */
                __atomic_store_n(&v->icount, v->icount + (uint64_t)(r + 1 - b->ins), __ATOMIC_RELEASE);
                if (shadow)
                    ev->int_shadow = 0;
                v->code_page = NULL;
                return;
            }
            if (++r == end)
                break;
            /* a conditional jump taken, a restarted string instruction, a mode/paging
             * change or a store into the block: the rest of it may no longer be what runs
             * next. The block still chains to whatever runs next: a chain is keyed by the
             * successor's RIP and holds only while chain_gen and the code epoch (which
             * all of those but the jump and the restart change) are as they were. */
            if (__builtin_expect((v->blk_break | (rip != next)) != 0, 0))
                break;
        }
        __atomic_store_n(&v->icount, v->icount + (uint64_t)(r - b->ins), __ATOMIC_RELEASE);
        if (shadow)
            ev->int_shadow = 0; /* the shadow covers exactly one instruction */
        v->code_page = NULL;
        prev = b; /* its successor may be chained */
    check_limit:
        if (__builtin_expect(v->stop_at != 0, 0) && v->icount >= v->stop_at) {
            if (v->pmu_stop && v->icount >= v->pmu_stop)
                emu_pmu_fire(v); /* recomputes stop_at */
            if (v->insn_limit != 0 && v->icount >= v->insn_limit) {
                x->reason = EMU_EXIT_INTERRUPTED;
                return;
            }
        }
    }
}

void emu_run(struct emu_vcpu *v, struct emu_exit *exit)
{
    exit->reason = EMU_EXIT_NONE;
    v->exit = exit;
    v->exit_ready = false;
    v->delivering = false;
    /* the rest of an MMIO write, one piece per KVM_RUN before the guest goes on (KVM
     * complete_emulated_mmio returns to user space with the next fragment) */
    if (__builtin_expect(v->mmio_nwr != 0, 0) && emu_mmio_next_write(v))
        return;
    if (v->cpu.shutdown) {
        /* set outside emu_run (KVM_X86_SET_MCE): KVM_REQ_TRIPLE_FAULT, not a CPU shutdown */
        exit->reason = EMU_EXIT_SHUTDOWN;
        exit->shutdown.requested = true;
        return;
    }
    if (!emu_block_cache_alloc(v)) {
        exit->reason = EMU_EXIT_INTERNAL;
        exit->internal.suberror = 1;
        exit->internal.insn_len = 0;
        return;
    }
    __atomic_store_n(&v->in_run, true, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&v->pm_as[0]->generation, __ATOMIC_ACQUIRE) != v->pm_gen)
        sync_generation(v); /* before finishing a pending IN/INS through the old translations */
    v->code_epoch++; /* the VMM (or another vCPU) may have written guest code meanwhile */
    emu_debug_update(v); /* KVM_SET_DEBUGREGS / KVM_SET_REGS may have changed DR7 */
    emu_vmx_run_entry(v); /* FEATURE_CONTROL leave request; invalid L2 state (emu/vmx.c) */
    if (setjmp(v->jb)) {
        if (v->code_page) {
            /* left a block's records mid-way (run_loop publishes the count per block):
             * the records before the one that faulted retired */
            const struct emu_binsn *r = (const struct emu_binsn *)((const uint8_t *)v->insn -
                                                                    offsetof(struct emu_binsn, d));
            __atomic_store_n(&v->icount, v->icount + (uint64_t)(r - v->blk->ins), __ATOMIC_RELEASE);
        }
        v->code_page = NULL; /* no block runs while the fault is delivered */
        /* the instruction is over unless it waits for an MMIO read: its answers go */
        if (v->fault_kind != EMU_FK_SUSPEND || v->pending != EMU_PEND_MMIO_READ)
            emu_mmio_drop(v);
        else
            v->mmio_replay = false; /* until the VMM answers (emu_complete_mmio) */
        /* a fault, an internal error or a suspension abandoned the instruction */
        if (v->fault_kind == EMU_FK_VMEXIT) {
            /* a VM exit into L1 abandoned the L2 instruction (or event): go on in L1 */
            v->code_epoch++; /* a world switch, like VMRUN/VMLAUNCH (emu/block.c) */
            v->delivering = false;
            v->exit_ready = false;
            v->nested.vectoring.valid = false;
            goto run;
        }
        if (v->fault_kind == EMU_FK_INTERNAL) {
            v->delivering = false;
            fill_internal(v);
            goto out;
        }
        if (v->fault_kind == EMU_FK_SUSPEND)
            goto out;
        if (v->fault_kind == EMU_FK_HOST_FAULT) { /* host mapping fault: KVM_RUN fails with EFAULT */
            v->delivering = false;
            v->exit_ready = false;
            exit->reason = EMU_EXIT_HOST_FAULT;
            goto out;
        }
        if (v->fault_kind == EMU_FK_MEM_FAULT) { /* the instruction re-runs once memory is there */
            v->delivering = false;
            v->exit_ready = false;
            exit->reason = EMU_EXIT_MEMORY_FAULT;
            exit->mem_fault.gpa = v->fault_cr2;
            exit->mem_fault.size = 4096;
            goto out;
        }
        v->exit_ready = false; /* a recorded MMIO write of the abandoned insn is dropped */
        v->mmio_nwr = v->mmio_wrpos = 0;
        if (!take_exception(v, v->fault_vector, v->fault_error, v->fault_has_cr2, v->fault_cr2,
                            false))
            goto out;
    }
run:
    if (v->pending == EMU_PEND_IO_IN) {
        v->pending = EMU_PEND_NONE;
        finish_io_in(v);
        if (v->exit_ready)
            goto out; /* the INS wrote MMIO: that exit comes before any instruction */
    }
    if (v->pending == EMU_PEND_MSR_READ || v->pending == EMU_PEND_MSR_WRITE) {
        /* the VMM did not complete the MSR exit: KVM re-executes the instruction */
        v->pending = EMU_PEND_NONE;
        v->tf_trap_after = false; /* the re-execution traps */
        v->dbg_step_exit = false;
    }
    if (__builtin_expect(v->dbg_step_exit, 0) && emu_debug_step_exit(v))
        goto out;
    if (__builtin_expect(v->mmio_replay, 0) && !replay_mmio_insn(v))
        goto out;
    if (__builtin_expect(v->pmu_fire, 0))
        emu_pmu_fire(v); /* a vPMU request of an instruction that exited to user space */
    emu_update_stop_at(v); /* insn_limit may have been set since the last run */
    run_loop(v);
out:
    __atomic_store_n(&v->dirty_busy, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&v->in_run, false, __ATOMIC_SEQ_CST);
}

void emu_wait_generation_seen(struct emu_vcpu *v, uint64_t gen)
{
    while (__atomic_load_n(&v->in_run, __ATOMIC_SEQ_CST) &&
           __atomic_load_n(&v->pm_gen, __ATOMIC_ACQUIRE) < gen)
        sched_yield();
}
