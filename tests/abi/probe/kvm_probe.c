/* softkvm-abi-probe: an ordinary KVM program (no softkvm code) that exercises the
 * KVM ABI and prints one line per check: results and errno values. Its output must be
 * identical on a real /dev/kvm and under `softkvm run` (tests/abi/test_transport.c
 * compares them). With --whoami it also prints what the /dev/kvm fd really is. */
#include <asm/prctl.h>
#include <cpuid.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(label, call)                                                                 \
    do {                                                                                   \
        errno = 0;                                                                         \
        long r_ = (long)(call);                                                            \
        printf("%-34s r=%ld errno=%d\n", label, r_ < 0 ? -1L : r_, r_ < 0 ? errno : 0);    \
    } while (0)

/* 16-bit real-mode guest at 0x1000: out 0x42 to port 0x10, in from 0x11 -> out to
 * 0x12, then hlt. */
static const uint8_t guest[] = {
    0xb0, 0x42,       /* mov al, 0x42 */
    0xe6, 0x10,       /* out 0x10, al */
    0xe4, 0x11,       /* in al, 0x11 */
    0xe6, 0x12,       /* out 0x12, al */
    0xf4,             /* hlt */
};

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void run_guest(int vm)
{
    size_t memsz = 0x10000;
    uint8_t *mem = mmap(NULL, memsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(mem + 0x1000, guest, sizeof guest);
    struct kvm_userspace_memory_region r = {.slot = 0, .guest_phys_addr = 0,
                                            .memory_size = memsz,
                                            .userspace_addr = (uintptr_t)mem};
    CHECK("guest: set region", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 1);
    int kvm = open("/dev/kvm", O_RDWR);
    int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    printf("guest: mmap ok=%d\n", run != MAP_FAILED);
    struct kvm_sregs s;
    ioctl(vcpu, KVM_GET_SREGS, &s);
    s.cs.base = 0;
    s.cs.selector = 0;
    ioctl(vcpu, KVM_SET_SREGS, &s);
    struct kvm_regs g = {.rip = 0x1000, .rflags = 2};
    ioctl(vcpu, KVM_SET_REGS, &g);
    CHECK("guest: run1", ioctl(vcpu, KVM_RUN, 0));
    printf("guest: exit=%u dir=%u port=%#x size=%u count=%u data=%#x\n", run->exit_reason,
           run->io.direction, run->io.port, run->io.size, run->io.count,
           ((uint8_t *)run)[run->io.data_offset]);
    CHECK("guest: run2", ioctl(vcpu, KVM_RUN, 0));
    printf("guest: exit=%u dir=%u port=%#x\n", run->exit_reason, run->io.direction, run->io.port);
    ((uint8_t *)run)[run->io.data_offset] = 0x77;
    CHECK("guest: run3", ioctl(vcpu, KVM_RUN, 0));
    printf("guest: exit=%u dir=%u port=%#x data=%#x\n", run->exit_reason, run->io.direction,
           run->io.port, ((uint8_t *)run)[run->io.data_offset]);
    CHECK("guest: run4", ioctl(vcpu, KVM_RUN, 0));
    ioctl(vcpu, KVM_GET_REGS, &g);
    printf("guest: exit=%u rip=%#llx rax=%#llx\n", run->exit_reason, g.rip, g.rax & 0xff);
    run->immediate_exit = 1;
    CHECK("guest: run immediate_exit", ioctl(vcpu, KVM_RUN, 0));
    printf("guest: exit=%u\n", run->exit_reason);
    run->immediate_exit = 0;
    CHECK("guest: run arg!=0", ioctl(vcpu, KVM_RUN, 1));
    /* a signal during KVM_RUN: EINTR with KVM_EXIT_INTR, the handler ran once */
    static const uint8_t spin[] = {0xeb, 0xfe}; /* jmp . */
    memcpy(mem + 0x3000, spin, sizeof spin);
    ioctl(vcpu, KVM_GET_REGS, &g);
    g.rip = 0x3000;
    ioctl(vcpu, KVM_SET_REGS, &g);
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct sigaction cur;
    sigaction(SIGALRM, NULL, &cur);
    printf("guest: handler reported back=%d\n", cur.sa_handler == on_alarm);
    alarm(1);
    CHECK("guest: run spin + SIGALRM", ioctl(vcpu, KVM_RUN, 0));
    printf("guest: exit=%u alarms=%d\n", run->exit_reason, (int)alarms);
    ioctl(vcpu, KVM_GET_REGS, &g);
    printf("guest: rip in loop=%d\n", g.rip == 0x3000);
    close(vcpu);
    close(kvm);
}

/* A thread blocked in KVM_RUN (HLT with the in-kernel irqchip) and cancelled
 * asynchronously ends with PTHREAD_CANCELED, as with Linux KVM. */
static void *halt_thread(void *arg)
{
    int vcpu = *(int *)arg, old;
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
    for (;;)
        ioctl(vcpu, KVM_RUN, 0);
    return NULL;
}

static void cancel_in_run(int kvm)
{
    static const uint8_t cli_hlt[] = {0xfa, 0xf4, 0xeb, 0xfd}; /* cli; hlt; jmp back */
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    CHECK("cancel: create irqchip", ioctl(vm, KVM_CREATE_IRQCHIP, 0));
    uint8_t *mem = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(mem + 0x1000, cli_hlt, sizeof cli_hlt);
    struct kvm_userspace_memory_region r = {.memory_size = 0x10000,
                                            .userspace_addr = (uintptr_t)mem};
    ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r);
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    struct kvm_sregs s;
    ioctl(vcpu, KVM_GET_SREGS, &s);
    s.cs.base = 0;
    s.cs.selector = 0;
    ioctl(vcpu, KVM_SET_SREGS, &s);
    struct kvm_regs g = {.rip = 0x1000, .rflags = 2};
    ioctl(vcpu, KVM_SET_REGS, &g);
    pthread_t t;
    pthread_create(&t, NULL, halt_thread, &vcpu);
    usleep(200000);
    void *rv = NULL;
    printf("cancel: cancel=%d\n", pthread_cancel(t));
    printf("cancel: join=%d\n", pthread_join(t, &rv));
    printf("cancel: result is PTHREAD_CANCELED=%d\n", rv == PTHREAD_CANCELED);
    close(vcpu);
    close(vm);
}

