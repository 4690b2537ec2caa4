/* msr/ at guest level: the MSR filter against the privilege check, against MSR accesses the
 * CPU makes by itself, against KVM's pass-through bitmaps, and filter changes while a vCPU
 * runs. A guest executes the instructions (tests/msr/guest_harness.h); every expectation
 * cites the Linux 6.12 source that decides it (file:function, line numbers of 6.12).
 *
 * ctest also runs these guests on the host's /dev/kvm (msr_test_guest_filter_realkvm):
 * CPL 3 and the concurrent filter replacement agree with 6.12 there; every place PVM
 * differs is a gh_pvm() that asserts PVM's behaviour (measured on PVM over AMD,
 * 2026-12-04). On PVM over Intel (by hand, 2026-12-03) SPEC_CTRL also accepted bit 40. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
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

/* ---------------- case 3: the CPU's own MSR accesses are never filtered ----------------
 * SYSCALL/SYSRET read STAR/LSTAR/CSTAR/SFMASK, SYSENTER/SYSEXIT read SYSENTER_CS/ESP/EIP and
 * SWAPGS swaps with KERNEL_GS_BASE inside the CPU: no RDMSR/WRMSR intercept exists for
 * them, so KVM's filter (x86.c kvm_msr_allowed 1379-1420, consulted only by
 * kvm_get/set_msr_with_filter 1542-1554 from kvm_emulate_rdmsr/wrmsr and em_rdmsr/em_wrmsr,
 * emulate.c 3298-3325) never sees them. When KVM emulates these instructions itself it
 * reads the MSRs through ops->get_msr = emulator_get_msr -> kvm_get_msr, the unfiltered
 * path (x86.c 8060-8064; emulate.c em_syscall 2341-2406, em_sysenter 2408-2459,
 * em_sysexit 2461-2510). Host KVM_SET_MSRS is never filtered either (x86.c do_set_msr ->
 * kvm_set_msr_ignored_check). The filter here denies every MSR, for reads and writes;
 * a guest RDMSR of LSTAR at the end still exits with reason FILTER. */
__asm__(".pushsection .rodata.gh, \"a\"\n"
    ".code64\n"
    "imp_start:\n"
    "    swapgs\n"
    "    mov %gs:0, %eax\n"            /* KERNEL_GS_BASE's page */
    "    out %eax, $0x10\n"
    "    swapgs\n"
    "    mov %gs:0, %eax\n"            /* GS base again */
    "    out %eax, $0x10\n"
    "    lea imp_user(%rip), %rcx\n"
    "    mov $0x3402, %r11\n"           /* IOPL 3, DF */
    "    sysretq\n"                     /* CS = STAR[63:48] + 16, SS = + 8, RPL 3 */
    "imp_user:\n"
    "    mov %cs, %eax\n"
    "    out %eax, $0x10\n"
    "    mov %ss, %eax\n"
    "    out %eax, $0x10\n"
    "    syscall\n"                     /* RIP = LSTAR, RFLAGS &= ~SFMASK, CS = STAR[47:32] */
    "imp_lstar:\n"
    "    pushfq\n"
    "    pop %rax\n"
    "    out %eax, $0x10\n"
    "    mov %r11d, %eax\n"
    "    out %eax, $0x10\n"
    "    mov %ecx, %eax\n"
    "    out %eax, $0x10\n"
    "    mov %cs, %eax\n"
    "    out %eax, $0x10\n"
    "    mov %ss, %eax\n"
    "    out %eax, $0x10\n"
    "    cmpb $0, 0x30200\n"            /* SYSENTER/SYSEXIT part (64-bit: Intel only) */
    "    je imp_final\n"
    "    lea imp_user2(%rip), %rdx\n"
    "    mov $0x5f000, %rcx\n"
    "    sysexitq\n"                    /* CS = SYSENTER_CS + 32, SS = + 40, RPL 3 */
    "imp_user2:\n"
    "    mov %cs, %eax\n"
    "    out %eax, $0x10\n"
    "    mov %ss, %eax\n"
    "    out %eax, $0x10\n"
    "    sysenter\n"                    /* RIP = SYSENTER_EIP, RSP = SYSENTER_ESP */
    "imp_final:\n"
    "    mov %cs, %eax\n"
    "    out %eax, $0x10\n"
    "    mov %rsp, %rax\n"
    "    out %eax, $0x10\n"
    "    mov $0xc0000082, %ecx\n"
    "    rdmsr\n"
    "    out %eax, $0x10\n"
    "    out %al, $0x1f\n"
    "    hlt\n"
    ".popsection\n");
