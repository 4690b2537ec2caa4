/* emu/: bit instructions BT BTS BTR BTC BSF BSR TZCNT LZCNT POPCNT BSWAP MOVBE (SDM vol.2). A register
 * bit offset with a memory operand addresses beyond the operand (signed offset,
 * SDM "BT: bit base/bit offset"). */
#include "emu/internal.h"

enum btk { B_T, B_S, B_R, B_C };

static uint64_t bt_apply(enum btk k, uint64_t v, uint64_t bit)
{
    switch (k) {
    case B_S: return v | bit;
    case B_R: return v & ~bit;
    case B_C: return v ^ bit;
    default: return v;
    }
}

static int bt(struct emu_vcpu *v, const struct decoded_insn *d, enum btk k)
{
    unsigned size = d->ops[0].size, bits = size * 8;
    uint64_t off = emu_opnd_read(v, d, 1);
    uint64_t old;
    unsigned bitno;
    if (d->ops[0].kind == DOPND_MEM) {
        int64_t soff = d->ops[1].kind == DOPND_IMM ? (int64_t)(off & (bits - 1)) : emu_sext(off, size);
        int64_t unit = soff >= 0 ? soff / (int64_t)bits : -((-soff + bits - 1) / (int64_t)bits);
        bitno = (unsigned)(soff - unit * (int64_t)bits);
        uint64_t ea = (emu_opnd_ea(v, d, 0) + (uint64_t)(unit * (int64_t)size)) & emu_mask(d->addrsize);
        uint64_t lin = emu_seg_lin(v, d->ops[0].seg, ea, size, k == B_T ? EMU_ACC_READ : EMU_ACC_WRITE);
        uint64_t bit = 1ull << bitno;
        void *p;
        if (k != B_T && (d->prefixes & DPFX_LOCK) && !(lin & (size - 1)) &&
            (p = emu_lin_ptr(v, lin, size, EMU_ACC_WRITE))) {
            switch (size) {
            case 2: old = k == B_S ? __atomic_fetch_or((uint16_t *)p, (uint16_t)bit, __ATOMIC_SEQ_CST)
                        : k == B_R ? __atomic_fetch_and((uint16_t *)p, (uint16_t)~bit, __ATOMIC_SEQ_CST)
                                   : __atomic_fetch_xor((uint16_t *)p, (uint16_t)bit, __ATOMIC_SEQ_CST); break;
            case 4: old = k == B_S ? __atomic_fetch_or((uint32_t *)p, (uint32_t)bit, __ATOMIC_SEQ_CST)
                        : k == B_R ? __atomic_fetch_and((uint32_t *)p, (uint32_t)~bit, __ATOMIC_SEQ_CST)
                                   : __atomic_fetch_xor((uint32_t *)p, (uint32_t)bit, __ATOMIC_SEQ_CST); break;
            default: old = k == B_S ? __atomic_fetch_or((uint64_t *)p, bit, __ATOMIC_SEQ_CST)
                         : k == B_R ? __atomic_fetch_and((uint64_t *)p, ~bit, __ATOMIC_SEQ_CST)
                                    : __atomic_fetch_xor((uint64_t *)p, bit, __ATOMIC_SEQ_CST); break;
            }
        } else {
            old = emu_lin_read(v, lin, size, k == B_T ? EMU_ACC_READ : EMU_ACC_WRITE);
            if (k != B_T)
                emu_lin_write(v, lin, size, bt_apply(k, old, bit), EMU_ACC_WRITE);
        }
    } else {
        bitno = (unsigned)(off & (bits - 1));
        old = emu_opnd_read(v, d, 0);
        if (k != B_T)
            emu_opnd_write(v, d, 0, bt_apply(k, old, 1ull << bitno));
    }
    emu_flags_update(v, EMU_FL_CF, ((old >> bitno) & 1) ? EMU_FL_CF : 0);
    return EMU_H_NEXT;
}

static int h_bt(struct emu_vcpu *v, const struct decoded_insn *d) { return bt(v, d, B_T); }
static int h_bts(struct emu_vcpu *v, const struct decoded_insn *d) { return bt(v, d, B_S); }
static int h_btr(struct emu_vcpu *v, const struct decoded_insn *d) { return bt(v, d, B_R); }
static int h_btc(struct emu_vcpu *v, const struct decoded_insn *d) { return bt(v, d, B_C); }

