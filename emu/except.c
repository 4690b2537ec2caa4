/* emu/: the one fault mechanism and event delivery through the IVT/IDT
 * (SDM vol.3 chapter 6 "Interrupt and Exception Handling", 6.12-6.14; real mode
 * 20.1.4). Faults raised anywhere in an instruction longjmp back to the run loop,
 * which calls emu_deliver_event() (and escalates to #DF / triple fault, 6.15 tables
 * 6-4 and 6-5). */
#include <string.h>

#include "emu/internal.h"

#define CR0_PE 1ull

_Noreturn void emu_raise(struct emu_vcpu *v, uint8_t vector, uint32_t error_code)
{
    v->fault_kind = EMU_FK_EXCEPTION;
    v->fault_has_cr2 = false;
    v->fault_vector = vector;
    v->fault_error = error_code;
    longjmp(v->jb, 1);
}

_Noreturn void emu_raise_pf(struct emu_vcpu *v, uint64_t lin, uint32_t error_code)
{
    v->fault_kind = EMU_FK_EXCEPTION;
    v->fault_vector = EMU_PF;
    v->fault_error = error_code;
    v->fault_has_cr2 = true; /* CR2 is written at delivery (run.c take_exception) */
    v->fault_cr2 = lin;
    longjmp(v->jb, 1);
}

_Noreturn void emu_unimplemented(struct emu_vcpu *v)
{
    v->fault_kind = EMU_FK_INTERNAL;
    longjmp(v->jb, 1);
}

_Noreturn void emu_suspend(struct emu_vcpu *v)
{
    v->fault_kind = EMU_FK_SUSPEND;
    longjmp(v->jb, 1);
}

_Noreturn void emu_nested_resume_l1(struct emu_vcpu *v)
{
    v->fault_kind = EMU_FK_VMEXIT;
    longjmp(v->jb, 1);
}

_Noreturn void emu_memory_fault(struct emu_vcpu *v, uint64_t gpa)
{
    v->fault_kind = EMU_FK_MEM_FAULT;
    v->fault_cr2 = gpa & ~0xfffull;
    longjmp(v->jb, 1);
}

bool emu_host_fault(struct emu_vcpu *v, const void *addr)
{
    if (!v || !v->in_run)
        return false;
    const uint8_t *a = addr;
    const struct emu_physmem *pm = v->pm; /* stable: abi holds mem_lock around emu_run */
    for (unsigned i = 0; i < pm->nslots; i++) {
        const struct emu_slot *s = &pm->slots[i];
        if (s->size && s->host && a >= s->host && (uint64_t)(a - s->host) < s->size) {
            v->fault_kind = EMU_FK_HOST_FAULT;
            longjmp(v->jb, 1);
        }
    }
    return false;
}

static uint64_t tss_read(struct emu_vcpu *v, unsigned off, unsigned size)
{
    const struct emu_segment *tr = &v->cpu.seg[EMU_TR];
    if (tr->unusable || off + size - 1 > tr->limit)
        emu_raise(v, EMU_TS, tr->selector & 0xfffc);
    return emu_lin_read(v, tr->base + off, size, EMU_ACC_READ | EMU_ACC_SYS);
}

static void deliver_real(struct emu_vcpu *v, uint8_t vector, uint64_t ret)
{
    struct cpu *c = &v->cpu;
    if ((unsigned)vector * 4 + 3 > c->idtr.limit)
        emu_raise(v, EMU_GP, 0);
    uint64_t ent = emu_lin_read(v, c->idtr.base + vector * 4u, 4, EMU_ACC_READ | EMU_ACC_SYS);
    uint64_t fl = emu_flags(v);
    emu_push(v, fl, 2);
    emu_push(v, c->seg[EMU_CS].selector, 2);
    emu_push(v, ret, 2);
    emu_flags_set(v, fl & ~(uint64_t)(EMU_FL_IF | EMU_FL_TF | EMU_FL_AC | EMU_FL_RF));
    emu_load_seg(v, EMU_CS, (uint16_t)(ent >> 16));
    c->rip = ent & 0xffff;
}

