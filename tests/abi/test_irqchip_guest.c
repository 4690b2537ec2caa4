/* End-to-end irqchip test: a 64-bit guest (run in-process through abi_ioctl,
 * the interpreter and the in-kernel irqchip) programs the 8259 PIC through its
 * ports, reads and writes xAPIC registers through MMIO, counts with the APIC
 * timer, reads the IOAPIC, and takes interrupts: a self-IPI, a timer
 * interrupt waking HLT, a PIC IRQ (ExtINT via LINT0), an IOAPIC edge pin and
 * an IOAPIC level pin with EOI/Remote IRR. Every value it reports on port
 * 0xe9 is compared with the transcript of the same guest on this machine's
 * real /dev/kvm; the 10 lines where that host (PVM-based KVM) deviates from the
 * SDM or returns undefined data carry the SDM value and say so. The last part
 * arms the TSC-deadline timer (CPUID from KVM_GET_SUPPORTED_CPUID) and HLTs. */
#include <check.h>
#include "tests/check_main.h"
#include "tests/abi/abi_test_guest.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "abi/abi.h"
#include "abi/abi_internal.h"

/* Guest code: bytes only (never executed on the host), copied to gpa 0x1000.
 * Addresses of the handlers are taken relative to irqg_start. */
__asm__(".pushsection .rodata.irqg, \"a\"\n"
    ".code64\n"
    ".set IRQG_APIC, 0xfee00000\n"
    ".set IRQG_IOAPIC, 0xfec00000\n"
    ".macro IRQG_REP reg=%eax\n"
    "    push %rdx\n"
    "    mov $0xe9, %dx\n"
    "    out \\reg, %dx\n"
    "    pop %rdx\n"
    ".endm\n"
    ".macro IRQG_REPV v\n"
    "    mov \\v, %eax\n"
    "    IRQG_REP\n"
    ".endm\n"
    ".macro IRQG_RD off\n"
    "    mov \\off(%rsi), %eax\n"
    "    IRQG_REP\n"
    ".endm\n"
    ".macro IRQG_WR off, v\n"
    "    movl \\v, \\off(%rsi)\n"
    ".endm\n"
    ".macro IRQG_PIN_IN port\n"
    "    xor %eax, %eax\n"
    "    in $\\port, %al\n"
    "    IRQG_REP\n"
    ".endm\n"
    "irqg_start:\n"
    "    mov $0x9000, %esp\n"
    "    mov $IRQG_APIC, %esi\n"
    "    mov $IRQG_IOAPIC, %edi\n"
    "    /* ---- PIC ---- */\n"
    "    mov $0x11, %al; out %al, $0x20\n"
    "    mov $0x20, %al; out %al, $0x21\n"
    "    mov $0x04, %al; out %al, $0x21\n"
    "    mov $0x01, %al; out %al, $0x21\n"
    "    mov $0x11, %al; out %al, $0xa0\n"
    "    mov $0x28, %al; out %al, $0xa1\n"
    "    mov $0x02, %al; out %al, $0xa1\n"
    "    mov $0x01, %al; out %al, $0xa1\n"
    "    mov $0xfb, %al; out %al, $0x21\n"
    "    mov $0xff, %al; out %al, $0xa1\n"
    "    IRQG_PIN_IN 0x21\n"
    "    IRQG_PIN_IN 0xa1\n"
    "    mov $0x0a, %al; out %al, $0x20\n"
    "    IRQG_PIN_IN 0x20\n"
    "    mov $0x0b, %al; out %al, $0x20\n"
    "    IRQG_PIN_IN 0x20\n"
    "    mov $0x4d0, %dx; xor %eax,%eax; in %dx, %al; IRQG_REP\n"
    "    mov $0x4d0, %dx; mov $0xff, %al; out %al, %dx; xor %eax,%eax; in %dx, %al; IRQG_REP\n"
    "    mov $0x4d0, %dx; mov $0x00, %al; out %al, %dx\n"
    "    /* ---- LAPIC registers ---- */\n"
    "    IRQG_RD 0x20\n"
    "    IRQG_RD 0x30\n"
    "    IRQG_RD 0xf0\n"
    "    IRQG_WR 0xf0, $0x1ff\n"
    "    IRQG_RD 0xf0\n"
    "    IRQG_WR 0x80, $0x55\n"
    "    IRQG_RD 0x80\n"
    "    IRQG_RD 0xa0\n"
    "    IRQG_WR 0x80, $0\n"
    "    IRQG_RD 0x350\n"
    "    IRQG_RD 0x360\n"
    "    IRQG_RD 0x320\n"
    "    IRQG_RD 0x370\n"
    "    IRQG_WR 0x370, $0xffffffff\n"
    "    IRQG_RD 0x370\n"
    "    IRQG_WR 0x320, $0xffffffff\n"
    "    IRQG_RD 0x320\n"
    "    IRQG_WR 0x340, $0xffffffff\n"
    "    IRQG_RD 0x340\n"
    "    IRQG_WR 0x350, $0xffffffff\n"
    "    IRQG_RD 0x350\n"
    "    IRQG_WR 0x350, $0x700\n"
    "    IRQG_WR 0x360, $0xffffffff\n"
    "    IRQG_RD 0x360\n"
    "    IRQG_WR 0xd0, $0xffffffff\n"
    "    IRQG_RD 0xd0\n"
    "    IRQG_WR 0xe0, $0\n"
    "    IRQG_RD 0xe0\n"
    "    IRQG_WR 0xe0, $0xffffffff\n"
    "    IRQG_WR 0x3e0, $0xffffffff\n"
    "    IRQG_RD 0x3e0\n"
    "    IRQG_RD 0x90\n"
    "    IRQG_RD 0xc0\n"
    "    IRQG_RD 0x3f0\n"
    "    IRQG_RD 0x40\n"
    "    IRQG_RD 0x2f0\n"
    "    IRQG_WR 0x20, $0x05000000\n"
    "    IRQG_RD 0x20\n"
    "    IRQG_WR 0x20, $0\n"
    "    movzbl 0x33(%rsi), %eax\n"
    "    IRQG_REP\n"
    "    IRQG_WR 0x310, $0x12345678\n"
    "    IRQG_RD 0x310\n"
    "    IRQG_WR 0x310, $0\n"
    "    cli\n"
    "    IRQG_WR 0x300, $0x41033\n"
    "    IRQG_RD 0x300\n"
    "    IRQG_RD 0x210\n"
    "    IRQG_RD 0x280\n"
    "    /* timer count */\n"
    "    IRQG_WR 0x3e0, $0xb\n"
    "    IRQG_WR 0x320, $0x10030\n"
    "    IRQG_WR 0x380, $0x10000000\n"
    "    mov 0x390(%rsi), %eax\n"
    "    xor %ebx, %ebx\n"
    "    cmp $0x10000000, %eax\n"
    "    seta %bl\n"
    "    test %eax, %eax\n"
    "    setz %bh\n"
    "    mov %ebx, %eax\n"
    "    IRQG_REP\n"
    "    IRQG_WR 0x380, $0\n"
    "    IRQG_RD 0x390\n"
    "    /* ---- IOAPIC ---- */\n"
    "    movl $1, (%rdi)\n"
    "    mov 0x10(%rdi), %eax\n"
    "    IRQG_REP\n"
    "    movl $0, (%rdi)\n"
    "    mov 0x10(%rdi), %eax\n"
    "    IRQG_REP\n"
    "    movl $0x10, (%rdi)\n"
    "    mov 0x10(%rdi), %eax\n"
    "    IRQG_REP\n"
    "    movl $0x11, (%rdi)\n"
    "    mov 0x10(%rdi), %eax\n"
    "    IRQG_REP\n"
    "    mov (%rdi), %eax\n"
    "    IRQG_REP\n"
    "    movl $0x40, (%rdi)\n"
    "    mov 0x10(%rdi), %eax\n"
    "    IRQG_REP\n"
    "    /* ---- delivery: pending self IPI 0x33 ---- */\n"
    "    sti\n"
    "    hlt\n"
    "    cli\n"
    "    IRQG_RD 0x100\n"
    "    IRQG_RD 0x110\n"
    "    IRQG_RD 0xa0\n"
    "    IRQG_WR 0xb0, $0\n"
    "    IRQG_RD 0x110\n"
    "    IRQG_RD 0xa0\n"
    "    /* timer interrupt wakes HLT */\n"
    "    IRQG_WR 0x320, $0x30\n"
    "    IRQG_WR 0x380, $100000\n"
    "    sti\n"
    "    hlt\n"
    "    cli\n"
    "    IRQG_RD 0x320\n"
    "    /* PIC IRQ4 */\n"
    "    mov $0xeb, %al; out %al, $0x21\n"
    "    IRQG_REPV $0xaaaa\n"
    "    sti\n"
    "    hlt\n"
    "    cli\n"
    "    mov $0x0b, %al; out %al, $0x20\n"
    "    IRQG_PIN_IN 0x20\n"
    "    /* IOAPIC pin 5 -> 0x40 edge dest 0 ; pin 6 -> 0x41 level */\n"
    "    mov $0xff, %al; out %al, $0x21\n"
    "    movl $0x1b, (%rdi)\n"
    "    movl $0, 0x10(%rdi)\n"
    "    movl $0x1a, (%rdi)\n"
    "    movl $0x40, 0x10(%rdi)\n"
    "    movl $0x1d, (%rdi)\n"
    "    movl $0, 0x10(%rdi)\n"
    "    movl $0x1c, (%rdi)\n"
    "    movl $0x8041, 0x10(%rdi)\n"
    "    IRQG_REPV $0xbbbb\n"
    "    sti\n"
    "    hlt\n"
    "    cli\n"
    "    IRQG_REPV $0xcccc\n"
    "    sti\n"
    "    hlt\n"
    "    cli\n"
    "    movl $0x1c, (%rdi)\n"
    "    mov 0x10(%rdi), %eax\n"
    "    IRQG_REP\n"
    "    IRQG_RD 0x180\n"
    "    IRQG_RD 0x100\n"
    "    IRQG_REPV $0xdddd\n"
    "    IRQG_RD 0x200\n"
    "    IRQG_RD 0x210\n"
    "    /* TSC-deadline timer (CPUID has TSC_DEADLINE) */\n"
    "    IRQG_WR 0x320, $0x40032\n"
    "    IRQG_RD 0x320\n"
    "    rdtsc\n"
    "    shl $32, %rdx\n"
    "    or %rdx, %rax\n"
    "    add $300000000, %rax\n" /* ~0.1 s: still armed at the RDMSR under load */
    "    mov %rax, %rdx\n"
    "    shr $32, %rdx\n"
    "    mov $0x6e0, %ecx\n"
    "    wrmsr\n"
    "    rdmsr\n"
    "    xor %ebx, %ebx\n"
    "    or %edx, %eax\n"
    "    setnz %bl\n"
    "    mov %ebx, %eax\n"
    "    IRQG_REP\n"
    "    sti\n"
    "    hlt\n"
    "    cli\n"
    "    mov $0x6e0, %ecx\n"
    "    rdmsr\n"
    "    or %edx, %eax\n"
    "    IRQG_REP\n"
    "    mov $0xea, %dx\n"
    "    out %eax, %dx\n"
    "2:  hlt\n"
    "    jmp 2b\n"
    "\n"
    "irqg_h24: push %rax\n"
    "    IRQG_REPV $0x24\n"
    "    mov $0x20, %al\n"
    "    out %al, $0x20\n"
    "    pop %rax\n"
    "    iretq\n"
    "irqg_h30: push %rax\n"
    "    IRQG_REPV $0x30\n"
    "    movl $0, 0xb0(%rsi)\n"
    "    pop %rax\n"
    "    iretq\n"
    "irqg_h33: push %rax\n"
    "    IRQG_REPV $0x33\n"
    "    pop %rax\n"
    "    iretq\n"
    "irqg_h32: push %rax\n"
    "    IRQG_REPV $0x32\n"
    "    movl $0, 0xb0(%rsi)\n"
    "    pop %rax\n"
    "    iretq\n"
    "irqg_h40: push %rax\n"
    "    IRQG_REPV $0x40\n"
    "    movl $0, 0xb0(%rsi)\n"
    "    pop %rax\n"
    "    iretq\n"
    "irqg_h41: push %rax\n"
    "    IRQG_REPV $0x41\n"
    "    IRQG_RD 0x180\n"
    "    movl $0x1c, (%rdi)\n"
    "    mov 0x10(%rdi), %eax\n"
    "    IRQG_REP\n"
    "    movl $0, 0xb0(%rsi)\n"
    "    movl $0x1c, (%rdi)\n"
    "    mov 0x10(%rdi), %eax\n"
    "    IRQG_REP\n"
    "    pop %rax\n"
    "    iretq\n"
    "irqg_bad: IRQG_REPV $0xdeadbeef\n"
    "    mov $0xea, %dx\n"
    "    out %eax, %dx\n"
    "    hlt\n"
    "\n"
    "irqg_end:\n"
    "\n"
        ".purgem IRQG_REP\n"
    ".purgem IRQG_REPV\n"
    ".purgem IRQG_RD\n"
    ".purgem IRQG_WR\n"
    ".purgem IRQG_PIN_IN\n"
".popsection\n");
extern const uint8_t irqg_start[], irqg_end[], irqg_h24[], irqg_h30[], irqg_h32[], irqg_h33[],
    irqg_h40[], irqg_h41[], irqg_bad[];

