/* The ioctls and capabilities QEMU 7.2 needs beyond the selftests, each checked against
 * the Linux 6.12 source it mirrors: the KVM_CHECK_EXTENSION answers for what softkvm
 * implements, KVM_SET_GSI_ROUTING's KVM_MAX_IRQ_ROUTES, KVM_X86_SETUP_MCE/SET_MCE
 * (x86.c kvm_vcpu_ioctl_x86_setup_mce/_set_mce), KVM_SET_VAPIC_ADDR and
 * KVM_TPR_ACCESS_REPORTING (lapic.c kvm_lapic_sync_to/from_vapic, report_tpr_access),
 * KVM_KVMCLOCK_CTRL (x86.c kvm_set_guest_paused). The guest is 32-bit protected mode
 * without paging, run in-process through abi_ioctl. */
#include <check.h>
#include "tests/check_main.h"
#include "tests/abi/abi_test_guest.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "abi/abi.h"
#include "abi/abi_internal.h"

/* Guest code (bytes only, copied to CODE_GPA). Each part ends with an OUT to port 0x10
 * so the test regains control; vmg_mc is the #MC handler (vector 18). */
__asm__(".pushsection .rodata.vmg, \"a\"\n"
    ".code32\n"
    "vmg_start:\n"
    "    movl $0x50, 0xfee00080\n"      /* TPR <- 0x50 by MMIO (a TPR write access) */
    "vmg_tpr_read:\n"
    "    movl 0xfee00080, %eax\n"       /* read it back (a TPR read access) */
    "    out %al, $0x10\n"
    "    movb $0x30, 0x8000\n"          /* write the vAPIC page's TPR byte */
    "    out %al, $0x10\n"
    "    mov %cr4, %eax\n"              /* CR4.MCE = 1, then wait for the #MC */
    "    or $0x40, %eax\n"
    "    mov %eax, %cr4\n"
    "    out %al, $0x10\n"
    "    hlt\n"
    "vmg_mc:\n"
    "    mov $18, %al\n"
    "    out %al, $0x11\n"
    "    hlt\n"
    "vmg_end:\n"
    ".code64\n"
    ".popsection\n");
extern const uint8_t vmg_start[], vmg_tpr_read[], vmg_mc[], vmg_end[];

/* BSP side of an INIT-SIPI start of vCPU 1 (xAPIC ICR), then wait for the AP's flag. */
__asm__(".pushsection .rodata.vmg, \"a\"\n"
    ".code32\n"
    "smp_bsp:\n"
    "    movl $0x01000000, 0xfee00310\n"
    "    movl $0x0000c500, 0xfee00300\n" /* INIT, level assert */
    "    movl $0x01000000, 0xfee00310\n"
    "    movl $0x00004605, 0xfee00300\n" /* SIPI, vector 5: AP starts at 0x5000 */
    "1:  cmpb $1, 0x6000\n"
    "    jne 1b\n"
    "    out %al, $0x10\n"
    "    hlt\n"
    "smp_bsp_end:\n"
    ".code64\n"
    ".popsection\n");
extern const uint8_t smp_bsp[], smp_bsp_end[];

/* User-space irqchip: the window opens one instruction after STI (its shadow). */
__asm__(".pushsection .rodata.vmg, \"a\"\n"
    ".code32\n"
    "win_start:\n"
    "    cli\n"
    "    out %al, $0x10\n"
    "    sti\n"
    "    nop\n"
    "win_open:\n"
    "    nop\n"
    "    jmp win_open\n"
    "win_isr:\n"
    "    out %al, $0x12\n"
    "    hlt\n"
    "win_end:\n"
    ".code64\n"
    ".popsection\n");
extern const uint8_t win_start[], win_open[], win_isr[], win_end[];

#define MEM_SIZE (1u << 20)
#define CODE_GPA 0x1000u
#define GDT_GPA 0x2000u
#define IDT_GPA 0x3000u
#define VAPIC_GPA 0x8000u
#define CLOCK_GPA 0x9000u

#define MSR_MCG_CAP 0x179
#define MSR_MCG_CTL 0x17b
#define MSR_MC0_CTL 0x400
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

struct vmctx {
    struct abi_process *p;
    int kvm, vm, vcpu;
    struct kvm_run *run;
    uint8_t *mem;
};

