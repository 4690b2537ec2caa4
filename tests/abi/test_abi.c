/* abi/ unit tests: the KVM ioctl layer called in-process (no LD_PRELOAD), checking
 * return values and errno against what Linux KVM 6.12 does (the errno expectations were
 * confirmed on this machine's real /dev/kvm with tests/abi/probe/kvm_probe.c). */
#include <check.h>
#include <time.h>
#include "tests/check_main.h"
#include "tests/abi/abi_test_guest.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "abi/abi_internal.h"

struct fixture {
    struct abi_process *p;
    int kvm, vm;
};

static struct fixture setup_vm(void)
{
    struct fixture f;
    f.p = abi_process_create();
    ck_assert_ptr_nonnull(f.p);
    f.kvm = abi_open_dev_kvm(f.p, O_RDWR);
    ck_assert_int_ge(f.kvm, 0);
    f.vm = (int)abi_ioctl(f.p, f.kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(f.vm, 0);
    return f;
}

static void teardown(struct fixture *f)
{
    abi_test_close_all(f->p);
}

static long io(struct fixture *f, int fd, unsigned long req, const void *arg)
{
    return abi_ioctl(f->p, fd, req, (unsigned long)arg);
}

/* KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT (6.12 x86.c kvm_set_msr_common MSR_IA32_MISC_ENABLE,
 * cpuid.c kvm_update_cpuid_runtime): with the quirk, MISC_ENABLE.MWAIT is just stored;
 * without it, a change needs SSE3 in the vCPU's CPUID and rewrites CPUID.1:ECX.MONITOR,
 * which KVM_GET_CPUID2 shows. Also: KVM_X86_DISABLE_EXITS_MWAIT is offered and
 * CPUID 0xD.1 has XSAVEC|XSAVES with IA32_XSS at 0 only. */
struct cpuid_buf {
    struct kvm_cpuid2 h;
    struct kvm_cpuid_entry2 e[ABI_MAX_CPUID_ENTRIES];
};

static uint32_t leaf1_ecx(struct fixture *f, int vcpu)
{
    static struct cpuid_buf b;
    b.h.nent = ABI_MAX_CPUID_ENTRIES;
    ck_assert_int_eq(io(f, vcpu, KVM_GET_CPUID2, &b), 0);
    for (unsigned i = 0; i < b.h.nent; i++)
        if (b.e[i].function == 1)
            return b.e[i].ecx;
    ck_abort_msg("no leaf 1");
    return 0;
}

static long set_msr(struct fixture *f, int vcpu, uint32_t index, uint64_t val)
{
    struct { struct kvm_msrs h; struct kvm_msr_entry e; } m = {{.nmsrs = 1}, {.index = index, .data = val}};
    return io(f, vcpu, KVM_SET_MSRS, &m);
}

START_TEST(misc_enable_mwait_drives_cpuid)
{
    struct fixture f = setup_vm();
    static struct cpuid_buf b;
    b.h.nent = ABI_MAX_CPUID_ENTRIES;
    ck_assert_int_eq(io(&f, f.kvm, KVM_GET_SUPPORTED_CPUID, &b), 0);
    bool xsaves = false;
    for (unsigned i = 0; i < b.h.nent; i++) {
        if (b.e[i].function == 1)
            ck_assert_uint_eq(b.e[i].ecx & (1u << 3), 0); /* KVM never advertises MONITOR */
        if (b.e[i].function == 0xd && b.e[i].index == 1) {
            ck_assert_uint_eq(b.e[i].eax, (1u << 1) | (1u << 3));
            ck_assert_uint_eq(b.e[i].ebx, 832);
            xsaves = true;
        }
    }
    ck_assert(xsaves);
    long dx = io(&f, f.kvm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_X86_DISABLE_EXITS);
    ck_assert_int_eq(dx & KVM_X86_DISABLE_EXITS_MWAIT, KVM_X86_DISABLE_EXITS_MWAIT);

    int vcpu = (int)io(&f, f.vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(vcpu, 0);
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_CPUID2, &b), 0);
    ck_assert_int_eq(set_msr(&f, vcpu, 0xda0 /* XSS */, 0), 1);
    ck_assert_int_eq(set_msr(&f, vcpu, 0xda0, 1), 0);
    /* with the quirk: stored, CPUID unchanged */
    ck_assert_int_eq(set_msr(&f, vcpu, 0x1a0, 0x1800 | (1u << 18)), 1);
    ck_assert_uint_eq(leaf1_ecx(&f, vcpu) & (1u << 3), 0);
    ck_assert_int_eq(set_msr(&f, vcpu, 0x1a0, 0x1800), 1);
    struct kvm_enable_cap c = {.cap = KVM_CAP_DISABLE_QUIRKS2,
                               .args = {KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT}};
    ck_assert_int_eq(io(&f, f.vm, KVM_ENABLE_CAP, &c), 0);
    ck_assert_int_eq(set_msr(&f, vcpu, 0x1a0, 0x1800 | (1u << 18)), 1);
    ck_assert_uint_eq(leaf1_ecx(&f, vcpu) & (1u << 3), 1u << 3);
    ck_assert_int_eq(set_msr(&f, vcpu, 0x1a0, 0x1800), 1);
    ck_assert_uint_eq(leaf1_ecx(&f, vcpu) & (1u << 3), 0);
    /* a vCPU without SSE3 cannot change the bit */
    for (unsigned i = 0; i < b.h.nent; i++)
        if (b.e[i].function == 1)
            b.e[i].ecx &= ~1u;
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_CPUID2, &b), 0);
    ck_assert_int_eq(set_msr(&f, vcpu, 0x1a0, 0x1800 | (1u << 18)), 0);
    ck_assert_int_eq(set_msr(&f, vcpu, 0x1a0, 0x1800), 1); /* unchanged bit: fine */
    teardown(&f);
}
END_TEST

