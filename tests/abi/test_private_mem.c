/* KVM_X86_SW_PROTECTED_VM (abi/memattr.c, abi/memslot.c, abi/gmem.c) as Linux 6.12:
 *   - KVM_CAP_VM_TYPES offers it; its VM fd says KVM_CAP_GUEST_MEMFD 1 and
 *     KVM_CAP_MEMORY_ATTRIBUTES PRIVATE (kvm_supported_mem_attributes), a default VM 0;
 *   - KVM_SET_MEMORY_ATTRIBUTES: flags, unsupported attributes, size 0, a wrapping or
 *     unaligned range are EINVAL (kvm_vm_ioctl_set_mem_attributes);
 *   - KVM_MEM_GUEST_MEMFD (check_memory_region_flags, kvm_set_memory_region,
 *     kvm_gmem_prepare_memory_region, kvm_gmem_commit_memory_region): EINVAL on a default
 *     VM, with READONLY or LOG_DIRTY_PAGES, for an unaligned offset, a file that is not
 *     this VM's guest_memfd or too small, and for changing the slot; EBADF for no file;
 *     EEXIST for a file range another slot is bound to;
 *   - a guest access to a private gfn reads the guest_memfd (what it wrote there survives
 *     conversions, a punched hole reads zeros), a shared one userspace_addr; a private gfn
 *     without guest_memfd, without a slot or after its file is closed ends KVM_RUN with
 *     EFAULT and KVM_EXIT_MEMORY_FAULT (PRIVATE, the 4K page), and the instruction runs
 *     again once the gfn is shared (mmu.c kvm_faultin_pfn, kvm_handle_noslot_fault,
 *     kvm_faultin_pfn_private);
 *   - KVM_HC_MAP_GPA_RANGE: -KVM_ENOSYS until KVM_CAP_EXIT_HYPERCALL enables it, then
 *     KVM_EXIT_HYPERCALL with gpa/npages/attrs and user space's ret in RAX; -KVM_EINVAL for
 *     an unaligned gpa without an exit (x86.c __kvm_emulate_hypercall). */
#include <errno.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <check.h>

#include "abi/kvm_compat.h"
#include "tests/abi/abi_test_guest.h"
#include "tests/check_main.h"

#define PG 0x1000u
#define SHARED_GPA 0x200000u /* slot 1: 2 pages, guest_memfd pages 1-2 */
#define PLAIN_GPA 0x300000u  /* slot 2: 1 page, no guest_memfd */
#define NOSLOT_GPA 0x400000u
#define PORT_VAL 0x10

struct ctx {
    struct abi_process *p;
    int sys, vm, vcpu, gm;
    uint8_t *low, *shared, *plain;
    struct kvm_run *run;
};

static long region2(struct ctx *c, int vm, uint32_t slot, uint32_t flags, uint64_t gpa,
                    uint64_t size, void *host, int gfd, uint64_t goff)
{
    struct kvm_userspace_memory_region2 m = {.slot = slot, .flags = flags,
                                             .guest_phys_addr = gpa, .memory_size = size,
                                             .userspace_addr = (uintptr_t)host,
                                             .guest_memfd_offset = goff, .guest_memfd = (uint32_t)gfd};
    return abi_ioctl(c->p, vm, KVM_SET_USER_MEMORY_REGION2, (uintptr_t)&m);
}

static long attrs(struct ctx *c, int vm, uint64_t gpa, uint64_t size, uint64_t a, uint64_t flags)
{
    struct kvm_memory_attributes m = {.address = gpa, .size = size, .attributes = a,
                                      .flags = flags};
    return abi_ioctl(c->p, vm, KVM_SET_MEMORY_ATTRIBUTES, (uintptr_t)&m);
}

static int gmem(struct ctx *c, int vm, uint64_t size)
{
    struct kvm_create_guest_memfd a = {.size = size};
    return (int)abi_ioctl(c->p, vm, KVM_CREATE_GUEST_MEMFD, (uintptr_t)&a);
}

static void *anon(size_t n)
{
    void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    return m;
}

