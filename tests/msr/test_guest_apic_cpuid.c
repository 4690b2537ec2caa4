/* tests/msr: CPUID.1:EDX.APIC[9] follows IA32_APIC_BASE's global enable (bit 11), as KVM's
 * kvm_lapic_set_base -> kvm_update_cpuid_runtime does (cpuid.c: cpuid_entry_change(best,
 * X86_FEATURE_APIC, vcpu->arch.apic_base & MSR_IA32_APICBASE_ENABLE)), with and without
 * an in-kernel LAPIC; KVM_GET_CPUID2 shows it too. kvm-unit-tests x86/apic.flat
 * "apic_disable: CPUID.1H:EDX.APIC[bit 9] is clear". */
#include "tests/msr/guest_harness.h"

#define MSR_APIC_BASE 0x1b

__asm__(".pushsection .rodata.gh, \"a\"\n"
    "cpuid1_edx:\n"               /* GH_RD-shaped report of CPUID(1).EDX */
    "    mov $1, %eax\n"
    "    xor %ecx, %ecx\n"
    "    cpuid\n"
    "    mov %edx, %eax\n"
    "    out %eax, $0x10\n"
    "    xor %eax, %eax\n"
    "    out %eax, $0x11\n"
    "    ret\n"
    "apic_pause:\n"              /* the host looks at KVM_GET_CPUID2 here */
    "    out %al, $0x12\n"
    "    ret\n"
    ".popsection\n");

static uint32_t get_cpuid2_edx1(struct gh *g)
{
    struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[128];
    } c = {.h.nent = 128};
    ck_assert_int_eq(gh_io(g, g->vcpu, KVM_GET_CPUID2, &c), 0);
    for (unsigned i = 0; i < c.h.nent; i++)
        if (c.e[i].function == 1)
            return c.e[i].edx;
    ck_abort_msg("no CPUID leaf 1");
    return 0;
}

static void apic_bit_case(const char *vendor, bool irqchip)
{
    struct gh g;
    extern const uint8_t cpuid1_edx[], apic_pause[];
    gh_opt_irqchip = irqchip;
    gh_open(&g, vendor, NULL);
    gh_opt_irqchip = false;
    const uint64_t base = gh_get_msr(&g, MSR_APIC_BASE);
    ck_assert(base & (1u << 11));
    const struct gh_op ops[] = {
        {GH_CALL, 0, gh_gpa(cpuid1_edx)},
        {GH_WR, MSR_APIC_BASE, base & ~(1ull << 11)}, /* globally disabled */
        {GH_CALL, 0, gh_gpa(cpuid1_edx)},
        {GH_CALL, 0, gh_gpa(apic_pause)},
        {GH_WR, MSR_APIC_BASE, base},                 /* enabled again (xAPIC) */
        {GH_CALL, 0, gh_gpa(cpuid1_edx)},
    };
    gh_ops(&g, ops, sizeof ops / sizeof ops[0]);
    gh_start(&g, gh_gpa(gh_script), 0);
    ck_assert(gh_take_rd(&g) & (1u << 9));
    ck_assert(!(gh_take_rd(&g) & (1u << 9)));
    gh_expect_out(&g, 0x12);
    ck_assert(!(get_cpuid2_edx1(&g) & (1u << 9)));
    ck_assert(gh_take_rd(&g) & (1u << 9));
    gh_expect_done(&g);
    ck_assert(get_cpuid2_edx1(&g) & (1u << 9));
    gh_close(&g);
}

START_TEST(apic_bit_follows_enable_irqchip) { apic_bit_case(gh_host_vendor(), true); }
END_TEST
START_TEST(apic_bit_follows_enable_no_irqchip) { apic_bit_case(gh_host_vendor(), false); }
END_TEST
START_TEST(apic_bit_follows_enable_intel) { apic_bit_case("intel", true); }
END_TEST
START_TEST(apic_bit_follows_enable_amd) { apic_bit_case("amd", true); }
END_TEST

GH_BLOB_END();

int main(void)
{
    gh_require_oracle();
    Suite *s = suite_create("msr_guest_apic_cpuid");
    TCase *tc = tcase_create("guest");
    tcase_set_timeout(tc, 120);
    gh_add(tc, apic_bit_follows_enable_irqchip, NULL);
    gh_add(tc, apic_bit_follows_enable_no_irqchip, NULL);
    gh_add(tc, apic_bit_follows_enable_intel, "intel");
    gh_add(tc, apic_bit_follows_enable_amd, "amd");
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
