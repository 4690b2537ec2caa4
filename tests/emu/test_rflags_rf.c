/* tests/emu: RFLAGS.RF in exception frames (kvm-unit-tests x86/idt_test). Fault-class
 * exceptions push RF=1 (SDM vol.3 18.3.1.1; KVM x86.c kvm_inject_exception), traps and
 * software interrupts push RF as it was (0); RF is cleared again when the next
 * instruction completes, except by IRET, which loads it. */
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
#define FL_RF (1u << 16)

/* the RFLAGS image of the frame the stub halted with (no error code: [rsp+16]) */
static uint64_t frame_rflags(bool errcode)
{
    return tvm_r64(&T, T.c->gpr[EMU_RSP] + (errcode ? 24 : 16));
}

START_TEST(ud_pushes_rf)
{
    CODE(0x0f, 0x0b); /* ud2 */
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 6);
    ck_assert(frame_rflags(false) & FL_RF);
    ck_assert(!(T.c->rflags & FL_RF)); /* the handler runs with RF clear */
}
END_TEST

START_TEST(gp_pushes_rf)
{
    /* mov rax, -1; mov cr4, rax: reserved CR4 bits -> #GP(0) (idt_test's case) */
    CODE(0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x22, 0xe0);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    ck_assert(frame_rflags(true) & FL_RF);
}
END_TEST

START_TEST(traps_keep_rf_clear)
{
    CODE(0xcc); /* int3: #BP is a trap */
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 3);
    ck_assert(!(frame_rflags(false) & FL_RF));
}
END_TEST

START_TEST(software_int_keeps_rf_clear)
{
    CODE(0xcd, 0x0d); /* int 13: a software interrupt, not a fault */
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    ck_assert(!(frame_rflags(false) & FL_RF));
}
END_TEST

/* IRETQ to a frame with RF=1 loads RF; the next instruction (NOP) completes and clears
 * it, so the vCPU halts with RF=0 (an RF left set would leak into every later frame). */
START_TEST(rf_cleared_after_next_instruction)
{
    uint64_t sp = TVM_STACK - 0x800;
    tvm_w64(&T, sp, TVM_CODE + 0x100);          /* RIP */
    tvm_w64(&T, sp + 8, SEL_CODE64);             /* CS */
    tvm_w64(&T, sp + 16, 2 | FL_RF);             /* RFLAGS */
    tvm_w64(&T, sp + 24, TVM_STACK - 0x400);     /* RSP */
    tvm_w64(&T, sp + 32, SEL_DATA);              /* SS */
    T.c->gpr[EMU_RSP] = sp;
    CODE(0x48, 0xcf); /* iretq */
    T.ram[TVM_CODE + 0x100] = 0x90; /* nop */
    T.ram[TVM_CODE + 0x101] = 0x0f; /* ud2: its frame shows RF=1 again, from the fault */
    T.ram[TVM_CODE + 0x102] = 0x0b;
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 6);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), TVM_CODE + 0x101);
    ck_assert(frame_rflags(false) & FL_RF);
    /* without the fault: iretq; nop; hlt ends with RF clear */
    T.c->rip = TVM_CODE;
    T.c->halted = false;
    T.c->gpr[EMU_RSP] = sp;
    T.ram[TVM_CODE + 0x101] = 0xf4;
    T.ram[TVM_CODE + 0x102] = 0x90;
    tvm_w64(&T, sp + 16, 2 | FL_RF);
    emu_state_changed(T.v);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 0x102);
    ck_assert(!(T.c->rflags & FL_RF));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("emu_rflags_rf");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ud_pushes_rf);
    tcase_add_test(tc, gp_pushes_rf);
    tcase_add_test(tc, traps_keep_rf_clear);
    tcase_add_test(tc, software_int_keeps_rf_clear);
    tcase_add_test(tc, rf_cleared_after_next_instruction);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
