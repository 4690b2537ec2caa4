/* tests/emu: TZCNT/LZCNT/POPCNT and ENDBR at guest level, and the rule that every op the
 * decoder knows either has semantics or is one of the named, still-missing ops (which end
 * KVM_RUN with an emulation INTERNAL_ERROR, never a #UD or a skip). */
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

/* Ops the decoder knows and emu has no semantics for yet (KVM_RUN ends with an emulation
 * INTERNAL_ERROR on them). Each is also absent from softkvm's supported CPUID. Shrink this
 * list as they are implemented; a new decoder op without a handler fails the test. */
static const char *const missing[] = {
    "bound", "arpl", "monitorx", "mwaitx", "clzero", "femms",
    "sha1nexte", "sha1msg1", "sha1msg2", "sha256rnds2", "sha256msg1", "sha256msg2",
    "sha1rnds4", "adcx", "adox", "vpgatherdd", "vpgatherdq", "vpgatherqd", "vpgatherqq",
    "vgatherdps", "vgatherdpd", "vgatherqps", "vgatherqpd", "andn", "blsr", "blsmsk", "blsi",
    "bzhi", "pext", "pdep", "mulx", "bextr", "shlx", "sarx", "shrx", "rorx",
};

START_TEST(every_op_has_semantics_or_is_named_missing)
{
    unsigned nmissing = 0;
    for (unsigned op = 1; op < DOP_COUNT; op++) {
        const char *name = decoder_op_name((uint16_t)op);
        bool listed = false;
        for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
            listed |= strcmp(name, missing[i]) == 0;
        if (emu_handler_for((uint16_t)op))
            ck_assert_msg(!listed, "%s has a handler now: drop it from the missing list", name);
        else
            ck_assert_msg(listed, "decoder op %s has no handler", name), nmissing++;
    }
    ck_assert_uint_eq(nmissing, sizeof missing / sizeof missing[0]);
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
    tcase_add_test(tc, every_op_has_semantics_or_is_named_missing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
