/* emu/: port I/O IN OUT INS OUTS -> EMU_EXIT_IO, with the protected-mode I/O
 * permission check (CPL > IOPL or virtual-8086: TSS I/O bitmap, SDM vol.1 19.5).
 * KVM semantics (arch/x86/kvm/x86.c): an OUT exit reports the data with RIP already
 * past the instruction; an IN completes (register written, RIP advanced) on the next
 * emu_run after emu_complete_io. String forms move up to one page / 4096 bytes per exit. */
#include <string.h>

#include "emu/internal.h"

static void io_permission(struct emu_vcpu *v, uint16_t port, unsigned size)
{
    struct cpu *c = &v->cpu;
    if (!(c->cr0 & 1))
        return;
    uint64_t fl = emu_flags(v);
    if (!(fl & EMU_FL_VM) && (unsigned)c->cpl <= ((fl & EMU_FL_IOPL) >> 12))
        return;
    const struct emu_segment *tr = &c->seg[EMU_TR];
    /* only a 32/64-bit TSS has an I/O bitmap */
    if (tr->unusable || (tr->type & 7) != 3 || tr->limit < 0x67)
        emu_raise(v, EMU_GP, 0);
    uint16_t base = (uint16_t)emu_lin_read(v, tr->base + 0x66, 2, EMU_ACC_READ | EMU_ACC_SYS);
    uint32_t off = base + port / 8u;
    if (off + 1 > tr->limit)
        emu_raise(v, EMU_GP, 0);
    uint16_t bits = (uint16_t)emu_lin_read(v, tr->base + off, 2, EMU_ACC_READ | EMU_ACC_SYS);
    if ((bits >> (port & 7)) & ((1u << size) - 1))
        emu_raise(v, EMU_GP, 0);
}

/* The permission checks, then L1's I/O intercept when L2 runs (APM 15.10.1, SDM 25.1.3). */
static void io_check(struct emu_vcpu *v, const struct decoded_insn *d, uint16_t port,
                     unsigned size, bool in, bool string)
{
    io_permission(v, port, size);
    struct emu_nx_io io = {.port = port, .size = (uint8_t)size, .addrsize = d->addrsize,
                           .in = in, .string = string,
                           .rep = string && (d->prefixes & (DPFX_REP | DPFX_REPNE))};
    emu_icpt_io(v, &io);
}

static void io_exit(struct emu_vcpu *v, uint16_t port, unsigned size, bool in, uint32_t count)
{
    struct emu_exit *x = v->exit;
    x->reason = EMU_EXIT_IO;
    x->io.port = port;
    x->io.size = (uint8_t)size;
    x->io.in = in;
    x->io.count = count;
}

static uint16_t port_of(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i)
{
    if (d->ops[i].kind == DOPND_IMM)
        return (uint16_t)(d->ops[i].disp & 0xff);
    return (uint16_t)v->cpu.gpr[EMU_RDX];
}

static void remember_insn(struct emu_vcpu *v, const struct decoded_insn *d)
{
    if (d != &v->scratch)
        v->scratch = *d;
}

static int h_in(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->ops[0].size;
    uint16_t port = port_of(v, d, 1);
    io_check(v, d, port, size, true, false);
    io_exit(v, port, size, true, 1);
    memset(v->exit->io.data, 0, size);
    remember_insn(v, d);
    v->pending = EMU_PEND_IO_IN;
    v->io_in_reg_size = (uint8_t)size;
    v->io_count = 1;
    v->io_string = false;
    v->io_mmio_dst = false;
    memset(v->io_data, 0, 8);
    v->pending_next_rip = v->next_rip;
    v->next_rip = v->insn_rip; /* RIP advances when the IN completes */
    return EMU_H_EXIT;
}

static int h_out(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->ops[1].size;
    uint16_t port = port_of(v, d, 0);
    io_check(v, d, port, size, false, false);
    uint64_t val = v->cpu.gpr[EMU_RAX];
    io_exit(v, port, size, false, 1);
    memcpy(v->exit->io.data, &val, size);
    return EMU_H_EXIT;
}

static unsigned str_size(const struct decoded_insn *d)
{
    return d->op == DOP_INSB || d->op == DOP_OUTSB ? 1 : (d->opsize == 2 ? 2 : 4);
}

/* Elements for one exit: all remaining, bounded by the page of the memory side and
 * the exit buffer. */
