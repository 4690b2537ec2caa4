/* tools/msr-explain: the FILTER text format (parsed by tools/msr_explain/filter_file.c,
 * compiled into this test) and its effect once installed through msr_vm_set_filter. */
#include <stdio.h>
#include <unistd.h>

#include "msr_test_util.h"
#include "../../tools/msr_explain/filter_file.c"

static char path[64];

static int parse(const char *text, struct explain_filter *ef)
{
    snprintf(path, sizeof(path), "/tmp/msr-explain-test-%d.txt", (int)getpid());
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    char err[600];
    int r = explain_load_filter(path, ef, err, sizeof(err));
    unlink(path);
    return r;
}

static int copy_local(void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
    return 0;
}

START_TEST(format_round_trip)
{
    static struct explain_filter ef;
    ck_assert_int_eq(parse("# demo\ndefault deny\nrange read 0xc0000100 3 0,2  # FS, KERNEL_GS\n"
                           "range rw 0x10 8 all\nrange write 0x100 16 1-3,9\n", &ef), 0);
    ck_assert_uint_eq(ef.f.flags, KVM_MSR_FILTER_DEFAULT_DENY);
    ck_assert_uint_eq(ef.f.ranges[0].flags, KVM_MSR_FILTER_READ);
    ck_assert_uint_eq(ef.f.ranges[1].flags, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE);
    ck_assert_uint_eq(ef.f.ranges[2].base, 0x100);
    struct fx *f = fx_new(MSR_VENDOR_INTEL);
    ck_assert_int_eq(msr_vm_set_filter(&f->vm, &ef.f, copy_local), 0);
    const struct msr_filter *p = atomic_load(&f->vm.filter);
    ck_assert(msr_filter_allows(p, 0xc0000100u, KVM_MSR_FILTER_READ));
    ck_assert(!msr_filter_allows(p, 0xc0000101u, KVM_MSR_FILTER_READ));
    ck_assert(msr_filter_allows(p, 0xc0000102u, KVM_MSR_FILTER_READ));
    ck_assert(msr_filter_allows(p, 0x17, KVM_MSR_FILTER_WRITE));
    ck_assert(msr_filter_allows(p, 0x103, KVM_MSR_FILTER_WRITE));
    ck_assert(!msr_filter_allows(p, 0x104, KVM_MSR_FILTER_WRITE));
    ck_assert(msr_filter_allows(p, 0x109, KVM_MSR_FILTER_WRITE));
    ck_assert(!msr_filter_allows(p, 0x109, KVM_MSR_FILTER_READ)); /* default deny */
    fx_free(f);
}
END_TEST

START_TEST(format_errors)
{
    static struct explain_filter ef;
    ck_assert_int_ne(parse("range bogus 0 1 all\n", &ef), 0);
    ck_assert_int_ne(parse("range read 0 4 5\n", &ef), 0);       /* offset outside range */
    ck_assert_int_ne(parse("range read 0 4 3-1\n", &ef), 0);     /* reversed */
    ck_assert_int_ne(parse("default maybe\n", &ef), 0);
    ck_assert_int_ne(parse("range read 0 99999 all\n", &ef), 0); /* > 0x600 bytes */
    ck_assert_int_eq(parse("\n# only comments\n", &ef), 0);
    char err[600];
    ck_assert_int_ne(explain_load_filter("/nonexistent/x", &ef, err, sizeof(err)), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msr_explain_filter");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, format_round_trip);
    tcase_add_test(tc, format_errors);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