/* BSF/BSR: source 0 -> ZF=1, destination unchanged (what Intel and AMD CPUs do). */
static int bsx(struct emu_vcpu *v, const struct decoded_insn *d, bool rev)
{
    unsigned size = d->ops[0].size;
    uint64_t s = emu_opnd_read(v, d, 1) & emu_mask(size);
    if (!s) {
        emu_flags_update(v, EMU_FL_ZF, EMU_FL_ZF);
        if (size == 4)
            emu_opnd_write(v, d, 0, emu_opnd_read(v, d, 0)); /* 32-bit dest still zero-extends */
        return EMU_H_NEXT;
    }
    emu_opnd_write(v, d, 0, rev ? 63 - (unsigned)__builtin_clzll(s) : (unsigned)__builtin_ctzll(s));
    emu_flags_update(v, EMU_FL_ZF, 0);
    return EMU_H_NEXT;
}

static int h_bsf(struct emu_vcpu *v, const struct decoded_insn *d) { return bsx(v, d, false); }
static int h_bsr(struct emu_vcpu *v, const struct decoded_insn *d) { return bsx(v, d, true); }

/* TZCNT/LZCNT (F3 0F BC/BD): on a CPU without BMI1 / LZCNT the F3 prefix is ignored and
 * they are BSF/BSR (SDM vol.2 TZCNT/LZCNT; Linux's __ffs relies on it). The CPU model is
 * the guest's CPUID: CPUID.7.0:EBX.BMI1[3], CPUID.80000001:ECX.LZCNT[5] (AMD ABM). */
/* Count trailing (rev = false) or leading zeros of the operand-size source: CF = source
 * was zero, ZF = result is zero; OF SF AF PF undefined (cleared here, as AMD does). */
static int xzcnt(struct emu_vcpu *v, const struct decoded_insn *d, bool rev)
{
    unsigned size = d->ops[0].size, bits = size * 8;
    uint64_t s = emu_opnd_read(v, d, 1) & emu_mask(size);
    unsigned n = !s ? bits : rev ? (unsigned)__builtin_clzll(s) - (64 - bits) : (unsigned)__builtin_ctzll(s);
    emu_opnd_write(v, d, 0, n);
    emu_flags_update(v, EMU_FL_CF | EMU_FL_ZF | EMU_FL_OF | EMU_FL_SF | EMU_FL_AF | EMU_FL_PF,
                     (!s ? EMU_FL_CF : 0) | (!n ? EMU_FL_ZF : 0));
    return EMU_H_NEXT;
}

static int h_tzcnt(struct emu_vcpu *v, const struct decoded_insn *d)
{
    return emu_cpuid_has(v, 7, 0, 1, 3) ? xzcnt(v, d, false) : bsx(v, d, false);
}

static int h_lzcnt(struct emu_vcpu *v, const struct decoded_insn *d)
{
    return emu_cpuid_has(v, 0x80000001u, 0, 2, 5) ? xzcnt(v, d, true) : bsx(v, d, true);
}

/* POPCNT: ZF = source was zero, OF SF AF CF PF cleared (SDM vol.2 POPCNT). */
static int h_popcnt(struct emu_vcpu *v, const struct decoded_insn *d)
{
    uint64_t s = emu_opnd_read(v, d, 1) & emu_mask(d->ops[0].size);
    emu_opnd_write(v, d, 0, (unsigned)__builtin_popcountll(s));
    emu_flags_update(v, EMU_FL_CF | EMU_FL_ZF | EMU_FL_OF | EMU_FL_SF | EMU_FL_AF | EMU_FL_PF,
                     !s ? EMU_FL_ZF : 0);
    return EMU_H_NEXT;
}

static uint64_t bswap(uint64_t x, unsigned size)
{
    switch (size) {
    case 2: return 0; /* BSWAP r16 is undefined; hardware yields 0 */
    case 4: return __builtin_bswap32((uint32_t)x);
    default: return __builtin_bswap64(x);
    }
}

static int h_bswap(struct emu_vcpu *v, const struct decoded_insn *d)
{
    emu_opnd_write(v, d, 0, bswap(emu_opnd_read(v, d, 0), d->ops[0].size));
    return EMU_H_NEXT;
}

static int h_movbe(struct emu_vcpu *v, const struct decoded_insn *d)
{
    unsigned size = d->ops[0].size;
    uint64_t s = emu_opnd_read(v, d, 1);
    emu_opnd_write(v, d, 0, size == 2 ? __builtin_bswap16((uint16_t)s) : bswap(s, size));
    return EMU_H_NEXT;
}

const struct emu_handler_entry emu_bit_handlers[] = {
    {DOP_BT, h_bt}, {DOP_BTS, h_bts}, {DOP_BTR, h_btr}, {DOP_BTC, h_btc},
    {DOP_BSF, h_bsf}, {DOP_BSR, h_bsr}, {DOP_TZCNT, h_tzcnt}, {DOP_LZCNT, h_lzcnt},
    {DOP_POPCNT, h_popcnt}, {DOP_BSWAP, h_bswap}, {DOP_MOVBE, h_movbe},
    {0, NULL},
};
