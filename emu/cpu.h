/* emu/: architectural state of one virtual x86-64 CPU.
 *
 * CONTRACT shared by emu/ (owner), msr/ (reads/writes MSR-backed state) and
 * abi/ (GET/SET_REGS, SREGS, FPU, XSAVE, ...). Fields may be added; existing
 * ones keep their meaning.
 */
#ifndef SOFTKVM_EMU_CPU_H
#define SOFTKVM_EMU_CPU_H

#include <stdbool.h>
#include <stdint.h>

enum emu_gpr {
    EMU_RAX, EMU_RCX, EMU_RDX, EMU_RBX, EMU_RSP, EMU_RBP, EMU_RSI, EMU_RDI,
    EMU_R8, EMU_R9, EMU_R10, EMU_R11, EMU_R12, EMU_R13, EMU_R14, EMU_R15,
};
enum emu_sreg { EMU_ES, EMU_CS, EMU_SS, EMU_DS, EMU_FS, EMU_GS, EMU_TR, EMU_LDTR, EMU_NSEGS };

/* RFLAGS bits (SDM vol.1 3.4.3) */
#define EMU_FL_CF (1u << 0)
#define EMU_FL_FIXED1 (1u << 1)
#define EMU_FL_PF (1u << 2)
#define EMU_FL_AF (1u << 4)
#define EMU_FL_ZF (1u << 6)
#define EMU_FL_SF (1u << 7)
#define EMU_FL_TF (1u << 8)
#define EMU_FL_IF (1u << 9)
#define EMU_FL_DF (1u << 10)
#define EMU_FL_OF (1u << 11)
#define EMU_FL_IOPL (3u << 12)
#define EMU_FL_NT (1u << 14)
#define EMU_FL_RF (1u << 16)
#define EMU_FL_VM (1u << 17)
#define EMU_FL_AC (1u << 18)
#define EMU_FL_VIF (1u << 19)
#define EMU_FL_VIP (1u << 20)
#define EMU_FL_ID (1u << 21)

/* A segment register with its hidden part; same meaning as struct kvm_segment. */
struct emu_segment {
    uint64_t base;
    uint32_t limit; /* byte-granular (already expanded by G) */
    uint16_t selector;
    uint8_t type, present, dpl, db, s, l, g, avl;
    uint8_t unusable;
};

struct emu_dtable {
    uint64_t base;
    uint16_t limit;
};

/* Exception/interrupt event state (mirrors struct kvm_vcpu_events). */
struct emu_events {
    /* exception pending (not yet delivered) or injected (being delivered) */
    bool exc_pending, exc_injected;
    uint8_t exc_vector;
    bool exc_has_error_code;
    uint32_t exc_error_code;
    bool exc_has_payload;
    uint64_t exc_payload; /* CR2 for #PF, DR6 bits for #DB (KVM_CAP_EXCEPTION_PAYLOAD) */
    /* external interrupt queued by the VMM (KVM_INTERRUPT) */
    bool irq_injected;
    uint8_t irq_vector;
    bool irq_soft;
    /* NMI */
    bool nmi_pending, nmi_injected, nmi_masked;
    /* interrupt shadow after MOV SS / POP SS / STI (SDM vol.3 6.8.3) */
    uint8_t int_shadow; /* KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI */
    bool smi_pending;
    /* System-management mode (6.12 smm.c; HF_SMM_MASK / HF_SMM_INSIDE_NMI_MASK): in SMM,
     * and whether NMIs were already blocked when the SMI was taken (RSM then keeps them
     * blocked). Set by emu/smm.c, and by abi/ through emu_smm_set (KVM_SET_VCPU_EVENTS). */
    bool smm, smm_inside_nmi;
    bool triple_fault_pending;
};

#define EMU_CPUID_MWAIT_TABLE 0 /* as the KVM_SET_CPUID2 table says */
#define EMU_CPUID_MWAIT_CLEAR 1
#define EMU_CPUID_MWAIT_SET 2

/* Legacy x87/SSE area in FXSAVE layout plus AVX upper halves. */
struct emu_fpu {
    uint16_t fcw, fsw;
    uint8_t ftw; /* abridged tag word as in FXSAVE */
    uint16_t fop;
    uint64_t fip, fdp;
    uint32_t mxcsr, mxcsr_mask;
    uint8_t st[8][16];                       /* ST0-7 / MM0-7, 80-bit values in 16-byte slots */
    uint8_t xmm[16][16] __attribute__((aligned(16)));
    uint8_t ymmh[16][16] __attribute__((aligned(16))); /* upper 128 bits of YMM0-15 */
};

#define EMU_MSR_STATE_SLOTS 64

struct cpu {
    /* --- general purpose --- */
    uint64_t gpr[16];
    uint64_t rip;
    uint64_t rflags; /* authoritative value is produced by emu_get_rflags() (lazy flags) */

    /* --- segmentation / descriptor tables --- */
    struct emu_segment seg[EMU_NSEGS];
    struct emu_dtable gdtr, idtr;

    /* --- control --- */
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t efer;
    uint64_t xcr0;
    uint64_t dr[8]; /* dr[4],dr[5] unused (aliases) */
    uint64_t apic_base;
    uint64_t pdptrs[4]; /* PAE PDPTEs loaded at CR3 write (SDM vol.3 4.4.1) */

