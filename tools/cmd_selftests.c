/* `softkvm selftests`: build the Linux x86 KVM selftests unmodified and run each under
 * softkvm (optionally also on the host's /dev/kvm, side by side), with a timeout, progress,
 * a final table and TSV / JUnit outputs. The steps live in selftests_*.c (see selftests.h). */
#include <getopt.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "selftests.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: softkvm selftests [OPTIONS]\n"
        "Builds the Linux x86 KVM selftests unmodified and runs each one under softkvm.\n\n"
        "  --kernel-tree DIR  kernel source tree (default: Debian's linux-source-6.12,\n"
        "                     installed if missing and unpacked under ~/.cache/softkvm)\n"
        "  --build-dir DIR    where headers, binaries and logs go\n"
        "                     (default: ~/.cache/softkvm/selftests-6.12)\n"
        "  --filter REGEX     only tests whose name matches (POSIX extended regex)\n"
        "  --jobs N           tests run at once, also make -j (default 1)\n"
        "  --timeout S        per-test timeout in seconds (default 120, as kvm/settings)\n"
        "  --vendor V         softkvm's CPU flavour, intel or amd (sets SOFTKVM_VENDOR;\n"
        "                     default: SOFTKVM_VENDOR if set, else the host CPU's vendor)\n"
        "  --compare-real     also run each test on the host's /dev/kvm, side by side\n"
        "  --real-only        run the tests directly on the host's /dev/kvm, no softkvm\n"
        "  --junit FILE       write JUnit XML\n"
        "  --tsv FILE         write TSV: name, result, exit code, seconds (per mode)\n"
        "  --expect FILE      judge the results (softkvm's; the host's with --real-only)\n"
        "                     against an expectations TSV\n"
        "                     (name, result, reason); exit 1 on a regression;\n"
        "                     a row NAME@intel / NAME@amd adds a copy of NAME run\n"
        "                     with SOFTKVM_VENDOR=intel / amd\n"
        "  --update-expect    rewrite the --expect file with this run's results\n"
        "                     (reasons and FLAKY lines kept), then judge nothing\n"
        "  --no-build         use the binaries already built\n"
        "  --tests-dir DIR    where the binaries are (default BUILD-DIR/kvm)\n"
        "  --list FILE        test names (relative to the tests dir), one per line,\n"
        "                     instead of asking the Makefile\n"
        "Results follow kselftest: exit 0 PASS, 4 SKIP, other FAIL; killed at the timeout\n"
        "TIMEOUT. Exit status: 0 all passed or no regression against --expect, 1 otherwise,\n"
        "2 usage, build error or `softkvm run` unusable, 130 interrupted.\n");
}

enum { OPT_KTREE = 1000, OPT_BUILD, OPT_TESTS, OPT_LIST, OPT_NOBUILD, OPT_FILTER, OPT_JOBS,
       OPT_TIMEOUT, OPT_REAL, OPT_REALONLY, OPT_JUNIT, OPT_TSV, OPT_EXPECT, OPT_UPDATE,
       OPT_VENDOR, OPT_HELP };