static void on_segv(int sig)
{
    (void)sig;
    static const char m[] = "own SIGSEGV handler ran\n";
    fflush(stdout);
    (void)!write(1, m, sizeof m - 1);
    _exit(0);
}

/* --hostfault: memory slots whose host mapping is gone, PROT_NONE or read-only. Linux 6.12
 * fails KVM_RUN with EFAULT (mmu.c kvm_handle_error_pfn); this machine's PVM-based KVM
 * emulates real mode in the host and reports an emulation failure instead, so this part is
 * not compared with it. Then the program's own SIGSEGV handler must still work. */
static int hostfault(int kvm)
{
    static const char *const modes[] = {"address_0", "prot_none", "readonly_write"};
    for (int mode = 0; mode < 3; mode++) {
        int vm = ioctl(kvm, KVM_CREATE_VM, 0);
        size_t sz = 0x10000;
        uint8_t *mem = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        /* mov [0x3000], al; hlt */
        static const uint8_t code[] = {0xa2, 0x00, 0x30, 0xf4};
        memcpy(mem + 0x1000, code, sizeof code);
        if (mode > 0)
            mprotect(mem, sz, mode == 1 ? PROT_NONE : PROT_READ);
        /* address 0 is never mapped, and KVM accepts it (access_ok) */
        struct kvm_userspace_memory_region r = {.slot = 0, .memory_size = sz,
                                                .userspace_addr = mode ? (uintptr_t)mem : 0};
        CHECK("hostfault: region", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
        int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
        struct kvm_sregs s;
        ioctl(vcpu, KVM_GET_SREGS, &s);
        s.cs.base = 0;
        s.cs.selector = 0;
        ioctl(vcpu, KVM_SET_SREGS, &s);
        struct kvm_regs g = {.rip = 0x1000, .rflags = 2};
        ioctl(vcpu, KVM_SET_REGS, &g);
        printf("hostfault: %s\n", modes[mode]);
        CHECK("hostfault: run", ioctl(vcpu, KVM_RUN, 0));
        close(vcpu);
        close(vm);
    }
    signal(SIGSEGV, on_segv);
    fflush(stdout);
    volatile int *bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *bad = 1; /* a fault of the program's own */
    printf("own SIGSEGV handler did not run\n");
    return 1;
}

/* --cpuid: the host CPUID this program sees (abi/preload/host_cpuid.c): whether CPUID
 * faults (ARCH_GET_CPUID 0), the virtualization bit of the host's vendor (VMX or SVM)
 * seen by this thread and by a thread created later, and, when CPUID does not fault,
 * whether this host could make it fault at all. */
static void *cpuid_virt_thread(void *arg)
{
    unsigned a, b, c, d, leaf = *(unsigned *)arg;
    __cpuid(leaf, a, b, c, d);
    *(unsigned *)arg = c;
    return NULL;
}

static int cpuid_report(void)
{
    unsigned a, b, c, d;
    __cpuid(0, a, b, c, d);
    bool intel = b == 0x756e6547, amd = b == 0x68747541;
    unsigned leaf = intel ? 1 : 0x80000001, bit = intel ? 5 : 2;
    __cpuid(leaf, a, b, c, d);
    unsigned tc = leaf;
    pthread_t t;
    pthread_create(&t, NULL, cpuid_virt_thread, &tc);
    pthread_join(t, NULL);
    int faulting = syscall(SYS_arch_prctl, ARCH_GET_CPUID, 0) == 0;
    printf("cpuid: vendor=%s faulting=%d virt=%u thread_virt=%u\n", intel ? "intel" : amd ? "amd" : "other",
           faulting, (c >> bit) & 1, (tc >> bit) & 1);
    if (!faulting) {
        long r = syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
        printf("cpuid: host_can_fault=%d errno=%d\n", r == 0, r == 0 ? 0 : errno);
        if (r == 0)
            syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--cpuid") == 0)
        return cpuid_report();
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        printf("no /dev/kvm: %d\n", errno);
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "--hostfault") == 0)
        return hostfault(kvm);
    if (argc > 1 && strcmp(argv[1], "--whoami") == 0) {
        char path[64], link[256] = "";
        snprintf(path, sizeof path, "/proc/self/fd/%d", kvm);
        ssize_t n = readlink(path, link, sizeof link - 1);
        link[n > 0 ? n : 0] = 0;
        printf("whoami: %s\n", link);
    }
    CHECK("api version", ioctl(kvm, KVM_GET_API_VERSION, 0));
    CHECK("api version arg", ioctl(kvm, KVM_GET_API_VERSION, 1));
    CHECK("sys unknown ioctl", ioctl(kvm, _IO(KVMIO, 0xee), 0));
    CHECK("check USER_MEMORY", ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
    CHECK("check bogus cap", ioctl(kvm, KVM_CHECK_EXTENSION, 100000));
    CHECK("vcpu mmap size", ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
    CHECK("vcpu mmap size arg", ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 1));
    CHECK("create vm type 5", ioctl(kvm, KVM_CREATE_VM, 5));
    struct {
        struct kvm_cpuid2 c;
        struct kvm_cpuid_entry2 e[256];
    } cpuid;
    cpuid.c.nent = 0;
    CHECK("supported cpuid nent=0", ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid));
    printf("  nent after: %u\n", cpuid.c.nent);
    cpuid.c.nent = 2;
    CHECK("supported cpuid nent=2", ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid));
    printf("  nent after: %u\n", cpuid.c.nent);
    CHECK("supported cpuid bad ptr", ioctl(kvm, KVM_GET_SUPPORTED_CPUID, (void *)8));
    struct kvm_msr_list ml = {.nmsrs = 0};
    CHECK("msr index list nmsrs=0", ioctl(kvm, KVM_GET_MSR_INDEX_LIST, &ml));
    printf("  nmsrs>0: %d\n", ml.nmsrs > 0);
    /* QEMU passes requests as int: bit 31 set reaches glibc sign-extended to 64 bits, and
     * the kernel's ioctl(unsigned int cmd) drops the upper half */
    ml.nmsrs = 0;
    CHECK("msr index list sign-extended req",
          ioctl(kvm, (unsigned long)(long)(int)KVM_GET_MSR_INDEX_LIST, &ml));
    printf("  nmsrs>0: %d\n", ml.nmsrs > 0);

    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    printf("create vm ok=%d\n", vm >= 0);
    CHECK("vm unknown ioctl", ioctl(vm, _IO(KVMIO, 0xee), 0));
    CHECK("vm check USER_MEMORY", ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
    void *mem = mmap(NULL, 0x20000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct kvm_userspace_memory_region r = {.slot = 3, .guest_phys_addr = 0x100000,
                                            .memory_size = 0x10000,
                                            .userspace_addr = (uintptr_t)mem};
    CHECK("region ok", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
    r.slot = 4;
    r.guest_phys_addr = 0x108000;
    CHECK("region overlap", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
    r.guest_phys_addr = 0x100800;
    CHECK("region gpa unaligned", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
    r.guest_phys_addr = 0x200000;
    r.userspace_addr += 1;
    CHECK("region uaddr unaligned", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
    r.userspace_addr -= 1;
    r.flags = 0x80;
    CHECK("region bad flags", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
    r.flags = 0;
    r.slot = 3;
    r.memory_size = 0x20000;
    CHECK("region resize", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
    r.memory_size = 0x10000;
    r.flags = KVM_MEM_READONLY;
    r.guest_phys_addr = 0x100000;
    CHECK("region toggle readonly", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
    r.flags = 0;
    r.guest_phys_addr = 0x300000;
    CHECK("region move", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
    r.memory_size = 0;
    CHECK("region delete", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
    CHECK("region delete again", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r));
    CHECK("region bad ptr", ioctl(vm, KVM_SET_USER_MEMORY_REGION, (void *)8));
    struct kvm_dirty_log dl = {.slot = 3};
    CHECK("dirty log no slot", ioctl(vm, KVM_GET_DIRTY_LOG, &dl));
    CHECK("tss addr", ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000));
    CHECK("tss addr too high", ioctl(vm, KVM_SET_TSS_ADDR, 0xffffe000));
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR, .args = {0x80}};
    CHECK("enable user msr bad mask", ioctl(vm, KVM_ENABLE_CAP, &cap));
    cap.args[0] = KVM_MSR_EXIT_REASON_FILTER;
    CHECK("enable user msr", ioctl(vm, KVM_ENABLE_CAP, &cap));
    cap.flags = 1;
    CHECK("enable cap flags", ioctl(vm, KVM_ENABLE_CAP, &cap));

    int efd = eventfd(0, 0);
    struct kvm_ioeventfd ie = {.addr = 0x10, .len = 1, .fd = efd, .datamatch = 0x42,
                               .flags = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH};
    CHECK("ioeventfd assign", ioctl(vm, KVM_IOEVENTFD, &ie));
    CHECK("ioeventfd assign again", ioctl(vm, KVM_IOEVENTFD, &ie));
    ie.len = 3;
    CHECK("ioeventfd len 3", ioctl(vm, KVM_IOEVENTFD, &ie));
    ie.len = 1;
    ie.fd = 0;
    ie.addr = 0x20;
    CHECK("ioeventfd not an eventfd", ioctl(vm, KVM_IOEVENTFD, &ie));
    ie.fd = 999;
    CHECK("ioeventfd bad fd", ioctl(vm, KVM_IOEVENTFD, &ie));
    ie.fd = efd;
    ie.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    CHECK("ioeventfd deassign missing", ioctl(vm, KVM_IOEVENTFD, &ie));
    ie.addr = 0x10;
    CHECK("ioeventfd deassign", ioctl(vm, KVM_IOEVENTFD, &ie));
    ie.flags = 0x100;
    CHECK("ioeventfd bad flag", ioctl(vm, KVM_IOEVENTFD, &ie));
    ie = (struct kvm_ioeventfd){.addr = 0x1000, .len = 0, .fd = efd, .flags = KVM_IOEVENTFD_FLAG_PIO};
    CHECK("ioeventfd pio len 0", ioctl(vm, KVM_IOEVENTFD, &ie));
    ie.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    CHECK("ioeventfd len 0 datamatch", ioctl(vm, KVM_IOEVENTFD, &ie));
    close(efd);

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    printf("create vcpu ok=%d\n", vcpu >= 0);
    CHECK("create vcpu dup id", ioctl(vm, KVM_CREATE_VCPU, 0));
    CHECK("create vcpu huge id", ioctl(vm, KVM_CREATE_VCPU, 1 << 20));
    CHECK("vcpu unknown ioctl", ioctl(vcpu, _IO(KVMIO, 0xee), 0));
    CHECK("vcpu get regs bad ptr", ioctl(vcpu, KVM_GET_REGS, (void *)8));
    struct kvm_regs regs;
    CHECK("vcpu get regs", ioctl(vcpu, KVM_GET_REGS, &regs));
    printf("  reset rip=%#llx rflags=%#llx\n", regs.rip, regs.rflags);
    regs.rax = 0x1234;
    regs.rflags = 0;
    CHECK("vcpu set regs", ioctl(vcpu, KVM_SET_REGS, &regs));
    ioctl(vcpu, KVM_GET_REGS, &regs);
    printf("  rax=%#llx rflags=%#llx\n", regs.rax, regs.rflags);
    struct kvm_sregs sregs;
    CHECK("vcpu get sregs", ioctl(vcpu, KVM_GET_SREGS, &sregs));
    printf("  reset cr0=%#llx cs.sel=%#x cs.base=%#llx efer=%#llx apic_base=%#llx\n", sregs.cr0,
           sregs.cs.selector, sregs.cs.base, sregs.efer, sregs.apic_base);
    struct kvm_sregs bad = sregs;
    bad.cr0 = 0x80000000; /* PG without PE */
    CHECK("sregs PG without PE", ioctl(vcpu, KVM_SET_SREGS, &bad));
    bad = sregs;
    bad.efer = 0x400; /* LMA without LME+PG */
    CHECK("sregs LMA alone", ioctl(vcpu, KVM_SET_SREGS, &bad));
    bad = sregs;
    bad.cr0 |= 1ull << 33;
    CHECK("sregs cr0 high bits", ioctl(vcpu, KVM_SET_SREGS, &bad));
    CHECK("sregs same", ioctl(vcpu, KVM_SET_SREGS, &sregs));
    cpuid.c.nent = 256;
    ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid);
    unsigned n = cpuid.c.nent;
    CHECK("set cpuid2", ioctl(vcpu, KVM_SET_CPUID2, &cpuid));
    cpuid.c.nent = 1;
    CHECK("get cpuid2 small", ioctl(vcpu, KVM_GET_CPUID2, &cpuid));
    printf("  nent after: %u\n", cpuid.c.nent);
    cpuid.c.nent = 256;
    CHECK("get cpuid2", ioctl(vcpu, KVM_GET_CPUID2, &cpuid));
    printf("  same count: %d\n", cpuid.c.nent == n);
    struct kvm_mp_state mp;
    CHECK("get mp state", ioctl(vcpu, KVM_GET_MP_STATE, &mp));
    printf("  mp=%u\n", mp.mp_state);
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e[2];
    } msrs = {.h = {.nmsrs = 2}, .e = {{.index = 0x174 /* SYSENTER_CS */}, {.index = 0xdeadbeef}}};
    CHECK("get msrs (2nd unknown)", ioctl(vcpu, KVM_GET_MSRS, &msrs));
    msrs.h.nmsrs = 1000;
    CHECK("get msrs too many", ioctl(vcpu, KVM_GET_MSRS, &msrs));
    struct kvm_xcrs xcrs;
    CHECK("get xcrs", ioctl(vcpu, KVM_GET_XCRS, &xcrs));
    printf("  nr=%u xcr0=%#llx\n", xcrs.nr_xcrs, xcrs.xcrs[0].value);
    xcrs.xcrs[0].value = 0;
    CHECK("set xcr0=0", ioctl(vcpu, KVM_SET_XCRS, &xcrs));
    struct kvm_debugregs dr;
    CHECK("get debugregs", ioctl(vcpu, KVM_GET_DEBUGREGS, &dr));
    printf("  dr6=%#llx dr7=%#llx\n", dr.dr6, dr.dr7);
    dr.dr7 = 1ull << 40;
    CHECK("set debugregs dr7 high", ioctl(vcpu, KVM_SET_DEBUGREGS, &dr));
    int dupfd = dup(vcpu);
    CHECK("ioctl via dup'd vcpu fd", ioctl(dupfd, KVM_GET_REGS, &regs));
    close(dupfd);
    CHECK("ioctl on closed dup fd", ioctl(dupfd, KVM_GET_REGS, &regs));
    close(vcpu);
    run_guest(vm);
    close(vm);
    cancel_in_run(kvm);
    close(kvm);
    return 0;
}
