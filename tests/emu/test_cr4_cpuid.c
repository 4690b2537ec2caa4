/* tests/emu: CR4 bits and INVPCID follow the guest's CPUID (kvm-unit-tests x86/pcid):
 * MOV CR4 setting a bit whose feature the guest's CPUID lacks is #GP (KVM
 * __cr4_reserved_bits / kvm_is_valid_cr4); INVPCID without CPUID.(7,0):EBX.INVPCID is
 * #UD, at any CPL (KVM svm invpcid_interception, VMX "enable INVPCID" clear). */
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

static void set_cpuid(uint32_t l1_ecx, uint32_t l7_ebx)
{
    struct emu_cpuid_entry e[] = {
        {0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65},
        {1, 0, 0, 0, 0, l1_ecx, 0},
        {7, 0, 1, 0, l7_ebx, 0, 0},
    };
    emu_set_cpuid(T.v, e, 3);
}

/* mov rax, cr4; or rax, 1<<17 (PCIDE); mov cr4, rax; hlt (CR3[11:0] = 0, long mode) */
static void mov_cr4_pcide(void)
{
    CODE(0x0f, 0x20, 0xe0, 0x48, 0x0d, 0, 0, 2, 0, 0x0f, 0x22, 0xe0, 0xf4);
}

START_TEST(pcide_without_pcid_is_gp)
{
    set_cpuid(1u << 26, 0); /* XSAVE only: the fixture's CR4.OSXSAVE stays valid */
    mov_cr4_pcide();
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    ck_assert(!(T.c->cr4 & (1u << 17)));
}
END_TEST

START_TEST(pcide_with_pcid)
{
    set_cpuid((1u << 26) | (1u << 17), 0);
    mov_cr4_pcide();
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert(T.c->cr4 & (1u << 17));
}
END_TEST

START_TEST(smep_without_cpuid_is_gp)
{
    set_cpuid(1u << 26, 0);
    /* mov rax, cr4; bts rax, 20; mov cr4, rax; hlt */
    CODE(0x0f, 0x20, 0xe0, 0x48, 0x0f, 0xba, 0xe8, 20, 0x0f, 0x22, 0xe0, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
}
END_TEST

/* invpcid rax, [rbx] with type 2 (all contexts), a zero descriptor */
static void invpcid_code(void)
{
    T.c->gpr[EMU_RAX] = 2;
    T.c->gpr[EMU_RBX] = TVM_DATA;
    CODE(0x66, 0x0f, 0x38, 0x82, 0x03, 0xf4);
}

START_TEST(invpcid_without_cpuid_is_ud)
{
    set_cpuid(1u << 26, 0);
    invpcid_code();
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 6);
}
END_TEST

START_TEST(invpcid_with_cpuid)
{
    set_cpuid(1u << 26, 1u << 10);
    invpcid_code();
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 6);
}
END_TEST

/* at CPL 3 the missing feature's #UD comes before the privilege #GP */
START_TEST(invpcid_cpl3_without_cpuid_is_ud)
{
    set_cpuid(1u << 26, 0);
    invpcid_code();
    tvm_set_seg(&T.c->seg[EMU_CS], SEL_UCODE64, 0xb, 3, 1, 0);
    tvm_set_seg(&T.c->seg[EMU_SS], SEL_UDATA, 0x3, 3, 0, 1);
    T.c->cpl = 3;
    emu_state_changed(T.v);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 6);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("emu_cr4_cpuid");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, pcide_without_pcid_is_gp);
    tcase_add_test(tc, pcide_with_pcid);
    tcase_add_test(tc, smep_without_cpuid_is_gp);
    tcase_add_test(tc, invpcid_without_cpuid_is_ud);
    tcase_add_test(tc, invpcid_with_cpuid);
    tcase_add_test(tc, invpcid_cpl3_without_cpuid_is_ud);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
