/* emu/: control transfer: JMP Jcc JrCXZ LOOPcc CALL RET, far JMP/CALL/RET, INT n /
 * INT3 / INTO / INT1, IRET/IRETD/IRETQ, UD0/UD1/UD2 (SDM vol.2; protected-mode far
 * transfers SDM vol.3 5.8; IRET 6.12-6.14). Call gates and task switches are not
 * implemented and exit with an internal error rather than misbehave. */
#include <string.h>

#include "emu/internal.h"

static bool canonical(uint64_t a)
{
    return emu_canonical(a);
}

/* Near branch: truncate to operand size, check canonical / CS limit (#GP(0)). */
static void jump_near(struct emu_vcpu *v, uint64_t target, unsigned opsize)
{
    if (v->mode == DECODER_MODE_64) {
        if (opsize == 4)
            target = (uint32_t)target;
        else if (opsize == 2)
            target = (uint16_t)target;
        if (!canonical(target))
            emu_raise(v, EMU_GP, 0);
    } else {
        target &= emu_mask(opsize);
        if ((v->cpu.cr0 & 1) && target > v->cpu.seg[EMU_CS].limit)
            emu_raise(v, EMU_GP, 0);
    }
    v->next_rip = target;
}

static int h_jmp(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t t = d->ops[0].kind == DOPND_REL ? v->next_rip + (uint64_t)d->ops[0].disp
                                             : emu_opnd_read(v, d, 0);
    jump_near(v, t, d->opsize);
    return EMU_H_NEXT;
}

static int h_jcc(struct emu_vcpu *v, const struct decoded_insn *d)
{
    if (emu_cond(v, d->cond))
        jump_near(v, v->next_rip + (uint64_t)d->ops[0].disp, d->opsize);
    return EMU_H_NEXT;
}

static int h_jrcxz(struct emu_vcpu *v, const struct decoded_insn *d)
{
    if ((v->cpu.gpr[EMU_RCX] & emu_mask(d->addrsize)) == 0)
        jump_near(v, v->next_rip + (uint64_t)d->ops[0].disp, d->opsize);
    return EMU_H_NEXT;
}

static int loop(struct emu_vcpu *v, const struct decoded_insn *d, int kind)
{
    unsigned as = d->addrsize;
    uint64_t cx = (v->cpu.gpr[EMU_RCX] - 1) & emu_mask(as);
    bool take = cx != 0;
    if (kind == 1)
        take = take && (emu_flags(v) & EMU_FL_ZF);
    else if (kind == 2)
        take = take && !(emu_flags(v) & EMU_FL_ZF);
    if (take)
        jump_near(v, v->next_rip + (uint64_t)d->ops[0].disp, d->opsize);
    emu_gpr_write(v, EMU_RCX, as, cx);
    return EMU_H_NEXT;
}

static int h_loop(struct emu_vcpu *v, const struct decoded_insn *d) { return loop(v, d, 0); }
static int h_loope(struct emu_vcpu *v, const struct decoded_insn *d) { return loop(v, d, 1); }
static int h_loopne(struct emu_vcpu *v, const struct decoded_insn *d) { return loop(v, d, 2); }

static int h_call(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t t = d->ops[0].kind == DOPND_REL ? v->next_rip + (uint64_t)d->ops[0].disp
                                             : emu_opnd_read(v, d, 0);
    uint64_t ret = v->next_rip;
    jump_near(v, t, d->opsize); /* check the target before pushing */
    emu_push(v, ret, d->opsize);
    return EMU_H_NEXT;
}

static int h_ret(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned as = emu_stack_addrsize(v);
    uint64_t sp = v->cpu.gpr[EMU_RSP] & emu_mask(as);
    uint64_t t = emu_mem_read(v, EMU_SS, sp, d->opsize);
    uint64_t extra = d->nops ? emu_opnd_read(v, d, 0) & 0xffff : 0;
    jump_near(v, t, d->opsize);
    emu_gpr_write(v, EMU_RSP, as, sp + d->opsize + extra);
    return EMU_H_NEXT;
}

/* ---- far transfers ---- */

