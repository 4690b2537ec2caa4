/* msr/: MSR semantics of Linux KVM (6.12): MSR filter, user-space deflection, VMX/SVM
 * MSR bitmaps and the MSRs KVM emulates in the kernel.
 *
 * CONTRACT between msr/ (owner) and abi/ + emu/ (users). Fields/functions may be added;
 * existing ones keep their meaning.
 *
 * Threading: one msr_vm per VM, one msr_vcpu per vCPU. msr_vm_set_filter() may run
 * concurrently with guest execution on any vCPU: it publishes a new immutable filter and
 * bumps vm->filter_gen; each vCPU notices the new generation on its next MSR access or
 * on msr_vcpu_sync() (abi calls it at KVM_RUN entry), recomputes its bitmaps and uses the
 * new filter from then on (KVM's KVM_REQ_MSR_FILTER_CHANGED). No locks on the hot path.
 * Host-initiated calls on a vCPU (msr_vcpu_get/set/set_cpuid) are made by abi with the
 * vCPU not running (KVM takes vcpu->mutex for vCPU ioctls).
 */
#ifndef SOFTKVM_MSR_MSR_H
#define SOFTKVM_MSR_MSR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <linux/kvm.h>

#include "emu/cpu.h"
#include "emu/emu.h"

/* ---------------- per-VM state ---------------- */

/* Which hardware flavour the VM mirrors: selects the bitmap model (VMX 4 KiB bitmap vs SVM
 * 8 KiB MSRPM), the default pass-through list and the vendor-specific in-kernel MSRs. */
enum msr_vendor { MSR_VENDOR_INTEL = 0, MSR_VENDOR_AMD = 1 };

/* One validated filter range (ranges with nmsrs == 0 are dropped, as KVM does). */
struct msr_filter_range {
    uint32_t flags; /* KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE */
    uint32_t nmsrs;
    uint32_t base;
    uint64_t *bitmap; /* set bit = allowed */
};

/* An installed filter; immutable once published. */
struct msr_filter {
    bool default_allow;
    unsigned count;
    struct msr_filter_range ranges[KVM_MSR_FILTER_MAX_RANGES];
    struct msr_filter *retired_next; /* old filters are freed at VM destroy (no RCU) */
};

/* Guest-memory access for MSRs that write guest memory (kvmclock, wall clock, steal time).
 * Returns 0, or -EFAULT when [gpa, gpa+len) is not inside one memslot: never writes outside. */
typedef int (*msr_guest_write_fn)(void *ctx, uint64_t gpa, const void *src, size_t len);
typedef int (*msr_guest_read_fn)(void *ctx, uint64_t gpa, void *dst, size_t len);

struct msr_vm {
    enum msr_vendor vendor;
    _Atomic(struct msr_filter *) filter; /* NULL = no filter (everything allowed) */
    _Atomic uint64_t filter_gen;          /* bumped after each successful set_filter */
    struct msr_filter *retired;           /* superseded filters, freed by msr_vm_destroy */
    pthread_mutex_t lock;                 /* serialises set_filter writers (KVM's kvm->lock) */
    _Atomic uint32_t user_space_msr_mask; /* KVM_MSR_EXIT_REASON_* (KVM_CAP_X86_USER_SPACE_MSR) */
    bool platform_info_readable;          /* KVM_CAP_MSR_PLATFORM_INFO, default true as in KVM */
    bool la57;                            /* the virtual CPU supports 5-level paging: MSR
                                             canonical checks use 57 bits (default 48) */
    bool no_stuff_feature_msrs;           /* KVM_X86_QUIRK_STUFF_FEATURE_MSRS disabled: vCPUs
                                             get no ARCH_CAPABILITIES/PLATFORM_INFO/PERF_CAP at
                                             creation, no UCODE_REV or VMX caps at RESET */
    bool misc_enable_mwait_cpuid;         /* KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT disabled:
                                             CPUID.1:ECX.MONITOR follows MISC_ENABLE.MWAIT
                                             (cpu->cpuid_mwait, h_misc.c) */
    bool nested_vmx;                      /* kvm_intel "nested" (default false; abi sets it on
                                             the Intel flavour: emu/vmx.c), which makes
                                             CPUID.VMX a KVM capability (vmx_set_cpu_caps) */
    /* guest memory (set by abi) */
    msr_guest_write_fn guest_write;
    msr_guest_read_fn guest_read;
    void *guest_mem_ctx;
    /* kvmclock: guest clock = host CLOCK_BOOTTIME ns - boot_ns_at_create (kvmclock_offset) */
    uint64_t boot_ns_at_create;
    uint64_t tsc_khz;                    /* host TSC frequency, calibrated at msr_vm_init */
    _Atomic uint64_t pv_wall_clock;      /* MSR_KVM_WALL_CLOCK(_NEW) value (VM-wide in KVM) */
    /* TSC synchronisation across vCPUs (kvm_synchronize_tsc, kvm->arch.last_tsc_* and
     * cur_tsc_offset): the last host-side TSC write or vCPU creation; under `lock`. */
    bool user_set_tsc;
    uint64_t last_tsc_nsec, last_tsc_write, last_tsc_offset, cur_tsc_offset;
    uint32_t last_tsc_khz;
    _Atomic uint32_t xen_hypercall_msr;  /* KVM_XEN_HVM_CONFIG.msr, 0 = none (abi/xen.c) */
    /* vPMU: kvm->arch.enable_pmu (KVM_CAP_PMU_CAPABILITY can clear it before vCPUs exist)
     * and the event filter with its generation (KVM_REQ_PMU on every vCPU) */
    bool pmu_disabled;
    _Atomic(struct msr_pmu_filter *) pmu_filter;
    _Atomic uint64_t pmu_filter_gen;
    struct msr_pmu_filter *pmu_filter_retired;
};

