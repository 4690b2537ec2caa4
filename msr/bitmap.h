/* msr/: the hardware MSR-bitmap gate (VMX 4 KiB bitmap, SVM 8 KiB MSRPM) and the
 * pass-through fast path. Header-only so emu/ can use it without linking msr/.
 *
 * emu/ on a guest RDMSR/WRMSR (after its own CPL check):
 *   struct msr_vcpu *mv = ops->ctx;
 *   if (!msr_bitmap_intercepted(mv, index, is_write))
 *       r = is_write ? msr_passthrough_write(mv, cpu, index, val)
 *                    : msr_passthrough_read(mv, cpu, index, &val);
 *   else
 *       r = is_write ? ops->wrmsr(...) : ops->rdmsr(...);
 *
 * Layouts (SDM vol.3 25.6.9 "MSR-Bitmap Address"; APM vol.2 15.11 "MSR Intercepts"):
 *  VMX: 0x000 read-low (0-0x1fff), 0x400 read-high (0xc0000000-0xc0001fff),
 *       0x800 write-low, 0xc00 write-high; 1 bit per MSR; set = intercept.
 *  SVM: 2 bits per MSR (even = read, odd = write); 0x000: 0-0x1fff, 0x800: 0xc0000000-
 *       0xc0001fff, 0x1000: 0xc0010000-0xc0011fff; set = intercept.
 *  MSRs outside those ranges are always intercepted.
 */
#ifndef SOFTKVM_MSR_BITMAP_H
#define SOFTKVM_MSR_BITMAP_H

#include "msr/msr.h"
#include "msr/msr_index.h"

/* Position of an MSR's bit in a bitmap: byte offset and bit number. */
struct msr_bitpos {
    uint32_t byte;
    uint8_t bit;
};

/* VMX: false when the MSR is outside the bitmap (always intercepted). */
static inline bool msr_vmx_bitpos(uint32_t index, bool write, struct msr_bitpos *p)
{
    uint32_t base;
    if (index <= 0x1fff)
        base = write ? 0x800 : 0x000;
    else if (index >= 0xc0000000u && index <= 0xc0001fffu)
        base = write ? 0xc00 : 0x400;
    else
        return false;
    uint32_t off = index & 0x1fff;
    p->byte = base + off / 8;
    p->bit = (uint8_t)(off % 8);
    return true;
}

/* SVM MSRPM: false when the MSR is outside the three ranges (always intercepted). */
static inline bool msr_svm_bitpos(uint32_t index, bool write, struct msr_bitpos *p)
{
    uint32_t base;
    if (index <= 0x1fff)
        base = 0x0000;
    else if (index >= 0xc0000000u && index <= 0xc0001fffu)
        base = 0x0800;
    else if (index >= 0xc0010000u && index <= 0xc0011fffu)
        base = 0x1000;
    else
        return false;
    uint32_t bitno = (index & 0x1fff) * 2 + (write ? 1 : 0);
    p->byte = base + bitno / 8;
    p->bit = (uint8_t)(bitno % 8);
    return true;
}

/* Does the vCPU's "hardware" bitmap intercept this access? A vCPU that has not yet seen
 * the latest filter generation intercepts everything: the intercept side then resyncs,
 * so a freshly denied MSR can never slip through the fast path. */
static inline bool msr_bitmap_intercepted(const struct msr_vcpu *v, uint32_t index, bool write)
{
    struct msr_bitpos p;
    if (atomic_load_explicit(&v->vm->filter_gen, memory_order_acquire) != v->filter_gen)
        return true;
    if (v->vm->vendor == MSR_VENDOR_AMD) {
        if (!msr_svm_bitpos(index, write, &p))
            return true;
        return (v->svm_msrpm[p.byte] >> p.bit) & 1;
    }
    if (!msr_vmx_bitpos(index, write, &p))
        return true;
    return (v->vmx_bitmap[p.byte] >> p.bit) & 1;
}

/* Canonicality of MSR-held linear addresses is static: 57 bits if the CPU supports 5-level
 * paging, else 48, whatever CR4.LA57 says (KVM is_noncanonical_msr_address, x86.h). */