extern const uint8_t imp_start[], imp_user[], imp_lstar[], imp_user2[], imp_final[];

static void implicit_case(const char *vendor, bool sysenter)
{
    struct gh g;
    gh_open(&g, vendor, NULL);
    gh_user_msr(&g, ALL_REASONS);
    deny_all_filter(&g);
    gh_start(&g, gh_gpa(imp_start), 0);
    /* host-initiated writes pass the deny filter */
    ck_assert_int_eq(gh_set_msr(&g, MSR_EFER, 0x501), 1); /* SCE (LMA is kept) */
    ck_assert_int_eq(gh_set_msr(&g, MSR_STAR, GH_STAR), 1);
    ck_assert_int_eq(gh_set_msr(&g, MSR_LSTAR, gh_gpa(imp_lstar)), 1);
    ck_assert_int_eq(gh_set_msr(&g, MSR_CSTAR, 0x7777), 1);
    ck_assert_int_eq(gh_set_msr(&g, MSR_SYSCALL_MASK, 0x400), 1); /* clears DF */
    ck_assert_int_eq(gh_set_msr(&g, MSR_KERNEL_GS_BASE, GH_DATA_GPA + 0x100), 1);
    ck_assert_int_eq(gh_set_msr(&g, MSR_IA32_SYSENTER_CS, GH_KCS), 1);
    ck_assert_int_eq(gh_set_msr(&g, MSR_IA32_SYSENTER_ESP, GH_KSTACK - 0x2000), 1);
    ck_assert_int_eq(gh_set_msr(&g, MSR_IA32_SYSENTER_EIP, gh_gpa(imp_final)), 1);
    gh_put64(&g, GH_DATA_GPA + 0x100, 0x5a5a5a5a);
    g.mem[GH_DATA_GPA + 0x200] = sysenter;
    ck_assert_uint_eq(gh_expect_out(&g, 0x10), 0x5a5a5a5a); /* SWAPGS used KERNEL_GS_BASE */
    ck_assert_uint_eq(gh_expect_out(&g, 0x10), 0);          /* and swapped back */
    /* PVM runs the guest's kernel in host ring 3 too: MOV from CS/SS reads the hardware's
     * selectors there, whatever SYSRET/SYSCALL loaded */
    bool pvm_sel = gh_pvm(&g, "MOV from CS/SS reads 0x33/0x2b (the host's ring-3 selectors) at "
                              "every guest CPL, not what SYSRET/SYSCALL loaded from STAR");
#define WANT_CS(sel) (pvm_sel ? 0x33u : (uint32_t)(sel))
#define WANT_SS(sel) (pvm_sel ? 0x2bu : (uint32_t)(sel))
    ck_assert_uint_eq(gh_expect_out(&g, 0x10), WANT_CS(GH_UCS | 3)); /* SYSRET used STAR */
    ck_assert_uint_eq(gh_expect_out(&g, 0x10), WANT_SS(GH_UDS | 3));
    uint32_t syscall_flags = gh_expect_out(&g, 0x10);      /* SYSCALL: LSTAR, SFMASK */
    uint32_t syscall_r11 = gh_expect_out(&g, 0x10);        /* R11 = old RFLAGS */
    if (gh_pvm(&g, "SYSRET loads RFLAGS 0x602 from R11 0x3402 (IOPL forced to 0, IF to 1), so "
                   "SYSCALL saves 0x602 and leaves 0x202")) {
        ck_assert_uint_eq(syscall_flags, 0x202);
        ck_assert_uint_eq(syscall_r11, 0x602);
    } else {
        ck_assert_uint_eq(syscall_flags, 0x3002);
        ck_assert_uint_eq(syscall_r11, 0x3402);
    }
    ck_assert_uint_eq(gh_expect_out(&g, 0x10), (uint32_t)gh_gpa(imp_lstar)); /* RCX */
    ck_assert_uint_eq(gh_expect_out(&g, 0x10), WANT_CS(GH_KCS)); /* STAR[47:32] */
    ck_assert_uint_eq(gh_expect_out(&g, 0x10), WANT_SS(GH_KDS));
    if (sysenter) {
        ck_assert_uint_eq(gh_expect_out(&g, 0x10), WANT_CS((GH_KCS + 32) | 3)); /* SYSEXIT */
        ck_assert_uint_eq(gh_expect_out(&g, 0x10), WANT_SS((GH_KCS + 40) | 3));
    }
    ck_assert_uint_eq(gh_expect_out(&g, 0x10), WANT_CS(GH_KCS));
#undef WANT_CS
#undef WANT_SS
    ck_assert_uint_eq(gh_expect_out(&g, 0x10), (sysenter ? GH_KSTACK - 0x2000 : GH_KSTACK - 0x1000)); /* SYSCALL/SYSRET keep RSP */
    /* the guest's own RDMSR of the same MSR is filtered */
    if (gh_pvm(&g, "the guest's RDMSR of LSTAR under the deny filter is a #GP(0), no "
                   "KVM_EXIT_X86_RDMSR with reason FILTER")) {
        gh_expect_gp(&g);
        gh_expect_out(&g, 0x10); /* the #GP handler resumed after the RDMSR: EAX unchanged */
        gh_expect_done(&g);
    } else {
        gh_expect_msr_exit(&g, false, MSR_LSTAR, KVM_MSR_EXIT_REASON_FILTER, 0);
        gh_complete(&g, 0, 0x1234);
        ck_assert_uint_eq(gh_expect_out(&g, 0x10), 0x1234);
        gh_expect_done(&g);
    }
    gh_close(&g);
}

