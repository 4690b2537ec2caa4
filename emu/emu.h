/* emu/: the interpreter's public interface.
 *
 * CONTRACT between emu/ (owner) and abi/ + msr/ (users). abi/ owns the VM and
 * fills in guest physical memory and the MSR callbacks; emu/ runs guest code
 * until something needs the layers above, and says so in struct emu_exit.
 * Fields/functions may be added; existing ones keep their meaning.
 */
#ifndef SOFTKVM_EMU_EMU_H
#define SOFTKVM_EMU_EMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emu/cpu.h"

/* ---------------- guest physical memory ---------------- */

struct emu_slot {
    uint64_t gpa;        /* page aligned */
    uint64_t size;       /* bytes, page multiple; 0 = slot unused */
    uint8_t *host;       /* host mapping of gpa */
    bool readonly;       /* KVM_MEM_READONLY: guest writes become MMIO exits */
    uint64_t *dirty_bitmap; /* non-NULL when KVM_MEM_LOG_DIRTY_PAGES: bit per 4K page */
    uint64_t dirty_first;   /* the bit of gpa's page (a KVM slot cut in pieces shares one) */
    /* private memory with nothing to back it (a SW-protected VM's private gpa in a slot
     * without guest_memfd, or outside any slot): host is NULL and any guest access ends
     * KVM_RUN with EMU_EXIT_MEMORY_FAULT (KVM: kvm_mmu_prepare_memory_fault_exit) */
    bool mem_fault;
};

/* The VM-wide physical memory map. abi/ updates it (under its lock) and then
 * bumps `generation`; every vCPU flushes its TLB and decode cache when it sees
 * a new generation before its next instruction. */
struct emu_physmem {
    /* sorted by gpa, non-overlapping (lookups are binary searches); owned by whoever
     * fills it (abi/ allocates one array per rebuild, up to KVM's 32764 user slots) */
    struct emu_slot *slots;
    unsigned nslots;
    volatile uint64_t generation;
};

/* Returns the host pointer for [gpa, gpa+len) if it lies inside one slot, else NULL. */
uint8_t *emu_gpa_to_host(const struct emu_physmem *pm, uint64_t gpa, uint64_t len, bool write);

/* ---------------- MSR hooks (implemented by msr/, wired by abi/) ---------------- */

enum emu_msr_result {
    EMU_MSR_OK = 0,   /* access done (value filled for reads) */
    EMU_MSR_GP,       /* inject #GP(0) */
    EMU_MSR_EXIT,     /* stop KVM_RUN: user-space exit (see emu_exit.msr) */
};

struct emu_msr_ops {
    /* Guest-initiated (RDMSR/WRMSR, and MSR reads emu performs for the guest).
     * `reason` is set for EMU_MSR_EXIT (KVM_MSR_EXIT_REASON_*). */
    enum emu_msr_result (*rdmsr)(void *ctx, struct cpu *cpu, uint32_t index, uint64_t *value,
                                 uint32_t *reason);
    enum emu_msr_result (*wrmsr)(void *ctx, struct cpu *cpu, uint32_t index, uint64_t value,
                                 uint32_t *reason);
    /* Optional: does L0's own MSR bitmap pass this access through (no intercept)? For an
     * L2, such MSRs are decided by the bitmap merged at VMRUN (emu/svm.c); NULL: none is. */
    bool (*passthrough)(void *ctx, uint32_t index, bool write);
    void *ctx;
    /* RDPMC (after its CR4.PCE/CPL check): 0 and *value, nonzero = #GP(0). NULL = #GP. */
    int (*rdpmc)(void *ctx, struct cpu *cpu, uint32_t ecx, uint64_t *value);
};

struct emu_vcpu;

/* Hyper-V state emu needs for the nested enlightenments (KVM hyperv.c), asked on the
 * slow path only (VMRUN, an L2 hypercall): kvm_hv_hypercall_enabled, and the VP assist
 * page's guest-physical address when it is enabled (0: none). */
