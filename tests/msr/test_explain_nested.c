/* tools/msr-explain --l2: who gets an L2 MSR access (tools/msr_explain/explain_nested.c,
 * compiled into this test), as svm/nested.c nested_svm_exit_handled_msr and vmx/nested.c
 * nested_vmx_exit_handled_msr decide it: L1's bit set, or an MSR outside the bitmap, is
 * L1's exit; a clear bit is L0's; no MSR_PROT intercept (SVM) is L0's, while VMX without
 * "use MSR bitmaps" exits on every access. */
#include "msr_test_util.h"
#include "../../tools/msr_explain/explain_nested.c"

START_TEST(l1_bit_decides_first)
{
    for (int vendor = 0; vendor < 2; vendor++) {
        struct fx *f = fx_new(vendor ? MSR_VENDOR_AMD : MSR_VENDOR_INTEL);
        ck_assert(explain_nested(f->v, 0x174, false, EXPLAIN_L1_SET));
        ck_assert(!explain_nested(f->v, 0x174, false, EXPLAIN_L1_CLEAR));
        ck_assert(explain_nested(f->v, 0x174, true, EXPLAIN_L1_SET));
        /* outside every range: L1's, whatever the bit would say */
        ck_assert(explain_nested(f->v, 0x4b564d01, false, EXPLAIN_L1_CLEAR));
        fx_free(f);
    }
}
END_TEST

START_TEST(no_bitmap_differs_by_vendor)
{
    struct fx *a = fx_new(MSR_VENDOR_AMD), *i = fx_new(MSR_VENDOR_INTEL);
    ck_assert(!explain_nested(a->v, 0x10, false, EXPLAIN_L1_OFF));
    ck_assert(explain_nested(i->v, 0x10, false, EXPLAIN_L1_OFF));
    fx_free(a);
    fx_free(i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msr_explain_nested");
    TCase *t = tcase_create("nested");
    tcase_add_test(t, l1_bit_decides_first);
    tcase_add_test(t, no_bitmap_differs_by_vendor);
    suite_add_tcase(s, t);
    return run_suite(s);
}
