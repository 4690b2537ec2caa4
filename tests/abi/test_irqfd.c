/* KVM_IRQFD through abi_ioctl (in-process, softkvm's own ABI).
 *
 * errnos: the checks of virt/kvm/eventfd.c kvm_irqfd / kvm_irqfd_assign /
 * kvm_irqfd_deassign in their order (EFAULT, EINVAL flags, EINVAL without an
 * irqchip, EBADF, EINVAL for a non-eventfd, EBUSY for an eventfd already
 * assigned, deassign of an unknown pair is 0).
 * line state: a resampling irqfd holds its GSI asserted (KVM_GET_IRQCHIP
 * IOAPIC irr) and DEASSIGN lowers it.
 * ack notifier: the irqchip hook resampling relies on fires at the 8259's
 * EOI command and auto-EOI INTA and at the IOAPIC EOI broadcast, with the GSI.
 * guest: a 64-bit guest HLTs while the host writes eventfds; it must receive
 * the interrupt through an IOAPIC edge pin, then through an MSI route that
 * KVM_SET_GSI_ROUTING put on the same GSI afterwards, then through a level
 * pin with a resamplefd: the line stays asserted (Remote IRR, IRR) and the
 * resamplefd quiet until the guest's EOI, then both drop and the resamplefd
 * is signalled, and a signal taken while the interrupt is in service adds no
 * interrupt. The guest's whole transcript is compared, so an extra or a
 * missing interrupt fails. */
#include <check.h>
#include "tests/check_main.h"
#include "tests/abi/abi_test_guest.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "abi/abi.h"
#include "abi/abi_internal.h"
#include "abi/irqchip_internal.h"

/* Guest code: bytes only (never executed on the host), copied to gpa 0x1000. */
__asm__(".pushsection .rodata.irqfdg, \"a\"\n"
    ".code64\n"
    ".macro FDG_REP v\n"
    "    mov \\v, %eax\n"
    "    mov $0xe9, %dx\n"
    "    out %eax, %dx\n"
    ".endm\n"
    "fdg_start:\n"
    "    mov $0x9000, %esp\n"
    "    mov $0xfee00000, %esi\n"
    "    mov $0xfec00000, %edi\n"
    "    movl $0x1ff, 0xf0(%rsi)\n"      /* SVR: APIC software-enabled */
    "    movl $0x33, (%rdi)\n"           /* pin 17: edge, vector 0x50, dest 0 */
    "    movl $0, 0x10(%rdi)\n"
    "    movl $0x32, (%rdi)\n"
    "    movl $0x50, 0x10(%rdi)\n"
    "    movl $0x35, (%rdi)\n"           /* pin 18: level, vector 0x51, dest 0 */
    "    movl $0, 0x10(%rdi)\n"
    "    movl $0x34, (%rdi)\n"
    "    movl $0x8051, 0x10(%rdi)\n"
    "    FDG_REP $0x1001\n"              /* host: signal the IOAPIC irqfd */
    "    sti; hlt; cli\n"
    "    FDG_REP $0x1002\n"              /* host: route the GSI to an MSI, signal */
    "    sti; hlt; cli\n"
    "    FDG_REP $0x1003\n"              /* host: signal the resampling irqfd */
    "    sti; hlt; cli\n"
    "    FDG_REP $0x1004\n"              /* host: signal it again */
    "    sti; hlt; cli\n"
    "    FDG_REP $0x1005\n"              /* interrupts on: a late re-delivery shows here */
    "    sti; nop; nop; nop; cli\n"
    "    FDG_REP $0x1006\n"
    "    mov $0xea, %dx\n"
    "    out %eax, %dx\n"
    "1:  hlt\n"
    "    jmp 1b\n"
    "fdg_h50: push %rax; push %rdx\n"
    "    FDG_REP $0x50\n"
    "    movl $0, 0xb0(%rsi)\n"
    "    pop %rdx; pop %rax\n"
    "    iretq\n"
    "fdg_h52: push %rax; push %rdx\n"
    "    FDG_REP $0x52\n"
    "    movl $0, 0xb0(%rsi)\n"
    "    pop %rdx; pop %rax\n"
    "    iretq\n"
    "fdg_h51: push %rax; push %rdx\n"
    "    FDG_REP $0x51\n"
    "    FDG_REP $0x2000\n"              /* host: line still asserted, resamplefd quiet */
    "    movl $0, 0xb0(%rsi)\n"
    "    FDG_REP $0x2001\n"              /* host: resamplefd signalled, line low */
    "    pop %rdx; pop %rax\n"
    "    iretq\n"
    "fdg_bad:\n"
    "    FDG_REP $0xdead\n"
    "    mov $0xea, %dx\n"
    "    out %eax, %dx\n"
    "    hlt\n"
    "fdg_end:\n"
    ".purgem FDG_REP\n"
    ".popsection\n");
