/* tests/emu: SYSCALL/SYSRET and the single-step trap, and SYSCALL outside 64-bit mode
 * (kvm-unit-tests x86/syscall). The trap follows the TF the instruction leaves: none
 * after a SYSCALL whose SFMASK clears TF, one right after a SYSRET that loads TF=1 from
 * R11 (KVM emulate.c em_syscall: ctxt->tf after the mask). SYSCALL in compatibility
 * mode runs on an AMD CPU model and #UDs on an Intel one (em_syscall); so does SYSRET
 * (APM vol.3 SYSRET returns from compatibility mode; SDM SYSRET #UD outside 64-bit mode),
 * whose #UD comes before its CPL check. */
#include <check.h>
#include "tests/check_main.h"

#include "emu/internal.h"
#include "tests/emu/emu_test_vm.h"

static struct tvm T;
static struct emu_exit X;

static void setup(void) { tvm_init64(&T); }
static void teardown(void) { tvm_destroy(&T); }

#define RUN() tvm_run(&T, &X)
#define FL_TF 0x100u
#define TARGET (TVM_CODE + 0x100)
#define USER (TVM_CODE + 0x200)

static void vendor(bool amd)
{
    struct emu_cpuid_entry e[] = {
        amd ? (struct emu_cpuid_entry){0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65}
            : (struct emu_cpuid_entry){0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69},
    };
    emu_set_cpuid(T.v, e, 1);
}

static void msrs(void)
{
    T.c->star = ((uint64_t)0x18 << 48) | ((uint64_t)SEL_CODE64 << 32); /* SYSRET base 0x18 */
    T.c->lstar = TARGET;
    T.c->cstar = TARGET;
    T.c->sfmask = FL_TF;
    T.ram[TARGET] = 0xf4; /* hlt */
}

START_TEST(syscall_clearing_tf_does_not_trap)
{
    vendor(true);
    msrs();
    T.ram[TVM_CODE] = 0x0f, T.ram[TVM_CODE + 1] = 0x05; /* syscall */
    T.c->rflags = 2 | FL_TF;
    emu_state_changed(T.v);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1); /* no #DB: reached the LSTAR target */
    ck_assert_uint_eq(T.c->rip, TARGET + 1);
}
END_TEST

START_TEST(sysret_loading_tf_traps_after_it)
{
    vendor(true);
    msrs();
    /* sysretq to USER (CPL 3, CS 0x2b) with R11 = TF|IF... only TF, IF stays clear */
    T.ram[TVM_CODE] = 0x48, T.ram[TVM_CODE + 1] = 0x0f, T.ram[TVM_CODE + 2] = 0x07;
    T.ram[USER] = 0x90, T.ram[USER + 1] = 0xf4;
    T.c->gpr[EMU_RCX] = USER;
    T.c->gpr[EMU_R11] = 2 | FL_TF;
    emu_state_changed(T.v);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    /* the trap's frame: RIP = USER (before the NOP), CS = user code, TF set */
    uint64_t sp = T.c->gpr[EMU_RSP];
    ck_assert_uint_eq(tvm_r64(&T, sp), USER);
    ck_assert_uint_eq(tvm_r64(&T, sp + 8) & 0xffff, SEL_UCODE64);
    ck_assert(tvm_r64(&T, sp + 16) & FL_TF);
    ck_assert(T.c->dr[6] & (1u << 14)); /* DR6.BS */
}
END_TEST

/* a compatibility-mode code segment (CS 0x18, L = 0) at CPL 0 */
static void syscall_compat(bool amd)
{
    vendor(amd);
    msrs();
    T.ram[TVM_CODE] = 0x0f, T.ram[TVM_CODE + 1] = 0x05;
    tvm_set_seg(&T.c->seg[EMU_CS], SEL_CODE32, 0xb, 0, 0, 1);
    emu_state_changed(T.v);
}

START_TEST(syscall_in_compat_mode_amd)
{
    syscall_compat(true);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1); /* CSTAR target, 64-bit CS */
    ck_assert_uint_eq(T.c->rip, TARGET + 1);
    ck_assert_uint_eq(T.c->gpr[EMU_RCX], TVM_CODE + 2);
}
END_TEST

START_TEST(syscall_in_compat_mode_intel_is_ud)
{
    syscall_compat(false);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 6);
}
END_TEST

/* SYSRET (32-bit form) in compatibility mode: AMD returns to CS = STAR[63:48] | 3, a
 * 32-bit user segment, at ECX; Intel #UDs, also at CPL 3 (the #UD before the #GP). */
static void sysret_compat(bool amd)
{
    vendor(amd);
    msrs();
    T.ram[TVM_CODE] = 0x0f, T.ram[TVM_CODE + 1] = 0x07;
    T.ram[USER] = 0xf4;
    T.c->gpr[EMU_RCX] = USER;
    T.c->gpr[EMU_R11] = 2;
    tvm_set_seg(&T.c->seg[EMU_CS], SEL_CODE32, 0xb, 0, 0, 1);
    emu_state_changed(T.v);
}

START_TEST(sysret_in_compat_mode_amd)
{
    sysret_compat(true);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13); /* HLT at CPL 3: #GP, at USER */
    uint64_t sp = T.c->gpr[EMU_RSP]; /* error code, RIP, CS, ... */
    ck_assert_uint_eq(tvm_r64(&T, sp + 8), USER);
    ck_assert_uint_eq(tvm_r64(&T, sp + 16) & 0xffff, 0x18 | 3);
}
END_TEST

START_TEST(sysret_in_compat_mode_intel_is_ud)
{
    sysret_compat(false);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 6);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("emu_syscall_tf");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, syscall_clearing_tf_does_not_trap);
    tcase_add_test(tc, sysret_loading_tf_traps_after_it);
    tcase_add_test(tc, syscall_in_compat_mode_amd);
    tcase_add_test(tc, syscall_in_compat_mode_intel_is_ud);
    tcase_add_test(tc, sysret_in_compat_mode_amd);
    tcase_add_test(tc, sysret_in_compat_mode_intel_is_ud);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
