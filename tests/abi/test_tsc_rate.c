/* The guest TSC rate (abi/vcpu_tsc.c, emu/cpu.h emu_cpu_set_l1_tsc), as 6.12 x86.c:
 *   - KVM_CAP_TSC_CONTROL and KVM_CAP_VM_TSC_CONTROL; KVM_SET_TSC_KHZ's limit is
 *     kvm_caps.max_guest_tsc_khz (the vendor's largest ratio times the host rate, at most
 *     0x7fffffff), 0 means the host rate (5703-5720, 6846-6862);
 *   - the VM ioctl sets the rate of vCPUs created later (kvm_arch_vcpu_create 11606);
 *   - the guest's RDTSC and the TSC MSR run at the set rate (kvm_scale_tsc);
 *   - vCPUs created at the same rate share one TSC (kvm_synchronize_tsc: creation writes
 *     0 and synchronising takes cur_tsc_offset). */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "tests/abi/abi_test_guest.h"
#include "tests/check_main.h"

struct ctx {
    struct abi_process *p;
    int sys, vm;
    uint8_t *mem;
};

static void open_vm(struct ctx *c, const char *vendor)
{
    setenv("SOFTKVM_VENDOR", vendor, 1);
    c->p = abi_process_create();
    c->sys = abi_open_dev_kvm(c->p, 0);
    c->vm = (int)abi_ioctl(c->p, c->sys, KVM_CREATE_VM, 0);
    ck_assert_int_ge(c->vm, 0);
    c->mem = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct kvm_userspace_memory_region m = {.slot = 0, .memory_size = 0x10000,
                                            .userspace_addr = (uintptr_t)c->mem};
    ck_assert_int_eq(abi_ioctl(c->p, c->vm, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&m), 0);
}

static void close_vm(struct ctx *c)
{
    abi_test_close_all(c->p);
    munmap(c->mem, 0x10000);
    unsetenv("SOFTKVM_VENDOR");
}

static int new_vcpu(struct ctx *c, int id)
{
    int fd = (int)abi_ioctl(c->p, c->vm, KVM_CREATE_VCPU, id);
    ck_assert_int_ge(fd, 0);
    return fd;
}

static uint64_t get_tsc(struct ctx *c, int vcpu)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = 0x10};
    ck_assert_int_eq(abi_ioctl(c->p, vcpu, KVM_GET_MSRS, (uintptr_t)&m), 1);
    return m.e.data;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void limits_case(const char *vendor)
{
    struct ctx c;
    open_vm(&c, vendor);
    ck_assert_int_eq(abi_ioctl(c.p, c.sys, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL), 1);
    ck_assert_int_eq(abi_ioctl(c.p, c.sys, KVM_CHECK_EXTENSION, KVM_CAP_VM_TSC_CONTROL), 1);
    int v = new_vcpu(&c, 0);
    long host = abi_ioctl(c.p, v, KVM_GET_TSC_KHZ, 0);
    ck_assert_int_gt(host, 10000);
    ck_assert_int_eq(abi_ioctl(c.p, c.vm, KVM_GET_TSC_KHZ, 0), host);
    ck_assert_int_eq(abi_ioctl(c.p, v, KVM_SET_TSC_KHZ, 0x7fffffff), -EINVAL);
    ck_assert_int_eq(abi_ioctl(c.p, c.vm, KVM_SET_TSC_KHZ, 0x7fffffff), -EINVAL);
    /* SVM's largest ratio is just under 256 (SVM_TSC_RATIO_MAX), VMX's 2^16 */
    long r = abi_ioctl(c.p, v, KVM_SET_TSC_KHZ, (unsigned long)host * 300);
    if (!strcmp(vendor, "amd"))
        ck_assert_int_eq(r, -EINVAL);
    else
        ck_assert_int_eq(r, 0);
    ck_assert_int_eq(abi_ioctl(c.p, v, KVM_SET_TSC_KHZ, 1000000), 0);
    ck_assert_int_eq(abi_ioctl(c.p, v, KVM_GET_TSC_KHZ, 0), 1000000);
    ck_assert_int_eq(abi_ioctl(c.p, v, KVM_SET_TSC_KHZ, 0), 0); /* the host's again */
    ck_assert_int_eq(abi_ioctl(c.p, v, KVM_GET_TSC_KHZ, 0), host);
    /* the VM's rate is for vCPUs created later */
    ck_assert_int_eq(abi_ioctl(c.p, c.vm, KVM_SET_TSC_KHZ, 2345678), 0);
    ck_assert_int_eq(abi_ioctl(c.p, c.vm, KVM_GET_TSC_KHZ, 0), 2345678);
    ck_assert_int_eq(abi_ioctl(c.p, v, KVM_GET_TSC_KHZ, 0), host);
    int v1 = new_vcpu(&c, 1);
    ck_assert_int_eq(abi_ioctl(c.p, v1, KVM_GET_TSC_KHZ, 0), 2345678);
    close_vm(&c);
}