static long io(struct vmctx *c, int fd, unsigned long req, const void *arg)
{
    long r = abi_ioctl(c->p, fd, req, (unsigned long)arg);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static uint64_t gpa_of(const uint8_t *sym) { return CODE_GPA + (uint64_t)(sym - vmg_start); }

static void vm_open(struct vmctx *c, const char *vendor)
{
    setenv("SOFTKVM_VENDOR", vendor, 1);
    c->p = abi_process_create();
    ck_assert_ptr_nonnull(c->p);
    c->kvm = abi_open_dev_kvm(c->p, O_RDWR);
    ck_assert_int_ge(c->kvm, 0);
    c->vm = (int)io(c, c->kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(c->vm, 0);
    c->mem = NULL;
    c->vcpu = -1;
}

/* Memory, one vCPU in 32-bit flat protected mode at vmg_start. */
static void vm_guest(struct vmctx *c, bool irqchip)
{
    if (irqchip)
        ck_assert_int_eq(io(c, c->vm, KVM_CREATE_IRQCHIP, 0), 0);
    c->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(c->mem, MAP_FAILED);
    memcpy(c->mem + CODE_GPA, vmg_start, (size_t)(vmg_end - vmg_start));
    uint64_t *gdt = (uint64_t *)(c->mem + GDT_GPA);
    gdt[1] = 0x00cf9a000000ffffull; /* 32-bit code */
    gdt[2] = 0x00cf92000000ffffull; /* data */
    uint64_t h = gpa_of(vmg_mc);    /* 32-bit interrupt gate for #MC */
    uint64_t *idt = (uint64_t *)(c->mem + IDT_GPA);
    idt[18] = (h & 0xffff) | (8ull << 16) | (0x8e00ull << 32) | ((h >> 16) << 48);
    struct kvm_userspace_memory_region r = {.slot = 0, .memory_size = MEM_SIZE,
                                            .userspace_addr = (uintptr_t)c->mem};
    ck_assert_int_eq(io(c, c->vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    c->vcpu = (int)io(c, c->vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(c->vcpu, 0);
    long sz = io(c, c->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    c->run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, c->vcpu, 0);
    ck_assert_ptr_ne(c->run, MAP_FAILED);
    struct kvm_sregs s;
    ck_assert_int_eq(io(c, c->vcpu, KVM_GET_SREGS, &s), 0);
    abi_test_flat_sregs(&s, false, GDT_GPA, IDT_GPA, 0x7ff, 0);
    ck_assert_int_eq(io(c, c->vcpu, KVM_SET_SREGS, &s), 0);
    struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2, .rsp = 0x7000};
    ck_assert_int_eq(io(c, c->vcpu, KVM_SET_REGS, &regs), 0);
}

static void vm_close(struct vmctx *c)
{
    abi_test_close_all(c->p);
    if (c->mem)
        munmap(c->mem, MEM_SIZE);
    unsetenv("SOFTKVM_VENDOR");
}

static void run_to_port(struct vmctx *c, uint16_t port)
{
    ck_assert_int_eq(io(c, c->vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c->run->exit_reason, KVM_EXIT_IO);
    ck_assert_uint_eq(c->run->io.port, port);
}

static uint64_t get_msr(struct vmctx *c, uint32_t index)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = index};
    ck_assert_int_eq(io(c, c->vcpu, KVM_GET_MSRS, &m), 1);
    return m.e.data;
}

static long set_msr(struct vmctx *c, uint32_t index, uint64_t value)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = index, .e.data = value};
    return io(c, c->vcpu, KVM_SET_MSRS, &m);
}

/* kvm_vm_ioctl_check_extension(_generic) values for what softkvm implements */
START_TEST(caps_answer_what_works)
{
    struct vmctx c;
    vm_open(&c, "amd");
    const struct { long cap, value; } want[] = {
        {KVM_CAP_IRQ_ROUTING, 4096}, {KVM_CAP_SIGNAL_MSI, 1}, {KVM_CAP_IRQ_INJECT_STATUS, 1},
        {KVM_CAP_SREGS2, 1}, {KVM_CAP_SYS_ATTRIBUTES, 1}, {KVM_CAP_MCE, 32},
        {KVM_CAP_VAPIC, 1}, {KVM_CAP_KVMCLOCK_CTRL, 1}, {KVM_CAP_USER_NMI, 1},
        {KVM_CAP_BINARY_STATS_FD, 1}, {KVM_CAP_CHECK_EXTENSION_VM, 1},
        {KVM_CAP_SET_GUEST_DEBUG2, 0x1f0003}, /* x86 KVM_GUESTDBG_VALID_MASK */
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ck_assert_int_eq(io(&c, c.kvm, KVM_CHECK_EXTENSION, (void *)want[i].cap), want[i].value);
        ck_assert_int_eq(io(&c, c.vm, KVM_CHECK_EXTENSION, (void *)want[i].cap), want[i].value);
    }
    /* SYS_ATTRIBUTES: the one /dev/kvm attribute exists */
    uint64_t xcr0 = 0;
    struct kvm_device_attr a = {.group = 0, .attr = KVM_X86_XCOMP_GUEST_SUPP,
                                .addr = (uintptr_t)&xcr0};
    ck_assert_int_eq(io(&c, c.kvm, KVM_HAS_DEVICE_ATTR, &a), 0);
    ck_assert_int_eq(io(&c, c.kvm, KVM_GET_DEVICE_ATTR, &a), 0);
    ck_assert_uint_eq(xcr0 & 3, 3);
    vm_close(&c);
}
END_TEST

START_TEST(gsi_routing_max_routes)
{
    struct vmctx c;
    vm_open(&c, "amd");
    ck_assert_int_eq(io(&c, c.vm, KVM_CREATE_IRQCHIP, 0), 0);
    size_t n = 4097;
    struct kvm_irq_routing *r = calloc(1, sizeof *r + n * sizeof r->entries[0]);
    for (size_t i = 0; i < n; i++) {
        r->entries[i].gsi = (uint32_t)i; /* a GSI may map to one pin per irqchip only */
        r->entries[i].type = KVM_IRQ_ROUTING_IRQCHIP;
        r->entries[i].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        r->entries[i].u.irqchip.pin = (uint32_t)(i % 24);
    }
    r->nr = 4096; /* KVM_MAX_IRQ_ROUTES is allowed (kvm_main.c: nr > KVM_MAX_IRQ_ROUTES fails) */
    ck_assert_int_eq(io(&c, c.vm, KVM_SET_GSI_ROUTING, r), 0);
    r->nr = 4097;
    ck_assert_int_eq(io(&c, c.vm, KVM_SET_GSI_ROUTING, r), -1);
    ck_assert_int_eq(errno, EINVAL);
    free(r);
    vm_close(&c);
}
END_TEST

static void mce_setup_rules(const char *vendor, bool intel)
{
    struct vmctx c;
    vm_open(&c, vendor);
    vm_guest(&c, true);
    uint64_t sup = 0;
    ck_assert_int_eq(io(&c, c.kvm, KVM_X86_GET_MCE_CAP_SUPPORTED, &sup), 0);
    /* x86.c: MCG_CTL_P | MCG_SER_P; vmx.c adds MCG_LMCE_P | MCG_CMCI_P; svm.c nothing */
    ck_assert_uint_eq(sup, intel ? 0x9000500ull : 0x1000100ull);
    uint64_t cap = 0;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_X86_SETUP_MCE, &cap), -1); /* no banks */
    ck_assert_int_eq(errno, EINVAL);
    cap = 33;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_X86_SETUP_MCE, &cap), -1); /* > KVM_MAX_MCE_BANKS */
    ck_assert_int_eq(errno, EINVAL);
    cap = 10 | (1ull << 10); /* MCG_CMCI_P */
    ck_assert_int_eq(io(&c, c.vcpu, KVM_X86_SETUP_MCE, &cap), intel ? 0 : -1);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_X86_SETUP_MCE, (void *)8), -1);
    ck_assert_int_eq(errno, EFAULT);
    cap = 10 | (1ull << 8) | (1ull << 24); /* what QEMU asks: 10 banks, CTL_P, SER_P */
    ck_assert_int_eq(io(&c, c.vcpu, KVM_X86_SETUP_MCE, &cap), 0);
    ck_assert_uint_eq(get_msr(&c, MSR_MCG_CAP), cap);
    ck_assert_uint_eq(get_msr(&c, MSR_MCG_CTL), ~0ull);     /* init to all ones */
    ck_assert_uint_eq(get_msr(&c, MSR_MC0_CTL + 4 * 9), ~0ull);
    ck_assert_int_eq(set_msr(&c, MSR_MCG_CTL, ~0ull), 1);    /* QEMU's write now succeeds */
    ck_assert_int_eq(set_msr(&c, MSR_MC0_CTL + 4 * 10, 0), 0); /* bank 10 does not exist */
    vm_close(&c);
}