/* VMX: 64-bit SYSENTER/SYSEXIT too (Intel CPUs implement them in long mode). */
START_TEST(implicit_msr_uses_unfiltered_intel) { implicit_case("intel", true); }
END_TEST
/* SVM: SYSCALL/SYSRET/SWAPGS (AMD CPUs #UD on SYSENTER in long mode). */
START_TEST(implicit_msr_uses_unfiltered_amd) { implicit_case("amd", false); }
END_TEST

/* ---------------- case 5: pass-through MSRs, then a deny filter ----------------
 * Guest-visible difference between pass-through and intercept: a value the CPU rejects
 * is a plain #GP(0) on a passed-through MSR (no KVM code runs), but on an intercepted one
 * KVM's handler refuses it with 1 and the access exits with reason INVAL (x86.c
 * kvm_emulate_wrmsr 1660-1683 -> kvm_msr_user_space 1613-1633, kvm_msr_reason 1602-1611).
 * GH_CALL gh_pause stops the guest (OUT 0x12) so the test can change the filter. */
__asm__(".pushsection .rodata.gh, \"a\"\n"
    "gh_pause:\n"
    "    out %al, $0x12\n"
    "    ret\n"
    ".popsection\n");
extern const uint8_t gh_pause[];
#define RESERVED_SPEC (1ull << 40) /* no SPEC_CTRL bit 40 (kvm_spec_ctrl_test_value fails) */

static void cpuid_spec_flush(struct kvm_cpuid_entry2 *e, unsigned *n)
{
    struct kvm_cpuid_entry2 *l7 = gh_leaf_add(e, n, 7, 0);
    l7->flags |= KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    l7->edx |= (1u << 26) | (1u << 28); /* SPEC_CTRL (IBRS/IBPB), FLUSH_L1D */
}

static void cpuid_no_spec_flush(struct kvm_cpuid_entry2 *e, unsigned *n)
{
    struct kvm_cpuid_entry2 *l7 = gh_leaf(e, *n, 7, 0);
    if (l7)
        l7->edx &= ~((1u << 26) | (1u << 27) | (1u << 28) | (1u << 31));
    struct kvm_cpuid_entry2 *x8 = gh_leaf(e, *n, 0x80000008, 0);
    if (x8)
        x8->ebx &= ~((1u << 12) | (1u << 14) | (1u << 15) | (1u << 24));
    struct kvm_cpuid_entry2 *x21 = gh_leaf(e, *n, 0x80000021, 0);
    if (x21)
        x21->eax &= ~(1u << 27); /* SBPB */
}

