/* emu/: nested virtualization — an L1 hypervisor inside the guest running its own L2.
 *
 * CONTRACT between the emu core (run.c, except.c, the insn_*.c handlers) and the vendor
 * files emu/svm.c (AMD SVM, APM vol.2 ch.15) and, later, emu/vmx.c (Intel VMX, SDM vol.3C).
 * Design: emu/README.md "Nested virtualization".
 *
 * One struct cpu always holds the level that runs now (the Bochs model). VMRUN/VMLAUNCH
 * keeps what L1 gets back at the VM exit in the vendor state below (KVM keeps it in vmcb01
 * / vmcs01), loads L2 from VMCB12/VMCS12 in L1's memory and sets guest_mode. While
 * guest_mode is set, every sensitive instruction and every event asks the vendor, through
 * the emu_icpt_* calls below, whether L1 intercepts it, *before* its semantics (APM 15.7,
 * SDM 25.1: after the simple CPL/#UD checks, before memory and operand faults). If L1 does,
 * the vendor performs the VM exit (L2 state and exit information written to VMCB12/VMCS12,
 * L1 state loaded) and abandons the instruction with fault_kind EMU_FK_VMEXIT: the run
 * loop continues in L1 without delivering anything. What L1 does not intercept is handled
 * by L0 (softkvm) exactly as for L1: MSRs through msr/ (L0's bitmap, the filter, user-space
 * deflection), I/O and MMIO exits to user space, hypercalls to abi/.
 */
#ifndef SOFTKVM_EMU_NESTED_H
#define SOFTKVM_EMU_NESTED_H

#include <stdbool.h>
#include <stdint.h>

#include "emu/cpu.h"

struct emu_vcpu;

/* Instructions an L1 can intercept, vendor-neutral; each vendor file maps them to its
 * exit code (SVM_EXIT_*) or exit reason (EXIT_REASON_*) and intercept control. */
enum emu_nx_insn {
    EMU_NX_CPUID, EMU_NX_HLT, EMU_NX_INVLPG, EMU_NX_INVD, EMU_NX_WBINVD, EMU_NX_RDTSC,
    EMU_NX_RDTSCP, EMU_NX_RDPMC, EMU_NX_PAUSE, EMU_NX_MONITOR, EMU_NX_MWAIT, EMU_NX_XSETBV,
    EMU_NX_VMMCALL, /* VMMCALL, and VMCALL on SVM (KVM's emulator maps both to it) */
    EMU_NX_VMCALL,  /* VMCALL on VMX */
    EMU_NX_VMRUN, EMU_NX_VMLOAD, EMU_NX_VMSAVE, EMU_NX_STGI, EMU_NX_CLGI, EMU_NX_SKINIT,
    EMU_NX_INVLPGA, EMU_NX_IRET, EMU_NX_PUSHF, EMU_NX_POPF, EMU_NX_INTN, EMU_NX_ICEBP,
    EMU_NX_RSM, EMU_NX_SIDT, EMU_NX_SGDT, EMU_NX_SLDT, EMU_NX_STR, EMU_NX_LIDT, EMU_NX_LGDT,
    EMU_NX_LLDT, EMU_NX_LTR, EMU_NX_INVPCID, EMU_NX_RDPRU,
    EMU_NX_COUNT
};

/* An I/O instruction as the intercept sees it (SVM IOIO EXITINFO1, VMX qualification). */
struct emu_nx_io {
    uint16_t port;
    uint8_t size;     /* 1, 2, 4 */
    uint8_t addrsize; /* 2, 4, 8 (string forms) */
    bool in, string, rep;
};

/* The vendor side. Each intercept call returns when L1 does not intercept; otherwise it
 * performs the VM exit and does not return (longjmp, EMU_FK_VMEXIT). */