START_TEST(mce_setup_amd) { mce_setup_rules("amd", false); }
END_TEST
START_TEST(mce_setup_intel) { mce_setup_rules("intel", true); }
END_TEST

START_TEST(mce_inject)
{
    struct vmctx c;
    vm_open(&c, "amd");
    vm_guest(&c, true);
    uint64_t cap = 10 | (1ull << 8);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_X86_SETUP_MCE, &cap), 0);
    const uint64_t VAL = 1ull << 63, OVER = 1ull << 62, UC = 1ull << 61, S = 1ull << 56;
    struct kvm_x86_mce m = {.status = VAL | 0x17, .addr = 0x1234, .misc = 0x56, .bank = 10};
    ck_assert_int_eq(io(&c, c.vcpu, KVM_X86_SET_MCE, &m), -1); /* bank >= banks */
    ck_assert_int_eq(errno, EINVAL);
    m.bank = 1;
    m.status = 0x17;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_X86_SET_MCE, &m), -1); /* !MCI_STATUS_VAL */
    ck_assert_int_eq(errno, EINVAL);
    /* corrected error: logged in the bank; a second one sets OVER */
    m.status = VAL | 0x17;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_X86_SET_MCE, &m), 0);
    ck_assert_uint_eq(get_msr(&c, MSR_MC0_CTL + 4 + 1), VAL | 0x17);
    ck_assert_uint_eq(get_msr(&c, MSR_MC0_CTL + 4 + 2), 0x1234);
    ck_assert_uint_eq(get_msr(&c, MSR_MC0_CTL + 4 + 3), 0x56);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_X86_SET_MCE, &m), 0);
    ck_assert_uint_eq(get_msr(&c, MSR_MC0_CTL + 4 + 1), VAL | OVER | 0x17);
    /* run the guest to the point where it has set CR4.MCE, then inject an uncorrected
     * error: the guest's #MC handler runs */
    run_to_port(&c, 0x10); /* after the TPR accesses */
    run_to_port(&c, 0x10); /* after the vAPIC byte */
    run_to_port(&c, 0x10); /* CR4.MCE set */
    m.bank = 2;
    m.status = VAL | UC | S | 0x1;
    m.mcg_status = 0x5; /* RIPV | MCIP */
    ck_assert_int_eq(io(&c, c.vcpu, KVM_X86_SET_MCE, &m), 0);
    ck_assert_uint_eq(get_msr(&c, MSR_MC0_CTL + 8 + 1), m.status);
    ck_assert_uint_eq(get_msr(&c, 0x17a /* MCG_STATUS */), 0x5);
    run_to_port(&c, 0x11);
    ck_assert_uint_eq(((uint8_t *)c.run)[c.run->io.data_offset], 18);
    /* a second uncorrected error while MCG_STATUS.MCIP is set: triple fault */
    ck_assert_int_eq(io(&c, c.vcpu, KVM_X86_SET_MCE, &m), 0);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_SHUTDOWN);
    vm_close(&c);
}
END_TEST