static uint32_t str_count(struct emu_vcpu *v, const struct decoded_insn *d, unsigned sz, uint64_t lin)
{
    if (!(d->prefixes & (DPFX_REP | DPFX_REPNE)))
        return 1;
    uint64_t cx = v->cpu.gpr[EMU_RCX] & emu_mask(d->addrsize);
    bool down = emu_flags(v) & EMU_FL_DF;
    uint64_t room = down ? ((lin & 0xfff) / sz) + 1 : (4096 - (lin & 0xfff)) / sz;
    if (room == 0)
        room = 1;
    uint64_t n = cx < room ? cx : room;
    if (n * sz > sizeof v->exit->io.data)
        n = sizeof v->exit->io.data / sz;
    return (uint32_t)n;
}

static int h_ins(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    unsigned sz = str_size(d), as = d->addrsize;
    bool rep = d->prefixes & (DPFX_REP | DPFX_REPNE);
    if (rep && (c->gpr[EMU_RCX] & emu_mask(as)) == 0)
        return EMU_H_NEXT;
    uint16_t port = (uint16_t)c->gpr[EMU_RDX];
    io_check(v, d, port, sz, true, true);
    uint64_t di = c->gpr[EMU_RDI] & emu_mask(as);
    uint64_t lin = emu_seg_lin(v, EMU_ES, di, sz, EMU_ACC_WRITE);
    /* probe the destination now so a #PF is raised before the device is read; an MMIO
     * destination is not read for it (that would be a device read of its own) */
    bool ram = emu_lin_probe_write(v, lin, sz);
    uint32_t n = str_count(v, d, sz, lin);
    /* to MMIO: a batch of at most KVM's read-ahead buffer, 1024 bytes (emulate.c
     * pio_in_emulated), written as one access in 8-byte exits, as KVM's OP_MEM_STR
     * writeback does (forward only; backwards it goes element by element) */
    if (!ram && n > 1024 / sz)
        n = 1024 / sz;
    io_exit(v, port, sz, true, n);
    remember_insn(v, d);
    v->pending = EMU_PEND_IO_IN;
    v->io_in_reg_size = (uint8_t)sz;
    v->io_count = n;
    v->io_string = true;
    v->io_mmio_dst = !ram;
    v->pending_next_rip = v->next_rip;
    v->next_rip = v->insn_rip;
    return EMU_H_EXIT;
}

static int h_outs(struct emu_vcpu *v, const struct decoded_insn *d)
{
    struct cpu *c = &v->cpu;
    unsigned sz = str_size(d), as = d->addrsize;
    bool rep = d->prefixes & (DPFX_REP | DPFX_REPNE);
    if (rep && (c->gpr[EMU_RCX] & emu_mask(as)) == 0)
        return EMU_H_NEXT;
    unsigned seg = (d->prefixes & DPFX_SEG) ? d->seg_override : EMU_DS;
    uint16_t port = (uint16_t)c->gpr[EMU_RDX];
    io_check(v, d, port, sz, false, true);
    uint64_t si = c->gpr[EMU_RSI] & emu_mask(as);
    uint64_t lin = emu_seg_lin(v, seg, si, sz, EMU_ACC_READ);
    uint32_t n = str_count(v, d, sz, lin);
    int64_t step = (emu_flags(v) & EMU_FL_DF) ? -(int64_t)sz : (int64_t)sz;
    uint8_t buf[4096];
    for (uint32_t i = 0; i < n; i++) {
        uint64_t val = emu_mem_read(v, seg, (si + (uint64_t)(step * (int64_t)i)) & emu_mask(as), sz);
        memcpy(buf + i * sz, &val, sz);
    }
    io_exit(v, port, sz, false, n);
    memcpy(v->exit->io.data, buf, (size_t)n * sz);
    emu_gpr_write(v, EMU_RSI, as, si + (uint64_t)(step * (int64_t)n));
    if (rep) {
        uint64_t cx = (c->gpr[EMU_RCX] & emu_mask(as)) - n;
        emu_gpr_write(v, EMU_RCX, as, cx);
        if (cx)
            v->next_rip = v->insn_rip;
    }
    return EMU_H_EXIT;
}

const struct emu_handler_entry emu_io_handlers[] = {
    {DOP_IN, h_in}, {DOP_OUT, h_out},
    {DOP_INSB, h_ins}, {DOP_INSW, h_ins}, {DOP_INSD, h_ins},
    {DOP_OUTSB, h_outs}, {DOP_OUTSW, h_outs}, {DOP_OUTSD, h_outs},
    {0, NULL},
};
