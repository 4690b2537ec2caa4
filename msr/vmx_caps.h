/* msr/ + emu/: the nested VMX capability values softkvm offers (Intel flavour) and the
 * control bits emu/vmx.c implements. Header-only, shared by msr/h_vmx.c (the IA32_VMX_*
 * MSRs) and emu/vmx.c (VMXON / VM-entry checks). Bit names: SDM vol.3 appendix A and
 * 24.6-24.8; the derivation follows Linux 6.12 vmx/nested.c nested_vmx_setup_*_ctls. */
#ifndef SOFTKVM_MSR_VMX_CAPS_H
#define SOFTKVM_MSR_VMX_CAPS_H

#include "emu/cpu.h"

/* KVM's vmcs12 layout id and size (vmcs12.h VMCS12_REVISION, VMCS12_SIZE); memory type
 * WB (6); bit 54 INS/OUTS instruction information; bit 55 TRUE_* control MSRs. */
#define VMX_VMCS12_REVISION 0x11e57ed0u
#define VMX_VMCS12_SIZE 0x1000u
#define VMX_CAP_BASIC                                                                       \
    ((uint64_t)VMX_VMCS12_REVISION | (uint64_t)VMX_VMCS12_SIZE << 32 | 6ull << 50 |         \
     1ull << 54 | 1ull << 55)

/* pin-based controls (SDM 24.6.1) */
#define VMX_PIN_EXT_INTR (1u << 0)
#define VMX_PIN_NMI_EXITING (1u << 3)
#define VMX_PIN_VIRTUAL_NMIS (1u << 5)
#define VMX_PIN_PREEMPTION_TIMER (1u << 6)
#define VMX_PIN_ALWAYSON 0x16u /* default-1 bits 1, 2, 4 */
#define VMX_PIN_ALLOWED                                                                     \
    (VMX_PIN_ALWAYSON | VMX_PIN_EXT_INTR | VMX_PIN_NMI_EXITING | VMX_PIN_VIRTUAL_NMIS |     \
     VMX_PIN_PREEMPTION_TIMER)

/* primary processor-based controls (SDM 24.6.2) */
#define VMX_PROC_INTR_WINDOW (1u << 2)
#define VMX_PROC_TSC_OFFSET (1u << 3)
#define VMX_PROC_HLT (1u << 7)
#define VMX_PROC_INVLPG (1u << 9)
#define VMX_PROC_MWAIT (1u << 10)
#define VMX_PROC_RDPMC (1u << 11)
#define VMX_PROC_RDTSC (1u << 12)
#define VMX_PROC_CR3_LOAD (1u << 15)
#define VMX_PROC_CR3_STORE (1u << 16)
#define VMX_PROC_CR8_LOAD (1u << 19)
#define VMX_PROC_CR8_STORE (1u << 20)
#define VMX_PROC_TPR_SHADOW (1u << 21)
#define VMX_PROC_NMI_WINDOW (1u << 22)
#define VMX_PROC_MOV_DR (1u << 23)
#define VMX_PROC_UNCOND_IO (1u << 24)
#define VMX_PROC_IO_BITMAPS (1u << 25)
#define VMX_PROC_MTF (1u << 27)
#define VMX_PROC_MSR_BITMAPS (1u << 28)
#define VMX_PROC_MONITOR (1u << 29)
#define VMX_PROC_PAUSE (1u << 30)
#define VMX_PROC_SECONDARY (1u << 31)
#define VMX_PROC_ALWAYSON 0x0401e172u /* default-1 bits 1, 4-6, 8, 13-16, 26 */
/* KVM frees CR3-load/store exiting in the TRUE MSR */
#define VMX_PROC_DEFAULT1 (VMX_PROC_ALWAYSON & ~(VMX_PROC_CR3_LOAD | VMX_PROC_CR3_STORE))
/* not offered: TPR shadow (no virtual-APIC page), monitor trap flag */
#define VMX_PROC_ALLOWED                                                                    \
    (VMX_PROC_ALWAYSON | VMX_PROC_INTR_WINDOW | VMX_PROC_TSC_OFFSET | VMX_PROC_HLT |        \
     VMX_PROC_INVLPG | VMX_PROC_MWAIT | VMX_PROC_RDPMC | VMX_PROC_RDTSC | VMX_PROC_CR3_LOAD | \
     VMX_PROC_CR3_STORE | VMX_PROC_CR8_LOAD | VMX_PROC_CR8_STORE | VMX_PROC_NMI_WINDOW |    \
     VMX_PROC_MOV_DR | VMX_PROC_UNCOND_IO | VMX_PROC_IO_BITMAPS | VMX_PROC_MSR_BITMAPS |    \
     VMX_PROC_MONITOR | VMX_PROC_PAUSE | VMX_PROC_SECONDARY)

