/* msr/: KVM_GET_MSR_INDEX_LIST (msrs_to_save + emulated_msrs), KVM_GET_MSR_FEATURE_INDEX_LIST
 * and feature-MSR reads on the system fd (x86.c kvm_get_feature_msr / do_get_feature_msr),
 * all derived from the table. */
#include "msr/internal.h"
#include "msr/vmx_caps.h"

static unsigned collect(enum msr_vendor vendor, uint8_t flag, uint32_t *out, unsigned cap)
{
    unsigned n = 0;
    for (unsigned i = 0; i < msr_table_len; i++) {
        const struct msr_entry *e = &msr_table[i];
        if (!(e->flags & flag) || !(e->vendors & (1u << vendor)))
            continue;
        for (uint64_t idx = e->first; idx <= e->last; idx++, n++)
            if (out && n < cap)
                out[n] = (uint32_t)idx;
    }
    return n;
}

unsigned msr_index_list(enum msr_vendor vendor, uint32_t *out, unsigned cap)
{
    return collect(vendor, MSR_F_SAVE, out, cap);
}

unsigned msr_feature_index_list(enum msr_vendor vendor, uint32_t *out, unsigned cap)
{
    return collect(vendor, MSR_F_FEATURE, out, cap);
}

bool msr_is_advertised(enum msr_vendor vendor, uint32_t index)
{
    const struct msr_entry *e = msr_table_lookup(vendor, index);
    if (e && (e->flags & MSR_F_SAVE))
        return true;
    /* an MSR can have a vendor-specific row without the flag and a listed one elsewhere */
    for (unsigned i = 0; i < msr_table_len; i++) {
        const struct msr_entry *t = &msr_table[i];
        if ((t->flags & MSR_F_SAVE) && (t->vendors & (1u << vendor)) && index >= t->first &&
            index <= t->last)
            return true;
    }
    return false;
}

int msr_feature_get(enum msr_vendor vendor, uint32_t index, uint64_t *value)
{
    const struct msr_entry *e = msr_table_lookup(vendor, index);
    *value = 0;
    if (e && (e->flags & MSR_F_FEATURE)) {
        switch (index) {
        case MSR_IA32_ARCH_CAPABILITIES: *value = MSR_ARCH_CAP_DEFAULT; return 0;
        case MSR_IA32_PERF_CAPABILITIES: /* kvm_caps.supported_perf_cap */
            *value = msr_pmu_supported_perf_cap(vendor);
            return 0;
        /* KVM reads the host CPU's revision (rdmsrl_safe); softkvm's CPU has the one its
         * vCPUs reset to */
        case MSR_IA32_UCODE_REV:
            *value = vendor == MSR_VENDOR_AMD ? MSR_UCODE_REV_AMD : MSR_UCODE_REV_INTEL;
            return 0;
        case MSR_F10H_DECFG: *value = 1ull << 1; return 0;     /* LFENCE serialising */
        default:
            /* vmx_get_feature_msr: vmcs_config.nested, what KVM supports */
            if (index >= 0x480 && index <= 0x491) {
                struct emu_vmx_caps c;
                msr_vmx_caps_default(&c);
                return msr_vmx_cap_read(&c, index, value);
            }
            break;
        }
    }
    /* not a feature MSR: "unsupported", and KVM lets userspace read advertised MSRs as 0 */
    return msr_is_advertised(vendor, index) ? 0 : 1;
}

const char *msr_name(uint32_t index)
{
    for (unsigned i = 0; i < msr_table_len; i++)
        if (index >= msr_table[i].first && index <= msr_table[i].last)
            return msr_table[i].name;
    return NULL;
}