extern const uint8_t fdg_start[], fdg_end[], fdg_h50[], fdg_h51[], fdg_h52[], fdg_bad[];

#define MEM_SIZE (1u << 20)
#define CODE_GPA 0x1000u
#define GDT_GPA 0x2000u
#define IDT_GPA 0x3000u
#define PT_GPA 0x10000u
#define GSI_EDGE 17
#define GSI_LEVEL 18

struct vmctx {
    struct abi_process *p;
    int kvm, vm, vcpu;
    struct kvm_run *run;
    uint8_t *mem;
};

static long io(struct vmctx *c, int fd, unsigned long req, const void *arg)
{
    return abi_ioctl(c->p, fd, req, (unsigned long)arg);
}

static long irqfd(struct vmctx *c, int fd, uint32_t gsi, uint32_t flags, int resamplefd)
{
    struct kvm_irqfd a = {.fd = (uint32_t)fd, .gsi = gsi, .flags = flags,
                          .resamplefd = (uint32_t)resamplefd};
    return io(c, c->vm, KVM_IRQFD, &a);
}

static void vm_open(struct vmctx *c, bool irqchip)
{
    memset(c, 0, sizeof *c);
    c->p = abi_process_create();
    ck_assert_ptr_nonnull(c->p);
    c->kvm = abi_open_dev_kvm(c->p, O_RDWR);
    ck_assert_int_ge(c->kvm, 0);
    c->vm = (int)io(c, c->kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(c->vm, 0);
    if (irqchip)
        ck_assert_int_eq(io(c, c->vm, KVM_CREATE_IRQCHIP, 0), 0);
}

static void vm_close(struct vmctx *c)
{
    abi_test_close_all(c->p);
    if (c->mem)
        munmap(c->mem, MEM_SIZE);
}

/* Open fds of the process: VM teardown must close our dups, epoll and wake fds. */
static unsigned open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    unsigned n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int new_eventfd(void)
{
    int fd = eventfd(0, EFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    return fd;
}

static void signal_fd(int fd)
{
    uint64_t one = 1;
    ck_assert_int_eq(write(fd, &one, sizeof one), sizeof one);
}

static bool readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/* Wait until the irqfd thread has consumed the counter (it reads it before
 * injecting), so the injection has happened when this returns true. */
static bool consumed(int fd)
{
    for (int i = 0; i < 2000; i++) {
        if (!readable(fd, 0))
            return true;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static struct kvm_ioapic_state ioapic(struct vmctx *c)
{
    struct kvm_irqchip s = {.chip_id = KVM_IRQCHIP_IOAPIC};
    ck_assert_int_eq(io(c, c->vm, KVM_GET_IRQCHIP, &s), 0);
    return s.chip.ioapic;
}

/* ---------------- errnos ---------------- */

START_TEST(irqfd_errnos)
{
    unsigned fds_before = open_fds();
    struct vmctx c;
    vm_open(&c, false);
    int efd = new_eventfd(), efd2 = new_eventfd(), rfd = new_eventfd();
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);

    /* no irqchip: kvm_arch_irqfd_allowed fails assign with EINVAL, both flavours;
     * deassign does not look at the irqchip */
    ck_assert_int_eq(irqfd(&c, efd, 5, 0, 0), -EINVAL);
    ck_assert_int_eq(irqfd(&c, efd, 5, KVM_IRQFD_FLAG_RESAMPLE, rfd), -EINVAL);
    ck_assert_int_eq(irqfd(&c, efd, 5, KVM_IRQFD_FLAG_DEASSIGN, 0), 0);
    ck_assert_int_eq(io(&c, c.vm, KVM_CREATE_IRQCHIP, 0), 0);

    ck_assert_int_eq(io(&c, c.vm, KVM_IRQFD, (void *)8), -EFAULT);
    ck_assert_int_eq(irqfd(&c, efd, 5, 1u << 2, 0), -EINVAL);            /* unknown flag */
    ck_assert_int_eq(irqfd(&c, efd, 5, 1u << 31 | KVM_IRQFD_FLAG_DEASSIGN, 0), -EINVAL);
    ck_assert_int_eq(irqfd(&c, -1, 5, 0, 0), -EBADF);
    ck_assert_int_eq(irqfd(&c, 100000, 5, 0, 0), -EBADF);
    ck_assert_int_eq(irqfd(&c, pipefd[0], 5, 0, 0), -EINVAL);            /* not an eventfd */
    ck_assert_int_eq(irqfd(&c, efd, 5, KVM_IRQFD_FLAG_RESAMPLE, 100000), -EBADF);
    ck_assert_int_eq(irqfd(&c, efd, 5, KVM_IRQFD_FLAG_RESAMPLE, pipefd[1]), -EINVAL);

    ck_assert_int_eq(irqfd(&c, efd, 5, 0, 0), 0);
    ck_assert_int_eq(irqfd(&c, efd, 5, 0, 0), -EBUSY);
    ck_assert_int_eq(irqfd(&c, efd, 6, 0, 0), -EBUSY); /* any GSI: the eventfd is taken */
    int dupfd = dup(efd);
    ck_assert_int_eq(irqfd(&c, dupfd, 7, KVM_IRQFD_FLAG_RESAMPLE, rfd), -EBUSY); /* same file */
    ck_assert_int_eq(irqfd(&c, efd2, 5, 0, 0), 0); /* another eventfd may share the GSI */

    /* deassign matches fd and GSI; an unknown pair is not an error */
    ck_assert_int_eq(irqfd(&c, efd, 6, KVM_IRQFD_FLAG_DEASSIGN, 0), 0);
    ck_assert_int_eq(irqfd(&c, efd, 5, 0, 0), -EBUSY); /* still assigned */
    ck_assert_int_eq(irqfd(&c, pipefd[0], 5, KVM_IRQFD_FLAG_DEASSIGN, 0), -EINVAL);
    ck_assert_int_eq(irqfd(&c, 100000, 5, KVM_IRQFD_FLAG_DEASSIGN, 0), -EBADF);
    ck_assert_int_eq(irqfd(&c, dupfd, 5, KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE, 0), 0);
    ck_assert_int_eq(irqfd(&c, efd, 6, 0, 0), 0); /* gone: assignable again */

    ck_assert_int_eq(io(&c, c.kvm, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_IRQFD), 1);
    ck_assert_int_eq(io(&c, c.vm, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_IRQFD_RESAMPLE), 1);

    vm_close(&c); /* efd, efd2 still assigned: released with the VM */
    close(efd);
    close(efd2);
    close(dupfd);
    close(rfd);
    close(pipefd[0]);
    close(pipefd[1]);
    ck_assert_uint_eq(open_fds(), fds_before);
}
END_TEST

/* A resampling irqfd keeps its GSI asserted until an ack or DEASSIGN; a
 * plain one pulses it (the IOAPIC's irr ends up clear). The pin is masked,
 * so nothing is delivered and nothing acks. */
START_TEST(irqfd_line_state)
{
    struct vmctx c;
    vm_open(&c, true);
    int efd = new_eventfd(), rfd = new_eventfd(), pfd = new_eventfd();
    ck_assert_int_eq(irqfd(&c, efd, GSI_LEVEL, KVM_IRQFD_FLAG_RESAMPLE, rfd), 0);
    ck_assert_int_eq(irqfd(&c, pfd, GSI_EDGE, 0, 0), 0);
    ck_assert_uint_eq(ioapic(&c).irr, 0);

    signal_fd(pfd);
    ck_assert(consumed(pfd));
    ck_assert_uint_eq(ioapic(&c).irr, 0); /* pulse: 1 then 0 */

    signal_fd(efd);
    ck_assert(consumed(efd));
    ck_assert_uint_eq(ioapic(&c).irr, 1u << GSI_LEVEL);
    ck_assert(!readable(rfd, 0)); /* no ack: no resample */

    ck_assert_int_eq(irqfd(&c, efd, GSI_LEVEL, KVM_IRQFD_FLAG_DEASSIGN, 0), 0);
    ck_assert_uint_eq(ioapic(&c).irr, 0); /* the last resampler lowers the line */
    signal_fd(efd); /* deassigned: no effect */
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    ck_assert_uint_eq(ioapic(&c).irr, 0);
    vm_close(&c);
    close(efd);
    close(rfd);
    close(pfd);
}
END_TEST

/* ---------------- the irqchip's ack notifier ---------------- */

struct acks {
    unsigned n;
    uint32_t gsi[8];
};

static void record_ack(void *ctx, uint32_t gsi)
{
    struct acks *a = ctx;
    if (a->n < 8)
        a->gsi[a->n] = gsi;
    a->n++;
}

static void pic_out(struct abi_irqchip *chip, uint16_t port, uint8_t v)
{
    ck_assert(abi_irqchip_pio(chip, port, false, &v, 1));
}

/* 8259 master: ICW1-4 (vector base 0x20, auto-EOI as asked), IRQ3 unmasked. */
static void pic_init(struct abi_irqchip *chip, bool auto_eoi)
{
    pic_out(chip, 0x20, 0x11);
    pic_out(chip, 0x21, 0x20);
    pic_out(chip, 0x21, 0x04);
    pic_out(chip, 0x21, auto_eoi ? 0x03 : 0x01);
    pic_out(chip, 0x21, 0xf7);
}

static int pic_inta(struct abi_irqchip *chip)
{
    pthread_mutex_lock(&chip->lock);
    int v = pic_read_irq(&chip->pic);
    pthread_mutex_unlock(&chip->lock);
    return v;
}

/* kvm_notify_acked_irq call sites: 8259 EOI command (pic_clear_isr), 8259
 * auto-EOI at INTA, IOAPIC EOI broadcast; pins map back to GSIs through the
 * routing table; no notifier, no calls. */
START_TEST(irqchip_ack_notifier)
{
    struct abi_irqchip *chip = abi_irqchip_create();
    ck_assert_ptr_nonnull(chip);
    struct acks a = {0};
    abi_irqchip_set_ack_notifier(chip, record_ack, &a);
    ck_assert(irqchip_has_ack_notifier(chip));

    pic_init(chip, false);
    a.n = 0; /* ICW1 may report dropped edge requests: none were pending */
    abi_irqchip_set_irq(chip, 3, 1);
    abi_irqchip_set_irq(chip, 3, 0);
    ck_assert_int_eq(pic_inta(chip), 0x23);
    ck_assert_uint_eq(a.n, 0); /* in service, not acked yet */
    pic_out(chip, 0x20, 0x63); /* specific EOI, IRQ3 */
    ck_assert_uint_eq(a.n, 1);
    ck_assert_uint_eq(a.gsi[0], 3);

    pic_init(chip, true);
    a.n = 0;
    abi_irqchip_set_irq(chip, 3, 1);
    abi_irqchip_set_irq(chip, 3, 0);
    ck_assert_int_eq(pic_inta(chip), 0x23);
    ck_assert_uint_eq(a.n, 1); /* auto-EOI acks at INTA */
    ck_assert_uint_eq(a.gsi[0], 3);

    /* IOAPIC pin 9 with vector 0x61 (masked: only the EOI path matters) */
    a.n = 0;
    pthread_mutex_lock(&chip->lock);
    chip->ioapic.redir[9].f.vector = 0x61;
    ioapic_eoi(chip, 0x61, true);
    ioapic_eoi(chip, 0x62, true);
    pthread_mutex_unlock(&chip->lock);
    ck_assert_uint_eq(a.n, 1);
    ck_assert_uint_eq(a.gsi[0], 9);

    abi_irqchip_set_ack_notifier(chip, NULL, NULL);
    ck_assert(!irqchip_has_ack_notifier(chip));
    a.n = 0;
    pthread_mutex_lock(&chip->lock);
    ioapic_eoi(chip, 0x61, true);
    pthread_mutex_unlock(&chip->lock);
    ck_assert_uint_eq(a.n, 0);
    abi_irqchip_destroy(chip);
}
END_TEST

/* ---------------- guest ---------------- */

static uint64_t gate(uint64_t handler_gpa, uint64_t *hi)
{
    /* 64-bit interrupt gate, selector 8, DPL 0, present (SDM vol.3 6.14.1). */
    *hi = handler_gpa >> 32;
    return (handler_gpa & 0xffff) | (8ull << 16) | (0x8e00ull << 32) | ((handler_gpa >> 16) << 48);
}

static uint64_t code_gpa(const uint8_t *sym)
{
    return CODE_GPA + (uint64_t)(sym - fdg_start);
}

static void guest_memory(struct vmctx *c)
{
    c->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(c->mem, MAP_FAILED);
    memcpy(c->mem + CODE_GPA, fdg_start, (size_t)(fdg_end - fdg_start));
    uint64_t *gdt = (uint64_t *)(c->mem + GDT_GPA);
    gdt[1] = 0x00af9a000000ffffull; /* 64-bit code */
    gdt[2] = 0x00cf92000000ffffull; /* data */
    uint64_t *idt = (uint64_t *)(c->mem + IDT_GPA);
    for (unsigned v = 0; v < 256; v++)
        idt[2 * v] = gate(code_gpa(fdg_bad), &idt[2 * v + 1]);
    idt[2 * 0x50] = gate(code_gpa(fdg_h50), &idt[2 * 0x50 + 1]);
    idt[2 * 0x51] = gate(code_gpa(fdg_h51), &idt[2 * 0x51 + 1]);
    idt[2 * 0x52] = gate(code_gpa(fdg_h52), &idt[2 * 0x52 + 1]);
    /* identity map 4 GiB with 2 MiB pages, the top GiB (APIC, IOAPIC) uncached */
    uint64_t *pml4 = (uint64_t *)(c->mem + PT_GPA), *pdpt = (uint64_t *)(c->mem + PT_GPA + 0x1000);
    pml4[0] = (PT_GPA + 0x1000) | 3;
    for (uint64_t i = 0; i < 4; i++) {
        pdpt[i] = (PT_GPA + 0x2000 + i * 0x1000) | 3;
        uint64_t *pd = (uint64_t *)(c->mem + PT_GPA + 0x2000 + i * 0x1000);
        for (uint64_t j = 0; j < 512; j++)
            pd[j] = (i << 30) + (j << 21) + 0x83 + (i == 3 ? 0x18 : 0);
    }
    struct kvm_userspace_memory_region r = {.slot = 0, .memory_size = MEM_SIZE,
                                            .userspace_addr = (uintptr_t)c->mem};
    ck_assert_int_eq(io(c, c->vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
}

static void guest_vcpu(struct vmctx *c)
{
    c->vcpu = (int)io(c, c->vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(c->vcpu, 0);
    long sz = io(c, c->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    ck_assert_int_gt(sz, 0);
    c->run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, c->vcpu, 0);
    ck_assert_ptr_ne(c->run, MAP_FAILED);
    struct kvm_sregs s;
    ck_assert_int_eq(io(c, c->vcpu, KVM_GET_SREGS, &s), 0);
    abi_test_flat_sregs(&s, true, GDT_GPA, IDT_GPA, 0xfff, PT_GPA);
    ck_assert_int_eq(io(c, c->vcpu, KVM_SET_SREGS, &s), 0);
    struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2};
    ck_assert_int_eq(io(c, c->vcpu, KVM_SET_REGS, &regs), 0);
}

/* GSI_EDGE becomes an MSI to APIC 0, vector 0x52; GSI_LEVEL stays on IOAPIC pin 18. */
static void route_edge_gsi_to_msi(struct vmctx *c)
{
    struct {
        struct kvm_irq_routing h;
        struct kvm_irq_routing_entry e[2];
    } r = {.h.nr = 2};
    r.e[0] = (struct kvm_irq_routing_entry){.gsi = GSI_EDGE, .type = KVM_IRQ_ROUTING_MSI,
                                            .u.msi = {.address_lo = 0xfee00000, .data = 0x52}};
    r.e[1] = (struct kvm_irq_routing_entry){.gsi = GSI_LEVEL, .type = KVM_IRQ_ROUTING_IRQCHIP,
                                            .u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC,
                                                          .pin = GSI_LEVEL}};
    ck_assert_int_eq(io(c, c->vm, KVM_SET_GSI_ROUTING, &r), 0);
}

static const uint32_t expected[] = {
    0x1001, 0x50,                     /* IOAPIC edge pin */
    0x1002, 0x52,                     /* same irqfd, now an MSI route */
    0x1003, 0x51, 0x2000, 0x2001,     /* resample round 1 */
    0x1004, 0x51, 0x2000, 0x2001,     /* round 2, signalled again while in service */
    0x1005, 0x1006,                   /* and no third interrupt */
};

struct guest_fds {
    int edge, level, resample;
    unsigned rounds;
};

/* The host's side of each report. */
static void on_report(struct vmctx *c, struct guest_fds *f, uint32_t v)
{
    uint32_t bit = 1u << GSI_LEVEL;
    switch (v) {
    case 0x1001:
        signal_fd(f->edge);
        break;
    case 0x1002:
        route_edge_gsi_to_msi(c);
        signal_fd(f->edge);
        break;
    case 0x1003:
    case 0x1004:
        signal_fd(f->level);
        break;
    case 0x2000: {
        /* in service: line held (IRR), Remote IRR set, no resample yet */
        struct kvm_ioapic_state s = ioapic(c);
        ck_assert_uint_eq(s.irr & bit, bit);
        ck_assert(s.redirtbl[GSI_LEVEL].fields.remote_irr);
        ck_assert(!readable(f->resample, 0));
        if (++f->rounds == 2) {
            /* a signal while the line is already high adds nothing */
            signal_fd(f->level);
            ck_assert(consumed(f->level));
        }
        break;
    }
    case 0x2001: {
        ck_assert(readable(f->resample, 1000));
        uint64_t n = 0;
        ck_assert_int_eq(read(f->resample, &n, sizeof n), sizeof n);
        ck_assert_uint_eq(n, 1);
        struct kvm_ioapic_state s = ioapic(c);
        ck_assert_uint_eq(s.irr & bit, 0);
        ck_assert(!s.redirtbl[GSI_LEVEL].fields.remote_irr);
        break;
    }
    default:
        break;
    }
}

START_TEST(irqfd_guest)
{
    unsigned fds_before = open_fds();
    struct vmctx c;
    vm_open(&c, true);
    guest_memory(&c);
    guest_vcpu(&c);
    struct guest_fds f = {.edge = new_eventfd(), .level = new_eventfd(), .resample = new_eventfd()};
    ck_assert_int_eq(irqfd(&c, f.edge, GSI_EDGE, 0, 0), 0);
    ck_assert_int_eq(irqfd(&c, f.level, GSI_LEVEL, KVM_IRQFD_FLAG_RESAMPLE, f.resample), 0);

    unsigned n = 0;
    bool done = false;
    for (int i = 0; i < 100 && !done; i++) {
        ck_assert_int_eq(io(&c, c.vcpu, KVM_RUN, 0), 0);
        ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_IO);
        if (c.run->io.port == 0xea) {
            done = true;
            break;
        }
        ck_assert_uint_eq(c.run->io.port, 0xe9);
        uint32_t v;
        memcpy(&v, (uint8_t *)c.run + c.run->io.data_offset, 4);
        ck_assert_uint_lt(n, sizeof expected / sizeof expected[0]);
        ck_assert_msg(v == expected[n], "report %u: got %#x, expected %#x", n, v, expected[n]);
        n++;
        on_report(&c, &f, v);
    }
    ck_assert(done);
    ck_assert_uint_eq(n, sizeof expected / sizeof expected[0]);
    ck_assert(!readable(f.resample, 0)); /* exactly one resample per EOI */

    ck_assert_int_eq(irqfd(&c, f.edge, GSI_EDGE, KVM_IRQFD_FLAG_DEASSIGN, 0), 0);
    vm_close(&c); /* the resampling irqfd goes with the VM */
    close(f.edge);
    close(f.level);
    close(f.resample);
    ck_assert_uint_eq(open_fds(), fds_before);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("irqfd");
    TCase *tc = tcase_create("irqfd");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, irqfd_errnos);
    tcase_add_test(tc, irqfd_line_state);
    tcase_add_test(tc, irqchip_ack_notifier);
    tcase_add_test(tc, irqfd_guest);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
