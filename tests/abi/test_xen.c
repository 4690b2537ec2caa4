/* Xen HVM emulation (abi/xen*.c, msr/h_xen.c), checked against Linux 6.12
 * arch/x86/kvm/xen.c (line numbers of that file):
 *  - KVM_CAP_XEN_HVM names only what is implemented; KVM_XEN_HVM_CONFIG refuses flags
 *    user space cannot enable (1343) and blobs together with INTERCEPT_HCALL (1352);
 *  - the hypercall page (kvm_xen_write_hypercall_page, 1284-1302): 128 stubs
 *    "mov $i,%eax; vmcall|vmmcall; ret; int3..." for the flavour, a non-zero page number
 *    refused (1284: the WRMSR fails, here as a user-space exit with reason INVAL);
 *  - a hypercall through the page exits with KVM_EXIT_XEN (kvm_xen_hypercall's
 *    handle_in_userspace) and the result user space leaves is in RAX after the next
 *    KVM_RUN (kvm_xen_hypercall_complete_userspace);
 *  - shared_info placement: the wall clock at 0xc00 (long mode) / 0x900 (compat) with an
 *    even version (kvm_xen_shared_info_init, 63-96), vcpu_info's pvclock at +0x20 and the
 *    separate vcpu_time_info filled at KVM_RUN (x86.c kvm_guest_time_update);
 *  - an event channel the guest sends to itself with EVTCHNOP_send through a port
 *    registered by KVM_XEN_ATTR_TYPE_EVTCHN sets shared_info's pending bit, vcpu_info's
 *    pending_sel and evtchn_upcall_pending (kvm_xen_set_evtchn_fast, 1754-1811) and is
 *    taken at the global upcall vector (irq.c kvm_cpu_get_extint);
 *  - the attribute errnos (lines cited at each check). */
#include <check.h>
#include "tests/check_main.h"
#include "tests/abi/abi_test_guest.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "abi/abi.h"
#include "abi/abi_internal.h"

#define MEM_SIZE 0x200000
#define GDT_GPA 0x1000
#define IDT_GPA 0x2000
#define PT_GPA 0x3000
#define CODE_GPA 0x10000
#define HANDLER_GPA 0x11000
#define HCALL_GPA 0x20000
#define SHINFO_GPA 0x30000
#define TIME_GPA 0x31000
#define DATA_GPA 0x32000
#define STACK_TOP 0x40000
#define XEN_MSR 0x40000200
#define UPCALL_VECTOR 0x20

struct guest {
    struct abi_process *p;
    int kvm, vm, vcpu;
    uint8_t *mem;
    struct kvm_run *run;
    bool amd;
};

/* A 64-bit guest at CODE_GPA with an in-kernel irqchip (the upcall needs a LAPIC), the
 * Xen MSR configured with INTERCEPT_HCALL, and user-space exits for refused MSRs. */