/* Check and build the CS for a far JMP/CALL to a code segment at the same privilege
 * (SDM vol.3 5.8.1). Returns the new CS; gates -> internal error. */
static struct emu_segment far_target_cs(struct emu_vcpu *v, uint16_t sel)
{
    struct cpu *c = &v->cpu;
    struct emu_segment cs;
    if ((sel & ~3u) == 0)
        emu_raise(v, EMU_GP, 0);
    uint64_t dd[2];
    if (!emu_read_desc(v, sel, dd, false))
        emu_raise(v, EMU_GP, sel & 0xfffc);
    emu_desc_to_seg(dd[0], sel, &cs);
    if (!cs.s)
        emu_unimplemented(v); /* call gate / task gate / TSS */
    if (!(cs.type & 8))
        emu_raise(v, EMU_GP, sel & 0xfffc);
    if (cs.type & 4) {
        if (cs.dpl > (unsigned)c->cpl)
            emu_raise(v, EMU_GP, sel & 0xfffc);
    } else if ((sel & 3) > (unsigned)c->cpl || cs.dpl != (unsigned)c->cpl) {
        emu_raise(v, EMU_GP, sel & 0xfffc);
    }
    if (!cs.present)
        emu_raise(v, EMU_NP, sel & 0xfffc);
    cs.selector = (uint16_t)((sel & ~3u) | (unsigned)c->cpl);
    cs.type |= 1;
    return cs;
}

static bool protected_mode(struct emu_vcpu *v)
{
    return (v->cpu.cr0 & 1) && !(v->cpu.rflags & EMU_FL_VM);
}

/* Far pointer of JMPF/CALLF: immediate (Ap) or memory (Mp). */
static void far_operand(struct emu_vcpu *v, const struct decoded_insn *d, uint16_t *sel, uint64_t *off)
{
    const struct decoder_operand *o = &d->ops[0];
    if (o->kind == DOPND_FAR) {
        *sel = o->far_seg;
        *off = (uint64_t)o->disp & emu_mask(d->opsize);
        return;
    }
    uint64_t ea = emu_opnd_ea(v, d, 0);
    *off = emu_mem_read(v, o->seg, ea, d->opsize);
    *sel = (uint16_t)emu_mem_read(v, o->seg, (ea + d->opsize) & emu_mask(d->addrsize), 2);
}

static void set_cs_ip(struct emu_vcpu *v, const struct emu_segment *cs, uint16_t sel, uint64_t off)
{
    if (protected_mode(v)) {
        v->cpu.seg[EMU_CS] = *cs;
        emu_update_mode(v);
        if (v->mode != DECODER_MODE_64 && off > cs->limit)
            emu_raise(v, EMU_GP, 0);
    } else {
        emu_load_seg(v, EMU_CS, sel);
    }
    v->next_rip = off;
}

static int h_jmpf(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint16_t sel;
    uint64_t off;
    far_operand(v, d, &sel, &off);
    struct emu_segment cs = {0};
    if (protected_mode(v)) {
        cs = far_target_cs(v, sel);
        if (!(v->long_mode && cs.l) && off > cs.limit)
            emu_raise(v, EMU_GP, 0);
    }
    set_cs_ip(v, &cs, sel, off);
    return EMU_H_NEXT;
}

static int h_callf(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint16_t sel;
    uint64_t off;
    far_operand(v, d, &sel, &off);
    struct emu_segment cs = {0};
    if (protected_mode(v)) {
        cs = far_target_cs(v, sel);
        if (!(v->long_mode && cs.l) && off > cs.limit)
            emu_raise(v, EMU_GP, 0);
    }
    emu_push(v, v->cpu.seg[EMU_CS].selector, d->opsize);
    emu_push(v, v->next_rip, d->opsize);
    set_cs_ip(v, &cs, sel, off);
    return EMU_H_NEXT;
}

