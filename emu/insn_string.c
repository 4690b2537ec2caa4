/* emu/: string instructions MOVS CMPS STOS LODS SCAS with REP/REPE/REPNE (SDM vol.2
 * and vol.1 7.3.9). Registers are updated per element, so a fault in the middle
 * leaves a restartable state, exactly as hardware does. Long REP runs are split into
 * chunks of EMU_REP_CHUNK elements (RIP stays on the instruction between chunks). */
#include <string.h>

#include "emu/internal.h"

enum strk { S_MOVS, S_CMPS, S_STOS, S_LODS, S_SCAS };

static unsigned elem_size(const struct decoded_insn *d)
{
    switch (d->op) {
    case DOP_MOVSB: case DOP_CMPSB: case DOP_STOSB: case DOP_LODSB: case DOP_SCASB:
        return 1;
    default:
        return d->opsize;
    }
}

/* REP MOVSB/STOSB-style bulk fast path: forward direction, both sides in RAM in one
 * page each: copy whole runs with memmove/memset instead of element by element. */
static uint64_t bulk(struct emu_vcpu *v, const struct decoded_insn *d, enum strk k, unsigned sz,
                     uint64_t cnt, unsigned src_seg)
{
    struct cpu *c = &v->cpu;
    unsigned as = d->addrsize;
    uint64_t di = c->gpr[EMU_RDI] & emu_mask(as);
    uint64_t dlin = emu_seg_lin(v, EMU_ES, di, sz, EMU_ACC_WRITE);
    uint64_t n = (4096 - (dlin & 0xfff)) / sz;
    if (n > cnt)
        n = cnt;
    if (n < 2 || (di + n * sz) > emu_mask(as))
        return 0;
    uint64_t slin = 0, si = 0;
    if (k == S_MOVS) {
        si = c->gpr[EMU_RSI] & emu_mask(as);
        slin = emu_seg_lin(v, src_seg, si, sz, EMU_ACC_READ);
        uint64_t ns = (4096 - (slin & 0xfff)) / sz;
        if (ns < n)
            n = ns;
        if (n < 2 || (si + n * sz) > emu_mask(as))
            return 0;
        /* segment limits for the whole run */
        emu_seg_lin(v, src_seg, si, (unsigned)(n * sz), EMU_ACC_READ);
    }
    emu_seg_lin(v, EMU_ES, di, (unsigned)(n * sz), EMU_ACC_WRITE);
    uint8_t *dp = emu_lin_ptr(v, dlin, (unsigned)(n * sz), EMU_ACC_WRITE);
    if (!dp)
        return 0;
    if (k == S_MOVS) {
        uint8_t *sp = emu_lin_ptr(v, slin, (unsigned)(n * sz), EMU_ACC_READ);
        if (!sp)
            return 0;
        /* overlapping forward copies must replicate element by element */
        if (dp > sp && dp < sp + n * sz) {
            for (uint64_t i = 0; i < n * sz; i++)
                dp[i] = sp[i];
        } else {
            memmove(dp, sp, n * sz);
        }
        emu_gpr_write(v, EMU_RSI, as, si + n * sz);
    } else {
        uint64_t val = c->gpr[EMU_RAX];
        if (sz == 1)
            memset(dp, (int)(val & 0xff), n);
        else
            for (uint64_t i = 0; i < n; i++)
                memcpy(dp + i * sz, &val, sz);
    }
    emu_gpr_write(v, EMU_RDI, as, di + n * sz);
    return n;
}

