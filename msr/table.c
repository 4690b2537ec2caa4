/* msr/: THE table of MSRs KVM (Linux 6.12) emulates in the kernel, per flavour.
 * One row per MSR (or contiguous range): name, flavours, list membership, CPUID gate,
 * handlers and the rules in one line (printed by tools/msr-explain).
 * A NULL getter/setter means KVM has no such access: it is "unsupported" (exit reason
 * UNKNOWN; host reads give 0 and host writes of 0 succeed if the MSR is advertised). */
#include <stddef.h>

#include "msr/handlers.h"

#define I MSR_V_INTEL
#define A MSR_V_AMD
#define B MSR_V_ALL
#define S MSR_F_SAVE
#define F MSR_F_FEATURE
/* Hyper-V MSRs: abi/hyperv_msr.c decides (hv_check_msr_access, kvm_hv_{get,set}_msr) */
#define HV_RULES "Hyper-V (abi/hyperv_msr.c): guest needs Hyper-V CPUID; HV CPUID bit if enforced"

const struct msr_entry msr_table[] = {
    {0x00000000, 0x00000001, "IA32_P5_MC_ADDR/TYPE", B, 0, GATE_NONE, msr_get_mce, msr_set_mce,
     "reads 0; writes unsupported"},
    {MSR_IA32_TSC, MSR_IA32_TSC, "IA32_TSC", B, S, GATE_NONE, msr_get_tsc, msr_set_tsc,
     "host TSC + offset; guest write also moves TSC_ADJUST, host write does not"},
    {MSR_KVM_WALL_CLOCK, MSR_KVM_WALL_CLOCK, "KVM_WALL_CLOCK", B, S, GATE_PV_CLOCKSOURCE,
     msr_get_pv_wall_clock, msr_set_pv_wall_clock, "VM-wide; write fills pvclock_wall_clock at gpa"},
    {MSR_KVM_SYSTEM_TIME, MSR_KVM_SYSTEM_TIME, "KVM_SYSTEM_TIME", B, S, GATE_PV_CLOCKSOURCE,
     msr_get_pv_system_time, msr_set_pv_system_time, "bit0 enables pvclock_vcpu_time_info at gpa"},
    {MSR_IA32_PLATFORM_ID, MSR_IA32_PLATFORM_ID, "IA32_PLATFORM_ID", B, 0, GATE_NONE, msr_get_fixed,
     NULL, "reads 0"},
    {MSR_IA32_APICBASE, MSR_IA32_APICBASE, "IA32_APIC_BASE", B, 0, GATE_NONE, msr_get_apic_base,
     msr_set_apic_base, "reserved bits/invalid mode fail; guest: no x2APIC->xAPIC, no disabled->x2APIC"},
    {0x0000002a, 0x0000002a, "EBL_CR_POWERON", B, 0, GATE_NONE, msr_get_fixed, NULL, "reads 0"},
    {MSR_EBC_FREQUENCY_ID, MSR_EBC_FREQUENCY_ID, "EBC_FREQUENCY_ID", B, 0, GATE_NONE, msr_get_fixed,
     NULL, "reads 1<<24"},
    {MSR_SMI_COUNT, MSR_SMI_COUNT, "SMI_COUNT", B, S, GATE_NONE, msr_get_smi_count,
     msr_set_smi_count, "guest read-only"},
    {MSR_IA32_FEAT_CTL, MSR_IA32_FEAT_CTL, "IA32_FEATURE_CONTROL", I, S, GATE_NONE,
     msr_get_feature_control, msr_set_feature_control,
     "host: bits 0,1,2,17,18,20; guest: LOCKED, SGX/LMCE per CPUID/MCG_CAP, VMX bits only with nested VMX (off), #GP once LOCKED; host 0 leaves VMX"},
    {MSR_IA32_TSC_ADJUST, MSR_IA32_TSC_ADJUST, "IA32_TSC_ADJUST", B, S, GATE_NONE,
     msr_get_tsc_adjust, msr_set_tsc_adjust,
     "writes ignored without CPUID.7.0:EBX[1]; guest write shifts the TSC"},
    {MSR_IA32_SPEC_CTRL, MSR_IA32_SPEC_CTRL, "IA32_SPEC_CTRL", B, S, GATE_SPEC_CTRL,
     msr_get_spec_ctrl, msr_set_spec_ctrl,
     "IBRS|STIBP|SSBD; first non-zero guest write stops interception"},
    {MSR_IA32_PRED_CMD, MSR_IA32_PRED_CMD, "IA32_PRED_CMD", B, 0, GATE_PRED_CMD, NULL,
     msr_set_pred_cmd, "write-only; IBPB (bit 0)"},
    {MSR_IA32_UCODE_WRITE, MSR_IA32_UCODE_WRITE, "IA32_UCODE_WRITE", B, 0, GATE_NONE, NULL,
     msr_set_ignore, "writes dropped"},
    {MSR_IA32_UCODE_REV, MSR_IA32_UCODE_REV, "IA32_UCODE_REV", B, S | F, GATE_NONE,
     msr_get_ucode_rev, msr_set_ucode_rev, "host sets; guest writes dropped"},
    {MSR_IA32_SMBASE, MSR_IA32_SMBASE, "IA32_SMBASE", B, S, GATE_NONE, msr_get_smbase,
     msr_set_smbase, "host-only"},
    {0x000000c1, 0x000000c4, "IA32_PERFCTR0-3", I, S, GATE_NONE, msr_get_pmu, msr_set_pmu,
     "vPMU (pmu.c): counters of the PMU CPUID/PERF_CAPABILITIES give, else #GP; P6/K7 0-1 read 0, drop writes"},
    {0x000000c1, 0x000000c4, "IA32_PERFCTR0-3", A, 0, GATE_NONE, msr_get_pmu, msr_set_pmu,
     "no Intel PMU on AMD: P6_PERFCTR0-1 read 0 and drop writes, the others #GP"},
    {0x000000c5, 0x000000c8, "IA32_PERFCTR4-7", I, 0, GATE_NONE, msr_get_pmu, msr_set_pmu, "vPMU (pmu.c): counters of the PMU CPUID/PERF_CAPABILITIES give, else #GP; P6/K7 0-1 read 0, drop writes"},
    {0x000000cd, 0x000000cd, "FSB_FREQ", B, 0, GATE_NONE, msr_get_fixed, NULL, "reads 3"},
    {MSR_PLATFORM_INFO, MSR_PLATFORM_INFO, "PLATFORM_INFO", B, S, GATE_NONE,
     msr_get_platform_info, msr_set_platform_info,
     "guest read needs KVM_CAP_MSR_PLATFORM_INFO; host-only write"},
    {MSR_IA32_UMWAIT_CONTROL, MSR_IA32_UMWAIT_CONTROL, "IA32_UMWAIT_CONTROL", I, 0, GATE_WAITPKG,
     msr_get_umwait, msr_set_umwait, "bit 1 and 63:32 reserved"},
    {MSR_MTRRcap, MSR_MTRRcap, "IA32_MTRRCAP", B, 0, GATE_NONE, msr_get_mtrr, msr_set_mtrr,
     "read-only 0x508"},
    {MSR_IA32_ARCH_CAPABILITIES, MSR_IA32_ARCH_CAPABILITIES, "IA32_ARCH_CAPABILITIES", B, S | F,
     GATE_ARCH_CAP_READ, msr_get_arch_cap, msr_set_arch_cap, "host-only write"},
    {MSR_IA32_FLUSH_CMD, MSR_IA32_FLUSH_CMD, "IA32_FLUSH_CMD", B, 0, GATE_FLUSH_L1D, NULL,
     msr_set_flush_cmd, "write-only; L1D_FLUSH (bit 0)"},
    {MSR_IA32_BBL_CR_CTL3, MSR_IA32_BBL_CR_CTL3, "BBL_CR_CTL3", B, 0, GATE_NONE, msr_get_fixed,
     msr_set_ignore, "reads 0xbe702111, writes dropped"},
    {0x00000140, 0x00000140, "MISC_FEATURES_ENABLES", B, S, GATE_NONE, msr_get_misc_features,
     msr_set_misc_features, "bit 0 (CPUID faulting) only if PLATFORM_INFO bit 31"},
    {MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_EIP, "IA32_SYSENTER_CS/ESP/EIP", B, S, GATE_NONE,
     msr_get_syscall, msr_set_syscall, "ESP/EIP canonicalised, CS 32-bit"},
    {MSR_IA32_MCG_CAP, MSR_IA32_MCG_CAP, "IA32_MCG_CAP", B, 0, GATE_NONE, msr_get_mce,
     msr_set_mce, "read-only (set by KVM_X86_SETUP_MCE)"},
    {MSR_IA32_MCG_STATUS, MSR_IA32_MCG_CTL, "IA32_MCG_STATUS/CTL", B, S, GATE_NONE, msr_get_mce,
     msr_set_mce, "CTL needs MCG_CTL_P (guest), only 0 or ~0"},
    {0x00000186, 0x00000189, "IA32_PERFEVTSEL0-3", I, S, GATE_NONE, msr_get_pmu, msr_set_pmu,
     "vPMU (pmu.c): counters of the PMU CPUID/PERF_CAPABILITIES give, else #GP; P6/K7 0-1 read 0, drop writes"},
    {0x00000186, 0x00000189, "IA32_PERFEVTSEL0-3", A, 0, GATE_NONE, msr_get_pmu, msr_set_pmu,
     "no Intel PMU on AMD: P6_EVNTSEL0-1 read 0 and drop writes, the others #GP"},
    {0x0000018a, 0x0000018d, "IA32_PERFEVTSEL4-7", I, 0, GATE_NONE, msr_get_pmu, msr_set_pmu, "vPMU (pmu.c): counters of the PMU CPUID/PERF_CAPABILITIES give, else #GP; P6/K7 0-1 read 0, drop writes"},
    {MSR_IA32_PERF_STATUS, MSR_IA32_PERF_CTL, "IA32_PERF_STATUS/CTL", B, 0, GATE_NONE,
     msr_get_fixed, NULL, "fixed values"},
    {MSR_IA32_MISC_ENABLE, MSR_IA32_MISC_ENABLE, "IA32_MISC_ENABLE", B, S, GATE_NONE,
     msr_get_misc_enable, msr_set_misc_enable, "guest: bits 11,12 read-only, bit 7 ignored"},
    {MSR_IA32_XFD, MSR_IA32_XFD_ERR, "IA32_XFD/XFD_ERR", B, 0, GATE_XFD, msr_get_xfd,
     msr_set_xfd, "no dynamic XSAVE features: only 0"},
    {MSR_IA32_DEBUGCTLMSR, MSR_IA32_DEBUGCTLMSR, "IA32_DEBUGCTL", B, S, GATE_NONE,
     msr_get_debugctl, msr_set_debugctl, "VMX: LBR/BTF dropped, other bits refused; SVM (no lbrv): reads 0, writes dropped"},
    {MSR_IA32_LASTBRANCHFROMIP, MSR_IA32_LASTINTTOIP, "LBR from/to", B, S, GATE_NONE,
     msr_get_fixed, NULL, "reads 0 (no LBR virtualisation)"},
    {MSR_IA32_POWER_CTL, MSR_IA32_POWER_CTL, "IA32_POWER_CTL", B, S, GATE_NONE,
     msr_get_power_ctl, msr_set_power_ctl, "stored"},
    {MSR_MTRRphysBase0, MSR_MTRRfix4K_F8000, "MTRR var/fixed", B, 0, GATE_NONE, msr_get_mtrr,
     msr_set_mtrr, "memory types 0,1,4,5,6; reserved bits above MAXPHYADDR"},
    {MSR_IA32_CR_PAT, MSR_IA32_CR_PAT, "IA32_PAT", B, S, GATE_NONE, msr_get_pat, msr_set_pat,
     "types 2,3 and bits 7:3 of each entry invalid"},
    {MSR_IA32_MC0_CTL2, MSR_IA32_MC0_CTL2 + MSR_MCE_BANKS - 1, "IA32_MCi_CTL2", B, 0, GATE_NONE,
     msr_get_mce, msr_set_mce, "needs MCG_CMCI_P (guest); CMCI_EN|threshold"},
    {MSR_MTRRdefType, MSR_MTRRdefType, "IA32_MTRR_DEF_TYPE", B, 0, GATE_NONE, msr_get_mtrr,
     msr_set_mtrr, "bits 0-7,10,11"},
    {0x00000309, 0x0000030b, "IA32_FIXED_CTR0-2", I, S, GATE_NONE, msr_get_pmu, msr_set_pmu,
     "vPMU (pmu.c): PMU v2+, counters CPUID.0AH:EDX gives, else #GP"},
    {MSR_IA32_PERF_CAPABILITIES, MSR_IA32_PERF_CAPABILITIES, "IA32_PERF_CAPABILITIES", B, S | F,
     GATE_PDCM_READ, msr_get_perf_cap, msr_set_perf_cap, "host-only write; Intel: FW_WRITE (bit 13) only, AMD: 0"},
    {0x0000038d, 0x0000038f, "IA32_FIXED_CTR_CTRL/PERF_GLOBAL_STATUS/CTRL", I, S, GATE_NONE,
     msr_get_pmu, msr_set_pmu, "vPMU (pmu.c): PMU v2+; reserved bits #GP; STATUS guest read-only"},
    {0x00000390, 0x00000390, "IA32_PERF_GLOBAL_OVF_CTRL", I, 0, GATE_NONE, msr_get_pmu,
     msr_set_pmu, "vPMU (pmu.c): PMU v2+; guest write clears GLOBAL_STATUS bits, reads 0"},
    {MSR_IA32_MC0_CTL, MSR_IA32_MC0_CTL + 4 * MSR_MCE_BANKS - 1, "IA32_MCi_CTL/STATUS/ADDR/MISC",
     B, 0, GATE_NONE, msr_get_mce, msr_set_mce, "banks from MCG_CAP; CTL 0/~0; STATUS: guest writes only 0, unless AMD-vendor guest with HWCR.McStatusWrEn"},
    {0x00000480, 0x00000480, "IA32_VMX_BASIC", I, S | F, GATE_NONE, msr_get_vmx_cap,
     msr_set_vmx_cap, "nested VMX caps (h_vmx.c): guest read-only with CPUID.VMX; host restore rules, EBUSY in VMX operation"},
    {0x00000481, 0x00000484, "IA32_VMX_PINBASED/PROCBASED/EXIT/ENTRY_CTLS", I, F, GATE_NONE, msr_get_vmx_cap,
     msr_set_vmx_cap, "nested VMX caps (h_vmx.c): guest read-only with CPUID.VMX; host restore rules, EBUSY in VMX operation"},
    {0x00000485, 0x00000486, "IA32_VMX_MISC/CR0_FIXED0", I, S | F, GATE_NONE, msr_get_vmx_cap,
     msr_set_vmx_cap, "nested VMX caps (h_vmx.c): guest read-only with CPUID.VMX; host restore rules, EBUSY in VMX operation"},
    {0x00000487, 0x00000487, "IA32_VMX_CR0_FIXED1", I, F, GATE_NONE, msr_get_vmx_cap,
     msr_set_vmx_cap, "nested VMX caps (h_vmx.c): guest read-only with CPUID.VMX; host restore rules, EBUSY in VMX operation"},
    {0x00000488, 0x00000488, "IA32_VMX_CR4_FIXED0", I, S | F, GATE_NONE, msr_get_vmx_cap,
     msr_set_vmx_cap, "nested VMX caps (h_vmx.c): guest read-only with CPUID.VMX; host restore rules, EBUSY in VMX operation"},
    {0x00000489, 0x00000489, "IA32_VMX_CR4_FIXED1", I, F, GATE_NONE, msr_get_vmx_cap,
     msr_set_vmx_cap, "nested VMX caps (h_vmx.c): guest read-only with CPUID.VMX; host restore rules, EBUSY in VMX operation"},
    {0x0000048a, 0x00000491, "IA32_VMX_VMCS_ENUM..VMFUNC", I, S | F, GATE_NONE, msr_get_vmx_cap,
     msr_set_vmx_cap, "nested VMX caps (h_vmx.c): guest read-only with CPUID.VMX; host restore rules, EBUSY in VMX operation"},
    {0x000004c1, 0x000004c8, "IA32_A_PMC0-7", I, 0, GATE_NONE, msr_get_pmu, msr_set_pmu,
     "vPMU (pmu.c): full-width counter writes, with PERF_CAPABILITIES.FW_WRITE (bit 13)"},
    {MSR_IA32_MCG_EXT_CTL, MSR_IA32_MCG_EXT_CTL, "IA32_MCG_EXT_CTL", I, S, GATE_NONE,
     msr_get_mcg_ext_ctl, msr_set_mcg_ext_ctl, "guest needs FEATURE_CONTROL.LMCE; bit 0"},
    {0x00000560, 0x00000561, "IA32_RTIT_OUTPUT_BASE/MASK", I, 0, GATE_NONE, msr_get_refused,
     msr_set_refused, "no Intel PT for guests: refused"},
    {0x00000570, 0x00000572, "IA32_RTIT_CTL/STATUS/CR3_MATCH", I, 0, GATE_NONE, msr_get_refused,
     msr_set_refused, "no Intel PT for guests: refused"},
    {0x00000580, 0x00000587, "IA32_RTIT_ADDR0_A-3_B", I, 0, GATE_NONE, msr_get_refused,
     msr_set_refused, "no Intel PT for guests: refused"},
    {0x00000606, 0x00000606, "RAPL_POWER_UNIT", B, 0, GATE_NONE, msr_get_fixed, NULL, "reads 0"},
    {0x00000611, 0x00000611, "PKG_ENERGY_STATUS", B, 0, GATE_NONE, msr_get_fixed, NULL, "reads 0"},
    {0x00000619, 0x00000619, "DRAM_ENERGY_STATUS", B, 0, GATE_NONE, msr_get_fixed, NULL, "reads 0"},
    {0x00000639, 0x00000639, "PP0_ENERGY_STATUS", B, 0, GATE_NONE, msr_get_fixed, NULL, "reads 0"},
    {0x00000641, 0x00000641, "PP1_ENERGY_STATUS", B, 0, GATE_NONE, msr_get_fixed, NULL, "reads 0"},
    {MSR_IA32_TSC_DEADLINE, MSR_IA32_TSC_DEADLINE, "IA32_TSC_DEADLINE", B, S, GATE_NONE,
     msr_get_tsc_deadline, msr_set_tsc_deadline, "owned by the LAPIC timer (hook)"},
    {MSR_X2APIC_FIRST, MSR_X2APIC_LAST, "x2APIC", B, 0, GATE_NONE, msr_get_x2apic, msr_set_x2apic,
     "never filtered; LAPIC hook in x2APIC mode, else fails"},
    {MSR_IA32_BNDCFGS, MSR_IA32_BNDCFGS, "IA32_BNDCFGS", I, 0, GATE_NONE, msr_get_refused,
     msr_set_refused, "no MPX: refused (host too)"},
    {MSR_IA32_XSS, MSR_IA32_XSS, "IA32_XSS", B, 0, GATE_XSAVES, msr_get_xss, msr_set_xss,
     "no supervisor XSAVE features: only 0"},
    {0x40000000, 0x40000003, "HV_GUEST_OS_ID/HYPERCALL/VP_INDEX/RESET", B, 0, GATE_NONE,
     msr_get_hyperv, msr_set_hyperv, HV_RULES},
    {0x40000010, 0x40000010, "HV_VP_RUNTIME", B, 0, GATE_NONE, msr_get_hyperv, msr_set_hyperv,
     HV_RULES},
    {0x40000020, 0x40000023, "HV_TIME_REF_COUNT/REFERENCE_TSC/TSC_FREQUENCY/APIC_FREQUENCY", B, 0,
     GATE_NONE, msr_get_hyperv, msr_set_hyperv, HV_RULES},
    {0x40000070, 0x40000073, "HV_EOI/ICR/TPR/VP_ASSIST_PAGE", B, 0, GATE_NONE, msr_get_hyperv,
     msr_set_hyperv, HV_RULES},
    {0x40000080, 0x40000084, "HV_SCONTROL/SVERSION/SIEFP/SIMP/EOM", B, 0, GATE_NONE,
     msr_get_hyperv, msr_set_hyperv, HV_RULES},
    {0x40000090, 0x4000009f, "HV_SINT0-15", B, 0, GATE_NONE, msr_get_hyperv, msr_set_hyperv,
     HV_RULES},
    {0x400000b0, 0x400000b7, "HV_STIMER0-3_CONFIG/COUNT", B, 0, GATE_NONE, msr_get_hyperv,
     msr_set_hyperv, HV_RULES},
    {0x400000f1, 0x400000f5, "HV_SYNDBG_CONTROL..PENDING_BUFFER", B, 0, GATE_NONE,
     msr_get_hyperv, msr_set_hyperv, HV_RULES},
    {0x400000ff, 0x400000ff, "HV_SYNDBG_OPTIONS", B, 0, GATE_NONE, msr_get_hyperv,
     msr_set_hyperv, HV_RULES},
    {0x40000100, 0x40000108, "HV_CRASH_P0-4/CTL/REENLIGHTENMENT/TSC_EMULATION", B, 0, GATE_NONE,
     msr_get_hyperv, msr_set_hyperv, HV_RULES},
    {0x40000118, 0x40000118, "HV_TSC_INVARIANT_CONTROL", B, 0, GATE_NONE, msr_get_hyperv,
     msr_set_hyperv, HV_RULES},
    {MSR_KVM_WALL_CLOCK_NEW, MSR_KVM_WALL_CLOCK_NEW, "KVM_WALL_CLOCK_NEW", B, S,
     GATE_PV_CLOCKSOURCE2, msr_get_pv_wall_clock, msr_set_pv_wall_clock, "as KVM_WALL_CLOCK"},
    {MSR_KVM_SYSTEM_TIME_NEW, MSR_KVM_SYSTEM_TIME_NEW, "KVM_SYSTEM_TIME_NEW", B, S,
     GATE_PV_CLOCKSOURCE2, msr_get_pv_system_time, msr_set_pv_system_time, "as KVM_SYSTEM_TIME"},
    {MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_EN, "KVM_ASYNC_PF_EN", B, S, GATE_PV_ASYNC_PF,
     msr_get_pv_async_pf, msr_set_pv_async_pf, "bits 5:4 reserved; needs in-kernel LAPIC"},
    {MSR_KVM_STEAL_TIME, MSR_KVM_STEAL_TIME, "KVM_STEAL_TIME", B, S, GATE_PV_STEAL_TIME,
     msr_get_pv_steal_time, msr_set_pv_steal_time, "64-byte aligned"},
    {MSR_KVM_PV_EOI_EN, MSR_KVM_PV_EOI_EN, "KVM_PV_EOI_EN", B, S, GATE_PV_EOI, msr_get_pv_eoi,
     msr_set_pv_eoi, "4-byte aligned, inside a memslot when enabled"},
    {MSR_KVM_POLL_CONTROL, MSR_KVM_POLL_CONTROL, "KVM_POLL_CONTROL", B, S, GATE_PV_POLL_CONTROL,
     msr_get_pv_poll, msr_set_pv_poll, "bit 0 only"},
    {MSR_KVM_ASYNC_PF_INT, MSR_KVM_ASYNC_PF_ACK, "KVM_ASYNC_PF_INT/ACK", B, S, GATE_PV_ASYNC_PF_INT,
     msr_get_pv_async_pf, msr_set_pv_async_pf, "INT: vector in bits 7:0; ACK reads 0"},
    {MSR_EFER, MSR_EFER, "IA32_EFER", B, 0, GATE_NONE, msr_get_efer, msr_set_efer,
     "reserved bits fail (SVM adds SVME/LMSLE/FFXSR/AUTOIBRS); guest: SVME/FFXSR/AUTOIBRS/LME/NX need CPUID, LME frozen while paging; LMA kept"},
    {MSR_STAR, MSR_SYSCALL_MASK, "STAR/LSTAR/CSTAR/SFMASK", B, S, GATE_NONE, msr_get_syscall,
     msr_set_syscall, "LSTAR/CSTAR must be canonical"},
    {MSR_FS_BASE, MSR_GS_BASE, "FS_BASE/GS_BASE", B, 0, GATE_NONE, msr_get_syscall,
     msr_set_syscall, "must be canonical (host too); saved via SREGS, not listed"},
    {MSR_KERNEL_GS_BASE, MSR_KERNEL_GS_BASE, "KERNEL_GS_BASE", B, S, GATE_NONE, msr_get_syscall,
     msr_set_syscall, "must be canonical (host too)"},
    {MSR_TSC_AUX, MSR_TSC_AUX, "TSC_AUX", B, S, GATE_RDTSCP_OR_RDPID, msr_get_tsc_aux,
     msr_set_tsc_aux, "Intel guests: bits 63:32 reserved; others: truncated"},
    {0xc0000104, 0xc0000104, "AMD64_TSC_RATIO", A, S, GATE_NONE, msr_get_tsc_ratio,
     msr_set_tsc_ratio, "host-only (guest lacks TSCRATEMSR); bits 63:40 reserved"},
    {MSR_K7_EVNTSEL0, MSR_K7_EVNTSEL0 + 7, "K7_EVNTSEL0-3/PERFCTR0-3", A, S, GATE_NONE,
     msr_get_pmu, msr_set_pmu, "vPMU (pmu.c): the four legacy AMD counters; reserved select bits dropped"},
    {MSR_K7_EVNTSEL0, MSR_K7_EVNTSEL0 + 7, "K7_EVNTSEL0-3/PERFCTR0-3", I, 0, GATE_NONE,
     msr_get_pmu, msr_set_pmu, "no AMD PMU on Intel: reads 0, writes dropped"},
    {MSR_K8_SYSCFG, MSR_K8_SYSCFG, "AMD64_SYSCFG", B, 0, GATE_NONE, msr_get_fixed, NULL, "reads 0"},
    {MSR_K7_HWCR, MSR_K7_HWCR, "K7_HWCR", B, S, GATE_NONE, msr_get_hwcr, msr_set_hwcr,
     "bits 18 (McStatusWrEn: AMD-vendor guests may write MCi_STATUS),24 writable; 3,6,8 ignored; others fail"},
    {MSR_K7_CLK_CTL, MSR_K7_CLK_CTL, "K7_CLK_CTL", B, 0, GATE_NONE, msr_get_fixed, msr_set_ignore,
     "reads 0x20000000, writes dropped"},
    {MSR_AMD64_NB_CFG, MSR_AMD64_NB_CFG, "AMD64_NB_CFG", B, 0, GATE_NONE, msr_get_fixed,
     msr_set_ignore, "reads 0, writes dropped"},
    {0xc0010020, 0xc0010020, "AMD64_PATCH_LOADER", B, 0, GATE_NONE, NULL, msr_set_ignore,
     "writes dropped"},
    {MSR_K8_INT_PENDING_MSG, MSR_K8_INT_PENDING_MSG, "K8_INT_PENDING_MSG", B, 0, GATE_NONE,
     msr_get_fixed, NULL, "reads 0"},
    {0xc0010058, 0xc0010058, "FAM10H_MMIO_CONF_BASE", B, 0, GATE_NONE, msr_get_fixed,
     msr_set_zero_only, "reads 0; only 0 writable"},
    {0xc0010112, 0xc0010113, "K8_TSEG_ADDR/MASK", B, 0, GATE_NONE, msr_get_fixed, NULL, "reads 0"},
    {MSR_VM_CR, MSR_VM_CR, "VM_CR", A, 0, GATE_NONE, msr_get_vm_cr, msr_set_vm_cr,
     "bits 0-4; LOCK/SVMDIS frozen once SVMDIS; SVMDIS with EFER.SVME fails (after storing)"},
    {MSR_VM_IGNNE, MSR_VM_IGNNE, "VM_IGNNE", A, 0, GATE_NONE, NULL, msr_set_ignore,
     "writes dropped"},
    {MSR_VM_HSAVE_PA, MSR_VM_HSAVE_PA, "VM_HSAVE_PA", A, S, GATE_NONE, msr_get_hsave,
     msr_set_hsave, "guest: page aligned below MAXPHYADDR"},
    {MSR_VM_HSAVE_PA, MSR_VM_HSAVE_PA, "VM_HSAVE_PA", I, 0, GATE_NONE, msr_get_fixed,
     msr_set_ignore, "VMX: reads 0, writes dropped"},
    {MSR_AMD64_VIRT_SPEC_CTRL, MSR_AMD64_VIRT_SPEC_CTRL, "AMD64_VIRT_SPEC_CTRL", A, S,
     GATE_VIRT_SSBD, msr_get_virt_spec_ctrl, msr_set_virt_spec_ctrl, "SSBD (bit 2) only"},
    {MSR_AMD64_OSVW_ID_LENGTH, MSR_AMD64_OSVW_STATUS, "AMD64_OSVW_ID_LENGTH/STATUS", B, 0,
     GATE_OSVW, msr_get_osvw, msr_set_osvw, "needs CPUID OSVW even for the host"},
    {MSR_AMD64_DC_CFG, 0xc0011023, "AMD64_DC_CFG/TW_CFG", B, 0, GATE_NONE, msr_get_fixed,
     msr_set_ignore, "reads 0, writes dropped"},
    {MSR_F10H_DECFG, MSR_F10H_DECFG, "AMD64_DE_CFG", A, F, GATE_NONE, msr_get_de_cfg,
     msr_set_de_cfg, "LFENCE_SERIALIZE (bit 1) only"},
    {MSR_AMD64_BU_CFG2, MSR_AMD64_BU_CFG2, "AMD64_BU_CFG2", B, 0, GATE_NONE, msr_get_fixed,
     msr_set_ignore, "reads 0, writes dropped"},
    {0xc001102c, 0xc001102c, "F15H_EX_CFG", B, 0, GATE_NONE, msr_get_fixed, msr_set_ignore,
     "reads 0, writes dropped"},
};
const unsigned msr_table_len = sizeof(msr_table) / sizeof(msr_table[0]);

