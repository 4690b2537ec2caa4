/* kvm-fuzz --mode stress: 8 vCPU threads in KVM_RUN while the main thread keeps changing
 * what they depend on: KVM_X86_SET_MSR_FILTER (the guests' RDMSR/WRMSR are denied to user
 * space or not), memory slot 1 deleted and added back (the guests' loads and stores to it
 * become MMIO and back), signals to vCPU threads (KVM_RUN -> EINTR) and immediate_exit set
 * from outside. --count is the number of such changes. Fails on a crash, on a thread
 * that stops making progress (a hang is reported by the watchdog) or on an exit no guest
 * here can produce. Run it under the TSan build (-DSOFTKVM_TSAN=ON) for races.
 *
 * Guest (real mode, one code copy per vCPU so they do not share a decode-cache line):
 *   1: mov ecx,0xc0000100; rdmsr; wrmsr; mov ecx,0x10; rdmsr; inc word [ds:0]; out 0x80,al;
 *      jmp 1b          with DS = 0x1000 + vCPU, i.e. slot 1 (gpa 0x10000-0x18fff). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "abi/abi.h"
#include "tools/kvm_fuzz/fuzz.h"

#define NVCPU 8
#define SLOT1_GPA 0x10000u
#define SLOT1_SIZE 0x9000u

struct svcpu {
    int fd;
    struct kvm_run *run;
    pthread_t t;
    atomic_ulong runs, io, mmio, msr, intr;
    atomic_int bad; /* an exit or error no guest here produces */
};

static struct svcpu vc[NVCPU];
static atomic_bool stop;
static int vm_fd;

static void on_usr1(int sig)
{
    (void)sig;
    if (fz_backend() == FZ_SOFTKVM)
        abi_signal_arrived();
}

static void *vcpu_thread(void *arg)
{
    struct svcpu *c = arg;
    while (!atomic_load(&stop)) {
        long r = fz_ioctl(c->fd, KVM_RUN, 0);
        atomic_fetch_add(&c->runs, 1);
        if (r == -EINTR) {
            /* kvm_run is shared with other threads by design (KVM reads it with READ_ONCE) */
            __atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_RELAXED);
            atomic_fetch_add(&c->intr, 1);
            continue;
        }
        if (r < 0) {
            fprintf(stderr, "kvm-fuzz stress: vCPU KVM_RUN %s\n", fz_errname(r));
            atomic_store(&c->bad, 1);
            break;
        }
        switch (c->run->exit_reason) {
        case KVM_EXIT_IO:
            atomic_fetch_add(&c->io, 1);
            break;
        case KVM_EXIT_MMIO: /* slot 1 is away: reads return 0 */
            if (!c->run->mmio.is_write)
                memset(c->run->mmio.data, 0, sizeof c->run->mmio.data);
            atomic_fetch_add(&c->mmio, 1);
            break;
        case KVM_EXIT_X86_RDMSR:
            c->run->msr.error = 0;
            c->run->msr.data = 0;
            atomic_fetch_add(&c->msr, 1);
            break;
        case KVM_EXIT_X86_WRMSR:
            c->run->msr.error = 0;
            atomic_fetch_add(&c->msr, 1);
            break;
        case KVM_EXIT_INTR:
            atomic_fetch_add(&c->intr, 1);
            break;
        default:
            fprintf(stderr, "kvm-fuzz stress: unexpected exit %u\n", c->run->exit_reason);
            atomic_store(&c->bad, 1);
            atomic_store(&stop, true);
            return NULL;
        }
    }
    return NULL;
}

static void set_filter(struct fz_rng *r)
{
    static uint8_t deny_all[1], allow_all[1] = {0xff};
    struct kvm_msr_filter f;
    memset(&f, 0, sizeof f);
    f.flags = fz_chance(r, 30) ? KVM_MSR_FILTER_DEFAULT_DENY : KVM_MSR_FILTER_DEFAULT_ALLOW;
    unsigned n = (unsigned)fz_below(r, 3);
    for (unsigned i = 0; i < n; i++) {
        f.ranges[i].flags = (uint32_t)(1 + fz_below(r, 3)); /* READ, WRITE or both */
        f.ranges[i].base = i == 0 ? 0xc0000100u : 0x10;
        f.ranges[i].nmsrs = 1;
        f.ranges[i].bitmap = fz_chance(r, 50) ? deny_all : allow_all;
    }
    fz_ioctl(vm_fd, KVM_X86_SET_MSR_FILTER, (uintptr_t)&f);
}

