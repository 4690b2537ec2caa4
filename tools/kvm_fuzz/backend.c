/* kvm-fuzz: the two backends and the signal handlers.
 *
 * FZ_SOFTKVM calls softkvm's library (abi/abi.h) in this process, exactly what the
 * LD_PRELOAD shim does for a program, so a softkvm bug crashes here and not in a child of
 * the shim. It never opens the host's /dev/kvm: abi_open_dev_kvm makes a memfd.
 * FZ_REAL opens /dev/kvm with libc; --diff runs it in a child exec'd without LD_PRELOAD.
 *
 * SIGSEGV/SIGBUS: a fault inside a memory slot's host mapping while a vCPU runs is the
 * guest's (abi_host_fault ends KVM_RUN with EFAULT and does not return). Anything else is
 * a host crash: we name the call under way and whether the address is a guard page, then
 * let the previous handler (ASan's, or the default) take the fault again for its report. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <unistd.h>

#include "abi/abi.h"
#include "tools/kvm_fuzz/fuzz.h"

static enum fz_backend_kind kind;
static struct abi_process *proc;
static char context[512];
static struct sigaction old_segv, old_bus;
unsigned long fz_guard_touches;

void fz_backend_init(enum fz_backend_kind k)
{
    kind = k;
    if (k == FZ_SOFTKVM && !proc) {
        proc = abi_process_create();
        if (!proc) {
            fprintf(stderr, "kvm-fuzz: abi_process_create failed\n");
            exit(2);
        }
    }
}

enum fz_backend_kind fz_backend(void) { return kind; }

int fz_open_kvm(void)
{
    if (kind == FZ_SOFTKVM)
        return abi_open_dev_kvm(proc, O_RDWR | O_CLOEXEC);
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

long fz_ioctl(int fd, unsigned long req, unsigned long arg)
{
    if (kind == FZ_SOFTKVM) {
        /* as the shim: fds softkvm does not own go to the kernel (EBADF/ENOTTY there) */
        if (!abi_owns_fd(proc, fd)) {
            long r = ioctl(fd, req, arg);
            return r < 0 ? -errno : r;
        }
        return abi_ioctl(proc, fd, req, arg);
    }
    long r = ioctl(fd, req, arg);
    return r < 0 ? -errno : r;
}

void fz_close(int fd)
{
    if (fd < 0)
        return;
    close(fd);
    if (kind == FZ_SOFTKVM)
        abi_fd_closed(proc, fd);
}

void fz_run_timer(unsigned usec)
{
    /* periodic: a tick that lands just before KVM_RUN starts is lost (on real KVM as
     * well, the handler runs first), the next one ends the run */
    struct timeval tv = {.tv_sec = usec / 1000000, .tv_usec = usec % 1000000};
    struct itimerval it = {.it_value = tv, .it_interval = tv};
    setitimer(ITIMER_REAL, &it, NULL);
}

void fz_set_context(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);
}

static void on_alarm(int sig)
{
    (void)sig;
    if (kind == FZ_SOFTKVM)
        abi_signal_arrived(); /* what the shim's signal wrapper does: KVM_RUN -> EINTR */
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (kind == FZ_SOFTKVM)
        abi_host_fault(si->si_addr); /* returns only if the fault is not a guest access */
    const char *g = fz_guard_label(si->si_addr);
    char msg[900];
    int n = snprintf(msg, sizeof msg, "kvm-fuzz: HOST CRASH: %s at %p%s%s during: %s\n",
                     sig == SIGSEGV ? "SIGSEGV" : "SIGBUS", si->si_addr,
                     g ? " = GUARD TOUCH of " : "", g ? g : "", context);
    if (g)
        fz_guard_touches++;
    if (n > 0)
        (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    /* the previous handler sees the same fault again when we return */
    sigaction(sig, sig == SIGSEGV ? &old_segv : &old_bus, NULL);
}

void fz_install_crash_handler(void)
{
    struct sigaction a;
    memset(&a, 0, sizeof a);
    a.sa_sigaction = on_fault;
    /* NODEFER: abi_host_fault leaves the handler by longjmp */
    a.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&a.sa_mask);
    sigaction(SIGSEGV, &a, &old_segv);
    sigaction(SIGBUS, &a, &old_bus);
    struct sigaction t;
    memset(&t, 0, sizeof t);
    t.sa_handler = on_alarm; /* no SA_RESTART: KVM_RUN must come back with EINTR */
    sigemptyset(&t.sa_mask);
    sigaction(SIGALRM, &t, NULL);
}
