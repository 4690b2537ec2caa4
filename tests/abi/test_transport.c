/* The LD_PRELOAD transport: softkvm-abi-probe (an ordinary KVM program) is run on the
 * real /dev/kvm when this machine has a working one, and with libsoftkvm-preload.so;
 * the transcripts must be identical, and must match the transcript recorded on real
 * KVM (tests/abi/probe/expected-realkvm.txt). --whoami proves the preloaded run was
 * served by softkvm although a real /dev/kvm exists. */
#include <stdbool.h>
#include <check.h>
#include "tests/check_main.h"
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char build_dir[PATH_MAX];

static void find_build_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = 0;
    *strrchr(exe, '/') = 0; /* .../build/tests */
    *strrchr(exe, '/') = 0; /* .../build */
    snprintf(build_dir, sizeof build_dir, "%s", exe);
}

/* In the sanitizer build the preload library needs the ASan/UBSan runtimes first. */
static void sanitizer_runtimes(char *out, size_t n)
{
    out[0] = 0;
#if defined(SOFTKVM_SANITIZE)
    static const char *const syms[] = {"__asan_init", "__ubsan_handle_add_overflow"};
    for (size_t i = 0; i < 2; i++) {
        Dl_info info;
        void *p = dlsym(RTLD_DEFAULT, syms[i]);
        if (p && dladdr(p, &info) && info.dli_fname && strstr(info.dli_fname, ".so")) {
            size_t l = strlen(out);
            snprintf(out + l, n - l, "%s:", info.dli_fname);
        }
    }
#else
    (void)n;
#endif
}

/* the flavour the probe runs under (SOFTKVM_VENDOR) */
static const char *probe_vendor = "amd";

/* Run the probe; returns its stdout (malloc'd) and exit status. */
static char *run_probe(bool preload, const char *arg, int *status)
{
    char probe[PATH_MAX + 32], lib[PATH_MAX + 32], env[3 * PATH_MAX + 128];
    snprintf(probe, sizeof probe, "%s/abi/softkvm-abi-probe", build_dir);
    snprintf(lib, sizeof lib, "%s/abi/libsoftkvm-preload.so", build_dir);
    ck_assert_msg(access(probe, X_OK) == 0, "missing %s", probe);
    ck_assert_msg(access(lib, R_OK) == 0, "missing %s", lib);
    char rt[2 * PATH_MAX];
    sanitizer_runtimes(rt, sizeof rt);
    int envlen = snprintf(env, sizeof env, "LD_PRELOAD=%s%s", rt, lib);
    ck_assert_msg(envlen > 0 && (size_t)envlen < sizeof env, "LD_PRELOAD too long");
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        char *argv[] = {probe, (char *)arg, NULL};
        /* The recorded transcript is real KVM on an AMD host: softkvm's AMD flavour is
         * what it is compared with, whatever CPU runs the test. */
        const char *hc = getenv("SOFTKVM_HOST_CPUID");
        char hcenv[64];
        snprintf(hcenv, sizeof hcenv, "SOFTKVM_HOST_CPUID=%s", hc ? hc : "");
        char venv[64];
        snprintf(venv, sizeof venv, "SOFTKVM_VENDOR=%s", probe_vendor);
        char *envp[] = {preload ? env : NULL, "ASAN_OPTIONS=detect_leaks=0", venv,
                        hc ? hcenv : NULL, NULL};
        if (!preload) {
            envp[0] = "ASAN_OPTIONS=detect_leaks=0";
            envp[1] = NULL;
        }
        execve(probe, argv, envp);
        _exit(127);
    }
    close(pfd[1]);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(pfd[0], buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = 0;
    close(pfd[0]);
    waitpid(pid, status, 0);
    return buf;
}

static char *read_expected(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", __FILE__);
    *strrchr(path, '/') = 0;
    strncat(path, "/probe/expected-realkvm.txt", sizeof path - strlen(path) - 1);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "missing %s", path);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static bool host_is_amd(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    bool amd = false;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "vendor_id", 9) == 0) {
            amd = strstr(line, "AuthenticAMD") != NULL;
            break;
        }
    if (f)
        fclose(f);
    return amd;
}