START_TEST(vapic_addr_and_sync)
{
    struct vmctx c;
    vm_open(&c, "amd");
    vm_guest(&c, false);
    struct kvm_vapic_addr va = {.vapic_addr = VAPIC_GPA};
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_VAPIC_ADDR, &va), -1); /* no in-kernel LAPIC */
    ck_assert_int_eq(errno, EINVAL);
    vm_close(&c);

    vm_open(&c, "amd");
    vm_guest(&c, true);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_VAPIC_ADDR, (void *)8), -1);
    ck_assert_int_eq(errno, EFAULT);
    va.vapic_addr = 0x40000000; /* no memslot there */
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_VAPIC_ADDR, &va), -1);
    ck_assert_int_eq(errno, EINVAL);
    va.vapic_addr = VAPIC_GPA;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_VAPIC_ADDR, &va), 0);
    /* the guest wrote TPR = 0x50: the page shows it (sync_to_vapic before entry) */
    run_to_port(&c, 0x10);
    ck_assert_uint_eq(((uint8_t *)c.run)[c.run->io.data_offset], 0x50);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_RUN, 0), 0); /* completes the OUT; sync_to ran */
    /* the guest stored 0x30 in the page: TPR follows at the exit (sync_from_vapic) */
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_IO);
    struct kvm_lapic_state ls;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_LAPIC, &ls), 0);
    ck_assert_uint_eq((uint8_t)ls.regs[0x80], 0x30);
    ck_assert_uint_eq(c.mem[VAPIC_GPA], 0x30);
    /* 0 turns it off: the page is no longer written */
    va.vapic_addr = 0;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_VAPIC_ADDR, &va), 0);
    c.mem[VAPIC_GPA] = 0x77;
    run_to_port(&c, 0x10);
    ck_assert_uint_eq(c.mem[VAPIC_GPA], 0x77);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_LAPIC, &ls), 0);
    ck_assert_uint_eq((uint8_t)ls.regs[0x80], 0x30);
    vm_close(&c);
}
END_TEST

