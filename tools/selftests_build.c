/* `softkvm selftests`: getting the kernel tree, building the x86 KVM selftests unmodified,
 * and asking their Makefile which programs it builds (TEST_GEN_PROGS for ARCH=x86). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "selftests.h"

/* Debian 12 (bookworm-backports) ships the 6.12 source as this package and tarball. */
static const char debian_pkg[] = "linux-source-6.12";
static const char debian_tarball[] = "/usr/src/linux-source-6.12.tar.xz";
static const char tree_name[] = "linux-source-6.12";

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int st_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Runs argv to completion; stdout goes to stdout_path (or the log), stderr to the log
 * (or is inherited when log_path is NULL). Returns the exit status, or -1. */
int st_run_command(char *const argv[], const char *log_path, const char *stdout_path)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd < 0)
                _exit(127);
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (stdout_path) {
            int fd = open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0)
                _exit(127);
            dup2(fd, 1);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "softkvm selftests: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void show_log_tail(const char *log_path)
{
    char *argv[] = {"tail", "-n", "25", (char *)log_path, NULL};
    st_run_command(argv, NULL, NULL);
}

/* The tarball comes from the Debian package; install it if absent (needs root or sudo). */
static int ensure_tarball(void)
{
    if (is_file(debian_tarball))
        return 0;
    printf("softkvm selftests: %s missing, installing package %s\n", debian_tarball, debian_pkg);
    char *apt[] = {"apt-get", "install", "-y", "-q", (char *)debian_pkg, NULL};
    char *sudo_apt[] = {"sudo", "apt-get", "install", "-y", "-q", (char *)debian_pkg, NULL};
    char *update[] = {"apt-get", "update", "-q", NULL};
    char *sudo_update[] = {"sudo", "apt-get", "update", "-q", NULL};
    bool root = geteuid() == 0;
    int rc = st_run_command(root ? apt : sudo_apt, NULL, NULL);
    if (rc != 0) { /* fresh containers have no package lists yet */
        st_run_command(root ? update : sudo_update, NULL, NULL);
        rc = st_run_command(root ? apt : sudo_apt, NULL, NULL);
    }
    if (rc != 0 || !is_file(debian_tarball)) {
        fprintf(stderr, "softkvm selftests: could not install %s (apt-get exit %d); "
                        "pass --kernel-tree DIR instead\n", debian_pkg, rc);
        return -1;
    }
    return 0;
}