int msr_vm_init(struct msr_vm *vm, enum msr_vendor vendor);
void msr_vm_destroy(struct msr_vm *vm);
void msr_vm_set_guest_memory(struct msr_vm *vm, msr_guest_write_fn w, msr_guest_read_fn r,
                             void *ctx);

/* KVM_X86_SET_MSR_FILTER. `copy_from_user` copies n bytes from the user pointer usrc and
 * returns 0, or -EFAULT when usrc is unreadable. Returns 0 or -errno (EINVAL/EFAULT/ENOMEM)
 * in KVM's validation order; on error the old filter stays. */
int msr_vm_set_filter(struct msr_vm *vm, const struct kvm_msr_filter *filter,
                      int (*copy_from_user)(void *dst, const void *usrc, size_t n));
/* KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR): 0, or -EINVAL for unknown mask bits. */
int msr_vm_enable_user_space_msr(struct msr_vm *vm, uint64_t mask);
/* KVM_ENABLE_CAP(KVM_CAP_MSR_PLATFORM_INFO): args[0] != 0 lets the guest read PLATFORM_INFO. */
int msr_vm_enable_platform_info(struct msr_vm *vm, uint64_t enable);
/* Filter decision for a guest access (kind = KVM_MSR_FILTER_READ or _WRITE), KVM's
 * kvm_msr_allowed(): x2APIC range always allowed, first matching range decides. */
bool msr_filter_allows(const struct msr_filter *f, uint32_t index, uint32_t kind);

/* ---------------- per-vCPU state ---------------- */

#define MSR_VMX_BITMAP_SIZE 4096
#define MSR_SVM_MSRPM_SIZE 8192
#define MSR_MAX_CPUID 256
#define MSR_MCE_BANKS 32          /* KVM_MAX_MCE_BANKS */
#define MSR_MTRR_VAR 8            /* KVM_NR_VAR_MTRR */

/* x2APIC range 0x800-0x8ff goes to the local APIC (abi sets it). Return 0 = done,
 * nonzero = refused (exit reason INVAL / #GP). Accesses reach the hook only while
 * cpu->apic_base is in x2APIC mode. With no hook the MSRs fail as in KVM without an in-kernel
 * APIC (kvm_x2apic_msr_read returns 1: reason INVAL), and `read != NULL` is also what
 * msr/ takes as "LAPIC in kernel" for the async-PF and PV-EOI MSRs. */
struct msr_apic_ops {
    int (*read)(void *ctx, uint32_t index, uint64_t *value);
    int (*write)(void *ctx, uint32_t index, uint64_t value);
    /* APIC_BASE was written (value already stored in cpu->apic_base); host = host-initiated */
    void (*base_changed)(void *ctx, uint64_t old_value, uint64_t new_value, bool host);
    /* IA32_TSC_DEADLINE lives in the LAPIC timer: KVM reads 0 and drops writes unless the
     * LVT timer is in TSC-deadline mode. Absent -> reads 0, writes ignored (no LAPIC). */
    uint64_t (*tscdeadline_get)(void *ctx);
    void (*tscdeadline_set)(void *ctx, uint64_t value);
    /* a counter overflowed with its PMI enabled: deliver LVTPC (kvm_pmu_deliver_pmi ->
     * kvm_apic_local_deliver(APIC_LVTPC)); absent = no in-kernel LAPIC, no PMI */
    void (*pmi)(void *ctx, bool intel_compatible);
    void *ctx;
};

