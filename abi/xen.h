/* abi/: KVM's Xen HVM emulation (Linux 6.12 arch/x86/kvm/xen.c, xen.h; api.rst
 * KVM_XEN_HVM_CONFIG, KVM_XEN_HVM_{GET,SET}_ATTR, KVM_XEN_VCPU_{GET,SET}_ATTR). Not a
 * contract for other modules.
 *
 * Design. State is split as KVM splits it: struct abi_xen_vm is kvm->arch.xen plus
 * kvm->arch.xen_hvm_config (VM-wide, under `lock`, KVM's xen_lock), struct abi_xen_vcpu is
 * vcpu->arch.xen. KVM's gfn_to_pfn caches become struct abi_xen_gpc: an activated
 * guest-physical address or user-space address, resolved at each access (softkvm's guest
 * memory is the VMM's own mapping, so a remapped HVA is followed without an MMU notifier).
 * Entry points, by file:
 *   xen.c        lifecycle, KVM_XEN_HVM_CONFIG, the HVM/vCPU attributes, the hypercall
 *                page (msr/ hook, kvm_xen_write_hypercall_page), shared_info wall clock,
 *                the Xen pvclock copies (kvm_guest_time_update)
 *   xen_hcall.c  kvm_xen_hypercall: the calls KVM serves in the kernel, else
 *                KVM_EXIT_XEN (completed at the next KVM_RUN)
 *   xen_evtchn.c the upcall vector as an ExtINT-like source the LAPIC consults
 *                (kvm_cpu_has_extint / kvm_xen_has_interrupt)
 * Why here: every piece needs the VM's memory and vCPUs (abi/), msr/ only forwards the
 * MSR write, as it forwards the Hyper-V MSRs.
 *
 * Capabilities: KVM_CAP_XEN_HVM answers only the KVM_XEN_HVM_CONFIG_* flags implemented
 * (abi_xen_caps()); the attributes of features not advertised answer as a 6.12 KVM
 * without them would (RUNSTATE_*: -EOPNOTSUPP, as with !sched_info_on()). */
#ifndef SOFTKVM_ABI_XEN_H
#define SOFTKVM_ABI_XEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

struct abi_vm;
struct abi_vcpu;
struct abi_xen_port;

#define ABI_XEN_INVALID_GPA (~0ull)

/* a gfn_to_pfn_cache: either gpa (hva unused) or hva (gpa == ABI_XEN_INVALID_GPA) */
struct abi_xen_gpc {
    bool active;
    uint64_t gpa, uhva;
};

struct abi_xen_vm {
    pthread_mutex_t lock;             /* KVM's xen_lock */
    struct kvm_xen_hvm_config cfg;    /* kvm->arch.xen_hvm_config */
    _Atomic uint32_t flags;           /* cfg.flags, read by vCPUs without the lock */
    bool long_mode;
    _Atomic uint8_t upcall_vector;    /* HVMIRQ_callback_vector (global) */
    uint32_t xen_version;
    bool runstate_update_flag;
    struct abi_xen_gpc shinfo;
    struct abi_xen_port *ports;       /* KVM_XEN_ATTR_TYPE_EVTCHN (KVM's evtchn_ports idr) */
    unsigned nports, cap;
};

struct abi_xen_vcpu {
    uint32_t vcpu_id;                 /* KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID (default vcpu_idx) */
    uint8_t upcall_vector;            /* per-vCPU LAPIC vector */
    struct abi_xen_gpc vcpu_info, time_info;
    bool clock_update;                /* KVM_REQ_CLOCK_UPDATE for the Xen copies */
    uint32_t pvclock_version;         /* hv_clock.version */
    bool hcall_in_user;               /* KVM_EXIT_XEN outstanding */
    uint64_t hcall_rip;               /* RIP after the VMCALL when it exited */
    struct abi_xen_gpc runstate;      /* runstate_cache (+ runstate2_cache): gpa only */
    int rs_current;                   /* current_runstate */
    uint64_t rs_entry_time, rs_times[4], rs_last_steal;
};