/* Values reported by the guest, in order (real KVM transcript). */
static const uint32_t expected[] = {
    0x000000fb,
    0x000000ff,
    0x00000000,
    0x00000000,
    0x00000000,
    0x000000f8,
    0x00000000,
    0x00050014,
    0x000000ff,
    0x000001ff,
    0x00000055,
    0x00000055,
    0x00000700,
    0x00010000,
    0x00010000,
    0x00010000,
    0x000110ff,
    0x000710ff, /* 18: LVTT keeps mode bits 18:17 once CPUID has TSC-deadline */
    0x000117ff,
    0x0001f7ff,
    0x0001f7ff,
    0xff000000,
    0x0fffffff,
    0x0000000b,
    0x00000000,
    0x00000000, /* 26: RRD: unreadable, 0 here (real KVM returns a stale emulator buffer) */
    0x00000000, /* 27: 0x3f0 self-IPI: unreadable in xAPIC mode */
    0x00000000, /* 28: 0x40: reserved */
    0x00000000, /* 29: 0x2f0 CMCI: absent without MCG_CMCI_P */
    0x05000000,
    0x00000000,
    0x12000000,
    0x00040033,
    0x00080000,
    0x00000000,
    0x00000000,
    0x00000000,
    0x00170011,
    0x00000000,
    0x00010000,
    0x00000000,
    0x00000011,
    0xffffffff,
    0x00000033,
    0x00000000,
    0x00080000, /* 46: ISR word 1 holds 0x33 until EOI (SDM 10.8.4; the PVM oracle showed 0) */
    0x00000030, /* 47: PPR = ISR class 0x30 (the PVM oracle showed 0) */
    0x00000000,
    0x00000000,
    0x00000030,
    0x00000030,
    0x0000aaaa,
    0x00000024,
    0x00000000,
    0x0000bbbb,
    0x00000040,
    0x0000cccc,
    0x00000041,
    0x00000000,
    0x0000c041,
    0x00008041, /* 61: EOI of level 0x41 cleared Remote IRR (the PVM oracle kept it, its ISR being empty) */
    0x00008041, /* 62: same, after IRET */
    0x00000000,
    0x00000000,
    0x0000dddd,
    0x00000000,
    0x00000000,
    0x00040032, /* 68: LVTT in TSC-deadline mode */
    0x00000001, /* 69: IA32_TSC_DEADLINE armed */
    0x00000032, /* 70: the deadline interrupt woke HLT (the PVM oracle, still holding
                 * the level 0x41 it never saw EOIed, took 0x41 here) */
    0x00000000, /* 71: IA32_TSC_DEADLINE reads 0 after it fired */
};

