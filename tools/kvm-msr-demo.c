/* kvm-msr-demo: a small, ordinary KVM program (it only uses /dev/kvm ioctls)
 * that shows the MSR path: a filter that denies a read of FS_BASE, MSR
 * accesses deflected to user space (KVM_CAP_X86_USER_SPACE_MSR) and answered
 * here, and an MSR that KVM emulates in the kernel.
 *
 * It is the README's "main job": run it under `softkvm run` and on a real
 * /dev/kvm and the transcript must be the same. It knows nothing of softkvm.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE 0x200000ul /* 2 MiB at gpa 0, identity-mapped by one 2M page */
#define PML4_GPA 0x1000ul
#define PDPT_GPA 0x2000ul
#define PD_GPA 0x3000ul
#define CODE_GPA 0x10000ul
#define PORT_CONSOLE 0xe9
#define PORT_REPORT 0x10

#define MSR_FS_BASE 0xc0000100u
#define MSR_EFER 0xc0000080u
#define MSR_MADE_UP 0x12345678u /* KVM emulates nothing here: reason UNKNOWN */

/* Guest code, 64-bit, position independent. */
extern const uint8_t demo_guest_start[], demo_guest_end[];
__asm__(".pushsection .rodata\n"
        ".globl demo_guest_start\n"
        ".globl demo_guest_end\n"
        "demo_guest_start:\n"
        "  lea msg(%rip), %rsi\n"
        "1: lodsb\n"
        "  test %al, %al\n"
        "  jz 2f\n"
        "  mov $0xe9, %dx\n"
        "  out %al, %dx\n"
        "  jmp 1b\n"
        "2:\n"
        /* a read the filter denies: deflected to user space, reason FILTER */
        "  mov $0xc0000100, %ecx\n"
        "  rdmsr\n"
        "  mov %edx, %ebx\n"
        "  mov $0x10, %dx\n"
        "  out %eax, %dx\n"
        "  mov %ebx, %eax\n"
        "  out %eax, %dx\n"
        /* a write to an MSR KVM does not know: deflected, reason UNKNOWN */
        "  mov $0x12345678, %ecx\n"
        "  mov $42, %eax\n"
        "  xor %edx, %edx\n"
        "  wrmsr\n"
        /* an MSR KVM emulates in the kernel: no exit */
        "  mov $0xc0000080, %ecx\n"
        "  rdmsr\n"
        "  mov $0x10, %dx\n"
        "  out %eax, %dx\n"
        "  hlt\n"
        "msg: .asciz \"hello from the guest\\n\"\n"
        "demo_guest_end:\n"
        ".popsection\n");

