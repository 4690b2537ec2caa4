/* tests/msr: NMIs sent while the NMI handler runs are latched as one (SDM vol.3 6.7.1;
 * KVM x86.c process_nmi: at most one pending while NMIs are blocked, two in all). The
 * guest sends itself an NMI through the x2APIC ICR; the handler, on its first entry,
 * sends ten more; exactly one of them is taken after its IRET: two NMIs in all.
 * kvm-unit-tests x86/apic.flat "pending nmi". */
#include "tests/msr/guest_harness.h"

#define MSR_APIC_BASE 0x1b
#define X2APIC_SVR 0x80f

__asm__(".pushsection .rodata.gh, \"a\"\n"
    "nmi_latch_handler:\n"
    "    push %rax\n"
    "    push %rcx\n"
    "    push %rdx\n"
    "    push %rbx\n"
    "    incl 0x30100\n"
    "    cmpl $1, 0x30100\n"
    "    jne 2f\n"
    "    mov $10, %ebx\n"
    "1:  mov $0x830, %ecx\n"      /* ICR: NMI, physical, APIC ID 0 (this vCPU) */
    "    mov $0x400, %eax\n"
    "    xor %edx, %edx\n"
    "    wrmsr\n"
    "    dec %ebx\n"
    "    jnz 1b\n"
    "2:  pop %rbx\n"
    "    pop %rdx\n"
    "    pop %rcx\n"
    "    pop %rax\n"
    "    iretq\n"
    "nmi_latch_main:\n"
    "    movl $0, 0x30100\n"
    "    mov $0x830, %ecx\n"
    "    mov $0x400, %eax\n"
    "    xor %edx, %edx\n"
    "    wrmsr\n"
    "    mov $100000, %ebx\n"     /* time for every NMI that will come to come */
    "3:  pause\n"
    "    dec %ebx\n"
    "    jnz 3b\n"
    "    mov 0x30100, %eax\n"
    "    out %eax, $0x10\n"
    "    xor %eax, %eax\n"
    "    out %eax, $0x11\n"
    "    ret\n"
    ".popsection\n");

static void nmi_latch_case(const char *vendor)
{
    struct gh g;
    extern const uint8_t nmi_latch_handler[], nmi_latch_main[];
    gh_opt_irqchip = true;
    gh_open(&g, vendor, NULL);
    gh_opt_irqchip = false;
    gh_gate(&g, 2, gh_gpa(nmi_latch_handler));
    const uint64_t base = gh_get_msr(&g, MSR_APIC_BASE);
    const struct gh_op ops[] = {
        {GH_WR, MSR_APIC_BASE, base | (1u << 10)}, /* x2APIC mode */
        {GH_WR, X2APIC_SVR, 0x1ff},
        {GH_CALL, 0, gh_gpa(nmi_latch_main)},
    };
    gh_ops(&g, ops, sizeof ops / sizeof ops[0]);
    gh_start(&g, gh_gpa(gh_script), 0);
    if (gh_pvm(&g, "NMIs sent from the NMI handler: three are taken in all, not two"))
        gh_expect_rd(&g, 3);
    else
        gh_expect_rd(&g, 2);
    gh_expect_done(&g);
    gh_close(&g);
}

START_TEST(nmis_in_handler_latch_one) { nmi_latch_case(gh_host_vendor()); }
END_TEST
START_TEST(nmis_in_handler_latch_one_intel) { nmi_latch_case("intel"); }
END_TEST

GH_BLOB_END();

int main(void)
{
    gh_require_oracle();
    Suite *s = suite_create("msr_guest_nmi_latch");
    TCase *tc = tcase_create("guest");
    tcase_set_timeout(tc, 120);
    gh_add(tc, nmis_in_handler_latch_one, NULL);
    gh_add(tc, nmis_in_handler_latch_one_intel, "intel");
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
