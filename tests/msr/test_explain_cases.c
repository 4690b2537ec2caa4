/* tools/msr-explain: the steps of issue 15 (tools/msr_explain/explain_cases.c, compiled
 * into this test) state, for the access asked about, what the guest-level tests in
 * tests/msr/test_guest_*.c check: #GP before the filter at CPL > 0, implicit uses never
 * filtered, one whole filter per access, the filter beating KVM's pass-through, the PV
 * gate and its UNKNOWN reason, INIT kept/reset, and the AMD rules of the table rows. */

#include <stdio.h>

#include "msr_test_util.h"
#include "../../tools/msr_explain/explain_cases.c"

static char *out;
static size_t outlen;

static FILE *cap(void)
{
    free(out);
    out = NULL;
    FILE *o = open_memstream(&out, &outlen);
    ck_assert_ptr_nonnull(o);
    return o;
}

static const char *done(FILE *o)
{
    fclose(o);
    return out;
}

START_TEST(cpl3_is_gp_before_filter)
{
    FILE *o = cap();
    ck_assert(explain_cpl(o, 3));
    const char *s = done(o);
    ck_assert_ptr_nonnull(strstr(s, "CPL 3 > 0 -> #GP(0) before anything below"));
    ck_assert_ptr_nonnull(strstr(s, "no MSR filter"));
    ck_assert_ptr_nonnull(strstr(s, "no user-space exit"));
    o = cap();
    ck_assert(!explain_cpl(o, 0));
    ck_assert_ptr_null(strstr(done(o), "#GP"));
}
END_TEST

START_TEST(implicit_uses_not_filtered)
{
    const struct {
        const char *insn;
        uint32_t idx;
    } ok[] = {{"syscall", MSR_STAR},         {"syscall", MSR_LSTAR},
              {"syscall", MSR_SYSCALL_MASK}, {"sysret", MSR_STAR},
              {"sysenter", MSR_IA32_SYSENTER_EIP}, {"sysexit", MSR_IA32_SYSENTER_CS},
              {"swapgs", MSR_KERNEL_GS_BASE},  {"rdtscp", MSR_TSC_AUX}};
    for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        FILE *o = cap();
        ck_assert_int_eq(explain_implicit(o, ok[i].idx, ok[i].insn), 0);
        const char *s = done(o);
        ck_assert_ptr_nonnull(strstr(s, "not subject to the filter"));
        ck_assert_ptr_nonnull(strstr(s, "never deflected to user space"));
    }
    FILE *o = cap();
    ck_assert_int_eq(explain_implicit(o, MSR_IA32_TSC, "syscall"), -1);
    ck_assert_int_eq(explain_implicit(o, MSR_STAR, "cpuid"), -2);
    done(o);
}
END_TEST

START_TEST(filter_change_one_whole_filter)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    FILE *o = cap();
    explain_filter_change(o, f->v, MSR_IA32_SYSENTER_CS, false);
    const char *s = done(o);
    ck_assert_ptr_nonnull(strstr(s, "one whole filter, the old or the new, never a mix"));
    ck_assert_ptr_nonnull(strstr(s, "KVM_REQ_MSR_FILTER_CHANGED"));
    o = cap();
    explain_filter_change(o, f->v, 0x830, true); /* x2APIC: filters never apply */
    ck_assert_uint_eq(strlen(done(o)), 0);
    fx_free(f);
}
END_TEST

/* SPEC_CTRL after its first non-zero write, then a deny filter: the line appears only
 * once both hold (and FS_BASE, always passed through, with a deny filter). */
START_TEST(filter_beats_passthrough)
{
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    struct kvm_cpuid_entry2 e = {.function = 7, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                                 .edx = 1u << 26};
    set_cpuid1(f, &e, 1);
    uint32_t reason;
    FILE *o = cap();
    explain_pt_filter(o, f->v, MSR_IA32_SPEC_CTRL, true);
    ck_assert_uint_eq(strlen(done(o)), 0);
    ck_assert_int_eq(gwr(f, MSR_IA32_SPEC_CTRL, 1, &reason), EMU_MSR_OK);
    o = cap();
    explain_pt_filter(o, f->v, MSR_IA32_SPEC_CTRL, true); /* pass-through, no filter */
    ck_assert_uint_eq(strlen(done(o)), 0);
    static uint8_t none[8];
    struct kvm_msr_filter flt = {0};
    one_range(&flt, 0, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, MSR_IA32_SPEC_CTRL, 1, none);
    one_range(&flt, 1, KVM_MSR_FILTER_READ, MSR_FS_BASE, 1, none);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &flt, fake_copy), 0);
    msr_vcpu_sync(f->v);
    o = cap();
    explain_pt_filter(o, f->v, MSR_IA32_SPEC_CTRL, true);
    explain_pt_filter(o, f->v, MSR_FS_BASE, false);
    const char *s = done(o);
    const char *first = strstr(s, "the filter denies it: intercepted although KVM would pass it through");
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(strstr(first + 1, "the filter denies it"));
    ck_assert_ptr_nonnull(strstr(s, "vmx_msr_filter_changed"));
    fx_free(f);
    struct fx *a = fx_new(MSR_VENDOR_AMD);
    ck_assert_int_eq(msr_vm_set_filter(&a->vm, &flt, fake_copy), 0);
    msr_vcpu_sync(a->v);
    o = cap();
    explain_pt_filter(o, a->v, MSR_FS_BASE, false);
    ck_assert_ptr_nonnull(strstr(done(o), "svm_msr_filter_changed"));
    fx_free(a);
}
END_TEST

