/* tests/emu: a pending NMI waits out an STI shadow as it does a MOV-SS shadow (KVM
 * svm_nmi_blocked: int_state & SVM_INTERRUPT_SHADOW_MASK; vmx_nmi_blocked:
 * GUEST_INTR_STATE_STI | GUEST_INTR_STATE_MOV_SS). kvm-unit-tests x86/apic.flat
 * "nmi-after-sti": no NMI frame may point just past an STI. */
#include <check.h>
#include "tests/check_main.h"

#include "emu/internal.h"
#include "tests/emu/emu_test_vm.h"

static struct tvm T;
static struct emu_exit X;

static void setup(void) { tvm_init64(&T); }
static void teardown(void) { tvm_destroy(&T); }

#define RUN() tvm_run(&T, &X)
#define CODE(...) do { static const uint8_t c_[] = {__VA_ARGS__}; tvm_code(&T, c_, sizeof c_); } while (0)

static void nmi_in_shadow(uint8_t shadow)
{
    CODE(0x90, 0x90, 0xf4); /* nop; nop; hlt */
    T.c->ev.int_shadow = shadow;
    T.c->ev.nmi_pending = true;
    emu_state_changed(T.v);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 2);
    /* taken after the shadowed instruction: the frame's RIP is the second NOP */
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), TVM_CODE + 1);
}

START_TEST(nmi_waits_out_sti_shadow) { nmi_in_shadow(1); }
END_TEST
START_TEST(nmi_waits_out_mov_ss_shadow) { nmi_in_shadow(2); }
END_TEST

START_TEST(nmi_without_shadow_is_taken_at_once)
{
    CODE(0x90, 0x90, 0xf4);
    T.c->ev.nmi_pending = true;
    emu_state_changed(T.v);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 2);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), TVM_CODE);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("emu_nmi_shadow");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, nmi_waits_out_sti_shadow);
    tcase_add_test(tc, nmi_waits_out_mov_ss_shadow);
    tcase_add_test(tc, nmi_without_shadow_is_taken_at_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