struct emu_nested_ops {
    void (*insn)(struct emu_vcpu *v, enum emu_nx_insn which, uint64_t info);
    void (*msr)(struct emu_vcpu *v, uint32_t index, bool write);
    void (*io)(struct emu_vcpu *v, const struct emu_nx_io *io);
    void (*cr)(struct emu_vcpu *v, unsigned cr, bool write);
    /* Optional (NULL: none). The value L2 reads from a CR (VMX: L1-owned CR0/CR4 bits come
     * from the read shadows), and the value a CR write that did not exit stores (VMX:
     * L1-owned bits keep their value; SDM 25.3 "MOV to CR0/CR4", CLTS, LMSW). */
    uint64_t (*cr_read)(struct emu_vcpu *v, unsigned cr, uint64_t val);
    uint64_t (*cr_write)(struct emu_vcpu *v, unsigned cr, uint64_t val);
    /* Optional: L2-physical -> L1-physical through L1's nested paging (VMX EPT), for each
     * paging-structure access (final = false) and the final address of a walk for `lin`.
     * False: not translatable outside a run; inside one the vendor performs the VM exit
     * (EPT violation / misconfiguration) instead of returning. */
    bool (*tdp)(struct emu_vcpu *v, uint64_t *gpa, unsigned acc, uint64_t lin, bool final);
    void (*dr)(struct emu_vcpu *v, unsigned dr, bool write);
    /* A fault/trap about to be delivered in L2 (after #DF merging); `reinject` = the event
     * was already being delivered (KVM "injected"), which the intercept never sees. */
    void (*exception)(struct emu_vcpu *v, uint8_t vector, uint32_t error_code, bool has_cr2,
                      uint64_t cr2, bool reinject);
    void (*shutdown)(struct emu_vcpu *v); /* triple fault in L2 */
    /* NMI / interrupt / virtual-interrupt arbitration at an instruction boundary in L2:
     * takes a VM exit or delivers into L2 (returns true), or finds nothing (false). */
    bool (*events)(struct emu_vcpu *v);
};

/* The event being delivered when a VM exit interrupts its delivery (SVM EXITINTINFO,
 * VMX IDT-vectoring information). */
enum emu_nx_evtype { EMU_NX_EV_INTR = 0, EMU_NX_EV_NMI = 2, EMU_NX_EV_EXCEPTION = 3, EMU_NX_EV_SOFT = 4 };
struct emu_nx_vectoring {
    bool valid, has_error;
    uint8_t vector, type; /* enum emu_nx_evtype */
    uint32_t error_code;
};

/* SVM: state L1 gets back at #VMEXIT (APM 15.5.1 "host state"; KVM svm->vmcb01.ptr->save),
 * and vmcb12's controls cached at VMRUN (KVM svm->nested.ctl). */
struct emu_svm_host {
    struct emu_segment es, cs, ss, ds;
    struct emu_dtable gdtr, idtr;
    uint64_t efer, cr0, cr3, cr4, rflags, rip, rsp, rax, tsc_offset;
    bool nmi_masked;
};
struct emu_svm_ctl {
    uint32_t intercepts[6]; /* words 0-5: CR, DR, exceptions, misc, SVM instructions, word 5 */
    uint64_t iopm_pa, msrpm_pa, tsc_offset, next_rip;
    uint32_t asid, int_ctl, int_vector, int_state, event_inj, event_inj_err;
    uint32_t clean; /* VMCB clean bits: only HV_VMCB_NESTED_ENLIGHTENMENTS (31) matters */
    /* Hyper-V enlightenments in the control area's software-reserved bytes (0x3e0,
     * struct hv_vmcb_enlightenments): the control bits and the partition assist page */
    uint32_t hv_ctl;
    uint64_t hv_pa_page;
};
struct emu_svm {
    bool gif_clear;     /* GIF = 0 (CLGI; #VMEXIT). Zero = GIF set, as after RESET */
    bool inj_pending;   /* ctl.event_inj still to be delivered at L2's first boundary */
    uint64_t vmcb12_pa; /* the VMCB of the running L2 */
    struct emu_svm_ctl ctl;
    struct emu_svm_host host;
    /* L1's MSRPM as merged at the last VMRUN that recalculated it (nested_svm_vmrun_msrpm):
     * it decides L2 accesses to MSRs L0 passes through; false = recalculate at the next
     * VMRUN (KVM force_msr_bitmap_recalc) */
    bool msrpm_cached;
    uint8_t l1_msrpm[0x2000];
};

/* VMX: VMX operation (VMXON) and the current VMCS, cached as KVM caches vmcs12 (read at
 * VMPTRLD, written back at VMCLEAR / VMPTRLD of another / VMXOFF); what L1 gets back at a
 * VM exit that the VMCS12 host-state area does not hold (KVM keeps it in vmcs01). */