static void deny_one(struct gh *g, uint32_t index, uint32_t kinds)
{
    static uint8_t none;
    struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    f.ranges[0] = (struct kvm_msr_filter_range){.flags = kinds, .base = index, .nmsrs = 1,
                                                .bitmap = &none};
    ck_assert_int_eq(gh_filter(g, &f), 0);
}

static void no_filter(struct gh *g)
{
    struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    ck_assert_int_eq(gh_filter(g, &f), 0);
}

/* VMX: vmx_set_msr MSR_IA32_SPEC_CTRL (vmx.c 2336-2363): a refused value returns 1
 * (2341-2342); 0 is stored and keeps the intercept (2345-2346); the first non-zero write
 * calls vmx_disable_intercept_for_msr(SPEC_CTRL, RW) (2360-2362), which records the intent
 * in shadow_msr_intercept (4027-4031) and clears the bitmap bits unless the filter denies
 * (4033-4047). A later KVM_X86_SET_MSR_FILTER -> KVM_REQ_MSR_FILTER_CHANGED (x86.c
 * kvm_vm_ioctl_set_msr_filter 6431, vcpu_enter_guest 10450-10451) -> vmx_msr_filter_changed
 * (4166-4192) re-runs vmx_disable_intercept_for_msr for every MSR whose intent is
 * pass-through: the denied SPEC_CTRL is intercepted and exits with reason FILTER (x86.c
 * kvm_set/get_msr_with_filter 1542-1554); removing the filter passes it through again. */
START_TEST(spec_ctrl_passthrough_then_filter_vmx)
{
    struct gh g;
    gh_open(&g, "intel", cpuid_spec_flush);
    gh_user_msr(&g, KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_FILTER);
    const struct gh_op ops[] = {
        {GH_WR, MSR_IA32_SPEC_CTRL, RESERVED_SPEC}, /* intercepted: INVAL exit */
        {GH_WR, MSR_IA32_SPEC_CTRL, 0},             /* stays intercepted */
        {GH_WR, MSR_IA32_SPEC_CTRL, RESERVED_SPEC}, /* INVAL exit again */
        {GH_WR, MSR_IA32_SPEC_CTRL, 1},             /* IBRS: now passed through */
        {GH_WR, MSR_IA32_SPEC_CTRL, RESERVED_SPEC}, /* the CPU's #GP, no exit */
        {GH_RD, MSR_IA32_SPEC_CTRL, 0},
        {GH_CALL, 0, gh_gpa(gh_pause)},             /* deny SPEC_CTRL */
        {GH_WR, MSR_IA32_SPEC_CTRL, 1},
        {GH_RD, MSR_IA32_SPEC_CTRL, 0},
        {GH_CALL, 0, gh_gpa(gh_pause)},             /* remove the filter */
        {GH_WR, MSR_IA32_SPEC_CTRL, RESERVED_SPEC},
        {GH_RD, MSR_IA32_SPEC_CTRL, 0},
    };
    gh_ops(&g, ops, sizeof(ops) / sizeof(ops[0]));
    gh_start(&g, gh_gpa(gh_script), 0);
    gh_expect_msr_exit(&g, true, MSR_IA32_SPEC_CTRL, KVM_MSR_EXIT_REASON_INVAL, RESERVED_SPEC);
    gh_complete(&g, 1, 0);
    gh_expect_gp(&g);
    gh_expect_msr_exit(&g, true, MSR_IA32_SPEC_CTRL, KVM_MSR_EXIT_REASON_INVAL, RESERVED_SPEC);
    gh_complete(&g, 1, 0);
    gh_expect_gp(&g);
    gh_expect_gp(&g); /* pass-through: the reserved bit faults in the CPU */
    gh_expect_rd(&g, 1);
    gh_expect_out(&g, 0x12);
    deny_one(&g, MSR_IA32_SPEC_CTRL, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE);
    gh_expect_msr_exit(&g, true, MSR_IA32_SPEC_CTRL, KVM_MSR_EXIT_REASON_FILTER, 1);
    gh_complete(&g, 0, 0);
    gh_expect_msr_exit(&g, false, MSR_IA32_SPEC_CTRL, KVM_MSR_EXIT_REASON_FILTER, 0);
    gh_complete(&g, 0, 0x55);
    gh_expect_rd(&g, 0x55);
    gh_expect_out(&g, 0x12);
    no_filter(&g);
    gh_expect_gp(&g); /* pass-through again (the intent survived the filter) */
    gh_expect_rd(&g, 1);
    gh_expect_done(&g);
    gh_close(&g);
}
END_TEST