START_TEST(tpr_access_reporting)
{
    struct vmctx c;
    vm_open(&c, "amd");
    vm_guest(&c, true);
    struct kvm_tpr_access_ctl tac = {.enabled = 1, .flags = 1};
    ck_assert_int_eq(io(&c, c.vcpu, KVM_TPR_ACCESS_REPORTING, &tac), -1);
    ck_assert_int_eq(errno, EINVAL);
    tac.flags = 0;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_TPR_ACCESS_REPORTING, &tac), 0);
    /* the MMIO write to TASKPRI is done, then KVM_RUN reports it */
    ck_assert_int_eq(io(&c, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_TPR_ACCESS);
    ck_assert_uint_eq(c.run->tpr_access.rip, CODE_GPA);
    ck_assert_uint_eq(c.run->tpr_access.is_write, 1);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_TPR_ACCESS);
    ck_assert_uint_eq(c.run->tpr_access.rip, gpa_of(vmg_tpr_read));
    ck_assert_uint_eq(c.run->tpr_access.is_write, 0);
    run_to_port(&c, 0x10);
    ck_assert_uint_eq(((uint8_t *)c.run)[c.run->io.data_offset], 0x50);
    /* post_kvm_run_save: QEMU reads APIC_BASE and CR8 back from kvm_run after each exit
     * and puts them with its next full register write (kvmvapic does that mid-boot) */
    ck_assert_uint_eq(c.run->apic_base, 0xfee00900);
    ck_assert_uint_eq(c.run->cr8, 5);
    ck_assert_uint_eq(c.run->if_flag, 0);
    ck_assert_uint_eq(c.run->ready_for_interrupt_injection, 1); /* PIC in the kernel */
    vm_close(&c);
}
END_TEST

struct ap_run {
    struct vmctx *c;
    int vcpu;
    struct kvm_run *run;
    int eagain, done;
};

static void *ap_thread(void *arg)
{
    struct ap_run *a = arg;
    for (int i = 0; i < 1000 && !a->done; i++) {
        long r = io(a->c, a->vcpu, KVM_RUN, 0);
        if (r < 0 && errno == EAGAIN) {
            a->eagain++;
            continue;
        }
        if (r == 0 && a->run->exit_reason == KVM_EXIT_IO && a->run->io.port == 0x12)
            a->done = 1;
        else
            break;
    }
    return NULL;
}

/* x86.c kvm_arch_vcpu_create / kvm_arch_vcpu_ioctl_run, lapic.c kvm_apic_accept_events:
 * with an in-kernel irqchip an AP starts UNINITIALIZED, its KVM_RUN sleeps until INIT and
 * returns -EAGAIN, INIT parks it in INIT_RECEIVED, and the SIPI starts it in real mode at
 * vector << 12. */