/* Hyper-V synthetic MSRs (0x40000000-0x400001ff that KVM knows) go to abi/'s Hyper-V model
 * (abi/hyperv_msr.c), as kvm_get/set_msr_common hand them to kvm_hv_get/set_msr_common.
 * Return 0 = done, nonzero = refused (exit reason INVAL / #GP). Absent -> refused. */
struct msr_hv_ops {
    int (*get)(void *ctx, uint32_t index, uint64_t *value, bool host);
    int (*set)(void *ctx, uint32_t index, uint64_t value, bool host);
    void *ctx;
};

/* Xen's hypercall-page MSR (KVM_XEN_HVM_CONFIG.msr, any index user space picks): a write
 * goes to abi/xen.c (kvm_xen_write_hypercall_page) before the table is consulted, as
 * kvm_set_msr_common checks xen_hvm_config.msr first (6.12 x86.c:3352), after the
 * filter. Return 0 = done, nonzero = refused (INVAL / #GP). */
struct msr_xen_ops {
    int (*write_hypercall_page)(void *ctx, uint64_t value, bool host);
    void *ctx;
};

/* Counters exposed through the stats fd. */
struct msr_stats {
    uint64_t exits[3];          /* user-space exits: [0]=INVAL [1]=UNKNOWN [2]=FILTER */
    uint64_t rdmsr_intercepts;  /* guest RDMSR that reached the intercept side */
    uint64_t wrmsr_intercepts;
    uint64_t passthrough_hits;  /* guest accesses served by the bitmap fast path */
    uint64_t gp_injected;       /* guest accesses that ended in #GP */
    uint64_t filter_denials;    /* guest accesses denied by the filter */
    uint64_t bitmap_recomputes; /* filter-change / CPUID-change recomputations */
};

/* Names for the stats fd (KVM_GET_STATS_FD, all cumulative u64): name and byte offset of
 * each counter inside struct msr_stats. */
struct msr_stat_field {
    const char *name;
    size_t offset;
};
extern const struct msr_stat_field msr_stat_fields[];
extern const unsigned msr_stat_nfields;

/* Guest features msr/ gates on, derived from the vCPU's CPUID (msr_vcpu_set_cpuid). */
struct msr_guest_features {
    bool lm, nx, syscall, svm, vmx, smx, sgx, sgx_lc, lmce, mce, mca, mtrr, pat, tsc_adjust,
        tsc_deadline, rdtscp, rdpid, spec_ctrl, ibpb, ibrs, stibp, ssbd, amd_ibpb, amd_ibrs,
        amd_stibp, amd_ssbd, virt_ssbd, flush_l1d, arch_capabilities, pdcm, xsaves, waitpkg,
        xfd, ffxsr, x2apic, intel, amd, autoibrs, osvw, mpx, la57, sse3, sbpb;
    uint32_t kvm_features; /* CPUID 0x40000001.EAX (KVM_FEATURE_*) */
    bool kvm_leaf_present;
    uint8_t maxphyaddr;
};