struct emu_vmx {
    uint64_t vmxon_ptr;
    uint64_t vmptr;           /* current-VMCS pointer; ~0 = none (KVM INVALID_GPA) */
    bool inj_pending;         /* VM-entry interruption information still to deliver */
    bool timer_on;            /* VMX-preemption timer armed for this L2 run */
    uint64_t timer_deadline;  /* L1 TSC at which it fires (value << rate) */
    bool l1_nmi_masked;
    uint32_t exit_insn_info;  /* VMX-instruction information of the exit being taken */
    bool shadow_loaded;       /* shadow12 holds the VMCS-link-pointer VMCS while L2 runs */
    /* SMM suspends VMX operation (vmx->nested.smm.vmxon / .guest_mode): VMXON and L2 as
     * they were at the SMI, back at RSM (emu_vmx_smm_enter / _leave) */
    bool smm_vmxon, smm_guest_mode;
    bool ept_on;              /* this L2 runs with "enable EPT" */
    uint8_t vmcs12[4096];
    uint8_t shadow12[4096];   /* KVM cached_shadow_vmcs12: L2's VMREAD/VMWRITE target */
};

struct emu_nested {
    bool guest_mode; /* L2 runs */
    const struct emu_nested_ops *ops; /* the vendor of the running L2 */
    struct emu_nx_vectoring vectoring;
    struct emu_svm svm;
    struct emu_vmx vmx;
};

extern const struct emu_nested_ops emu_svm_ops; /* emu/svm.c */
extern const struct emu_nested_ops emu_vmx_ops; /* emu/vmx.c */

/* emu/vmx.c: CR0/CR4 values allowed in VMX operation (KVM nested_host/guest_cr0/4_valid,
 * from IA32_VMX_CR0/CR4_FIXED0/1); the core's CR writes refuse others with #GP(0). */
bool emu_vmx_cr_valid(struct emu_vcpu *v, unsigned cr, uint64_t val);
/* emu/vmx.c: at KVM_RUN entry: a host FEATURE_CONTROL=0 leaves VMX operation; L2 state
 * user space made invalid ends L2 with a TRIPLE_FAULT exit (KVM does not emulate
 * invalid L2 guest state). */
void emu_vmx_run_entry(struct emu_vcpu *v);
/* An L2 TSC read: the VMX-preemption timer exit if it has expired (emu/vmx.c). */
void emu_vmx_timer_after_tsc_read(struct emu_vcpu *v);

/* SMM hooks of the vendors (emu/smm.c calls them where smm.c calls kvm_x86_ops'
 * enter_smm / leave_smm). smram is the 512-byte state-save map (SMBASE + 0xfe00).
 * enter: the vCPU leaves guest mode (state already saved in smram); leave: it re-enters
 * the L2 the map or the vendor state records. False: KVM's failure (VM dead at entry,
 * shutdown at RSM). */
bool emu_svm_smm_enter(struct emu_vcpu *v, uint8_t *smram, bool lm);
bool emu_svm_smm_leave(struct emu_vcpu *v, const uint8_t *smram);
bool emu_vmx_smm_enter(struct emu_vcpu *v);
bool emu_vmx_smm_leave(struct emu_vcpu *v);
/* kvm_leave_nested: end the running L2 without a VM exit to L1's handler; on VMX also
 * VMX operation (vmx_leave_nested -> free_nested). */
void emu_svm_leave_guest(struct emu_vcpu *v);
void emu_vmx_leave_guest(struct emu_vcpu *v);
/* SVM_EXIT_SMI when L1 intercepts SMIs in the running L2 (does not return then). */
void emu_svm_smi_intercept(struct emu_vcpu *v);

/* fault_kind values (emu/internal.h struct emu_vcpu) */
enum { EMU_FK_EXCEPTION = 0, EMU_FK_INTERNAL = 1, EMU_FK_SUSPEND = 2, EMU_FK_HOST_FAULT = 3,
       EMU_FK_VMEXIT = 4,
       EMU_FK_MEM_FAULT = 5 };

/* The VM exit is complete (state switched to L1): abandon the current instruction and
 * continue the run loop in L1. Never returns. */
_Noreturn void emu_nested_resume_l1(struct emu_vcpu *v);

/* Delivery helpers the vendor files share with the run loop (emu/run.c). */
void emu_take_external(struct emu_vcpu *v, uint8_t vector);
void emu_take_nmi(struct emu_vcpu *v);
/* An event L1 injects (type EMU_NX_EV_EXCEPTION or _SOFT): exceptions as already being
 * delivered (not intercepted again), #BP/#OF and software interrupts returning to
 * return_rip; only type SOFT checks the gate's DPL, as INT n does. */
void emu_take_injected(struct emu_vcpu *v, uint8_t vector, uint8_t type, uint32_t error_code,
                       uint64_t return_rip);

#endif