struct emu_hv_ops {
    bool (*hypercall_enabled)(void *ctx);
    uint64_t (*vp_assist_gpa)(void *ctx);
    void *ctx;
};
void emu_set_hv_ops(struct emu_vcpu *v, const struct emu_hv_ops *ops);
/* After L0 served a Hyper-V TLB-flush hypercall of an L2 successfully (abi/hyperv_hcall.c):
 * kvm_hv_hypercall_complete reads the partition assist page's lock count. Returns false
 * when it cannot be read (the result becomes HV_STATUS_INVALID_HYPERCALL_INPUT); with a
 * nonzero count an SVM L2 takes the synthetic #VMEXIT HV_SVM_EXITCODE_ENL after the
 * result is set (emu_hv_l2_flush_exit). */
bool emu_hv_l2_flush_lock(struct emu_vcpu *v, bool *exit_to_l1);
void emu_hv_l2_flush_exit(struct emu_vcpu *v);

/* ---------------- exits ---------------- */

enum emu_exit_reason {
    EMU_EXIT_NONE = 0,
    EMU_EXIT_IO,         /* port I/O: see io */
    EMU_EXIT_MMIO,       /* access to a gpa with no slot (or write to readonly slot) */
    EMU_EXIT_HLT,
    EMU_EXIT_SHUTDOWN,   /* triple fault */
    EMU_EXIT_MSR,        /* user-space MSR exit: see msr */
    EMU_EXIT_INTERNAL,   /* unimplemented instruction / emulation failure: see internal */
    EMU_EXIT_DEBUG,      /* guest debug (KVM_SET_GUEST_DEBUG single-step / breakpoints) */
    EMU_EXIT_INTERRUPTED,/* emu_request_stop() was called (signal, immediate_exit) */
    EMU_EXIT_HYPERCALL,  /* VMCALL/VMMCALL that the layer above must handle */
    EMU_EXIT_FAIL_ENTRY, /* invalid guest state at entry */
    EMU_EXIT_HOST_FAULT, /* a slot's host mapping faulted (emu_host_fault): KVM's -EFAULT */
    EMU_EXIT_MEMORY_FAULT, /* an access to an emu_slot.mem_fault page: see mem_fault */
};

struct emu_exit {
    enum emu_exit_reason reason;
    union {
        struct {
            uint16_t port;
            uint8_t size;   /* 1, 2, 4 */
            bool in;        /* direction: true = IN (guest reads) */
            uint32_t count; /* >1 for REP INS/OUTS */
            uint8_t data[4096]; /* OUT: data written by the guest; IN: filled by caller, then emu_complete_io() */
        } io;
        struct {
            uint64_t gpa;
            uint8_t len;
            bool is_write;
            uint8_t data[8]; /* write: data; read: caller fills then emu_complete_mmio() */
            uint64_t rip;    /* RIP of the accessing instruction (KVM_EXIT_TPR_ACCESS) */
        } mmio;
        struct {
            bool is_write;
            uint32_t index;
            uint32_t reason;  /* KVM_MSR_EXIT_REASON_* */
            uint64_t data;    /* value for writes */
        } msr;
        struct {
            /* true: KVM's KVM_REQ_TRIPLE_FAULT (user space's vcpu events, a VMX abort, a
             * failed nested CR3 load); false: the CPU itself shut down (a triple fault in
             * guest code, which SVM sees as the SHUTDOWN intercept) */
            bool requested;
        } shutdown;
        struct {
            uint32_t suberror; /* KVM_INTERNAL_ERROR_EMULATION etc. */
            uint8_t insn_len;
            uint8_t insn_bytes[15];
        } internal;
        struct {
            uint32_t exception; /* 1 = #DB, 3 = #BP */
            uint64_t pc;
            uint64_t dr6, dr7;
        } debug;
        struct {
            uint64_t hardware_entry_failure_reason;
        } fail_entry;
        struct {
            uint64_t gpa; /* page aligned: KVM reports the faulting 4K page */
            uint64_t size;
        } mem_fault;
    };
};

