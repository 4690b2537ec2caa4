/* System-management mode (emu/smm.c, abi/), checked against Linux 6.12:
 *  - capabilities and errnos: KVM_CAP_X86_SMM = 1, KVM_CAP_MULTI_ADDRESS_SPACE = 2
 *    (x86.c kvm_vm_ioctl_check_extension, kvm_main.c), a slot in address space 2 is EINVAL
 *    (kvm_set_memory_region), KVM_SMI returns 0 (x86.c kvm_inject_smi);
 *  - an SMI taken by a real-mode guest: the handler runs from address space 1 (x86.c
 *    kvm_arch_vcpu_memslots_id) at CS base = SMBASE, selector SMBASE >> 4, IP 0x8000
 *    (smm.c enter_smm); the 64-bit state-save map holds revision 0x20064, SMBASE, RIP and
 *    RAX (enter_smm_save_state_64); KVM_RUN_X86_SMM is reported (x86.c post_kvm_run_save);
 *  - RSM restores the interrupted state and leaves SMM (emulator_leave_smm); RSM outside
 *    SMM is #UD (emulate.c em_rsm);
 *  - KVM_GET/SET_VCPU_EVENTS round-trip smi.smm / pending / smm_inside_nmi
 *    (kvm_vcpu_ioctl_x86_get/set_vcpu_events). */
#include <check.h>
#include "tests/check_main.h"
#include "tests/abi/abi_test_guest.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define SMBASE 0x30000u
#define RAM_SIZE 0x100000u
#define SMRAM_SIZE 0x10000u

struct g {
    struct abi_process *p;
    int kvm, vm, vcpu;
    struct kvm_run *run;
    uint8_t *ram, *smram;
};

static long io(struct g *g, int fd, unsigned long req, const void *arg)
{
    return abi_ioctl(g->p, fd, req, (unsigned long)arg);
}

static void put(uint8_t *m, uint64_t at, const uint8_t *code, size_t n)
{
    memcpy(m + at, code, n);
}