static inline bool msr_is_canonical(const struct msr_vcpu *v, uint64_t addr)
{
    unsigned bits = v->vm->la57 ? 57 : 48;
    return (uint64_t)((int64_t)(addr << (64 - bits)) >> (64 - bits)) == addr;
}

/* Guest TSC as the CPU sees it: the vCPU's counter scaled, plus its offset (SDM vol.3 26.3
 * "TSC offsetting and scaling"); the counter is the host TSC abi wired
 * (msr_vcpu_set_tsc_source). */
static inline uint64_t msr_tsc_counter(const struct msr_vcpu *v)
{
    return v->tsc_read ? v->tsc_read(v->tsc_ctx) : __builtin_ia32_rdtsc();
}

static inline uint64_t msr_guest_tsc(const struct msr_vcpu *v, const struct cpu *cpu)
{
    return emu_scale_tsc(msr_tsc_counter(v), cpu->tsc_ratio) + cpu->tsc_offset;
}

/* kvm_read_l1_tsc: L1's TSC, also while an L2 runs */
static inline uint64_t msr_l1_tsc(const struct msr_vcpu *v, const struct cpu *cpu)
{
    return emu_scale_tsc(msr_tsc_counter(v), cpu->l1_tsc_ratio) + emu_cpu_l1_tsc_offset(cpu);
}

/* SPEC_CTRL bits the (virtual) hardware accepts: IBRS | STIBP | SSBD. KVM checks a guest
 * value by trying it on the host (kvm_spec_ctrl_test_value), and a passed-through WRMSR is
 * checked by the CPU, so both paths use the hardware's set. */
static inline uint64_t msr_spec_ctrl_valid_bits(const struct msr_vcpu *v)
{
    (void)v;
    return 0x7;
}

/* CPUID faulting (MSR_MISC_FEATURES_ENABLES bit 0, allowed when PLATFORM_INFO bit 31 is
 * set): emu must raise #GP(0) for CPUID at CPL > 0 while this is true (KVM
 * kvm_emulate_cpuid -> cpuid_fault_enabled). */
static inline bool msr_cpuid_faulting(const struct msr_vcpu *v)
{
    return v && (v->k.misc_features_enables & 1);
}

/* The fast path: what the CPU does for a passed-through MSR with guest state loaded.
 * Only MSRs that appear in a vendor's pass-through list are handled; anything else
 * (which a correct bitmap never passes) reports #GP so a bitmap bug is visible. */
static inline enum emu_msr_result msr_passthrough_read(struct msr_vcpu *v, struct cpu *cpu,
                                                        uint32_t index, uint64_t *value)
{
    v->stats.passthrough_hits++;
    switch (index) {
    case MSR_FS_BASE: *value = cpu->seg[EMU_FS].base; return EMU_MSR_OK;
    case MSR_GS_BASE: *value = cpu->seg[EMU_GS].base; return EMU_MSR_OK;
    case MSR_KERNEL_GS_BASE: *value = cpu->kernel_gs_base; return EMU_MSR_OK;
    case MSR_IA32_SYSENTER_CS: *value = cpu->sysenter_cs; return EMU_MSR_OK;
    case MSR_IA32_SYSENTER_ESP: *value = cpu->sysenter_esp; return EMU_MSR_OK;
    case MSR_IA32_SYSENTER_EIP: *value = cpu->sysenter_eip; return EMU_MSR_OK;
    case MSR_STAR: *value = cpu->star; return EMU_MSR_OK;
    case MSR_LSTAR: *value = cpu->lstar; return EMU_MSR_OK;
    case MSR_CSTAR: *value = cpu->cstar; return EMU_MSR_OK;
    case MSR_SYSCALL_MASK: *value = cpu->sfmask; return EMU_MSR_OK;
    case MSR_IA32_TSC: *value = msr_guest_tsc(v, cpu); return EMU_MSR_OK;
    case MSR_IA32_SPEC_CTRL: *value = cpu->spec_ctrl; return EMU_MSR_OK;
    case MSR_IA32_XFD: *value = v->k.xfd; return EMU_MSR_OK;
    case MSR_IA32_XFD_ERR: *value = v->k.xfd_err; return EMU_MSR_OK;
    case MSR_AMD64_SEV_ES_GHCB: *value = v->k.ghcb; return EMU_MSR_OK;
    default: *value = 0; return EMU_MSR_GP; /* PRED_CMD/FLUSH_CMD are write-only */
    }
}

