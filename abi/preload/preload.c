/* libsoftkvm-preload.so: the LD_PRELOAD transport. It makes softkvm serve /dev/kvm
 * inside an unmodified, dynamically linked program (even when the machine has a real
 * /dev/kvm), and leaves everything else alone: every call on an fd or path that is
 * not ours goes straight to the next definition (dlsym(RTLD_NEXT)), i.e. libc.
 *
 * Wrapped: the open family (incl. the _FORTIFY_SOURCE __open_2 variants), ioctl,
 * close, dup/dup2/dup3, fcntl(F_DUPFD*), access/faccessat/stat family for /dev/kvm,
 * opens of /sys/module/kvm{,_intel,_amd}/parameters/ files, and sigaction/signal (so a
 * signal arriving during KVM_RUN makes it return EINTR like KVM); the CPUID instruction
 * through CPUID faulting (host_cpuid.c: VMMs that look for VMX/SVM); mmap (a vCPU fd is
 * a memfd of the vCPU mmap size, mapped natively, with the coalesced MMIO page put in);
 * read/write/pread/pwrite/fallocate, for guest_memfd files only.
 *
 * The process-wide state (the fd table and the user's signal handlers) is
 * necessarily global here: an LD_PRELOAD library has no other place to keep it. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "abi/abi.h"
#include "abi/preload/host_cpuid.h"

#define DEV_KVM "/dev/kvm"
#define KVM_MINOR 232
#define MISC_MAJOR 10

struct real_fns {
    int (*open)(const char *, int, ...);
    int (*openat)(int, const char *, int, ...);
    int (*close)(int);
    int (*ioctl)(int, unsigned long, ...);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*access)(const char *, int);
    int (*faccessat)(int, const char *, int, int);
    int (*stat)(const char *, struct stat *);
    int (*lstat)(const char *, struct stat *);
    int (*fstatat)(int, const char *, struct stat *, int);
    int (*sigaction)(int, const struct sigaction *, struct sigaction *);
    int (*pthread_cancel)(pthread_t);
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*pread)(int, void *, size_t, off_t);
    ssize_t (*pwrite)(int, const void *, size_t, off_t);
    int (*fallocate)(int, int, off_t, off_t);
};

static struct real_fns real;
static struct abi_process *proc;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
/* user handlers for signals whose delivery we observe (index = signal number) */
static struct sigaction user_act[NSIG];
/* Threads currently inside an abi ioctl (cancellation disabled), and whether
 * pthread_cancel was called on them meanwhile: we then carry the cancel out. */
#define MAX_IN_IOCTL 256
struct in_ioctl {
    pthread_t t;
    bool cancel;
};
static struct in_ioctl in_ioctl[MAX_IN_IOCTL];
static unsigned nin_ioctl;
static pthread_mutex_t cancel_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;

static bool is_fault_signal(int sig);
static void install_fault_handler(int sig, int user_flags);

static void init(void)
{
    real.open = dlsym(RTLD_NEXT, "open");
    real.openat = dlsym(RTLD_NEXT, "openat");
    real.close = dlsym(RTLD_NEXT, "close");
    real.ioctl = dlsym(RTLD_NEXT, "ioctl");
    real.dup = dlsym(RTLD_NEXT, "dup");
    real.dup2 = dlsym(RTLD_NEXT, "dup2");
    real.dup3 = dlsym(RTLD_NEXT, "dup3");
    real.fcntl = dlsym(RTLD_NEXT, "fcntl");
    real.access = dlsym(RTLD_NEXT, "access");
    real.faccessat = dlsym(RTLD_NEXT, "faccessat");
    real.stat = dlsym(RTLD_NEXT, "stat");
    real.lstat = dlsym(RTLD_NEXT, "lstat");
    real.fstatat = dlsym(RTLD_NEXT, "fstatat");
    real.sigaction = dlsym(RTLD_NEXT, "sigaction");
    real.pthread_cancel = dlsym(RTLD_NEXT, "pthread_cancel");
    real.mmap = dlsym(RTLD_NEXT, "mmap");
    real.read = dlsym(RTLD_NEXT, "read");
    real.write = dlsym(RTLD_NEXT, "write");
    real.pread = dlsym(RTLD_NEXT, "pread64");
    real.pwrite = dlsym(RTLD_NEXT, "pwrite64");
    real.fallocate = dlsym(RTLD_NEXT, "fallocate64");
    proc = abi_process_create();
    /* the program's present SIGSEGV/SIGBUS dispositions become the ones we chain to */
    for (int sig = 1; sig < NSIG; sig++)
        if (is_fault_signal(sig) && real.sigaction(sig, NULL, &user_act[sig]) == 0)
            install_fault_handler(sig, user_act[sig].sa_flags);
}