/* The table is sorted by `first`; rows of one flavour never overlap and rows shared by
 * flavours cover identical ranges next to each other (test_table checks both), so a binary
 * search for the last row starting at or below `index` plus a look at its neighbour decides. */
const struct msr_entry *msr_table_lookup(enum msr_vendor vendor, uint32_t index)
{
    unsigned lo = 0, hi = msr_table_len; /* first row with first > index */
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (msr_table[mid].first <= index)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (unsigned k = lo; k > 0 && lo - k < 2; k--) {
        const struct msr_entry *e = &msr_table[k - 1];
        if (index <= e->last && (e->vendors & (1u << vendor)))
            return e;
    }
    return NULL;
}

static const char *const gate_names[GATE_COUNT] = {
    [GATE_NONE] = "none",
    [GATE_RDTSCP_OR_RDPID] = "CPUID RDTSCP (0x80000001:EDX[27]) or RDPID (7.0:ECX[22]), guest only",
    [GATE_XSAVES] = "CPUID XSAVES (0xD.1:EAX[3]), guest only",
    [GATE_ARCH_CAP_READ] = "CPUID ARCH_CAPABILITIES (7.0:EDX[29]), guest only",
    [GATE_PDCM_READ] = "CPUID PDCM (1:ECX[15]), guest only",
    [GATE_WAITPKG] = "CPUID WAITPKG (7.0:ECX[5]), guest only",
    [GATE_SPEC_CTRL] = "CPUID SPEC_CTRL (7.0:EDX[26]) or AMD IBRS/STIBP/SSBD, guest only",
    [GATE_PRED_CMD] = "CPUID SPEC_CTRL (7.0:EDX[26]) or AMD_IBPB (0x80000008:EBX[12]), guest only",
    [GATE_FLUSH_L1D] = "CPUID FLUSH_L1D (7.0:EDX[28]), guest only",
    [GATE_XFD] = "CPUID XFD (0xD.1:EAX[4]), guest only",
    [GATE_VIRT_SSBD] = "CPUID VIRT_SSBD (0x80000008:EBX[25]), guest only",
    [GATE_OSVW] = "CPUID OSVW (0x80000001:ECX[9]), host too",
    [GATE_PV_CLOCKSOURCE] = "KVM_FEATURE_CLOCKSOURCE (bit 0) if PV enforcement, host too",
    [GATE_PV_CLOCKSOURCE2] = "KVM_FEATURE_CLOCKSOURCE2 (bit 3) if PV enforcement, host too",
    [GATE_PV_ASYNC_PF] = "KVM_FEATURE_ASYNC_PF (bit 4) if PV enforcement, host too",
    [GATE_PV_STEAL_TIME] = "KVM_FEATURE_STEAL_TIME (bit 5) if PV enforcement, host too",
    [GATE_PV_EOI] = "KVM_FEATURE_PV_EOI (bit 6) if PV enforcement, host too",
    [GATE_PV_POLL_CONTROL] = "KVM_FEATURE_POLL_CONTROL (bit 12) if PV enforcement, host too",
    [GATE_PV_ASYNC_PF_INT] = "KVM_FEATURE_ASYNC_PF_INT (bit 14) if PV enforcement, host too",
};

