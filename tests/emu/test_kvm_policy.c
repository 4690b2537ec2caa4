/* tests/emu: what KVM decides inside instructions (emu.h emu_kvm_policy): the hypercall
 * of the other vendor patched or #UD (KVM_X86_QUIRK_FIX_HYPERCALL_INSN, x86.c
 * emulator_fix_hypercall), MONITOR/MWAIT as NOPs, #UD without the MWAIT quirk and without
 * CPUID.MONITOR (x86.c kvm_emulate_monitor_mwait), natively with exits disabled, and the
 * runtime CPUID bits (cpuid.c kvm_update_cpuid_runtime), and a guest MAXPHYADDR below the
 * host's under EPT with allow_smaller_maxphyaddr (vmx.c handle_ept_violation emulates:
 * #PF(RSVD) from the emulator's walk, an emulation failure for what it lacks). Linux 6.12. */
#include <check.h>
#include "tests/check_main.h"
#include <stdlib.h>
#include <string.h>

#include "emu/internal.h"
#include "tests/emu/emu_test_vm.h"

static struct tvm T;
static struct emu_exit X;

static void setup(void) { tvm_init64(&T); }
static void teardown(void) { tvm_destroy(&T); }

#define RUN() tvm_run(&T, &X)
#define CODE(...) do { static const uint8_t c_[] = {__VA_ARGS__}; tvm_code(&T, c_, sizeof c_); } while (0)

#define VMCALL 0x0f, 0x01, 0xc1
#define VMMCALL 0x0f, 0x01, 0xd9
#define MONITOR 0x0f, 0x01, 0xc8
#define MWAIT 0x0f, 0x01, 0xc9
#define HLT 0xf4

static void policy(enum emu_flavour f, bool no_fix, bool mwait_ud, bool in_guest)
{
    struct emu_kvm_policy p = {f, no_fix, mwait_ud, in_guest, 0, false};
    emu_set_kvm_policy(T.v, &p);
}

static const uint8_t vmcall_bytes[3] = {VMCALL}, vmmcall_bytes[3] = {VMMCALL};

/* ---- hypercalls ---- */

START_TEST(no_flavour_both_are_hypercalls)
{
    CODE(VMCALL, VMMCALL);
    ck_assert_int_eq(RUN(), EMU_EXIT_HYPERCALL);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 3);
    ck_assert_int_eq(RUN(), EMU_EXIT_HYPERCALL);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 6);
}
END_TEST

START_TEST(native_hypercall_is_not_patched)
{
    policy(EMU_FLAVOUR_SVM, false, false, false);
    CODE(VMMCALL);
    ck_assert_int_eq(RUN(), EMU_EXIT_HYPERCALL);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 3);
    ck_assert_mem_eq(T.ram + TVM_CODE, vmmcall_bytes, 3);
}
END_TEST

/* SVM: VMCALL becomes VMMCALL in guest memory and runs as the hypercall (svm_patch_hypercall) */
START_TEST(svm_patches_vmcall)
{
    policy(EMU_FLAVOUR_SVM, false, false, false);
    CODE(VMCALL, HLT);
    ck_assert_int_eq(RUN(), EMU_EXIT_HYPERCALL);
    ck_assert_mem_eq(T.ram + TVM_CODE, vmmcall_bytes, 3);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 3);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 4);
}
END_TEST

/* VMX: VMMCALL becomes VMCALL (vmx_patch_hypercall) */
START_TEST(vmx_patches_vmmcall)
{
    policy(EMU_FLAVOUR_VMX, false, false, false);
    CODE(VMMCALL);
    ck_assert_int_eq(RUN(), EMU_EXIT_HYPERCALL);
    ck_assert_mem_eq(T.ram + TVM_CODE, vmcall_bytes, 3);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 3);
}
END_TEST

/* quirk disabled: #UD at the instruction, memory untouched */
START_TEST(quirk_off_is_ud_without_patch)
{
    policy(EMU_FLAVOUR_SVM, true, false, false);
    CODE(VMCALL);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), EMU_UD);
    ck_assert_mem_eq(T.ram + TVM_CODE, vmcall_bytes, 3);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), TVM_CODE); /* faulting RIP pushed */

    tvm_destroy(&T);
    tvm_init64(&T);
    policy(EMU_FLAVOUR_VMX, true, false, false);
    CODE(VMMCALL);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), EMU_UD);
    ck_assert_mem_eq(T.ram + TVM_CODE, vmmcall_bytes, 3);
}
END_TEST

/* The patch is a guest data write through the guest's page tables: a read-only code page
 * (CR0.WP=1) is a #PF with W set and CR2 = the instruction, and nothing is written. */