/* ---------------- vCPU lifecycle and running ---------------- */

struct emu_vcpu; /* opaque: struct cpu + TLB + decode cache + pending completion */

struct emu_vcpu *emu_vcpu_create(struct emu_physmem *pm);
void emu_vcpu_destroy(struct emu_vcpu *v);
struct cpu *emu_cpu(struct emu_vcpu *v);
/* Called from a SIGSEGV/SIGBUS handler in the thread running `v`: if emu_run is active and
 * `addr` lies in the host mapping of one of its memory slots (user space gave KVM an
 * unmapped or protected userspace_addr), the instruction is abandoned and emu_run returns
 * EMU_EXIT_HOST_FAULT; this call then does not return. Otherwise returns false. The
 * handler must be installed with SA_NODEFER (the jump leaves the signal mask alone). */
bool emu_host_fault(struct emu_vcpu *v, const void *addr);
void emu_set_msr_ops(struct emu_vcpu *v, const struct emu_msr_ops *ops);

/* ---------------- what a virtual PMU counts (msr/pmu.c builds the vPMU on it) ----------
 * Instructions retired are the run loop's retired count (no per-instruction cost). The
 * other events are counted per instruction only while "precise" mode is on (msr/ turns
 * it on while a counter needs them): blocks then run one record at a time (step_one) and
 * every retired instruction is classified, by the CPL it ran at. */
enum emu_pmu_class {
    EMU_PMU_INSN,      /* every retired instruction */
    EMU_PMU_BRANCH,    /* branch instructions (near/far jumps, calls, returns, LOOP, INT) */
    EMU_PMU_CLFLUSH,   /* CLFLUSH/CLFLUSHOPT (what softkvm reports as LLC references/misses) */
    EMU_PMU_LOAD,      /* data reads only */
    EMU_PMU_STORE,     /* data writes only */
    EMU_PMU_LOADSTORE, /* both (read-modify-write) */
    EMU_PMU_NCLASS
};
struct emu_pmu_counts {
    uint64_t n[2][EMU_PMU_NCLASS]; /* [0] CPL 0, [1] CPL > 0; advance only in precise mode */
};
struct emu_pmu_ops {
    /* at an instruction boundary inside emu_run: the retired count reached the stop
     * point (emu_pmu_set_stop), or, while `watch` is set, after every precise instruction */
    void (*event)(void *ctx);
    void *ctx;
};
void emu_set_pmu_ops(struct emu_vcpu *v, const struct emu_pmu_ops *ops);
/* Instructions retired before the one executing now (all of them outside emu_run). */
uint64_t emu_pmu_retired(const struct emu_vcpu *v);
const struct emu_pmu_counts *emu_pmu_counts(const struct emu_vcpu *v);
/* Precise mode on/off; watch = call ops.event after every precise instruction. */
void emu_pmu_set_precise(struct emu_vcpu *v, bool on, bool watch);
/* Call ops.event once the retired count reaches `icount` (0 = never). */
void emu_pmu_set_stop(struct emu_vcpu *v, uint64_t icount);
/* From a handler inside emu_run: call ops.event at the boundary right after the current
 * instruction (KVM_REQ_PMU: KVM reprograms counters at the next entry). False when no
 * instruction is executing (host-initiated access): the caller acts at once. */
bool emu_pmu_request(struct emu_vcpu *v);

/* Architectural reset (power-on state, SDM vol.3 9.1.1), as KVM's vCPU creation does. */
void emu_reset(struct emu_vcpu *v);
/* The INIT signal's reset (what INIT keeps, it keeps; see vcpu.c). */
void emu_init_signal(struct emu_vcpu *v);

/* Run guest code until an exit. Completes any pending IO/MMIO/MSR first
 * (the caller must have called the matching emu_complete_* for IN/MMIO-read/MSR). */
void emu_run(struct emu_vcpu *v, struct emu_exit *exit);