const char *msr_gate_name(enum msr_gate g)
{
    return (unsigned)g < GATE_COUNT ? gate_names[g] : "?";
}

/* KVM_FEATURE_* bit for each PV gate */
static int pv_bit(enum msr_gate g)
{
    switch (g) {
    case GATE_PV_CLOCKSOURCE: return 0;
    case GATE_PV_CLOCKSOURCE2: return 3;
    case GATE_PV_ASYNC_PF: return 4;
    case GATE_PV_STEAL_TIME: return 5;
    case GATE_PV_EOI: return 6;
    case GATE_PV_POLL_CONTROL: return 12;
    case GATE_PV_ASYNC_PF_INT: return 14;
    default: return -1;
    }
}

int msr_gate_check(const struct msr_vcpu *v, enum msr_gate g, bool host)
{
    const struct msr_guest_features *f = &v->feat;
    int pv = pv_bit(g);
    if (pv >= 0) /* guest_pv_has(): applies to host accesses too; failure is "unsupported" */
        return (!v->enforce_pv_cpuid || (f->kvm_features & (1u << pv))) ? MSR_RET_OK
                                                                        : MSR_RET_UNSUPPORTED;
    if (g == GATE_OSVW)
        return f->osvw ? MSR_RET_OK : MSR_RET_INVAL;
    if (host || g == GATE_NONE)
        return MSR_RET_OK;
    bool ok;
    switch (g) {
    case GATE_RDTSCP_OR_RDPID: ok = f->rdtscp || f->rdpid; break;
    case GATE_XSAVES: ok = f->xsaves; break;
    case GATE_ARCH_CAP_READ: ok = f->arch_capabilities; break;
    case GATE_PDCM_READ: ok = f->pdcm; break;
    case GATE_WAITPKG: ok = f->waitpkg; break;
    case GATE_SPEC_CTRL: ok = f->spec_ctrl || f->amd_stibp || f->amd_ibrs || f->amd_ssbd; break;
    case GATE_PRED_CMD: ok = f->spec_ctrl || f->amd_ibpb || f->sbpb; break;
    case GATE_FLUSH_L1D: ok = f->flush_l1d; break;
    case GATE_XFD: ok = f->xfd; break;
    case GATE_VIRT_SSBD: ok = f->virt_ssbd; break;
    default: ok = true; break;
    }
    return ok ? MSR_RET_OK : MSR_RET_INVAL;
}
