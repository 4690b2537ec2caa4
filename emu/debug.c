/* emu/: debugging: KVM_SET_GUEST_DEBUG exits (arch/x86/kvm/x86.c kvm_vcpu_do_singlestep,
 * kvm_vcpu_check_code_breakpoint, handle_exception's #BP path) and the guest's own
 * single-step trap through its IDT (SDM vol.3 18.3.1.4: #DB after the instruction when
 * EFLAGS.TF was set at its start, DR6.BS). */
#include <string.h>

#include "emu/internal.h"

#define GDBG_ENABLE 0x1u
#define GDBG_SINGLESTEP 0x2u
#define GDBG_USE_SW_BP 0x10000u
#define GDBG_USE_HW_BP 0x20000u
#define DR6_FIXED 0xffff0ff0ull
#define DR6_BS 0x4000ull
#define DR7_GD 0x2000ull

void emu_set_guest_debug(struct emu_vcpu *v, uint32_t control, const uint64_t dbg[8])
{
    v->dbg_control = (control & GDBG_ENABLE) ? control : 0;
    if (dbg)
        memcpy(v->dbg_regs, dbg, sizeof v->dbg_regs);
    v->dbg_skip = false;
    v->dbg_vmm_data = false;
    v->dbg_data_hit = 0;
    if (v->dbg_control & GDBG_USE_HW_BP)
        for (unsigned i = 0; i < 4; i++)
            if (((v->dbg_regs[7] >> (2 * i)) & 3) && ((v->dbg_regs[7] >> (16 + 4 * i)) & 3) != 0)
                v->dbg_vmm_data = true;
    emu_debug_update(v);
}

/* The guest's own DR7 breakpoints count unless the VMM's KVM_GUESTDBG_USE_HW_BP owns the
 * debug registers (KVM loads vcpu->arch.eff_db = the VMM's then). */
void emu_debug_update(struct emu_vcpu *v)
{
    uint64_t dr7 = v->cpu.dr[7];
    uint8_t exec = 0;
    bool data = false;
    if (!(v->dbg_control & GDBG_USE_HW_BP))
        for (unsigned i = 0; i < 4; i++) {
            if (!((dr7 >> (2 * i)) & 3))
                continue;
            if (((dr7 >> (16 + 4 * i)) & 3) == 0)
                exec |= (uint8_t)(1u << i);
            else
                data = true;
        }
    v->dbg_gexec = exec;
    /* the vPMU's precise mode takes the same path: step_one per record, every data
     * access through emu_debug_data (which notes it for the load/store events) */
    v->dbg_data = v->dbg_vmm_data || data || exec || v->pmu_precise;
}

void emu_debug_db_payload(struct emu_vcpu *v, uint64_t payload)
{
    struct cpu *c = &v->cpu;
    c->dr[6] = (c->dr[6] & ~0xfull) | payload | DR6_FIXED;
    if (c->dr[7] & DR7_GD) {
        c->dr[7] &= ~DR7_GD;
        emu_debug_update(v);
    }
}

/* SDM vol.3 18.3.1.1: an instruction breakpoint is a fault before the instruction; RF=1
 * suppresses it for one instruction (checked by the caller). */
void emu_debug_exec_check(struct emu_vcpu *v, uint64_t lin)
{
    uint64_t hit = 0;
    for (unsigned i = 0; i < 4; i++)
        if ((v->dbg_gexec & (1u << i)) && v->cpu.dr[i] == lin)
            hit |= 1ull << i;
    if (!hit)
        return;
    emu_debug_db_payload(v, hit);
    emu_raise(v, EMU_DB, EMU_NO_ERRCODE);
}

static void db_trap(struct emu_vcpu *v, uint64_t payload);

static void debug_exit(struct emu_vcpu *v, uint32_t exc, uint64_t pc, uint64_t dr6)
{
    struct emu_exit *x = v->exit;
    x->reason = EMU_EXIT_DEBUG;
    x->debug.exception = exc;
    x->debug.pc = pc;
    x->debug.dr6 = dr6;
    x->debug.dr7 = (v->dbg_control & GDBG_USE_HW_BP) ? v->dbg_regs[7] : v->cpu.dr[7];
}

/* Execution breakpoints of the VMM (DR7 format: L/G enable bits, R/W = 00 = execute). */
bool emu_debug_before(struct emu_vcpu *v, uint64_t lin_rip)
{
    if (!(v->dbg_control & GDBG_USE_HW_BP))
        return false;
    if (v->dbg_skip && v->dbg_skip_rip == lin_rip) {
        v->dbg_skip = false;
        return false;
    }
    v->dbg_skip = false;
    uint64_t dr7 = v->dbg_regs[7], hit = 0;
    for (unsigned i = 0; i < 4; i++)
        if (((dr7 >> (2 * i)) & 3) && ((dr7 >> (16 + 4 * i)) & 3) == 0 && v->dbg_regs[i] == lin_rip)
            hit |= 1ull << i;
    if (!hit)
        return false;
    v->dbg_skip = true; /* like RFLAGS.RF: the next run executes the instruction */
    v->dbg_skip_rip = lin_rip;
    debug_exit(v, 1, lin_rip, DR6_FIXED | hit);
    return true;
}