START_TEST(patch_write_faults_on_readonly_page)
{
    policy(EMU_FLAVOUR_SVM, false, false, false);
    CODE(VMCALL);
    tvm_w64(&T, TVM_PT + (TVM_CODE >> 12) * 8, TVM_CODE | 5); /* present, user, read-only */
    emu_state_changed(T.v);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), EMU_PF);
    ck_assert_uint_eq(T.c->cr2, TVM_CODE);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]) & EMU_PFERR_W, EMU_PFERR_W);
    ck_assert_mem_eq(T.ram + TVM_CODE, vmcall_bytes, 3);
}
END_TEST

/* VMCALL emulated on SVM carries Priv in KVM's emulator: CPL 3 is #GP(0), quirk or not */
START_TEST(svm_vmcall_at_cpl3_is_gp)
{
    policy(EMU_FLAVOUR_SVM, false, false, false);
    CODE(VMCALL);
    tvm_set_seg(&T.c->seg[EMU_CS], SEL_UCODE64, 0xb, 3, 1, 0);
    tvm_set_seg(&T.c->seg[EMU_SS], SEL_UDATA, 0x3, 3, 0, 1);
    emu_state_changed(T.v);
    ck_assert_int_eq(T.c->cpl, 3);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), EMU_GP);
    ck_assert_mem_eq(T.ram + TVM_CODE, vmcall_bytes, 3);
}
END_TEST

/* ---- MONITOR / MWAIT ---- */

/* leaf 1 with or without MONITOR (ECX bit 3) */
static void set_cpuid_monitor(bool on)
{
    struct emu_cpuid_entry e[] = {
        {0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65},
        {1, 0, 0, 0, 0, 1u | (on ? 1u << 3 : 0), 0},
        {0xd, 1, 1, 1u << 3, 0, 0, 0},
    };
    emu_set_cpuid(T.v, e, 3);
}

static void monitor_mwait_code(void)
{
    T.c->gpr[EMU_RAX] = TVM_DATA;
    T.c->gpr[EMU_RCX] = 0;
    T.c->gpr[EMU_RDX] = 0;
    CODE(MONITOR, MWAIT, HLT);
}

START_TEST(monitor_mwait_are_nops_with_the_quirk)
{
    set_cpuid_monitor(false);
    policy(EMU_FLAVOUR_SVM, false, false, false);
    monitor_mwait_code();
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 7);
}
END_TEST

START_TEST(quirk_off_without_cpuid_is_ud)
{
    set_cpuid_monitor(false);
    policy(EMU_FLAVOUR_VMX, false, true, false);
    monitor_mwait_code();
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), EMU_UD);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), TVM_CODE); /* at MONITOR */
}
END_TEST

START_TEST(quirk_off_with_cpuid_is_nop)
{
    set_cpuid_monitor(true);
    policy(EMU_FLAVOUR_VMX, false, true, false);
    monitor_mwait_code();
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 7);
}
END_TEST

/* the MISC_ENABLE-driven CPUID bit (cpu.cpuid_mwait) wins over the table, both ways */
START_TEST(runtime_cpuid_bit_decides)
{
    set_cpuid_monitor(false);
    T.c->cpuid_mwait = EMU_CPUID_MWAIT_SET;
    policy(EMU_FLAVOUR_SVM, false, true, false);
    monitor_mwait_code();
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 7);

    set_cpuid_monitor(true);
    T.c->cpuid_mwait = EMU_CPUID_MWAIT_CLEAR;
    T.c->rip = TVM_CODE;
    T.c->halted = false;
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), EMU_UD);
}
END_TEST

/* KVM_X86_DISABLE_EXITS_MWAIT: no KVM decision, the CPU's own checks only */
START_TEST(mwait_in_guest_ignores_cpuid_and_quirk)
{
    set_cpuid_monitor(false);
    policy(EMU_FLAVOUR_VMX, false, true, true);
    monitor_mwait_code();
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 7);
}
END_TEST

/* CPL 3: #UD (not #GP), even though KVM would emulate them as NOPs at CPL 0 */
START_TEST(monitor_at_cpl3_is_ud)
{
    policy(EMU_FLAVOUR_SVM, false, false, false);
    monitor_mwait_code();
    tvm_set_seg(&T.c->seg[EMU_CS], SEL_UCODE64, 0xb, 3, 1, 0);
    tvm_set_seg(&T.c->seg[EMU_SS], SEL_UDATA, 0x3, 3, 0, 1);
    emu_state_changed(T.v);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), EMU_UD);
}
END_TEST

/* SVM checks the instruction's faults before the intercept (ECX != 0: #GP); on VMX the
 * exit comes first and KVM's NOP hides them; natively they apply on both. */
