/* msr/: private declarations shared by the msr/ sources (not a contract). */
#ifndef SOFTKVM_MSR_INTERNAL_H
#define SOFTKVM_MSR_INTERNAL_H

#include "msr/msr.h"
#include "msr/msr_index.h"

/* Handler results, KVM's convention: 0 ok; 1 refused (exit reason INVAL);
 * KVM_MSR_RET_UNSUPPORTED (reason UNKNOWN); KVM_MSR_RET_FILTERED (reason FILTER). */
enum { MSR_RET_OK = 0, MSR_RET_INVAL = 1, MSR_RET_UNSUPPORTED = 2, MSR_RET_FILTERED = 3 };

/* CPUID feature that gates an MSR (checked by the dispatcher before the handler). */
enum msr_gate {
    GATE_NONE = 0,
    GATE_RDTSCP_OR_RDPID, /* TSC_AUX */
    GATE_XSAVES,          /* XSS: CPUID.(EAX=0DH,ECX=1):EAX[3] */
    GATE_ARCH_CAP_READ,   /* ARCH_CAPABILITIES reads: CPUID.7.0:EDX[29] */
    GATE_PDCM_READ,       /* PERF_CAPABILITIES reads: CPUID.1:ECX[15] */
    GATE_WAITPKG,         /* UMWAIT_CONTROL: CPUID.7.0:ECX[5] */
    GATE_SPEC_CTRL,       /* SPEC_CTRL: 7.0:EDX[26] or AMD IBRS/STIBP/SSBD */
    GATE_PRED_CMD,        /* PRED_CMD: 7.0:EDX[26] or 0x80000008:EBX[12] */
    GATE_FLUSH_L1D,       /* FLUSH_CMD: 7.0:EDX[28] */
    GATE_XFD,             /* XFD/XFD_ERR: CPUID.(EAX=0DH,ECX=1):EAX[4] */
    GATE_VIRT_SSBD,       /* VIRT_SPEC_CTRL: 0x80000008:EBX[25] */
    GATE_OSVW,            /* OSVW_*: 0x80000001:ECX[9]; applies to host too */
    GATE_PV_CLOCKSOURCE,  /* KVM_CPUID_FEATURES bit 0 (enforced only with the cap) */
    GATE_PV_CLOCKSOURCE2, /* bit 3 */
    GATE_PV_ASYNC_PF,     /* bit 4 */
    GATE_PV_STEAL_TIME,   /* bit 5 */
    GATE_PV_EOI,          /* bit 6 */
    GATE_PV_POLL_CONTROL, /* bit 12 */
    GATE_PV_ASYNC_PF_INT, /* bit 14 */
    GATE_COUNT
};

/* Which flavours implement the MSR in-kernel. */
#define MSR_V_INTEL (1u << MSR_VENDOR_INTEL)
#define MSR_V_AMD (1u << MSR_VENDOR_AMD)
#define MSR_V_ALL (MSR_V_INTEL | MSR_V_AMD)

/* Entry flags */
#define MSR_F_SAVE 0x1      /* in KVM_GET_MSR_INDEX_LIST (msrs_to_save / emulated_msrs) */
#define MSR_F_FEATURE 0x2   /* in KVM_GET_MSR_FEATURE_INDEX_LIST, readable on the system fd */

typedef int (*msr_get_fn)(struct msr_vcpu *v, uint32_t index, uint64_t *value, bool host);
typedef int (*msr_set_fn)(struct msr_vcpu *v, uint32_t index, uint64_t value, bool host);

struct msr_entry {
    uint32_t first, last; /* inclusive range */
    const char *name;
    uint8_t vendors;      /* MSR_V_* */
    uint8_t flags;        /* MSR_F_* */
    enum msr_gate gate;
    msr_get_fn get;       /* NULL: the MSR is write-only (reads -> INVAL) */
    msr_set_fn set;       /* NULL: read-only (writes -> INVAL) */
    const char *rules;    /* one line for msr-explain: read/write rules */
};

/* The ONE table (table.c). */
extern const struct msr_entry msr_table[];
extern const unsigned msr_table_len;
const struct msr_entry *msr_table_lookup(enum msr_vendor vendor, uint32_t index);
const char *msr_gate_name(enum msr_gate g);
/* Gate check: returns MSR_RET_OK or the failure code the gate produces. */
int msr_gate_check(const struct msr_vcpu *v, enum msr_gate g, bool host);

/* Full KVM access path for one MSR (no filter): handler, data zeroing on failed reads,
 * "advertised MSR: host reads 0 / writes 0" rule. Returns MSR_RET_*. */
int msr_do_access(struct msr_vcpu *v, uint32_t index, uint64_t *data, bool write, bool host);

