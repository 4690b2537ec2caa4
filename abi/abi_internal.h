/* abi/: object model shared by the abi .c files (not a contract for other modules).
 *
 * Each KVM object (system, VM, vCPU) is reached through one or more real file
 * descriptors of the process (memfds), so close/dup/poll/mmap work natively. The fd
 * table maps fd -> object; objects are reference counted (one reference per fd, plus
 * one from every vCPU on its VM, and one from the VM on its system object).
 */
#ifndef SOFTKVM_ABI_INTERNAL_H
#define SOFTKVM_ABI_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "abi/abi.h"
#include "abi/kvm_compat.h"
#include "emu/emu.h"
#include "msr/msr.h"
#include "abi/irqchip.h"
#include "abi/pit.h"
#include "abi/hyperv.h"
#include "abi/xen.h"

#define ABI_MAX_VCPUS 1024     /* KVM_MAX_VCPUS on x86 (6.12: 4096 with MAXSMP; 1024 default) */
#define ABI_MAX_VCPU_ID 4096   /* KVM_MAX_VCPU_IDS */
#define ABI_SOFT_MAX_VCPUS 1024
#define ABI_USER_MEM_SLOTS 32764 /* KVM_USER_MEM_SLOTS on x86 */
/* The quirks a VMM can disable (KVM_CAP_DISABLE_QUIRKS2's answer): those whose disabled
 * behaviour softkvm has. SLOT_ZAP_ALL only decides which shadow/TDP entries KVM zaps when
 * a slot goes away — softkvm has none, so either setting is already what it does;
 * STUFF_FEATURE_MSRS is honoured in msr/vcpu.c, MISC_ENABLE_NO_MWAIT in msr/h_misc.c,
 * FIX_HYPERCALL_INSN and MWAIT_NEVER_UD_FAULTS in emu/insn_system.c (vcpu_run.c passes
 * them). The other 6.12 quirks (LINT0, CD/NW, LAPIC MMIO hole, OUT 7E, guest PAT, SMM)
 * are missing. */
#define ABI_SUPPORTED_QUIRKS                                                               \
    (KVM_X86_QUIRK_SLOT_ZAP_ALL | KVM_X86_QUIRK_STUFF_FEATURE_MSRS |                       \
     KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT | KVM_X86_QUIRK_FIX_HYPERCALL_INSN |               \
     KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS)
#define ABI_MAX_CPUID_ENTRIES 256 /* KVM_MAX_CPUID_ENTRIES */
#define ABI_PAGE_SIZE 4096u

enum abi_kind { ABI_SYSTEM = 1, ABI_VM, ABI_VCPU, ABI_GMEM };
enum abi_vendor { ABI_VENDOR_INTEL = 0, ABI_VENDOR_AMD };

struct abi_obj {
    enum abi_kind kind;
    atomic_int refs;
    int memfd; /* the fd first handed out; all fds of the object dup it */
};

struct abi_system {
    struct abi_obj obj;
    enum abi_vendor vendor;
};

/* One KVM memory slot as user space declared it. */
struct abi_memslot {
    bool used;
    uint32_t flags;
    uint64_t gpa, size, uaddr;
    uint64_t *dirty; /* bitmap when KVM_MEM_LOG_DIRTY_PAGES */
    /* userspace_addr 0: emu gets this PROT_NONE mapping of `size` bytes instead, so a
     * guest access faults (KVM_RUN EFAULT) without C dereferencing a null pointer */
    void *null_standin;
    /* KVM_MEM_GUEST_MEMFD: the file private gfns read (not a reference: the file pins
     * the VM, and closing it unbinds, abi_gmem_free), at gmem_off for the slot's gpa */
    struct abi_gmem *gmem;
    uint64_t gmem_off;
};

/* The VM's private gfns (abi/memattr.c): sorted, disjoint, non-adjacent [start, end). */
struct abi_gfn_range {
    uint64_t start, end;
};
struct abi_memattr {
    struct abi_gfn_range *r;
    unsigned n, cap;
};