    /* --- MSR-backed state used by instructions (msr/ reads and writes these) --- */
    uint64_t star, lstar, cstar, sfmask;
    uint64_t kernel_gs_base;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    /* TSC (SDM vol.3 26.3 "TSC offsetting and scaling"; 6.12 x86.c kvm_scale_tsc):
     * guest TSC = (host TSC * tsc_ratio >> EMU_TSC_FRAC) + tsc_offset, the running level's
     * (KVM vcpu->arch.tsc_offset / tsc_scaling_ratio). L1's TSC uses l1_tsc_ratio and
     * tsc_offset - l2_tsc_offset; l2_tsc_offset is 0 unless a VMX L2 runs. Change them
     * with emu_cpu_set_l1_tsc (below), which also applies the L2 multiplier. */
    uint64_t tsc_offset;
    uint64_t l2_tsc_offset;
    uint64_t tsc_ratio, l1_tsc_ratio;
    /* while a VMX L2 runs: VMCS12's TSC multiplier and offset in effect (KVM
     * get_l2_tsc_multiplier / get_l2_tsc_offset); EMU_TSC_ONE and 0 otherwise */
    uint64_t l2_tsc_mult, l2_tsc_vmcs_offset;
    uint32_t tsc_khz; /* the rate the guest's TSC runs at (KVM virtual_tsc_khz) */
    uint64_t tsc_aux;
    uint64_t pat;
    uint64_t spec_ctrl;
    uint64_t xss;
    uint64_t smbase;    /* IA32_SMBASE (host-only MSR; RSM reloads it from SMRAM, smm.c) */
    uint64_t smi_count; /* MSR_SMI_COUNT: SMIs taken (x86.c ++vcpu->arch.smi_count) */
    uint64_t vm_hsave_pa; /* AMD VM_HSAVE_PA: VMRUN needs it set (KVM nested.hsave_msr) */
    /* Intel: the IA32_VMX_* capability MSRs of this vCPU (KVM vmx->nested.msrs). msr/
     * resets and restores them (msr/h_vmx.c), emu/vmx.c checks VMXON and VM entries
     * against them. */
    struct emu_vmx_caps {
        uint64_t basic, misc, cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1, vmcs_enum;
        uint64_t ept_vpid, vmfunc;
        uint32_t pin_lo, pin_hi, proc_lo, proc_hi, exit_lo, exit_hi, entry_lo, entry_hi;
        uint32_t proc2_lo, proc2_hi;
    } vmx_caps;
    bool vmxon;          /* in VMX operation (emu/vmx.c; msr/ refuses cap changes then) */
    bool vmx_leave_req;  /* host FEATURE_CONTROL = 0: emu leaves VMX operation (vmx_leave_nested) */
    uint64_t feature_control; /* IA32_FEATURE_CONTROL as msr/ stores it: VMXON needs LOCKED|VMX */
    /* CPUID.1:ECX.MONITOR as KVM's runtime CPUID update last left it (cpuid.c
     * kvm_update_cpuid_runtime: with KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT disabled the bit
     * follows IA32_MISC_ENABLE.MWAIT; msr/ writes this): EMU_CPUID_MWAIT_* */
    uint8_t cpuid_mwait;

    /* --- FPU / SIMD --- */
    struct emu_fpu fpu;

    /* --- events --- */
    struct emu_events ev;
    bool halted;         /* in HLT (KVM_MP_STATE_HALTED) */
    bool shutdown;       /* triple fault happened */

    int cpl; /* cached from CS.DPL / SS.DPL per SDM rules; kept coherent by emu */

    /* Opaque back pointers for the layers above (abi's vcpu, msr state). */
    void *owner;
};


/* TSC scaling ratios are fixed point with 48 fraction bits, VMX's TSC-multiplier format
 * (SDM vol.3 25.3; KVM kvm_caps.tsc_scaling_ratio_frac_bits = 48 on VMX). The SVM flavour
 * computes its ratios at SVM's 32 bits and widens them (abi/vcpu_tsc.c). */
#define EMU_TSC_FRAC 48
#define EMU_TSC_ONE (1ull << EMU_TSC_FRAC)

/* kvm_scale_tsc (mul_u64_u64_shr). Ratio 0: a struct cpu emu_reset never saw (msr/'s
 * unit tests), which runs at ratio 1. */
static inline uint64_t emu_scale_tsc(uint64_t tsc, uint64_t ratio)
{
    if (ratio == EMU_TSC_ONE || ratio == 0)
        return tsc;
    return (uint64_t)(((unsigned __int128)tsc * ratio) >> EMU_TSC_FRAC);
}

/* kvm_vcpu_write_tsc_offset + kvm_vcpu_write_tsc_multiplier: L1's offset and ratio, and
 * the running level's from them (kvm_calc_nested_tsc_offset / _multiplier). */
static inline void emu_cpu_set_l1_tsc(struct cpu *c, uint64_t l1_offset, uint64_t l1_ratio)
{
    uint64_t m = c->l2_tsc_mult ? c->l2_tsc_mult : EMU_TSC_ONE;
    l1_ratio = l1_ratio ? l1_ratio : EMU_TSC_ONE;
    uint64_t off = l1_offset, ratio = l1_ratio;
    if (m != EMU_TSC_ONE) {
        off = (uint64_t)(int64_t)(((__int128)(int64_t)l1_offset * m) >> EMU_TSC_FRAC);
        ratio = (uint64_t)(((unsigned __int128)l1_ratio * m) >> EMU_TSC_FRAC);
    }
    off += c->l2_tsc_vmcs_offset;
    c->l1_tsc_ratio = l1_ratio;
    c->tsc_ratio = ratio;
    c->tsc_offset = off;
    c->l2_tsc_offset = off - l1_offset;
}

static inline uint64_t emu_cpu_l1_tsc_offset(const struct cpu *c)
{
    return c->tsc_offset - c->l2_tsc_offset;
}

#endif