/* Ask a running emu_run (possibly from another thread/signal handler) to return
 * EMU_EXIT_INTERRUPTED at the next instruction boundary. Async-signal-safe. */
void emu_request_stop(struct emu_vcpu *v);

/* Completions for the exit just returned. emu_complete_io finishes a plain IN at once
 * (register written, RIP advanced), as KVM does at the start of the next KVM_RUN even
 * with immediate_exit; INS and MMIO reads finish in the next emu_run. */
void emu_complete_io(struct emu_vcpu *v, const void *in_data);
void emu_complete_mmio(struct emu_vcpu *v, const void *read_data);
/* error != 0: #GP(0) at the RDMSR/WRMSR; else RDMSR loads EDX:EAX = data and RIP advances. */
void emu_complete_msr(struct emu_vcpu *v, bool error, uint64_t data);

/* State accessors that must go through emu (lazy flags, mode caches, TLB flushes). */
uint64_t emu_get_rflags(struct emu_vcpu *v);
void emu_set_rflags(struct emu_vcpu *v, uint64_t rflags);
/* After abi/ changes CR0/CR3/CR4/EFER/segments directly (SET_SREGS): recompute caches, flush TLB. */
void emu_state_changed(struct emu_vcpu *v);
/* Queue an exception (with optional error code) for delivery before the next instruction. */
void emu_queue_exception(struct emu_vcpu *v, uint8_t vector, bool has_error, uint32_t error_code);
/* Guest TSC as RDTSC sees it: the host TSC + cpu->tsc_offset (so it runs at the host
 * TSC's rate, which msr/ calibrates; abi/ wires msr/ and the LAPIC to the same clock). */
uint64_t emu_read_tsc(struct emu_vcpu *v);     /* the running level's TSC */
uint64_t emu_read_l1_tsc(struct emu_vcpu *v);  /* L1's (kvm_read_l1_tsc) */
/* Translate a guest virtual address (KVM_TRANSLATE). Returns false if not mapped. */
bool emu_translate(struct emu_vcpu *v, uint64_t gva, uint64_t *gpa, bool *writeable, bool *user);
/* After clearing dirty-log bits (another thread): waits until v has no instruction in
 * flight that wrote a logged page, so every later store sets its bit again. */
void emu_dirty_log_sync(struct emu_vcpu *v);

/* ---------------- nested virtualization state (emu/svm.c) ---------------- */

/* KVM_GET/SET_NESTED_STATE in KVM's SVM format (svm/nested.c svm_get/set_nested_state).
 * `image` is struct kvm_svm_nested_state_data: VMCB12's control area as cached at VMRUN at
 * offset 0, L1's state saved by VMRUN (vmcb01's save area) at 0x400. Flags are KVM's
 * KVM_STATE_NESTED_GUEST_MODE / _RUN_PENDING / _GIF_SET. */
#define EMU_SVM_NESTED_IMAGE_SIZE 4096
#define EMU_NESTED_GUEST_MODE 0x1u
#define EMU_NESTED_RUN_PENDING 0x2u
#define EMU_NESTED_GIF_SET 0x100u
/* Returns the flags; *vmcb_pa and image are filled when in guest mode. */
uint32_t emu_svm_get_nested_state(struct emu_vcpu *v, uint64_t *vmcb_pa, uint8_t *image);
/* The vCPU's registers already hold L2's state (KVM_SET_SREGS/REGS come first). 0 or
 * -EINVAL (KVM's checks). image may be NULL without GUEST_MODE. */
int emu_svm_set_nested_state(struct emu_vcpu *v, uint32_t flags, uint64_t vmcb_pa,
                             const uint8_t *image);

/* KVM_GET/SET_NESTED_STATE in KVM's VMX format (vmx/nested.c vmx_get/set_nested_state):
 * struct kvm_vmx_nested_state_hdr's fields and the vmcs12 image (KVM's layout, emu/vmcs.c).
 * abi/ checks the generic header (size, flags) and copies the data; emu/vmx.c does the
 * rest in vmx_set_nested_state's order. */