/* One address space's slots and the view emu gets of them (abi/memslot.c). */
struct abi_aspace {
    struct emu_physmem mem;    /* what emu sees; rebuilt from slots on every change */
    struct abi_memslot *slots; /* indexed by KVM slot id; NULL until first used (as 1) */
    unsigned slot_hi;          /* 1 + highest used slot id (bounds the scans) */
    uint32_t *slot_order;      /* ids of the used slots sorted by gpa (memslot.c) */
    unsigned nslot_order;
    unsigned mem_cap;          /* entries allocated in mem.slots */
};

struct abi_vcpu;

#define ABI_MAX_IOEVENTFDS 1000 /* NR_IOBUS_DEVS */
#define ABI_MAX_COALESCED_ZONES 1000
struct abi_ioeventfd {
    bool pio, datamatch;
    bool ccw; /* KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY: its own bus, never hit on x86 */
    uint64_t addr, value;
    uint32_t len; /* 0 = any length (MMIO only) */
    int fd;       /* our dup of the eventfd */
};

struct abi_irqfds; /* irqfd.c */

struct abi_vm {
    struct abi_obj obj;
    struct abi_system *sys;
    pthread_mutex_t lock;      /* slots, vcpus[], VM-wide settings */
    /* address space 0 (normal) and 1 (SMM; kvm_arch_vcpu_memslots_id); emu reads each
     * `mem` without locks, so vCPUs hold mem_lock (read) around emu_run and a memslot
     * change takes it for writing after kicking them out (KVM: SRCU). as[0].mem's
     * generation counts the changes of both. */
    struct abi_aspace as[2];
    pthread_rwlock_t mem_lock;
    struct abi_vcpu *vcpus[ABI_MAX_VCPUS];
    unsigned nvcpus;
    bool created_vcpu;         /* some settings (e.g. SET_TSS_ADDR) are fine either way */
    uint32_t default_tsc_khz;  /* KVM_SET_TSC_KHZ on the VM fd; 0 = the host's (atomic) */
    bool has_private_mem;      /* KVM_X86_SW_PROTECTED_VM (kvm_arch_has_private_mem) */
    struct abi_memattr memattr; /* KVM_SET_MEMORY_ATTRIBUTES, under lock */
    uint64_t hypercall_exit_enabled; /* KVM_CAP_EXIT_HYPERCALL: KVM_HC_* bits (atomic) */
    bool irqchip;
    bool tss_addr_set;
    uint64_t tss_addr, identity_map_addr;
    bool exception_payload;         /* KVM_CAP_EXCEPTION_PAYLOAD */
    bool triple_fault_event;        /* KVM_CAP_X86_TRIPLE_FAULT_EVENT */
    bool exit_on_emulation_failure; /* KVM_CAP_EXIT_ON_EMULATION_FAILURE */
    uint64_t disabled_exits;        /* KVM_CAP_X86_DISABLE_EXITS */
    bool mwait_in_guest;            /* ... with KVM_X86_DISABLE_EXITS_MWAIT (kvm->arch.mwait_in_guest) */
    uint32_t boot_cpu_id;           /* KVM_SET_BOOT_CPU_ID */
    uint32_t max_vcpu_ids;          /* KVM_CAP_MAX_VCPU_ID (0 = default) */
    /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 args[0] (KVM_DIRTY_LOG_*), under lock */
    uint64_t manual_dirty_log;
    uint64_t disabled_quirks; /* KVM_CAP_DISABLE_QUIRKS{,2}, within ABI_SUPPORTED_QUIRKS */
    atomic_uint clock_gen;          /* bumped by KVM_SET_CLOCK (KVM_REQ_CLOCK_UPDATE) */
    struct msr_vm msr;              /* filter, user-space MSR mask, PLATFORM_INFO cap */
    struct abi_irqchip *irqchip_state; /* KVM_CREATE_IRQCHIP */
    /* KVM_CREATE_PIT{,2}: set once under `lock`, read by vCPU threads with an
     * acquire load (abi_vm_pit); freed with the VM, before the irqchip */
    struct abi_pit *pit;
    struct abi_ioeventfd ioeventfds[ABI_MAX_IOEVENTFDS];
    struct kvm_coalesced_mmio_zone zones[ABI_MAX_COALESCED_ZONES];
    unsigned nzones;
    int ring_fd;                          /* coalesced MMIO ring page (memfd) */
    struct kvm_coalesced_mmio_ring *ring; /* our mapping of it */
    unsigned nioeventfds;
    struct abi_irqfds *irqfds;           /* KVM_IRQFD, created at the first assign */
    struct abi_hv_vm *hv;                /* Hyper-V partition state (abi/hyperv.c) */
    struct abi_xen_vm *xen;              /* Xen HVM state (abi/xen.c) */
};

