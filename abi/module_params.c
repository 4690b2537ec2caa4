/* abi/: /sys/module/kvm{,_intel,_amd}/parameters files as a KVM with our configuration
 * would show them. Selftests and VMMs read these (kvm_util.c get_module_param):
 * e.g. enable_pmu, force_emulation_prefix, kvm_intel/ept, kvm_amd/npt. Values follow
 * the sysfs format of the parameter type (bool: "Y\n"/"N\n", int: decimal). */
#include <string.h>

#include "abi/abi_internal.h"

struct param {
    const char *module; /* "kvm", "kvm_intel", "kvm_amd" */
    const char *name;
    const char *value;
};

static const struct param params[] = {
    {"kvm", "enable_pmu", "Y\n"},            /* the vPMU (msr/pmu.c) */
    {"kvm", "force_emulation_prefix", "0\n"},
    {"kvm", "ignore_msrs", "N\n"},
    {"kvm", "report_ignored_msrs", "Y\n"},
    {"kvm", "tdp_mmu", "Y\n"},
    {"kvm", "nx_huge_pages", "N\n"},
    {"kvm", "halt_poll_ns", "200000\n"},
    {"kvm", "min_timer_period_us", "200\n"},
    {"kvm", "lapic_timer_advance_ns", "-1\n"},
    {"kvm", "enable_vmware_backdoor", "N\n"},
    {"kvm", "eager_page_split", "Y\n"},
    {"kvm", "mmio_caching", "Y\n"},
    {"kvm", "kvmclock_periodic_sync", "Y\n"},
    {"kvm", "tsc_tolerance_ppm", "250\n"},
    {"kvm_intel", "ept", "Y\n"},
    {"kvm_intel", "unrestricted_guest", "Y\n"},
    {"kvm_intel", "nested", "Y\n"}, /* a bool in vmx.c; emu/vmx.c */
    {"kvm_intel", "enable_apicv", "N\n"},
    {"kvm_intel", "enable_ipiv", "N\n"},
    {"kvm_intel", "flexpriority", "N\n"},
    {"kvm_intel", "vpid", "Y\n"},
    {"kvm_intel", "pml", "N\n"},
    /* set, as an admin may: a guest MAXPHYADDR below the host's then works under EPT,
     * with KVM's emulation of the accesses (emu_kvm_policy.tdp_maxphyaddr) */
    {"kvm_intel", "allow_smaller_maxphyaddr", "Y\n"},
    {"kvm_intel", "enable_shadow_vmcs", "N\n"},
    {"kvm_intel", "preemption_timer", "N\n"},
    {"kvm_intel", "emulate_invalid_guest_state", "Y\n"},
    {"kvm_amd", "npt", "Y\n"},
    {"kvm_amd", "nested", "1\n"}, /* an int in svm.c; emu/svm.c */
    {"kvm_amd", "avic", "N\n"},
    {"kvm_amd", "sev", "N\n"},
    {"kvm_amd", "sev_es", "N\n"},
    {"kvm_amd", "sev_snp", "N\n"},
    {"kvm_amd", "vls", "N\n"},
    {"kvm_amd", "vgif", "N\n"},
    {"kvm_amd", "lbrv", "N\n"},
    {"kvm_amd", "intercept_smi", "Y\n"},
    {"kvm_amd", "dump_invalid_vmcb", "N\n"},
};

bool abi_module_exists(const char *module)
{
    if (strcmp(module, "kvm") == 0)
        return true;
    bool amd = abi_vendor_current() == ABI_VENDOR_AMD;
    return strcmp(module, amd ? "kvm_amd" : "kvm_intel") == 0;
}

const char *abi_module_param(const char *module, const char *param)
{
    if (!abi_module_exists(module))
        return NULL;
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        if (strcmp(params[i].module, module) == 0 && strcmp(params[i].name, param) == 0)
            return params[i].value;
    return NULL;
}