static int string_op(struct emu_vcpu *v, const struct decoded_insn *d, enum strk k)
{
    struct cpu *c = &v->cpu;
    unsigned sz = elem_size(d), as = d->addrsize;
    uint64_t am = emu_mask(as);
    unsigned src_seg = (d->prefixes & DPFX_SEG) ? d->seg_override : EMU_DS;
    bool rep = d->prefixes & (DPFX_REP | DPFX_REPNE);
    bool repne = (d->prefixes & DPFX_REPNE) && !(d->prefixes & DPFX_REP);
    bool cond = k == S_CMPS || k == S_SCAS;
    bool down = emu_flags(v) & EMU_FL_DF;
    int64_t step = down ? -(int64_t)sz : (int64_t)sz;
    uint64_t todo = rep ? c->gpr[EMU_RCX] & am : 1;
    if (todo == 0)
        return EMU_H_NEXT;
    uint64_t chunk = todo > EMU_REP_CHUNK ? EMU_REP_CHUNK : todo;
    uint64_t done = 0;

    while (done < chunk) {
        /* an armed breakpoint goes element by element: a data breakpoint traps after
         * the iteration that hit it (SDM vol.3 18.3.1.2) */
        if (rep && !down && (k == S_MOVS || k == S_STOS) && !v->dbg_data) {
            uint64_t n = bulk(v, d, k, sz, chunk - done, src_seg);
            if (n) {
                done += n;
                emu_gpr_write(v, EMU_RCX, as, (c->gpr[EMU_RCX] & am) - n);
                continue;
            }
        }
        uint64_t si = c->gpr[EMU_RSI] & am, di = c->gpr[EMU_RDI] & am;
        bool stop = false;
        switch (k) {
        case S_MOVS: {
            uint64_t val = emu_mem_read(v, src_seg, si, sz);
            emu_mem_write(v, EMU_ES, di, sz, val);
            emu_gpr_write(v, EMU_RSI, as, si + (uint64_t)step);
            emu_gpr_write(v, EMU_RDI, as, di + (uint64_t)step);
            break;
        }
        case S_STOS:
            emu_mem_write(v, EMU_ES, di, sz, c->gpr[EMU_RAX]);
            emu_gpr_write(v, EMU_RDI, as, di + (uint64_t)step);
            break;
        case S_LODS: {
            uint64_t val = emu_mem_read(v, src_seg, si, sz);
            emu_gpr_write(v, EMU_RAX, sz, val);
            emu_gpr_write(v, EMU_RSI, as, si + (uint64_t)step);
            break;
        }
        case S_CMPS: {
            uint64_t a = emu_mem_read(v, src_seg, si, sz);
            uint64_t b = emu_mem_read(v, EMU_ES, di, sz);
            emu_gpr_write(v, EMU_RSI, as, si + (uint64_t)step);
            emu_gpr_write(v, EMU_RDI, as, di + (uint64_t)step);
            emu_lf_set(v, EMU_LF_SUB, sz, a - b, a, b);
            stop = repne ? a == b : a != b;
            break;
        }
        case S_SCAS: {
            uint64_t a = c->gpr[EMU_RAX] & emu_mask(sz);
            uint64_t b = emu_mem_read(v, EMU_ES, di, sz);
            emu_gpr_write(v, EMU_RDI, as, di + (uint64_t)step);
            emu_lf_set(v, EMU_LF_SUB, sz, a - b, a, b);
            stop = repne ? a == b : a != b;
            break;
        }
        }
        done++;
        emu_mmio_element_done(v);
        if (rep)
            emu_gpr_write(v, EMU_RCX, as, (c->gpr[EMU_RCX] & am) - 1);
        if (rep && cond && stop)
            return EMU_H_NEXT;
        /* the element went to MMIO (a write exit is recorded): one MMIO exit per element,
         * the instruction resumes with the next one after user space has seen it, as
         * KVM's emulator restarts a REP string op (x86_emulate_insn, string_insn) */
        if (v->exit_ready | v->dbg_gdata_hit)
            break;
    }
    if (rep && (c->gpr[EMU_RCX] & am) != 0)
        v->next_rip = v->insn_rip; /* more to do: continue after an interrupt window */
    return EMU_H_NEXT;
}

static int h_movs(struct emu_vcpu *v, const struct decoded_insn *d) { return string_op(v, d, S_MOVS); }
static int h_cmps(struct emu_vcpu *v, const struct decoded_insn *d) { return string_op(v, d, S_CMPS); }
static int h_stos(struct emu_vcpu *v, const struct decoded_insn *d) { return string_op(v, d, S_STOS); }
static int h_lods(struct emu_vcpu *v, const struct decoded_insn *d) { return string_op(v, d, S_LODS); }
static int h_scas(struct emu_vcpu *v, const struct decoded_insn *d) { return string_op(v, d, S_SCAS); }

const struct emu_handler_entry emu_string_handlers[] = {
    {DOP_MOVSB, h_movs}, {DOP_MOVSW, h_movs}, {DOP_MOVSD_STR, h_movs}, {DOP_MOVSQ, h_movs},
    {DOP_CMPSB, h_cmps}, {DOP_CMPSW, h_cmps}, {DOP_CMPSD_STR, h_cmps}, {DOP_CMPSQ, h_cmps},
    {DOP_STOSB, h_stos}, {DOP_STOSW, h_stos}, {DOP_STOSD, h_stos}, {DOP_STOSQ, h_stos},
    {DOP_LODSB, h_lods}, {DOP_LODSW, h_lods}, {DOP_LODSD, h_lods}, {DOP_LODSQ, h_lods},
    {DOP_SCASB, h_scas}, {DOP_SCASW, h_scas}, {DOP_SCASD, h_scas}, {DOP_SCASQ, h_scas},
    {0, NULL},
};