struct abi_vcpu {
    struct abi_obj obj;
    struct abi_vm *vm;
    uint32_t id;
    pthread_mutex_t lock; /* serialises ioctls on this vCPU (KVM: vcpu->mutex) */
    struct emu_vcpu *emu;
    struct msr_vcpu *msr;
    struct emu_msr_ops msr_ops; /* msr_emu_ops with ctx = msr */
    struct abi_lapic *lapic;    /* with an in-kernel irqchip */
    struct abi_hv_vcpu *hv;     /* Hyper-V VP state (abi/hyperv.c) */
    struct abi_xen_vcpu *xen;   /* Xen vCPU state (abi/xen.c) */
    int schedstat_fd;           /* /proc/thread-self/schedstat of schedstat_tid (0: none) */
    pid_t schedstat_tid;
    struct kvm_run *run;  /* shared mapping of the memfd; user space mmaps the same pages */
    size_t run_size;
    /* exit currently handed to user space, completed on the next KVM_RUN */
    struct emu_exit exit;
    bool pending_completion;
    bool hypercall_user; /* the pending EMU_EXIT_HYPERCALL is KVM_EXIT_HYPERCALL's */
    atomic_bool in_run;
    pthread_t run_thread; /* valid while in_run */
    unsigned clock_gen;   /* vm->clock_gen this vCPU's kvmclock page reflects */
    atomic_bool signalled;
    struct kvm_cpuid_entry2 *cpuid;
    unsigned ncpuid;
    uint32_t mp_state;
    uint64_t guest_debug;
    bool sigmask_set;
    uint64_t sigmask;
    struct emu_cpuid_entry *emu_cpuid;
    bool tpr_access_reporting; /* KVM_TPR_ACCESS_REPORTING */
    /* KVM_GET_STATS_FD counters */
    uint64_t stat_exits, stat_io_exits, stat_mmio_exits, stat_halt_exits, stat_signal_exits,
        stat_msr_exits;
};

struct abi_process {
    pthread_mutex_t lock;
    struct abi_obj **fds; /* indexed by fd */
    int nfds;
    atomic_int gmem_made; /* guest_memfds created so far: the shim's read/write fast path */
};

/* objects.c */
int abi_obj_install(struct abi_process *p, struct abi_obj *o, int fd);
struct abi_obj *abi_obj_get(struct abi_process *p, int fd); /* takes a reference */
void abi_obj_put(struct abi_obj *o);
int abi_memfd(const char *name, size_t size, int open_flags);

/* uaccess.c: every caller pointer goes through these (EFAULT like KVM's copy_from_user). */
int abi_copy_from_user(void *dst, const void *user_src, size_t len);
/* The VM's in-kernel PIT or NULL (vm->pit is published with a release store). */
static inline struct abi_pit *abi_vm_pit(struct abi_vm *vm)
{
    return __atomic_load_n(&vm->pit, __ATOMIC_ACQUIRE);
}
int abi_copy_to_user(void *user_dst, const void *src, size_t len);

/* dispatch */
long abi_system_ioctl(struct abi_process *p, struct abi_system *s, unsigned long req,
                      unsigned long arg);
long abi_vm_ioctl(struct abi_process *p, struct abi_vm *vm, unsigned long req, unsigned long arg);
long abi_vcpu_ioctl(struct abi_process *p, struct abi_vcpu *v, unsigned long req,
                    unsigned long arg);
long abi_check_extension(struct abi_system *s, struct abi_vm *vm, long cap);