/* secondary processor-based controls (SDM 24.6.2). Offered: virtualize APIC accesses
 * (every access to the APIC-access page exits: no TPR shadow or APIC-register
 * virtualization behind it), EPT (4-level, WB, no A/D),
 * descriptor-table exiting, VPID (the TLB is untagged and flushed at every transition),
 * WBINVD exiting, VMCS shadowing (emulated as KVM does). Not: unrestricted guest, PML,
 * VMFUNC, APIC virtualization, and the
 * controls KVM drops for features softkvm's CPUID lacks (RDTSCP, INVPCID, XSAVES,
 * RDRAND/RDSEED exiting, WAITPKG). */
#define VMX_PROC2_APIC_ACCESS (1u << 0)
#define VMX_PROC2_EPT (1u << 1)
#define VMX_PROC2_DESC (1u << 2)
#define VMX_PROC2_RDTSCP (1u << 3)
#define VMX_PROC2_VPID (1u << 5)
#define VMX_PROC2_WBINVD (1u << 6)
#define VMX_PROC2_UNRESTRICTED (1u << 7)
#define VMX_PROC2_SHADOW_VMCS (1u << 14)
#define VMX_PROC2_TSC_SCALING (1u << 25)
#define VMX_PROC2_ALLOWED                                                                   \
    (VMX_PROC2_APIC_ACCESS | VMX_PROC2_EPT | VMX_PROC2_DESC | VMX_PROC2_VPID | VMX_PROC2_WBINVD | \
     VMX_PROC2_SHADOW_VMCS | VMX_PROC2_TSC_SCALING)

/* VM-exit controls (SDM 24.7.1) */
#define VMX_EXIT_SAVE_DEBUG (1u << 2)
#define VMX_EXIT_HOST_ADDR_SPACE (1u << 9)
#define VMX_EXIT_LOAD_PERF_GLOBAL (1u << 12)
#define VMX_EXIT_ACK_INTR (1u << 15)
#define VMX_EXIT_SAVE_PAT (1u << 18)
#define VMX_EXIT_LOAD_PAT (1u << 19)
#define VMX_EXIT_SAVE_EFER (1u << 20)
#define VMX_EXIT_LOAD_EFER (1u << 21)
#define VMX_EXIT_SAVE_PREEMPT (1u << 22)
#define VMX_EXIT_ALWAYSON 0x36dffu /* default-1 bits 0-8, 10, 11, 13, 14, 16, 17 */
#define VMX_EXIT_DEFAULT1 (VMX_EXIT_ALWAYSON & ~VMX_EXIT_SAVE_DEBUG)
#define VMX_EXIT_ALLOWED                                                                    \
    (VMX_EXIT_ALWAYSON | VMX_EXIT_HOST_ADDR_SPACE | VMX_EXIT_ACK_INTR | VMX_EXIT_SAVE_PAT |  \
     VMX_EXIT_LOAD_PAT | VMX_EXIT_SAVE_EFER | VMX_EXIT_LOAD_EFER | VMX_EXIT_SAVE_PREEMPT)

