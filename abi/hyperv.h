/* abi/: KVM's Hyper-V enlightenments without nesting (Linux 6.12 arch/x86/kvm/hyperv.c,
 * hyperv.h; TLFS v6). Not a contract for other modules.
 *
 * State split as in KVM: struct abi_hv_vm is struct kvm_hv (partition-wide MSRs under
 * `lock`, KVM's hv_lock), struct abi_hv_vcpu is struct kvm_vcpu_hv (VP index, CPUID cache,
 * SynIC, synthetic timer registers, pending KVM_EXIT_HYPERV). Files by concern:
 *   hyperv.c       lifecycle, KVM_GET_SUPPORTED_HV_CPUID, CPUID cache, caps, TSC page
 *   hyperv_msr.c   the synthetic MSRs (kvm_hv_{get,set}_msr_common), reached via msr/
 *   hyperv_hcall.c hypercalls (kvm_hv_hypercall): PV IPI, PV TLB flush, user-space exits */
#ifndef SOFTKVM_ABI_HYPERV_H
#define SOFTKVM_ABI_HYPERV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

struct abi_vm;
struct abi_vcpu;

/* MSRs (hyperv-tlfs.h) */
#define HV_MSR_GUEST_OS_ID 0x40000000
#define HV_MSR_HYPERCALL 0x40000001
#define HV_MSR_VP_INDEX 0x40000002
#define HV_MSR_RESET 0x40000003
#define HV_MSR_VP_RUNTIME 0x40000010
#define HV_MSR_TIME_REF_COUNT 0x40000020
#define HV_MSR_REFERENCE_TSC 0x40000021
#define HV_MSR_TSC_FREQUENCY 0x40000022
#define HV_MSR_APIC_FREQUENCY 0x40000023
#define HV_MSR_EOI 0x40000070
#define HV_MSR_ICR 0x40000071
#define HV_MSR_TPR 0x40000072
#define HV_MSR_VP_ASSIST_PAGE 0x40000073
#define HV_MSR_SCONTROL 0x40000080
#define HV_MSR_SVERSION 0x40000081
#define HV_MSR_SIEFP 0x40000082
#define HV_MSR_SIMP 0x40000083
#define HV_MSR_EOM 0x40000084
#define HV_MSR_SINT0 0x40000090
#define HV_MSR_SINT15 0x4000009f
#define HV_MSR_STIMER0_CONFIG 0x400000b0
#define HV_MSR_STIMER3_COUNT 0x400000b7
#define HV_MSR_SYNDBG_CONTROL 0x400000f1
#define HV_MSR_SYNDBG_STATUS 0x400000f2
#define HV_MSR_SYNDBG_SEND_BUFFER 0x400000f3
#define HV_MSR_SYNDBG_RECV_BUFFER 0x400000f4
#define HV_MSR_SYNDBG_PENDING_BUFFER 0x400000f5
#define HV_MSR_SYNDBG_OPTIONS 0x400000ff
#define HV_MSR_CRASH_P0 0x40000100
#define HV_MSR_CRASH_P4 0x40000104
#define HV_MSR_CRASH_CTL 0x40000105
#define HV_MSR_REENLIGHTENMENT_CONTROL 0x40000106
#define HV_MSR_TSC_EMULATION_CONTROL 0x40000107
#define HV_MSR_TSC_EMULATION_STATUS 0x40000108
#define HV_MSR_TSC_INVARIANT_CONTROL 0x40000118

/* CPUID leaves */
#define HV_CPUID_VENDOR 0x40000000
#define HV_CPUID_INTERFACE 0x40000001
#define HV_CPUID_VERSION 0x40000002
#define HV_CPUID_FEATURES 0x40000003
#define HV_CPUID_ENLIGHTMENT_INFO 0x40000004
#define HV_CPUID_IMPLEMENT_LIMITS 0x40000005
#define HV_CPUID_NESTED_FEATURES 0x4000000a
#define HV_CPUID_SYNDBG_VENDOR 0x40000080
#define HV_CPUID_SYNDBG_INTERFACE 0x40000081
#define HV_CPUID_SYNDBG_PLATFORM_CAPABILITIES 0x40000082
#define HV_CPUID_SIGNATURE_EAX 0x31237648u /* "Hv#1" */