/* vCPU device attributes (6.12 x86.c kvm_vcpu_ioctl_device_attr 5327-5355,
 * kvm_arch_tsc_has/get/set_attr 5241-5325): only KVM_VCPU_TSC_CTRL/KVM_VCPU_TSC_OFFSET,
 * ENXIO for the rest, EFAULT for a bad struct or value pointer; the offset is against the
 * host TSC, so host RDTSC + offset brackets the guest TSC (KVM_GET_MSRS of IA32_TSC). */
START_TEST(vcpu_tsc_offset_attribute)
{
    struct fixture f = setup_vm();
    int vcpu = (int)io(&f, f.vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(vcpu, 0);
    ck_assert_int_eq(io(&f, f.kvm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_VCPU_ATTRIBUTES), 1);
    uint64_t off = 0;
    struct kvm_device_attr a = {.group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET,
                                .addr = (uintptr_t)&off};
    ck_assert_int_eq(io(&f, vcpu, KVM_HAS_DEVICE_ATTR, &a), 0);
    a.attr = 1;
    ck_assert_int_eq(io(&f, vcpu, KVM_HAS_DEVICE_ATTR, &a), -ENXIO);
    a.attr = KVM_VCPU_TSC_OFFSET;
    a.group = 1;
    ck_assert_int_eq(io(&f, vcpu, KVM_GET_DEVICE_ATTR, &a), -ENXIO);
    a.group = KVM_VCPU_TSC_CTRL;
    ck_assert_int_eq(io(&f, vcpu, KVM_HAS_DEVICE_ATTR, (void *)8), -EFAULT);
    a.addr = 8;
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_DEVICE_ATTR, &a), -EFAULT);
    ck_assert_int_eq(io(&f, vcpu, KVM_GET_DEVICE_ATTR, &a), -EFAULT);
    a.addr = (uintptr_t)&off;
    off = 180ull * 1000000000ull;
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_DEVICE_ATTR, &a), 0);
    off = 0;
    ck_assert_int_eq(io(&f, vcpu, KVM_GET_DEVICE_ATTR, &a), 0);
    ck_assert_uint_eq(off, 180ull * 1000000000ull);
    struct { struct kvm_msrs h; struct kvm_msr_entry e; } m = {{.nmsrs = 1}, {.index = 0x10}};
    uint64_t before = __builtin_ia32_rdtsc();
    ck_assert_int_eq(io(&f, vcpu, KVM_GET_MSRS, &m), 1);
    uint64_t after = __builtin_ia32_rdtsc();
    ck_assert_uint_ge(m.e.data, before + off);
    ck_assert_uint_le(m.e.data, after + off);
    /* the TSC rate is the host's: KVM_GET_TSC_KHZ within 2% of a measurement here */
    long khz = io(&f, vcpu, KVM_GET_TSC_KHZ, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC_RAW, &t0);
    uint64_t c0 = __builtin_ia32_rdtsc();
    do
        clock_gettime(CLOCK_MONOTONIC_RAW, &t1);
    while ((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec) < 20000000);
    uint64_t c1 = __builtin_ia32_rdtsc();
    double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    double measured = (double)(c1 - c0) / ns * 1e6;
    ck_assert_msg(khz > measured * 0.98 && khz < measured * 1.02, "tsc khz %ld, measured %.0f", khz,
                  measured);
    teardown(&f);
}
END_TEST