int st_prepare_kernel_tree(struct st_options *o)
{
    if (o->kernel_tree) {
        char mk[PATH_MAX + 64];
        snprintf(mk, sizeof mk, "%s/tools/testing/selftests/kvm/Makefile", o->kernel_tree);
        if (!is_file(mk)) {
            fprintf(stderr, "softkvm selftests: %s is not a kernel tree (no %s)\n",
                    o->kernel_tree, mk);
            return -1;
        }
        return 0;
    }
    if (snprintf(o->kernel_tree_buf, sizeof o->kernel_tree_buf, "%s/%s", o->cache_dir,
                 tree_name) >= (int)sizeof o->kernel_tree_buf)
        return fprintf(stderr, "softkvm selftests: cache path too long\n"), -1;
    o->kernel_tree = o->kernel_tree_buf;
    if (is_dir(o->kernel_tree))
        return 0;
    if (ensure_tarball() != 0)
        return -1;
    /* Unpack into a private directory and rename, so an interrupted unpack is never
     * mistaken for a complete tree by the next run. */
    char tmp[PATH_MAX], unpacked[PATH_MAX + 32];
    if (snprintf(tmp, sizeof tmp, "%s/.unpack-%d", o->cache_dir, (int)getpid()) >= (int)sizeof tmp)
        return fprintf(stderr, "softkvm selftests: cache path too long\n"), -1;
    if (st_mkdirs(tmp) != 0) {
        fprintf(stderr, "softkvm selftests: cannot create %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    printf("softkvm selftests: unpacking %s into %s (one time)\n", debian_tarball, o->cache_dir);
    char *tar[] = {"tar", "-xf", (char *)debian_tarball, "-C", tmp, NULL};
    if (st_run_command(tar, NULL, NULL) != 0) {
        fprintf(stderr, "softkvm selftests: unpacking %s failed\n", debian_tarball);
        return -1;
    }
    snprintf(unpacked, sizeof unpacked, "%s/%s", tmp, tree_name);
    if (rename(unpacked, o->kernel_tree) != 0) {
        /* Another run unpacked it first: use theirs, drop ours. */
        bool theirs = is_dir(o->kernel_tree);
        if (!theirs)
            fprintf(stderr, "softkvm selftests: rename %s: %s\n", unpacked, strerror(errno));
        char *rm[] = {"rm", "-rf", tmp, NULL};
        st_run_command(rm, NULL, NULL);
        return theirs ? 0 : -1;
    }
    rmdir(tmp);
    return 0;
}

int st_lock_build_dir(const struct st_options *o)
{
    char path[PATH_MAX + 16];
    if (st_mkdirs(o->build_dir) != 0 ||
        snprintf(path, sizeof path, "%s/.lock", o->build_dir) >= (int)sizeof path)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        printf("softkvm selftests: waiting for another run using %s\n", o->build_dir);
        fflush(stdout);
        if (flock(fd, LOCK_EX) != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* headers_install with O= keeps the kernel tree clean; then the selftests Makefile with
 * OUTPUT= and KHDR_INCLUDES pointing at those headers. Both are incremental. */
int st_build(const struct st_options *o)
{
    char kbuild[PATH_MAX + 16], hdr_probe[PATH_MAX + 64], log[PATH_MAX + 16], kvmdir[PATH_MAX + 64];
    char obj_arg[PATH_MAX + 32], out_arg[PATH_MAX + 32], khdr_arg[PATH_MAX + 64], jobs_arg[32];
    snprintf(kbuild, sizeof kbuild, "%s/kbuild", o->build_dir);
    snprintf(hdr_probe, sizeof hdr_probe, "%s/usr/include/linux/kvm.h", kbuild);
    snprintf(log, sizeof log, "%s/build.log", o->build_dir);
    snprintf(kvmdir, sizeof kvmdir, "%s/tools/testing/selftests/kvm", o->kernel_tree);
    snprintf(obj_arg, sizeof obj_arg, "O=%s", kbuild);
    snprintf(out_arg, sizeof out_arg, "OUTPUT=%s", o->tests_dir);
    snprintf(khdr_arg, sizeof khdr_arg, "KHDR_INCLUDES=-isystem %s/usr/include", kbuild);
    snprintf(jobs_arg, sizeof jobs_arg, "-j%d", o->jobs > 0 ? o->jobs : 1);
    if (st_mkdirs(kbuild) != 0 || st_mkdirs(o->tests_dir) != 0) {
        fprintf(stderr, "softkvm selftests: cannot create %s\n", o->build_dir);
        return -1;
    }
    unlink(log);
    printf("softkvm selftests: building in %s from %s (log: %s)\n", o->build_dir,
           o->kernel_tree, log);
    if (!is_file(hdr_probe)) {
        char *hdr[] = {"make", "-C", (char *)o->kernel_tree, obj_arg, "ARCH=x86",
                       "headers_install", jobs_arg, NULL};
        if (st_run_command(hdr, log, NULL) != 0) {
            fprintf(stderr, "softkvm selftests: make headers_install failed:\n");
            show_log_tail(log);
            return -1;
        }
    }
    char *mk[] = {"make", "-C", kvmdir, out_arg, "ARCH=x86", khdr_arg, jobs_arg, NULL};
    if (st_run_command(mk, log, NULL) != 0) {
        fprintf(stderr, "softkvm selftests: building the selftests failed:\n");
        show_log_tail(log);
        return -1;
    }
    return 0;
}

/* A flavour suffix ("@intel", "@amd") of a test name, or NULL. */
static const char *flavour_of(const char *name)
{
    const char *at = strrchr(name, '@');
    if (at && (strcmp(at + 1, "intel") == 0 || strcmp(at + 1, "amd") == 0))
        return at + 1;
    return NULL;
}

static int suite_add(struct st_suite *s, const char *name, const char *dir)
{
    struct st_test *n = realloc(s->tests, (s->n + 1) * sizeof *n);
    if (!n)
        return -1;
    s->tests = n;
    struct st_test *t = &s->tests[s->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    const char *fl = flavour_of(name);
    int base = fl ? (int)(fl - 1 - name) : (int)strlen(name); /* the binary has no suffix */
    if (asprintf(&t->path, "%s/%.*s", dir, base, name) < 0)
        t->path = NULL;
    if (fl)
        t->vendor = strdup(fl);
    if (!t->name || !t->path || (fl && !t->vendor))
        return -1;
    s->n++;
    return 0;
}

int st_add_flavours(const char *expect_file, struct st_suite *s)
{
    FILE *f = fopen(expect_file, "r");
    if (!f)
        return 0; /* st_check_expectations reports the unreadable file */
    char line[PATH_MAX * 2];
    int rc = 0;
    size_t listed = s->n;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\t\r\n")] = '\0';
        const char *fl = flavour_of(line);
        if (line[0] == '#' || !fl)
            continue;
        size_t base = (size_t)(fl - 1 - line);
        for (size_t i = 0; i < listed; i++) {
            const struct st_test *t = &s->tests[i];
            if (!t->vendor && strlen(t->name) == base && strncmp(t->name, line, base) == 0) {
                /* the copy runs the same binary: its directory is the test's own */
                char dir[PATH_MAX];
                size_t pl = strlen(t->path), nl = strlen(t->name);
                snprintf(dir, sizeof dir, "%.*s", (int)(pl - nl - 1), t->path);
                rc = suite_add(s, line, dir);
                break;
            }
        }
    }
    fclose(f);
    return rc;
}

/* Reads names one per line; absolute paths under tests_dir are made relative. */
static int read_list(const char *file, const char *tests_dir, struct st_suite *s)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "softkvm selftests: cannot read %s: %s\n", file, strerror(errno));
        return -1;
    }
    char line[PATH_MAX * 2];
    size_t dl = strlen(tests_dir);
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        const char *name = line;
        if (!*name || *name == '#')
            continue;
        if (strncmp(name, tests_dir, dl) == 0 && name[dl] == '/')
            name += dl + 1;
        rc = suite_add(s, name, tests_dir);
    }
    fclose(f);
    return rc;
}