/* Protected-mode and long-mode delivery through an interrupt or trap gate. */
static void deliver_prot(struct emu_vcpu *v, uint8_t vector, uint32_t err, bool soft, uint64_t ret,
                         bool ext)
{
    struct cpu *c = &v->cpu;
    bool lm = v->long_mode;
    unsigned gsz = lm ? 16 : 8;
    uint32_t idt_err = vector * 8u + 2 + (ext ? 1 : 0);
    if ((unsigned)vector * gsz + gsz - 1 > c->idtr.limit)
        emu_raise(v, EMU_GP, idt_err);
    uint64_t lo = emu_lin_read(v, c->idtr.base + vector * gsz, 8, EMU_ACC_READ | EMU_ACC_SYS);
    uint64_t hi = lm ? emu_lin_read(v, c->idtr.base + vector * gsz + 8, 8, EMU_ACC_READ | EMU_ACC_SYS) : 0;
    unsigned type = (lo >> 40) & 0xf, dpl = (lo >> 45) & 3, present = (lo >> 47) & 1;
    bool trap;
    bool gate16 = false;
    if (lm) {
        if (type != 0xe && type != 0xf)
            emu_raise(v, EMU_GP, idt_err);
    } else {
        if (type == 5)
            emu_unimplemented(v); /* task gates: hardware task switching not implemented */
        if (type != 0xe && type != 0xf && type != 6 && type != 7)
            emu_raise(v, EMU_GP, idt_err);
        gate16 = type == 6 || type == 7;
    }
    trap = type & 1;
    if (soft && dpl < (unsigned)c->cpl)
        emu_raise(v, EMU_GP, idt_err);
    if (!present)
        emu_raise(v, EMU_NP, idt_err);

    uint16_t sel = (uint16_t)(lo >> 16);
    uint64_t off = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull) | (hi << 32);
    if ((sel & ~3u) == 0)
        emu_raise(v, EMU_GP, ext ? 1 : 0);
    uint64_t cd[2];
    if (!emu_read_desc(v, sel, cd, false))
        emu_raise(v, EMU_GP, (sel & 0xfffc) | (ext ? 1 : 0));
    struct emu_segment cs;
    emu_desc_to_seg(cd[0], sel, &cs);
    if (!cs.s || !(cs.type & 8) || cs.dpl > (unsigned)c->cpl)
        emu_raise(v, EMU_GP, (sel & 0xfffc) | (ext ? 1 : 0));
    if (!cs.present)
        emu_raise(v, EMU_NP, (sel & 0xfffc) | (ext ? 1 : 0));
    if (lm && (!cs.l || cs.db))
        emu_raise(v, EMU_GP, (sel & 0xfffc) | (ext ? 1 : 0));
    unsigned new_cpl = (cs.type & 4) ? (unsigned)c->cpl : cs.dpl; /* conforming keeps CPL */

    uint64_t fl = emu_flags(v);
    uint64_t old_ss = c->seg[EMU_SS].selector, old_rsp = c->gpr[EMU_RSP];
    uint16_t old_cs = c->seg[EMU_CS].selector;
    bool priv = new_cpl < (unsigned)c->cpl;
    unsigned ist = lm ? (unsigned)((lo >> 32) & 7) : 0;

    if (lm) {
        uint64_t rsp;
        if (ist)
            rsp = tss_read(v, 0x24 + (ist - 1) * 8, 8);
        else if (priv)
            rsp = tss_read(v, 4 + new_cpl * 8, 8);
        else
            rsp = old_rsp;
        rsp &= ~0xfull; /* SDM vol.3 6.14.2: 16-byte aligned frame */
        uint64_t frame[6];
        unsigned n = 0;
        if (err != EMU_NO_ERRCODE)
            frame[n++] = err;
        frame[n++] = ret;
        frame[n++] = old_cs;
        frame[n++] = fl;
        frame[n++] = old_rsp;
        frame[n++] = old_ss;
        /* write the frame as the new CPL would (implicit supervisor accesses) */
        for (unsigned i = 0; i < n; i++)
            emu_lin_write(v, rsp - (n - i) * 8, 8, frame[i], EMU_ACC_WRITE | EMU_ACC_SYS);
        rsp -= n * 8;
        if (priv) {
            memset(&c->seg[EMU_SS], 0, sizeof c->seg[EMU_SS]);
            c->seg[EMU_SS].selector = (uint16_t)new_cpl;
            c->seg[EMU_SS].unusable = 1;
            c->seg[EMU_SS].dpl = (uint8_t)new_cpl;
            c->seg[EMU_SS].db = 0;
        }
        c->gpr[EMU_RSP] = rsp;
    } else {
        unsigned w = gate16 ? 2 : 4;
        uint64_t esp = old_rsp;
        if (priv) {
            /* 32-bit TSS: ESPn at 4+8n, SSn at 8+8n (SDM vol.3 8.2.1) */
            uint16_t nss = (uint16_t)tss_read(v, 8 + new_cpl * 8, 2);
            esp = tss_read(v, 4 + new_cpl * 8, 4);
            uint64_t sd[2];
            if ((nss & ~3u) == 0 || !emu_read_desc(v, nss, sd, false))
                emu_raise(v, EMU_TS, nss & 0xfffc);
            struct emu_segment ss;
            emu_desc_to_seg(sd[0], nss, &ss);
            if ((nss & 3) != new_cpl || ss.dpl != new_cpl || (ss.type & 8) || !(ss.type & 2))
                emu_raise(v, EMU_TS, nss & 0xfffc);
            if (!ss.present)
                emu_raise(v, EMU_SSF, nss & 0xfffc);
            c->seg[EMU_SS] = ss;
        }
        uint64_t mask = c->seg[EMU_SS].db ? 0xffffffffull : 0xffff;
        uint64_t vals[6];
        unsigned n = 0;
        if (priv) {
            vals[n++] = old_ss;
            vals[n++] = old_rsp;
        }
        vals[n++] = fl;
        vals[n++] = old_cs;
        vals[n++] = ret;
        if (err != EMU_NO_ERRCODE)
            vals[n++] = err;
        for (unsigned i = 0; i < n; i++) {
            esp = (esp - w) & mask;
            emu_lin_write(v, c->seg[EMU_SS].base + esp, w, vals[i], EMU_ACC_WRITE | EMU_ACC_SYS);
        }
        c->gpr[EMU_RSP] = (c->gpr[EMU_RSP] & ~mask) | esp;
    }
    cs.selector = (uint16_t)((sel & ~3u) | new_cpl);
    cs.type |= 1;
    c->seg[EMU_CS] = cs;
    uint64_t nfl = fl & ~(uint64_t)(EMU_FL_TF | EMU_FL_NT | EMU_FL_VM | EMU_FL_RF);
    if (!trap)
        nfl &= ~(uint64_t)EMU_FL_IF;
    emu_flags_set(v, nfl);
    c->cpl = (int)new_cpl;
    c->seg[EMU_SS].dpl = (uint8_t)new_cpl;
    emu_update_mode(v);
    c->rip = lm ? off : off & (gate16 ? 0xffff : 0xffffffffull);
}

void emu_deliver_event(struct emu_vcpu *v, uint8_t vector, uint32_t error_code, bool soft,
                       uint64_t return_rip)
{
    struct cpu *c = &v->cpu;
    if (!(c->cr0 & CR0_PE)) {
        deliver_real(v, vector, return_rip);
    } else {
        if (c->rflags & EMU_FL_VM)
            emu_unimplemented(v); /* virtual-8086 mode event delivery */
        /* EXT in the error code of a fault during delivery (SDM 6.13: set for hardware
         * events, interrupts and exceptions alike; AMD APM 8.4.2: only for events from
         * outside the processor, i.e. INTR and NMI, as nested_exceptions_test expects) */
        const struct emu_nx_vectoring *vc = &v->nested.vectoring;
        bool external = vc->valid && (vc->type == EMU_NX_EV_INTR || vc->type == EMU_NX_EV_NMI);
        deliver_prot(v, vector, error_code, soft, return_rip, !soft && (!v->cpu_amd || external));
    }
    c->halted = false;
    v->next_rip = c->rip;
}
