/* tests/emu: fixed-seed differential test against Unicorn 2.0.1 (tools/emu_fuzz/difftest.h):
 * random 64-bit and 32-bit GP instruction sequences, compared after every instruction. */
#include <check.h>
#include "tests/check_main.h"
#include <stdlib.h>

#include "tools/emu_fuzz/difftest.h"

#define CASES 400

static void run_cases(bool m32, uint64_t seed)
{
    struct dt_rng r = {seed};
    static struct dt_case c;
    unsigned agree = 0;
    for (unsigned n = 0; n < CASES; n++) {
        char why[256] = "";
        dt_gen_case(&r, &c, m32);
        if (dt_run_case(&c, why, sizeof why))
            agree++;
        else {
            fprintf(stderr, "case %u: %s\n", n, why);
            dt_print_case(stderr, &c);
        }
    }
    ck_assert_uint_eq(agree, CASES);
}

START_TEST(unicorn_agreement_64) { run_cases(false, 0x5eed); }
END_TEST
START_TEST(unicorn_agreement_32) { run_cases(true, 0x5eed32); }
END_TEST

int main(void)
{
    Suite *s = suite_create("emu_diff_unicorn");
    TCase *t = tcase_create("diff");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, unicorn_agreement_64);
    tcase_add_test(t, unicorn_agreement_32);
    suite_add_tcase(s, t);
    return softkvm_check_run(s);
}