/* MSR values KVM keeps in the kernel and that do not live in struct cpu. */
struct msr_kernel_state {
    uint64_t tsc_adjust, tsc_deadline, misc_enable, feature_control, platform_info;
    uint64_t arch_capabilities, perf_capabilities, umwait_control, virt_spec_ctrl;
    uint64_t mtrr_deftype, mtrr_fixed[11], mtrr_var[MSR_MTRR_VAR * 2];
    uint64_t mcg_cap, mcg_status, mcg_ctl, mcg_ext_ctl;
    uint64_t mce_banks[MSR_MCE_BANKS * 4]; /* CTL, STATUS, ADDR, MISC per bank */
    uint64_t mci_ctl2[MSR_MCE_BANKS];
    uint64_t pv_last_steal; /* run_delay at the last steal-time update (st.last_steal) */
    uint64_t pv_system_time, pv_wall_clock, pv_async_pf_en, pv_async_pf_int, pv_steal_time,
        pv_eoi_en, pv_poll_control;
    /* KVM's vcpu->arch.pv_time cache: where kvmclock updates go, and whether it is active.
     * Not the MSR value: a write whose structure would cross a page leaves both as they
     * were (pfncache.c __kvm_gpc_activate -> kvm_gpc_is_valid_len). */
    uint64_t pv_time_gpa;
    bool pv_time_active;
    uint64_t hwcr, vm_cr, syscfg, ucode_rev, bndcfgs, debugctl, ghcb;
    uint64_t xfd, xfd_err;
    uint64_t misc_features_enables, power_ctl, osvw_length, osvw_status, de_cfg;
    uint64_t pv_async_pf_ack_pending;
    uint64_t tsc_ratio; /* AMD TSC_RATIO MSR, 8.32 fixed point */
    bool pv_guest_stopped; /* KVM_KVMCLOCK_CTRL pending (pvclock_set_guest_stopped_request) */
};

/* What the vPMU counts with: emu's emu_pmu_* functions (emu.h) on one emu_vcpu, given by
 * abi (msr/ itself links without emu). */
struct msr_pmu_source {
    uint64_t (*retired)(void *ctx);
    const struct emu_pmu_counts *(*counts)(void *ctx);
    void (*set_precise)(void *ctx, bool on, bool watch);
    void (*set_stop)(void *ctx, uint64_t icount);
    bool (*request)(void *ctx);
    void *ctx;
};

/* The virtual PMU (msr/pmu.c; design in msr/README.md "vPMU"). One counter: */
#define MSR_PMU_MAX_GP 8    /* KVM_MAX_NR_GP_COUNTERS */
#define MSR_PMU_MAX_FIXED 3 /* KVM_MAX_NR_FIXED_COUNTERS */
struct msr_pmc {
    uint64_t value;    /* the count at the last fold, within the counter's width */
    uint64_t base;     /* the source's count at the last fold (while running) */
    uint64_t eventsel; /* GP: the event select MSR */
    uint8_t classes;   /* while running: bit i = emu_pmu_class i counted; 0 = stopped */
    uint8_t cpl_mode;  /* bit 0 CPL 0 (OS), bit 1 CPL > 0 (USR) */
    bool fast;         /* counts the retired count itself (instructions, OS and USR) */
    bool intr;         /* PMI on overflow */
};
struct msr_pmu {
    uint8_t version, nr_gp, nr_fixed;
    uint64_t gp_mask, fixed_mask;   /* counter_bitmask[KVM_PMC_GP / FIXED] */
    uint64_t reserved_bits;         /* event select bits that #GP (Intel) / are dropped (AMD) */
    uint64_t global_ctrl_rsvd, global_status_rsvd, fixed_ctr_ctrl_rsvd;
    uint32_t available_events;      /* Intel: ~CPUID.0AH:EBX within the mask length */
    struct msr_pmc gp[MSR_PMU_MAX_GP], fixed[MSR_PMU_MAX_FIXED];
    uint64_t fixed_ctr_ctrl, global_ctrl, global_status;
    uint64_t filter_gen;            /* the VM's event-filter generation last applied */
    bool need_reprogram;            /* a write changed what counts (KVM_REQ_PMU) */
    struct msr_pmu_source src;      /* the interpreter counting for it (NULL ops: nothing) */
};

/* KVM_SET_PMU_EVENT_FILTER as prepare_filter_lists leaves it: masked entries, includes
 * then excludes (msr/pmu_filter.c). Immutable once published. */
struct msr_pmu_filter {
    uint32_t action, fixed_counter_bitmap, flags, nevents, nr_includes;
    struct msr_pmu_filter *retired_next;
    uint64_t events[];
};

