/* tests/msr: the KVM_HC_SEND_IPI hypercall (KVM x86.c kvm_emulate_hypercall ->
 * lapic.c kvm_pv_send_ipi) at guest level: a fixed IPI to the APIC IDs of a bitmap lands
 * in the target's IRR and the hypercall returns how many APICs accepted it; a logical or
 * shorthand ICR is -KVM_EINVAL; a bitmap past the highest APIC ID sends nothing.
 * kvm-unit-tests x86/apic.flat "PV IPIs testing". */
#include "tests/msr/guest_harness.h"

#define MSR_APIC_BASE 0x1b
#define X2APIC_SVR 0x80f
#define X2APIC_IRR2 0x822 /* IRR bits 64..95 */

/* RAX = 10, RBX = bitmap low, RCX = bitmap high, RDX = min, RSI = ICR from the data page;
 * the result is reported GH_RD-shaped (port 0x10 low, 0x11 high) */
#define PV_IPI(name, insn)                                                                  \
    __asm__(".pushsection .rodata.gh, \"a\"\n" name ":\n"                                    \
            "    mov $10, %eax\n"                                                           \
            "    mov 0x30000, %rbx\n"                                                       \
            "    mov 0x30008, %rcx\n"                                                       \
            "    mov 0x30010, %rdx\n"                                                       \
            "    mov 0x30018, %rsi\n"                                                       \
            "    " insn "\n"                                                                \
            "    mov %rax, %rdx\n"                                                          \
            "    out %eax, $0x10\n"                                                         \
            "    shr $32, %rdx\n"                                                           \
            "    mov %edx, %eax\n"                                                          \
            "    out %eax, $0x11\n"                                                         \
            "    ret\n"                                                                     \
            ".popsection\n")
PV_IPI("pv_ipi_vmcall", "vmcall");
PV_IPI("pv_ipi_vmmcall", "vmmcall");

static void args(struct gh *g, uint64_t low, uint64_t high, uint64_t min, uint64_t icr)
{
    gh_put64(g, 0x30000, low);
    gh_put64(g, 0x30008, high);
    gh_put64(g, 0x30010, min);
    gh_put64(g, 0x30018, icr);
}

static void pv_ipi_case(const char *vendor, uint64_t low, uint64_t high, uint64_t min, uint64_t icr,
                        int64_t want_ret, bool want_irr)
{
    struct gh g;
    extern const uint8_t pv_ipi_vmcall[], pv_ipi_vmmcall[];
    gh_opt_irqchip = true;
    gh_open(&g, vendor, NULL);
    gh_opt_irqchip = false;
    const uint64_t base = gh_get_msr(&g, MSR_APIC_BASE);
    const struct gh_op ops[] = {
        {GH_WR, MSR_APIC_BASE, base | (1u << 10)}, /* x2APIC mode: the APIC by MSR */
        {GH_WR, X2APIC_SVR, 0x1ff},                /* software-enabled: it accepts fixed IPIs */
        {GH_CALL, 0, gh_gpa(strcmp(vendor, "amd") ? pv_ipi_vmcall : pv_ipi_vmmcall)},
        {GH_RD, X2APIC_IRR2, 0},
    };
    args(&g, low, high, min, icr);
    gh_ops(&g, ops, sizeof ops / sizeof ops[0]);
    gh_start(&g, gh_gpa(gh_script), 0);
    ck_assert_int_eq((int64_t)gh_take_rd(&g), want_ret);
    gh_expect_rd(&g, want_irr ? 1 : 0); /* vector 0x40 = IRR bit 64 (IF=0: stays pending) */
    gh_expect_done(&g);
    gh_close(&g);
}

/* bit 0 of the low bitmap with min 0 is APIC ID 0, this vCPU: one APIC accepts */
START_TEST(pv_ipi_to_self) { pv_ipi_case(gh_host_vendor(), 1, 0, 0, 0x40, 1, true); }
END_TEST
START_TEST(pv_ipi_to_self_intel) { pv_ipi_case("intel", 1, 0, 0, 0x40, 1, true); }
END_TEST
/* the high bitmap starts at min + 64: with min = -64 (u32) its bit 0 is APIC ID 0 */
START_TEST(pv_ipi_high_bitmap) { pv_ipi_case(gh_host_vendor(), 0, 1, 0xffffffc0u, 0x40, 1, true); }
END_TEST
/* kvm-unit-tests' arguments: min = 0xffffffff is past every APIC ID: 0, nothing sent */
START_TEST(pv_ipi_beyond_max_id) { pv_ipi_case(gh_host_vendor(), 0xffffffffu, 0, 0xffffffffu, 0x40, 0, false); }
END_TEST
/* logical destination mode (ICR bit 11) or a shorthand: -KVM_EINVAL */
START_TEST(pv_ipi_logical_is_einval) { pv_ipi_case(gh_host_vendor(), 1, 0, 0, 0x840, -22, false); }
END_TEST
START_TEST(pv_ipi_shorthand_is_einval) { pv_ipi_case(gh_host_vendor(), 1, 0, 0, 0x40040, -22, false); }
END_TEST

GH_BLOB_END();

int main(void)
{
    gh_require_oracle();
    if (gh_real_mode()) {
        /* measured on the development host's PVM-based /dev/kvm: every case's KVM_RUN
         * never returns (check's 120 s timeout), so there is no oracle to compare with */
        fprintf(stderr, "PVM: these guests do not come back from KVM_RUN: skipped\n");
        return 77;
    }
    Suite *s = suite_create("msr_guest_pv_ipi");
    TCase *tc = tcase_create("guest");
    tcase_set_timeout(tc, 120);
    gh_add(tc, pv_ipi_to_self, NULL);
    gh_add(tc, pv_ipi_to_self_intel, "intel");
    gh_add(tc, pv_ipi_high_bitmap, NULL);
    gh_add(tc, pv_ipi_beyond_max_id, NULL);
    gh_add(tc, pv_ipi_logical_is_einval, NULL);
    gh_add(tc, pv_ipi_shorthand_is_einval, NULL);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
