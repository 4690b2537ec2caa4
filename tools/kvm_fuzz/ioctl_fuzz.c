/* kvm-fuzz: the ioctl fuzzer.
 *
 * The run is a series of episodes. Each opens /dev/kvm, creates a VM (sometimes with an
 * in-kernel irqchip), one or two vCPUs and a memory slot in the guard-paged pool, then
 * makes 20-120 random calls: an ioctl of the table on (mostly) its own fd kind, with an
 * argument from its shape behind a pointer that is valid, NULL, unmapped, PROT_NONE,
 * read-only, a kernel address, or straddles the end of a mapping inside the argument.
 * New fds (VMs, vCPUs) join the pools; stats/guest_memfd fds are closed again. KVM_RUN
 * gets a timer (SIGALRM, EINTR) so a guest that never exits cannot hang the run.
 * The episode then closes everything, so a difference between backends does not spill
 * over into later episodes. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "tools/kvm_fuzz/ioctl_fuzz.h"

#define R (&f->rng)

struct fz_totals {
    uint64_t calls, ok, err;
    uint64_t by_errno[600];
};

static const struct fz_opts *opts;
static struct fz_totals tot;
static uint64_t call_index;

static void setup_memory(struct fz_state *f)
{
    f->arena = fz_map_guarded(ARENA_PAGES, 1, "ioctl argument arena");
    f->arena2 = fz_map_guarded(ARENA_PAGES, 1, "ioctl nested-pointer arena");
    f->ro = fz_map_guarded(16, 1, "read-only argument page");
    f->protnone = fz_map_guarded(1, 1, "PROT_NONE argument page");
    mprotect(f->protnone, 4096, PROT_NONE);
    f->gpool = fz_map_guarded(GPOOL_PAGES, 4, "memory-slot pool");
    mprotect(f->gpool + GPOOL_HOLE * 4096, 8 * 4096, PROT_NONE);
    f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    f->efd2 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    f->nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    /* "unmapped" slot address: make sure nothing lives there */
    void *probe = mmap((void *)0x6f0000000000ull, 4096, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (probe != MAP_FAILED)
        munmap(probe, 4096);
}

/* The result as the transcript shows it; the first word is what --diff compares. */
static void result_text(char *out, size_t n, long r, const struct fz_ioctl *io,
                        struct fz_vcpu *vc)
{
    if (r < 0) {
        snprintf(out, n, "%s", fz_errname(r));
        return;
    }
    if (io->req == KVM_RUN && vc && vc->run)
        snprintf(out, n, "ok exit=%u", vc->run->exit_reason);
    else if (io->req == KVM_CREATE_VM || io->req == KVM_CREATE_VCPU ||
             io->req == KVM_GET_STATS_FD || io->req == FZ_CREATE_GUEST_MEMFD)
        snprintf(out, n, "ok fd");
    else
        snprintf(out, n, "ok =%ld", r);
}

static void record(long r, const char *kind, const char *name, const char *args, const char *res)
{
    tot.calls++;
    if (r < 0) {
        tot.err++;
        if (-r < 600)
            tot.by_errno[-r]++;
    } else {
        tot.ok++;
    }
    if (!opts->quiet)
        printf("S=%llu #%llu %s %s%s -> %s\n", (unsigned long long)opts->seed,
               (unsigned long long)call_index, kind, name, args, res);
    call_index++;
}

static const char *kind_name[] = {"sys", "vm", "vcpu"};

/* A call made by the episode's setup (also transcribed). */
static long setup_call(struct fz_state *f, const char *kind, int fd, const char *name,
                       unsigned long req, unsigned long arg)
{
    fz_set_context("seed %llu call #%llu %s %s (setup)", (unsigned long long)opts->seed,
                   (unsigned long long)call_index, kind, name);
    long r = fz_ioctl(fd, req, arg);
    (void)f;
    char res[64];
    snprintf(res, sizeof res, "%s", r < 0 ? fz_errname(r) : "ok");
    record(r, kind, name, " (setup)", res);
    return r;
}