static void setup(struct g *g)
{
    g->p = abi_process_create();
    ck_assert_ptr_nonnull(g->p);
    g->kvm = abi_open_dev_kvm(g->p, O_RDWR);
    ck_assert_int_ge(g->kvm, 0);
    g->vm = (int)abi_ioctl(g->p, g->kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(g->vm, 0);
    g->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g->smram = mmap(NULL, SMRAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(g->ram, MAP_FAILED);
    ck_assert_ptr_ne(g->smram, MAP_FAILED);
    struct kvm_userspace_memory_region r0 = {.slot = 0, .guest_phys_addr = 0,
                                             .memory_size = RAM_SIZE,
                                             .userspace_addr = (uintptr_t)g->ram};
    ck_assert_int_eq(io(g, g->vm, KVM_SET_USER_MEMORY_REGION, &r0), 0);
    /* SMRAM only in address space 1, over the same guest-physical range as RAM */
    struct kvm_userspace_memory_region r1 = {.slot = (1u << 16) | 1, .guest_phys_addr = SMBASE,
                                             .memory_size = SMRAM_SIZE,
                                             .userspace_addr = (uintptr_t)g->smram};
    ck_assert_int_eq(io(g, g->vm, KVM_SET_USER_MEMORY_REGION, &r1), 0);
    struct abi_test_cpuid cp;
    g->vcpu = abi_test_vcpu_supported(g->p, g->kvm, g->vm, &g->run, &cp);
    /* real mode at 0:0x1000 */
    struct kvm_sregs s;
    ck_assert_int_eq(io(g, g->vcpu, KVM_GET_SREGS, &s), 0);
    s.cs.base = 0, s.cs.selector = 0;
    ck_assert_int_eq(io(g, g->vcpu, KVM_SET_SREGS, &s), 0);
    struct kvm_regs regs = {.rip = 0x1000, .rflags = 2};
    ck_assert_int_eq(io(g, g->vcpu, KVM_SET_REGS, &regs), 0);
}

static void teardown(struct g *g)
{
    abi_test_close_all(g->p);
    munmap(g->ram, RAM_SIZE);
    munmap(g->smram, SMRAM_SIZE);
}

/* Runs to the next exit, which must be an OUT of one byte to `port`; returns the byte. */
static uint8_t run_out(struct g *g, uint16_t port)
{
    ck_assert_int_eq(io(g, g->vcpu, KVM_RUN, NULL), 0);
    ck_assert_uint_eq(g->run->exit_reason, KVM_EXIT_IO);
    ck_assert_uint_eq(g->run->io.direction, KVM_EXIT_IO_OUT);
    ck_assert_uint_eq(g->run->io.port, port);
    return ((uint8_t *)g->run)[g->run->io.data_offset];
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

START_TEST(caps_and_errnos)
{
    struct g g;
    setup(&g);
    ck_assert_int_eq(io(&g, g.vm, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_X86_SMM), 1);
    ck_assert_int_eq(io(&g, g.vm, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_MULTI_ADDRESS_SPACE), 2);
    struct kvm_userspace_memory_region r2 = {.slot = (2u << 16), .guest_phys_addr = 0x200000,
                                             .memory_size = 0x1000,
                                             .userspace_addr = (uintptr_t)g.ram};
    ck_assert_int_eq(io(&g, g.vm, KVM_SET_USER_MEMORY_REGION, &r2), -EINVAL);
    ck_assert_int_eq(io(&g, g.vcpu, KVM_SMI, NULL), 0);
    struct kvm_vcpu_events e;
    ck_assert_int_eq(io(&g, g.vcpu, KVM_GET_VCPU_EVENTS, &e), 0);
    ck_assert(e.flags & KVM_VCPUEVENT_VALID_SMM);
    ck_assert_uint_eq(e.smi.pending, 1);
    ck_assert_uint_eq(e.smi.smm, 0);
    teardown(&g);
}
END_TEST

START_TEST(smi_entry_and_rsm)
{
    struct g g;
    setup(&g);
    /* normal code: mov ax,0x1234; out 0x10,al; mov al,3; out 0x10,al; hlt */
    static const uint8_t code[] = {0xb8, 0x34, 0x12, 0xe6, 0x10, 0xb0, 0x03, 0xe6, 0x10, 0xf4};
    put(g.ram, 0x1000, code, sizeof code);
    /* address space 0 at SMBASE + 0x8000 would report 0xbb: SMM must not run it */
    static const uint8_t wrong[] = {0xb0, 0xbb, 0xe6, 0x11, 0xf4};
    put(g.ram, SMBASE + 0x8000, wrong, sizeof wrong);
    /* the SMI handler in SMRAM: mov al,0xfe; out 0x11,al; rsm */
    static const uint8_t handler[] = {0xb0, 0xfe, 0xe6, 0x11, 0x0f, 0xaa};
    put(g.smram, 0x8000, handler, sizeof handler);

    ck_assert_uint_eq(run_out(&g, 0x10), 0x34);
    ck_assert_uint_eq(g.run->flags & KVM_RUN_X86_SMM, 0);
    ck_assert_int_eq(io(&g, g.vcpu, KVM_SMI, NULL), 0);
    ck_assert_uint_eq(run_out(&g, 0x11), 0xfe); /* from address space 1 */
    ck_assert_uint_ne(g.run->flags & KVM_RUN_X86_SMM, 0);
    struct kvm_sregs s;
    ck_assert_int_eq(io(&g, g.vcpu, KVM_GET_SREGS, &s), 0);
    ck_assert_uint_eq(s.cs.base, SMBASE);
    ck_assert_uint_eq(s.cs.selector, SMBASE >> 4);
    ck_assert_uint_eq(s.cs.limit, 0xffffffffu);
    ck_assert_uint_eq(s.cr0 & 1, 0);
    ck_assert_uint_eq(s.idt.limit, 0);
    struct kvm_regs r;
    ck_assert_int_eq(io(&g, g.vcpu, KVM_GET_REGS, &r), 0);
    ck_assert_uint_eq(r.rip, 0x8004); /* after the handler's OUT */
    ck_assert_uint_eq(r.rflags, 2);
    struct kvm_vcpu_events e;
    ck_assert_int_eq(io(&g, g.vcpu, KVM_GET_VCPU_EVENTS, &e), 0);
    ck_assert_uint_eq(e.smi.smm, 1);
    ck_assert_uint_eq(e.smi.pending, 0);
    ck_assert_uint_eq(e.nmi.masked, 1); /* enter_smm blocks NMIs */
    /* the 64-bit map (the supported CPUID has LM) at SMBASE + 0xfe00 of SMRAM */
    const uint8_t *m = g.smram + 0xfe00;
    uint32_t rev, base;
    memcpy(&rev, m + 0xfc, 4);
    memcpy(&base, m + 0x100, 4);
    ck_assert_uint_eq(rev, 0x00020064);
    ck_assert_uint_eq(base, SMBASE);
    ck_assert_uint_eq(rd64(m + 0x178), 0x1005);          /* RIP after the first OUT */
    ck_assert_uint_eq(rd64(m + 0x180 + 15 * 8), 0x1234); /* RAX (gprs reversed) */
    for (unsigned i = 0; i < 512; i++) /* address space 0 at the same GPA untouched */
        ck_assert_uint_eq(g.ram[SMBASE + 0xfe00 + i], 0);

    /* RSM: back at 0x1005, RAX's upper byte restored from the map */
    ck_assert_uint_eq(run_out(&g, 0x10), 3);
    ck_assert_uint_eq(g.run->flags & KVM_RUN_X86_SMM, 0);
    ck_assert_int_eq(io(&g, g.vcpu, KVM_GET_REGS, &r), 0);
    ck_assert_uint_eq(r.rax & 0xffff, 0x1203);
    ck_assert_int_eq(io(&g, g.vcpu, KVM_GET_SREGS, &s), 0);
    ck_assert_uint_eq(s.cs.base, 0);
    ck_assert_int_eq(io(&g, g.vcpu, KVM_GET_VCPU_EVENTS, &e), 0);
    ck_assert_uint_eq(e.smi.smm, 0);
    ck_assert_uint_eq(e.nmi.masked, 0); /* not inside an NMI: RSM unblocks */
    teardown(&g);
}
END_TEST

START_TEST(rsm_outside_smm_ud)
{
    struct g g;
    setup(&g);
    static const uint8_t code[] = {0x0f, 0xaa}; /* rsm */
    put(g.ram, 0x1000, code, sizeof code);
    /* IVT vector 6 -> 0:0x2000: mov al,6; out 0x12,al */
    uint16_t ivt[2] = {0x2000, 0};
    memcpy(g.ram + 6 * 4, ivt, sizeof ivt);
    static const uint8_t ud[] = {0xb0, 0x06, 0xe6, 0x12, 0xf4};
    put(g.ram, 0x2000, ud, sizeof ud);
    ck_assert_uint_eq(run_out(&g, 0x12), 6);
    teardown(&g);
}
END_TEST

START_TEST(events_smm_round_trip)
{
    struct g g;
    setup(&g);
    struct kvm_vcpu_events e;
    ck_assert_int_eq(io(&g, g.vcpu, KVM_GET_VCPU_EVENTS, &e), 0);
    e.flags = KVM_VCPUEVENT_VALID_SMM;
    e.smi.smm = 1;
    e.smi.pending = 1;
    e.smi.smm_inside_nmi = 1;
    ck_assert_int_eq(io(&g, g.vcpu, KVM_SET_VCPU_EVENTS, &e), 0);
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(io(&g, g.vcpu, KVM_GET_VCPU_EVENTS, &e), 0);
    ck_assert_uint_eq(e.smi.smm, 1);
    ck_assert_uint_eq(e.smi.pending, 1);
    ck_assert_uint_eq(e.smi.smm_inside_nmi, 1);
    /* leaving SMM through the ioctl drops smm_inside_nmi (kvm_smm_changed) */
    e.flags = KVM_VCPUEVENT_VALID_SMM;
    e.smi.smm = 0;
    e.smi.pending = 0;
    ck_assert_int_eq(io(&g, g.vcpu, KVM_SET_VCPU_EVENTS, &e), 0);
    ck_assert_int_eq(io(&g, g.vcpu, KVM_GET_VCPU_EVENTS, &e), 0);
    ck_assert_uint_eq(e.smi.smm, 0);
    ck_assert_uint_eq(e.smi.pending, 0);
    ck_assert_uint_eq(e.smi.smm_inside_nmi, 0);
    teardown(&g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("smm");
    TCase *tc = tcase_create("smm");
    tcase_add_test(tc, caps_and_errnos);
    tcase_add_test(tc, smi_entry_and_rsm);
    tcase_add_test(tc, rsm_outside_smm_ud);
    tcase_add_test(tc, events_smm_round_trip);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