/* Return to (possibly outer) privilege level: used by RETF and IRET. */
static void return_far(struct emu_vcpu *v, uint16_t sel, uint64_t off, bool pop_ss, uint16_t ss_sel,
                       uint64_t new_rsp, unsigned rsp_size)
{
    struct cpu *c = &v->cpu;
    unsigned rpl = sel & 3;
    if ((sel & ~3u) == 0)
        emu_raise(v, EMU_GP, 0);
    uint64_t dd[2];
    if (!emu_read_desc(v, sel, dd, false))
        emu_raise(v, EMU_GP, sel & 0xfffc);
    struct emu_segment cs;
    emu_desc_to_seg(dd[0], sel, &cs);
    if (!cs.s || !(cs.type & 8) || rpl < (unsigned)c->cpl)
        emu_raise(v, EMU_GP, sel & 0xfffc);
    if ((cs.type & 4) ? cs.dpl > rpl : cs.dpl != rpl)
        emu_raise(v, EMU_GP, sel & 0xfffc);
    if (!cs.present)
        emu_raise(v, EMU_NP, sel & 0xfffc);
    cs.type |= 1;
    if (pop_ss) {
        /* load SS for the new CPL */
        int saved = c->cpl;
        c->cpl = (int)rpl;
        if ((ss_sel & ~3u) == 0 && v->long_mode && cs.l && rpl != 3) {
            memset(&c->seg[EMU_SS], 0, sizeof c->seg[EMU_SS]);
            c->seg[EMU_SS].selector = ss_sel;
            c->seg[EMU_SS].unusable = 1;
            c->seg[EMU_SS].dpl = (uint8_t)rpl;
        } else {
            uint64_t sd[2];
            struct emu_segment ss;
            if ((ss_sel & ~3u) == 0 || !emu_read_desc(v, ss_sel, sd, false)) {
                c->cpl = saved;
                emu_raise(v, EMU_GP, ss_sel & 0xfffc);
            }
            emu_desc_to_seg(sd[0], ss_sel, &ss);
            if ((ss_sel & 3) != rpl || ss.dpl != rpl || (ss.type & 8) || !(ss.type & 2) || !ss.s) {
                c->cpl = saved;
                emu_raise(v, EMU_GP, ss_sel & 0xfffc);
            }
            if (!ss.present) {
                c->cpl = saved;
                emu_raise(v, EMU_SSF, ss_sel & 0xfffc);
            }
            ss.type |= 1;
            c->seg[EMU_SS] = ss;
        }
        emu_gpr_write(v, EMU_RSP, rsp_size, new_rsp);
        /* data segments not accessible at the outer level become null (SDM "RET") */
        for (unsigned s = 0; s < 6; s++) {
            if (s == EMU_CS || s == EMU_SS)
                continue;
            struct emu_segment *ds = &c->seg[s];
            bool conf_code = (ds->type & 0xc) == 0xc;
            if (!ds->unusable && (!ds->s || !conf_code) && ds->dpl < rpl) {
                /* only the selector and validity: the hidden base stays (QEMU
                 * validate_seg; an FS/GS base of 64-bit code survives the return) */
                uint64_t base = ds->base;
                memset(ds, 0, sizeof *ds);
                ds->base = base;
                ds->unusable = 1;
            }
        }
    }
    c->seg[EMU_CS] = cs;
    c->seg[EMU_SS].dpl = (uint8_t)rpl;
    emu_update_mode(v);
    if (v->mode != DECODER_MODE_64 && off > cs.limit)
        emu_raise(v, EMU_GP, 0);
    if (v->mode == DECODER_MODE_64 && !canonical(off))
        emu_raise(v, EMU_GP, 0);
    v->next_rip = off;
}

