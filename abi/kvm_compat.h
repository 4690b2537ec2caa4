/* abi/: the ONE compat header for KVM ABI items newer than Debian 12's <linux/kvm.h>
 * (a 6.1-era header). Values and layouts mirror Linux 6.12 uapi; every struct has
 * _Static_asserts on size and offsets so a mismatch fails the build.
 * Append-only: others may add items at the end. */
#ifndef SOFTKVM_ABI_KVM_COMPAT_H
#define SOFTKVM_ABI_KVM_COMPAT_H

#include <stddef.h>
#include <linux/kvm.h>

/* ---- Linux 6.8: KVM_SET_USER_MEMORY_REGION2 / guest_memfd (api.rst 4.141) ---- */
#ifndef KVM_SET_USER_MEMORY_REGION2
struct kvm_userspace_memory_region2 {
    __u32 slot;
    __u32 flags;
    __u64 guest_phys_addr;
    __u64 memory_size;
    __u64 userspace_addr;
    __u64 guest_memfd_offset;
    __u32 guest_memfd;
    __u32 pad1;
    __u64 pad2[14];
};
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#endif
_Static_assert(sizeof(struct kvm_userspace_memory_region2) == 160, "region2 size");
_Static_assert(offsetof(struct kvm_userspace_memory_region2, guest_memfd_offset) == 32, "r2 gmo");
_Static_assert(offsetof(struct kvm_userspace_memory_region2, guest_memfd) == 40, "r2 gmfd");
_Static_assert(offsetof(struct kvm_userspace_memory_region2, pad2) == 48, "r2 pad2");

#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD (1UL << 2)
#endif

/* ---- capabilities numbered after 6.1 ---- */
#ifndef KVM_CAP_PMU_EVENT_MASKED_EVENTS
#define KVM_CAP_PMU_EVENT_MASKED_EVENTS 226 /* 6.12 uapi kvm.h */
#endif
#ifndef KVM_CAP_MEMORY_FAULT_INFO
#define KVM_CAP_MEMORY_FAULT_INFO 232
#endif
#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif
#ifndef KVM_CAP_X86_APIC_BUS_CYCLES_NS
#define KVM_CAP_X86_APIC_BUS_CYCLES_NS 237
#endif

/* ---- VM types (KVM_CREATE_VM arg on x86, 6.8+) ---- */
#ifndef KVM_X86_DEFAULT_VM
#define KVM_X86_DEFAULT_VM 0
#define KVM_X86_SW_PROTECTED_VM 1
#endif

/* ---- KVM paravirt ABI (include/uapi/linux/kvm_para.h, asm/kvm_para.h) ---- */
#ifndef KVM_HC_MAP_GPA_RANGE
#define KVM_HC_MAP_GPA_RANGE 12
#endif

/* ---- Linux 6.12 uapi asm/kvm.h: quirks newer than 6.1 ---- */
#ifndef KVM_X86_QUIRK_SLOT_ZAP_ALL
#define KVM_X86_QUIRK_SLOT_ZAP_ALL (1 << 7)
#endif
#ifndef KVM_X86_QUIRK_STUFF_FEATURE_MSRS
#define KVM_X86_QUIRK_STUFF_FEATURE_MSRS (1 << 8)
#endif
_Static_assert(KVM_X86_QUIRK_SLOT_ZAP_ALL == 0x80 && KVM_X86_QUIRK_STUFF_FEATURE_MSRS == 0x100,
               "6.12 quirk bits");

