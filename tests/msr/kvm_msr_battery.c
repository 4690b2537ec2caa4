/* kvm-msr-battery: an ordinary /dev/kvm program (no softkvm code) that runs a 64-bit guest
 * performing a battery of RDMSR/WRMSR, with every failure reason deflected to user space
 * (KVM_CAP_X86_USER_SPACE_MSR = INVAL|UNKNOWN|FILTER, answered with error = 0), a filter
 * denying reads of 0x10-0x17 and writes of LSTAR, and a fixed guest CPUID. It prints one
 * line per access: exit reason (or "kernel") and the value the guest got. Run it on the
 * real /dev/kvm and under `softkvm run` and diff the transcripts:
 *
 *   cc -O2 -o /tmp/kvm-msr-battery tests/msr/kvm_msr_battery.c
 *   /tmp/kvm-msr-battery > real.txt; build/tools/softkvm run -- /tmp/kvm-msr-battery > soft.txt
 *
 * Not part of ctest (it needs two runs under different transports).
 *
 * Recorded on this machine's /dev/kvm (PVM-based, Linux 6.18): 34 of 46 lines identical. The 12
 * that differ are all where the host's PVM vendor module departs from 6.12's vmx.c, which
 * softkvm's Intel flavour follows: FEATURE_CONTROL and VMX_BASIC unknown to PVM, SPEC_CTRL /
 * PRED_CMD / ARCH_CAPABILITIES not CPUID-gated, PAT validity and MISC_ENABLE RO bits not
 * enforced, TSC_AUX unsupported on that host. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE 0x200000ul
#define PML4_GPA 0x1000ul
#define PDPT_GPA 0x2000ul
#define PD_GPA 0x3000ul
#define CODE_GPA 0x10000ul
#define TABLE_GPA 0x20000ul

struct op {
    uint32_t index, write; /* write: 0 read, 1 write, 0xff end */
    uint64_t value;        /* in: value to write; out: EDX:EAX after the instruction */
};

/* Guest: walk the table at TABLE_GPA, RDMSR/WRMSR each entry, store EDX:EAX back. */
extern const uint8_t battery_guest_start[], battery_guest_end[];
__asm__(".pushsection .rodata\n"
        "battery_guest_start:\n"
        "  mov $0x20000, %rsi\n"
        "1: mov (%rsi), %ecx\n"
        "  mov 4(%rsi), %ebx\n"
        "  cmp $0xff, %ebx\n"
        "  je 3f\n"
        "  mov 8(%rsi), %eax\n"
        "  mov 12(%rsi), %edx\n"
        "  test %ebx, %ebx\n"
        "  jnz 2f\n"
        "  rdmsr\n"
        "  jmp 4f\n"
        "2: wrmsr\n"
        "4: mov %eax, 8(%rsi)\n"
        "  mov %edx, 12(%rsi)\n"
        "  add $16, %rsi\n"
        "  jmp 1b\n"
        "3: mov $0x10, %dx\n"  /* done: an OUT (HLT would block with an in-kernel LAPIC) */
        "  out %al, %dx\n"
        "battery_guest_end:\n"
        ".popsection\n");