START_TEST(init_sipi_starts_ap)
{
    struct vmctx c;
    vm_open(&c, "amd");
    vm_guest(&c, true);
    memcpy(c.mem + CODE_GPA, smp_bsp, (size_t)(smp_bsp_end - smp_bsp));
    static const uint8_t ap_code[] = {0xc6, 0x06, 0x00, 0x60, 0x01, /* mov byte [0x6000], 1 */
                                      0xe6, 0x12,                   /* out 0x12, al */
                                      0xf4};
    memcpy(c.mem + 0x5000, ap_code, sizeof ap_code);
    struct ap_run a = {.c = &c};
    a.vcpu = (int)io(&c, c.vm, KVM_CREATE_VCPU, (void *)1);
    ck_assert_int_ge(a.vcpu, 0);
    long sz = io(&c, c.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    a.run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, a.vcpu, 0);
    ck_assert_ptr_ne(a.run, MAP_FAILED);
    struct kvm_mp_state mp;
    ck_assert_int_eq(io(&c, a.vcpu, KVM_GET_MP_STATE, &mp), 0);
    ck_assert_uint_eq(mp.mp_state, KVM_MP_STATE_UNINITIALIZED);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_MP_STATE, &mp), 0);
    ck_assert_uint_eq(mp.mp_state, KVM_MP_STATE_RUNNABLE); /* the BSP */
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, ap_thread, &a), 0);
    run_to_port(&c, 0x10); /* the BSP saw the AP's flag */
    pthread_join(t, NULL);
    ck_assert_int_eq(a.done, 1);
    ck_assert_int_ge(a.eagain, 1);
    ck_assert_uint_eq(c.mem[0x6000], 1);
    struct kvm_sregs s;
    ck_assert_int_eq(io(&c, a.vcpu, KVM_GET_SREGS, &s), 0);
    ck_assert_uint_eq(s.cs.selector, 0x500);
    ck_assert_uint_eq(s.cs.base, 0x5000);
    ck_assert_uint_eq(s.cr0 & 1, 0); /* real mode */
    munmap(a.run, (size_t)sz);
    vm_close(&c);
}
END_TEST

/* x86.c vcpu_run: with run->request_interrupt_window and no in-kernel PIC, KVM_RUN exits
 * KVM_EXIT_IRQ_WINDOW_OPEN once kvm_vcpu_ready_for_interrupt_injection holds; user space
 * then injects with KVM_INTERRUPT. */
START_TEST(irq_window_exit)
{
    struct vmctx c;
    vm_open(&c, "amd");
    vm_guest(&c, false);
    memcpy(c.mem + CODE_GPA, win_start, (size_t)(win_end - win_start));
    uint64_t h = CODE_GPA + (uint64_t)(win_isr - win_start);
    uint64_t *idt = (uint64_t *)(c.mem + IDT_GPA);
    idt[0x20] = (h & 0xffff) | (8ull << 16) | (0x8e00ull << 32) | ((h >> 16) << 48);
    run_to_port(&c, 0x10);
    ck_assert_uint_eq(c.run->if_flag, 0);
    ck_assert_uint_eq(c.run->ready_for_interrupt_injection, 0);
    c.run->request_interrupt_window = 1;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_IRQ_WINDOW_OPEN);
    ck_assert_uint_eq(c.run->if_flag, 1);
    ck_assert_uint_eq(c.run->ready_for_interrupt_injection, 1);
    struct kvm_regs r;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_REGS, &r), 0);
    ck_assert_uint_eq(r.rip, CODE_GPA + (uint64_t)(win_open - win_start)); /* after STI's shadow */
    struct kvm_interrupt irq = {.irq = 0x20};
    ck_assert_int_eq(io(&c, c.vcpu, KVM_INTERRUPT, &irq), 0);
    c.run->request_interrupt_window = 0;
    run_to_port(&c, 0x12); /* the interrupt was taken */
    vm_close(&c);
}
END_TEST

START_TEST(kvmclock_ctrl)
{
    struct vmctx c;
    vm_open(&c, "amd");
    vm_guest(&c, true);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_KVMCLOCK_CTRL, 0), -1); /* kvmclock not enabled */
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(set_msr(&c, MSR_KVM_SYSTEM_TIME_NEW, CLOCK_GPA | 1), 1);
    uint8_t flags = c.mem[CLOCK_GPA + 29]; /* pvclock_vcpu_time_info.flags */
    ck_assert_uint_eq(flags & 2, 0);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_KVMCLOCK_CTRL, 0), 0);
    ck_assert_uint_eq(c.mem[CLOCK_GPA + 29] & 2, 2); /* PVCLOCK_GUEST_STOPPED */
    vm_close(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vmm_ioctls");
    TCase *tc = tcase_create("vmm");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, caps_answer_what_works);
    tcase_add_test(tc, gsi_routing_max_routes);
    tcase_add_test(tc, mce_setup_amd);
    tcase_add_test(tc, mce_setup_intel);
    tcase_add_test(tc, mce_inject);
    tcase_add_test(tc, vapic_addr_and_sync);
    tcase_add_test(tc, tpr_access_reporting);
    tcase_add_test(tc, kvmclock_ctrl);
    tcase_add_test(tc, init_sipi_starts_ap);
    tcase_add_test(tc, irq_window_exit);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