/* A 32-bit flat guest without paging; code at 0x1000. */
static void open_vm(struct ctx *c, const uint8_t *code, size_t len)
{
    c->p = abi_process_create();
    c->sys = abi_open_dev_kvm(c->p, 0);
    c->vm = (int)abi_ioctl(c->p, c->sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
    ck_assert_int_ge(c->vm, 0);
    c->low = anon(0x100000);
    c->shared = anon(2 * PG);
    c->plain = anon(PG);
    uint64_t *g = (uint64_t *)(c->low + 0x500);
    g[1] = 0x00cf9a000000ffffull; /* 32-bit code */
    g[2] = 0x00cf92000000ffffull; /* data */
    memcpy(c->low + 0x1000, code, len);
    ck_assert_int_eq(region2(c, c->vm, 0, 0, 0, 0x100000, c->low, 0, 0), 0);
    c->gm = gmem(c, c->vm, 3 * PG);
    ck_assert_int_ge(c->gm, 0);
    ck_assert_int_eq(region2(c, c->vm, 1, KVM_MEM_GUEST_MEMFD, SHARED_GPA, 2 * PG, c->shared,
                             c->gm, PG),
                     0);
    ck_assert_int_eq(region2(c, c->vm, 2, 0, PLAIN_GPA, PG, c->plain, 0, 0), 0);
    c->vcpu = (int)abi_ioctl(c->p, c->vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(c->vcpu, 0);
    long sz = abi_ioctl(c->p, c->sys, KVM_GET_VCPU_MMAP_SIZE, 0);
    c->run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, c->vcpu, 0);
    ck_assert_ptr_ne(c->run, MAP_FAILED);
    struct kvm_sregs s;
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_GET_SREGS, (uintptr_t)&s), 0);
    abi_test_flat_sregs(&s, false, 0x500, 0, 0, 0);
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_SET_SREGS, (uintptr_t)&s), 0);
    struct kvm_regs r = {.rip = 0x1000, .rflags = 2};
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_SET_REGS, (uintptr_t)&r), 0);
}

/* Runs to the next OUT to PORT_VAL and returns EAX's value. */
static uint32_t run_val(struct ctx *c)
{
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_RUN, 0), 0);
    ck_assert_int_eq(c->run->exit_reason, KVM_EXIT_IO);
    ck_assert_int_eq(c->run->io.port, PORT_VAL);
    uint32_t v;
    memcpy(&v, (uint8_t *)c->run + c->run->io.data_offset, 4);
    return v;
}

static void run_mem_fault(struct ctx *c, uint64_t gpa)
{
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_RUN, 0), -EFAULT);
    ck_assert_int_eq(c->run->exit_reason, KVM_EXIT_MEMORY_FAULT);
    struct abi_kvm_memory_fault mf;
    memcpy(&mf, &c->run->mmio, sizeof mf);
    ck_assert_uint_eq(mf.flags, KVM_MEMORY_EXIT_FLAG_PRIVATE);
    ck_assert_uint_eq(mf.gpa, gpa);
    ck_assert_uint_eq(mf.size, PG);
}

/* code builders (32-bit) */
static size_t load_out(uint8_t *b, uint32_t gpa) /* mov eax, [gpa]; out PORT_VAL, eax */
{
    b[0] = 0xa1;
    memcpy(b + 1, &gpa, 4);
    b[5] = 0xe7;
    b[6] = PORT_VAL;
    return 7;
}

static size_t hypercall_out(uint8_t *b, uint32_t gpa) /* MAP_GPA_RANGE(gpa, 1, 7); out */
{
    size_t n = 0;
    const uint32_t regs[4][2] = {{0xb8, KVM_HC_MAP_GPA_RANGE}, {0xbb, gpa}, {0xb9, 1}, {0xba, 7}};
    for (unsigned i = 0; i < 4; i++) {
        b[n++] = (uint8_t)regs[i][0];
        memcpy(b + n, &regs[i][1], 4);
        n += 4;
    }
    bool amd = abi_vendor_current() == ABI_VENDOR_AMD;
    b[n++] = 0x0f;
    b[n++] = 0x01;
    b[n++] = amd ? 0xd9 : 0xc1; /* the flavour's own: VMMCALL / VMCALL */
    b[n++] = 0xe7;
    b[n++] = PORT_VAL;
    return n;
}