/* PRED_CMD / FLUSH_CMD writes are passed through iff the guest CPUID has the feature:
 * vmx.c vmx_vcpu_after_set_cpuid 7878-7884 (vmx_set_intercept_for_msr(..., MSR_TYPE_W,
 * !guest_has_pred_cmd_msr / !FLUSH_L1D)), svm.c svm_vcpu_after_set_cpuid 4615-4621
 * (set_msr_interception(..., 0, !!guest_has_pred_cmd_msr / !!FLUSH_L1D)). Without the
 * feature the write is intercepted and x86.c kvm_set_msr_common refuses it
 * (PRED_CMD 3395-3397, FLUSH_CMD 3423-3425): INVAL. With it, a reserved bit is the CPU's
 * #GP (no exit). A deny filter then wins: vmx_msr_filter_changed 4166-4192 /
 * svm_msr_filter_changed 924-940 -> set_msr_interception_bitmap 841-845 re-intercept the
 * write and it exits with reason FILTER. */
static void pred_flush_case(const char *vendor)
{
    const struct gh_op ops[] = {
        {GH_WR, MSR_IA32_PRED_CMD, 2},  {GH_WR, MSR_IA32_FLUSH_CMD, 2},
        {GH_WR, MSR_IA32_PRED_CMD, 1},  {GH_WR, MSR_IA32_FLUSH_CMD, 1},
        {GH_CALL, 0, gh_gpa(gh_pause)},
        {GH_WR, MSR_IA32_PRED_CMD, 1},  {GH_WR, MSR_IA32_FLUSH_CMD, 1},
    };
    /* without the CPUID bits: intercepted and refused */
    struct gh g;
    gh_open(&g, vendor, cpuid_no_spec_flush);
    gh_user_msr(&g, KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_FILTER);
    gh_ops(&g, ops, 4);
    gh_start(&g, gh_gpa(gh_script), 0);
    for (unsigned i = 0; i < 4 && !gh_pvm(&g, "PRED_CMD/FLUSH_CMD writes (even of reserved "
                                               "bit 1) succeed without their CPUID bits"); i++) {
        gh_expect_msr_exit(&g, true, ops[i].ecx, KVM_MSR_EXIT_REASON_INVAL, ops[i].val);
        gh_complete(&g, 1, 0);
        gh_expect_gp(&g);
    }
    gh_expect_done(&g);
    gh_close(&g);
    /* with them: passed through; then a deny filter on both writes */
    gh_open(&g, vendor, cpuid_spec_flush);
    gh_user_msr(&g, KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_FILTER);
    gh_ops(&g, ops, sizeof(ops) / sizeof(ops[0]));
    gh_start(&g, gh_gpa(gh_script), 0);
    if (!gh_pvm(&g, "PRED_CMD/FLUSH_CMD: a write of reserved bit 1 succeeds with the CPUID bits")) {
        gh_expect_gp(&g); /* PRED_CMD bit 1: the CPU's #GP */
        gh_expect_gp(&g); /* FLUSH_CMD bit 1 */
    }
    gh_expect_out(&g, 0x12); /* IBPB and L1D_FLUSH done without an exit */
    struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    static uint8_t none[2];
    f.ranges[0] = (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_WRITE,
                                                .base = MSR_IA32_PRED_CMD, .nmsrs = 1, .bitmap = none};
    f.ranges[1] = (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_WRITE,
                                                .base = MSR_IA32_FLUSH_CMD, .nmsrs = 1, .bitmap = none + 1};
    ck_assert_int_eq(gh_filter(&g, &f), 0);
    gh_expect_msr_exit(&g, true, MSR_IA32_PRED_CMD, KVM_MSR_EXIT_REASON_FILTER, 1);
    gh_complete(&g, 0, 0);
    gh_expect_msr_exit(&g, true, MSR_IA32_FLUSH_CMD, KVM_MSR_EXIT_REASON_FILTER, 1);
    gh_complete(&g, 0, 0);
    gh_expect_done(&g);
    gh_close(&g);
}