/* HYPERV_CPUID_FEATURES.EAX */
#define HV_F_VP_RUNTIME (1u << 0)
#define HV_F_TIME_REF_COUNT (1u << 1)
#define HV_F_SYNIC (1u << 2)
#define HV_F_SYNTIMER (1u << 3)
#define HV_F_APIC_ACCESS (1u << 4)
#define HV_F_HYPERCALL (1u << 5)
#define HV_F_VP_INDEX (1u << 6)
#define HV_F_RESET (1u << 7)
#define HV_F_REFERENCE_TSC (1u << 9)
#define HV_F_FREQUENCY_MSRS (1u << 11)
#define HV_F_REENLIGHTENMENT (1u << 13)
#define HV_F_TSC_INVARIANT (1u << 15)
/* .EBX */
#define HV_F_POST_MESSAGES (1u << 4)
#define HV_F_SIGNAL_EVENTS (1u << 5)
#define HV_F_DEBUGGING (1u << 11)
#define HV_F_EXTENDED_HYPERCALLS (1u << 20)
/* .EDX */
#define HV_F_GUEST_DEBUGGING (1u << 1)
#define HV_F_XMM_INPUT (1u << 4)
#define HV_F_FREQUENCY_MSRS_EDX (1u << 8)
#define HV_F_CRASH_MSRS (1u << 10)
#define HV_F_DEBUG_MSRS (1u << 11)
#define HV_F_EXT_GVA_RANGES_FLUSH (1u << 14)
#define HV_F_STIMER_DIRECT (1u << 19)
/* HYPERV_CPUID_ENLIGHTMENT_INFO.EAX */
#define HV_E_REMOTE_TLB_FLUSH (1u << 2)
#define HV_E_APIC_ACCESS (1u << 3)
#define HV_E_RELAXED_TIMING (1u << 5)
#define HV_E_DEPRECATING_AEOI (1u << 9)
#define HV_E_CLUSTER_IPI (1u << 10)
#define HV_E_EX_PROCESSOR_MASKS (1u << 11)
#define HV_E_NO_NONARCH_CORESHARING (1u << 18)
/* HYPERV_CPUID_NESTED_FEATURES */
#define HV_N_DIRECT_FLUSH (1u << 17)
#define HV_N_MSR_BITMAP (1u << 19)
/* HYPERV_CPUID_SYNDBG_PLATFORM_CAPABILITIES.EAX */
#define HV_SYNDBG_CAP_ALLOW_KERNEL_DEBUGGING (1u << 1)

#define HV_SYNIC_SINT_MASKED (1ull << 16)
#define HV_SYNIC_SINT_VECTOR_MASK 0xffull
#define HV_SYNIC_FIRST_VALID_VECTOR 16
#define HV_STIMER_COUNT 4
#define HV_NR_SINTS 16

/* KVM's hv_tsc_page_status */
enum abi_hv_tsc_status {
    HV_TSC_UNSET = 0,
    HV_TSC_GUEST_CHANGED,
    HV_TSC_HOST_CHANGED,
    HV_TSC_SET,
    HV_TSC_BROKEN,
};

/* struct ms_hyperv_tsc_page's first 24 bytes (TLFS 12.7.3) */
struct abi_hv_tsc_ref {
    uint32_t sequence;
    uint32_t reserved;
    uint64_t scale;
    int64_t offset;
};

struct abi_hv_vm {
    pthread_mutex_t lock; /* partition-wide MSRs (KVM: hv_lock) */
    uint64_t guest_os_id, hypercall, tsc_page;
    enum abi_hv_tsc_status tsc_status;
    struct abi_hv_tsc_ref tsc_ref;
    uint64_t crash_param[5], crash_ctl;
    uint64_t reenlightenment_control, tsc_emulation_control, tsc_emulation_status;
    uint64_t invtsc_control;
    uint64_t syndbg_control, syndbg_status, syndbg_send, syndbg_recv, syndbg_pending,
        syndbg_options;
    atomic_int num_mismatched_vp_indexes;
};