bool emu_debug_step_exit(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    v->dbg_step_exit = false;
    if (!(v->dbg_control & GDBG_SINGLESTEP))
        return false;
    uint64_t lin = v->mode == DECODER_MODE_64 ? c->rip : (uint32_t)(c->seg[EMU_CS].base + c->rip);
    debug_exit(v, 1, lin, DR6_FIXED | DR6_BS);
    return true;
}

/* INT3 with KVM_GUESTDBG_USE_SW_BP exits to the VMM instead of the guest's #BP. */
bool emu_debug_int3_exit(struct emu_vcpu *v)
{
    if (!(v->dbg_control & GDBG_USE_SW_BP))
        return false;
    uint64_t lin = v->mode == DECODER_MODE_64 ? v->insn_rip
                                              : (uint32_t)(v->cpu.seg[EMU_CS].base + v->insn_rip);
    debug_exit(v, 3, lin, DR6_FIXED);
    return true;
}

/* DR7 R/W = 01 write, 11 read/write (10 = I/O, not supported); LEN 00/01/11/10 = 1/2/4/8. */
static uint8_t data_hits(const uint64_t *regs, uint64_t dr7, uint64_t lin, unsigned size,
                         bool write)
{
    static const unsigned lens[4] = {1, 2, 8, 4};
    uint8_t hit = 0;
    for (unsigned i = 0; i < 4; i++) {
        unsigned rw = (dr7 >> (16 + 4 * i)) & 3;
        if (!((dr7 >> (2 * i)) & 3) || (rw != 1 && rw != 3) || (rw == 1 && !write))
            continue;
        unsigned len = lens[(dr7 >> (18 + 4 * i)) & 3];
        uint64_t a = regs[i] & ~(uint64_t)(len - 1);
        if (lin < a + len && a < lin + size)
            hit |= (uint8_t)(1u << i);
    }
    return hit;
}

void emu_debug_data(struct emu_vcpu *v, uint64_t lin, unsigned size, bool write)
{
    v->pmu_acc |= write ? 2 : 1;
    if (v->dbg_control & GDBG_USE_HW_BP)
        v->dbg_data_hit |= data_hits(v->dbg_regs, v->dbg_regs[7], lin, size, write);
    else
        v->dbg_gdata_hit |= data_hits(v->cpu.dr, v->cpu.dr[7], lin, size, write);
}

void emu_debug_gd_check(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    if ((v->dbg_control & GDBG_USE_HW_BP) && (v->dbg_regs[7] & (1u << 13))) {
        uint64_t lin = v->mode == DECODER_MODE_64 ? v->insn_rip
                                                  : (uint32_t)(c->seg[EMU_CS].base + v->insn_rip);
        debug_exit(v, 1, lin, DR6_FIXED | 0x2000);
        v->next_rip = v->insn_rip;
        emu_suspend(v);
    }
    if (c->dr[7] & (1u << 13)) {
        /* guest's general detect: #DB fault, DR6.BD, GD cleared (SDM vol.3 18.2.4) */
        emu_debug_db_payload(v, 0x2000);
        emu_raise(v, EMU_DB, EMU_NO_ERRCODE);
    }
}

/* After an instruction retired (RIP committed). */
void emu_debug_after(struct emu_vcpu *v, bool tf_before, bool was_soft_int, bool movss)
{
    struct cpu *c = &v->cpu;
    if (v->dbg_data_hit) {
        uint64_t lin = v->mode == DECODER_MODE_64 ? c->rip : (uint32_t)(c->seg[EMU_CS].base + c->rip);
        debug_exit(v, 1, lin, DR6_FIXED | v->dbg_data_hit);
        v->dbg_data_hit = 0;
        return;
    }
    if (v->dbg_control & GDBG_SINGLESTEP) {
        if (v->exit->reason == EMU_EXIT_NONE) {
            uint64_t lin = v->mode == DECODER_MODE_64 ? c->rip : (uint32_t)(c->seg[EMU_CS].base + c->rip);
            debug_exit(v, 1, lin, DR6_FIXED | DR6_BS);
        } else if (v->exit->reason == EMU_EXIT_IO || v->exit->reason == EMU_EXIT_MMIO ||
                   v->exit->reason == EMU_EXIT_MSR) {
            /* KVM: complete_fast_pio_in/out, complete_emulated_mmio/msr ->
             * kvm_skip_emulated_instruction -> kvm_vcpu_do_singlestep at the next KVM_RUN */
            v->dbg_step_exit = true;
        }
        return;
    }
    /* the guest's own: data breakpoints hit and single-step, one #DB trap; held back
     * for one instruction by the MOV SS / POP SS shadow */
    uint64_t payload = v->dbg_gdata_hit;
    v->dbg_gdata_hit = 0;
    if (tf_before && !was_soft_int)
        payload |= DR6_BS;
    if (movss) {
        v->dbg_pending |= payload;
        return;
    }
    payload |= v->dbg_pending;
    v->dbg_pending = 0;
    if (payload)
        db_trap(v, payload);
}

void emu_debug_tf_trap(struct emu_vcpu *v)
{
    db_trap(v, DR6_BS);
}

static void db_trap(struct emu_vcpu *v, uint64_t payload)
{
    struct cpu *c = &v->cpu;
    /* #DB trap through the guest's IDT; B0-3 replaced by the payload's, BS kept if set */
    emu_debug_db_payload(v, payload);
    v->delivering = true;
    v->delivering_vector = EMU_DB;
    emu_deliver_event(v, EMU_DB, EMU_NO_ERRCODE, false, c->rip);
    v->delivering = false;
}