/* KVM_CAP_DISABLE_QUIRKS{,2} (6.12 x86.c 4381-4383, 6079-6090): v2 answers the quirks
 * that can be disabled and refuses others with EINVAL, v1 ignores unknown bits; without
 * KVM_X86_QUIRK_STUFF_FEATURE_MSRS a new vCPU starts with UCODE_REV, PLATFORM_INFO and
 * ARCH_CAPABILITIES at 0 (x86.c 11586-11590, svm.c 1387, vmx.c 4889). */
START_TEST(disable_quirks)
{
    struct fixture f = setup_vm();
    long q = io(&f, f.kvm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_DISABLE_QUIRKS2);
    ck_assert_int_eq(q, KVM_X86_QUIRK_SLOT_ZAP_ALL | KVM_X86_QUIRK_STUFF_FEATURE_MSRS |
                            KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT |
                            KVM_X86_QUIRK_FIX_HYPERCALL_INSN |
                            KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS);
    struct kvm_enable_cap c = {.cap = KVM_CAP_DISABLE_QUIRKS2, .args = {KVM_X86_QUIRK_LINT0_REENABLED}};
    ck_assert_int_eq(io(&f, f.vm, KVM_ENABLE_CAP, &c), -EINVAL);
    c.cap = KVM_CAP_DISABLE_QUIRKS;
    ck_assert_int_eq(io(&f, f.vm, KVM_ENABLE_CAP, &c), 0);
    c.cap = KVM_CAP_DISABLE_QUIRKS2;
    c.flags = 1;
    c.args[0] = KVM_X86_QUIRK_STUFF_FEATURE_MSRS;
    ck_assert_int_eq(io(&f, f.vm, KVM_ENABLE_CAP, &c), -EINVAL);
    /* a vCPU made before the change keeps its stuffed values */
    int before = (int)io(&f, f.vm, KVM_CREATE_VCPU, 0);
    c.flags = 0;
    ck_assert_int_eq(io(&f, f.vm, KVM_ENABLE_CAP, &c), 0);
    int after = (int)io(&f, f.vm, KVM_CREATE_VCPU, (void *)1);
    ck_assert_int_ge(before, 0);
    ck_assert_int_ge(after, 0);
    struct { struct kvm_msrs h; struct kvm_msr_entry e[2]; } m = {
        {.nmsrs = 2}, {{.index = 0x8b /* UCODE_REV */}, {.index = 0xce /* PLATFORM_INFO */}}};
    ck_assert_int_eq(io(&f, before, KVM_GET_MSRS, &m), 2);
    ck_assert_uint_ne(m.e[0].data, 0);
    ck_assert_uint_ne(m.e[1].data, 0);
    ck_assert_int_eq(io(&f, after, KVM_GET_MSRS, &m), 2);
    ck_assert_uint_eq(m.e[0].data, 0);
    ck_assert_uint_eq(m.e[1].data, 0);
    teardown(&f);
}
END_TEST

START_TEST(system_ioctls)
{
    struct fixture f = setup_vm();
    ck_assert_int_eq(io(&f, f.kvm, KVM_GET_API_VERSION, 0), 12);
    ck_assert_int_eq(io(&f, f.kvm, KVM_GET_API_VERSION, (void *)1), -EINVAL);
    ck_assert_int_eq(io(&f, f.kvm, _IO(KVMIO, 0xee), 0), -EINVAL);
    ck_assert_int_eq(io(&f, f.kvm, KVM_CREATE_VM, (void *)5), -EINVAL);
    ck_assert_int_eq(io(&f, f.kvm, KVM_GET_VCPU_MMAP_SIZE, 0), 3 * 4096);
    ck_assert_int_eq(io(&f, f.kvm, KVM_CHECK_EXTENSION, (void *)KVM_CAP_USER_MEMORY), 1);
    ck_assert_int_eq(io(&f, f.kvm, KVM_CHECK_EXTENSION, (void *)100000), 0);
    ck_assert_int_eq(io(&f, f.vm, _IO(KVMIO, 0xee), 0), -ENOTTY);
    ck_assert_int_eq(io(&f, 999, KVM_GET_API_VERSION, 0), -EBADF);
    teardown(&f);
}
END_TEST

