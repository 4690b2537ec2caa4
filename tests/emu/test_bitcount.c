/* tests/emu: TZCNT/LZCNT/POPCNT and ENDBR at guest level, and the rule that every op the
 * decoder knows either has semantics or is one of the named, still-missing ops of
 * emu/insn_missing.c (#UD without their CPUID feature, emulation INTERNAL_ERROR with it). */
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

#define FL_CF 0x1
#define FL_ZF 0x40

/* leaf 7 EBX.BMI1 and 80000001 ECX.LZCNT on or off in the guest's CPUID */
static void set_bmi(bool on)
{
    struct emu_cpuid_entry e[] = {
        {0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65},
        {7, 0, 1, 0, on ? 1u << 3 : 0, 0, 0},
        {0x80000000u, 0, 0, 0x80000008u, 0, 0, 0},
        {0x80000001u, 0, 0, 0, 0, on ? 1u << 5 : 0, 0},
    };
    emu_set_cpuid(T.v, e, 4);
}

/* rbx = src; rax = 0x5555; op rax, rbx; hlt */
static void run_count(uint8_t op, uint64_t src, bool rex_w)
{
    uint8_t code[32];
    unsigned n = 0;
    code[n++] = 0x48;
    code[n++] = 0xbb;
    memcpy(code + n, &src, 8);
    n += 8;
    code[n++] = 0x48, code[n++] = 0xc7, code[n++] = 0xc0; /* mov rax, imm32 */
    code[n++] = 0x55, code[n++] = 0x55, code[n++] = 0, code[n++] = 0;
    code[n++] = 0xf3;
    if (rex_w)
        code[n++] = 0x48;
    code[n++] = 0x0f, code[n++] = op, code[n++] = 0xc3; /* op eax/rax, ebx/rbx */
    code[n++] = 0xf4;
    tvm_code(&T, code, n);
    T.c->rip = TVM_CODE;
    T.c->halted = false; /* the previous run ended in HLT */
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + n);
}

START_TEST(tzcnt_lzcnt_are_bsf_bsr_without_bmi)
{
    set_bmi(false);
    run_count(0xbc, 0x80, true); /* BSF: index 7 */
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 7);
    ck_assert(!(T.c->rflags & FL_ZF));
    run_count(0xbd, 0x80, true); /* BSR: index 7 (LZCNT would be 56) */
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 7);
    run_count(0xbc, 0, true); /* BSF of 0: ZF=1, destination unchanged */
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 0x5555);
    ck_assert(T.c->rflags & FL_ZF);
}
END_TEST

START_TEST(tzcnt_lzcnt_with_bmi)
{
    set_bmi(true);
    run_count(0xbc, 0x80, true);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 7);
    ck_assert(!(T.c->rflags & (FL_ZF | FL_CF)));
    run_count(0xbd, 0x80, true);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 56);
    run_count(0xbd, 0x80, false); /* 32-bit: 24 leading zeros */
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 24);
    run_count(0xbc, 0, true); /* source 0: operand size, CF=1 */
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 64);
    ck_assert(T.c->rflags & FL_CF);
    ck_assert(!(T.c->rflags & FL_ZF));
    run_count(0xbd, 0, false);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 32);
    run_count(0xbc, 1, true); /* result 0: ZF=1 */
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 0);
    ck_assert(T.c->rflags & FL_ZF);
}
END_TEST

START_TEST(popcnt)
{
    run_count(0xb8, 0xf0f0000000000001ull, true);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 9);
    ck_assert(!(T.c->rflags & FL_ZF));
    run_count(0xb8, 0xf0f0000000000001ull, false); /* low 32 bits only */
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 1);
    run_count(0xb8, 0, true);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 0);
    ck_assert(T.c->rflags & FL_ZF);
}
END_TEST

START_TEST(endbr_is_nop)
{
    /* endbr64; endbr32; mov eax, 7; hlt */
    CODE(0xf3, 0x0f, 0x1e, 0xfa, 0xf3, 0x0f, 0x1e, 0xfb, 0xb8, 7, 0, 0, 0, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 7);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 14);
}
END_TEST