START_TEST(fault_checks_before_intercept_on_svm_only)
{
    policy(EMU_FLAVOUR_SVM, false, false, false);
    monitor_mwait_code();
    T.c->gpr[EMU_RCX] = 1;
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), EMU_GP);

    tvm_destroy(&T);
    tvm_init64(&T);
    policy(EMU_FLAVOUR_VMX, false, false, false);
    monitor_mwait_code();
    T.c->gpr[EMU_RCX] = 1;
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 7);

    tvm_destroy(&T);
    tvm_init64(&T);
    policy(EMU_FLAVOUR_VMX, false, false, true);
    monitor_mwait_code();
    T.c->gpr[EMU_RCX] = 1;
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), EMU_GP);
}
END_TEST

/* MONITOR's address is checked like a byte load: an unmapped page is a #PF */
START_TEST(monitor_address_is_translated)
{
    policy(EMU_FLAVOUR_SVM, false, false, false);
    monitor_mwait_code();
    T.c->gpr[EMU_RAX] = 0x800000;
    tvm_w64(&T, TVM_PD + (0x800000 >> 21) * 8, 0); /* that 2M page not present */
    emu_state_changed(T.v);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), EMU_PF);
    ck_assert_uint_eq(T.c->cr2, 0x800000);
}
END_TEST

/* ---- runtime CPUID ---- */

static void cpuid(uint32_t fn, uint32_t idx, uint32_t r[4])
{
    T.c->gpr[EMU_RAX] = fn;
    T.c->gpr[EMU_RCX] = idx;
    T.c->rip = TVM_CODE;
    T.c->halted = false;
    CODE(0x0f, 0xa2, HLT);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    r[0] = (uint32_t)T.c->gpr[EMU_RAX];
    r[1] = (uint32_t)T.c->gpr[EMU_RBX];
    r[2] = (uint32_t)T.c->gpr[EMU_RCX];
    r[3] = (uint32_t)T.c->gpr[EMU_RDX];
}

START_TEST(xsave_sizes_follow_xcr0)
{
    struct emu_cpuid_entry e[] = {
        {0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65},
        {0xd, 0, 1, 7, 0, 832, 0},
        {0xd, 1, 1, 1u << 3, 0, 0, 0},
        {0xd, 2, 1, 256, 576, 0, 0},
    };
    emu_set_cpuid(T.v, e, 4);
    uint32_t r[4];
    T.c->xcr0 = 3;
    cpuid(0xd, 0, r);
    ck_assert_uint_eq(r[1], 576);
    cpuid(0xd, 1, r);
    ck_assert_uint_eq(r[1], 576);
    T.c->xcr0 = 7;
    cpuid(0xd, 0, r);
    ck_assert_uint_eq(r[1], 832);
    cpuid(0xd, 1, r);
    ck_assert_uint_eq(r[0], 1u << 3);
    ck_assert_uint_eq(r[1], 832);
    /* without XSAVES/XSAVEC, 0xd.1 EBX is the table's */
    e[2].eax = 0;
    emu_set_cpuid(T.v, e, 4);
    cpuid(0xd, 1, r);
    ck_assert_uint_eq(r[1], 0);
}
END_TEST

/* ---- smaller guest MAXPHYADDR (36 bits) under EPT (48) ---- */

/* PD[3] (the 2M page at 6M, away from code, stack and tables) gets address bit `bit`;
 * guest CPUID: FPU, MAXPHYADDR 36. */
#define SMALL_VA 0x600000u
static void smaller_maxphyaddr(unsigned tdp, unsigned bit, const uint8_t *code, size_t n)
{
    struct emu_cpuid_entry e[] = {
        {0, 0, 0, 1, 0x756e6547, 0x6c65746e, 0x49656e69},
        {1, 0, 0, 0, 0, 0, 1u},
        {0x80000008, 0, 0, 36, 0, 0, 0},
    };
    emu_set_cpuid(T.v, e, 3);
    struct emu_kvm_policy p = {EMU_FLAVOUR_VMX, false, false, false, (uint8_t)tdp, false};
    emu_set_kvm_policy(T.v, &p);
    tvm_w64(&T, TVM_PD + 24, tvm_r64(&T, TVM_PD + 24) | (1ull << bit));
    T.c->gpr[EMU_RAX] = SMALL_VA;
    tvm_code(&T, code, n);
}

static void expect_pf_rsvd(void)
{
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, TVM_STUB + 14 * 16 + 1);
    ck_assert_uint_eq(T.c->cr2, SMALL_VA);
    uint64_t ec = tvm_r64(&T, T.c->gpr[EMU_RSP]);
    ck_assert_uint_eq(ec & 0xf, 0x9); /* P | RSVD, a supervisor read */
}

static const uint8_t flds_rax[] = {0xd9, 0x00, HLT};
static const uint8_t mov_rax[] = {0x8b, 0x00, HLT}; /* mov eax, [rax] */

