/* Message delivery results and the KVM PV kick, as Linux 6.12 gives them. KVM_SIGNAL_MSI
 * returns what kvm_irq_delivery_to_apic returns (irq_comm.c 47-): the APIC map's fast
 * path for a directed message counts the APICs that accepted it (lapic.c
 * kvm_irq_delivery_to_apic_fast 1234-1269, __apic_accept_irq 1317-1411); broadcasts take
 * the slow path, which starts at -1 (EPERM to user space) and arbitrates lowest-priority
 * messages among software-enabled APICs only. A fresh vCPU's LAPIC is hardware-enabled
 * and software-disabled (SVR bit 8 clear), so it drops fixed interrupts but takes the
 * rest.
 * On the host's /dev/kvm (PVM, a 6.18 kernel) directed NMI/INIT/SIPI/REMRD messages to a
 * fresh vCPU return 0 instead of 1; the 6.12 source (map built at kvm_lapic_reset 2882)
 * decides here. Every other one of 1536 combinations agreed (dest 0/1/2/5/0xf/0xff,
 * both destination modes, RH, all delivery modes, trigger bits). */
#include <check.h>
#include "tests/check_main.h"
#include "tests/abi/abi_test_guest.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "abi/abi.h"
#include "abi/abi_internal.h"

struct ctx {
    struct abi_process *p;
    int kvm, vm, vcpu;
    struct kvm_run *run;
    uint8_t *mem;
};

#define MEM_SIZE (2u << 20)

static long io(struct ctx *c, int fd, unsigned long req, const void *arg)
{
    return abi_ioctl(c->p, fd, req, (unsigned long)arg);
}

static void open_vm(struct ctx *c)
{
    setenv("SOFTKVM_VENDOR", "amd", 1);
    c->p = abi_process_create();
    c->kvm = abi_open_dev_kvm(c->p, O_RDWR);
    c->vm = (int)io(c, c->kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(c->vm, 0);
    ck_assert_int_eq(io(c, c->vm, KVM_CREATE_IRQCHIP, 0), 0);
    c->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(c->mem, MAP_FAILED);
    struct kvm_userspace_memory_region r = {.slot = 0, .memory_size = MEM_SIZE,
                                            .userspace_addr = (uintptr_t)c->mem};
    ck_assert_int_eq(io(c, c->vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    struct abi_test_cpuid cp;
    c->vcpu = abi_test_vcpu_supported(c->p, c->kvm, c->vm, &c->run, &cp);
}

static void close_vm(struct ctx *c)
{
    abi_test_close_all(c->p);
    munmap(c->mem, MEM_SIZE);
    unsetenv("SOFTKVM_VENDOR");
}

static long msi(struct ctx *c, uint32_t dest, bool logical, bool rh, uint32_t dm, uint32_t vec)
{
    struct kvm_msi m = {.address_lo = 0xfee00000u | dest << 12 | (uint32_t)logical << 2 |
                                      (uint32_t)rh << 3,
                        .data = vec | dm << 8};
    return io(c, c->vm, KVM_SIGNAL_MSI, &m);
}

START_TEST(msi_results_follow_the_fast_and_slow_paths)
{
    struct ctx c;
    open_vm(&c);
    /* directed, APIC map: fixed to a software-disabled APIC is dropped (0); NMI, REMRD,
     * INIT and SIPI are taken (1); an absent ID counts 0 */
    ck_assert_int_eq(msi(&c, 0, false, false, 0, 0x30), 0);
    ck_assert_int_eq(msi(&c, 0, false, false, 4, 0), 1);
    ck_assert_int_eq(msi(&c, 0, false, false, 3, 0), 1);
    ck_assert_int_eq(msi(&c, 0, false, true, 4, 0), 1); /* RH: the map's one target */
    ck_assert_int_eq(msi(&c, 5, false, false, 4, 0), 0);
    /* physical broadcast, slow path: REMRD is taken (1) */
    ck_assert_int_eq(msi(&c, 0xff, false, false, 3, 0), 1);
    /* lowest priority as a physical broadcast is sent as fixed (irq_comm.c 58-62), which
     * the disabled APIC drops: 0, not -1 */
    ck_assert_int_eq(msi(&c, 0xff, false, false, 1, 0x30), 0);
    /* with RH it stays lowest priority: no software-enabled APIC to pick, -1 */
    ck_assert_int_eq(msi(&c, 0xff, false, true, 0, 0x30), -1);
    ck_assert_int_eq(msi(&c, 0xff, false, true, 4, 0), -1);
    /* logical broadcast, lowest priority: -1 as well */
    ck_assert_int_eq(msi(&c, 0xff, true, false, 1, 0x30), -1);
    close_vm(&c);
}
END_TEST

/* KVM_HC_KICK_CPU (x86.c kvm_emulate_hypercall 9638-9645) sends REMRD to APIC ID a1 = RCX
 * (kvm_pv_kick_cpu_op 9505-9519); __apic_accept_irq sets pv_unhalted, which makes the
 * vCPU runnable (kvm_arch_vcpu_runnable), so its HLT with IF=0 ends at once. Without the
 * kick this KVM_RUN would block for ever (the tcase timeout fails it). */
__asm__(".pushsection .rodata.kick, \"a\"\n"
    ".code64\n"
    "kick_guest:\n"
    "    mov $5, %eax\n"            /* KVM_HC_KICK_CPU */
    "    xor %ebx, %ebx\n"          /* flags */
    "    xor %ecx, %ecx\n"          /* APIC ID 0: this vCPU */
    "    vmmcall\n"
    "    out %al, $0x10\n"          /* RAX: the hypercall's result */
    "    hlt\n"                     /* IF = 0: only the kick ends it */
    "    mov $0x77, %al\n"
    "    out %al, $0x11\n"
    "    hlt\n"
    "kick_guest_end:\n"
    ".popsection\n");
extern const uint8_t kick_guest[], kick_guest_end[];

START_TEST(pv_kick_ends_the_halt)
{
    struct ctx c;
    open_vm(&c);
    memcpy(c.mem + 0x1000, kick_guest, (size_t)(kick_guest_end - kick_guest));
    abi_test_flat_tables(c.mem, 0x2000, 0x10000);
    struct kvm_sregs s = {0};
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_SREGS, &s), 0);
    abi_test_flat_sregs(&s, true, 0x2000, 0x3000, 0, 0x10000);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_SREGS, &s), 0);
    struct kvm_regs regs = {.rip = 0x1000, .rflags = 2, .rsp = 0x8000};
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_REGS, &regs), 0);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_IO);
    ck_assert_uint_eq(c.run->io.port, 0x10);
    ck_assert_uint_eq(*((uint8_t *)c.run + c.run->io.data_offset), 0); /* success */
    ck_assert_int_eq(io(&c, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_IO);
    ck_assert_uint_eq(c.run->io.port, 0x11);
    close_vm(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msi_delivery");
    TCase *tc = tcase_create("msi");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, msi_results_follow_the_fast_and_slow_paths);
    tcase_add_test(tc, pv_kick_ends_the_halt);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
