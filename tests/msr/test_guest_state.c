/* msr/ at guest level: MSR state rules (cases 6 and 7 of issue 15): IA32_FEATURE_CONTROL
 * locking, what INIT keeps and resets, and the AMD-flavour EFER/VM_CR/HWCR rules. A guest
 * executes the RDMSR/WRMSR (tests/msr/guest_harness.h); every expectation cites Linux 6.12
 * (file:function, line numbers of 6.12).
 *
 * ctest also runs these guests on the host's /dev/kvm (msr_test_guest_state_realkvm), the
 * cases of the host's vendor only; where PVM differs, gh_pvm() names it and asserts PVM's
 * behaviour (PVM is its own vendor module, neither vmx.c nor svm.c). */
#include "guest_harness.h"
#include "msr/msr_index.h"

#define INVAL_EXIT(g, wr, idx, data)                                                  \
    do {                                                                              \
        gh_expect_msr_exit((g), (wr), (idx), KVM_MSR_EXIT_REASON_INVAL, (data));      \
        gh_complete((g), 1, 0);                                                       \
        gh_expect_gp(g);                                                              \
    } while (0)

static void cpuid_vmx(struct kvm_cpuid_entry2 *e, unsigned *n)
{
    gh_leaf_add(e, n, 1, 0)->ecx |= 1u << 5; /* user space claims VMX */
}

/* ---------------- case 6a: IA32_FEATURE_CONTROL locking (VMX flavour) ----------------
 * vmx.c is_vmx_feature_control_msr_valid (1993-2015): a guest write fails once LOCKED is
 * set (2005-2007) and may only set msr_ia32_feature_control_valid_bits (2012), which RESET
 * makes FEAT_CTL_LOCKED (__vmx_vcpu_reset 4894); the VMX bits join only with
 * guest_cpu_cap_has(VMX) (vmx_vcpu_after_set_cpuid 7840, 7849-7855), i.e. with nested=1
 * (vmx_set_cpu_caps 7964-7965) — softkvm's kvm_intel has nested=Y (emu/vmx.c), so with
 * CPUID.VMX they are valid; LMCE joins with MCG_LMCE_P (vmx_setup_mce 8195-8203). Host
 * writes may set any KVM_SUPPORTED_FEATURE_CONTROL bit (1986-1991, 2009-2010), locked or not.
 * "Host write of 0 leaves VMX operation" has its own case below, from inside VMXON. */
START_TEST(feature_control_locking_vmx)
{
    struct gh g;
    gh_open(&g, "intel", cpuid_vmx);
    gh_user_msr(&g, KVM_MSR_EXIT_REASON_INVAL);
    const struct gh_op ops[] = {
        {GH_WR, MSR_IA32_FEAT_CTL, 1u << 3},    /* reserved bit: not valid */
        {GH_WR, MSR_IA32_FEAT_CTL, 1u << 20},   /* LMCE without MCG_LMCE_P */
        {GH_WR, MSR_IA32_FEAT_CTL, 5},          /* LOCKED|VMX outside SMX: valid (nested=Y) */
        {GH_RD, MSR_IA32_FEAT_CTL, 0},
        {GH_WR, MSR_IA32_FEAT_CTL, 5},          /* locked: even the same value fails */
        {GH_CALL, 0, 0},                        /* patched: pause for host writes */
        {GH_RD, MSR_IA32_FEAT_CTL, 0},          /* the host's value */
        {GH_WR, MSR_IA32_FEAT_CTL, 0},          /* still locked */
        {GH_CALL, 0, 0},                        /* host writes 0 */
        {GH_WR, MSR_IA32_FEAT_CTL, (1u << 20) | 1}, /* unlocked; LMCE valid after SETUP_MCE */
        {GH_RD, MSR_IA32_FEAT_CTL, 0},
    };
    struct gh_op o[sizeof(ops) / sizeof(ops[0])];
    memcpy(o, ops, sizeof(ops));
    extern const uint8_t gh_pause2[];
    o[5].val = o[8].val = gh_gpa(gh_pause2);
    gh_ops(&g, o, sizeof(o) / sizeof(o[0]));
    gh_start(&g, gh_gpa(gh_script), 0);
    INVAL_EXIT(&g, true, MSR_IA32_FEAT_CTL, 1u << 3);
    INVAL_EXIT(&g, true, MSR_IA32_FEAT_CTL, 1u << 20);
    gh_expect_rd(&g, 5);
    INVAL_EXIT(&g, true, MSR_IA32_FEAT_CTL, 5);
    gh_expect_out(&g, 0x12);
    /* host: bits outside KVM_SUPPORTED_FEATURE_CONTROL fail (KVM_SET_MSRS processes 0) */
    ck_assert_int_eq(gh_set_msr(&g, MSR_IA32_FEAT_CTL, 1u << 3), 0);
    ck_assert_int_eq(gh_set_msr(&g, MSR_IA32_FEAT_CTL, 0x160007), 1); /* locked: fine */
    gh_expect_rd(&g, 0x160007);
    INVAL_EXIT(&g, true, MSR_IA32_FEAT_CTL, 0);
    gh_expect_out(&g, 0x12);
    ck_assert_int_eq(gh_set_msr(&g, MSR_IA32_FEAT_CTL, 0), 1);
    uint64_t mcg_cap = 10 | (1ull << 27); /* 10 banks, MCG_LMCE_P */
    ck_assert_int_eq(gh_io(&g, g.vcpu, KVM_X86_SETUP_MCE, &mcg_cap), 0);
    gh_expect_rd(&g, (1u << 20) | 1);
    gh_expect_done(&g);
    gh_close(&g);
}
END_TEST

