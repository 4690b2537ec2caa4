/* `softkvm selftests`: running tests. st_spawn_test() is THE definition of how one test
 * runs (under softkvm or on the host's /dev/kvm); st_run_all() schedules up to --jobs of
 * them at once, enforces the timeout and reports progress. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "selftests.h"

/* Seconds a killed test gets between SIGTERM and SIGKILL. */
enum { KILL_GRACE_S = 2 };

/* The host's KVM is usable when /dev/kvm opens, reports API 12 and creates a VM. */
bool st_real_kvm_works(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        return false;
    bool ok = ioctl(kvm, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;
    if (ok) {
        int vm = ioctl(kvm, KVM_CREATE_VM, 0);
        ok = vm >= 0;
        if (vm >= 0)
            close(vm);
    }
    close(kvm);
    return ok;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Starts one test in its own process group (so a timeout kills everything it forked),
 * stdin from /dev/null, stdout+stderr into log, cwd = the test's directory (kselftest's
 * runner does the same). Under softkvm the test runs exactly as `softkvm run -- TEST`
 * would run it: we exec our own binary's run subcommand, so the environment is whatever
 * that subcommand sets up. */
static pid_t st_spawn_test(const struct st_options *o, const struct st_test *t, enum st_mode m,
                           const char *log, const sigset_t *child_mask)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid > 0)
        setpgid(pid, pid); /* both sides set it: no window where a kill(-pid) misses */
    if (pid != 0)
        return pid;
    setpgid(0, 0);
    sigprocmask(SIG_SETMASK, child_mask, NULL); /* the mask survives exec */
    int null = open("/dev/null", O_RDONLY);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (null < 0 || fd < 0)
        _exit(127);
    dup2(null, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", t->path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (chdir(dir) != 0)
            _exit(127);
    }
    /* a flavour copy (NAME@intel): softkvm's CPU model from SOFTKVM_VENDOR */
    if (t->vendor)
        setenv("SOFTKVM_VENDOR", t->vendor, 1);
    if (m == ST_SOFTKVM)
        execl(o->self_exe, "softkvm", "run", "--", t->path, (char *)NULL);
    else
        execl(t->path, t->path, (char *)NULL);
    fprintf(stderr, "softkvm selftests: exec %s: %s\n", m == ST_SOFTKVM ? o->self_exe : t->path,
            strerror(errno));
    _exit(127);
}

static void classify(struct st_outcome *out, int status, bool timed_out)
{
    if (timed_out) {
        out->result = ST_TIMEOUT;
        out->exit_code = 124;
        return;
    }
    if (WIFEXITED(status)) {
        out->exit_code = WEXITSTATUS(status);
        out->result = out->exit_code == 0 ? ST_PASS : out->exit_code == 4 ? ST_SKIP : ST_FAIL;
    } else {
        out->exit_code = 128 + WTERMSIG(status);
        out->result = ST_FAIL;
    }
}

struct slot {
    pid_t pid; /* 0: free */
    size_t test;
    enum st_mode mode;
    double start, killed_at;
};

static int log_path(const struct st_options *o, const struct st_test *t, enum st_mode m,
                    char *buf, size_t len)
{
    char flat[PATH_MAX];
    snprintf(flat, sizeof flat, "%s", t->name);
    for (char *p = flat; *p; p++)
        if (*p == '/')
            *p = '_';
    int n = snprintf(buf, len, "%s/logs/%s/%s.log", o->build_dir,
                     m == ST_SOFTKVM ? "softkvm" : "real", flat);
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

int st_run_all(const struct st_options *o, struct st_suite *s, const bool modes[ST_NMODES])
{
    for (int m = 0; m < ST_NMODES; m++) {
        char dir[PATH_MAX + 16];
        snprintf(dir, sizeof dir, "%s/logs/%s", o->build_dir, m == ST_SOFTKVM ? "softkvm" : "real");
        if (modes[m] && st_mkdirs(dir) != 0) {
            fprintf(stderr, "softkvm selftests: cannot create %s\n", dir);
            return -1;
        }
    }
    size_t total = 0, next = 0, done = 0;
    for (int m = 0; m < ST_NMODES; m++)
        total += modes[m] ? s->n : 0;
    int jobs = o->jobs > 0 ? o->jobs : 1;
    struct slot *slots = calloc(jobs, sizeof *slots);
    if (!slots)
        return -1;
    /* Task k is test k % n in the k / n-th enabled mode; interleaving the modes of one
     * test would make real-KVM timing tests compete with their own softkvm twin. */
    enum st_mode order[ST_NMODES];
    int nmodes = 0;
    for (int m = 0; m < ST_NMODES; m++)
        if (modes[m])
            order[nmodes++] = m;
    /* Tests run in their own process groups, so a Ctrl-C on the terminal reaches only us:
     * take SIGINT/SIGTERM/SIGHUP through a signalfd and kill every running test before
     * leaving, instead of orphaning them. */
    sigset_t stop_sigs, old_mask;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop_sigs, &old_mask);
    int sfd = signalfd(-1, &stop_sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    int rc = 0;
    while (done < total) {
        struct signalfd_siginfo si;
        if (sfd >= 0 && read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
            fprintf(stderr, "softkvm selftests: signal %u, killing the running tests\n",
                    si.ssi_signo);
            for (int i = 0; i < jobs; i++) {
                if (!slots[i].pid)
                    continue;
                kill(-slots[i].pid, SIGKILL);
                waitpid(slots[i].pid, NULL, 0);
            }
            rc = -2;
            break;
        }
        for (int i = 0; i < jobs && next < total; i++) {
            if (slots[i].pid)
                continue;
            struct slot *sl = &slots[i];
            sl->test = next % s->n;
            sl->mode = order[next / s->n];
            next++;
            struct st_outcome *out = &s->tests[sl->test].out[sl->mode];
            sl->start = now_s();
            sl->killed_at = 0;
            sl->pid = -1;
            if (log_path(o, &s->tests[sl->test], sl->mode, out->log, sizeof out->log) == 0)
                sl->pid = st_spawn_test(o, &s->tests[sl->test], sl->mode, out->log, &old_mask);
            if (sl->pid < 0) {
                out->result = ST_FAIL;
                out->exit_code = 127;
                sl->pid = 0;
                st_print_progress(++done, total, &s->tests[sl->test], sl->mode);
            }
        }
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            for (int i = 0; i < jobs; i++) {
                struct slot *sl = &slots[i];
                if (sl->pid != pid)
                    continue;
                struct st_outcome *out = &s->tests[sl->test].out[sl->mode];
                /* The group may still hold children of the test; they must not outlive it. */
                kill(-pid, SIGKILL);
                out->seconds = now_s() - sl->start;
                classify(out, status, sl->killed_at > 0);
                sl->pid = 0;
                st_print_progress(++done, total, &s->tests[sl->test], sl->mode);
            }
            continue;
        }
        double t = now_s();
        for (int i = 0; i < jobs; i++) {
            struct slot *sl = &slots[i];
            if (!sl->pid)
                continue;
            if (!sl->killed_at && t - sl->start >= o->timeout) {
                kill(-sl->pid, SIGTERM);
                sl->killed_at = t;
            } else if (sl->killed_at && t - sl->killed_at >= KILL_GRACE_S) {
                kill(-sl->pid, SIGKILL);
            }
        }
        struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    if (sfd >= 0)
        close(sfd);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    free(slots);
    return rc;
}