static void ensure_init(void)
{
    pthread_once(&init_once, init);
}

__attribute__((constructor)) static void preload_ctor(void)
{
    ensure_init();
    /* Here, not in init(): init may run from a wrapper called before libc has set up
     * the environment (the sanitizer runtimes open files that early), and this reads it.
     * After init(): the SIGSEGV handler must be in place before CPUID traps. */
    host_cpuid_init();
}

static int fail(long r)
{
    errno = (int)-r;
    return -1;
}

/* ---------------- paths we serve ---------------- */

static bool is_dev_kvm(const char *path)
{
    return path && strcmp(path, DEV_KVM) == 0;
}

/* "/sys/module/<module>/parameters/<param>" for the kvm modules: returns 1 and sets
 * module/param if it is such a path, else 0. */
static int kvm_param_path(const char *path, char *module, size_t msz, const char **param)
{
    static const char pfx[] = "/sys/module/";
    if (!path || strncmp(path, pfx, sizeof pfx - 1) != 0)
        return 0;
    const char *m = path + sizeof pfx - 1;
    const char *slash = strchr(m, '/');
    size_t mlen = slash ? (size_t)(slash - m) : strlen(m);
    if (mlen >= msz)
        return 0;
    memcpy(module, m, mlen);
    module[mlen] = 0;
    if (strcmp(module, "kvm") && strcmp(module, "kvm_intel") && strcmp(module, "kvm_amd"))
        return 0;
    static const char mid[] = "/parameters/";
    if (!slash || strncmp(slash, mid, sizeof mid - 1) != 0) {
        *param = NULL;
        return 1;
    }
    *param = slash + sizeof mid - 1;
    return 1;
}

static int open_param(const char *module, const char *param, int flags)
{
    const char *text = param ? abi_module_param(module, param) : NULL;
    if (!text) {
        errno = ENOENT;
        return -1;
    }
    if ((flags & O_ACCMODE) != O_RDONLY) {
        errno = EACCES; /* parameters are exposed read-only here */
        return -1;
    }
    int fd = memfd_create("kvm-param", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) != 0) {
        real.close(fd);
        errno = EIO;
        return -1;
    }
    return fd;
}

/* Returns -2 when the path is not ours (caller goes to libc). */
static int open_ours(const char *path, int flags)
{
    ensure_init();
    if (is_dev_kvm(path)) {
        int r = abi_open_dev_kvm(proc, flags);
        return r < 0 ? fail(r) : r;
    }
    char module[32];
    const char *param;
    if (kvm_param_path(path, module, sizeof module, &param) && abi_module_exists(module) &&
        param)
        return open_param(module, param, flags);
    return -2;
}

/* ---------------- open family ---------------- */

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | __O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int r = open_ours(path, flags);
    return r != -2 ? r : real.open(path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    const char *pth = path; /* glibc declares path nonnull; a NULL still goes to libc */
    int r = (pth && pth[0] == '/') ? open_ours(pth, flags) : -2;
    if (r == -2) {
        ensure_init();
        return real.openat(dirfd, path, flags, mode);
    }
    return r;
}

int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int __open_2(const char *path, int flags)
{
    return open(path, flags);
}
int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

int __openat_2(int dirfd, const char *path, int flags)
{
    return openat(dirfd, path, flags);
}
int __openat64_2(int dirfd, const char *path, int flags) __attribute__((alias("__openat_2")));

/* ---------------- fd operations ---------------- */

static void enter_ioctl(void)
{
    pthread_mutex_lock(&cancel_lock);
    if (nin_ioctl < MAX_IN_IOCTL)
        in_ioctl[nin_ioctl++] = (struct in_ioctl){pthread_self(), false};
    pthread_mutex_unlock(&cancel_lock);
}