static const struct option long_opts[] = {
    {"kernel-tree", required_argument, NULL, OPT_KTREE},
    {"build-dir", required_argument, NULL, OPT_BUILD},
    {"tests-dir", required_argument, NULL, OPT_TESTS},
    {"list", required_argument, NULL, OPT_LIST},
    {"no-build", no_argument, NULL, OPT_NOBUILD},
    {"filter", required_argument, NULL, OPT_FILTER},
    {"jobs", required_argument, NULL, OPT_JOBS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"compare-real", no_argument, NULL, OPT_REAL},
    {"real-only", no_argument, NULL, OPT_REALONLY},
    {"junit", required_argument, NULL, OPT_JUNIT},
    {"tsv", required_argument, NULL, OPT_TSV},
    {"expect", required_argument, NULL, OPT_EXPECT},
    {"update-expect", no_argument, NULL, OPT_UPDATE},
    {"vendor", required_argument, NULL, OPT_VENDOR},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int parse_positive(const char *s, const char *what, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 100000) {
        fprintf(stderr, "softkvm selftests: %s must be a positive integer, not '%s'\n", what, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct st_options *o)
{
    memset(o, 0, sizeof *o);
    o->jobs = 1;
    o->timeout = 120;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_KTREE: o->kernel_tree = optarg; break;
        case OPT_BUILD: o->build_dir = optarg; break;
        case OPT_TESTS: o->tests_dir = optarg; break;
        case OPT_LIST: o->list_file = optarg; break;
        case OPT_NOBUILD: o->no_build = true; break;
        case OPT_FILTER: o->filter = optarg; break;
        case OPT_JOBS: if (parse_positive(optarg, "--jobs", &o->jobs)) return -1; break;
        case OPT_TIMEOUT: if (parse_positive(optarg, "--timeout", &o->timeout)) return -1; break;
        case OPT_REAL: o->compare_real = true; break;
        case OPT_REALONLY: o->real_only = true; break;
        case OPT_JUNIT: o->junit = optarg; break;
        case OPT_TSV: o->tsv = optarg; break;
        case OPT_EXPECT: o->expect = optarg; break;
        case OPT_UPDATE: o->update_expect = true; break;
        case OPT_VENDOR:
            /* Results depend on the flavour (svm_* need AMD, vmx_* Intel): an expectations
             * file is only meaningful for the flavour it was measured on, so a run that
             * judges one must not follow whatever CPU the host happens to have. */
            if (strcmp(optarg, "intel") != 0 && strcmp(optarg, "amd") != 0) {
                fprintf(stderr, "softkvm selftests: --vendor must be intel or amd, not '%s'\n",
                        optarg);
                return -1;
            }
            setenv("SOFTKVM_VENDOR", optarg, 1);
            break;
        case OPT_HELP: usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (o->update_expect && !o->expect) {
        fprintf(stderr, "softkvm selftests: --update-expect needs --expect FILE\n");
        return -1;
    }
    if (optind != argc) {
        fprintf(stderr, "softkvm selftests: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    /* Default locations: XDG cache, else ~/.cache. */
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(o->cache_dir, sizeof o->cache_dir, "%s/softkvm", xdg);
    else
        snprintf(o->cache_dir, sizeof o->cache_dir, "%s/.cache/softkvm", home ? home : "/tmp");
    if (!o->build_dir) {
        if (snprintf(o->build_dir_buf, sizeof o->build_dir_buf, "%s/selftests-6.12",
                     o->cache_dir) >= (int)sizeof o->build_dir_buf)
            return fprintf(stderr, "softkvm selftests: cache path too long\n"), -1;
        o->build_dir = o->build_dir_buf;
    }
    if (!o->tests_dir) {
        if (snprintf(o->tests_dir_buf, sizeof o->tests_dir_buf, "%s/kvm", o->build_dir) >=
            (int)sizeof o->tests_dir_buf)
            return fprintf(stderr, "softkvm selftests: build path too long\n"), -1;
        o->tests_dir = o->tests_dir_buf;
    }
    /* Tests run in their own directory: a relative SOFTKVM_PRELOAD (read by `softkvm run`)
     * must not change meaning there. */
    const char *pre = getenv("SOFTKVM_PRELOAD");
    char abs[PATH_MAX];
    if (pre && *pre && *pre != '/' && realpath(pre, abs))
        setenv("SOFTKVM_PRELOAD", abs, 1);
    ssize_t n = readlink("/proc/self/exe", o->self_exe, sizeof o->self_exe - 1);
    if (n <= 0) {
        fprintf(stderr, "softkvm selftests: cannot find own executable\n");
        return -1;
    }
    o->self_exe[n] = '\0';
    return 0;
}

/* Keeps only the tests whose name matches --filter. */
static int apply_filter(const char *filter, struct st_suite *s)
{
    regex_t re;
    int rc = regcomp(&re, filter, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[256];
        regerror(rc, &re, msg, sizeof msg);
        fprintf(stderr, "softkvm selftests: bad --filter '%s': %s\n", filter, msg);
        return -1;
    }
    size_t keep = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (regexec(&re, s->tests[i].name, 0, NULL, 0) == 0) {
            s->tests[keep++] = s->tests[i];
        } else {
            free(s->tests[i].name);
            free(s->tests[i].path);
        }
    }
    s->n = keep;
    regfree(&re);
    return 0;
}

int softkvm_cmd_selftests(int argc, char **argv)
{
    struct st_options o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    bool modes[ST_NMODES] = {[ST_SOFTKVM] = !o.real_only,
                             [ST_REAL] = o.compare_real || o.real_only};
    if (modes[ST_REAL] && !st_real_kvm_works()) {
        /* --real-only still runs: kselftests skip (exit 4) without a usable /dev/kvm,
         * which is the honest answer for that host. */
        if (o.real_only) {
            printf("softkvm selftests: note: /dev/kvm does not work on this host\n");
        } else {
            printf("softkvm selftests: no working /dev/kvm on this host, --compare-real ignored\n");
            modes[ST_REAL] = false;
        }
    }
    if (st_lock_build_dir(&o) < 0) {
        fprintf(stderr, "softkvm selftests: cannot lock %s\n", o.build_dir);
        return 2;
    }
    /* The tree is needed to build, and to ask its Makefile for the list of tests. */
    if ((!o.no_build || !o.list_file) && st_prepare_kernel_tree(&o) != 0)
        return 2;
    if (!o.no_build && st_build(&o) != 0)
        return 2;
    if (st_mkdirs(o.build_dir) != 0) {
        fprintf(stderr, "softkvm selftests: cannot create %s\n", o.build_dir);
        return 2;
    }
    struct st_suite suite;
    if (st_list_tests(&o, &suite) != 0)
        return 2;
    if (o.expect && st_add_flavours(o.expect, &suite) != 0) {
        st_suite_free(&suite);
        return 2;
    }
    if (o.filter && apply_filter(o.filter, &suite) != 0) {
        st_suite_free(&suite);
        return 2;
    }
    if (suite.n == 0) {
        fprintf(stderr, "softkvm selftests: no tests to run\n");
        st_suite_free(&suite);
        return 2;
    }
    /* One trivial program under `softkvm run` first: a missing preload library would
     * otherwise show up as 84 identical failures. */
    char *probe[] = {o.self_exe, "run", "--", "true", NULL};
    int prc = modes[ST_SOFTKVM] ? st_run_command(probe, NULL, NULL) : 0;
    if (prc != 0) {
        fprintf(stderr, "softkvm selftests: `softkvm run -- true` fails (exit %d); is "
                        "libsoftkvm-preload.so built?\n", prc);
        st_suite_free(&suite);
        return 2;
    }
    const char *flavour = getenv("SOFTKVM_VENDOR");
    printf("softkvm selftests: %zu tests, %d at a time, timeout %d s%s, softkvm flavour %s\n",
           suite.n, o.jobs, o.timeout,
           modes[ST_REAL] ? (modes[ST_SOFTKVM] ? ", softkvm and real KVM" : ", real KVM")
                          : ", under softkvm",
           flavour && *flavour ? flavour : "of the host CPU");
    int rc = 2;
    int run = st_run_all(&o, &suite, modes);
    if (run != 0) {
        rc = run == -2 ? 130 : 2; /* -2: interrupted by a signal, as a shell reports it */
        goto out;
    }
    st_print_table(&suite, modes);
    rc = 0;
    if (o.tsv && st_write_tsv(o.tsv, &suite, modes) != 0)
        rc = 2;
    if (o.junit && st_write_junit(o.junit, &suite, modes) != 0)
        rc = 2;
    if (rc != 0)
        goto out;
    /* The primary column is softkvm's; with --real-only it is the host's. */
    enum st_mode primary = modes[ST_SOFTKVM] ? ST_SOFTKVM : ST_REAL;
    if (o.expect && o.update_expect) {
        rc = st_update_expectations(o.expect, &suite, primary) < 0 ? 2 : 0;
    } else if (o.expect) {
        rc = st_check_expectations(o.expect, &suite, primary) != 0 ? 1 : 0;
    } else {
        for (size_t i = 0; i < suite.n; i++) {
            enum st_result r = suite.tests[i].out[primary].result;
            if (r != ST_PASS && r != ST_SKIP)
                rc = 1;
        }
    }
out:
    st_suite_free(&suite);
    return rc;
}