START_TEST(sw_protected_vm_ioctls)
{
    struct ctx c = {0};
    c.p = abi_process_create();
    c.sys = abi_open_dev_kvm(c.p, 0);
    long types = abi_ioctl(c.p, c.sys, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);
    ck_assert(types & (1 << KVM_X86_SW_PROTECTED_VM));
    ck_assert_int_eq(abi_ioctl(c.p, c.sys, KVM_CREATE_VM, 2), -EINVAL); /* SEV: not offered */
    int dvm = (int)abi_ioctl(c.p, c.sys, KVM_CREATE_VM, 0);
    int vm = (int)abi_ioctl(c.p, c.sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
    int vm2 = (int)abi_ioctl(c.p, c.sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
    ck_assert_int_ge(dvm, 0);
    ck_assert_int_ge(vm, 0);
    ck_assert_int_ge(vm2, 0);
    ck_assert_int_eq(abi_ioctl(c.p, c.sys, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_ATTRIBUTES),
                     KVM_MEMORY_ATTRIBUTE_PRIVATE);
    ck_assert_int_eq(abi_ioctl(c.p, dvm, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_ATTRIBUTES), 0);
    ck_assert_int_eq(abi_ioctl(c.p, vm, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_ATTRIBUTES),
                     KVM_MEMORY_ATTRIBUTE_PRIVATE);
    ck_assert_int_eq(abi_ioctl(c.p, dvm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD), 0);
    ck_assert_int_eq(abi_ioctl(c.p, vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD), 1);
    ck_assert_int_eq(abi_ioctl(c.p, vm, KVM_CHECK_EXTENSION, KVM_CAP_EXIT_HYPERCALL),
                     1 << KVM_HC_MAP_GPA_RANGE);
    /* attributes */
    const uint64_t P = KVM_MEMORY_ATTRIBUTE_PRIVATE;
    ck_assert_int_eq(attrs(&c, dvm, 0, PG, P, 0), -EINVAL);
    ck_assert_int_eq(attrs(&c, dvm, 0, PG, 0, 0), 0); /* nothing unsupported asked */
    ck_assert_int_eq(attrs(&c, vm, 0, PG, P, 1), -EINVAL);
    ck_assert_int_eq(attrs(&c, vm, 0, PG, 1, 0), -EINVAL);
    ck_assert_int_eq(attrs(&c, vm, 0, 0, P, 0), -EINVAL);
    ck_assert_int_eq(attrs(&c, vm, 0x800, PG, P, 0), -EINVAL);
    ck_assert_int_eq(attrs(&c, vm, 0, 0x800, P, 0), -EINVAL);
    ck_assert_int_eq(attrs(&c, vm, ~0xfffull, 2 * PG, P, 0), -EINVAL);
    ck_assert_int_eq(attrs(&c, vm, 0, PG, P, 0), 0);
    ck_assert_int_eq(attrs(&c, vm, 0, PG, 0, 0), 0);
    ck_assert_int_eq(abi_ioctl(c.p, vm, KVM_SET_MEMORY_ATTRIBUTES, 8), -EFAULT);
    /* guest_memfd bindings */
    uint8_t *h = anon(4 * PG);
    int g = gmem(&c, vm, 4 * PG), g2 = gmem(&c, vm2, 4 * PG);
    ck_assert_int_ge(g, 0);
    ck_assert_int_ge(g2, 0);
    const uint32_t G = KVM_MEM_GUEST_MEMFD;
    ck_assert_int_eq(region2(&c, dvm, 1, G, 0x100000, PG, h, g, 0), -EINVAL);
    ck_assert_int_eq(region2(&c, vm, 1, G | KVM_MEM_READONLY, 0x100000, PG, h, g, 0), -EINVAL);
    ck_assert_int_eq(region2(&c, vm, 1, G | KVM_MEM_LOG_DIRTY_PAGES, 0x100000, PG, h, g, 0),
                     -EINVAL);
    ck_assert_int_eq(region2(&c, vm, 1, G, 0x100000, PG, h, g, 0x800), -EINVAL);
    ck_assert_int_eq(region2(&c, vm, 1, G, 0x100000, PG, h, 1000, 0), -EBADF);
    ck_assert_int_eq(region2(&c, vm, 1, G, 0x100000, PG, h, vm, 0), -EINVAL);
    ck_assert_int_eq(region2(&c, vm, 1, G, 0x100000, PG, h, g2, 0), -EINVAL); /* vm2's */
    ck_assert_int_eq(region2(&c, vm, 1, G, 0x100000, 2 * PG, h, g, 3 * PG), -EINVAL);
    ck_assert_int_eq(region2(&c, vm, 1, G, 0x100000, 2 * PG, h, g, 2 * PG), 0);
    ck_assert_int_eq(region2(&c, vm, 2, G, 0x200000, 2 * PG, h + 2 * PG, g, 3 * PG), -EINVAL);
    ck_assert_int_eq(region2(&c, vm, 2, G, 0x200000, 2 * PG, h + 2 * PG, g, PG), -EEXIST);
    ck_assert_int_eq(region2(&c, vm, 2, G, 0x200000, 2 * PG, h + 2 * PG, g, 0), 0);
    ck_assert_int_eq(region2(&c, vm, 1, G, 0x300000, 2 * PG, h, g, 2 * PG), -EINVAL); /* move */
    ck_assert_int_eq(region2(&c, vm, 1, 0, 0x300000, 2 * PG, h, 0, 0), -EINVAL);
    ck_assert_int_eq(region2(&c, vm, 1, 0, 0, 0, h, 0, 0), 0); /* delete: its range is free */
    ck_assert_int_eq(region2(&c, vm, 3, G, 0x500000, 2 * PG, h, g, 2 * PG), 0);
    abi_test_close_all(c.p);
}
END_TEST

START_TEST(private_gfns_read_guest_memfd)
{
    uint8_t code[256];
    size_t n = 0;
    for (int i = 0; i < 2; i++)
        n += load_out(code + n, SHARED_GPA); /* shared, then private */
    const uint8_t store[] = {0xc7, 0x05, 0x00, 0x00, 0x20, 0x00, 0x78, 0x56, 0x34, 0x12};
    memcpy(code + n, store, sizeof store); /* mov dword [SHARED_GPA], 0x12345678 */
    n += sizeof store;
    for (int i = 0; i < 4; i++)
        n += load_out(code + n, SHARED_GPA); /* private, shared, private, punched */
    n += load_out(code + n, PLAIN_GPA);
    n += load_out(code + n, NOSLOT_GPA);
    n += load_out(code + n, SHARED_GPA + PG); /* after the file is closed */
    code[n++] = 0xf4;
    struct ctx c;
    open_vm(&c, code, n);
    const uint64_t P = KVM_MEMORY_ATTRIBUTE_PRIVATE;
    memset(c.shared, 0xaa, 2 * PG);
    memset(c.plain, 0x5c, PG);
    ck_assert_uint_eq(run_val(&c), 0xaaaaaaaau);
    ck_assert_int_eq(attrs(&c, c.vm, SHARED_GPA, 2 * PG, P, 0), 0);
    ck_assert_uint_eq(run_val(&c), 0); /* a fresh guest_memfd page */
    ck_assert_uint_eq(run_val(&c), 0x12345678u);
    ck_assert_uint_eq(c.shared[0], 0xaa); /* the private store left shared memory alone */
    ck_assert_int_eq(attrs(&c, c.vm, SHARED_GPA, PG, 0, 0), 0);
    ck_assert_uint_eq(run_val(&c), 0xaaaaaaaau);
    ck_assert_int_eq(attrs(&c, c.vm, SHARED_GPA, PG, P, 0), 0);
    ck_assert_uint_eq(run_val(&c), 0x12345678u); /* kept in the guest_memfd */
    bool ours = false;
    ck_assert_int_eq(abi_gmem_fallocate(c.p, c.gm, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
                                        PG, PG, &ours),
                     0); /* slot 1's first page is at file offset PG */
    ck_assert(ours);
    ck_assert_uint_eq(run_val(&c), 0);
    /* private without guest_memfd: EFAULT until shared, then the load runs again */
    ck_assert_int_eq(attrs(&c, c.vm, PLAIN_GPA, PG, P, 0), 0);
    run_mem_fault(&c, PLAIN_GPA);
    run_mem_fault(&c, PLAIN_GPA);
    ck_assert_int_eq(attrs(&c, c.vm, PLAIN_GPA, PG, 0, 0), 0);
    ck_assert_uint_eq(run_val(&c), 0x5c5c5c5cu);
    /* private without a slot: EFAULT; shared, it is MMIO */
    ck_assert_int_eq(attrs(&c, c.vm, NOSLOT_GPA - PG, 3 * PG, P, 0), 0);
    run_mem_fault(&c, NOSLOT_GPA);
    ck_assert_int_eq(attrs(&c, c.vm, NOSLOT_GPA, PG, 0, 0), 0);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_int_eq(c.run->exit_reason, KVM_EXIT_MMIO);
    ck_assert_uint_eq(c.run->mmio.phys_addr, NOSLOT_GPA);
    memcpy(c.run->mmio.data, "\x01\x02\x03\x04", 4);
    ck_assert_uint_eq(run_val(&c), 0x04030201u);
    /* the guest_memfd closed: its slot's private gfns fault (kvm_gmem_release) */
    close(c.gm);
    abi_fd_closed(c.p, c.gm);
    run_mem_fault(&c, SHARED_GPA + PG);
    ck_assert_int_eq(attrs(&c, c.vm, SHARED_GPA + PG, PG, 0, 0), 0);
    ck_assert_uint_eq(run_val(&c), 0xaaaaaaaau);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_int_eq(c.run->exit_reason, KVM_EXIT_HLT);
    abi_test_close_all(c.p);
}
END_TEST

START_TEST(map_gpa_range_hypercall)
{
    uint8_t code[256];
    size_t n = 0;
    n += hypercall_out(code + n, SHARED_GPA);       /* not enabled */
    n += hypercall_out(code + n, SHARED_GPA);       /* exits */
    n += hypercall_out(code + n, SHARED_GPA + 0x10); /* unaligned */
    code[n++] = 0xf4;
    struct ctx c;
    open_vm(&c, code, n);
    ck_assert_uint_eq(run_val(&c), (uint32_t)-1000); /* -KVM_ENOSYS */
    struct kvm_enable_cap cap = {.cap = KVM_CAP_EXIT_HYPERCALL, .args = {1u << 5}};
    ck_assert_int_eq(abi_ioctl(c.p, c.vm, KVM_ENABLE_CAP, (uintptr_t)&cap), -EINVAL);
    cap.args[0] = 1u << KVM_HC_MAP_GPA_RANGE;
    ck_assert_int_eq(abi_ioctl(c.p, c.vm, KVM_ENABLE_CAP, (uintptr_t)&cap), 0);
    ck_assert_int_eq(abi_ioctl(c.p, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_int_eq(c.run->exit_reason, KVM_EXIT_HYPERCALL);
    ck_assert_uint_eq(c.run->hypercall.nr, KVM_HC_MAP_GPA_RANGE);
    ck_assert_uint_eq(c.run->hypercall.args[0], SHARED_GPA);
    ck_assert_uint_eq(c.run->hypercall.args[1], 1);
    ck_assert_uint_eq(c.run->hypercall.args[2], 7);
    ck_assert_uint_eq(c.run->hypercall.longmode, 0); /* a 32-bit guest */
    c.run->hypercall.ret = 0x1234567855ull;
    ck_assert_uint_eq(run_val(&c), 0x34567855u); /* ret, in 32 bits */
    ck_assert_uint_eq(run_val(&c), (uint32_t)-22); /* -KVM_EINVAL */
    abi_test_close_all(c.p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("private_mem");
    TCase *tc = tcase_create("private_mem");
    tcase_add_test(tc, sw_protected_vm_ioctls);
    tcase_add_test(tc, private_gfns_read_guest_memfd);
    tcase_add_test(tc, map_gpa_range_hypercall);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
