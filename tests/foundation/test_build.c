/* Foundation checks: the build is what it claims to be. */
#include <check.h>
#include "tests/check_main.h"
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "softkvm_version.h"

START_TEST(version_is_semver)
{
    int a, b, c;
    char tail;
    ck_assert_int_eq(sscanf(SOFTKVM_VERSION, "%d.%d.%d%c", &a, &b, &c, &tail), 3);
}
END_TEST

/* The -DSOFTKVM_SANITIZE=ON build must really carry ASan; otherwise the
 * sanitizer pass of the test command would prove nothing. */
START_TEST(sanitizer_build_is_sanitized)
{
#if defined(SOFTKVM_SANITIZE)
#if defined(__SANITIZE_ADDRESS__)
    ck_assert_ptr_nonnull(SOFTKVM_VERSION);
#else
    ck_abort_msg("SOFTKVM_SANITIZE set but __SANITIZE_ADDRESS__ is not defined");
#endif
#else
#if defined(__SANITIZE_ADDRESS__)
    ck_abort_msg("plain build unexpectedly has ASan");
#endif
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("foundation");
    TCase *tc = tcase_create("build");
    tcase_add_test(tc, version_is_semver);
    tcase_add_test(tc, sanitizer_build_is_sanitized);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