/* ---------------- case 6a': a host write of FEAT_CTL = 0 leaves VMX operation ----------------
 * vmx.c vmx_set_msr MSR_IA32_FEAT_CTL (2391-2397): a host-initiated write of 0 calls
 * vmx_leave_nested (nested.c 6792-6799) -> free_nested, which clears nested.vmxon. The
 * vCPU is then outside VMX operation: KVM_GET_NESTED_STATE reports vmxon_pa INVALID_GPA
 * (vmx_get_nested_state 6680, 6695 only when vmxon) and the guest's next VMXOFF is #UD
 * (handle_vmxoff 5533 -> nested_vmx_check_permission 3506-3508). The control run writes
 * the same locked value back instead (not 0): VMXOFF then succeeds. */
__asm__(".pushsection .rodata.gh, \"a\"\n"
    "vmx_on_pause_off:\n"
    "    mov %cr0, %rax\n"
    "    or $0x20, %rax\n"              /* CR0.NE: VMXON needs it (IA32_VMX_CR0_FIXED0) */
    "    mov %rax, %cr0\n"
    "    mov %cr4, %rax\n"
    "    or $0x2000, %rax\n"            /* CR4.VMXE */
    "    mov %rax, %cr4\n"
    "    vmxon 0x30400\n"               /* the pointer there: the VMXON region's GPA */
    "    out %al, $0x12\n"              /* in VMX operation: the host writes FEAT_CTL */
    "    vmxoff\n"
    "    out %al, $0x13\n"              /* VMXOFF retired */
    "    ret\n"
    ".popsection\n");
extern const uint8_t vmx_on_pause_off[];

static void feat_ctl_zero_case(bool zero)
{
    struct gh g;
    gh_open(&g, "intel", cpuid_vmx);
    const struct gh_op ops[] = {
        {GH_WR, MSR_IA32_FEAT_CTL, 5}, /* LOCKED | VMX outside SMX */
        {GH_CALL, 0, gh_gpa(vmx_on_pause_off)},
    };
    gh_ops(&g, ops, 2);
    const uint64_t region = GH_DATA_GPA + 0x1000;
    gh_put64(&g, GH_DATA_GPA + 0x400, region);
    uint32_t rev = (uint32_t)gh_get_msr(&g, MSR_IA32_VMX_BASIC) & 0x7fffffffu;
    memcpy(g.mem + region, &rev, 4);
    gh_start(&g, gh_gpa(gh_script), 0);
    gh_expect_out(&g, 0x12);
    struct {
        struct kvm_nested_state h;
        uint8_t data[2 * 4096];
    } ns;
    memset(&ns, 0, sizeof(ns));
    ns.h.size = sizeof(ns);
    ck_assert_int_eq(gh_io(&g, g.vcpu, KVM_GET_NESTED_STATE, &ns), 0);
    ck_assert_uint_eq(ns.h.hdr.vmx.vmxon_pa, region); /* in VMX operation */
    ck_assert_int_eq(gh_set_msr(&g, MSR_IA32_FEAT_CTL, zero ? 0 : 5), 1);
    memset(&ns, 0, sizeof(ns));
    ns.h.size = sizeof(ns);
    ck_assert_int_eq(gh_io(&g, g.vcpu, KVM_GET_NESTED_STATE, &ns), 0);
    if (zero) {
        ck_assert_uint_eq(ns.h.hdr.vmx.vmxon_pa, -1ull); /* left VMX operation */
        ck_assert_uint_eq(gh_expect_out(&g, GH_PORT_EXC), 6); /* VMXOFF: #UD */
    } else {
        ck_assert_uint_eq(ns.h.hdr.vmx.vmxon_pa, region);
        gh_expect_out(&g, 0x13);
        gh_expect_done(&g);
    }
    gh_close(&g);
}