/* VM-entry controls (SDM 24.8.1) */
#define VMX_ENTRY_LOAD_DEBUG (1u << 2)
#define VMX_ENTRY_IA32E (1u << 9)
#define VMX_ENTRY_SMM (1u << 10)
#define VMX_ENTRY_DUAL_MONITOR (1u << 11)
#define VMX_ENTRY_LOAD_PERF_GLOBAL (1u << 13)
#define VMX_ENTRY_LOAD_PAT (1u << 14)
#define VMX_ENTRY_LOAD_EFER (1u << 15)
#define VMX_ENTRY_ALWAYSON 0x11ffu /* default-1 bits 0-8, 12 */
#define VMX_ENTRY_DEFAULT1 (VMX_ENTRY_ALWAYSON & ~VMX_ENTRY_LOAD_DEBUG)
#define VMX_ENTRY_ALLOWED                                                                   \
    (VMX_ENTRY_ALWAYSON | VMX_ENTRY_IA32E | VMX_ENTRY_LOAD_PAT | VMX_ENTRY_LOAD_EFER)

/* IA32_VMX_MISC: preemption timer rate 5 (TSC >> 5, KVM's emulated rate), EFER.LMA saved
 * into the IA-32e entry control, HLT activity state, VMWRITE to exit-information fields.
 * Not offered: wait-for-SIPI and shutdown activity states, CR3-target values (count 0). */
#define VMX_MISC_TIMER_RATE 5u
#define VMX_CAP_MISC (VMX_MISC_TIMER_RATE | 1u << 5 | 1u << 6 | 1u << 29)

#define VMX_CR0_FIXED0 0x80000021ull /* PE NE PG (nested_vmx_setup_cr_fixed) */
#define VMX_CR4_FIXED0 0x2000ull     /* VMXE */
/* CR4 bits softkvm's supported CPUID allows (VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR
 * OSXMMEXCPT VMXE FSGSBASE OSXSAVE): the system-fd value; per vCPU it follows CPUID */
#define VMX_CR4_FIXED1_DEFAULT 0x527ffull
/* highest field index of the vmcs12 field table (emu/vmcs.c), nested_vmx_calc_vmcs_enum_msr */
#define VMX_CAP_VMCS_ENUM 0x32ull
/* EPT (nested_vmx_setup_secondary_ctls): execute-only, 4-level walks, WB EPTP, 2 MiB and
 * 1 GiB pages, INVEPT single-context and global; no A/D flags (KVM's enable_ept_ad_bits
 * off), no 5-level walks. INVVPID with all four extents. */
#define VMX_EPT_EXEC_ONLY (1ull << 0)
#define VMX_EPT_WALK_4 (1ull << 6)
#define VMX_EPT_WB (1ull << 14)
#define VMX_EPT_2M (1ull << 16)
#define VMX_EPT_1G (1ull << 17)
#define VMX_EPT_INVEPT (1ull << 20)
#define VMX_EPT_AD (1ull << 21)
#define VMX_EPT_EXTENT_CONTEXT (1ull << 25)
#define VMX_EPT_EXTENT_GLOBAL (1ull << 26)
#define VMX_CAP_EPT_VPID                                                                    \
    (VMX_EPT_EXEC_ONLY | VMX_EPT_WALK_4 | VMX_EPT_WB | VMX_EPT_2M | VMX_EPT_1G | VMX_EPT_INVEPT | \
     VMX_EPT_EXTENT_CONTEXT | VMX_EPT_EXTENT_GLOBAL | 0x0f01ull << 32)

/* msr/h_vmx.c */
void msr_vmx_caps_default(struct emu_vmx_caps *c);
/* 0 and *val for 0x480-0x491, 1 otherwise (vmx_get_vmx_msr) */
int msr_vmx_cap_read(const struct emu_vmx_caps *c, uint32_t index, uint64_t *val);

#endif