int fz_stress_main(const struct fz_opts *o)
{
    struct fz_rng rng;
    fz_rng_seed(&rng, o->seed);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: KVM_RUN returns EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    int sys = fz_open_kvm();
    long msz = sys < 0 ? -1 : fz_ioctl(sys, KVM_GET_VCPU_MMAP_SIZE, 0);
    vm_fd = sys < 0 ? -1 : (int)fz_ioctl(sys, KVM_CREATE_VM, 0);
    if (vm_fd < 0 || msz <= 0) {
        fprintf(stderr, "kvm-fuzz stress: no VM\n");
        return 2;
    }
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
                                 .args = {KVM_MSR_EXIT_REASON_FILTER}};
    fz_ioctl(vm_fd, KVM_ENABLE_CAP, (uintptr_t)&cap);
    uint8_t *low = fz_map_guarded(16, 1, "stress slot 0");
    uint8_t *s1 = fz_map_guarded(SLOT1_SIZE / 4096, 1, "stress slot 1");
    struct kvm_userspace_memory_region m0 = {.slot = 0, .memory_size = 16 * 4096,
                                             .userspace_addr = (uintptr_t)low};
    struct kvm_userspace_memory_region m1 = {.slot = 1, .guest_phys_addr = SLOT1_GPA,
                                             .memory_size = SLOT1_SIZE,
                                             .userspace_addr = (uintptr_t)s1};
    fz_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&m0);
    fz_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&m1);
    static const uint8_t code[] = {
        0x66, 0xb9, 0x00, 0x01, 0x00, 0xc0, /* mov ecx, 0xc0000100 */
        0x0f, 0x32, 0x0f, 0x30,             /* rdmsr; wrmsr */
        0x66, 0xb9, 0x10, 0x00, 0x00, 0x00, /* mov ecx, 0x10 */
        0x0f, 0x32,                         /* rdmsr */
        0xff, 0x06, 0x00, 0x00,             /* inc word [0] */
        0xe6, 0x80,                         /* out 0x80, al */
        0xeb, 0xe6,                         /* jmp to the start */
    };
    _Static_assert(sizeof code == 26, "jmp offset");
    for (int i = 0; i < NVCPU; i++) {
        memcpy(low + 0x1000 + 0x100 * i, code, sizeof code);
        vc[i].fd = (int)fz_ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
        if (vc[i].fd < 0) {
            fprintf(stderr, "kvm-fuzz stress: KVM_CREATE_VCPU %s\n", fz_errname(vc[i].fd));
            return 2;
        }
        vc[i].run = mmap(NULL, (size_t)msz, PROT_READ | PROT_WRITE, MAP_SHARED, vc[i].fd, 0);
        struct kvm_sregs s;
        fz_ioctl(vc[i].fd, KVM_GET_SREGS, (uintptr_t)&s);
        s.cs.base = 0;
        s.cs.selector = 0;
        s.ds.selector = (uint16_t)(0x1000 + i);
        s.ds.base = (uint64_t)s.ds.selector << 4;
        fz_ioctl(vc[i].fd, KVM_SET_SREGS, (uintptr_t)&s);
        struct kvm_regs rg = {.rip = 0x1000 + 0x100 * (unsigned)i, .rflags = 2, .rsp = 0x8000};
        fz_ioctl(vc[i].fd, KVM_SET_REGS, (uintptr_t)&rg);
    }
    for (int i = 0; i < NVCPU; i++)
        pthread_create(&vc[i].t, NULL, vcpu_thread, &vc[i]);

    unsigned long changes = 0, slot_toggles = 0, filters = 0, signals = 0, immediates = 0;
    bool slot1 = true;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t k = 0; k < o->count && !atomic_load(&stop); k++) {
        switch (fz_below(&rng, 4)) {
        case 0:
            set_filter(&rng);
            filters++;
            break;
        case 1: {
            struct kvm_userspace_memory_region m = m1;
            if (slot1)
                m.memory_size = 0;
            slot1 = !slot1;
            fz_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&m);
            slot_toggles++;
            break;
        }
        case 2:
            pthread_kill(vc[fz_below(&rng, NVCPU)].t, SIGUSR1);
            signals++;
            break;
        default:
            __atomic_store_n(&vc[fz_below(&rng, NVCPU)].run->immediate_exit, 1, __ATOMIC_RELAXED);
            immediates++;
            break;
        }
        changes++;
        if (fz_chance(&rng, 50))
            usleep(100);
    }
    /* progress check: every vCPU must still be running guest code; a loaded machine
     * (8 threads on few cores) can starve one for a while, so a hang is 2 s without one
     * completed KVM_RUN */
    unsigned long before[NVCPU];
    bool moved[NVCPU] = {false};
    for (int i = 0; i < NVCPU; i++)
        before[i] = atomic_load(&vc[i].runs);
    for (int t = 0; t < 20; t++) {
        usleep(100000);
        bool all = true;
        for (int i = 0; i < NVCPU; i++) {
            moved[i] = moved[i] || atomic_load(&vc[i].bad) || atomic_load(&vc[i].runs) != before[i];
            all = all && moved[i];
        }
        if (all)
            break;
    }
    int hung = 0;
    for (int i = 0; i < NVCPU; i++)
        if (!moved[i]) {
            fprintf(stderr, "kvm-fuzz stress: vCPU %d made no progress in 2 s\n", i);
            hung = 1;
        }
    atomic_store(&stop, true);
    for (int i = 0; i < NVCPU; i++) {
        __atomic_store_n(&vc[i].run->immediate_exit, 1, __ATOMIC_RELAXED);
        pthread_kill(vc[i].t, SIGUSR1);
    }
    for (int i = 0; i < NVCPU; i++)
        pthread_join(vc[i].t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    unsigned long runs = 0, io = 0, mmio = 0, msr = 0, intr = 0;
    int bad = 0;
    for (int i = 0; i < NVCPU; i++) {
        runs += vc[i].runs, io += vc[i].io, mmio += vc[i].mmio, msr += vc[i].msr;
        intr += vc[i].intr, bad |= vc[i].bad;
    }
    printf("kvm-fuzz stress: seed %llu backend %s: %d vCPUs, %lu changes (%lu MSR filters, %lu "
           "slot toggles, %lu signals, %lu immediate_exit) in %.1f s: %lu KVM_RUNs (io %lu, "
           "mmio %lu, msr %lu, intr %lu)%s%s\n",
           (unsigned long long)o->seed, fz_backend() == FZ_REAL ? "real" : "softkvm", NVCPU,
           changes, filters, slot_toggles, signals, immediates,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, runs, io,
           mmio, msr, intr, bad ? ", BAD EXIT" : "", hung ? ", HUNG vCPU" : "");
    return bad || hung;
}