/* cpuid.c */
enum abi_vendor abi_vendor_current(void);
/* Fills `out` (capacity cap) with the supported CPUID; returns count. */
unsigned abi_supported_cpuid(enum abi_vendor vendor, struct kvm_cpuid_entry2 *out, unsigned cap);
unsigned abi_emulated_cpuid(struct kvm_cpuid_entry2 *out, unsigned cap);
const struct kvm_cpuid_entry2 *abi_cpuid_find(const struct kvm_cpuid_entry2 *e, unsigned n,
                                              uint32_t function, uint32_t index);
uint64_t abi_cr4_reserved_bits(const struct kvm_cpuid_entry2 *e, unsigned n);
unsigned abi_maxphyaddr(const struct kvm_cpuid_entry2 *e, unsigned n);

uint64_t abi_supported_xcr0(void);

/* msr_glue.c */
int abi_msr_vm_init(struct abi_vm *vm);
long abi_msr_index_list(unsigned long arg, bool feature);
long abi_msr_feature_get(struct abi_system *s, unsigned long arg);
long abi_vcpu_get_msrs(struct abi_vcpu *v, unsigned long arg);
long abi_vcpu_set_msrs(struct abi_vcpu *v, unsigned long arg);
long abi_vm_set_msr_filter(struct abi_vm *vm, unsigned long arg);

/* memslot.c */
long abi_vm_set_memory_region(struct abi_process *p, struct abi_vm *vm,
                              const struct kvm_userspace_memory_region2 *r,
                              bool v2);
long abi_vm_get_dirty_log(struct abi_vm *vm, unsigned long arg);
long abi_vm_clear_dirty_log(struct abi_vm *vm, unsigned long arg);
/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (caller holds vm->lock). */
long abi_vm_enable_manual_dirty_log(struct abi_vm *vm, uint64_t flags);
#define ABI_DIRTY_LOG_MANUAL_CAPS (KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET)
void abi_vm_mark_dirty(struct abi_vm *vm, uint64_t gpa, uint64_t len);
void abi_vm_free_slots(struct abi_vm *vm);
void abi_vm_mem_write_lock(struct abi_vm *vm);
void abi_vm_mem_write_unlock(struct abi_vm *vm);

/* ioeventfd.c */
long abi_vm_ioeventfd(struct abi_vm *vm, unsigned long arg);
/* A guest write: true if an ioeventfd took it (no exit to user space). */
bool abi_ioeventfd_signal(struct abi_vm *vm, bool pio, uint64_t addr, const void *data,
                          unsigned len);
void abi_ioeventfd_free(struct abi_vm *vm);
/* Whether fd is an eventfd; for one that is not: -EBADF (not open) or -EINVAL,
 * as eventfd_ctx_fdget(). Returns 0 for an eventfd. */
int abi_eventfd_check(int fd);

/* irqfd.c: KVM_IRQFD (virt/kvm/eventfd.c). One thread per VM, started at the
 * first assign, turns eventfd signals into GSI injections. */
long abi_vm_irqfd(struct abi_vm *vm, unsigned long arg);
/* VM teardown (no vCPU left): stops the thread, closes our eventfd dups. */
void abi_irqfd_free(struct abi_vm *vm);

/* pmu_filter.c: KVM_SET_PMU_EVENT_FILTER (validated, no vPMU to apply it to) */
long abi_vm_set_pmu_event_filter(struct abi_vm *vm, unsigned long arg);

/* coalesced.c */
int abi_coalesced_init(struct abi_vm *vm);
void abi_coalesced_free(struct abi_vm *vm);
long abi_vm_coalesced_zone(struct abi_vm *vm, unsigned long arg, bool reg);
/* A guest write: true if it went into the coalesced ring (no exit to user space). */
bool abi_coalesced_write(struct abi_vm *vm, bool pio, uint64_t addr, const void *data,
                         unsigned len);

/* stats.c: KVM_GET_STATS_FD for the VM (vcpu == NULL) or a vCPU */
long abi_stats_fd(struct abi_vm *vm, struct abi_vcpu *vcpu);

/* vcpu_run.c */
long abi_vcpu_run(struct abi_vcpu *v);
/* schedstat run_delay (ns) of the calling thread, as KVM's steal time reads it */
uint64_t abi_vcpu_run_delay(struct abi_vcpu *v);