/* Drop the "whoami:" line so transcripts can be compared. */
static const char *skip_whoami(const char *s)
{
    if (strncmp(s, "whoami: ", 8) == 0) {
        const char *nl = strchr(s, '\n');
        return nl ? nl + 1 : s;
    }
    return s;
}

START_TEST(preload_serves_dev_kvm)
{
    find_build_dir();
    int st;
    char *out = run_probe(true, "--whoami", &st);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "probe failed: %s", out);
    /* The fd came from softkvm (a memfd), not from the machine's /dev/kvm. */
    ck_assert_msg(strncmp(out, "whoami: /memfd:kvm", 18) == 0, "not served by softkvm: %.80s", out);
    free(out);
}
END_TEST

START_TEST(transcript_matches_real_kvm)
{
    find_build_dir();
    int st;
    char *soft = run_probe(true, NULL, &st);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "probe under softkvm failed");
    char *expected = read_expected();
    /* line-by-line, to name the first difference */
    const char *a = skip_whoami(expected), *b = soft;
    int line = 1;
    while (*a || *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        ck_assert_msg(la == lb && memcmp(a, b, la) == 0, "line %d: real KVM '%.*s' softkvm '%.*s'",
                      line, (int)la, a, (int)lb, b);
        a += la + (ea ? 1 : 0);
        b += lb + (eb ? 1 : 0);
        line++;
    }
    /* and against the live real KVM when there is one of the same vendor (an Intel host's
     * KVM answers differently, e.g. PVM on Intel drops entries at KVM_SET_CPUID2) */
    if (access("/dev/kvm", R_OK | W_OK) == 0 && host_is_amd()) {
        char *real = run_probe(false, NULL, &st);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            ck_assert_str_eq(real, soft);
        free(real);
    }
    free(expected);
    free(soft);
}
END_TEST

/* The shim exports the libc functions it wraps and nothing of softkvm's own: a program
 * with a function of the same name (QEMU's pic_read_irq) must not capture our calls. */
/* The names in the preload library's dynamic symbol table that `nm -D` lists with `which`
 * (--defined-only / --undefined-only), version suffixes dropped; read with nm because
 * dlopen would run the shim's constructor here. Returns how many. */
static unsigned preload_symbols(const char *which, void (*each)(const char *name, void *ctx),
                                void *ctx)
{
    find_build_dir();
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "nm -D %s %s/abi/libsoftkvm-preload.so", which, build_dir);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    unsigned n = 0;
    while (fgets(line, sizeof line, f)) {
        char *name = strrchr(line, ' ');
        name = name ? name + 1 : line;
        name[strcspn(name, "@\n")] = 0;
        n++;
        each(name, ctx);
    }
    ck_assert_int_eq(pclose(f), 0);
    return n;
}

static void not_internal(const char *name, void *ctx)
{
    static const char *const internal[] = {"pic_read_irq", "abi_ioctl", "emu_run",
                                           "msr_vcpu_create", "decoder_decode", "lapic_irq_ack"};
    *(bool *)ctx |= strcmp(name, "ioctl") == 0;
    for (size_t i = 0; i < sizeof internal / sizeof internal[0]; i++)
        ck_assert_msg(strcmp(name, internal[i]) != 0, "%s is exported", name);
    ck_assert_msg(strncmp(name, "abi_", 4) && strncmp(name, "emu_", 4) &&
                      strncmp(name, "msr_", 4) && strncmp(name, "simd_", 5),
                  "%s is exported", name);
}

START_TEST(preload_exports_only_wrappers)
{
    bool ioctl_seen = false;
    unsigned n = preload_symbols("--defined-only", not_internal, &ioctl_seen);
    ck_assert(ioctl_seen);
    ck_assert_uint_lt(n, 64); /* the wrappers, not hundreds of internal functions */
}
END_TEST

static void not_string_function(const char *name, void *ctx)
{
    (void)ctx;
    static const char *const own[] = {"memcpy", "memmove", "memset", "memcmp"};
    for (size_t i = 0; i < 4; i++)
        ck_assert_msg(strcmp(name, own[i]) != 0, "the library imports %s", name);
}

