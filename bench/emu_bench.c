/* emu-bench: the same firmware image (bench/emu_bench_guest.S: reset vector -> protected
 * -> long mode -> integer/branch/memory/call workload) run by softkvm's interpreter, by
 * QEMU TCG (qemu-system-x86_64 -accel tcg) and, if it works, by real /dev/kvm, side by
 * side. The instruction count comes from softkvm (the program is deterministic); every
 * engine is timed at two iteration counts and the difference is used, so boot/startup
 * costs cancel. Prints MIPS for each and the softkvm/QEMU ratio; the guest's checksum
 * (reported through OUT 0xf4) must agree. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emu/internal.h"

#define ROM_GPA 0xffff0000ull
#define ROM_SIZE 0x10000
#define RAM_SIZE (64ull << 20)
#define ITER_OFF 0x8000

static uint8_t rom[ROM_SIZE];

/* CPU time, not wall time: the build machine is shared, and CPU time is what an
 * engine costs. QEMU's is taken from the child's rusage (all its threads). */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void set_iters(uint64_t n)
{
    memcpy(rom + ITER_OFF, &n, 8);
}

/* MSR policy lives in msr/; the bench firmware only touches EFER (SDM vol.3 2.2.1). */
static enum emu_msr_result b_rdmsr(void *ctx, struct cpu *c, uint32_t idx, uint64_t *val, uint32_t *reason)
{
    (void)ctx;
    (void)reason;
    if (idx != 0xc0000080)
        return EMU_MSR_GP;
    *val = c->efer;
    return EMU_MSR_OK;
}
static enum emu_msr_result b_wrmsr(void *ctx, struct cpu *c, uint32_t idx, uint64_t val, uint32_t *reason)
{
    (void)ctx;
    (void)reason;
    if (idx != 0xc0000080)
        return EMU_MSR_GP;
    c->efer = (c->efer & (1u << 10)) | (val & ~(uint64_t)(1u << 10)); /* LMA is read-only */
    return EMU_MSR_OK;
}

/* softkvm: returns seconds, fills instruction count and checksum byte. */
static double run_softkvm(uint64_t iters, uint64_t *icount, int *sum)
{
    set_iters(iters);
    static struct emu_physmem pm;
    static struct emu_slot slots[2]; /* gpa-sorted */
    memset(&pm, 0, sizeof pm);
    pm.slots = slots;
    uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pm.slots[0] = (struct emu_slot){.gpa = 0, .size = RAM_SIZE, .host = ram};
    pm.slots[1] = (struct emu_slot){.gpa = ROM_GPA, .size = ROM_SIZE, .host = rom, .readonly = true};
    pm.nslots = 2;
    struct emu_vcpu *v = emu_vcpu_create(&pm);
    static const struct emu_msr_ops ops = {.rdmsr = b_rdmsr, .wrmsr = b_wrmsr, .ctx = NULL};
    emu_set_msr_ops(v, &ops);
    struct emu_exit x;
    *sum = -1;
    double t0 = now();
    for (;;) {
        emu_run(v, &x);
        if (x.reason == EMU_EXIT_IO && x.io.port == 0xf4) {
            *sum = x.io.data[0];
            break;
        }
        if (x.reason != EMU_EXIT_IO) {
            fprintf(stderr, "softkvm: unexpected exit %d at rip %#llx\n", x.reason,
                    (unsigned long long)emu_cpu(v)->rip);
            break;
        }
    }
    double t = now() - t0;
    *icount = v->icount;
    emu_vcpu_destroy(v);
    munmap(ram, RAM_SIZE);
    return t;
}

/* QEMU TCG: returns seconds or < 0 if it could not run; *sum = checksum low 7 bits. */
static double run_qemu(uint64_t iters, int *sum)
{
    set_iters(iters);
    char path[] = "/tmp/emu-bench-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, rom, sizeof rom) != (ssize_t)sizeof rom)
        return -1;
    close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("qemu-system-x86_64", "qemu-system-x86_64", "-accel", "tcg", "-bios", path,
               "-display", "none", "-nodefaults", "-no-reboot", "-m", "64", "-device",
               "isa-debug-exit,iobase=0xf4,iosize=1", (char *)NULL);
        _exit(127);
    }
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    double t = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    unlink(path);
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 127)
        return -1;
    *sum = (WEXITSTATUS(st) >> 1) & 0x7f; /* isa-debug-exit: status = (value << 1) | 1 */
    return t;
}