struct msr_vcpu {
    struct msr_vm *vm;
    struct cpu *cpu;
    /* Bitmaps: the effective ones (what "hardware" checks) and the intent KVM keeps in
     * vmx->shadow_msr_intercept / svm direct-access state, re-applied through the filter. */
    uint8_t vmx_bitmap[MSR_VMX_BITMAP_SIZE];
    uint8_t svm_msrpm[MSR_SVM_MSRPM_SIZE];
    uint64_t passthrough_rd, passthrough_wr; /* run-time pass-through intent, bit i = entry i of
                                                the pass-through list (bitmap.c) */
    /* filter snapshot used by this vCPU; refreshed when vm->filter_gen changes */
    const struct msr_filter *filter;
    uint64_t filter_gen;
    /* guest CPUID copy and derived gates */
    struct kvm_cpuid_entry2 cpuid[MSR_MAX_CPUID];
    unsigned ncpuid;
    struct msr_guest_features feat;
    bool enforce_pv_cpuid; /* KVM_CAP_ENFORCE_PV_FEATURE_CPUID */
    bool in_vmx_operation; /* cleared by a host FEATURE_CONTROL write of 0 */
    bool has_run;          /* set by msr_vcpu_sync (KVM_RUN entry): feature MSRs freeze */
    struct msr_kernel_state k;
    struct msr_apic_ops apic;
    struct msr_hv_ops hv;
    struct msr_xen_ops xen;
    struct msr_stats stats;
    /* The counter the guest TSC is built on: guest TSC = tsc_read(tsc_ctx) + cpu->tsc_offset.
     * Must be the same counter emu's RDTSC uses. NULL = host RDTSC (calibrated tsc_khz). */
    uint64_t (*tsc_read)(void *ctx);
    void *tsc_ctx;
    struct msr_pmu pmu;
};

/* Create/destroy. The vCPU starts with KVM's reset values, default pass-through lists and
 * an empty CPUID (so CPUID-gated MSRs fault for the guest until SET_CPUID2). */
struct msr_vcpu *msr_vcpu_create(struct msr_vm *vm, struct cpu *cpu);
void msr_vcpu_destroy(struct msr_vcpu *v);
/* vCPU reset (KVM_CREATE_VCPU / INIT): reset MSR values (init_event = INIT keeps some). */
void msr_vcpu_reset(struct msr_vcpu *v, bool init_event);
/* KVM_SET_CPUID2: copy, derive gates, recompute bitmaps. */
void msr_vcpu_set_cpuid(struct msr_vcpu *v, const struct kvm_cpuid_entry2 *e, unsigned n);
/* Use `read` (the counter emu's RDTSC adds cpu->tsc_offset to, at `khz` kHz) as the TSC
 * source; re-bases cpu->tsc_offset as KVM's vCPU creation does (kvm_synchronize_tsc): the
 * VM's first vCPU starts at 0, later vCPUs join the VM's running TSC. msr_vcpu_create does
 * the same with the host TSC. */
void msr_vcpu_set_tsc_source(struct msr_vcpu *v, uint64_t (*read)(void *ctx), void *ctx,
                             uint64_t khz);
/* KVM_ENABLE_CAP(KVM_CAP_ENFORCE_PV_FEATURE_CPUID) on the vCPU fd. */
int msr_vcpu_enable_pv_enforcement(struct msr_vcpu *v, uint64_t enable);
/* KVM_X86_GET_MCE_CAP_SUPPORTED for the vendor flavour. */
uint64_t msr_mce_cap_supported(enum msr_vendor vendor);
/* KVM_X86_SETUP_MCE: 0 or -EINVAL (bank count 1..32, only supported capability bits). */
int msr_vcpu_setup_mce(struct msr_vcpu *v, uint64_t mcg_cap);
/* KVM_X86_SET_MCE (struct kvm_x86_mce's fields): logs the error in the bank; `action`
 * says what the caller must do to the vCPU. 0 or -EINVAL (bank out of range, !VAL). */
struct msr_mce {
    uint64_t status, addr, misc, mcg_status;
    uint8_t bank;
};
enum msr_mce_action { MSR_MCE_NONE, MSR_MCE_EXCEPTION, MSR_MCE_TRIPLE_FAULT, MSR_MCE_CMCI };
int msr_vcpu_set_mce(struct msr_vcpu *v, const struct msr_mce *m, bool cr4_mce,
                     enum msr_mce_action *action);
/* Write the kvmclock page (pvclock_vcpu_time_info) if the guest enabled it; abi calls this
 * at KVM_RUN entry (KVM_REQ_CLOCK_UPDATE). */
void msr_vcpu_update_kvmclock(struct msr_vcpu *v);
/* struct pvclock_vcpu_time_info (32 bytes): version, pad, tsc_timestamp, system_time,
 * tsc_to_system_mul, tsc_shift, flags, pad[2]. */