START_TEST(supported_cpuid)
{
    struct fixture f = setup_vm();
    struct {
        struct kvm_cpuid2 c;
        struct kvm_cpuid_entry2 e[256];
    } b;
    b.c.nent = 2;
    ck_assert_int_eq(io(&f, f.kvm, KVM_GET_SUPPORTED_CPUID, &b), -E2BIG);
    ck_assert_uint_eq(b.c.nent, 2); /* KVM leaves nent alone on E2BIG */
    ck_assert_int_eq(io(&f, f.kvm, KVM_GET_SUPPORTED_CPUID, (void *)8), -EFAULT);
    b.c.nent = 256;
    ck_assert_int_eq(io(&f, f.kvm, KVM_GET_SUPPORTED_CPUID, &b), 0);
    ck_assert_uint_gt(b.c.nent, 10);
    const struct kvm_cpuid_entry2 *l0 = abi_cpuid_find(b.e, b.c.nent, 0, 0);
    ck_assert_ptr_nonnull(l0);
    const struct kvm_cpuid_entry2 *kvm = abi_cpuid_find(b.e, b.c.nent, 0x40000000, 0);
    ck_assert_ptr_nonnull(kvm);
    ck_assert_int_eq(memcmp(&kvm->ebx, "KVMK", 4), 0);
    /* vendor flavour override */
    setenv("SOFTKVM_VENDOR", "amd", 1);
    ck_assert_int_eq(abi_vendor_current(), ABI_VENDOR_AMD);
    unsigned n = abi_supported_cpuid(ABI_VENDOR_AMD, b.e, 256);
    l0 = abi_cpuid_find(b.e, n, 0, 0);
    ck_assert_int_eq(memcmp(&l0->ebx, "Auth", 4), 0);
    setenv("SOFTKVM_VENDOR", "intel", 1);
    n = abi_supported_cpuid(abi_vendor_current(), b.e, 256);
    l0 = abi_cpuid_find(b.e, n, 0, 0);
    ck_assert_int_eq(memcmp(&l0->ebx, "Genu", 4), 0);
    unsetenv("SOFTKVM_VENDOR");
    teardown(&f);
}
END_TEST

/* emu's view after any sequence of slot adds, deletes, moves and flag changes is the
 * gpa-sorted, maximally merged list of the KVM slots (adds take an incremental path,
 * the rest a rebuild), and every page resolves to its slot's host address. 16 slots of
 * 4 pages over a 64-page window of one host mapping, so merges and splits are common. */