static const struct op battery[] = {
    {0xc0000080, 0, 0},                       /* EFER: kernel */
    {0xc0000081, 1, 0x0023001000000000ull},   /* STAR write: kernel (VMX) */
    {0xc0000081, 0, 0},
    {0xc0000082, 1, 0xffffffff81000000ull},   /* LSTAR write: FILTER */
    {0xc0000084, 1, 0x47700},                 /* SFMASK */
    {0xc0000084, 0, 0},
    {0x10, 0, 0},                             /* TSC read: FILTER */
    {0x11, 0, 0},                             /* KVM_WALL_CLOCK read: FILTER */
    {0x18, 0, 0},                             /* outside the filter, unknown: UNKNOWN */
    {0xdeadbeef, 0, 0},                       /* UNKNOWN */
    {0xdeadbeef, 1, 0x1234},
    {0x3a, 0, 0},                             /* FEATURE_CONTROL */
    {0x3a, 1, 1},                             /* lock it: no VMX in CPUID */
    {0x3a, 1, 4},                             /* VMX bit without VMX: INVAL */
    {0x48, 0, 0},                             /* SPEC_CTRL without CPUID: INVAL */
    {0x49, 1, 1},                             /* PRED_CMD without CPUID: INVAL */
    {0x10a, 0, 0},                            /* ARCH_CAPABILITIES without CPUID: INVAL */
    {0xce, 0, 0},                             /* PLATFORM_INFO: kernel */
    {0xce, 1, 0},                             /* guest write: INVAL */
    {0xfe, 0, 0},                             /* MTRRcap */
    {0x2ff, 1, 0xc06},                        /* MTRRdefType */
    {0x2ff, 1, 0x2},                          /* invalid type: INVAL */
    {0x277, 1, 0x0007040600070402ull},        /* PAT invalid: INVAL */
    {0x277, 0, 0},
    {0x179, 0, 0},                            /* MCG_CAP */
    {0x17b, 0, 0},                            /* MCG_CTL without MCG_CTL_P: INVAL */
    {0x1a0, 0, 0},                            /* MISC_ENABLE */
    {0x1a0, 1, 0x800},                        /* clear RO bit 12: INVAL */
    {0xc0000103, 0, 0},                       /* TSC_AUX with RDTSCP */
    {0xc0000103, 1, 0x100000000ull},          /* Intel guest: reserved: INVAL */
    {0xc0000103, 1, 7},
    {0xc0000103, 0, 0},
    {0xda0, 0, 0},                            /* XSS without XSAVES: INVAL */
    {0xc0010015, 0, 0},                       /* HWCR */
    {0xc0010015, 1, 1ull << 18},
    {0xc0010015, 1, 1ull << 1},               /* INVAL */
    {0xc0010114, 0, 0},                       /* VM_CR on Intel: UNKNOWN */
    {0x4b564d05, 0, 0},                       /* POLL_CONTROL (no enforcement) */
    {0x4b564d05, 1, 2},                       /* reserved: INVAL */
    {0x4b564d03, 1, 0x1002},                  /* STEAL_TIME misaligned: INVAL */
    {0x802, 0, 0},                            /* x2APIC ID in xAPIC mode: INVAL */
    {0x480, 0, 0},                            /* VMX_BASIC without VMX: INVAL */
    {0x1d9, 1, 0},                            /* DEBUGCTL 0 */
    {0x6e0, 0, 0},                            /* TSC_DEADLINE: 0 */
    {0x8b, 0, 0},                             /* UCODE_REV */
    {0x9e, 0, 0},                             /* SMBASE: guest INVAL */
    {0, 0xff, 0},
};

static void die(const char *what)
{
    fprintf(stderr, "kvm-msr-battery: %s: %s\n", what, strerror(errno));
    exit(1);
}

static const char *reason_name(uint32_t r)
{
    return r == KVM_MSR_EXIT_REASON_INVAL ? "INVAL" : r == KVM_MSR_EXIT_REASON_UNKNOWN ? "UNKNOWN"
         : r == KVM_MSR_EXIT_REASON_FILTER ? "FILTER" : "?";
}