struct msr_pvclock {
    uint32_t version, pad0;
    uint64_t tsc_timestamp, system_time;
    uint32_t mul;
    int8_t shift;
    uint8_t flags, pad[2];
};
_Static_assert(sizeof(struct msr_pvclock) == 32, "pvclock_vcpu_time_info is 32 bytes");
/* The vCPU's current pvclock parameters (kvm_guest_time_update's hv_clock, version not
 * set): what the kvmclock page and Xen's vcpu_info/vcpu_time_info copies publish. */
bool msr_vcpu_pvclock(struct msr_vcpu *v, struct msr_pvclock *t);
/* KVM_VCPU_TSC_OFFSET (6.12 x86.c kvm_arch_tsc_get_attr / set_attr): the L1 TSC offset
 * against the host TSC; setting it is a synchronisation point for later vCPUs
 * (__kvm_synchronize_tsc with the offset's TSC "now"). */
uint64_t msr_tsc_get_offset(struct msr_vcpu *v);
/* the vCPU's TSC rate in kHz (cpu->tsc_khz, else the VM's calibrated rate) */
uint32_t msr_vcpu_tsc_khz(const struct msr_vcpu *v);
/* At KVM_RUN entry: steal-time update with the thread's run-queue wait so far (ns). */
void msr_vcpu_record_steal_time(struct msr_vcpu *v, uint64_t run_delay_ns);
void msr_tsc_set_offset(struct msr_vcpu *v, uint64_t offset);
/* KVM_KVMCLOCK_CTRL: 0, or -EINVAL when the guest has not enabled kvmclock. */
int msr_vcpu_kvmclock_paused(struct msr_vcpu *v);
/* Apply a new filter generation now if there is one (abi calls at KVM_RUN entry); also
 * marks the vCPU as having run (KVM refuses changes to feature MSRs after that). */
void msr_vcpu_sync(struct msr_vcpu *v);

/* vPMU (msr/pmu.c). The interpreter whose instructions the counters count (abi calls it
 * once emu and msr exist, and installs msr_pmu_event as emu's PMU hook). */
void msr_vcpu_set_pmu_source(struct msr_vcpu *v, const struct msr_pmu_source *src);
/* emu's PMU hook (emu_pmu_ops.event) with ctx = the msr_vcpu */
void msr_pmu_event(void *ctx);
/* RDPMC: 0 and *value, or nonzero for #GP (kvm_pmu_rdpmc). */
int msr_pmu_rdpmc(struct msr_vcpu *v, uint32_t ecx, uint64_t *value);
/* KVM_SET_PMU_EVENT_FILTER (the struct kvm_pmu_event_filter header, then its events):
 * 0 or -errno in KVM's order; vCPUs apply it at their next entry (msr_vcpu_sync). */
int msr_vm_set_pmu_filter(struct msr_vm *vm, const struct kvm_pmu_event_filter *hdr,
                          const uint64_t *events);
/* kvm_caps.supported_perf_cap for the flavour (Intel: full-width writes; AMD: 0) */
uint64_t msr_pmu_supported_perf_cap(enum msr_vendor vendor);

/* Host-initiated KVM_GET_MSRS / KVM_SET_MSRS for one MSR: 0 = ok, nonzero = failed (the
 * caller stops and returns the number processed). Never filtered, never exits. */
int msr_vcpu_get(struct msr_vcpu *v, uint32_t index, uint64_t *value);
int msr_vcpu_set(struct msr_vcpu *v, uint32_t index, uint64_t value);

/* Guest-initiated accesses that reached the intercept side (what emu calls through
 * msr_emu_ops with ctx = struct msr_vcpu *). abi copies this and sets .ctx per vCPU. */
extern const struct emu_msr_ops msr_emu_ops;

/* ---------------- system fd ---------------- */

/* KVM_GET_MSR_INDEX_LIST / KVM_GET_MSR_FEATURE_INDEX_LIST: write up to `cap` indices to
 * `out` (may be NULL when cap == 0) and return the total count (abi returns E2BIG with
 * that count when the caller's nmsrs is too small). */
unsigned msr_index_list(enum msr_vendor vendor, uint32_t *out, unsigned cap);
unsigned msr_feature_index_list(enum msr_vendor vendor, uint32_t *out, unsigned cap);
/* KVM_GET_MSRS on the system fd: 0 = ok, nonzero = not a feature MSR. */
int msr_feature_get(enum msr_vendor vendor, uint32_t index, uint64_t *value);

/* Human-readable name of an MSR KVM knows ("IA32_EFER"), or NULL. */
const char *msr_name(uint32_t index);

#endif