START_TEST(pred_flush_cmd_passthrough_per_cpuid_then_filter_intel) { pred_flush_case("intel"); }
END_TEST
START_TEST(pred_flush_cmd_passthrough_per_cpuid_then_filter_amd) { pred_flush_case("amd"); }
END_TEST

/* ---------------- case 1: filter changes while the vCPU runs ----------------
 * x86.c kvm_vm_ioctl_set_msr_filter (6392-6434) builds the new filter completely, swaps
 * the pointer (rcu_replace_pointer 6423-6425), waits for readers (synchronize_srcu 6426)
 * and only then kicks every vCPU with KVM_REQ_MSR_FILTER_CHANGED (6431), which
 * vcpu_enter_guest handles before the next entry (10450-10451 -> vmx_msr_filter_changed
 * vmx.c 4166-4192 / svm_msr_filter_changed svm.c 924-940, recomputing the bitmaps).
 * kvm_msr_allowed (1379-1420) dereferences the filter once per access: every intercepted
 * access is decided by one whole filter, the old or the new, and after the ioctl returned
 * by the new one; a passed-through MSR follows the new filter from the vCPU's next entry
 * (KVM_REQ_MSR_FILTER_CHANGED has no KVM_REQUEST_WAIT, kvm_host.h 121). softkvm's vCPU
 * compares the filter generation before every MSR access (msr/bitmap.h
 * msr_bitmap_intercepted), so its "next entry" is the next access after the ioctl.
 *
 * Two filters, each consistent only as a whole (two ranges plus the default):
 *   A: default ALLOW, [0x174] deny, [0x174, 0x277] allow -> SYSENTER_CS denied, PAT and
 *      FS_BASE (pass-through) allowed
 *   B: default DENY,  [0x277] deny, [0x174, 0x277] allow -> SYSENTER_CS allowed, PAT and
 *      FS_BASE denied
 * A swapper thread installs A, B, A, ... (generation k: A for even k), publishing k in
 * guest memory after each ioctl returns and waiting until the guest finished an iteration
 * that started after seeing k (except for k = 0 and k % 4 == 3: then the next ioctl
 * follows at once).
 * The guest loops: gen_before, RDMSR FS_BASE, 0x277, 0x174,
 * gen_after, logged (at most 8 iterations per generation); denied reads exit (reason FILTER) and get a marker value.
 * Checked: each read is exactly "allowed" or "denied"; the filter deciding it (j) never
 * goes back, lies in [gen_before, gen_after + 1]; and the first iteration that saw k is
 * decided by filter k alone when the swapper waited (nothing newer was being installed). */
#define CF_GEN (GH_DATA_GPA + 0x00)
#define CF_ACK (GH_DATA_GPA + 0x08)
#define CF_COUNT (GH_DATA_GPA + 0x10)
#define CF_STOP (GH_DATA_GPA + 0x18)
#define CF_CAP 200000u
#define CF_SWAPS 300u
__asm__(".pushsection .rodata.gh, \"a\"\n"
    "cf_loop:\n"
    "    xor %r13, %r13\n"
    "    mov $-1, %r15\n"
    "1:  mov 0x30000, %rbx\n"
    "    mov $0xc0000100, %ecx\n"      /* pass-through under A: first, so a stale */
    "    rdmsr\n"                       /* bitmap cannot hide behind another exit */
    "    mov %eax, %r10d\n"
    "    mov $0x277, %ecx\n"
    "    rdmsr\n"
    "    mov %eax, %r9d\n"
    "    mov $0x174, %ecx\n"
    "    rdmsr\n"
    "    mov %eax, %r8d\n"
    "    mov 0x30000, %r12\n"
    "    mov %r13, %rax\n"
    "    shl $5, %rax\n"
    "    add $0x100000, %rax\n"
    "    mov %rbx, (%rax)\n"
    "    mov %r8d, 8(%rax)\n"
    "    mov %r9d, 12(%rax)\n"
    "    mov %r10d, 16(%rax)\n"
    "    mov %r12, 24(%rax)\n"
    "    inc %r13\n"
    "    mov %r13, 0x30010\n"
    "    mov %rbx, 0x30008\n"
    "    cmp $200000, %r13\n"
    "    jae 2f\n"
    "    cmp %rbx, %r15\n"             /* at most 8 iterations per generation, then wait */
    "    je 3f\n"
    "    mov %rbx, %r15\n"
    "    xor %r14, %r14\n"
    "3:  inc %r14\n"
    "    cmp $8, %r14\n"
    "    jb 4f\n"
    "5:  cmpb $0, 0x30018\n"
    "    jne 2f\n"
    "    cmp 0x30000, %rbx\n"
    "    jne 1b\n"
    "    pause\n"
    "    jmp 5b\n"
    "4:  cmpb $0, 0x30018\n"
    "    je 1b\n"
    "2:  out %al, $0x1f\n"
    "    hlt\n"
    ".popsection\n");