static void add_vcpu(struct fz_state *f, int fd)
{
    for (int i = 0; i < POOL_VCPU; i++)
        if (f->vcpu[i].fd < 0) {
            f->vcpu[i].fd = fd;
            f->vcpu[i].run = NULL;
            if (f->mmap_size > 0) {
                void *m = mmap(NULL, (size_t)f->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                               fd, 0);
                f->vcpu[i].run = m == MAP_FAILED ? NULL : m;
            }
            return;
        }
    fz_close(fd);
}

static void add_fd(int *pool, int n, int fd)
{
    for (int i = 0; i < n; i++)
        if (pool[i] < 0) {
            pool[i] = fd;
            return;
        }
    fz_close(fd);
}

static void close_all(struct fz_state *f)
{
    for (int i = 0; i < POOL_VCPU; i++) {
        if (f->vcpu[i].run)
            munmap(f->vcpu[i].run, (size_t)f->mmap_size);
        fz_close(f->vcpu[i].fd);
        f->vcpu[i] = (struct fz_vcpu){.fd = -1};
    }
    for (int i = 0; i < POOL_VM; i++) {
        fz_close(f->vm[i]);
        f->vm[i] = -1;
    }
    for (int i = 0; i < POOL_SYS; i++) {
        fz_close(f->sys[i]);
        f->sys[i] = -1;
    }
}

static void episode_setup(struct fz_state *f)
{
    int sys = fz_open_kvm();
    record(sys, "sys", "open(/dev/kvm)", " (setup)", sys < 0 ? fz_errname(sys) : "ok");
    if (sys < 0)
        return;
    f->sys[0] = sys;
    f->mmap_size = setup_call(f, "sys", sys, "KVM_GET_VCPU_MMAP_SIZE", KVM_GET_VCPU_MMAP_SIZE, 0);
    long vm = setup_call(f, "sys", sys, "KVM_CREATE_VM", KVM_CREATE_VM, 0);
    if (vm < 0)
        return;
    f->vm[0] = (int)vm;
    if (fz_chance(R, 50))
        setup_call(f, "vm", f->vm[0], "KVM_CREATE_IRQCHIP", KVM_CREATE_IRQCHIP, 0);
    /* slot 0 at gpa 0: the pool, or host memory that is not there (NULL, unmapped, the
     * pool's PROT_NONE hole), read-only sometimes; KVM_RUN from gpa 0 then touches it */
    static const char *const where[] = {"pool", "null", "unmapped", "hole", "pool-ro"};
    unsigned w = (unsigned)fz_below(R, 6);
    if (w < 5) {
        uint64_t ua[] = {(uintptr_t)f->gpool, 0, 0x6f0000000000ull,
                         (uintptr_t)f->gpool + GPOOL_HOLE * 4096, (uintptr_t)f->gpool};
        struct kvm_userspace_memory_region m = {.slot = 0, .guest_phys_addr = 0,
                                                .memory_size = 8 * 4096,
                                                .flags = w == 4 ? KVM_MEM_READONLY : 0,
                                                .userspace_addr = ua[w]};
        char nm[64];
        snprintf(nm, sizeof nm, "KVM_SET_USER_MEMORY_REGION(%s)", where[w]);
        setup_call(f, "vm", f->vm[0], nm, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&m);
    }
    if (fz_chance(R, 50)) /* random code in the part of the pool that exists */
        fz_fill(R, f->gpool, 8 * 4096);
    unsigned n = 1 + (unsigned)fz_below(R, 2);
    bool at0 = fz_chance(R, 60);
    for (unsigned i = 0; i < n; i++) {
        long fd = setup_call(f, "vm", f->vm[0], "KVM_CREATE_VCPU", KVM_CREATE_VCPU, i);
        if (fd < 0)
            continue;
        add_vcpu(f, (int)fd);
        if (!at0)
            continue;
        /* real mode at CS:IP 0:0 so KVM_RUN executes from slot 0 */
        struct kvm_sregs s;
        if (setup_call(f, "vcpu", (int)fd, "KVM_GET_SREGS", KVM_GET_SREGS, (uintptr_t)&s) < 0)
            continue;
        s.cs.base = 0;
        s.cs.selector = 0;
        setup_call(f, "vcpu", (int)fd, "KVM_SET_SREGS", KVM_SET_SREGS, (uintptr_t)&s);
        struct kvm_regs rg = {.rip = 0, .rflags = 2, .rsp = 0x7000};
        setup_call(f, "vcpu", (int)fd, "KVM_SET_REGS", KVM_SET_REGS, (uintptr_t)&rg);
    }
}