static int h_retf(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    unsigned sz = d->opsize, as = emu_stack_addrsize(v);
    uint64_t sp = c->gpr[EMU_RSP] & emu_mask(as);
    uint64_t extra = d->nops ? emu_opnd_read(v, d, 0) & 0xffff : 0;
    uint64_t off = emu_mem_read(v, EMU_SS, sp, sz);
    uint16_t sel = (uint16_t)emu_mem_read(v, EMU_SS, (sp + sz) & emu_mask(as), 2);
    if (!protected_mode(v)) {
        emu_load_seg(v, EMU_CS, sel);
        v->next_rip = off & emu_mask(sz);
        emu_gpr_write(v, EMU_RSP, as, sp + 2 * sz + extra);
        return EMU_H_NEXT;
    }
    if ((sel & 3) > (unsigned)c->cpl) {
        uint64_t nsp = emu_mem_read(v, EMU_SS, (sp + 2 * sz + extra) & emu_mask(as), sz);
        uint16_t nss = (uint16_t)emu_mem_read(v, EMU_SS, (sp + 3 * sz + extra) & emu_mask(as), 2);
        return_far(v, sel, off, true, nss, nsp + extra, sz == 8 ? 8 : as);
        return EMU_H_NEXT;
    }
    return_far(v, sel, off, false, 0, 0, 0);
    emu_gpr_write(v, EMU_RSP, as, sp + 2 * sz + extra);
    return EMU_H_NEXT;
}

/* ---- software interrupts ---- */

/* `exception`: INT3 / INTO, which an L1 intercepts as #BP / #OF (with RIP at the
 * instruction, APM 15.12); INT n is the software-interrupt intercept. */
static int soft_int(struct emu_vcpu *v, uint8_t vector, bool exception)
{
    struct cpu *c = &v->cpu;
    if ((c->rflags & EMU_FL_VM) && ((c->rflags & EMU_FL_IOPL) >> 12) < 3)
        emu_raise(v, EMU_GP, 0); /* INT n in vm86 with IOPL < 3 (no VME) */
    if (__builtin_expect(v->nested.guest_mode, 0)) {
        if (exception)
            v->nested.ops->exception(v, vector, EMU_NO_ERRCODE, false, 0, false);
        else
            emu_icpt_insn(v, EMU_NX_INTN, vector);
    }
    v->delivering = true;
    v->delivering_vector = vector;
    emu_deliver_event(v, vector, EMU_NO_ERRCODE, true, v->next_rip);
    v->delivering = false;
    v->next_rip = c->rip;
    return EMU_H_NEXT;
}

static int h_int(struct emu_vcpu *v, const struct decoded_insn *d)
{
    return soft_int(v, (uint8_t)emu_opnd_read(v, d, 0), false);
}

static int h_int3(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    return soft_int(v, EMU_BP, true);
}

static int h_into(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    if (emu_flags(v) & EMU_FL_OF)
        return soft_int(v, EMU_OF, true);
    return EMU_H_NEXT;
}

/* INT1 (ICEBP): a #DB trap delivered like a hardware event (no DPL check). */
static int h_int1(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    emu_icpt_insn(v, EMU_NX_ICEBP, 0);
    /* a #DB with an empty payload (KVM handle_exception_nmi: the exit qualification of
     * ICEBP is 0): DR6.B0-3 cleared, DR7.GD cleared; it takes the #DB traps a MOV SS
     * shadow held back with it */
    v->dbg_pending = 0;
    emu_debug_db_payload(v, 0);
    v->delivering = true;
    v->delivering_vector = EMU_DB;
    emu_deliver_event(v, EMU_DB, EMU_NO_ERRCODE, false, v->next_rip);
    v->delivering = false;
    v->next_rip = v->cpu.rip;
    return EMU_H_NEXT;
}

static int h_ud(struct emu_vcpu *v, const struct decoded_insn *d)
{
    (void)d;
    emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
}

/* ---- IRET ---- */