extern const uint8_t cf_loop[];

struct cf_rec {
    uint64_t gen_before;
    uint32_t r174, r277, rfs, pad;
    uint64_t gen_after;
};

static uint8_t cf_allow[0x110], cf_deny1;
static void cf_filter(struct kvm_msr_filter *f, bool b)
{
    memset(f, 0, sizeof(*f));
    memset(cf_allow, 0xff, sizeof(cf_allow));
    f->flags = b ? KVM_MSR_FILTER_DEFAULT_DENY : KVM_MSR_FILTER_DEFAULT_ALLOW;
    f->ranges[0] = (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_READ,
                                                 .base = b ? 0x277 : 0x174, .nmsrs = 1, .bitmap = &cf_deny1};
    f->ranges[1] = (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_READ, .base = 0x174,
                                                 .nmsrs = 0x277 - 0x174 + 1, .bitmap = cf_allow};
}

struct cf_ctx {
    struct gh *g;
    _Atomic bool done;
    int errors;
};

static _Atomic uint64_t *cf_word(struct gh *g, uint64_t gpa)
{
    return (_Atomic uint64_t *)(void *)(g->mem + gpa);
}

/* Did the swapper wait for the guest's ack of generation k before installing k + 1?
 * Not for k = 0 (it starts at once) nor k % 4 == 3. */
static bool cf_waited(uint64_t k)
{
    return k >= 1 && k % 4 != 3;
}

static void *cf_swapper(void *arg)
{
    struct cf_ctx *c = arg;
    for (uint64_t k = 1; k <= CF_SWAPS && !atomic_load(&c->done); k++) {
        struct kvm_msr_filter f;
        cf_filter(&f, k & 1);
        if (gh_filter(c->g, &f) != 0)
            c->errors++;
        atomic_store_explicit(cf_word(c->g, CF_GEN), k, memory_order_release);
        while (cf_waited(k) && !atomic_load(&c->done) &&
               atomic_load_explicit(cf_word(c->g, CF_ACK), memory_order_acquire) < k)
            sched_yield();
    }
    atomic_store(cf_word(c->g, CF_STOP), 1);
    return NULL;
}

