/* kvm-fuzz --diff: the same seed on the host's /dev/kvm and on softkvm, errnos compared.
 *
 * Both sides are children exec'd from this binary with LD_PRELOAD removed from their
 * environment: the real side opens the kernel's /dev/kvm with no shim in front of it, and
 * the softkvm side calls the library in-process (it never opens the real device). Each
 * writes its transcript to a memfd; lines match by call index because the random stream
 * does not depend on results. Compared is the first word of the result (ok or the errno
 * name). KVM_RUN ok-vs-EINTR is timing (the timer or the guest exits first) and is not
 * counted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/kvm_fuzz/fuzz.h"

extern char **environ;

static int run_side(const char *self, const struct fz_opts *o, const char *backend, FILE **out)
{
    int fd = memfd_create(backend, 0);
    if (fd < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 1);
        unsetenv("LD_PRELOAD"); /* the real side must talk to the kernel directly */
        char seed[32], count[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
        snprintf(count, sizeof count, "%llu", (unsigned long long)o->count);
        execle(self, self, "--mode", "ioctl", "--backend", backend, "--seed", seed, "--count",
               count, (char *)NULL, environ);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "kvm-fuzz --diff: %s side %s %d\n", backend,
                WIFSIGNALED(st) ? "killed by signal" : "exited with",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    lseek(fd, 0, SEEK_SET);
    *out = fdopen(fd, "r");
    return (WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : 1;
}

struct group {
    char key[200];
    unsigned long n;
    unsigned long first;
};

/* "S=1 #12 vm KVM_IRQFD fd=efd ... -> EINVAL": splits off the call and the result word. */
static int parse(char *line, unsigned long *idx, char **call, char **res)
{
    char *h = strchr(line, '#');
    char *arrow = strstr(line, " -> ");
    if (!h || !arrow)
        return -1;
    *idx = strtoul(h + 1, call, 10);
    *arrow = 0;
    *res = arrow + 4;
    (*res)[strcspn(*res, " \n")] = 0;
    return 0;
}

int fz_diff_main(const struct fz_opts *o, const char *self)
{
    FILE *real = NULL, *soft = NULL;
    int bad = run_side(self, o, "real", &real);
    bad |= run_side(self, o, "softkvm", &soft);
    if (!real || !soft)
        return 2;
    static struct group groups[4096];
    unsigned ng = 0;
    unsigned long ndiff = 0, nlines = 0, ntiming = 0;
    char a[1024], b[1024];
    while (fgets(a, sizeof a, real) && fgets(b, sizeof b, soft)) {
        unsigned long ia, ib;
        char *ca, *cb, *ra, *rb;
        if (parse(a, &ia, &ca, &ra) || parse(b, &ib, &cb, &rb))
            continue;
        nlines++;
        if (ia != ib || strcmp(ca, cb)) {
            printf("kvm-fuzz --diff: transcripts diverge at #%lu (%s | %s)\n", ia, ca, cb);
            return 2;
        }
        if (!strcmp(ra, rb))
            continue;
        bool run = strstr(ca, " KVM_RUN") != NULL;
        if (run && (!strcmp(ra, "ok") || !strcmp(ra, "EINTR")) &&
            (!strcmp(rb, "ok") || !strcmp(rb, "EINTR"))) {
            ntiming++;
            continue;
        }
        ndiff++;
        if (!o->quiet)
            printf("DIFF #%lu%s: real=%s softkvm=%s\n", ia, ca, ra, rb);
        /* group by fd kind + ioctl name + the two results */
        char kind[16] = "", name[64] = "";
        sscanf(ca, " %15s %63s", kind, name);
        char key[200];
        snprintf(key, sizeof key, "%-5s %-32s real=%-9s softkvm=%s", kind, name, ra, rb);
        unsigned g;
        for (g = 0; g < ng; g++)
            if (!strcmp(groups[g].key, key))
                break;
        if (g == ng && ng < sizeof groups / sizeof groups[0]) {
            snprintf(groups[ng].key, sizeof groups[ng].key, "%s", key);
            groups[ng].first = ia;
            ng++;
        }
        if (g < ng)
            groups[g].n++;
    }
    printf("kvm-fuzz --diff seed %llu: %lu calls compared, %lu errno differences in %u groups, "
           "%lu KVM_RUN ok/EINTR timing differences ignored\n",
           (unsigned long long)o->seed, nlines, ndiff, ng, ntiming);
    for (unsigned g = 0; g < ng; g++)
        printf("  %6lu x %s (first #%lu)\n", groups[g].n, groups[g].key, groups[g].first);
    return bad ? 2 : 0;
}
