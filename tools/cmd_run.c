/* `softkvm run [--] CMD ARGS`: run CMD with softkvm serving /dev/kvm.
 *
 * Sets LD_PRELOAD to the absolute path of libsoftkvm-preload.so (found next to this
 * executable's build tree, or via SOFTKVM_PRELOAD) in front of any existing
 * LD_PRELOAD, then execs CMD. The program is otherwise untouched. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"

#define PRELOAD_NAME "libsoftkvm-preload.so"

/* Candidate locations relative to the directory holding the softkvm binary. */
static const char *const preload_dirs[] = {".", "../abi", "../lib/softkvm", "../lib"};

static int find_preload(char *out, size_t n)
{
    const char *env = getenv("SOFTKVM_PRELOAD");
    if (env && *env) {
        if (!realpath(env, out))
            return -1;
        return access(out, R_OK);
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return -1;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = 0;
    for (size_t i = 0; i < sizeof preload_dirs / sizeof preload_dirs[0]; i++) {
        char cand[PATH_MAX];
        if (snprintf(cand, sizeof cand, "%s/%s/%s", exe, preload_dirs[i], PRELOAD_NAME) >=
            (int)sizeof cand)
            continue;
        if (access(cand, R_OK) == 0 && realpath(cand, out) && strlen(out) < n)
            return 0;
    }
    return -1;
}

/* The sanitizer build's preload library needs the ASan/UBSan runtimes loaded first
 * (they must precede it in LD_PRELOAD); find the ones this binary uses. */
static void sanitizer_runtimes(char *out, size_t n)
{
    out[0] = 0;
#if defined(SOFTKVM_SANITIZE)
    static const char *const syms[] = {"__asan_init", "__ubsan_handle_add_overflow"};
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        Dl_info info;
        void *p = dlsym(RTLD_DEFAULT, syms[i]);
        if (p && dladdr(p, &info) && info.dli_fname && strstr(info.dli_fname, ".so")) {
            size_t l = strlen(out);
            snprintf(out + l, n - l, "%s:", info.dli_fname);
        }
    }
    /* the preloaded program's own allocations are not ours to report */
    setenv("ASAN_OPTIONS", "detect_leaks=0", 0);
#else
    (void)n;
#endif
}

int softkvm_cmd_run(int argc, char **argv)
{
    int i = 1;
    if (i < argc && strcmp(argv[i], "--") == 0)
        i++;
    if (i >= argc) {
        fprintf(stderr, "usage: softkvm run [--] CMD [ARGS...]\n");
        return 2;
    }
    char lib[PATH_MAX];
    if (find_preload(lib, sizeof lib) != 0) {
        fprintf(stderr, "softkvm run: cannot find %s (set SOFTKVM_PRELOAD)\n", PRELOAD_NAME);
        return 2;
    }
    char rt[2 * PATH_MAX];
    sanitizer_runtimes(rt, sizeof rt);
    const char *old = getenv("LD_PRELOAD");
    size_t need = strlen(rt) + strlen(lib) + (old ? strlen(old) + 2 : 1);
    char *val = malloc(need);
    if (!val)
        return 2;
    snprintf(val, need, "%s%s%s%s", rt, lib, old && *old ? ":" : "", old && *old ? old : "");
    setenv("LD_PRELOAD", val, 1);
    free(val);
    execvp(argv[i], &argv[i]);
    fprintf(stderr, "softkvm run: cannot run %s: %s\n", argv[i], strerror(errno));
    return 127;
}
