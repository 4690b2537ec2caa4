/* kvm-fuzz: robustness and errno-parity fuzzer for softkvm's KVM ABI.
 *
 *   kvm-fuzz [--mode ioctl|guest|stress] [--seed S] [--count N] [--quiet] [--backend softkvm|real]
 *   kvm-fuzz --diff [--seed S] [--count N] [--quiet]
 *
 * ioctl: N random ioctls on system/VM/vCPU fds (ioctl_fuzz.c). guest: N guest iterations
 * of random instruction bytes under paging at CPL0/CPL3 (guest_fuzz.c). stress: 8 vCPU
 * threads while N filter/slot/signal/immediate_exit changes happen (stress.c). --diff: the ioctl
 * run on the host's /dev/kvm and on softkvm, errnos compared (diff.c). Exit status 0 when
 * nothing crashed and nothing was corrupted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/kvm_fuzz/fuzz.h"

static void usage(void)
{
    fprintf(stderr, "usage: kvm-fuzz [--mode ioctl|guest|stress] [--seed S] [--count N] [--quiet]\n"
                    "                [--backend softkvm|real] [--diff]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct fz_opts o = {.seed = 1, .count = 10000};
    const char *mode = "ioctl";
    enum fz_backend_kind backend = FZ_SOFTKVM;
    bool diff = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quiet"))
            o.quiet = true;
        else if (!strcmp(a, "--diff"))
            diff = true;
        else if (!strcmp(a, "--mode") && v)
            mode = argv[++i];
        else if (!strcmp(a, "--seed") && v)
            o.seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--count") && v)
            o.count = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--backend") && v) {
            i++;
            if (!strcmp(v, "real"))
                backend = FZ_REAL;
            else if (!strcmp(v, "softkvm"))
                backend = FZ_SOFTKVM;
            else
                usage();
        } else
            usage();
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (diff)
        return fz_diff_main(&o, "/proc/self/exe");
    fz_backend_init(backend);
    fz_install_crash_handler();
    if (!strcmp(mode, "ioctl"))
        return fz_ioctl_main(&o);
    if (!strcmp(mode, "guest"))
        return fz_guest_main(&o);
    if (!strcmp(mode, "stress"))
        return fz_stress_main(&o);
    usage();
}
