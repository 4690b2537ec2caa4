/* emu/pmu.c: what a virtual PMU needs from the interpreter (the vPMU itself is msr/pmu.c).
 *
 * Instructions retired come from the run loop's retired count, published once per block,
 * so an instructions or cycles counter costs nothing per instruction. Every other event
 * (branches, CLFLUSH, loads/stores), and counters that count only CPL 0 or only CPL > 0,
 * need each instruction classified: "precise" mode sends blocks through step_one (the
 * guest-debug path) while such a counter runs, and only then. Exact overflow points use
 * a stop count beside insn_limit: one compare per block while a counter runs. */
#include "emu/internal.h"

void emu_set_pmu_ops(struct emu_vcpu *v, const struct emu_pmu_ops *ops)
{
    if (ops)
        v->pmu_ops = *ops;
    else
        v->pmu_ops = (struct emu_pmu_ops){0};
}

uint64_t emu_pmu_retired(const struct emu_vcpu *v)
{
    /* inside a block the count is published at its end: add the records before this one
     * (the same arithmetic as emu_run's fault path) */
    if (v->code_page && v->insn && v->blk) {
        const struct emu_binsn *r =
            (const struct emu_binsn *)((const uint8_t *)v->insn - offsetof(struct emu_binsn, d));
        if (r >= v->blk->ins && r < v->blk->ins + v->blk->n)
            return v->icount + (uint64_t)(r - v->blk->ins);
    }
    return v->icount;
}

const struct emu_pmu_counts *emu_pmu_counts(const struct emu_vcpu *v)
{
    return &v->pmu_counts;
}

/* The stop point: `at`, or the next boundary while watching or a request is pending. */
static void update_stop(struct emu_vcpu *v, uint64_t at)
{
    if (v->pmu_watch || v->pmu_fire) {
        uint64_t next = emu_pmu_retired(v) + 1;
        if (!at || next < at)
            at = next;
    }
    v->pmu_stop = at;
    emu_update_stop_at(v);
}

void emu_pmu_set_precise(struct emu_vcpu *v, bool on, bool watch)
{
    bool changed = v->pmu_precise != on;
    v->pmu_precise = on;
    v->pmu_watch = on && watch;
    if (changed) {
        emu_debug_update(v);
        if (v->in_run)
            v->blk_break = true; /* the rest of the running block takes the new path */
    }
}

void emu_pmu_set_stop(struct emu_vcpu *v, uint64_t icount)
{
    update_stop(v, icount);
}

bool emu_pmu_request(struct emu_vcpu *v)
{
    if (!v->in_run || !v->insn)
        return false;
    v->pmu_fire = true;
    v->blk_break = true; /* leave the block after this instruction: the boundary is next */
    update_stop(v, v->pmu_stop);
    return true;
}

/* Branch instructions as Intel's BR_INST_RETIRED.ALL_BRANCHES and AMD's "retired branch
 * instructions" (PPR Core::X86::Pmc::Core::ExRetBrn) count them: taken or not, near or far,
 * software interrupts and returns included. */
static bool is_branch(uint16_t op)
{
    switch (op) {
    case DOP_JO: case DOP_JNO: case DOP_JB: case DOP_JAE: case DOP_JE: case DOP_JNE:
    case DOP_JBE: case DOP_JA: case DOP_JS: case DOP_JNS: case DOP_JP: case DOP_JNP:
    case DOP_JL: case DOP_JGE: case DOP_JLE: case DOP_JG:
    case DOP_LOOP: case DOP_LOOPE: case DOP_LOOPNE: case DOP_JCXZ: case DOP_JECXZ:
    case DOP_JRCXZ: case DOP_JMP: case DOP_JMPF: case DOP_CALL: case DOP_CALLF:
    case DOP_RET: case DOP_RETF: case DOP_IRET: case DOP_IRETD: case DOP_IRETQ:
    case DOP_INT: case DOP_INT3: case DOP_INTO: case DOP_INT1:
    case DOP_SYSCALL: case DOP_SYSRET: case DOP_SYSENTER: case DOP_SYSEXIT:
        return true;
    default:
        return false;
    }
}

void emu_pmu_account(struct emu_vcpu *v, const struct decoded_insn *d, unsigned cpl)
{
    uint64_t *n = v->pmu_counts.n[cpl != 0];
    n[EMU_PMU_INSN]++;
    if (d->status == DECODER_OK) {
        if (is_branch(d->op))
            n[EMU_PMU_BRANCH]++;
        else if (d->op == DOP_CLFLUSH || d->op == DOP_CLFLUSHOPT)
            n[EMU_PMU_CLFLUSH]++;
    }
    switch (v->pmu_acc & 3) {
    case 1: n[EMU_PMU_LOAD]++; break;
    case 2: n[EMU_PMU_STORE]++; break;
    case 3: n[EMU_PMU_LOADSTORE]++; break;
    default: break;
    }
}

void emu_pmu_fire(struct emu_vcpu *v)
{
    v->pmu_fire = false;
    v->pmu_stop = 0;
    emu_update_stop_at(v);
    if (v->pmu_ops.event)
        v->pmu_ops.event(v->pmu_ops.ctx); /* re-arms through emu_pmu_set_stop */
}