struct abi_hv_vcpu {
    bool enabled;        /* vcpu->arch.hyperv_enabled: CPUID 0x40000001.EAX == "Hv#1" */
    bool enforce_cpuid;  /* KVM_CAP_HYPERV_ENFORCE_CPUID */
    struct {
        uint32_t features_eax, features_ebx, features_edx;
        uint32_t enlightenments_eax, enlightenments_ebx;
        uint32_t syndbg_cap_eax;
    } cpuid;             /* kvm_hv_set_cpuid's cpuid_cache */
    _Atomic uint32_t vp_index;
    uint32_t vcpu_idx;   /* creation order (KVM vcpu_idx), the default VP index */
    uint64_t vapic;      /* HV_X64_MSR_VP_ASSIST_PAGE */
    int64_t runtime_offset;
    struct {
        bool active, dont_zero_pages;
        uint64_t control, version, evt_page, msg_page;
        _Atomic uint64_t sint[HV_NR_SINTS];
    } synic;
    struct {
        uint64_t config, count;
    } stimer[HV_STIMER_COUNT];
    /* KVM_REQ_HV_EXIT: an exit the next instruction boundary hands to user space */
    bool exit_pending;
    struct kvm_hyperv_exit exit;
    bool hcall_in_user; /* KVM_EXIT_HYPERV_HCALL outstanding: complete at next KVM_RUN */
};

/* hyperv.c */
struct abi_hv_vm *abi_hv_vm_create(void);
void abi_hv_vm_destroy(struct abi_hv_vm *hv);
struct abi_hv_vcpu *abi_hv_vcpu_create(struct abi_vcpu *v, uint32_t vcpu_idx);
void abi_hv_vcpu_destroy(struct abi_hv_vcpu *h);
/* KVM_GET_SUPPORTED_HV_CPUID on the system fd (v == NULL) or a vCPU fd */
long abi_hv_get_supported_cpuid(struct abi_vcpu *v, unsigned long arg);
/* after KVM_SET_CPUID2 (kvm_hv_set_cpuid) */
void abi_hv_set_cpuid(struct abi_vcpu *v);
/* the guest-visible invariant-TSC CPUID bit (kvm_hv_invtsc_suppressed); vCPU thread only */
void abi_hv_sync_invtsc(struct abi_vcpu *v);
/* KVM_ENABLE_CAP on the vCPU: KVM_CAP_HYPERV_SYNIC{,2}, KVM_CAP_HYPERV_ENFORCE_CPUID.
 * Returns -ENOTTY for other caps. */
long abi_hv_enable_cap(struct abi_vcpu *v, const struct kvm_enable_cap *c);
/* KVM_SET_CLOCK (kvm_hv_request_tsc_page_update) */
void abi_hv_clock_changed(struct abi_vm *vm);
/* at KVM_RUN entry after the kvmclock changed (kvm_hv_setup_tsc_page) */
void abi_hv_update_tsc_page(struct abi_vcpu *v);
/* HV_X64_MSR_TIME_REF_COUNT (get_time_ref_counter), vm->hv->lock held */
uint64_t abi_hv_time_ref_locked(struct abi_vcpu *v);
void abi_hv_setup_tsc_page_locked(struct abi_vcpu *v);
/* guest-physical access for the Hyper-V pages: 0 or -EFAULT */
int abi_hv_guest_write(struct abi_vm *vm, uint64_t gpa, const void *src, size_t len);
int abi_hv_guest_read(struct abi_vm *vm, uint64_t gpa, void *dst, size_t len);

/* hyperv_msr.c: the msr/ hook (struct msr_hv_ops) */
int abi_hv_msr_get(void *vcpu, uint32_t index, uint64_t *value, bool host);
int abi_hv_msr_set(void *vcpu, uint32_t index, uint64_t value, bool host);

/* hyperv_hcall.c */
/* kvm_hv_hypercall_enabled(): Hyper-V CPUID and a non-zero guest OS id */
bool abi_hv_hypercall_enabled(struct abi_vcpu *v);
/* hands emu the Hyper-V state its nested enlightenments need (at vCPU creation) */
void abi_hv_set_emu_ops(struct abi_vcpu *v);
/* kvm_hv_hypercall(): 1 = done (RIP past the call, or #UD queued), 0 = KVM_EXIT_HYPERV
 * filled in v->run, to be completed by abi_hv_complete_user() at the next KVM_RUN */
int abi_hv_hypercall(struct abi_vcpu *v);
void abi_hv_complete_user(struct abi_vcpu *v);
/* A KVM_EXIT_HYPERV (SynIC / SynDbg MSR write) is due: fills v->run, returns true. */
bool abi_hv_take_exit(struct abi_vcpu *v);

#endif