int st_list_tests(const struct st_options *o, struct st_suite *s)
{
    memset(s, 0, sizeof *s);
    if (o->list_file)
        return read_list(o->list_file, o->tests_dir, s);
    /* lib.mk prefixes TEST_GEN_PROGS with $(OUTPUT)/; a rule added with --eval prints
     * it without touching the (unmodified) Makefile. */
    char kvmdir[PATH_MAX + 64], out_arg[PATH_MAX + 32], list[PATH_MAX + 16];
    snprintf(kvmdir, sizeof kvmdir, "%s/tools/testing/selftests/kvm", o->kernel_tree);
    snprintf(out_arg, sizeof out_arg, "OUTPUT=%s", o->tests_dir);
    snprintf(list, sizeof list, "%s/tests.txt", o->build_dir);
    char *mk[] = {"make", "-s", "-C", kvmdir, out_arg, "ARCH=x86",
                  "--eval=softkvm-list: ; @printf '%s\\n' $(TEST_GEN_PROGS)", "softkvm-list",
                  NULL};
    if (st_run_command(mk, NULL, list) != 0) {
        fprintf(stderr, "softkvm selftests: could not list the tests from %s\n", kvmdir);
        return -1;
    }
    return read_list(list, o->tests_dir, s);
}

void st_suite_free(struct st_suite *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->tests[i].name);
        free(s->tests[i].path);
        free(s->tests[i].vendor);
    }
    free(s->tests);
    s->tests = NULL;
    s->n = 0;
}