static int h_iret(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    unsigned sz = d->opsize, as = emu_stack_addrsize(v);
    emu_icpt_insn(v, EMU_NX_IRET, 0);
    uint64_t sp = c->gpr[EMU_RSP] & emu_mask(as);
    uint64_t old = emu_flags(v);
    uint64_t ip = emu_mem_read(v, EMU_SS, sp, sz);
    uint16_t sel = (uint16_t)emu_mem_read(v, EMU_SS, (sp + sz) & emu_mask(as), 2);
    uint64_t fl = emu_mem_read(v, EMU_SS, (sp + 2 * sz) & emu_mask(as), sz);
    c->ev.nmi_masked = false; /* IRET unblocks NMIs (SDM vol.3 6.7.1) */

    if (!protected_mode(v)) {
        if (old & EMU_FL_VM)
            emu_unimplemented(v); /* IRET in virtual-8086 mode */
        uint64_t mask = sz == 2 ? 0xffff : 0x257fd5; /* real mode: VM, VIP, VIF unchanged */
        emu_load_seg(v, EMU_CS, sel);
        emu_flags_set(v, (old & ~mask) | (fl & mask));
        v->next_rip = ip & emu_mask(sz);
        emu_gpr_write(v, EMU_RSP, as, sp + 3 * sz);
        v->kick = 1;
        return EMU_H_NEXT;
    }
    if (old & EMU_FL_NT) {
        if (v->long_mode)
            emu_raise(v, EMU_GP, 0);
        emu_unimplemented(v); /* task return */
    }
    unsigned rpl = sel & 3;
    if (!v->long_mode && (fl & EMU_FL_VM) && c->cpl == 0)
        emu_unimplemented(v); /* return to virtual-8086 mode */
    /* 64-bit mode IRET always pops SS:RSP; otherwise only on a privilege change */
    bool pop_ss = v->mode == DECODER_MODE_64 || rpl > (unsigned)c->cpl;
    uint64_t nsp = 0;
    uint16_t nss = 0;
    if (pop_ss) {
        nsp = emu_mem_read(v, EMU_SS, (sp + 3 * sz) & emu_mask(as), sz);
        nss = (uint16_t)emu_mem_read(v, EMU_SS, (sp + 4 * sz) & emu_mask(as), 2);
    }
    int cpl = c->cpl;
    unsigned iopl = (old & EMU_FL_IOPL) >> 12;
    uint64_t mask = EMU_FL_CF | EMU_FL_PF | EMU_FL_AF | EMU_FL_ZF | EMU_FL_SF | EMU_FL_TF |
                    EMU_FL_DF | EMU_FL_OF | EMU_FL_NT | EMU_FL_RF | EMU_FL_AC | EMU_FL_ID;
    if (cpl == 0)
        mask |= EMU_FL_IOPL | EMU_FL_VIF | EMU_FL_VIP;
    if ((unsigned)cpl <= iopl)
        mask |= EMU_FL_IF;
    if (sz == 2)
        mask &= 0xffff;
    return_far(v, sel, ip, pop_ss, nss, nsp, sz == 8 ? 8 : (pop_ss && rpl > (unsigned)cpl) ? sz : as);
    emu_flags_set(v, (old & ~mask) | (fl & mask));
    emu_update_mode(v);
    if (!pop_ss)
        emu_gpr_write(v, EMU_RSP, as, sp + 3 * sz);
    v->kick = 1;
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_branch_handlers[] = {
    {DOP_JMP, h_jmp}, {DOP_CALL, h_call}, {DOP_RET, h_ret},
    {DOP_JO, h_jcc}, {DOP_JNO, h_jcc}, {DOP_JB, h_jcc}, {DOP_JAE, h_jcc},
    {DOP_JE, h_jcc}, {DOP_JNE, h_jcc}, {DOP_JBE, h_jcc}, {DOP_JA, h_jcc},
    {DOP_JS, h_jcc}, {DOP_JNS, h_jcc}, {DOP_JP, h_jcc}, {DOP_JNP, h_jcc},
    {DOP_JL, h_jcc}, {DOP_JGE, h_jcc}, {DOP_JLE, h_jcc}, {DOP_JG, h_jcc},
    {DOP_JCXZ, h_jrcxz}, {DOP_JECXZ, h_jrcxz}, {DOP_JRCXZ, h_jrcxz},
    {DOP_LOOP, h_loop}, {DOP_LOOPE, h_loope}, {DOP_LOOPNE, h_loopne},
    {DOP_JMPF, h_jmpf}, {DOP_CALLF, h_callf}, {DOP_RETF, h_retf},
    {DOP_INT, h_int}, {DOP_INT3, h_int3}, {DOP_INTO, h_into}, {DOP_INT1, h_int1},
    {DOP_UD0, h_ud}, {DOP_UD1, h_ud}, {DOP_UD2, h_ud},
    {DOP_IRET, h_iret}, {DOP_IRETD, h_iret}, {DOP_IRETQ, h_iret},
    {0, NULL},
};