START_TEST(feature_control_host_zero_leaves_vmx_operation_vmx)
{
    feat_ctl_zero_case(true);
    feat_ctl_zero_case(false);
}
END_TEST

/* ---------------- case 6b: INIT keeps some MSRs, resets others ----------------
 * INIT arrives as an MSI with delivery mode INIT (lapic.c __apic_accept_irq); the vCPU's
 * next KVM_RUN runs kvm_apic_accept_events (lapic.c 3462-3467): kvm_vcpu_reset(vcpu, true)
 * and, for the BSP, RUNNABLE at F000:FFF0 — where a second memslot holds a jump to a
 * real-mode reader that RDMSRs a list (RDMSR works at CPL 0 in real mode).
 * Reset by INIT (x86.c kvm_vcpu_reset): SMI_COUNT (11705), KVM_ASYNC_PF_EN (11721),
 * KVM_STEAL_TIME (11723), KVM_SYSTEM_TIME (kvmclock_reset 11725 -> 3187-3191), EFER
 * (set_efer(vcpu, 0) 11796), SPEC_CTRL (vmx.c vmx_vcpu_reset 4909; svm.c svm_vcpu_reset
 * 1402). Kept: PAT and MISC_ENABLE (only `if (!init_event)`, 11748-11757), APIC_BASE
 * (lapic.c kvm_lapic_reset 2814-2826, RESET only), SYSENTER_CS/ESP/EIP (vmx.c init_vmcs
 * 4852-4854 runs from __vmx_vcpu_reset, RESET only: vmx_vcpu_reset 4905-4906; svm.c
 * init_vmcb 1230-1376 never writes them), STAR/LSTAR/KERNEL_GS_BASE and TSC_AUX (no reset
 * path writes them), the MTRRs (kvm_vcpu_reset never touches vcpu->arch.mtrr_state),
 * FEATURE_CONTROL (VMX: no reset code writes msr_ia32_feature_control). */
__asm__(".pushsection .rodata.gh, \"a\"\n"
    "gh_pause2:\n"
    "    out %al, $0x12\n"
    "    ret\n"
    ".code16\n"
    "rm_reader:\n"
    "    mov $0x800, %si\n"
    "1:  mov (%si), %ecx\n"
    "    cmp $0xffffffff, %ecx\n"
    "    je 2f\n"
    "    rdmsr\n"
    "    out %eax, $0x10\n"
    "    mov %edx, %eax\n"
    "    out %eax, $0x11\n"
    "    add $4, %si\n"
    "    jmp 1b\n"
    "2:  out %al, $0x1f\n"
    "    hlt\n"
    "rm_reader_end:\n"
    ".code64\n"
    ".popsection\n");
extern const uint8_t rm_reader[], rm_reader_end[];

static void cpuid_init_test(struct kvm_cpuid_entry2 *e, unsigned *n)
{
    struct kvm_cpuid_entry2 *l7 = gh_leaf_add(e, n, 7, 0);
    l7->flags |= KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    l7->edx |= 1u << 26;                                 /* SPEC_CTRL */
    gh_leaf_add(e, n, 0x80000001, 0)->edx |= 1u << 27;  /* RDTSCP: TSC_AUX */
}

struct init_row {
    uint32_t index;
    uint64_t written; /* by the guest before INIT (host for SMI_COUNT) */
    bool kept;        /* else the RESET value `reset` */
    uint64_t reset;
    bool intel_only;
};