/* ---- Linux 6.2-6.10: Xen HVM items (arch/x86/include/uapi/asm/kvm.h) ---- */
#ifndef KVM_XEN_HVM_CONFIG_RUNSTATE_UPDATE_FLAG
#define KVM_XEN_HVM_CONFIG_RUNSTATE_UPDATE_FLAG (1 << 6)
#endif
#ifndef KVM_XEN_HVM_CONFIG_PVCLOCK_TSC_UNSTABLE
#define KVM_XEN_HVM_CONFIG_PVCLOCK_TSC_UNSTABLE (1 << 7)
#endif
#ifndef KVM_XEN_HVM_CONFIG_SHARED_INFO_HVA
#define KVM_XEN_HVM_CONFIG_SHARED_INFO_HVA (1 << 8)
#endif
#ifndef KVM_XEN_INVALID_GFN
#define KVM_XEN_INVALID_GFN ((__u64)-1)
#endif
#ifndef KVM_XEN_INVALID_GPA
#define KVM_XEN_INVALID_GPA ((__u64)-1)
#endif
#ifndef KVM_XEN_ATTR_TYPE_RUNSTATE_UPDATE_FLAG
#define KVM_XEN_ATTR_TYPE_RUNSTATE_UPDATE_FLAG 0x5
#endif
#ifndef KVM_XEN_ATTR_TYPE_SHARED_INFO_HVA
#define KVM_XEN_ATTR_TYPE_SHARED_INFO_HVA 0x6
#endif
#ifndef KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO_HVA
#define KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO_HVA 0x9
#endif
/* 6.12 adds `hva` next to shared_info.gfn and to the vCPU attribute's gpa, in the same
 * unions: the older header reaches them through those members. */
#define ABI_XEN_SHINFO_HVA(a) ((a)->u.shared_info.gfn)
#define ABI_XEN_VCPU_HVA(a) ((a)->u.gpa)
#define ABI_XEN_RUNSTATE_UPDATE_FLAG(a) ((a)->u.long_mode) /* the same u8 slot */
_Static_assert(sizeof(struct kvm_xen_hvm_attr) == 72, "kvm_xen_hvm_attr size");
_Static_assert(offsetof(struct kvm_xen_hvm_attr, u.shared_info.gfn) == 8, "shinfo gfn/hva");
_Static_assert(sizeof(struct kvm_xen_vcpu_attr) == 72, "kvm_xen_vcpu_attr size");
_Static_assert(offsetof(struct kvm_xen_vcpu_attr, u.gpa) == 8, "vcpu attr gpa/hva");

/* ---- Linux 6.11: KVM_PRE_FAULT_MEMORY (api.rst 4.143) ---- */
#ifndef KVM_CAP_PRE_FAULT_MEMORY
#define KVM_CAP_PRE_FAULT_MEMORY 236
#endif
#ifndef KVM_PRE_FAULT_MEMORY
struct kvm_pre_fault_memory {
    __u64 gpa;
    __u64 size;
    __u64 flags;
    __u64 padding[5];
};
#define KVM_PRE_FAULT_MEMORY _IOWR(KVMIO, 0xd5, struct kvm_pre_fault_memory)
#endif
_Static_assert(sizeof(struct kvm_pre_fault_memory) == 64, "kvm_pre_fault_memory size");
_Static_assert(offsetof(struct kvm_pre_fault_memory, flags) == 16, "pre_fault flags");

/* ---- Linux 6.8: KVM_CREATE_GUEST_MEMFD (api.rst 4.141) ---- */
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CREATE_GUEST_MEMFD
struct kvm_create_guest_memfd {
    __u64 size;
    __u64 flags;
    __u64 reserved[6];
};
#define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)
#endif
_Static_assert(sizeof(struct kvm_create_guest_memfd) == 64, "kvm_create_guest_memfd size");

/* ---- Linux 6.8: memory attributes and KVM_EXIT_MEMORY_FAULT (api.rst 4.141, 5) ---- */
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#endif
#ifndef KVM_SET_MEMORY_ATTRIBUTES
struct kvm_memory_attributes {
    __u64 address;
    __u64 size;
    __u64 attributes;
    __u64 flags;
};
#define KVM_SET_MEMORY_ATTRIBUTES _IOW(KVMIO, 0xd2, struct kvm_memory_attributes)
#define KVM_MEMORY_ATTRIBUTE_PRIVATE (1ULL << 3)
#endif
_Static_assert(sizeof(struct kvm_memory_attributes) == 32, "kvm_memory_attributes size");
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)
#endif
/* kvm_run.memory_fault, a member of the exit union (6.1's struct kvm_run lacks it) */
struct abi_kvm_memory_fault {
    __u64 flags;
    __u64 gpa;
    __u64 size;
};
_Static_assert(offsetof(struct kvm_run, mmio) == 32, "kvm_run exit union offset");
/* kvm_run.hypercall.flags (6.12) overlays 6.1's longmode + pad */
#ifndef KVM_EXIT_HYPERCALL_LONG_MODE
#define KVM_EXIT_HYPERCALL_LONG_MODE (1ULL << 0)
#endif

#endif