static void concurrent_case(const char *vendor)
{
    struct gh g;
    gh_open(&g, vendor, NULL);
    gh_user_msr(&g, KVM_MSR_EXIT_REASON_FILTER);
    struct kvm_msr_filter f = {0};
    cf_filter(&f, false); /* generation 0: A */
    ck_assert_int_eq(gh_filter(&g, &f), 0);
    gh_start(&g, gh_gpa(cf_loop), 0);
    struct kvm_sregs sr = {0};
    ck_assert_int_eq(gh_io(&g, g.vcpu, KVM_GET_SREGS, &sr), 0);
    sr.fs.base = 0x12340000;
    ck_assert_int_eq(gh_io(&g, g.vcpu, KVM_SET_SREGS, &sr), 0);
    ck_assert_int_eq(gh_set_msr(&g, MSR_IA32_SYSENTER_CS, 0x808), 1);
    struct cf_ctx c = {.g = &g};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, cf_swapper, &c), 0);
    unsigned exits = 0;
    for (;;) {
        uint32_t r = gh_run(&g);
        if (r == KVM_EXIT_IO && g.run->io.port == GH_PORT_DONE)
            break;
        ck_assert_uint_eq(r, KVM_EXIT_X86_RDMSR);
        ck_assert_uint_eq(g.run->msr.reason, KVM_MSR_EXIT_REASON_FILTER);
        gh_complete(&g, 0, 0xd0000000u | (g.run->msr.index & 0xffff));
        exits++;
    }
    atomic_store(&c.done, true);
    pthread_join(t, NULL);
    ck_assert_int_eq(c.errors, 0);
    uint64_t n = atomic_load(cf_word(&g, CF_COUNT));
    ck_assert_uint_gt(n, CF_SWAPS);
    ck_assert_uint_gt(exits, 0);
    const struct cf_rec *log = (const struct cf_rec *)(g.mem + GH_LOG_GPA);
    const uint32_t real[3] = {0x12340000, 0x00070406, 0x808};
    const uint32_t mark[3] = {0xd0000100, 0xd0000277, 0xd0000174};
    const bool denied_by_a[3] = {false, false, true};
    uint64_t cur_j = 0, first_seen = UINT64_MAX;
    unsigned swaps_seen = 0;
    for (uint64_t i = 0; i < n; i++) {
        const struct cf_rec *r = &log[i];
        const uint32_t got[3] = {r->rfs, r->r277, r->r174}; /* guest order */
        ck_assert_uint_le(r->gen_before, r->gen_after);
        bool first = r->gen_before != first_seen;
        if (first) {
            first_seen = r->gen_before;
            swaps_seen++;
        }
        for (int a = 0; a < 3; a++) {
            if (got[a] != real[a] && got[a] != mark[a])
                ck_abort_msg("record %llu access %d: value 0x%x", (unsigned long long)i, a, got[a]);
            bool denied = got[a] == mark[a];
            unsigned parity = denied == denied_by_a[a] ? 0 : 1; /* 0 = A (even k) */
            uint64_t j = cur_j > r->gen_before ? cur_j : r->gen_before;
            if ((j & 1) != parity)
                j++;
            if (j > r->gen_after + 1)
                ck_abort_msg("record %llu access %d decided by filter %llu, seen gens %llu..%llu",
                             (unsigned long long)i, a, (unsigned long long)j,
                             (unsigned long long)r->gen_before, (unsigned long long)r->gen_after);
            if (first && cf_waited(r->gen_before) && j != r->gen_before)
                ck_abort_msg("record %llu (first after gen %llu) access %d used filter %llu",
                             (unsigned long long)i, (unsigned long long)r->gen_before, a,
                             (unsigned long long)j);
            cur_j = j;
        }
    }
    ck_assert_uint_ge(swaps_seen, CF_SWAPS * 3 / 4);
    if (getenv("CF_VERBOSE"))
        fprintf(stderr, "%s: %llu iterations, %u exits, %u generations seen\n", vendor,
                (unsigned long long)n, exits, swaps_seen);
    gh_close(&g);
}

START_TEST(filter_change_while_running_intel) { concurrent_case("intel"); }
END_TEST
START_TEST(filter_change_while_running_amd) { concurrent_case("amd"); }
END_TEST

GH_BLOB_END();

int main(void)
{
    gh_require_oracle();
    Suite *s = suite_create("msr_guest_filter");
    TCase *tc = tcase_create("guest");
    tcase_set_timeout(tc, 120);
    gh_add(tc, filter_change_while_running_intel, "intel");
    gh_add(tc, filter_change_while_running_amd, "amd");
    gh_add(tc, cpl3_gp_before_filter_intel, "intel");
    gh_add(tc, cpl3_gp_before_filter_amd, "amd");
    gh_add(tc, implicit_msr_uses_unfiltered_intel, "intel");
    gh_add(tc, implicit_msr_uses_unfiltered_amd, "amd");
    gh_add(tc, spec_ctrl_passthrough_then_filter_vmx, "intel");
    gh_add(tc, pred_flush_cmd_passthrough_per_cpuid_then_filter_intel, "intel");
    gh_add(tc, pred_flush_cmd_passthrough_per_cpuid_then_filter_amd, "amd");
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