/* xen.c */
struct abi_xen_vm *abi_xen_vm_create(void);
void abi_xen_vm_destroy(struct abi_xen_vm *x);
struct abi_xen_vcpu *abi_xen_vcpu_create(uint32_t vcpu_idx);
void abi_xen_vcpu_destroy(struct abi_xen_vcpu *x);
/* KVM_CAP_XEN_HVM */
uint32_t abi_xen_caps(void);
long abi_xen_hvm_config(struct abi_vm *vm, unsigned long arg);
long abi_xen_hvm_attr(struct abi_vm *vm, unsigned long arg, bool set);
long abi_xen_vcpu_attr(struct abi_vcpu *v, unsigned long arg, bool set);
/* msr/ hook (struct msr_xen_ops): kvm_xen_write_hypercall_page, 0 or 1 */
int abi_xen_write_hypercall_page(void *vcpu, uint64_t data, bool host);
/* At KVM_RUN entry: the Xen pvclock copies when the clock changed (kvm_guest_time_update) */
void abi_xen_clock_update(struct abi_vcpu *v, bool clock_changed);
/* guest memory through a cache; caller holds vm->mem_lock for reading. 0 or -EFAULT */
int abi_xen_gpc_read(struct abi_vm *vm, const struct abi_xen_gpc *g, uint64_t off, void *dst,
                     size_t len);
int abi_xen_gpc_write(struct abi_vm *vm, const struct abi_xen_gpc *g, uint64_t off,
                      const void *src, size_t len);
/* A host pointer to [off, off+len) of the cache, or NULL (mem_lock held for reading). */
void *abi_xen_gpc_host(struct abi_vm *vm, const struct abi_xen_gpc *g, uint64_t off, size_t len);

/* xen_hcall.c */
/* kvm_xen_hypercall_enabled(): KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL with an MSR */
bool abi_xen_hypercall_enabled(struct abi_vm *vm);
/* kvm_xen_hypercall(): 1 = done (RAX set), 0 = KVM_EXIT_XEN filled in v->run */
int abi_xen_hypercall(struct abi_vcpu *v);
/* kvm_xen_hypercall_complete_userspace(); true if a Xen hypercall was outstanding */
bool abi_xen_complete_user(struct abi_vcpu *v);
/* kvm_read_guest_virt() for hypercall arguments: 0 or -EFAULT (no lock held) */
int abi_xen_read_guest_virt(struct abi_vcpu *v, uint64_t gva, void *dst, size_t len);

/* xen_runstate.c */
/* kvm_xen_msr_enabled(): KVM_XEN_HVM_CONFIG set an MSR */
bool abi_xen_msr_enabled(struct abi_vm *vm);
/* kvm_xen_runstate_set_running() at KVM_RUN entry (record_steal_time); no lock held */
void abi_xen_runstate_running(struct abi_vcpu *v, uint64_t run_delay);
/* RUNSTATE_* vCPU attributes; xen->lock and mem_lock (read) held */
long abi_xen_runstate_attr(struct abi_vcpu *v, struct kvm_xen_vcpu_attr *a, bool set);

/* xen_evtchn.c */
long abi_xen_setattr_evtchn(struct abi_vm *vm, const struct kvm_xen_hvm_attr *a);
void abi_xen_evtchn_free(struct abi_xen_vm *x);
/* EVTCHNOP_send to a registered port: true = handled, result in *r */
bool abi_xen_hcall_evtchn_send(struct abi_vcpu *v, uint64_t param, uint64_t *r);
/* kvm_xen_has_interrupt(): the global upcall vector if vcpu_info's evtchn_upcall_pending
 * is set, else -1. The LAPIC asks it first (kvm_cpu_get_extint); lock-free. */
int abi_xen_upcall_extint(void *vcpu);

#endif