static void init_case(const char *vendor)
{
    bool intel = !strcmp(vendor, "intel");
    const struct init_row rows[] = {
        {MSR_IA32_CR_PAT, 0x0606060606060606ull, true, 0, false},
        {MSR_IA32_MISC_ENABLE, 0x1801, true, 0, false},
        {MSR_IA32_SYSENTER_CS, 0x10, true, 0, false},
        {MSR_IA32_SYSENTER_ESP, 0x123000, true, 0, false},
        {MSR_IA32_SYSENTER_EIP, 0x456000, true, 0, false},
        {MSR_STAR, 0x0023001000000000ull, true, 0, false},
        {MSR_LSTAR, 0xffff800000001000ull, true, 0, false},
        {MSR_KERNEL_GS_BASE, 0x7000, true, 0, false},
        {MSR_TSC_AUX, 0x42, true, 0, false},
        {MSR_MTRRdefType, 0xc06, true, 0, false},
        {MSR_MTRRphysBase0, 0x80000006, true, 0, false},
        {MSR_IA32_FEAT_CTL, 1, true, 0, true},
        {MSR_IA32_APICBASE, 0, true, 0, false}, /* not written: stays 0xfee00900 */
        {MSR_IA32_SPEC_CTRL, 1, false, 0, false},
        {MSR_KVM_STEAL_TIME, 0x41001, false, 0, false},
        {MSR_KVM_SYSTEM_TIME_NEW, 0x42001, false, 0, false},
        {MSR_KVM_ASYNC_PF_EN, 0x40009, false, 0, false}, /* enabled, delivery as #PF-INT */
        {MSR_SMI_COUNT, 5, false, 0, false},        /* host-only write */
        {MSR_EFER, 0, false, 0, false},             /* LME|LMA before: long mode */
    };
    const unsigned nrows = sizeof(rows) / sizeof(rows[0]);
    struct gh g;
    gh_opt_irqchip = true;
    gh_open(&g, vendor, cpuid_init_test);
    gh_opt_irqchip = false;
    bool no_aux = gh_pvm(&g, "MSR_TSC_AUX is refused (#GP) although the guest CPUID has RDTSCP: "
                             "PVM's KVM does not support the MSR");
#define ROW_OUT(i) ((rows[i].intel_only && !intel) || (no_aux && rows[i].index == MSR_TSC_AUX))
    /* real-mode side: F000:FFF0 -> JMP to offset 0 of the segment, the reader */
    uint8_t *top = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(top, MAP_FAILED);
    memcpy(top, rm_reader, (size_t)(rm_reader_end - rm_reader));
    const uint8_t jmp0[] = {0xe9, 0x0d, 0x00}; /* 0xfff3 + 0x000d = 0x10000 -> IP 0 */
    memcpy(top + 0xfff0, jmp0, sizeof(jmp0));
    struct kvm_userspace_memory_region r = {.slot = 1, .guest_phys_addr = 0xffff0000u,
                                            .memory_size = 0x10000, .userspace_addr = (uintptr_t)top};
    ck_assert_int_eq(gh_io(&g, g.vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    struct gh_op ops[32];
    unsigned n = 0;
    uint32_t *list = (uint32_t *)(g.mem + 0x800);
    unsigned nl = 0;
    for (unsigned i = 0; i < nrows; i++) {
        if (ROW_OUT(i))
            continue;
        list[nl++] = rows[i].index;
        if (rows[i].written && rows[i].index != MSR_SMI_COUNT && rows[i].index != MSR_EFER)
            ops[n++] = (struct gh_op){GH_WR, rows[i].index, rows[i].written};
    }
    list[nl] = 0xffffffffu;
    gh_ops(&g, ops, n);
    gh_start(&g, gh_gpa(gh_script), 0);
    ck_assert_int_eq(gh_set_msr(&g, MSR_SMI_COUNT, 5), 1);
    uint64_t apic_base = gh_get_msr(&g, MSR_IA32_APICBASE);
    ck_assert_uint_eq(apic_base, 0xfee00900u); /* BSP | EN */
    gh_expect_done(&g); /* all WRMSRs done */
    for (unsigned i = 0; i < nrows; i++)
        if (rows[i].written && !ROW_OUT(i) && rows[i].index != MSR_EFER) {
            uint64_t v = gh_get_msr(&g, rows[i].index), want = rows[i].written;
            if (rows[i].index == MSR_IA32_SPEC_CTRL &&
                gh_pvm(&g, "SPEC_CTRL written 1 by the guest reads 0 through KVM_GET_MSRS"))
                want = 0;
            ck_assert_msg(v == want, "MSR 0x%x before INIT = 0x%llx, want 0x%llx",
                          rows[i].index, (unsigned long long)v, (unsigned long long)want);
        }
    ck_assert_uint_eq(gh_get_msr(&g, MSR_EFER) & 0x500, 0x500);
    /* INIT to APIC ID 0 */
    struct kvm_msi msi = {.address_lo = 0xfee00000u, .data = 0x500};
    ck_assert_int_ge(gh_io(&g, g.vm, KVM_SIGNAL_MSI, &msi), 0);
    if (gh_pvm(&g, "an INIT MSI to the BSP does not reset it (lapic.c kvm_apic_accept_events): "
                   "it only wakes from HLT and goes on after it")) {
        gh_expect_done(&g); /* gh_done loops back to its OUT */
        gh_close(&g);
        munmap(top, 0x10000);
        return;
    }
    unsigned k = 0;
    for (unsigned i = 0; i < nrows; i++) {
        if (ROW_OUT(i))
            continue;
        uint64_t got = gh_take_rd(&g);
        uint64_t want = rows[i].kept ? rows[i].written : rows[i].reset;
        if (rows[i].index == MSR_IA32_APICBASE)
            want = apic_base;
        if (got != want)
            ck_abort_msg("%s: MSR 0x%x after INIT = 0x%llx, want 0x%llx (%s)", vendor,
                         rows[i].index, (unsigned long long)got, (unsigned long long)want,
                         rows[i].kept ? "kept" : "reset");
        k++;
    }
    ck_assert_uint_eq(k, nl);
    gh_expect_done(&g);
    struct kvm_regs regs = {0};
    ck_assert_int_eq(gh_io(&g, g.vcpu, KVM_GET_REGS, &regs), 0);
    struct kvm_sregs sr = {0};
    ck_assert_int_eq(gh_io(&g, g.vcpu, KVM_GET_SREGS, &sr), 0);
    ck_assert_uint_eq(sr.cs.base, 0xffff0000u); /* the reader ran after the reset vector */
    gh_close(&g);
    munmap(top, 0x10000);
#undef ROW_OUT
}

START_TEST(init_keeps_and_resets_msrs_intel) { init_case("intel"); }
END_TEST
START_TEST(init_keeps_and_resets_msrs_amd) { init_case("amd"); }
END_TEST

/* ---------------- case 7a: EFER bits gated by guest CPUID (AMD flavour) ----------------
 * x86.c set_efer (1336-1371): efer_reserved_bits first (1340-1341) — on SVM
 * svm_hardware_setup enables NX, FFXSR, AUTOIBRS and, with nested=1, SVME|LMSLE
 * (svm.c 5486, 5502-5503, 5518-5519, 5529-5532); on VMX only NX (vmx.c 8416) besides
 * SCE/LME/LMA (x86.c 9352, 9358-9359) — then, for the guest, __kvm_valid_efer (1306-1325):
 * AUTOIBRS needs CPUID 0x80000021:EAX[8], FFXSR needs FXSR_OPT (0x80000001:EDX[25]), SVME
 * needs SVM (0x80000001:ECX[2]); LMSLE has no CPUID check. Refusals are 1 -> INVAL. */
static bool efer_bits_on;
static void cpuid_efer(struct kvm_cpuid_entry2 *e, unsigned *n)
{
    struct kvm_cpuid_entry2 *x1 = gh_leaf_add(e, n, 0x80000001, 0);
    struct kvm_cpuid_entry2 *x21 = gh_leaf_add(e, n, 0x80000021, 0);
    struct kvm_cpuid_entry2 *x0 = gh_leaf_add(e, n, 0x80000000, 0);
    if (x0->eax < 0x80000021)
        x0->eax = 0x80000021;
    if (efer_bits_on) {
        x1->ecx |= 1u << 2;
        x1->edx |= 1u << 25;
        x21->eax |= 1u << 8;
    } else {
        x1->ecx &= ~(1u << 2);
        x1->edx &= ~(1u << 25);
        x21->eax &= ~(1u << 8);
    }
}

#define EFER_BASE 0x500ull /* LME (kept: paging is on) | LMA (ignored in writes) */
static void efer_case(const char *vendor, bool bits, bool svm_flavour)
{
    const uint64_t bit[] = {1ull << 12, 1ull << 14, 1ull << 21, 1ull << 13}; /* SVME FFXSR AUTOIBRS LMSLE */
    struct gh_op ops[8];
    for (unsigned i = 0; i < 4; i++) {
        ops[2 * i] = (struct gh_op){GH_WR, MSR_EFER, EFER_BASE | bit[i]};
        ops[2 * i + 1] = (struct gh_op){GH_RD, MSR_EFER, 0};
    }
    struct gh g;
    efer_bits_on = bits;
    gh_open(&g, vendor, cpuid_efer);
    gh_user_msr(&g, KVM_MSR_EXIT_REASON_INVAL);
    gh_ops(&g, ops, 8);
    gh_start(&g, gh_gpa(gh_script), 0);
    uint64_t cur = EFER_BASE;
    bool pvm = svm_flavour && gh_pvm(&g, "EFER.SVME, FFXSR, AUTOIBRS and LMSLE are all reserved "
                                         "whatever the guest CPUID (PVM's efer_reserved_bits)");
    for (unsigned i = 0; i < 4; i++) {
        bool ok = svm_flavour && (bits || i == 3) && !pvm;
        if (ok)
            cur = EFER_BASE | bit[i];
        else
            INVAL_EXIT(&g, true, MSR_EFER, EFER_BASE | bit[i]);
        gh_expect_rd(&g, cur);
    }
    gh_expect_done(&g);
    gh_close(&g);
}

START_TEST(efer_svm_bits_gated_by_cpuid_amd)
{
    efer_case("amd", false, true);
    efer_case("amd", true, true);
}
END_TEST
/* VMX: the same bits are reserved whatever the CPUID says. */
START_TEST(efer_svm_bits_reserved_intel)
{
    efer_case("intel", false, false);
    efer_case("intel", true, false);
}
END_TEST

/* ---------------- case 7b: VM_CR (AMD flavour) ----------------
 * svm.c svm_set_msr MSR_VM_CR (3302-3303) -> svm_set_vm_cr (3043-3066): bits outside
 * SVM_VM_CR_VALID_MASK 0x1f fail (3048-3049); once SVMDIS is set, LOCK and SVMDIS no
 * longer change (3051-3057); the value is stored BEFORE the SVMDIS-with-EFER.SVME check
 * (3059-3063), so that refused write still changes VM_CR. svm_set_efer (299-) does not
 * look at VM_CR: EFER.SVME may be set with SVMDIS. Read: svm_get_msr 2983-2985. */
START_TEST(vm_cr_lock_and_svmdis_amd)
{
    struct gh g;
    efer_bits_on = true;
    gh_open(&g, "amd", cpuid_efer);
    gh_user_msr(&g, KVM_MSR_EXIT_REASON_INVAL);
    const struct gh_op ops[] = {
        {GH_WR, MSR_VM_CR, 0x20}, {GH_RD, MSR_VM_CR, 0},
        {GH_WR, MSR_VM_CR, 0x08}, {GH_RD, MSR_VM_CR, 0}, /* LOCK */
        {GH_WR, MSR_VM_CR, 0x00}, {GH_RD, MSR_VM_CR, 0}, /* LOCK clears: SVMDIS not set */
        {GH_WR, MSR_VM_CR, 0x18}, {GH_RD, MSR_VM_CR, 0}, /* LOCK | SVMDIS */
        {GH_WR, MSR_VM_CR, 0x00}, {GH_RD, MSR_VM_CR, 0}, /* frozen */
        {GH_WR, MSR_VM_CR, 0x01}, {GH_RD, MSR_VM_CR, 0}, /* DPD still writable */
        {GH_WR, MSR_EFER, EFER_BASE | (1ull << 12)}, {GH_RD, MSR_EFER, 0},
        {GH_WR, MSR_VM_CR, 0x18}, {GH_RD, MSR_VM_CR, 0}, /* SVMDIS with SVME: fails, stored */
    };
    gh_ops(&g, ops, sizeof(ops) / sizeof(ops[0]));
    gh_start(&g, gh_gpa(gh_script), 0);
    if (gh_pvm(&g, "VM_CR is an unknown MSR (PVM is not svm.c): a plain #GP, reason UNKNOWN "
                   "not asked for")) {
        gh_expect_gp(&g);
        gh_close(&g);
        return;
    }
    INVAL_EXIT(&g, true, MSR_VM_CR, 0x20);
    gh_expect_rd(&g, 0);
    gh_expect_rd(&g, 0x08);
    gh_expect_rd(&g, 0x00);
    gh_expect_rd(&g, 0x18);
    gh_expect_rd(&g, 0x18);
    gh_expect_rd(&g, 0x19);
    gh_expect_rd(&g, EFER_BASE | (1ull << 12));
    INVAL_EXIT(&g, true, MSR_VM_CR, 0x18);
    gh_expect_rd(&g, 0x18); /* DPD cleared by the refused write */
    gh_expect_done(&g);
    gh_close(&g);
}
END_TEST

/* ---------------- case 7c: HWCR.McStatusWrEn and MCi_STATUS ----------------
 * x86.c set_msr_mce (3060-3128): a guest non-zero write to MCi_STATUS fails unless
 * can_set_mci_status (3051-3058): guest CPUID AMD-compatible AND HWCR bit 18 (3115-3121);
 * writing 0 always works. HWCR (kvm_set_msr_common 3436-3451, both flavours): bits 3, 6
 * and 8 are dropped, 18 and 24 stored, anything else fails; read 4056-4058. MCG_CAP
 * starts with KVM_MAX_MCE_BANKS banks (kvm_arch_vcpu_create 11567). */
static void cpuid_amd_vendor(struct kvm_cpuid_entry2 *e, unsigned *n)
{
    struct kvm_cpuid_entry2 *l0 = gh_leaf_add(e, n, 0, 0);
    l0->ebx = 0x68747541; /* AuthenticAMD */
    l0->edx = 0x69746e65;
    l0->ecx = 0x444d4163;
}
static void cpuid_intel_vendor(struct kvm_cpuid_entry2 *e, unsigned *n)
{
    struct kvm_cpuid_entry2 *l0 = gh_leaf_add(e, n, 0, 0);
    l0->ebx = 0x756e6547; /* GenuineIntel */
    l0->edx = 0x49656e69;
    l0->ecx = 0x6c65746e;
}

static void hwcr_case(const char *vendor, bool amd_guest)
{
    struct gh g;
    gh_open(&g, vendor, amd_guest ? cpuid_amd_vendor : cpuid_intel_vendor);
    gh_user_msr(&g, KVM_MSR_EXIT_REASON_INVAL);
    const uint32_t st = MSR_IA32_MC0_CTL + 1; /* MC0_STATUS */
    const struct gh_op ops[] = {
        {GH_WR, st, 0x1234},     {GH_WR, st, 0},
        {GH_WR, MSR_K7_HWCR, (1u << 18) | 0x148}, {GH_RD, MSR_K7_HWCR, 0},
        {GH_WR, st, 0x1234},     {GH_RD, st, 0},
        {GH_WR, MSR_K7_HWCR, 1}, {GH_WR, MSR_K7_HWCR, 0}, {GH_WR, st, 0x5678}, {GH_RD, st, 0},
    };
    gh_ops(&g, ops, sizeof(ops) / sizeof(ops[0]));
    gh_start(&g, gh_gpa(gh_script), 0);
    INVAL_EXIT(&g, true, st, 0x1234);
    gh_expect_rd(&g, 1u << 18); /* 3, 6, 8 dropped */
    if (!amd_guest)
        INVAL_EXIT(&g, true, st, 0x1234);
    gh_expect_rd(&g, amd_guest ? 0x1234 : 0);
    INVAL_EXIT(&g, true, MSR_K7_HWCR, 1);
    INVAL_EXIT(&g, true, st, 0x5678); /* McStatusWrEn cleared again */
    gh_expect_rd(&g, amd_guest ? 0x1234 : 0);
    gh_expect_done(&g);
    gh_close(&g);
}

START_TEST(hwcr_mcstatuswren_unlocks_mci_status_amd) { hwcr_case("amd", true); }
END_TEST
/* The rule follows the guest CPUID vendor, not the flavour: an Intel-vendor guest on the
 * SVM flavour never writes MCi_STATUS, an AMD-vendor guest on the VMX flavour can. */
START_TEST(hwcr_mcstatuswren_follows_guest_vendor)
{
    hwcr_case("amd", false);
    hwcr_case("intel", true);
    hwcr_case("intel", false);
}
END_TEST

/* SYSENTER_ESP/EIP on the SVM flavour: x86.c __kvm_set_msr canonicalises (1442-1457),
 * then svm.c svm_set_msr stores the low 32 bits in the VMCB and keeps the high half only
 * for Intel-compatible guest CPUID (3183-3196); svm_get_msr returns the low 32 bits, or
 * them with the high half for Intel-compatible guests (2952-2960). VMX keeps 64 bits
 * (vmx.c vmx_set_msr 2281-2293). Host writes, then the guest reads; then the guest writes
 * and reads: for an AMD guest SVM passes them through and "the processor only stores 32
 * bits" (svm.c init_vmcb_after_set_cpuid 1202-1226). */
static void sysenter_case(const char *vendor, bool amd_guest, bool full)
{
    struct gh g;
    gh_open(&g, vendor, amd_guest ? cpuid_amd_vendor : cpuid_intel_vendor);
    if (gh_pvm(&g, "SYSENTER_ESP/EIP keep 64 bits for an AMD-vendor guest (PVM is not svm.c)"))
        full = true;
    const struct gh_op ops[] = {{GH_RD, MSR_IA32_SYSENTER_EIP, 0}, {GH_RD, MSR_IA32_SYSENTER_ESP, 0},
                                {GH_WR, MSR_IA32_SYSENTER_EIP, 0xffffffff82000000ull},
                                {GH_RD, MSR_IA32_SYSENTER_EIP, 0}};
    gh_ops(&g, ops, 4);
    gh_start(&g, gh_gpa(gh_script), 0);
    ck_assert_int_eq(gh_set_msr(&g, MSR_IA32_SYSENTER_EIP, 0xffffffff81000000ull), 1);
    ck_assert_int_eq(gh_set_msr(&g, MSR_IA32_SYSENTER_ESP, 0x00007f0012345678ull), 1);
    uint64_t eip = full ? 0xffffffff81000000ull : 0x81000000ull;
    uint64_t esp = full ? 0x00007f0012345678ull : 0x12345678ull;
    ck_assert_uint_eq(gh_get_msr(&g, MSR_IA32_SYSENTER_EIP), eip);
    ck_assert_uint_eq(gh_get_msr(&g, MSR_IA32_SYSENTER_ESP), esp);
    gh_expect_rd(&g, eip);
    gh_expect_rd(&g, esp);
    gh_expect_rd(&g, full ? 0xffffffff82000000ull : 0x82000000ull);
    ck_assert_uint_eq(gh_get_msr(&g, MSR_IA32_SYSENTER_EIP), full ? 0xffffffff82000000ull : 0x82000000ull);
    gh_expect_done(&g);
    gh_close(&g);
}

START_TEST(sysenter_esp_eip_32bit_for_amd_guests_on_svm)
{
    sysenter_case("amd", true, false);
    sysenter_case("amd", false, true);
    if (gh_here("intel"))
        sysenter_case("intel", true, true);
}
END_TEST

GH_BLOB_END();

int main(void)
{
    gh_require_oracle();
    Suite *s = suite_create("msr_guest_state");
    TCase *tc = tcase_create("guest");
    tcase_set_timeout(tc, 120);
    gh_add(tc, feature_control_locking_vmx, "intel");
    gh_add(tc, feature_control_host_zero_leaves_vmx_operation_vmx, "intel");
    gh_add(tc, init_keeps_and_resets_msrs_intel, "intel");
    gh_add(tc, init_keeps_and_resets_msrs_amd, "amd");
    gh_add(tc, efer_svm_bits_gated_by_cpuid_amd, "amd");
    gh_add(tc, efer_svm_bits_reserved_intel, "intel");
    gh_add(tc, vm_cr_lock_and_svmdis_amd, "amd");
    gh_add(tc, hwcr_mcstatuswren_unlocks_mci_status_amd, "amd");
    gh_add(tc, hwcr_mcstatuswren_follows_guest_vendor, NULL);
    gh_add(tc, sysenter_esp_eip_32bit_for_amd_guests_on_svm, "amd");
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