/* Leave the ioctl and restore the cancellation state. glibc (2.36) drops an
 * asynchronous cancel that arrives while cancellation is disabled, and re-enabling
 * with a cancel pending unwinds the thread with a NULL result; so a thread cancelled
 * during one of our ioctls is cancelled here, as Linux would at the return to user
 * space: asynchronous type -> pthread_exit(PTHREAD_CANCELED) now; deferred -> glibc's
 * pending cancel acts at the next cancellation point. cancel_lock makes this atomic
 * with respect to pthread_cancel(). */
static void leave_ioctl(int oldstate)
{
    bool cancel = false;
    pthread_mutex_lock(&cancel_lock);
    for (unsigned i = 0; i < nin_ioctl; i++)
        if (pthread_equal(in_ioctl[i].t, pthread_self())) {
            cancel = in_ioctl[i].cancel;
            in_ioctl[i] = in_ioctl[--nin_ioctl];
            break;
        }
    int type = PTHREAD_CANCEL_DEFERRED;
    if (cancel && oldstate == PTHREAD_CANCEL_ENABLE) {
        /* reading the type while disabled never acts on the pending cancel */
        pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &type);
        pthread_setcanceltype(type, NULL);
    }
    if (type != PTHREAD_CANCEL_ASYNCHRONOUS || !cancel || oldstate != PTHREAD_CANCEL_ENABLE)
        pthread_setcancelstate(oldstate, NULL);
    pthread_mutex_unlock(&cancel_lock);
    if (cancel && oldstate == PTHREAD_CANCEL_ENABLE && type == PTHREAD_CANCEL_ASYNCHRONOUS)
        pthread_exit(PTHREAD_CANCELED);
}

int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    ensure_init();
    if (!abi_owns_fd(proc, fd))
        return real.ioctl(fd, request, arg);
    /* Linux KVM code runs in the kernel, where an (asynchronous) thread cancellation
     * cannot strike; ours runs in user space with locks held, so cancellation waits
     * until the ioctl returns (then acts at once if it is asynchronous and pending). */
    int oldstate;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &oldstate);
    enter_ioctl();
    long r = abi_ioctl(proc, fd, request, arg);
    int e = r < 0 ? (int)-r : 0;
    leave_ioctl(oldstate);
    if (r < 0) {
        errno = e;
        return -1;
    }
    return (int)r;
}

int close(int fd)
{
    ensure_init();
    bool ours = abi_owns_fd(proc, fd);
    int r = real.close(fd);
    if (ours && (r == 0 || errno == EINTR)) /* Linux frees the fd even on EINTR */
        abi_fd_closed(proc, fd);
    return r;
}

static int note_dup(int oldfd, int newfd)
{
    if (newfd >= 0) {
        /* dup2/dup3 onto one of our fds closes it first */
        abi_fd_closed(proc, newfd);
        if (abi_owns_fd(proc, oldfd))
            abi_fd_duped(proc, oldfd, newfd);
    }
    return newfd;
}

int dup(int fd)
{
    ensure_init();
    return note_dup(fd, real.dup(fd));
}

int dup2(int oldfd, int newfd)
{
    ensure_init();
    if (oldfd == newfd)
        return real.dup2(oldfd, newfd);
    return note_dup(oldfd, real.dup2(oldfd, newfd));
}

int dup3(int oldfd, int newfd, int flags)
{
    ensure_init();
    return note_dup(oldfd, real.dup3(oldfd, newfd, flags));
}

int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    ensure_init();
    int r = real.fcntl(fd, cmd, arg);
    if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && r >= 0 && abi_owns_fd(proc, fd))
        abi_fd_duped(proc, fd, r);
    return r;
}
int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

/* A vCPU fd is a memfd, so mmap works natively, except that the coalesced MMIO page
 * (page 2) must be the VM's shared ring: map that page over from the ring memfd. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (!real.mmap) /* before our constructor (e.g. from the dynamic loader): no KVM fds yet */
        return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    int g = fd >= 0 ? abi_gmem_file_op(proc, fd, ABI_GMEM_MMAP) : 0;
    if (g) { /* guest_memfd: no mmap in 6.12 */
        errno = -g;
        return MAP_FAILED;
    }
    void *p = real.mmap(addr, len, prot, flags, fd, off);
    if (p == MAP_FAILED || fd < 0 || !abi_owns_fd(proc, fd))
        return p;
    int ring = abi_vcpu_ring_fd(proc, fd);
    long pg = sysconf(_SC_PAGESIZE);
    off_t ring_off = (off_t)ABI_COALESCED_MMIO_PAGE_OFFSET * pg;
    if (ring >= 0 && off <= ring_off && (off_t)(off + len) > ring_off &&
        real.mmap((char *)p + (ring_off - off), (size_t)pg, prot, (flags & ~MAP_PRIVATE) | MAP_SHARED | MAP_FIXED,
                  ring, 0) == MAP_FAILED) {
        munmap(p, len);
        return MAP_FAILED;
    }
    return p;
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));

