/* msr/ at guest level: the MSR filter against the privilege check, against MSR accesses the
 * CPU makes by itself, against KVM's pass-through bitmaps, and filter changes while a vCPU
 * runs. A guest executes the instructions (tests/msr/guest_harness.h); every expectation
 * cites the Linux 6.12 source that decides it (file:function, line numbers of 6.12). */
#include <pthread.h>
#include <stdatomic.h>

#include "guest_harness.h"
#include "msr/msr_index.h"

#define PAT_DEFAULT 0x0007040600070406ull /* x86.c kvm_vcpu_reset 11757, MSR_IA32_CR_PAT_DEFAULT */

#define ALL_REASONS (KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_FILTER)

/* A deny-everything filter: DEFAULT_DENY needs one non-empty range (x86.c
 * kvm_vm_ioctl_set_msr_filter 6404-6409); the range allows nothing either. */
static uint8_t zero_bits[0x600];
static void deny_all_filter(struct gh *g)
{
    struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_DENY};
    f.ranges[0] = (struct kvm_msr_filter_range){
        .flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, .base = 0, .nmsrs = 64, .bitmap = zero_bits};
    ck_assert_int_eq(gh_filter(g, &f), 0);
}

/* ---------------- case 2: CPL 3 -> #GP(0) before the filter ----------------
 * RDMSR/WRMSR are privileged: the CPU checks CPL before any MSR-bitmap VM exit (SDM vol.3
 * 26.1.1: exceptions caused by CPL are checked before the VM exit; APM vol.2 15.7: the
 * same for SVM intercepts), so kvm_emulate_rdmsr/wrmsr (x86.c 1635-1683), kvm_msr_allowed
 * (1379) and kvm_msr_user_space (1613) never run. KVM's own emulator agrees:
 * emulate.c opcode_table 4380/4382 mark rdmsr/wrmsr `Priv`, and x86_emulate_insn 5154-5161
 * injects #GP(0) for Priv at CPL > 0 before the post-exception intercept check (5163-5172).
 * Covered MSRs: filtered-out intercepted (TSC write, PAT), pass-through (FS_BASE,
 * SYSENTER_CS), unknown (would be UNKNOWN), and x2APIC (never filtered). */
static const struct gh_op cpl_ops[] = {
    {GH_RD, MSR_IA32_TSC, 0},         {GH_WR, MSR_IA32_TSC, 0},
    {GH_RD, MSR_IA32_CR_PAT, 0},      {GH_WR, MSR_IA32_CR_PAT, PAT_DEFAULT},
    {GH_RD, MSR_FS_BASE, 0},          {GH_WR, MSR_FS_BASE, 0},
    {GH_RD, MSR_IA32_SYSENTER_CS, 0}, {GH_RD, 0x12345, 0},
    {GH_WR, 0x12345, 1},              {GH_RD, 0x802, 0},
};
#define NCPL (sizeof(cpl_ops) / sizeof(cpl_ops[0]))

static void cpl3_case(const char *vendor)
{
    struct gh g;
    gh_open(&g, vendor, NULL);
    gh_user_msr(&g, ALL_REASONS);
    deny_all_filter(&g);
    gh_ops(&g, cpl_ops, NCPL);
    gh_start(&g, gh_gpa(gh_script), 3);
    for (unsigned i = 0; i < NCPL; i++)
        gh_expect_gp(&g); /* no KVM_EXIT_X86_RDMSR/WRMSR, no reason: the CPU's #GP(0) */
    gh_expect_done(&g);
    ck_assert_uint_eq(gh_get_msr(&g, MSR_IA32_CR_PAT), PAT_DEFAULT);
    /* the same table at CPL 0: every access but x2APIC reaches the filter (reason FILTER);
     * x2APIC is exempt (kvm_msr_allowed 1387-1389) and fails in the LAPIC-less VM with
     * kvm_x2apic_msr_read's 1 -> INVAL (x86.c kvm_msr_reason 1602-1611) */
    gh_start(&g, gh_gpa(gh_script), 0);
    for (unsigned i = 0; i < NCPL; i++) {
        bool wr = cpl_ops[i].op == GH_WR;
        uint32_t why = cpl_ops[i].ecx == 0x802 ? KVM_MSR_EXIT_REASON_INVAL : KVM_MSR_EXIT_REASON_FILTER;
        gh_expect_msr_exit(&g, wr, cpl_ops[i].ecx, why, cpl_ops[i].val);
        gh_complete(&g, 1, 0); /* error: #GP at the instruction (complete_fast_msr_access) */
        gh_expect_gp(&g);
    }
    gh_expect_done(&g);
    gh_close(&g);
}

START_TEST(cpl3_gp_before_filter_intel) { cpl3_case("intel"); }
END_TEST
START_TEST(cpl3_gp_before_filter_amd) { cpl3_case("amd"); }
END_TEST

GH_BLOB_END();

int main(void)
{
    Suite *s = suite_create("msr_guest_filter");
    TCase *tc = tcase_create("guest");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cpl3_gp_before_filter_intel);
    tcase_add_test(tc, cpl3_gp_before_filter_amd);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
