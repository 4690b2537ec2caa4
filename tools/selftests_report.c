/* `softkvm selftests`: everything the runner prints or writes — progress lines, the final
 * table with counts, TSV and JUnit XML for CI systems, and the expectations check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "selftests.h"

static const char *const result_names[] = {
    [ST_NOTRUN] = "NOTRUN", [ST_PASS] = "PASS", [ST_FAIL] = "FAIL",
    [ST_SKIP] = "SKIP", [ST_TIMEOUT] = "TIMEOUT",
};
static const char *const mode_names[ST_NMODES] = {[ST_SOFTKVM] = "softkvm", [ST_REAL] = "real"};

/* Width of the name column: the longest 6.12 x86 test name fits. */
enum { NAME_W = 44 };

const char *st_result_name(enum st_result r)
{
    return result_names[r];
}

int st_result_parse(const char *s, enum st_result *r)
{
    for (size_t i = 0; i < sizeof result_names / sizeof result_names[0]; i++)
        if (strcmp(s, result_names[i]) == 0) {
            *r = (enum st_result)i;
            return 0;
        }
    return -1;
}

static void format_outcome(char *buf, size_t len, const struct st_outcome *o)
{
    if (o->result == ST_NOTRUN)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%-7s %3d %6.1fs", result_names[o->result], o->exit_code, o->seconds);
}

void st_print_progress(size_t done, size_t total, const struct st_test *t, enum st_mode m)
{
    char oc[64];
    format_outcome(oc, sizeof oc, &t->out[m]);
    printf("[%3zu/%zu] %-*s %-7s %s\n", done, total, NAME_W, t->name, mode_names[m], oc);
    fflush(stdout);
}

static bool differs(const struct st_test *t)
{
    return t->out[ST_SOFTKVM].result != t->out[ST_REAL].result;
}

void st_print_table(const struct st_suite *s, const bool modes[ST_NMODES])
{
    bool both = modes[ST_SOFTKVM] && modes[ST_REAL];
    printf("\n%-*s", NAME_W, "test");
    for (int m = 0; m < ST_NMODES; m++)
        if (modes[m])
            printf("  %-20s", mode_names[m]);
    printf("\n");
    size_t ndiff = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct st_test *t = &s->tests[i];
        printf("%-*s", NAME_W, t->name);
        for (int m = 0; m < ST_NMODES; m++) {
            char oc[64];
            format_outcome(oc, sizeof oc, &t->out[m]);
            if (modes[m])
                printf("  %-20s", oc);
        }
        if (both && differs(t)) {
            printf("  <-- differs");
            ndiff++;
        }
        printf("\n");
    }
    printf("\n");
    for (int m = 0; m < ST_NMODES; m++) {
        if (!modes[m])
            continue;
        size_t c[5] = {0};
        for (size_t i = 0; i < s->n; i++)
            c[s->tests[i].out[m].result]++;
        printf("%-7s: %zu tests, %zu pass, %zu fail, %zu skip, %zu timeout\n", mode_names[m], s->n,
               c[ST_PASS], c[ST_FAIL], c[ST_SKIP], c[ST_TIMEOUT]);
    }
    if (both)
        printf("softkvm and real KVM differ on %zu of %zu tests\n", ndiff, s->n);
}

/* One row per test: name, result, exit code, seconds (the format of
 * /work/shared/data/selftests-6.12-realkvm.tsv); with two modes the real-KVM columns follow.
 * With only --compare-real's real mode, the first columns are the real run. */