/* vPMU (pmu.c, pmu_filter.c) */
int msr_get_pmu(struct msr_vcpu *v, uint32_t index, uint64_t *val, bool host);
int msr_set_pmu(struct msr_vcpu *v, uint32_t index, uint64_t val, bool host);
void msr_pmu_refresh(struct msr_vcpu *v); /* CPUID or PERF_CAPABILITIES changed */
void msr_pmu_reset(struct msr_vcpu *v);   /* vCPU RESET */
void msr_pmu_refilter(struct msr_vcpu *v); /* the VM's event filter changed */
void msr_vm_free_pmu_filters(struct msr_vm *vm);

/* Fixed values */
#define MSR_ARCH_CAP_DEFAULT 0x4000179ull /* RDCL_NO|SKIP_VMENTRY_L1DFLUSH|SSB_NO|MDS_NO|PSCHANGE_MC_NO|TAA_NO|GDS_NO */
#define MSR_UCODE_REV_INTEL 0x100000000ull /* vmx.c __vmx_vcpu_reset */
#define MSR_UCODE_REV_AMD 0x01000065ull    /* svm.c __svm_vcpu_reset */
#define MSR_PAT_DEFAULT 0x0007040600070406ull
#define MSR_MISC_ENABLE_DEFAULT 0x1800ull /* BTS_UNAVAIL | PEBS_UNAVAIL */
#define MSR_PLATFORM_INFO_CPUID_FAULT (1ull << 31)
#define MSR_MCG_CAP_DEFAULT ((uint64_t)MSR_MCE_BANKS) /* KVM_MAX_MCE_BANKS, no capability bits until KVM_X86_SETUP_MCE */

/* Feature-control bits (SDM vol.4 table 2-2, IA32_FEATURE_CONTROL) */
#define FEAT_CTL_LOCKED (1ull << 0)
#define FEAT_CTL_VMX_IN_SMX (1ull << 1)
#define FEAT_CTL_VMX_OUT_SMX (1ull << 2)
#define FEAT_CTL_SGX_LC (1ull << 17)
#define FEAT_CTL_SGX (1ull << 18)
#define FEAT_CTL_LMCE (1ull << 20)
#define FEAT_CTL_HOST_VALID \
    (FEAT_CTL_LOCKED | FEAT_CTL_VMX_IN_SMX | FEAT_CTL_VMX_OUT_SMX | FEAT_CTL_SGX_LC | FEAT_CTL_SGX | FEAT_CTL_LMCE)
uint64_t msr_feature_control_guest_valid(const struct msr_vcpu *v);

/* bitmap.c */
void msr_bitmaps_recompute(struct msr_vcpu *v);
/* h_vmx.c: CR0/CR4_FIXED1 follow the guest CPUID (nested_vmx_cr_fixed1_bits_update) */
void msr_vmx_caps_cpuid_changed(struct msr_vcpu *v);
/* Change the pass-through intent for one MSR of the vendor list (e.g. SPEC_CTRL after the
 * first non-zero guest write) and re-apply the bitmaps through the filter. */
void msr_passthrough_enable(struct msr_vcpu *v, uint32_t index, bool read, bool write);
/* Pass-through policy of one candidate MSR in one bitmap model. */
enum msr_pt_policy {
    PT_NONE = 0,          /* not in this vendor's list: always intercepted */
    PT_NEVER,             /* in KVM's list, but only for features softkvm lacks (lbrv, SEV-ES,
                             C-states in guest, dynamic XFD) */
    PT_ALWAYS,            /* passed through from vCPU creation */
    PT_DYNAMIC,           /* passed through once KVM decides at run time (intent bit) */
    PT_IF_PRED_CMD,       /* guest CPUID has IBPB (SPEC_CTRL or AMD_IBPB or SBPB) */
    PT_IF_FLUSH_L1D,      /* guest CPUID has FLUSH_L1D */
    PT_IF_XFD,            /* guest CPUID has XFD */
    PT_IF_NOT_INTEL_GUEST /* SVM SYSENTER_EIP/ESP: only when the guest is not Intel-compatible */
};
struct msr_passthrough {
    uint32_t index;
    const char *name;
    enum msr_pt_policy vmx_r, vmx_w, svm_r, svm_w;
};
/* the union of vmx.c vmx_possible_passthrough_msrs and svm.c direct_access_msrs */
const struct msr_passthrough *msr_passthrough_list(unsigned *n);
const char *msr_pt_policy_name(enum msr_pt_policy p);
/* Would this policy pass the MSR through for this vCPU now (before the filter)? */
bool msr_pt_policy_holds(const struct msr_vcpu *v, enum msr_pt_policy p, unsigned list_idx, bool write);

/* h_tsc.c: host-side TSC write with KVM's cross-vCPU synchronisation */
void msr_tsc_host_write(struct msr_vcpu *v, uint64_t data, bool creation);

/* filter.c */
void msr_filter_free_all(struct msr_vm *vm);

/* lists.c */
bool msr_is_advertised(enum msr_vendor vendor, uint32_t index);

#endif