static void guest_setup(struct guest *g, const uint8_t *code, size_t len)
{
    g->p = abi_process_create();
    g->kvm = abi_open_dev_kvm(g->p, O_RDWR);
    ck_assert_int_ge(g->kvm, 0);
    g->vm = (int)abi_ioctl(g->p, g->kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(g->vm, 0);
    g->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(g->mem, MAP_FAILED);
    abi_test_flat_tables(g->mem, GDT_GPA, PT_GPA);
    memcpy(g->mem + CODE_GPA, code, len);
    struct kvm_userspace_memory_region r = {.slot = 0, .memory_size = MEM_SIZE,
                                            .userspace_addr = (uintptr_t)g->mem};
    ck_assert_int_eq(abi_ioctl(g->p, g->vm, KVM_SET_USER_MEMORY_REGION, (unsigned long)&r), 0);
    ck_assert_int_eq(abi_ioctl(g->p, g->vm, KVM_CREATE_IRQCHIP, 0), 0);
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
                                 .args = {KVM_MSR_EXIT_REASON_INVAL}};
    ck_assert_int_eq(abi_ioctl(g->p, g->vm, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
    struct kvm_xen_hvm_config xc = {.flags = KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL, .msr = XEN_MSR};
    ck_assert_int_eq(abi_ioctl(g->p, g->vm, KVM_XEN_HVM_CONFIG, (unsigned long)&xc), 0);
    struct abi_test_cpuid cp;
    g->vcpu = abi_test_vcpu_supported(g->p, g->kvm, g->vm, &g->run, &cp);
    const struct kvm_cpuid_entry2 *l0 = abi_cpuid_find(cp.e, cp.h.nent, 0, 0);
    ck_assert_ptr_nonnull(l0);
    g->amd = l0->ebx == 0x68747541; /* "Auth" */
    struct kvm_sregs s;
    ck_assert_int_eq(abi_ioctl(g->p, g->vcpu, KVM_GET_SREGS, (unsigned long)&s), 0);
    abi_test_flat_sregs(&s, true, GDT_GPA, IDT_GPA, 0xfff, PT_GPA);
    ck_assert_int_eq(abi_ioctl(g->p, g->vcpu, KVM_SET_SREGS, (unsigned long)&s), 0);
    struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2, .rsp = STACK_TOP};
    ck_assert_int_eq(abi_ioctl(g->p, g->vcpu, KVM_SET_REGS, (unsigned long)&regs), 0);
}

static void guest_teardown(struct guest *g)
{
    abi_test_close_all(g->p);
    munmap(g->mem, MEM_SIZE);
}

static long hvm_attr(struct guest *g, bool set, struct kvm_xen_hvm_attr *a)
{
    return abi_ioctl(g->p, g->vm, set ? KVM_XEN_HVM_SET_ATTR : KVM_XEN_HVM_GET_ATTR,
                     (unsigned long)a);
}

static long vcpu_attr(struct guest *g, bool set, struct kvm_xen_vcpu_attr *a)
{
    return abi_ioctl(g->p, g->vcpu, set ? KVM_XEN_VCPU_SET_ATTR : KVM_XEN_VCPU_GET_ATTR,
                     (unsigned long)a);
}

static uint32_t io_value(const struct guest *g, uint16_t port)
{
    ck_assert_uint_eq(g->run->exit_reason, KVM_EXIT_IO);
    ck_assert_uint_eq(g->run->io.port, port);
    uint32_t v;
    memcpy(&v, (uint8_t *)g->run + g->run->io.data_offset, 4);
    return v;
}

/* mov ecx, XEN_MSR; mov eax, HCALL_GPA; xor edx, edx; wrmsr; out 0x10, eax;
 * mov eax, HCALL_GPA + 1; wrmsr (page 1: refused); hlt */
static const uint8_t wr_page[] = {0xb9, 0x00, 0x02, 0x00, 0x40, 0xb8, 0x00, 0x00, 0x02, 0x00,
                                  0x31, 0xd2, 0x0f, 0x30, 0xe7, 0x10, 0xb8, 0x01, 0x00, 0x02,
                                  0x00, 0x0f, 0x30, 0xf4};

START_TEST(caps_and_config)
{
    struct abi_process *p = abi_process_create();
    int kvm = abi_open_dev_kvm(p, O_RDWR);
    long caps = abi_ioctl(p, kvm, KVM_CHECK_EXTENSION, KVM_CAP_XEN_HVM);
    ck_assert(caps & KVM_XEN_HVM_CONFIG_HYPERCALL_MSR);
    ck_assert(caps & KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL);
    ck_assert(caps & KVM_XEN_HVM_CONFIG_SHARED_INFO);
    ck_assert(caps & KVM_XEN_HVM_CONFIG_SHARED_INFO_HVA);
    ck_assert(caps & KVM_XEN_HVM_CONFIG_RUNSTATE);
    /* not implemented, so not advertised */
    ck_assert(!(caps & (KVM_XEN_HVM_CONFIG_EVTCHN_2LEVEL | KVM_XEN_HVM_CONFIG_EVTCHN_SEND)));
    int vm = (int)abi_ioctl(p, kvm, KVM_CREATE_VM, 0);
    /* 1343: SHARED_INFO is a capability, not a flag user space enables */
    struct kvm_xen_hvm_config xc = {.flags = KVM_XEN_HVM_CONFIG_SHARED_INFO, .msr = XEN_MSR};
    ck_assert_int_eq(abi_ioctl(p, vm, KVM_XEN_HVM_CONFIG, (unsigned long)&xc), -EINVAL);
    /* 1352: no blobs with interception */
    xc = (struct kvm_xen_hvm_config){.flags = KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL,
                                     .msr = XEN_MSR, .blob_size_64 = 1};
    ck_assert_int_eq(abi_ioctl(p, vm, KVM_XEN_HVM_CONFIG, (unsigned long)&xc), -EINVAL);
    ck_assert_int_eq(abi_ioctl(p, vm, KVM_XEN_HVM_CONFIG, 8), -EFAULT);
    abi_test_close_all(p);
}
END_TEST

START_TEST(hypercall_page)
{
    struct guest g;
    guest_setup(&g, wr_page, sizeof wr_page);
    ck_assert_int_eq(abi_ioctl(g.p, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(io_value(&g, 0x10), HCALL_GPA);
    for (uint32_t i = 0; i < 128; i++) {
        const uint8_t *s = g.mem + HCALL_GPA + i * 32;
        uint32_t imm;
        memcpy(&imm, s + 1, 4);
        ck_assert_uint_eq(s[0], 0xb8);
        ck_assert_uint_eq(imm, i);
        ck_assert_uint_eq(s[5], 0x0f);
        ck_assert_uint_eq(s[6], 0x01);
        ck_assert_uint_eq(s[7], g.amd ? 0xd9 : 0xc1); /* patch_hypercall of the flavour */
        ck_assert_uint_eq(s[8], 0xc3);
        for (unsigned k = 9; k < 32; k++)
            ck_assert_uint_eq(s[k], 0xcc);
    }
    /* page number 1 with INTERCEPT_HCALL: refused (1284) */
    ck_assert_int_eq(abi_ioctl(g.p, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_X86_WRMSR);
    ck_assert_uint_eq(g.run->msr.reason, KVM_MSR_EXIT_REASON_INVAL);
    ck_assert_uint_eq(g.run->msr.index, XEN_MSR);
    guest_teardown(&g);
}
END_TEST

/* wrmsr the page as above, then: mov eax, 17; mov rdi, imm64; mov r10, imm32;
 * mov ebx, HCALL_GPA + 17*32; call rbx; out 0x10, eax; hlt */
static const uint8_t hcall_code[] = {
    0xb9, 0x00, 0x02, 0x00, 0x40, 0xb8, 0x00, 0x00, 0x02, 0x00, 0x31, 0xd2, 0x0f, 0x30,
    0xb8, 0x11, 0x00, 0x00, 0x00,                                     /* mov eax, 17 */
    0x48, 0xbf, 0xef, 0xbe, 0xad, 0xde, 0x5a, 0x5a, 0x00, 0x00,       /* mov rdi, ... */
    0x49, 0xc7, 0xc2, 0x44, 0x33, 0x22, 0x11,                         /* mov r10, 0x11223344 */
    0xbb, 0x20, 0x02, 0x02, 0x00,                                     /* mov ebx, 0x20220 */
    0xff, 0xd3,                                                       /* call rbx */
    0xe7, 0x10, 0xf4};

START_TEST(intercepted_hypercall)
{
    struct guest g;
    guest_setup(&g, hcall_code, sizeof hcall_code);
    ck_assert_int_eq(abi_ioctl(g.p, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_XEN);
    ck_assert_uint_eq(g.run->xen.type, KVM_EXIT_XEN_HCALL);
    ck_assert_uint_eq(g.run->xen.u.hcall.input, 17);
    ck_assert_uint_eq(g.run->xen.u.hcall.longmode, 1);
    ck_assert_uint_eq(g.run->xen.u.hcall.cpl, 0);
    ck_assert_uint_eq(g.run->xen.u.hcall.params[0], 0x5a5adeadbeefull);
    ck_assert_uint_eq(g.run->xen.u.hcall.params[3], 0x11223344); /* r10 */
    g.run->xen.u.hcall.result = 0xcafef00d;
    ck_assert_int_eq(abi_ioctl(g.p, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(io_value(&g, 0x10), 0xcafef00d); /* RAX after the stub's ret */
    guest_teardown(&g);
}
END_TEST

static const uint8_t just_hlt[] = {0xe7, 0x10, 0xf4}; /* out 0x10, eax; hlt */

START_TEST(shared_info_placement)
{
    struct guest g;
    guest_setup(&g, just_hlt, sizeof just_hlt);
    struct kvm_xen_hvm_attr a = {.type = KVM_XEN_ATTR_TYPE_LONG_MODE, .u.long_mode = 1};
    ck_assert_int_eq(hvm_attr(&g, true, &a), 0);
    a = (struct kvm_xen_hvm_attr){.type = KVM_XEN_ATTR_TYPE_SHARED_INFO,
                                  .u.shared_info.gfn = SHINFO_GPA >> 12};
    ck_assert_int_eq(hvm_attr(&g, true, &a), 0);
    /* the 64-bit wall clock at 0xc00: even version, seconds of today's epoch */
    uint32_t wc[3];
    memcpy(wc, g.mem + SHINFO_GPA + 0xc00, sizeof wc);
    ck_assert_uint_ne(wc[0], 0);
    ck_assert_uint_eq(wc[0] & 1, 0);
    ck_assert_uint_ge(wc[1] + 1000ull, (uint64_t)time(NULL) - 3600 * 24 * 365);
    ck_assert_uint_lt(wc[2], 1000000000u);
    /* compat: 0x900 (a mode change re-initialises it) */
    a = (struct kvm_xen_hvm_attr){.type = KVM_XEN_ATTR_TYPE_LONG_MODE, .u.long_mode = 0};
    ck_assert_int_eq(hvm_attr(&g, true, &a), 0);
    uint32_t cwc;
    memcpy(&cwc, g.mem + SHINFO_GPA + 0x900, 4);
    ck_assert(cwc && !(cwc & 1));
    a = (struct kvm_xen_hvm_attr){.type = KVM_XEN_ATTR_TYPE_SHARED_INFO};
    ck_assert_int_eq(hvm_attr(&g, false, &a), 0);
    ck_assert_uint_eq(a.u.shared_info.gfn, SHINFO_GPA >> 12);
    /* vcpu_info inside shared_info, vcpu_time_info on its own page */
    struct kvm_xen_vcpu_attr va = {.type = KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO,
                                   .u.gpa = SHINFO_GPA + 0x40};
    ck_assert_int_eq(vcpu_attr(&g, true, &va), 0);
    va = (struct kvm_xen_vcpu_attr){.type = KVM_XEN_VCPU_ATTR_TYPE_VCPU_TIME_INFO,
                                    .u.gpa = TIME_GPA};
    ck_assert_int_eq(vcpu_attr(&g, true, &va), 0);
    ck_assert_int_eq(abi_ioctl(g.p, g.vcpu, KVM_RUN, 0), 0);
    io_value(&g, 0x10);
    for (int k = 0; k < 2; k++) {
        const uint8_t *t = g.mem + (k ? TIME_GPA : SHINFO_GPA + 0x40 + 0x20);
        uint32_t version, mul;
        memcpy(&version, t, 4);
        memcpy(&mul, t + 24, 4);
        ck_assert(version && !(version & 1));
        ck_assert_uint_ne(mul, 0);
    }
    va = (struct kvm_xen_vcpu_attr){.type = KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO};
    ck_assert_int_eq(vcpu_attr(&g, false, &va), 0);
    ck_assert_uint_eq(va.u.gpa, SHINFO_GPA + 0x40);
    guest_teardown(&g);
}
END_TEST

/* wrmsr the page; sti; out 0x10 (host sets things up); mov eax, 32 (event_channel_op);
 * mov edi, 4 (EVTCHNOP_send); mov esi, DATA_GPA (struct evtchn_send); mov ebx, stub 32;
 * call rbx; out 0x11, eax (not reached: the upcall comes first); spin: pause; jmp spin.
 * Handler at HANDLER_GPA: out 0x12; hlt */
static const uint8_t evtchn_code[] = {
    0xb9, 0x00, 0x02, 0x00, 0x40, 0xb8, 0x00, 0x00, 0x02, 0x00, 0x31, 0xd2, 0x0f, 0x30,
    0xfb, 0xe7, 0x10,
    0xb8, 0x20, 0x00, 0x00, 0x00, 0xbf, 0x04, 0x00, 0x00, 0x00, 0xbe, 0x00, 0x20, 0x03, 0x00,
    0xbb, 0x00, 0x04, 0x02, 0x00, 0xff, 0xd3, 0xe7, 0x11,
    0xf3, 0x90, 0xeb, 0xfc};
static const uint8_t handler_code[] = {0xe7, 0x12, 0xf4};

START_TEST(evtchn_upcall_vector)
{
    struct guest g;
    guest_setup(&g, evtchn_code, sizeof evtchn_code);
    memcpy(g.mem + HANDLER_GPA, handler_code, sizeof handler_code);
    uint8_t *gate = g.mem + IDT_GPA + UPCALL_VECTOR * 16; /* 64-bit interrupt gate */
    memset(gate, 0, 16);
    gate[0] = HANDLER_GPA & 0xff;
    gate[1] = (HANDLER_GPA >> 8) & 0xff;
    gate[2] = 8;
    gate[5] = 0x8e;
    gate[6] = (HANDLER_GPA >> 16) & 0xff;
    uint32_t send_port = 3;
    memcpy(g.mem + DATA_GPA, &send_port, 4);
    ck_assert_int_eq(abi_ioctl(g.p, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(io_value(&g, 0x10), HCALL_GPA);
    /* the guest is in long mode (the MSR write set it); shared_info and vcpu_info[0] */
    struct kvm_xen_hvm_attr a = {.type = KVM_XEN_ATTR_TYPE_SHARED_INFO,
                                 .u.shared_info.gfn = SHINFO_GPA >> 12};
    ck_assert_int_eq(hvm_attr(&g, true, &a), 0);
    struct kvm_xen_vcpu_attr va = {.type = KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO, .u.gpa = SHINFO_GPA};
    ck_assert_int_eq(vcpu_attr(&g, true, &va), 0);
    a = (struct kvm_xen_hvm_attr){.type = KVM_XEN_ATTR_TYPE_UPCALL_VECTOR,
                                  .u.vector = UPCALL_VECTOR};
    ck_assert_int_eq(hvm_attr(&g, true, &a), 0);
    /* outbound port 3 loops back to port 70 on vCPU 0 (word 1, bit 6) */
    a = (struct kvm_xen_hvm_attr){.type = KVM_XEN_ATTR_TYPE_EVTCHN};
    a.u.evtchn.send_port = 3;
    a.u.evtchn.type = 2; /* EVTCHNSTAT_interdomain */
    a.u.evtchn.deliver.port.port = 70;
    a.u.evtchn.deliver.port.priority = KVM_IRQ_ROUTING_XEN_EVTCHN_PRIO_2LEVEL;
    ck_assert_int_eq(hvm_attr(&g, true, &a), 0);
    ck_assert_int_eq(hvm_attr(&g, true, &a), -EEXIST); /* 2137 */
    /* handled in the kernel (no KVM_EXIT_XEN), and the upcall is taken at the next
     * instruction boundary, before the stub's ret */
    ck_assert_int_eq(abi_ioctl(g.p, g.vcpu, KVM_RUN, 0), 0);
    io_value(&g, 0x12);
    struct kvm_regs regs;
    ck_assert_int_eq(abi_ioctl(g.p, g.vcpu, KVM_GET_REGS, (unsigned long)&regs), 0);
    ck_assert_uint_eq(regs.rax, 0); /* r = 0 */
    uint64_t pending1, sel;
    memcpy(&pending1, g.mem + SHINFO_GPA + 0x800 + 8, 8);
    memcpy(&sel, g.mem + SHINFO_GPA + 8, 8);
    ck_assert_uint_eq(pending1, 1ull << 6);
    ck_assert_uint_eq(sel, 1ull << 1);
    ck_assert_uint_eq(g.mem[SHINFO_GPA], 1); /* evtchn_upcall_pending */
    guest_teardown(&g);
}
END_TEST

START_TEST(attr_errnos)
{
    struct guest g;
    guest_setup(&g, just_hlt, sizeof just_hlt);
    struct kvm_xen_hvm_attr a = {.type = KVM_XEN_ATTR_TYPE_UPCALL_VECTOR, .u.vector = 0x0f};
    ck_assert_int_eq(hvm_attr(&g, true, &a), -EINVAL); /* 774: vectors below 0x10 */
    a = (struct kvm_xen_hvm_attr){.type = 0x7f};
    ck_assert_int_eq(hvm_attr(&g, true, &a), -ENOENT); /* 710 */
    ck_assert_int_eq(hvm_attr(&g, false, &a), -ENOENT); /* 815 */
    a = (struct kvm_xen_hvm_attr){.type = KVM_XEN_ATTR_TYPE_SHARED_INFO_HVA};
    ABI_XEN_SHINFO_HVA(&a) = (uintptr_t)g.mem + 8;
    ck_assert_int_eq(hvm_attr(&g, true, &a), -EINVAL); /* 754: not page aligned */
    a = (struct kvm_xen_hvm_attr){.type = KVM_XEN_ATTR_TYPE_SHARED_INFO,
                                  .u.shared_info.gfn = 0x100000};
    ck_assert_int_eq(hvm_attr(&g, true, &a), -EFAULT); /* 748: no memslot (pfncache) */
    /* ... and the cache stays active (__kvm_gpc_activate), so LONG_MODE's re-init fails */
    struct kvm_xen_hvm_attr lm0 = {.type = KVM_XEN_ATTR_TYPE_LONG_MODE, .u.long_mode = 1};
    ck_assert_int_eq(hvm_attr(&g, true, &lm0), -EFAULT);
    a.u.shared_info.gfn = KVM_XEN_INVALID_GFN;
    ck_assert_int_eq(hvm_attr(&g, true, &a), 0);
    a = (struct kvm_xen_hvm_attr){.type = KVM_XEN_ATTR_TYPE_EVTCHN};
    ck_assert_int_eq(hvm_attr(&g, true, &a), -EINVAL); /* 2213: port 0 */
    a.u.evtchn.send_port = 9;
    a.u.evtchn.flags = KVM_XEN_EVTCHN_DEASSIGN;
    ck_assert_int_eq(hvm_attr(&g, true, &a), -ENOENT); /* kvm_xen_eventfd_deassign */
    a.u.evtchn.flags = KVM_XEN_EVTCHN_UPDATE;
    ck_assert_int_eq(hvm_attr(&g, true, &a), -ENOENT); /* 2038 */
    a.u.evtchn.flags = 0;
    a.u.evtchn.type = 5; /* EVTCHNSTAT_ipi must loop back to the same port */
    a.u.evtchn.deliver.port.port = 10;
    ck_assert_int_eq(hvm_attr(&g, true, &a), -EINVAL);
    a.u.evtchn.flags = KVM_XEN_EVTCHN_RESET;
    ck_assert_int_eq(hvm_attr(&g, true, &a), 0);
    a = (struct kvm_xen_hvm_attr){.type = KVM_XEN_ATTR_TYPE_XEN_VERSION, .u.xen_version = 0x40011};
    ck_assert_int_eq(hvm_attr(&g, true, &a), 0);
    a.u.xen_version = 0;
    ck_assert_int_eq(hvm_attr(&g, false, &a), 0);
    ck_assert_uint_eq(a.u.xen_version, 0x40011);

    struct kvm_xen_vcpu_attr va = {.type = KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO,
                                   .u.gpa = SHINFO_GPA + 2};
    ck_assert_int_eq(vcpu_attr(&g, true, &va), -ENXIO); /* 892: not 4-byte aligned */
    va.u.gpa = SHINFO_GPA + 0xfe0; /* 64 bytes crossing the page: kvm_gpc_is_valid_len */
    ck_assert_int_eq(vcpu_attr(&g, true, &va), -EINVAL);
    va = (struct kvm_xen_vcpu_attr){.type = KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID, .u.vcpu_id = 1024};
    ck_assert_int_eq(vcpu_attr(&g, true, &va), -EINVAL); /* 1076: KVM_MAX_VCPUS */
    va = (struct kvm_xen_vcpu_attr){.type = KVM_XEN_VCPU_ATTR_TYPE_UPCALL_VECTOR, .u.vector = 2};
    ck_assert_int_eq(vcpu_attr(&g, true, &va), -EINVAL); /* 1106 */
    va = (struct kvm_xen_vcpu_attr){.type = KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADJUST};
    ck_assert_int_eq(vcpu_attr(&g, false, &va), -EINVAL); /* 1193: write-only */
    va = (struct kvm_xen_vcpu_attr){.type = KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID};
    ck_assert_int_eq(vcpu_attr(&g, false, &va), 0);
    ck_assert_uint_eq(va.u.vcpu_id, 0); /* kvm_xen_init_vcpu: vcpu_idx */
    va = (struct kvm_xen_vcpu_attr){.type = KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR};
    ck_assert_int_eq(vcpu_attr(&g, false, &va), -ENOENT); /* 1159: none set */
    va = (struct kvm_xen_vcpu_attr){.type = KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_CURRENT,
                                    .u.runstate.state = 4};
    ck_assert_int_eq(vcpu_attr(&g, true, &va), -EINVAL); /* 983: past RUNSTATE_offline */
    va = (struct kvm_xen_vcpu_attr){.type = KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_DATA,
                                    .u.runstate = {.state_entry_time = 5, .time_blocked = 4}};
    ck_assert_int_eq(vcpu_attr(&g, true, &va), -EINVAL); /* 1002: the times must add up */
    va.u.runstate.time_running = 1;
    ck_assert_int_eq(vcpu_attr(&g, true, &va), 0);
    /* the runstate area across a page: 64-bit layout, state then entry time = sum */
    va = (struct kvm_xen_vcpu_attr){.type = KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR,
                                    .u.gpa = DATA_GPA + 0x1000 - 15};
    struct kvm_xen_hvm_attr lm = {.type = KVM_XEN_ATTR_TYPE_LONG_MODE, .u.long_mode = 1};
    ck_assert_int_eq(hvm_attr(&g, true, &lm), 0);
    memset(g.mem + va.u.gpa, 0xa5, 56);
    ck_assert_int_eq(vcpu_attr(&g, true, &va), 0);
    uint64_t rs[6];
    memcpy(rs, g.mem + va.u.gpa, sizeof rs);
    ck_assert_uint_eq((uint32_t)rs[0], 0);     /* RUNSTATE_running */
    ck_assert_uint_eq(rs[1], 5);               /* state_entry_time */
    ck_assert_uint_eq(rs[2], 1);               /* running */
    ck_assert_uint_eq(rs[4], 4);               /* blocked */
    ck_assert_uint_eq(rs[6 - 1], 0);           /* offline */
    ck_assert_uint_eq(g.mem[va.u.gpa + 48], 0xa5); /* no overrun */
    va = (struct kvm_xen_vcpu_attr){.type = 0x7f};
    ck_assert_int_eq(vcpu_attr(&g, true, &va), -ENOENT); /* 870 */
    guest_teardown(&g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("xen");
    TCase *tc = tcase_create("xen");
    tcase_add_test(tc, caps_and_config);
    tcase_add_test(tc, hypercall_page);
    tcase_add_test(tc, intercepted_hypercall);
    tcase_add_test(tc, shared_info_placement);
    tcase_add_test(tc, evtchn_upcall_vector);
    tcase_add_test(tc, attr_errnos);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