int st_write_tsv(const char *path, const struct st_suite *s, const bool modes[ST_NMODES])
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "softkvm selftests: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "# name");
    for (int m = 0; m < ST_NMODES; m++)
        if (modes[m])
            fprintf(f, "\t%s_result\t%s_exit\t%s_seconds", mode_names[m], mode_names[m],
                    mode_names[m]);
    fprintf(f, "\n");
    for (size_t i = 0; i < s->n; i++) {
        const struct st_test *t = &s->tests[i];
        fprintf(f, "%s", t->name);
        for (int m = 0; m < ST_NMODES; m++)
            if (modes[m])
                fprintf(f, "\t%s\t%d\t%.1f", result_names[t->out[m].result], t->out[m].exit_code,
                        t->out[m].seconds);
        fprintf(f, "\n");
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* XML 1.0 allows only tab/newline/CR below 0x20; logs are ASCII in practice, and any
 * other byte is replaced so the file always parses. */
static void xml_escaped(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            fputc((c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t' ? c : '?', f);
        }
    }
}

/* The last bytes of a log are where a kselftest says why it failed. */
static void xml_log_tail(FILE *f, const char *log)
{
    enum { TAIL = 8192 };
    FILE *l = fopen(log, "r");
    if (!l)
        return;
    static char buf[TAIL];
    if (fseek(l, 0, SEEK_END) == 0) {
        long size = ftell(l);
        fseek(l, size > TAIL ? size - TAIL : 0, SEEK_SET);
    }
    size_t n = fread(buf, 1, sizeof buf, l);
    fclose(l);
    fputs("<system-out>", f);
    xml_escaped(f, buf, n);
    fputs("</system-out>", f);
}

int st_write_junit(const char *path, const struct st_suite *s, const bool modes[ST_NMODES])
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "softkvm selftests: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for (int m = 0; m < ST_NMODES; m++) {
        if (!modes[m])
            continue;
        size_t fail = 0, skip = 0;
        double time = 0;
        for (size_t i = 0; i < s->n; i++) {
            enum st_result r = s->tests[i].out[m].result;
            fail += r == ST_FAIL || r == ST_TIMEOUT || r == ST_NOTRUN;
            skip += r == ST_SKIP;
            time += s->tests[i].out[m].seconds;
        }
        fprintf(f, "<testsuite name=\"kvm-selftests-%s\" tests=\"%zu\" failures=\"%zu\" "
                   "errors=\"0\" skipped=\"%zu\" time=\"%.1f\">\n",
                mode_names[m], s->n, fail, skip, time);
        for (size_t i = 0; i < s->n; i++) {
            const struct st_test *t = &s->tests[i];
            const struct st_outcome *o = &t->out[m];
            fprintf(f, "<testcase classname=\"kvm.%s\" name=\"", mode_names[m]);
            xml_escaped(f, t->name, strlen(t->name));
            fprintf(f, "\" time=\"%.1f\">", o->seconds);
            if (o->result == ST_SKIP)
                fprintf(f, "<skipped message=\"exit 4 (KSFT_SKIP)\"/>");
            else if (o->result == ST_TIMEOUT)
                fprintf(f, "<failure message=\"timeout\">killed after the timeout</failure>");
            else if (o->result != ST_PASS)
                fprintf(f, "<failure message=\"exit %d\">exit code %d</failure>", o->exit_code,
                        o->exit_code);
            xml_log_tail(f, o->log);
            fprintf(f, "</testcase>\n");
        }
        fprintf(f, "</testsuite>\n");
    }
    fprintf(f, "</testsuites>\n");
    return fclose(f) == 0 ? 0 : -1;
}

static const struct st_test *find_test(const struct st_suite *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->tests[i].name, name) == 0)
            return &s->tests[i];
    return NULL;
}

/* Expectations file, judged against mode m's results: "name<TAB>RESULT|FLAKY<TAB>reason",
 * '#' starts a comment. A regression is a test expected to PASS that did not; a test doing
 * better than expected is announced loudly so the file gets updated; other changes (e.g.
 * FAIL -> SKIP) are listed. Tests filtered out of this run are not judged. */
