/* tests/emu: LTR / LLDT in long mode #GP(selector) on a 16-byte system descriptor whose
 * 64-bit base is not canonical, after the present check, without marking the TSS busy
 * (KVM emulate.c __load_segment_descriptor; kvm-unit-tests x86/la57 TR_BASE/LDT_BASE). */
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
#define SEL_SYS 0x60 /* a spare 16-byte GDT slot (0x60..0x6f) */

static void put_sysdesc(unsigned type, uint64_t base)
{
    tvm_w64(&T, TVM_GDT + SEL_SYS, tvm_seg_desc((uint32_t)base, 0x67, type, 0, 0, 0, 0, 0));
    tvm_w64(&T, TVM_GDT + SEL_SYS + 8, base >> 32);
    T.c->gdtr.limit = 0x6f;
    emu_state_changed(T.v);
}

/* mov ax, SEL_SYS; ltr ax (0F 00 /3) or lldt ax (0F 00 /2); hlt */
static void load(bool tr)
{
    uint8_t code[] = {0x66, 0xb8, SEL_SYS, 0, 0x0f, 0x00, tr ? 0xd8 : 0xd0, 0xf4};
    tvm_code(&T, code, sizeof code);
}

START_TEST(ltr_noncanonical_base_is_gp)
{
    put_sysdesc(0x9, 0xaaaaaaaaaaaaaaaaull);
    load(true);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), SEL_SYS); /* error code = selector */
    ck_assert_uint_eq(T.c->seg[EMU_TR].selector, SEL_TSS);
    ck_assert_uint_eq((T.ram[TVM_GDT + SEL_SYS + 5] & 0xf), 0x9); /* not marked busy */
}
END_TEST

START_TEST(lldt_noncanonical_base_is_gp)
{
    put_sysdesc(0x2, 0xffaaaaaaaaaaaaaaull);
    load(false);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), SEL_SYS);
}
END_TEST

START_TEST(canonical_high_base_loads)
{
    put_sysdesc(0x2, 0xffff800000001000ull);
    load(false);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_uint_eq(T.c->seg[EMU_LDTR].base, 0xffff800000001000ull);
}
END_TEST

START_TEST(not_present_before_canonical)
{
    put_sysdesc(0x2, 0xaaaaaaaaaaaaaaaaull);
    T.ram[TVM_GDT + SEL_SYS + 5] &= 0x7f; /* P = 0 */
    load(false);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 11);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("emu_sysdesc_canonical");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ltr_noncanonical_base_is_gp);
    tcase_add_test(tc, lldt_noncanonical_base_is_gp);
    tcase_add_test(tc, canonical_high_base_loads);
    tcase_add_test(tc, not_present_before_canonical);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