int main(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        die("open /dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        die("KVM_CREATE_VM");
    if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
        die("KVM_CREATE_IRQCHIP");
    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        die("mmap");
    memcpy(mem + CODE_GPA, battery_guest_start, (size_t)(battery_guest_end - battery_guest_start));
    memcpy(mem + TABLE_GPA, battery, sizeof(battery));
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        die("KVM_SET_USER_MEMORY_REGION");
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR, .args[0] = 7};
    if (ioctl(vm, KVM_ENABLE_CAP, &cap) < 0)
        die("KVM_ENABLE_CAP");
    static uint8_t deny[8];
    struct kvm_msr_filter filter = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    filter.ranges[0] = (struct kvm_msr_filter_range){
        .flags = KVM_MSR_FILTER_READ, .nmsrs = 8, .base = 0x10, .bitmap = deny};
    filter.ranges[1] = (struct kvm_msr_filter_range){
        .flags = KVM_MSR_FILTER_WRITE, .nmsrs = 1, .base = 0xc0000082, .bitmap = deny};
    if (ioctl(vm, KVM_X86_SET_MSR_FILTER, &filter) < 0)
        die("KVM_X86_SET_MSR_FILTER");
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0)
        die("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        die("mmap vcpu");

    /* fixed CPUID: GenuineIntel, long mode + NX + SYSCALL + RDTSCP, MAXPHYADDR 39 */
    struct {
        struct kvm_cpuid2 c;
        struct kvm_cpuid_entry2 e[4];
    } cpuid = {.c.nent = 4};
    cpuid.e[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0x80000008, .ebx = 0x756e6547,
                                           .ecx = 0x6c65746e, .edx = 0x49656e69};
    cpuid.e[1] = (struct kvm_cpuid_entry2){.function = 1, .eax = 0x806c1, .edx = (1u << 5) | (1u << 6)};
    cpuid.e[2] = (struct kvm_cpuid_entry2){.function = 0x80000001,
                                           .edx = (1u << 11) | (1u << 20) | (1u << 27) | (1u << 29)};
    cpuid.e[3] = (struct kvm_cpuid_entry2){.function = 0x80000008, .eax = 0x3027};
    if (ioctl(vcpu, KVM_SET_CPUID2, &cpuid) < 0)
        die("KVM_SET_CPUID2");

    uint64_t *pml4 = (uint64_t *)(mem + PML4_GPA), *pdpt = (uint64_t *)(mem + PDPT_GPA),
             *pd = (uint64_t *)(mem + PD_GPA);
    pml4[0] = PDPT_GPA | 3;
    pdpt[0] = PD_GPA | 3;
    pd[0] = 0x83;
    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        die("KVM_GET_SREGS");
    struct kvm_segment code = {.limit = 0xffffffff, .selector = 8, .type = 0xb, .present = 1,
                               .s = 1, .l = 1, .g = 1};
    struct kvm_segment data = code;
    data.type = 3;
    data.selector = 0x10;
    data.l = 0;
    data.db = 1;
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.cr3 = PML4_GPA;
    sregs.cr4 = 1u << 5;
    sregs.cr0 = 1u | (1u << 4) | (1u << 31);
    sregs.efer = (1u << 8) | (1u << 10);
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        die("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = CODE_GPA, .rsp = MEM_SIZE - 16, .rflags = 2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        die("KVM_SET_REGS");

    const char *how[sizeof(battery) / sizeof(battery[0])] = {0};
    unsigned cur = 0;
    for (int exits = 0; exits < 1000; exits++) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0)
            die("KVM_RUN");
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0x10)
            break;
        if (run->exit_reason != KVM_EXIT_X86_RDMSR && run->exit_reason != KVM_EXIT_X86_WRMSR) {
            printf("unexpected exit %u\n", run->exit_reason);
            return 1;
        }
        /* find the table entry being executed: the guest's RSI points at it */
        struct kvm_regs r;
        ioctl(vcpu, KVM_GET_REGS, &r);
        cur = (unsigned)((r.rsi - TABLE_GPA) / sizeof(struct op));
        if (cur < sizeof(battery) / sizeof(battery[0]))
            how[cur] = reason_name(run->msr.reason);
        run->msr.error = 0;
        run->msr.data = 0xa5a5a5a5a5a5a5a5ull;
    }
    const struct op *res = (const struct op *)(mem + TABLE_GPA);
    for (unsigned i = 0; battery[i].write != 0xff; i++) {
        bool deterministic = battery[i].index != 0x10 && battery[i].index != 0x8b;
        printf("%-3u %s 0x%08x %-8s", i, battery[i].write ? "WRMSR" : "RDMSR", battery[i].index,
               how[i] ? how[i] : "kernel");
        if (!battery[i].write && deterministic)
            printf(" -> 0x%llx", (unsigned long long)res[i].value);
        printf("\n");
    }
    return 0;
}