static void die(const char *what)
{
    fprintf(stderr, "kvm-msr-demo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static const char *msr_reason(uint32_t r)
{
    switch (r) {
    case KVM_MSR_EXIT_REASON_INVAL: return "INVAL";
    case KVM_MSR_EXIT_REASON_UNKNOWN: return "UNKNOWN";
    case KVM_MSR_EXIT_REASON_FILTER: return "FILTER";
    default: return "?";
    }
}

static void setup_long_mode(int vcpu, uint8_t *mem)
{
    uint64_t *pml4 = (uint64_t *)(mem + PML4_GPA);
    uint64_t *pdpt = (uint64_t *)(mem + PDPT_GPA);
    uint64_t *pd = (uint64_t *)(mem + PD_GPA);
    pml4[0] = PDPT_GPA | 0x3;   /* present, writable */
    pdpt[0] = PD_GPA | 0x3;
    pd[0] = 0x0 | 0x83;         /* present, writable, 2 MiB page */

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        die("KVM_GET_SREGS");
    struct kvm_segment code = {.base = 0, .limit = 0xffffffff, .selector = 0x8, .type = 0xb,
                               .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1};
    struct kvm_segment data = code;
    data.type = 0x3;
    data.selector = 0x10;
    data.l = 0;
    data.db = 1;
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.cr3 = PML4_GPA;
    sregs.cr4 = 1u << 5;                            /* PAE */
    sregs.cr0 = 1u | (1u << 4) | (1u << 31);        /* PE, ET, PG */
    sregs.efer = (1u << 8) | (1u << 10);            /* LME, LMA */
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        die("KVM_SET_SREGS");

    struct kvm_regs regs = {0};
    regs.rip = CODE_GPA;
    regs.rsp = MEM_SIZE - 16;
    regs.rflags = 0x2;
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        die("KVM_SET_REGS");
}

int main(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        die("open /dev/kvm");
    printf("KVM_GET_API_VERSION = %d\n", ioctl(kvm, KVM_GET_API_VERSION, 0));
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        die("KVM_CREATE_VM");

    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        die("mmap");
    memcpy(mem + CODE_GPA, demo_guest_start, (size_t)(demo_guest_end - demo_guest_start));
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        die("KVM_SET_USER_MEMORY_REGION");

    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
                                 .args[0] = KVM_MSR_EXIT_REASON_FILTER |
                                            KVM_MSR_EXIT_REASON_UNKNOWN};
    if (ioctl(vm, KVM_ENABLE_CAP, &cap) < 0)
        die("KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR)");

    /* Deny guest reads of FS_BASE: the one bit of the range's bitmap is clear. */
    uint8_t deny = 0;
    struct kvm_msr_filter filter = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    filter.ranges[0] = (struct kvm_msr_filter_range){
        .flags = KVM_MSR_FILTER_READ, .nmsrs = 1, .base = MSR_FS_BASE, .bitmap = &deny};
    if (ioctl(vm, KVM_X86_SET_MSR_FILTER, &filter) < 0)
        die("KVM_X86_SET_MSR_FILTER");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0)
        die("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run))
        die("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        die("mmap vcpu");

    /* The guest needs CPUID for its long-mode MSRs: take what KVM supports. */
    struct {
        struct kvm_cpuid2 c;
        struct kvm_cpuid_entry2 e[256];
    } cpuid = {.c.nent = 256};
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0)
        die("KVM_GET_SUPPORTED_CPUID");
    if (ioctl(vcpu, KVM_SET_CPUID2, &cpuid) < 0)
        die("KVM_SET_CPUID2");

    setup_long_mode(vcpu, mem);

    for (int exits = 0; exits < 1000; exits++) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0)
            die("KVM_RUN");
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            if (run->io.port == PORT_CONSOLE && run->io.size == 1) {
                putchar(data[0]);
            } else if (run->io.port == PORT_REPORT && run->io.size == 4) {
                uint32_t v;
                memcpy(&v, data, 4);
                printf("guest reports 0x%08x\n", v);
            } else {
                printf("unexpected I/O port 0x%x size %u\n", run->io.port, run->io.size);
                return 1;
            }
            break;
        }
        case KVM_EXIT_X86_RDMSR:
            printf("exit X86_RDMSR index=0x%x reason=%s: answering 0x1122334455667788\n",
                   run->msr.index, msr_reason(run->msr.reason));
            run->msr.error = 0;
            run->msr.data = 0x1122334455667788ull;
            break;
        case KVM_EXIT_X86_WRMSR:
            printf("exit X86_WRMSR index=0x%x reason=%s data=0x%llx: accepting\n",
                   run->msr.index, msr_reason(run->msr.reason), (unsigned long long)run->msr.data);
            run->msr.error = 0;
            break;
        case KVM_EXIT_HLT:
            printf("exit HLT: done\n");
            return 0;
        case KVM_EXIT_INTERNAL_ERROR:
            printf("exit INTERNAL_ERROR suberror=%u\n", run->internal.suberror);
            return 1;
        default:
            printf("unexpected exit reason %u\n", run->exit_reason);
            return 1;
        }
    }
    printf("too many exits\n");
    return 1;
}