START_TEST(smaller_maxphyaddr_flds_fails_under_ept)
{
    smaller_maxphyaddr(48, 36, flds_rax, sizeof flds_rax);
    ck_assert_int_eq(RUN(), EMU_EXIT_INTERNAL);
    ck_assert_uint_eq(X.internal.insn_len, 2);
    ck_assert_uint_eq(X.internal.insn_bytes[0], 0xd9);
    ck_assert_uint_eq(T.c->rip, TVM_CODE);
}
END_TEST

START_TEST(smaller_maxphyaddr_emulated_mov_is_pf_rsvd)
{
    smaller_maxphyaddr(48, 36, mov_rax, sizeof mov_rax);
    expect_pf_rsvd();
}
END_TEST

START_TEST(smaller_maxphyaddr_without_ept_is_pf_rsvd)
{
    smaller_maxphyaddr(0, 36, flds_rax, sizeof flds_rax); /* shadow paging / NPT flavour */
    expect_pf_rsvd();
}
END_TEST

START_TEST(smaller_maxphyaddr_bit_reserved_for_the_cpu_is_pf)
{
    smaller_maxphyaddr(48, 49, flds_rax, sizeof flds_rax); /* hardware itself faults */
    expect_pf_rsvd();
}
END_TEST

/* ---- pause-loop exiting (h_pause) ---- */

static void pause_loop(unsigned n, unsigned nops, bool in_guest)
{
    struct emu_kvm_policy p = {EMU_FLAVOUR_SVM, false, false, false, 0, in_guest};
    emu_set_kvm_policy(T.v, &p);
    uint8_t c[512];
    size_t k = 0;
    c[k++] = 0xb9; /* mov ecx, n */
    memcpy(c + k, &n, 4);
    k += 4;
    size_t top = k;
    c[k++] = 0xf3; /* pause */
    c[k++] = 0x90;
    for (unsigned i = 0; i < nops; i++)
        c[k++] = 0x90;
    c[k++] = 0xff; /* dec ecx */
    c[k++] = 0xc9;
    c[k++] = 0x0f; /* jnz top (rel32) */
    c[k++] = 0x85;
    int32_t rel = (int32_t)top - (int32_t)(k + 4);
    memcpy(c + k, &rel, 4);
    k += 4;
    c[k++] = HLT;
    tvm_code(&T, c, k);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
}

START_TEST(pause_loop_yields_every_3000)
{
    pause_loop(7000, 0, false);
    ck_assert_uint_eq(T.v->ple_yields, 2);
}
END_TEST

START_TEST(pause_loop_not_with_pause_exits_disabled)
{
    pause_loop(7000, 0, true);
    ck_assert_uint_eq(T.v->ple_yields, 0);
}
END_TEST

START_TEST(pauses_far_apart_are_no_loop)
{
    pause_loop(7000, 200, false); /* 200 instructions between PAUSEs: over the 128 gap */
    ck_assert_uint_eq(T.v->ple_yields, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("emu_kvm_policy");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, no_flavour_both_are_hypercalls);
    tcase_add_test(tc, native_hypercall_is_not_patched);
    tcase_add_test(tc, svm_patches_vmcall);
    tcase_add_test(tc, vmx_patches_vmmcall);
    tcase_add_test(tc, quirk_off_is_ud_without_patch);
    tcase_add_test(tc, patch_write_faults_on_readonly_page);
    tcase_add_test(tc, svm_vmcall_at_cpl3_is_gp);
    tcase_add_test(tc, monitor_mwait_are_nops_with_the_quirk);
    tcase_add_test(tc, quirk_off_without_cpuid_is_ud);
    tcase_add_test(tc, quirk_off_with_cpuid_is_nop);
    tcase_add_test(tc, runtime_cpuid_bit_decides);
    tcase_add_test(tc, mwait_in_guest_ignores_cpuid_and_quirk);
    tcase_add_test(tc, monitor_at_cpl3_is_ud);
    tcase_add_test(tc, fault_checks_before_intercept_on_svm_only);
    tcase_add_test(tc, monitor_address_is_translated);
    tcase_add_test(tc, xsave_sizes_follow_xcr0);
    tcase_add_test(tc, smaller_maxphyaddr_flds_fails_under_ept);
    tcase_add_test(tc, smaller_maxphyaddr_emulated_mov_is_pf_rsvd);
    tcase_add_test(tc, smaller_maxphyaddr_without_ept_is_pf_rsvd);
    tcase_add_test(tc, smaller_maxphyaddr_bit_reserved_for_the_cpu_is_pf);
    tcase_add_test(tc, pause_loop_yields_every_3000);
    tcase_add_test(tc, pause_loop_not_with_pause_exits_disabled);
    tcase_add_test(tc, pauses_far_apart_are_no_loop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
