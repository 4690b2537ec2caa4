/* `softkvm selftests`: internal interfaces between the runner's files.
 *   selftests_build.c   find/unpack the kernel tree, build the selftests, list them
 *   selftests_run.c     run one test (one function) and the parallel scheduler
 *   selftests_report.c  progress lines, final table, TSV, JUnit XML, expectations
 *   cmd_selftests.c     option parsing and the order of the steps
 * Result classification follows kselftest (tools/testing/selftests/kselftest.h):
 * exit 0 = pass, 4 (KSFT_SKIP) = skip, anything else = fail; a test still running at
 * its timeout is killed (process group) and reported as TIMEOUT with exit code 124
 * like coreutils timeout(1), which is what the kselftest runner does. */
#ifndef SOFTKVM_TOOLS_SELFTESTS_H
#define SOFTKVM_TOOLS_SELFTESTS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

enum st_result { ST_NOTRUN, ST_PASS, ST_FAIL, ST_SKIP, ST_TIMEOUT };

/* Where a test runs: under softkvm (`softkvm run -- TEST`) or on the host's /dev/kvm. */
enum st_mode { ST_SOFTKVM, ST_REAL, ST_NMODES };

struct st_outcome {
    enum st_result result;
    int exit_code;      /* exit status; 128+N for signal N; 124 for timeout */
    double seconds;
    char log[PATH_MAX]; /* combined stdout+stderr of the run */
};

struct st_test {
    char *name; /* relative to the selftests output dir, e.g. "x86_64/cpuid_test"; a
                 * flavour copy carries its suffix: "x86_64/state_test@intel" */
    char *path; /* absolute path of the binary */
    char *vendor; /* "intel" / "amd": runs with SOFTKVM_VENDOR set to it; NULL: default */
    struct st_outcome out[ST_NMODES];
};

struct st_suite {
    struct st_test *tests;
    size_t n;
};

struct st_options {
    const char *kernel_tree; /* NULL: Debian's linux-source-6.12 unpacked in the cache */
    const char *build_dir;   /* NULL: <cache>/selftests-6.12 */
    const char *tests_dir;   /* NULL: <build_dir>/kvm (make's OUTPUT=) */
    const char *list_file;   /* NULL: ask the kvm selftests Makefile */
    const char *filter;      /* POSIX extended regex on the test name */
    const char *junit;
    const char *tsv;
    const char *expect;      /* expectations TSV: name, result, reason */
    bool update_expect;      /* rewrite it with this run's results */
    int jobs;
    int timeout;
    bool compare_real;
    bool real_only;
    bool no_build;
    char self_exe[PATH_MAX]; /* this softkvm binary, used for `softkvm run` */
    char cache_dir[PATH_MAX];
    char build_dir_buf[PATH_MAX];
    char tests_dir_buf[PATH_MAX];
    char kernel_tree_buf[PATH_MAX];
};

/* selftests_build.c */
/* Serialises runs sharing a build dir (make and the logs are not safe to share); the
 * returned fd holds the lock until the process exits. -1 on error. */
int st_lock_build_dir(const struct st_options *o);
int st_prepare_kernel_tree(struct st_options *o);
int st_build(const struct st_options *o);
int st_list_tests(const struct st_options *o, struct st_suite *suite);
/* Per-flavour copies: every NAME@intel / NAME@amd row of the expectations file whose NAME
 * is in the suite adds a copy of that test run with SOFTKVM_VENDOR=intel/amd (the test
 * itself still runs under the default flavour as NAME). 0 or -1. */
int st_add_flavours(const char *expect_file, struct st_suite *suite);
void st_suite_free(struct st_suite *suite);
int st_run_command(char *const argv[], const char *log_path, const char *stdout_path);
int st_mkdirs(const char *path);

/* selftests_run.c */
bool st_real_kvm_works(void);
/* 0 when every test ran; -2 when stopped by SIGINT/SIGTERM/SIGHUP (running tests killed). */
int st_run_all(const struct st_options *o, struct st_suite *suite, const bool modes[ST_NMODES]);

/* selftests_report.c */
const char *st_result_name(enum st_result r);
int st_result_parse(const char *s, enum st_result *r);
void st_print_progress(size_t done, size_t total, const struct st_test *t, enum st_mode m);
void st_print_table(const struct st_suite *s, const bool modes[ST_NMODES]);
int st_write_tsv(const char *path, const struct st_suite *s, const bool modes[ST_NMODES]);
int st_write_junit(const char *path, const struct st_suite *s, const bool modes[ST_NMODES]);
/* Compares mode m's results with the expectations: returns the number of regressions
 * (expected PASS, did not pass) plus malformed lines, -1 if the file cannot be read. */
int st_check_expectations(const char *path, const struct st_suite *s, enum st_mode m);
/* Rewrites the expectations with mode m's results (reasons kept); lines changed, or -1. */
int st_update_expectations(const char *path, const struct st_suite *s, enum st_mode m);

#endif