START_TEST(memory_slots_incremental_view)
{
    struct fixture f = setup_vm();
    enum { NS = 16, PG = 4096, WIN = 64 };
    uint8_t *mem = mmap(NULL, WIN * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct { bool used; uint64_t gpa, host; uint32_t flags; } ref[NS] = {{0}};
    struct abi_vm *vm = (struct abi_vm *)abi_obj_get(f.p, f.vm);
    uint64_t seed = 12345;
    for (int step = 0; step < 3000; step++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned id = (seed >> 33) % NS, start = (seed >> 40) % (WIN - 4);
        uint32_t flags = ((seed >> 50) % 8 == 0) ? KVM_MEM_LOG_DIRTY_PAGES : 0;
        struct kvm_userspace_memory_region r = {.slot = id, .flags = flags,
                                                .guest_phys_addr = 0x100000 + start * PG,
                                                .memory_size = 4 * PG,
                                                .userspace_addr = (uintptr_t)mem + start * PG};
        bool del = ref[id].used && (seed >> 45) % 3 == 0;
        if (del)
            r.memory_size = 0;
        else if (ref[id].used)
            r.userspace_addr = ref[id].host; /* a move or flag change keeps the host range */
        long rc = io(&f, f.vm, KVM_SET_USER_MEMORY_REGION, &r);
        if (rc == 0) {
            ref[id].used = !del;
            ref[id].gpa = r.guest_phys_addr;
            ref[id].host = r.userspace_addr;
            ref[id].flags = flags;
        }
        /* reference: walk pages of the gpa window in order, merging like KVM slots do */
        unsigned ne = 0;
        uint64_t egpa = 0, esize = 0, ehost = 0;
        bool elog = false;
        for (uint64_t g = 0x100000; g < 0x100000 + WIN * PG; g += PG) {
            int hit = -1;
            for (unsigned i = 0; i < NS; i++)
                if (ref[i].used && ref[i].gpa == g)
                    hit = (int)i;
            if (hit < 0)
                continue;
            bool log = ref[hit].flags & KVM_MEM_LOG_DIRTY_PAGES;
            if (ne && !elog && !log && egpa + esize == g && ehost + esize == ref[hit].host) {
                esize += 4 * PG;
            } else {
                if (ne) {
                    ck_assert_uint_eq(vm->as[0].mem.slots[ne - 1].gpa, egpa);
                    ck_assert_uint_eq(vm->as[0].mem.slots[ne - 1].size, esize);
                }
                ck_assert_uint_lt(ne, vm->as[0].mem.nslots + 1);
                ne++;
                egpa = g, esize = 4 * PG, ehost = ref[hit].host, elog = log;
            }
        }
        if (ne) {
            ck_assert_uint_eq(vm->as[0].mem.slots[ne - 1].gpa, egpa);
            ck_assert_uint_eq(vm->as[0].mem.slots[ne - 1].size, esize);
        }
        ck_assert_uint_eq(vm->as[0].mem.nslots, ne);
        for (unsigned i = 0; i < NS; i++)
            if (ref[i].used)
                for (unsigned p = 0; p < 4; p++)
                    ck_assert_ptr_eq(emu_gpa_to_host(&vm->as[0].mem, ref[i].gpa + p * PG + 8, 8, false),
                                     (uint8_t *)(uintptr_t)ref[i].host + p * PG + 8);
    }
    abi_obj_put(&vm->obj); /* the abi_obj_get reference, then the fds (LeakSanitizer) */
    teardown(&f);
    munmap(mem, WIN * PG);
}
END_TEST

START_TEST(memory_slots)
{
    struct fixture f = setup_vm();
    uint8_t *mem = mmap(NULL, 0x40000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct kvm_userspace_memory_region r = {.slot = 3, .guest_phys_addr = 0x100000,
                                            .memory_size = 0x10000,
                                            .userspace_addr = (uintptr_t)mem};
    ck_assert_int_eq(io(&f, f.vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    r.slot = 4;
    r.guest_phys_addr = 0x108000;
    ck_assert_int_eq(io(&f, f.vm, KVM_SET_USER_MEMORY_REGION, &r), -EEXIST);
    r.guest_phys_addr = 0x100800;
    ck_assert_int_eq(io(&f, f.vm, KVM_SET_USER_MEMORY_REGION, &r), -EINVAL);
    r.guest_phys_addr = 0x200000;
    r.flags = 0x80;
    ck_assert_int_eq(io(&f, f.vm, KVM_SET_USER_MEMORY_REGION, &r), -EINVAL);
    r.flags = 0;
    /* slot 4 continues slot 3 in both gpa and host address: emu sees one slot */
    r.guest_phys_addr = 0x110000;
    r.userspace_addr = (uintptr_t)mem + 0x10000;
    ck_assert_int_eq(io(&f, f.vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    struct abi_vm *vm = (struct abi_vm *)abi_obj_get(f.p, f.vm);
    ck_assert_uint_eq(vm->as[0].mem.nslots, 1);
    ck_assert_uint_eq(vm->as[0].mem.slots[0].size, 0x20000);
    ck_assert_ptr_eq(emu_gpa_to_host(&vm->as[0].mem, 0x118000, 8, false), mem + 0x18000);
    /* a dirty-logged slot stays separate and reports writes through GET_DIRTY_LOG */
    r.slot = 5;
    r.flags = KVM_MEM_LOG_DIRTY_PAGES;
    r.guest_phys_addr = 0x120000;
    r.userspace_addr = (uintptr_t)mem + 0x20000;
    ck_assert_int_eq(io(&f, f.vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    ck_assert_uint_eq(vm->as[0].mem.nslots, 2);
    abi_vm_mark_dirty(vm, 0x122010, 4);
    uint64_t bitmap[1] = {0};
    struct kvm_dirty_log dl = {.slot = 5, .dirty_bitmap = bitmap};
    ck_assert_int_eq(io(&f, f.vm, KVM_GET_DIRTY_LOG, &dl), 0);
    ck_assert_uint_eq(bitmap[0], 1u << 2);
    ck_assert_int_eq(io(&f, f.vm, KVM_GET_DIRTY_LOG, &dl), 0);
    ck_assert_uint_eq(bitmap[0], 0); /* cleared by the previous call */
    dl.slot = 3;
    ck_assert_int_eq(io(&f, f.vm, KVM_GET_DIRTY_LOG, &dl), -ENOENT);
    /* resizing or toggling READONLY of an existing slot is EINVAL; deleting works once */
    r.slot = 3;
    r.flags = 0;
    r.guest_phys_addr = 0x100000;
    r.userspace_addr = (uintptr_t)mem;
    r.memory_size = 0x20000;
    ck_assert_int_eq(io(&f, f.vm, KVM_SET_USER_MEMORY_REGION, &r), -EINVAL);
    r.memory_size = 0x10000;
    r.flags = KVM_MEM_READONLY;
    ck_assert_int_eq(io(&f, f.vm, KVM_SET_USER_MEMORY_REGION, &r), -EINVAL);
    r.flags = 0;
    r.memory_size = 0;
    ck_assert_int_eq(io(&f, f.vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    ck_assert_int_eq(io(&f, f.vm, KVM_SET_USER_MEMORY_REGION, &r), -EINVAL);
    ck_assert_ptr_null(emu_gpa_to_host(&vm->as[0].mem, 0x100000, 8, false));
    ck_assert_int_eq(io(&f, f.vm, KVM_SET_USER_MEMORY_REGION, (void *)8), -EFAULT);
    abi_obj_put(&vm->obj);
    munmap(mem, 0x40000);
    teardown(&f);
}
END_TEST

START_TEST(vcpu_state)
{
    struct fixture f = setup_vm();
    int vcpu = (int)io(&f, f.vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(vcpu, 0);
    ck_assert_int_eq(io(&f, f.vm, KVM_CREATE_VCPU, 0), -EEXIST);
    ck_assert_int_eq(io(&f, f.vm, KVM_CREATE_VCPU, (void *)(1ul << 20)), -EINVAL);
    ck_assert_int_eq(io(&f, vcpu, _IO(KVMIO, 0xee), 0), -EINVAL);
    ck_assert_int_eq(io(&f, vcpu, KVM_GET_REGS, (void *)8), -EFAULT);
    struct kvm_regs regs;
    ck_assert_int_eq(io(&f, vcpu, KVM_GET_REGS, &regs), 0);
    ck_assert_uint_eq(regs.rip, 0xfff0);
    ck_assert_uint_eq(regs.rflags, 2);
    regs.rax = 0x1234;
    regs.rflags = 0;
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_REGS, &regs), 0);
    memset(&regs, 0, sizeof regs);
    io(&f, vcpu, KVM_GET_REGS, &regs);
    ck_assert_uint_eq(regs.rax, 0x1234);
    ck_assert_uint_eq(regs.rflags, 2); /* bit 1 always set */
    struct kvm_sregs s, bad;
    ck_assert_int_eq(io(&f, vcpu, KVM_GET_SREGS, &s), 0);
    ck_assert_uint_eq(s.cs.selector, 0xf000);
    ck_assert_uint_eq(s.cs.base, 0xffff0000);
    ck_assert_uint_eq(s.apic_base, 0xfee00900);
    bad = s;
    bad.cr0 = 0x80000000;
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_SREGS, &bad), -EINVAL);
    bad = s;
    bad.efer = 0x400;
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_SREGS, &bad), -EINVAL);
    bad = s;
    bad.apic_base |= 1ull << 10; /* x2APIC without CPUID x2APIC (no CPUID set yet) */
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_SREGS, &bad), -EINVAL);
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_SREGS, &s), 0);
    struct kvm_xcrs x;
    ck_assert_int_eq(io(&f, vcpu, KVM_GET_XCRS, &x), 0);
    ck_assert_uint_eq(x.nr_xcrs, 1);
    x.xcrs[0].value = 0;
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_XCRS, &x), -EINVAL);
    struct kvm_debugregs dr;
    ck_assert_int_eq(io(&f, vcpu, KVM_GET_DEBUGREGS, &dr), 0);
    dr.dr7 = 1ull << 40;
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_DEBUGREGS, &dr), -EINVAL);
    struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_HALTED};
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_MP_STATE, &mp), -EINVAL); /* no in-kernel LAPIC */
    struct kvm_fpu fpu;
    ck_assert_int_eq(io(&f, vcpu, KVM_GET_FPU, &fpu), 0);
    fpu.xmm[3][0] = 0xab;
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_FPU, &fpu), 0);
    struct kvm_xsave xs;
    ck_assert_int_eq(io(&f, vcpu, KVM_GET_XSAVE, &xs), 0);
    ck_assert_uint_eq(((uint8_t *)xs.region)[160 + 3 * 16], 0xab);
    ((uint64_t *)xs.region)[64] = 1ull << 9; /* XSTATE_BV with an unsupported feature */
    ck_assert_int_eq(io(&f, vcpu, KVM_SET_XSAVE, &xs), -EINVAL);
    teardown(&f);
}
END_TEST