#define MEM_SIZE (1u << 20)
#define CODE_GPA 0x1000u
#define GDT_GPA 0x2000u
#define IDT_GPA 0x3000u
#define PT_GPA 0x10000u

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

static uint64_t gate(uint64_t handler_gpa, uint64_t *hi)
{
    /* 64-bit interrupt gate, selector 8, DPL 0, present (SDM vol.3 6.14.1). */
    *hi = handler_gpa >> 32;
    return (handler_gpa & 0xffff) | (8ull << 16) | (0x8e00ull << 32) | ((handler_gpa >> 16) << 48);
}

static uint64_t code_gpa(const uint8_t *sym)
{
    return CODE_GPA + (uint64_t)(sym - irqg_start);
}

static void vm_setup(struct vmctx *c)
{
    c->p = abi_process_create();
    ck_assert_ptr_nonnull(c->p);
    c->kvm = abi_open_dev_kvm(c->p, O_RDWR);
    ck_assert_int_ge(c->kvm, 0);
    c->vm = (int)io(c, c->kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(c->vm, 0);
    ck_assert_int_eq(io(c, c->vm, KVM_CREATE_IRQCHIP, 0), 0);
    c->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(c->mem, MAP_FAILED);
    memcpy(c->mem + CODE_GPA, irqg_start, (size_t)(irqg_end - irqg_start));

    /* Flat GDT: null, 64-bit code, data. */
    uint64_t *gdt = (uint64_t *)(c->mem + GDT_GPA);
    gdt[1] = 0x00af9a000000ffffull;
    gdt[2] = 0x00cf92000000ffffull;
    /* IDT: every vector to irqg_bad, then the expected ones. */
    const struct { unsigned vec; const uint8_t *h; } gates[] = {
        {0x24, irqg_h24}, {0x30, irqg_h30}, {0x32, irqg_h32}, {0x33, irqg_h33}, {0x40, irqg_h40},
        {0x41, irqg_h41},
    };
    uint64_t *idt = (uint64_t *)(c->mem + IDT_GPA);
    for (unsigned v = 0; v < 256; v++)
        idt[2 * v] = gate(code_gpa(irqg_bad), &idt[2 * v + 1]);
    for (unsigned i = 0; i < sizeof gates / sizeof gates[0]; i++)
        idt[2 * gates[i].vec] = gate(code_gpa(gates[i].h), &idt[2 * gates[i].vec + 1]);
    /* Identity map 4 GiB with 2 MiB pages; the top GiB (APIC, IOAPIC) uncached. */
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
    c->vcpu = (int)io(c, c->vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(c->vcpu, 0);
    /* The CPU model KVM offers (with TSC-deadline), as a VMM would set it. */
    static struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[128];
    } cpuid = {.h.nent = 128};
    ck_assert_int_eq(io(c, c->kvm, KVM_GET_SUPPORTED_CPUID, &cpuid), 0);
    bool tscdl = false;
    for (unsigned k = 0; k < cpuid.h.nent; k++)
        if (cpuid.e[k].function == 1)
            tscdl = cpuid.e[k].ecx & (1u << 24);
    ck_assert(tscdl);
    ck_assert_int_eq(io(c, c->vcpu, KVM_SET_CPUID2, &cpuid), 0);
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

static int irq_line(struct vmctx *c, uint32_t irq, uint32_t level)
{
    struct kvm_irq_level l = {.irq = irq, .level = level};
    ck_assert_int_eq(io(c, c->vm, KVM_IRQ_LINE_STATUS, &l), 0);
    return l.status;
}

START_TEST(guest_transcript_matches_real_kvm)
{
    struct vmctx c;
    vm_setup(&c);
    unsigned n = 0;
    bool done = false;
    for (int i = 0; i < 1000 && !done; i++) {
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
        ck_assert_msg(v == expected[n], "report %u: got %#x, real KVM %#x", n + 1, v, expected[n]);
        n++;
        /* Markers: the host raises lines exactly as the real-KVM run did,
         * with the statuses KVM_IRQ_LINE_STATUS gave there. */
        if (v == 0xaaaa) { /* PIC IRQ4: PIC + masked IOAPIC pin */
            ck_assert_int_eq(irq_line(&c, 4, 1), 1);
            ck_assert_int_eq(irq_line(&c, 4, 0), 2);
        } else if (v == 0xbbbb) { /* IOAPIC pin 5 edge, PIC line masked */
            ck_assert_int_eq(irq_line(&c, 5, 1), 1);
            ck_assert_int_eq(irq_line(&c, 5, 0), 1);
        } else if (v == 0xcccc) { /* IOAPIC pin 6 level */
            ck_assert_int_eq(irq_line(&c, 6, 1), 1);
        } else if (v == 0x41 || v == 0xdddd) {
            ck_assert_int_eq(irq_line(&c, 6, 0), 1);
        }
    }
    ck_assert(done);
    ck_assert_uint_eq(n, sizeof expected / sizeof expected[0]);
    abi_test_close_all(c.p);
    munmap(c.mem, MEM_SIZE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("irqchip_guest");
    TCase *tc = tcase_create("guest");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, guest_transcript_matches_real_kvm);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