/* ---------------- guest_memfd file operations (abi/gmem.c) ---------------- */

/* A guest_memfd is a memfd here, which could be read, written and fallocated freely;
 * KVM's has no read/write (EINVAL) and its own fallocate rules. Before our constructor
 * (the dynamic loader reads libraries) the raw syscalls serve. */
static int gmem_rw(int fd)
{
    return proc && fd >= 0 ? abi_gmem_file_op(proc, fd, ABI_GMEM_RW) : 0;
}

ssize_t read(int fd, void *buf, size_t n)
{
    int g = gmem_rw(fd);
    if (g)
        return fail(g);
    return real.read ? real.read(fd, buf, n) : syscall(SYS_read, fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    int g = gmem_rw(fd);
    if (g)
        return fail(g);
    return real.write ? real.write(fd, buf, n) : syscall(SYS_write, fd, buf, n);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    int g = gmem_rw(fd);
    if (g)
        return fail(g);
    return real.pread ? real.pread(fd, buf, n, off) : syscall(SYS_pread64, fd, buf, n, off);
}
ssize_t pread64(int fd, void *buf, size_t n, off_t off) __attribute__((alias("pread")));

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    int g = gmem_rw(fd);
    if (g)
        return fail(g);
    return real.pwrite ? real.pwrite(fd, buf, n, off) : syscall(SYS_pwrite64, fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite")));

int fallocate(int fd, int mode, off_t off, off_t len)
{
    ensure_init();
    bool ours = false;
    long r = fd >= 0 ? abi_gmem_fallocate(proc, fd, mode, off, len, &ours) : 0;
    if (ours)
        return r ? fail(r) : 0;
    return real.fallocate(fd, mode, off, len);
}
int fallocate64(int fd, int mode, off_t off, off_t len) __attribute__((alias("fallocate")));

/* ---------------- /dev/kvm existence checks ---------------- */

static void fake_dev_stat(struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_mode = S_IFCHR | 0666;
    st->st_rdev = makedev(MISC_MAJOR, KVM_MINOR);
    st->st_nlink = 1;
    st->st_blksize = 4096;
}

int access(const char *path, int mode)
{
    ensure_init();
    if (is_dev_kvm(path))
        return (mode & X_OK) ? (errno = EACCES, -1) : 0;
    return real.access(path, mode);
}

int faccessat(int dirfd, const char *path, int mode, int flags)
{
    ensure_init();
    if (is_dev_kvm(path))
        return (mode & X_OK) ? (errno = EACCES, -1) : 0;
    return real.faccessat(dirfd, path, mode, flags);
}

int stat(const char *path, struct stat *st)
{
    ensure_init();
    if (is_dev_kvm(path)) {
        fake_dev_stat(st);
        return 0;
    }
    return real.stat(path, st);
}
/* x86-64: struct stat64 and struct stat have the same layout */
_Static_assert(sizeof(struct stat64) == sizeof(struct stat), "stat64 layout");
int stat64(const char *path, struct stat64 *st)
{
    return stat(path, (struct stat *)st);
}

int lstat(const char *path, struct stat *st)
{
    ensure_init();
    if (is_dev_kvm(path)) {
        fake_dev_stat(st);
        return 0;
    }
    return real.lstat(path, st);
}
int lstat64(const char *path, struct stat64 *st)
{
    return lstat(path, (struct stat *)st);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    ensure_init();
    if (is_dev_kvm(path)) {
        fake_dev_stat(st);
        return 0;
    }
    return real.fstatat(dirfd, path, st, flags);
}
int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
    return fstatat(dirfd, path, (struct stat *)st, flags);
}

/* ---------------- signals ---------------- */

/* glibc cancels with an internal signal we never see: tell abi first, so a target
 * thread inside KVM_RUN returns (EINTR) and the cancellation can take effect. */
int pthread_cancel(pthread_t t)
{
    ensure_init();
    pthread_mutex_lock(&cancel_lock);
    bool in_ours = false;
    for (unsigned i = 0; i < nin_ioctl; i++)
        if (pthread_equal(in_ioctl[i].t, t))
            in_ioctl[i].cancel = in_ours = true;
    int r = real.pthread_cancel(t);
    pthread_mutex_unlock(&cancel_lock);
    if (in_ours)
        abi_thread_interrupt(proc, (unsigned long)t);
    return r;
}

/* Runs first for every caught signal: tell abi (KVM_RUN must return EINTR), then
 * call the program's own handler exactly as the kernel would have. */
static void trampoline(int sig, siginfo_t *info, void *uctx)
{
    abi_signal_arrived();
    struct sigaction a = user_act[sig];
    if (a.sa_flags & SA_SIGINFO) {
        if (a.sa_sigaction)
            a.sa_sigaction(sig, info, uctx);
    } else if (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN) {
        a.sa_handler(sig);
    }
}

/* SIGSEGV/SIGBUS: a memory slot whose host mapping is missing or protected must end
 * KVM_RUN with EFAULT (KVM: hva_to_pfn fails), not kill the process. Anything else is
 * the program's own fault: its handler runs, or the default action once we step aside. */
static void fault_handler(int sig, siginfo_t *info, void *uctx)
{
    if (sig == SIGSEGV && host_cpuid_emulate(info, uctx))
        return;
    abi_host_fault(info->si_addr); /* returns only when the fault is not a guest access */
    struct sigaction a = user_act[sig];
    if (a.sa_flags & SA_SIGINFO) {
        if (a.sa_sigaction) {
            a.sa_sigaction(sig, info, uctx);
            return;
        }
    } else if (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN) {
        a.sa_handler(sig);
        return;
    }
    bool sent = info->si_code <= 0; /* kill/tgkill/sigqueue, not a fault of an instruction */
    if (sent && a.sa_handler == SIG_IGN)
        return;
    /* default action (also for an ignored fault, as the kernel's force_sig_fault does):
     * step aside; a faulting instruction runs again, a sent signal is raised again */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    real.sigaction(sig, &dfl, NULL);
    if (sent)
        raise(sig);
}

static bool is_fault_signal(int sig) { return sig == SIGSEGV || sig == SIGBUS; }

static void install_fault_handler(int sig, int user_flags)
{
    struct sigaction a;
    memset(&a, 0, sizeof a);
    sigemptyset(&a.sa_mask);
    a.sa_sigaction = fault_handler;
    /* NODEFER: emu_host_fault jumps out of the handler, leaving the mask as it is */
    a.sa_flags = SA_SIGINFO | SA_NODEFER | (user_flags & SA_ONSTACK);
    real.sigaction(sig, &a, NULL);
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    ensure_init();
    if (sig <= 0 || sig >= NSIG)
        return real.sigaction(sig, act, old);
    pthread_mutex_lock(&sig_lock);
    struct sigaction prev_user = user_act[sig];
    if (is_fault_signal(sig)) {
        /* ours stays installed; the program's choice is recorded and honoured by it */
        if (old)
            *old = prev_user;
        if (act) {
            user_act[sig] = *act;
            install_fault_handler(sig, act->sa_flags);
        }
        pthread_mutex_unlock(&sig_lock);
        return 0;
    }
    struct sigaction kact;
    const struct sigaction *pass = act;
    if (act) {
        bool catching = (act->sa_flags & SA_SIGINFO) ||
                        (act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN);
        if (catching) {
            kact = *act;
            kact.sa_flags |= SA_SIGINFO;
            kact.sa_sigaction = trampoline;
            pass = &kact;
        }
    }
    int r = real.sigaction(sig, pass, old);
    if (r == 0) {
        if (old && old->sa_sigaction == trampoline) {
            /* report the program's handler, not ours */
            *old = prev_user;
        }
        if (act)
            user_act[sig] = *act;
    }
    pthread_mutex_unlock(&sig_lock);
    return r;
}

sighandler_t signal(int sig, sighandler_t handler)
{
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    sigemptyset(&act.sa_mask);
    act.sa_flags = SA_RESTART; /* glibc's BSD semantics for signal() */
    if (sigaction(sig, &act, &old) < 0)
        return SIG_ERR;
    return (old.sa_flags & SA_SIGINFO) ? (sighandler_t)(void *)old.sa_sigaction : old.sa_handler;
}