/* The fd for a call on kind k: a pool member, or -1 (EBADF) when the pool is empty. */
static int pick_fd(struct fz_state *f, enum fz_fdk k, struct fz_vcpu **vc)
{
    unsigned i;
    *vc = NULL;
    switch (k) {
    case K_SYS:
        i = (unsigned)fz_below(R, POOL_SYS);
        return f->sys[i] >= 0 ? f->sys[i] : f->sys[0];
    case K_VM:
        i = (unsigned)fz_below(R, POOL_VM);
        return f->vm[i] >= 0 ? f->vm[i] : f->vm[0];
    default:
        i = (unsigned)fz_below(R, POOL_VCPU);
        if (f->vcpu[i].fd < 0)
            i = 0;
        *vc = &f->vcpu[i];
        return f->vcpu[i].fd;
    }
}

/* The pointer argument: places the shaped bytes where the class says. */
static unsigned long pick_ptr(struct fz_state *f, const struct fz_ioctl *io)
{
    size_t cap = sizeof f->tmp;
    size_t len;
    memset(f->tmp, 0, 4096);
    if (io->shape)
        len = io->shape(f, f->tmp, cap);
    else {
        len = _IOC_SIZE(io->req);
        if (len == 0 || len > cap)
            len = 64;
        fz_fill(R, f->tmp, len);
    }
    unsigned c = (unsigned)fz_below(R, 100);
    size_t acap = ARENA_PAGES * 4096;
    if (c < 72) {
        memcpy(f->arena, f->tmp, len);
        fz_argf(f, " ptr=valid");
        return (uintptr_t)f->arena;
    }
    if (c < 78) {
        fz_argf(f, " ptr=null");
        return 0;
    }
    if (c < 83) {
        fz_argf(f, " ptr=unmapped");
        return 0x6f0000000000ull + fz_below(R, 4096);
    }
    if (c < 88) {
        fz_argf(f, " ptr=prot_none");
        return (uintptr_t)f->protnone;
    }
    if (c < 95 && len > 1) {
        size_t k = 1 + fz_below(R, len - 1);
        fz_argf(f, " ptr=straddle%zu/%zu", k, len);
        memcpy(f->arena + acap - k, f->tmp, k);
        return (uintptr_t)(f->arena + acap - k);
    }
    if (c < 98) {
        size_t n = len < 16 * 4096 ? len : 16 * 4096;
        mprotect(f->ro, 16 * 4096, PROT_READ | PROT_WRITE);
        memcpy(f->ro, f->tmp, n);
        mprotect(f->ro, 16 * 4096, PROT_READ);
        fz_argf(f, " ptr=ro");
        return (uintptr_t)f->ro;
    }
    fz_argf(f, " ptr=kernel");
    return 0xffff888000000000ull + fz_below(R, 4096);
}