int st_check_expectations(const char *path, const struct st_suite *s, enum st_mode m)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "softkvm selftests: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int regressions = 0, better = 0, changed = 0, lineno = 0, bad = 0;
    bool *listed = calloc(s->n ? s->n : 1, sizeof *listed);
    if (!listed) {
        fclose(f);
        return -1;
    }
    size_t judged = 0;
    printf("\nexpectations (%s) vs the %s results:\n", path, mode_names[m]);
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *name = strtok(line, "\t");
        char *res = strtok(NULL, "\t");
        char *reason = strtok(NULL, "");
        enum st_result want;
        /* FLAKY: the outcome depends on host timing (real KVM varies too); shown, not judged. */
        bool flaky = res && strcmp(res, "FLAKY") == 0;
        if (!name || !res || (!flaky && st_result_parse(res, &want) != 0)) {
            fprintf(stderr, "%s:%d: expected NAME<TAB>PASS|FAIL|SKIP|TIMEOUT|FLAKY<TAB>reason\n",
                    path, lineno);
            bad++;
            continue;
        }
        const struct st_test *t = find_test(s, name);
        if (t)
            listed[t - s->tests] = true;
        if (!t || t->out[m].result == ST_NOTRUN)
            continue;
        if (flaky) {
            printf("  flaky       %-*s got %s (not judged: %s)\n", NAME_W, name,
                   result_names[t->out[m].result], reason ? reason : "");
            continue;
        }
        judged++;
        enum st_result got = t->out[m].result;
        if (got == want)
            continue;
        if (want == ST_PASS) {
            printf("  REGRESSION  %-*s expected PASS, got %s (log: %s)\n", NAME_W, name,
                   result_names[got], t->out[m].log);
            regressions++;
        } else if (got == ST_PASS) {
            printf("  *** BETTER THAN EXPECTED *** %s now PASSES (expected %s: %s)"
                   " -- update the expectations file\n", name, result_names[want],
                   reason ? reason : "");
            better++;
        } else {
            printf("  changed     %-*s expected %s, got %s\n", NAME_W, name, result_names[want],
                   result_names[got]);
            changed++;
        }
    }
    fclose(f);
    /* A test the Makefile builds but the file does not mention is a gap in the file. */
    for (size_t i = 0; i < s->n; i++)
        if (!listed[i] && s->tests[i].out[m].result != ST_NOTRUN)
            printf("  no expectation for %s (got %s)\n", s->tests[i].name,
                   result_names[s->tests[i].out[m].result]);
    free(listed);
    printf("  %zu judged: %d regression(s), %d better than expected, %d other change(s)\n", judged,
           regressions, better, changed);
    return bad ? regressions + bad : regressions;
}

/* --update-expect: rewrites the expectations file with this run's results, keeping comments,
 * order, FLAKY lines and reasons; a test that now passes loses its reason, a newly failing
 * one without a reason gets "TODO: why" so the gap is visible in review; tests missing from
 * the file are appended. Written to FILE.new and renamed, so a crash never truncates it. */
int st_update_expectations(const char *path, const struct st_suite *s, enum st_mode m)
{
    FILE *in = fopen(path, "r");
    char tmp[PATH_MAX + 8];
    if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp)
        return -1;
    FILE *out = fopen(tmp, "w");
    if (!out) {
        if (in)
            fclose(in);
        fprintf(stderr, "softkvm selftests: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    bool *seen = calloc(s->n ? s->n : 1, sizeof *seen);
    char line[4096];
    int updated = 0;
    while (in && seen && fgets(line, sizeof line, in)) {
        char keep[4096];
        snprintf(keep, sizeof keep, "%s", line);
        line[strcspn(line, "\r\n")] = '\0';
        char *name = line[0] && line[0] != '#' ? strtok(line, "\t") : NULL;
        char *res = name ? strtok(NULL, "\t") : NULL;
        char *reason = res ? strtok(NULL, "") : NULL;
        const struct st_test *t = name ? find_test(s, name) : NULL;
        if (t)
            seen[t - s->tests] = true;
        if (!t || !res || strcmp(res, "FLAKY") == 0 || t->out[m].result == ST_NOTRUN) {
            fputs(keep, out);
            continue;
        }
        enum st_result got = t->out[m].result;
        if (strcmp(res, result_names[got]) != 0)
            updated++;
        const char *why = got == ST_PASS ? "" : reason && *reason ? reason : "TODO: why";
        fprintf(out, "%s\t%s\t%s\n", name, result_names[got], why);
    }
    for (size_t i = 0; seen && i < s->n; i++) {
        if (seen[i] || s->tests[i].out[m].result == ST_NOTRUN)
            continue;
        enum st_result got = s->tests[i].out[m].result;
        fprintf(out, "%s\t%s\t%s\n", s->tests[i].name, result_names[got],
                got == ST_PASS ? "" : "TODO: why");
        updated++;
    }
    if (in)
        fclose(in);
    bool ok = seen != NULL;
    free(seen);
    if (fclose(out) != 0 || !ok || rename(tmp, path) != 0) {
        fprintf(stderr, "softkvm selftests: could not update %s\n", path);
        unlink(tmp);
        return -1;
    }
    printf("softkvm selftests: %s: %d line(s) updated\n", path, updated);
    return updated;
}