START_TEST(set_tsc_khz_limits_and_vm_default)
{
    limits_case("amd");
    limits_case("intel");
}
END_TEST

/* The guest's RDTSC, read at two exits 100 ms apart, advances at the set rate. */
static void rate_case(const char *vendor, unsigned divisor)
{
    struct ctx c;
    open_vm(&c, vendor);
    int v = new_vcpu(&c, 0);
    long host = abi_ioctl(c.p, v, KVM_GET_TSC_KHZ, 0);
    long khz = host / divisor;
    ck_assert_int_eq(abi_ioctl(c.p, v, KVM_SET_TSC_KHZ, (unsigned long)khz), 0);
    struct kvm_run *run = mmap(NULL, ABI_VCPU_MMAP_PAGES * ABI_PAGE_SIZE, PROT_READ | PROT_WRITE,
                               MAP_SHARED, v, 0);
    ck_assert_ptr_ne(run, MAP_FAILED);
    static const uint8_t code[] = {0x0f, 0x31, 0xe6, 0x10,  /* rdtsc; out 0x10, al */
                                   0x0f, 0x31, 0xe6, 0x10,  /* rdtsc; out 0x10, al */
                                   0xf4};
    memcpy(c.mem + 0x100, code, sizeof code);
    struct kvm_sregs s;
    ck_assert_int_eq(abi_ioctl(c.p, v, KVM_GET_SREGS, (uintptr_t)&s), 0);
    s.cs.base = 0;
    s.cs.selector = 0;
    ck_assert_int_eq(abi_ioctl(c.p, v, KVM_SET_SREGS, (uintptr_t)&s), 0);
    struct kvm_regs r = {.rip = 0x100, .rflags = 2, .rsp = 0x8000};
    ck_assert_int_eq(abi_ioctl(c.p, v, KVM_SET_REGS, (uintptr_t)&r), 0);
    uint64_t tsc[2], ns[2], msr_mid = 0;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(abi_ioctl(c.p, v, KVM_RUN, 0), 0);
        ns[i] = now_ns();
        ck_assert_uint_eq(run->exit_reason, KVM_EXIT_IO);
        ck_assert_int_eq(abi_ioctl(c.p, v, KVM_GET_REGS, (uintptr_t)&r), 0);
        tsc[i] = (r.rdx << 32) | (uint32_t)r.rax;
        if (i == 0) {
            usleep(100000);
            msr_mid = get_tsc(&c, v); /* the MSR is the same clock */
        }
    }
    ck_assert(msr_mid > tsc[0] && msr_mid < tsc[1]);
    double rate = (double)(tsc[1] - tsc[0]) / (double)(ns[1] - ns[0]) * 1e6; /* kHz */
    ck_assert_msg(rate > khz * 0.95 && rate < khz * 1.05, "%s: guest TSC at %.0f kHz, set %ld",
                  vendor, rate, khz);
    munmap(run, ABI_VCPU_MMAP_PAGES * ABI_PAGE_SIZE);
    close_vm(&c);
}

START_TEST(guest_tsc_runs_at_the_set_rate)
{
    rate_case("amd", 3);
    rate_case("intel", 3);
    rate_case("intel", 1); /* within 250 ppm: unscaled */
}
END_TEST

/* tsc_scaling_sync's set-up: the VM rate first, a host TSC write on the first vCPU, the
 * others created afterwards join its TSC (one offset, so equal values read together). */
START_TEST(vcpus_at_the_vm_rate_share_one_tsc)
{
    struct ctx c;
    open_vm(&c, "intel");
    ck_assert_int_eq(abi_ioctl(c.p, c.vm, KVM_SET_TSC_KHZ, 2345678), 0);
    int v0 = new_vcpu(&c, 0);
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = 0x10, .e.data = 200000000};
    ck_assert_int_eq(abi_ioctl(c.p, v0, KVM_SET_MSRS, (uintptr_t)&m), 1);
    int v1 = new_vcpu(&c, 1);
    uint64_t a = get_tsc(&c, v0), b = get_tsc(&c, v1), a2 = get_tsc(&c, v0);
    ck_assert(a >= 200000000ull);
    ck_assert(a <= b && b <= a2);
    ck_assert_uint_lt(a2 - a, 2345678ull); /* the three reads took under 1 ms */
    close_vm(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tsc_rate");
    TCase *tc = tcase_create("tsc_rate");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, set_tsc_khz_limits_and_vm_default);
    tcase_add_test(tc, guest_tsc_runs_at_the_set_rate);
    tcase_add_test(tc, vcpus_at_the_vm_rate_share_one_tsc);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