/* The library's memcpy/memmove/memset/memcmp are its own (abi/preload/string.c): a program
 * defining them (the KVM selftests' byte loops) must not get softkvm's calls. */
START_TEST(preload_imports_no_string_functions)
{
    /* it does import libc (open, ioctl, pthread_...) */
    ck_assert_uint_gt(preload_symbols("--undefined-only", not_string_function, NULL), 10);
}
END_TEST

/* A slot with a bad host mapping ends KVM_RUN with EFAULT (6.12 mmu.c
 * kvm_handle_error_pfn), never a crash; a fault of the program's own still reaches its
 * SIGSEGV handler through the shim. */
START_TEST(bad_host_mapping_is_efault)
{
    find_build_dir();
    int st;
    char *out = run_probe(true, "--hostfault", &st);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "probe died: status %#x: %s", st, out);
    const char *want =
        "hostfault: region                  r=0 errno=0\n"
        "hostfault: address_0\n"
        "hostfault: run                     r=-1 errno=14\n"
        "hostfault: region                  r=0 errno=0\n"
        "hostfault: prot_none\n"
        "hostfault: run                     r=-1 errno=14\n"
        "hostfault: region                  r=0 errno=0\n"
        "hostfault: readonly_write\n"
        "hostfault: run                     r=-1 errno=14\n"
        "own SIGSEGV handler ran\n";
    ck_assert_str_eq(out, want);
    free(out);
}
END_TEST

/* Under the shim the CPUID instruction shows the host vendor's virtualization bit
 * (kvmtool checks it before opening /dev/kvm), in later threads too, through CPUID
 * faulting; where the host kernel cannot fault CPUID (ENODEV) the shim leaves it alone,
 * and SOFTKVM_HOST_CPUID=plain turns it off. */
START_TEST(host_cpuid_shows_virtualization)
{
    find_build_dir();
    int st;
    char *plain = run_probe(false, "--cpuid", &st);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "probe failed: %s", plain);
    char *out = run_probe(true, "--cpuid", &st);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "probe failed: %s", out);
    if (strstr(plain, "host_can_fault=1")) {
        ck_assert_msg(strstr(out, "faulting=1 virt=1 thread_virt=1") != NULL, "shim: %s", out);
    } else {
        /* the host cannot: the plain run says why (ENODEV), and the shim changed nothing */
        ck_assert_msg(strstr(plain, "host_can_fault=0 errno=19") != NULL, "plain: %s", plain);
        ck_assert_msg(strstr(out, "faulting=0") != NULL, "shim: %s", out);
    }
    /* the flavour's vendor, whichever the host's is */
    if (strstr(plain, "host_can_fault=1")) {
        for (int i = 0; i < 2; i++) {
            probe_vendor = i ? "intel" : "amd";
            char *fl = run_probe(true, "--cpuid", &st);
            char want[64];
            snprintf(want, sizeof want, "vendor=%s faulting=1 virt=1 thread_virt=1", probe_vendor);
            ck_assert_msg(strstr(fl, want) != NULL, "SOFTKVM_VENDOR=%s: %s", probe_vendor, fl);
            free(fl);
        }
        probe_vendor = "amd";
    }
    setenv("SOFTKVM_HOST_CPUID", "plain", 1);
    char *off = run_probe(true, "--cpuid", &st);
    unsetenv("SOFTKVM_HOST_CPUID");
    ck_assert_msg(strstr(off, "faulting=0") != NULL, "SOFTKVM_HOST_CPUID=plain: %s", off);
    free(plain);
    free(out);
    free(off);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("abi_transport");
    TCase *tc = tcase_create("preload");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, preload_serves_dev_kvm);
    tcase_add_test(tc, transcript_matches_real_kvm);
    tcase_add_test(tc, bad_host_mapping_is_efault);
    tcase_add_test(tc, preload_exports_only_wrappers);
    tcase_add_test(tc, preload_imports_no_string_functions);
    tcase_add_test(tc, host_cpuid_shows_virtualization);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