/* ---- guest runs (need the interpreter) ---- */

struct guest {
    struct fixture f;
    int vcpu;
    struct kvm_run *run;
    uint8_t *mem;
};

static struct guest guest_create(const uint8_t *code, size_t len)
{
    struct guest g;
    g.f = setup_vm();
    g.mem = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(g.mem + 0x1000, code, len);
    struct kvm_userspace_memory_region r = {.slot = 0, .memory_size = 0x10000,
                                            .userspace_addr = (uintptr_t)g.mem};
    ck_assert_int_eq(io(&g.f, g.f.vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    g.vcpu = (int)io(&g.f, g.f.vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(g.vcpu, 0);
    g.run = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, g.vcpu, 0);
    ck_assert_ptr_ne(g.run, MAP_FAILED);
    struct kvm_sregs s;
    io(&g.f, g.vcpu, KVM_GET_SREGS, &s);
    s.cs.base = 0;
    s.cs.selector = 0;
    io(&g.f, g.vcpu, KVM_SET_SREGS, &s);
    struct kvm_regs regs = {.rip = 0x1000, .rflags = 2, .rsp = 0x8000};
    io(&g.f, g.vcpu, KVM_SET_REGS, &regs);
    return g;
}

static void guest_destroy(struct guest *g)
{
    munmap(g->run, 3 * 4096);
    teardown(&g->f);
    munmap(g->mem, 0x10000);
}

START_TEST(run_io_and_hlt)
{
    static const uint8_t code[] = {0xb0, 0x42, 0xe6, 0x10, 0xe4, 0x11, 0xe6, 0x12, 0xf4};
    struct guest g = guest_create(code, sizeof code);
    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_IO);
    ck_assert_uint_eq(g.run->io.direction, KVM_EXIT_IO_OUT);
    ck_assert_uint_eq(g.run->io.port, 0x10);
    ck_assert_uint_eq(g.run->io.data_offset, 4096);
    ck_assert_uint_eq(((uint8_t *)g.run)[g.run->io.data_offset], 0x42);
    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->io.direction, KVM_EXIT_IO_IN);
    ((uint8_t *)g.run)[g.run->io.data_offset] = 0x77;
    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->io.port, 0x12);
    ck_assert_uint_eq(((uint8_t *)g.run)[g.run->io.data_offset], 0x77);
    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_HLT);
    g.run->immediate_exit = 1;
    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, 0), -EINTR);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_HLT); /* untouched, as on real KVM */
    g.run->immediate_exit = 0;
    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, (void *)1), -EINVAL);
    guest_destroy(&g);
}
END_TEST