START_TEST(pv_gate_reason_unknown)
{
    struct fx *f = fx_new(MSR_VENDOR_AMD);
    FILE *o = cap();
    explain_pv(o, f->v, MSR_KVM_STEAL_TIME);
    ck_assert_ptr_nonnull(strstr(done(o), "off: allowed"));
    msr_vcpu_enable_pv_enforcement(f->v, 1);
    o = cap();
    explain_pv(o, f->v, MSR_KVM_STEAL_TIME);
    ck_assert_ptr_nonnull(strstr(done(o), "bit 5 clear -> KVM_MSR_RET_UNSUPPORTED: reason UNKNOWN"));
    struct kvm_cpuid_entry2 e[2] = {
        {.function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b, .ecx = 0x564b4d56, .edx = 0x4d},
        {.function = 0x40000001, .eax = 1u << 5}};
    set_cpuid1(f, e, 2);
    o = cap();
    explain_pv(o, f->v, MSR_KVM_STEAL_TIME);
    explain_pv(o, f->v, MSR_KVM_POLL_CONTROL);
    const char *s = done(o);
    ck_assert_ptr_nonnull(strstr(s, "bit 5 set -> allowed"));
    ck_assert_ptr_nonnull(strstr(s, "bit 12 clear"));
    o = cap();
    explain_pv(o, f->v, MSR_IA32_TSC); /* not a PV MSR: nothing */
    ck_assert_uint_eq(strlen(done(o)), 0);
    fx_free(f);
}
END_TEST

START_TEST(init_rules)
{
    ck_assert_ptr_nonnull(strstr(explain_init_rule(MSR_VENDOR_INTEL, MSR_SMI_COUNT), "reset to 0"));
    ck_assert_ptr_nonnull(strstr(explain_init_rule(MSR_VENDOR_AMD, MSR_EFER), "reset to 0"));
    ck_assert_ptr_nonnull(strstr(explain_init_rule(MSR_VENDOR_INTEL, MSR_IA32_CR_PAT), "kept"));
    ck_assert_ptr_nonnull(strstr(explain_init_rule(MSR_VENDOR_AMD, MSR_IA32_SYSENTER_EIP), "init_vmcb"));
    ck_assert_ptr_nonnull(strstr(explain_init_rule(MSR_VENDOR_INTEL, MSR_IA32_SYSENTER_EIP), "init_vmcs"));
    ck_assert_ptr_nonnull(strstr(explain_init_rule(MSR_VENDOR_INTEL, MSR_MTRRdefType), "kept"));
    ck_assert_ptr_nonnull(strstr(explain_init_rule(MSR_VENDOR_AMD, MSR_IA32_SPEC_CTRL), "svm_vcpu_reset"));
    ck_assert_ptr_null(explain_init_rule(MSR_VENDOR_INTEL, 0x12345));
}
END_TEST

/* The table rows msr-explain prints for the AMD rules of case 7. */
START_TEST(amd_rules_in_table)
{
    ck_assert_ptr_nonnull(strstr(msr_table_lookup(MSR_VENDOR_AMD, MSR_EFER)->rules, "SVME/FFXSR/AUTOIBRS"));
    ck_assert_ptr_nonnull(strstr(msr_table_lookup(MSR_VENDOR_AMD, MSR_VM_CR)->rules, "frozen once SVMDIS"));
    ck_assert_ptr_nonnull(strstr(msr_table_lookup(MSR_VENDOR_AMD, MSR_K7_HWCR)->rules, "McStatusWrEn"));
    ck_assert_ptr_nonnull(strstr(msr_table_lookup(MSR_VENDOR_AMD, MSR_IA32_MC0_CTL + 1)->rules,
                                 "HWCR.McStatusWrEn"));
    ck_assert_ptr_nonnull(strstr(msr_table_lookup(MSR_VENDOR_INTEL, MSR_IA32_FEAT_CTL)->rules, "#GP once LOCKED"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msr_explain_cases");
    TCase *t = tcase_create("cases");
    tcase_add_test(t, cpl3_is_gp_before_filter);
    tcase_add_test(t, implicit_uses_not_filtered);
    tcase_add_test(t, filter_change_one_whole_filter);
    tcase_add_test(t, filter_beats_passthrough);
    tcase_add_test(t, pv_gate_reason_unknown);
    tcase_add_test(t, init_rules);
    tcase_add_test(t, amd_rules_in_table);
    suite_add_tcase(s, t);
    return run_suite(s);
}
