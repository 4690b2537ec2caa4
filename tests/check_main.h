/* Shared tail of every check test program: run the suite, exit non-zero on any failure. */
#ifndef SOFTKVM_TESTS_CHECK_MAIN_H
#define SOFTKVM_TESTS_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

static inline int softkvm_check_run(Suite *s)
{
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