/* The other hint-NOP forms (0F 18-1F, SDM vol.2 NOP / "reserved NOP"; F3 0F 1E /1 is
 * RDSSPD/Q, a NOP while CET is off): no fault, no memory access, only RIP moves. */
START_TEST(hint_nops)
{
    static const uint8_t code[] = {
        0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0x80, /* mov rax, 0x8000000000000000 (non-canonical) */
        0xf3, 0x0f, 0x1e, 0xc8,                /* rdsspd eax: NOP, eax kept */
        0xf3, 0x48, 0x0f, 0x1e, 0xc8,          /* rdsspq rax */
        0x0f, 0x1e, 0xc0,                      /* 0F 1E /r */
        0x0f, 0x1f, 0x00,                      /* nop [rax]: no #GP for the non-canonical rax */
        0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00,    /* nopw [rax+rax] */
        0x0f, 0x18, 0xe0,                      /* 0F 18 /4 reg */
        0x0f, 0x19, 0x00, 0x0f, 0x1a, 0x00, 0x0f, 0x1b, 0x00, 0x0f, 0x1c, 0x00, 0x0f, 0x1d, 0x00,
        0xf4,
    };
    tvm_code(&T, code, sizeof code);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + sizeof code);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 0x8000000000000000ull);
}
END_TEST

/* Every decoder op has a dispatch entry: semantics, or the explicit choice of
 * emu/insn_missing.c (emu-opcheck enforces it at build time; this is its runtime side). */
START_TEST(every_op_has_a_handler)
{
    for (unsigned op = 1; op < DOP_COUNT; op++)
        ck_assert_msg(emu_handler_for((uint16_t)op), "decoder op %s has no handler",
                      decoder_op_name((uint16_t)op));
}
END_TEST

/* A missing op gated by CPUID: #UD without the feature (a CPU without BMI1/BMI2), an
 * emulation INTERNAL_ERROR with it; never a silent skip. */
static void set_leaf7_ebx(uint32_t ebx)
{
    struct emu_cpuid_entry e[] = {
        {0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65},
        {7, 0, 1, 0, ebx, 0, 0},
    };
    emu_set_cpuid(T.v, e, 2);
}

START_TEST(missing_op_ud_without_feature)
{
    set_leaf7_ebx(0);
    CODE(0xc4, 0xe2, 0x71, 0xf7, 0xc2); /* shlx eax, edx, ecx (BMI2) */
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 6);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), TVM_CODE);
}
END_TEST

START_TEST(missing_op_internal_error_with_feature)
{
    set_leaf7_ebx(1u << 8);
    CODE(0xc4, 0xe2, 0x71, 0xf7, 0xc2);
    ck_assert_int_eq(RUN(), EMU_EXIT_INTERNAL);
    ck_assert_uint_eq(X.internal.insn_len, 5);
    ck_assert_uint_eq(T.c->rip, TVM_CODE);
}
END_TEST

START_TEST(missing_list_is_exact)
{
    /* each listed op really has no semantics and is dispatched to emu_h_missing */
    unsigned n = 0;
    for (const struct emu_missing_op *m = emu_missing_ops; m->op; m++, n++) {
        ck_assert_ptr_null(emu_semantic_handler_for(m->op));
        ck_assert(emu_handler_for(m->op) == emu_h_missing);
    }
    ck_assert_uint_gt(n, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("emu_bitcount");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, tzcnt_lzcnt_are_bsf_bsr_without_bmi);
    tcase_add_test(tc, tzcnt_lzcnt_with_bmi);
    tcase_add_test(tc, popcnt);
    tcase_add_test(tc, endbr_is_nop);
    tcase_add_test(tc, hint_nops);
    tcase_add_test(tc, every_op_has_a_handler);
    tcase_add_test(tc, missing_op_ud_without_feature);
    tcase_add_test(tc, missing_op_internal_error_with_feature);
    tcase_add_test(tc, missing_list_is_exact);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