/* KVM_IOEVENTFD: a matching OUT signals the eventfd and does not exit; a
 * non-matching value still exits to user space. */
START_TEST(run_ioeventfd)
{
    static const uint8_t code[] = {0xb0, 0x42, 0xe6, 0x10, 0xb0, 0x43, 0xe6, 0x10, 0xf4};
    struct guest g = guest_create(code, sizeof code);
    int efd = eventfd(0, EFD_NONBLOCK);
    struct kvm_ioeventfd ie = {.addr = 0x10, .len = 1, .fd = efd, .datamatch = 0x42,
                               .flags = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH};
    ck_assert_int_eq(io(&g.f, g.f.vm, KVM_IOEVENTFD, &ie), 0);
    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_IO);
    ck_assert_uint_eq(((uint8_t *)g.run)[g.run->io.data_offset], 0x43);
    uint64_t cnt = 0;
    ck_assert_int_eq(read(efd, &cnt, sizeof cnt), sizeof cnt);
    ck_assert_uint_eq(cnt, 1);
    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_HLT);
    close(efd);
    guest_destroy(&g);
}
END_TEST

/* Coalesced PIO: writes to a registered zone land in the VM's ring without exiting. */
START_TEST(run_coalesced_pio)
{
    static const uint8_t code[] = {0xb0, 0x42, 0xe6, 0x10, 0xb0, 0x43, 0xe6, 0x10, 0xf4};
    struct guest g = guest_create(code, sizeof code);
    struct kvm_coalesced_mmio_zone z = {.addr = 0x10, .size = 1, .pio = 1};
    ck_assert_int_eq(io(&g.f, g.f.vm, KVM_REGISTER_COALESCED_MMIO, &z), 0);
    z.pio = 2;
    ck_assert_int_eq(io(&g.f, g.f.vm, KVM_REGISTER_COALESCED_MMIO, &z), -EINVAL);
    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_HLT);
    struct abi_vm *vm = (struct abi_vm *)abi_obj_get(g.f.p, g.f.vm);
    ck_assert_uint_eq(vm->ring->first, 0);
    ck_assert_uint_eq(vm->ring->last, 2);
    ck_assert_uint_eq(vm->ring->coalesced_mmio[0].phys_addr, 0x10);
    ck_assert_uint_eq(vm->ring->coalesced_mmio[0].pio, 1);
    ck_assert_uint_eq(vm->ring->coalesced_mmio[1].data[0], 0x43);
    abi_obj_put(&vm->obj);
    guest_destroy(&g);
}
END_TEST