/* report.c: a line to $SOFTKVM_REPORT, if set */
void abi_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* vcpu_mce.c */
long abi_vcpu_setup_mce(struct abi_vcpu *v, unsigned long arg);
long abi_vcpu_set_mce(struct abi_vcpu *v, unsigned long arg);
long abi_vcpu_device_attr(struct abi_vcpu *v, unsigned long req, unsigned long arg);

/* vapic.c */
long abi_vcpu_set_vapic_addr(struct abi_vcpu *v, unsigned long arg);
long abi_vcpu_tpr_access_reporting(struct abi_vcpu *v, unsigned long arg);
void abi_vapic_sync_to(struct abi_vcpu *v);
void abi_vapic_sync_from(struct abi_vcpu *v);
bool abi_vapic_tpr_exit(struct abi_vcpu *v);

/* vcpu_state.c */
long abi_vcpu_state_ioctl(struct abi_vcpu *v, unsigned long req, unsigned long arg, bool *handled);
void abi_vcpu_init_state(struct abi_vcpu *v);

/* The guest TSC rate (abi/vcpu_tsc.c): KVM_SET/GET_TSC_KHZ on vCPU and VM fds; the rate a
 * new vCPU starts with (before its TSC is synchronised). */
long abi_vcpu_set_tsc_khz(struct abi_vcpu *v, unsigned long arg);
long abi_vcpu_get_tsc_khz(struct abi_vcpu *v);
long abi_vm_set_tsc_khz(struct abi_vm *vm, unsigned long arg);
long abi_vm_get_tsc_khz(struct abi_vm *vm);
void abi_vcpu_init_tsc_rate(struct abi_vcpu *v);

/* guest_memfd (abi/gmem.c): KVM_CREATE_GUEST_MEMFD's file, a memfd of the VM's, and
 * what its file operations give (the preload shim asks). */
struct abi_gmem {
    struct abi_obj obj;
    struct abi_vm *vm; /* holds a reference (kvm_gmem_create: kvm_get_kvm) */
    uint64_t size, flags;
    uint8_t *map; /* softkvm's own mapping of the file: what private gfns read */
    bool map_pinned; /* a view after unbinding could not be made: the mapping stays */
};
long abi_vm_create_guest_memfd(struct abi_process *p, struct abi_vm *vm, unsigned long arg);
void abi_gmem_free(struct abi_gmem *g);
/* The guest_memfd file fd names, with a reference, or NULL (-EBADF: no such fd,
 * -EINVAL: another kind of file) in *err. */
struct abi_gmem *abi_gmem_from_fd(struct abi_process *p, int fd, long *err);

/* Memory attributes (abi/memattr.c) */
uint64_t abi_vm_supported_mem_attributes(const struct abi_vm *vm);
long abi_vm_set_memory_attributes(struct abi_vm *vm, unsigned long arg);
bool abi_vm_gfn_private(const struct abi_vm *vm, uint64_t gfn);
int abi_memattr_split(const struct abi_vm *vm, uint64_t gpa, uint64_t size,
                      int (*out)(void *ctx, uint64_t gpa, uint64_t size, bool priv), void *ctx);
void abi_memattr_free(struct abi_memattr *a);
/* emu's views of both address spaces rebuilt from the slots and attributes (memslot.c);
 * vm->lock held */
int abi_vm_rebuild_views(struct abi_vm *vm);
/* A closing guest_memfd file: the slots bound to it lose it (kvm_gmem_release) */
void abi_vm_gmem_unbind(struct abi_vm *vm, struct abi_gmem *g);

/* KVM_PRE_FAULT_MEMORY (abi/vcpu_prefault.c) */
long abi_vcpu_pre_fault_memory(struct abi_vcpu *v, unsigned long arg);

/* KVM_GET/SET_NESTED_STATE (abi/vcpu_nested.c); the size KVM_CAP_NESTED_STATE reports. */
long abi_nested_state_max_size(enum abi_vendor vendor);
long abi_vcpu_get_nested_state(struct abi_vcpu *v, unsigned long arg);
long abi_vcpu_set_nested_state(struct abi_vcpu *v, unsigned long arg);

#endif