static inline enum emu_msr_result msr_passthrough_write(struct msr_vcpu *v, struct cpu *cpu,
                                                         uint32_t index, uint64_t value)
{
    v->stats.passthrough_hits++;
    switch (index) {
    case MSR_FS_BASE: case MSR_GS_BASE: case MSR_KERNEL_GS_BASE:
    case MSR_LSTAR: case MSR_CSTAR:
        /* WRMSR #GP on a non-canonical address (SDM vol.2 WRMSR) */
        if (!msr_is_canonical(v, value))
            return EMU_MSR_GP;
        break;
    case MSR_IA32_SYSENTER_ESP: case MSR_IA32_SYSENTER_EIP:
        /* Intel checks canonicality; AMD keeps only bits 31:0 meaningful and does not fault */
        if (v->vm->vendor == MSR_VENDOR_INTEL && !msr_is_canonical(v, value))
            return EMU_MSR_GP;
        break;
    default:
        break;
    }
    switch (index) {
    case MSR_FS_BASE: cpu->seg[EMU_FS].base = value; return EMU_MSR_OK;
    case MSR_GS_BASE: cpu->seg[EMU_GS].base = value; return EMU_MSR_OK;
    case MSR_KERNEL_GS_BASE: cpu->kernel_gs_base = value; return EMU_MSR_OK;
    case MSR_IA32_SYSENTER_CS: cpu->sysenter_cs = (uint32_t)value; return EMU_MSR_OK;
    /* an AMD CPU stores only 32 bits of these (6.12 svm.c init_vmcb_after_set_cpuid
     * 1202-1205, the reason KVM intercepts them for Intel-compatible guests) */
    case MSR_IA32_SYSENTER_ESP:
        cpu->sysenter_esp = v->vm->vendor == MSR_VENDOR_AMD ? (uint32_t)value : value;
        return EMU_MSR_OK;
    case MSR_IA32_SYSENTER_EIP:
        cpu->sysenter_eip = v->vm->vendor == MSR_VENDOR_AMD ? (uint32_t)value : value;
        return EMU_MSR_OK;
    case MSR_STAR: cpu->star = value; return EMU_MSR_OK;
    case MSR_LSTAR: cpu->lstar = value; return EMU_MSR_OK;
    case MSR_CSTAR: cpu->cstar = value; return EMU_MSR_OK;
    case MSR_SYSCALL_MASK:
        if (value >> 32) /* bits 63:32 reserved (SDM vol.4 IA32_FMASK) */
            return EMU_MSR_GP;
        cpu->sfmask = value;
        return EMU_MSR_OK;
    case MSR_IA32_SPEC_CTRL:
        if (value & ~msr_spec_ctrl_valid_bits(v))
            return EMU_MSR_GP;
        cpu->spec_ctrl = value;
        return EMU_MSR_OK;
    case MSR_IA32_PRED_CMD: /* only IBPB (bit 0) is defined */
        return (value & ~1ull) ? EMU_MSR_GP : EMU_MSR_OK;
    case MSR_IA32_FLUSH_CMD: /* only L1D_FLUSH (bit 0) is defined */
        return (value & ~1ull) ? EMU_MSR_GP : EMU_MSR_OK;
    case MSR_IA32_XFD: v->k.xfd = value; return EMU_MSR_OK;
    case MSR_IA32_XFD_ERR: v->k.xfd_err = value; return EMU_MSR_OK;
    case MSR_AMD64_SEV_ES_GHCB: v->k.ghcb = value; return EMU_MSR_OK;
    default: return EMU_MSR_GP; /* TSC is read-only pass-through */
    }
}

#endif