#define EMU_VMX_VMCS12_SIZE 4096
#define EMU_VMX_NESTED_SMM_GUEST_MODE 0x1u
#define EMU_VMX_NESTED_SMM_VMXON 0x2u
#define EMU_VMX_NESTED_EVMCS 0x4u
#define EMU_VMX_PREEMPTION_TIMER_DEADLINE 0x1u
struct emu_vmx_nested_state {
    uint32_t flags;     /* KVM_STATE_NESTED_GUEST_MODE / _RUN_PENDING / _EVMCS */
    uint64_t vmxon_pa;  /* ~0: not in VMX operation */
    uint64_t vmcs12_pa; /* ~0: no current VMCS */
    uint16_t smm_flags;
    uint32_t vmx_flags; /* KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE */
    uint64_t preemption_timer_deadline;
    uint32_t size;      /* kvm_nested_state.size */
    bool has_vmcs12;    /* the result has (get) / the caller passes (set) a vmcs12 image */
    bool has_shadow;    /* ... and a shadow vmcs12 after it */
};
/* Fills *st and data[2 * EMU_VMX_VMCS12_SIZE] (struct kvm_vmx_nested_state_data). */
void emu_vmx_get_nested_state(struct emu_vcpu *v, struct emu_vmx_nested_state *st, uint8_t *data);
/* data: vmcs12 (and the shadow vmcs12 when has_shadow) as far as st->size holds them;
 * copy_failed = the caller could not read them (-EFAULT where KVM's copy_from_user is).
 * 0 or -EINVAL / -EFAULT. */
int emu_vmx_set_nested_state(struct emu_vcpu *v, const struct emu_vmx_nested_state *st,
                             const uint8_t *data, bool copy_failed);

/* True while an L2 runs on L1's nested EPT (KVM: mmu->page_fault != kvm_tdp_page_fault). */
bool emu_nested_tdp_active(struct emu_vcpu *v);

/* ---------------- system-management mode (emu/smm.c) ---------------- */

/* The memory the vCPU sees in SMM (KVM's address space 1, kvm_arch_vcpu_memslots_id);
 * NULL: SMM sees the normal one. Its changes must bump the generation of the physmem
 * given to emu_vcpu_create, which counts both. An SMI is cpu.ev.smi_pending (taken at the
 * next boundary outside SMM, after exceptions, before NMIs); SMM is cpu.ev.smm. */
void emu_set_smm_physmem(struct emu_vcpu *v, struct emu_physmem *pm);
/* KVM_SET_VCPU_EVENTS changing cpu.ev.smm (x86.c): a running L2 ends (kvm_leave_nested),
 * then the address space follows (kvm_smm_changed). No-op when smm is unchanged. */
void emu_smm_set(struct emu_vcpu *v, bool smm);

/* ---------------- interrupt controller hooks (in-kernel LAPIC, wired by abi/) ---------------- */

struct emu_irq_ops {
    /* Highest-priority interrupt the local APIC would deliver now (IRR vs PPR), or -1.
     * Consulted at instruction boundaries when RFLAGS.IF=1 and no interrupt shadow,
     * and to wake a halted vCPU. */
    int (*pending)(void *ctx, struct cpu *cpu);
    /* The CPU accepted `vector` (INTA): the APIC moves it from IRR to ISR. */
    void (*ack)(void *ctx, struct cpu *cpu, int vector);
    /* NMI pending from the APIC (LINT1/ICR NMI); cleared when taken. */
    bool (*nmi_pending)(void *ctx, struct cpu *cpu);
    /* Optional: an SMI arrived by APIC message (KVM_REQ_SMI); true once per SMI, which
     * emu then keeps in cpu.ev.smi_pending (process_smi). */
    bool (*smi_pending)(void *ctx, struct cpu *cpu);
    void *ctx;
};
void emu_set_irq_ops(struct emu_vcpu *v, const struct emu_irq_ops *ops);
/* Another thread made an interrupt pending for this vCPU: make a running emu_run look at
 * the irq hooks at the next instruction boundary. Async-signal-safe. */