/* Real KVM (if /dev/kvm works): returns seconds or < 0. */
static double run_kvm(uint64_t iters, int *sum)
{
    set_iters(iters);
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        return -1;
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) {
        close(kvm);
        return -1;
    }
    uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *r = mmap(NULL, ROM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(r, rom, ROM_SIZE);
    struct kvm_userspace_memory_region m0 = {0, 0, 0, RAM_SIZE, (uint64_t)(uintptr_t)ram};
    struct kvm_userspace_memory_region m1 = {1, KVM_MEM_READONLY, ROM_GPA, ROM_SIZE, (uint64_t)(uintptr_t)r};
    double t = -1;
    int cpu = -1;
    struct kvm_run *run = MAP_FAILED;
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &m0) || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &m1))
        goto out;
    cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (cpu < 0)
        goto out;
    int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
    if (run == MAP_FAILED)
        goto out;
    double t0 = now();
    for (;;) {
        if (ioctl(cpu, KVM_RUN, 0) < 0 && errno != EINTR) {
            if (getenv("EMU_BENCH_DEBUG"))
                fprintf(stderr, "kvm: KVM_RUN: %s\n", strerror(errno));
            goto out;
        }
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0xf4) {
            *sum = ((uint8_t *)run)[run->io.data_offset] & 0x7f;
            break;
        }
        if (run->exit_reason != KVM_EXIT_IO && run->exit_reason != KVM_EXIT_MMIO) {
            if (getenv("EMU_BENCH_DEBUG"))
                fprintf(stderr, "kvm: exit reason %u\n", run->exit_reason);
            goto out;
        }
    }
    t = now() - t0;
out:
    if (t < 0 && getenv("EMU_BENCH_DEBUG"))
        fprintf(stderr, "kvm: failed (cpu fd %d, errno %s)\n", cpu, strerror(errno));
    if (cpu >= 0)
        close(cpu);
    close(vm);
    close(kvm);
    munmap(ram, RAM_SIZE);
    munmap(r, ROM_SIZE);
    return t;
}

int main(int argc, char **argv)
{
    uint64_t small = 1000, big = 20000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            big = strtoull(argv[++i], NULL, 0);
        else {
            fprintf(stderr, "usage: %s [--iters N]\n", argv[0]);
            return 2;
        }
    }
    FILE *f = fopen(EMU_BENCH_IMAGE, "rb");
    if (!f || fread(rom, 1, sizeof rom, f) != sizeof rom) {
        fprintf(stderr, "cannot read %s\n", EMU_BENCH_IMAGE);
        return 1;
    }
    fclose(f);

    uint64_t ic_s, ic_b;
    int sum_s, sum_b;
    double ts = run_softkvm(small, &ic_s, &sum_s);
    double tb = run_softkvm(big, &ic_b, &sum_b);
    if (sum_b < 0)
        return 1;
    double insns = (double)(ic_b - ic_s);
    double mips_soft = insns / (tb - ts) / 1e6;
    printf("workload: %llu iterations, %llu guest instructions (counted by softkvm)\n",
           (unsigned long long)big, (unsigned long long)ic_b);
    printf("softkvm   : %8.1f MIPS  (%.3f s)\n", mips_soft, tb);

    /* QEMU is much faster per instruction: give it 10x the iterations so its timed
     * difference is not lost in process start-up noise; instructions scale linearly
     * (per-iteration count measured by softkvm). */
    uint64_t qbig = big * 10;
    double per_iter = insns / (double)(big - small);
    double qinsns = per_iter * (double)(qbig - small);
    int qs = -1, qb = -1;
    double qts = run_qemu(small, &qs), qtb = run_qemu(qbig, &qb);
    int rc = 0;
    if (qts < 0 || qtb < 0) {
        printf("qemu-tcg  : not runnable\n");
    } else {
        double mips_q = qinsns / (qtb - qts) / 1e6;
        printf("qemu-tcg  : %8.1f MIPS  (%.3f s for %llu iterations)%s\n", mips_q, qtb,
               (unsigned long long)qbig, qs == (sum_s & 0x7f) ? "" : "  CHECKSUM MISMATCH");
        printf("ratio softkvm/qemu-tcg: %.3fx (target >= 0.5x)\n", mips_soft / mips_q);
        if (qs != (sum_s & 0x7f)) /* same iteration count: the guest checksums must match */
            rc = 1;
    }
    int ks = -1, kb = -1;
    double kts = run_kvm(small, &ks), ktb = run_kvm(big, &kb);
    if (kts < 0 || ktb < 0 || ktb <= kts)
        printf("real kvm  : not available\n");
    else
        printf("real kvm  : %8.1f MIPS  (%.3f s)%s\n", insns / (ktb - kts) / 1e6, ktb,
               ks == (sum_s & 0x7f) ? "" : "  CHECKSUM MISMATCH");
    return rc;
}