static void one_call(struct fz_state *f)
{
    const struct fz_ioctl *io;
    unsigned long req;
    const char *name;
    char rname[40];
    f->args[0] = 0;
    if (fz_chance(R, 2)) { /* an ioctl number KVM does not know */
        static const struct fz_ioctl unknown = {"?", 0, F_SYS | F_VM | F_VCPU, A_INT, NULL, NULL};
        io = &unknown;
        req = _IOC(fz_below(R, 4), fz_chance(R, 80) ? KVMIO : fz_below(R, 256),
                   fz_below(R, 256), fz_below(R, 512));
        snprintf(rname, sizeof rname, "ioctl(%#lx)", req);
        name = rname;
    } else {
        io = &fz_ioctls[fz_below(R, fz_nioctls)];
        /* KVM_RUN and memory slots more often: they reach the guest-memory paths */
        if (fz_chance(R, 8)) {
            unsigned long want = fz_chance(R, 70) ? KVM_RUN : KVM_SET_USER_MEMORY_REGION;
            for (unsigned i = 0; i < fz_nioctls; i++)
                if (fz_ioctls[i].req == want)
                    io = &fz_ioctls[i];
        }
        req = io->req;
        name = io->name;
    }
    /* the fd kind: its own (mostly) or any other */
    enum fz_fdk k;
    unsigned own[K_NKINDS], nown = 0;
    for (unsigned i = 0; i < K_NKINDS; i++)
        if (io->kinds & (1u << i))
            own[nown++] = i;
    if (fz_chance(R, 88) && nown)
        k = (enum fz_fdk)own[fz_below(R, nown)];
    else
        k = (enum fz_fdk)fz_below(R, K_NKINDS);
    struct fz_vcpu *vc;
    int fd = pick_fd(f, k, &vc);

    unsigned long arg;
    if (io->argk == A_PTR) {
        arg = pick_ptr(f, io);
    } else if (io->intarg) {
        arg = io->intarg(f);
    } else {
        arg = fz_chance(R, 90) ? 0 : fz_interesting(R);
        if (arg)
            fz_argf(f, " arg=%#lx", arg);
    }
    bool is_run = req == KVM_RUN && k == K_VCPU;
    if (is_run && vc && vc->run) {
        vc->run->immediate_exit = fz_chance(R, 30);
        if (fz_chance(R, 10))
            vc->run->kvm_dirty_regs = (uint64_t)fz_below(R, 16);
        if (fz_chance(R, 10))
            vc->run->kvm_valid_regs = (uint64_t)fz_below(R, 16);
        fz_argf(f, " imm=%u", vc->run->immediate_exit);
    }
    fz_set_context("seed %llu call #%llu %s %s%s", (unsigned long long)opts->seed,
                   (unsigned long long)call_index, kind_name[k], name, f->args);
    if (is_run)
        fz_run_timer(2000);
    long r = fz_ioctl(fd, req, arg);
    if (is_run)
        fz_run_timer(0);
    if (is_run && vc && vc->run) {
        vc->run->immediate_exit = 0;
        vc->run->kvm_dirty_regs = 0;
        vc->run->kvm_valid_regs = 0;
    }
    char res[64];
    result_text(res, sizeof res, r, io, is_run ? vc : NULL);
    /* bookkeeping of new fds (results never feed the random stream) */
    if (r >= 0) {
        if (req == KVM_CREATE_VM && k == K_SYS)
            add_fd(f->vm, POOL_VM, (int)r);
        else if (req == KVM_CREATE_VCPU && k == K_VM)
            add_vcpu(f, (int)r);
        else if (req == KVM_GET_STATS_FD || req == FZ_CREATE_GUEST_MEMFD)
            fz_close((int)r);
        else if (req == KVM_CREATE_DEVICE && arg == (uintptr_t)f->arena) {
            struct kvm_create_device *d = (void *)f->arena;
            if (!(d->flags & KVM_CREATE_DEVICE_TEST))
                fz_close((int)d->fd);
        }
    }
    record(r, kind_name[k], name, f->args, res);
}

int fz_ioctl_main(const struct fz_opts *o)
{
    opts = o;
    static struct fz_state st;
    struct fz_state *f = &st;
    fz_rng_seed(&f->rng, o->seed);
    setup_memory(f);
    for (int i = 0; i < POOL_SYS; i++)
        f->sys[i] = -1;
    for (int i = 0; i < POOL_VM; i++)
        f->vm[i] = -1;
    for (int i = 0; i < POOL_VCPU; i++)
        f->vcpu[i] = (struct fz_vcpu){.fd = -1};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (tot.calls < o->count) {
        episode_setup(f);
        uint64_t n = 20 + fz_below(R, 100);
        for (uint64_t i = 0; i < n && tot.calls < o->count; i++)
            one_call(f);
        close_all(f);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fflush(stdout);
    fprintf(o->quiet ? stdout : stderr,
            "kvm-fuzz ioctl: seed %llu backend %s: %llu ioctls (%llu ok, %llu errors) in %.1f s, "
            "0 crashes, %lu guard touches\n",
            (unsigned long long)o->seed, fz_backend() == FZ_REAL ? "real" : "softkvm",
            (unsigned long long)tot.calls, (unsigned long long)tot.ok,
            (unsigned long long)tot.err, secs, fz_guard_touches);
    if (o->quiet) {
        printf("errnos:");
        for (int e = 1; e < 600; e++)
            if (tot.by_errno[e])
                printf(" %s=%llu", fz_errname(-e), (unsigned long long)tot.by_errno[e]);
        printf("\n");
    }
    return fz_guard_touches ? 1 : 0;
}