void emu_kick(struct emu_vcpu *v);
/* Wait (from another thread) until v has seen physical-memory generation `gen` (dropped
 * the translations made before it) or is not inside emu_run: a remote TLB flush that must
 * complete before it returns (Hyper-V PV TLB flush, KVM_REQUEST_WAIT). */
void emu_wait_generation_seen(struct emu_vcpu *v, uint64_t gen);

/* CPUID table consulted by the CPUID instruction (set by abi/ from KVM_SET_CPUID2). */
struct emu_cpuid_entry {
    uint32_t function, index, flags; /* flags: KVM_CPUID_FLAG_SIGNIFCANT_INDEX */
    uint32_t eax, ebx, ecx, edx;
};
void emu_set_cpuid(struct emu_vcpu *v, const struct emu_cpuid_entry *entries, unsigned n);
/* The bits KVM keeps up to date in the vCPU's CPUID table (cpuid.c
 * kvm_update_cpuid_runtime: OSXSAVE from CR4, MONITOR from IA32_MISC_ENABLE without
 * KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT, the XSAVE sizes of leaf 0DH from XCR0), applied to
 * r[4] = EAX EBX ECX EDX of table entry fn/idx. The CPUID instruction shows them, and
 * KVM_GET_CPUID2 must too. */
void emu_cpuid_runtime(const struct emu_vcpu *v, uint32_t fn, uint32_t idx, uint32_t r[4]);

/* KVM's decisions inside instructions that depend on the vendor flavour and the VM's
 * quirks/capabilities (abi/ sets them before each emu_run: quirks may be disabled at any
 * time). All-zero is KVM's default VM without a flavour (emu used without abi/: VMCALL
 * and VMMCALL both reach the layer above). */
enum emu_flavour {
    EMU_FLAVOUR_NONE = 0,
    EMU_FLAVOUR_VMX, /* kvm_intel: VMCALL exits; VMMCALL is #UD in hardware, KVM decodes it */
    EMU_FLAVOUR_SVM, /* kvm_amd: VMMCALL exits; VMCALL is #UD in hardware, KVM decodes it */
};
struct emu_kvm_policy {
    enum emu_flavour flavour;
    bool no_fix_hypercall; /* KVM_X86_QUIRK_FIX_HYPERCALL_INSN disabled: #UD, no patch */
    bool mwait_ud;         /* KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS disabled */
    bool mwait_in_guest;   /* KVM_CAP_X86_DISABLE_EXITS with KVM_X86_DISABLE_EXITS_MWAIT */
    /* kvm_intel allow_smaller_maxphyaddr with EPT: the physical-address width hardware's
     * walk of the guest's tables checks (the host's); 0 = off. A guest entry reserved only
     * below it makes KVM emulate the access (handle_ept_violation), see emu_walk. */
    uint8_t tdp_maxphyaddr;
    bool pause_in_guest; /* KVM_X86_DISABLE_EXITS_PAUSE: no pause-loop exiting (emu h_pause) */
};
void emu_set_kvm_policy(struct emu_vcpu *v, const struct emu_kvm_policy *p);

/* KVM_SET_GUEST_DEBUG: control = KVM_GUESTDBG_* (ENABLE, SINGLESTEP, USE_SW_BP, USE_HW_BP;
 * INJECT_* are queued by the caller), dbg = kvm_guest_debug_arch.debugreg[8]. Exits are
 * EMU_EXIT_DEBUG: single-step after each instruction (exception 1, DR6.BS), INT3 (exception 3,
 * pc = the INT3), execution breakpoints DR0-3/DR7 before the instruction (exception 1).
 * Data breakpoints are not implemented. */
void emu_set_guest_debug(struct emu_vcpu *v, uint32_t control, const uint64_t dbg[8]);

#endif