/* /work/shared/spec/msr.md sections 2-3: a filtered RDMSR exits to user space with
 * reason FILTER; msr.error=0 completes it with msr.data, msr.error=1 injects #GP. */
START_TEST(run_msr_filter_exit)
{
    static const uint8_t code[] = {
        0x66, 0xb9, 0x00, 0x01, 0x00, 0xc0, /* mov ecx, 0xc0000100 (FS_BASE) */
        0x0f, 0x32,                         /* rdmsr */
        0xe6, 0x10,                         /* out 0x10, al */
        0x0f, 0x32,                         /* rdmsr (this one gets #GP) */
        0xf4,                               /* hlt (not reached) */
    };
    static const uint8_t gp_handler[] = {0xe6, 0x13, 0xf4}; /* out 0x13, al; hlt */
    struct guest g = guest_create(code, sizeof code);
    memcpy(g.mem + 0x2000, gp_handler, sizeof gp_handler);
    uint16_t ivt13[2] = {0x2000, 0}; /* real-mode IVT entry 13 -> 0000:2000 */
    memcpy(g.mem + 13 * 4, ivt13, sizeof ivt13);
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
                                 .args = {KVM_MSR_EXIT_REASON_FILTER}};
    ck_assert_int_eq(io(&g.f, g.f.vm, KVM_ENABLE_CAP, &cap), 0);
    uint8_t deny = 0;
    struct kvm_msr_filter filt = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    filt.ranges[0] = (struct kvm_msr_filter_range){
        .flags = KVM_MSR_FILTER_READ, .nmsrs = 1, .base = 0xc0000100, .bitmap = &deny};
    ck_assert_int_eq(io(&g.f, g.f.vm, KVM_X86_SET_MSR_FILTER, &filt), 0);
    filt.flags = 0x80;
    ck_assert_int_eq(io(&g.f, g.f.vm, KVM_X86_SET_MSR_FILTER, &filt), -EINVAL);

    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_X86_RDMSR);
    ck_assert_uint_eq(g.run->msr.reason, KVM_MSR_EXIT_REASON_FILTER);
    ck_assert_uint_eq(g.run->msr.index, 0xc0000100);
    ck_assert_uint_eq(g.run->msr.error, 0);
    g.run->msr.data = 0x1122334455667788ull;
    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_IO);
    ck_assert_uint_eq(g.run->io.port, 0x10);
    ck_assert_uint_eq(((uint8_t *)g.run)[g.run->io.data_offset], 0x88);
    struct kvm_regs regs;
    io(&g.f, g.vcpu, KVM_GET_REGS, &regs);
    ck_assert_uint_eq(regs.rdx, 0x11223344);
    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_X86_RDMSR);
    g.run->msr.error = 1;
    ck_assert_int_eq(io(&g.f, g.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(g.run->exit_reason, KVM_EXIT_IO);
    ck_assert_uint_eq(g.run->io.port, 0x13); /* the #GP handler ran */
    guest_destroy(&g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("abi");
    TCase *tc = tcase_create("ioctl");
    tcase_add_test(tc, system_ioctls);
    tcase_add_test(tc, supported_cpuid);
    tcase_add_test(tc, memory_slots);
    tcase_add_test(tc, disable_quirks);
    tcase_add_test(tc, misc_enable_mwait_drives_cpuid);
    tcase_add_test(tc, vcpu_tsc_offset_attribute);
    tcase_add_test(tc, memory_slots_incremental_view);
    tcase_add_test(tc, vcpu_state);
    suite_add_tcase(s, tc);
    TCase *run = tcase_create("run");
    tcase_add_test(run, run_io_and_hlt);
    tcase_add_test(run, run_msr_filter_exit);
    tcase_add_test(run, run_ioeventfd);
    tcase_add_test(run, run_coalesced_pio);
    suite_add_tcase(s, run);
    return softkvm_check_run(s);
}
