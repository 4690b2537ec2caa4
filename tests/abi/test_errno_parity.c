/* Errno parity with Linux 6.12 for the differences kvm-fuzz --diff found (each case names
 * the 6.12 function whose behaviour it pins; tools/kvm_fuzz/README.md has the list). */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <check.h>

#include "tests/abi/abi_test_guest.h"
#include "tests/check_main.h"

static struct abi_process *p;
static int sys_fd, vm, vcpu;

static long io(int fd, unsigned long req, const void *arg)
{
    return abi_ioctl(p, fd, req, (unsigned long)arg);
}

static void setup(void)
{
    p = abi_process_create();
    sys_fd = abi_open_dev_kvm(p, 0);
    vm = (int)abi_ioctl(p, sys_fd, KVM_CREATE_VM, 0);
    vcpu = (int)abi_ioctl(p, vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(vcpu, 0);
}

static void teardown(void)
{
    abi_test_close_all(p);
}

START_TEST(ioeventfd_deassign_checks_only_the_eventfd)
{
    int efd = eventfd(0, 0);
    /* kvm_deassign_ioeventfd: no length/flag checks, eventfd first, then ENOENT */
    struct kvm_ioeventfd e = {.addr = 0x1000, .len = 3, .fd = -1, .flags = KVM_IOEVENTFD_FLAG_DEASSIGN};
    ck_assert_int_eq(io(vm, KVM_IOEVENTFD, &e), -EBADF);
    e.fd = efd;
    ck_assert_int_eq(io(vm, KVM_IOEVENTFD, &e), -ENOENT);
    /* VIRTIO_CCW_NOTIFY is a valid flag on every arch (its own bus) */
    e = (struct kvm_ioeventfd){.addr = 0x1000, .len = 4, .fd = efd,
                               .flags = KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY};
    ck_assert_int_eq(io(vm, KVM_IOEVENTFD, &e), 0);
    /* ioeventfd_check_collision: length 0 collides with any length at that address */
    e = (struct kvm_ioeventfd){.addr = 0x2000, .len = 4, .fd = efd};
    ck_assert_int_eq(io(vm, KVM_IOEVENTFD, &e), 0);
    e.len = 0;
    ck_assert_int_eq(io(vm, KVM_IOEVENTFD, &e), -EEXIST);
    close(efd);
}
END_TEST

START_TEST(guest_debug_and_interrupt_and_smi)
{
    /* kvm_arch_vcpu_ioctl_set_guest_debug does not refuse unknown control bits */
    struct kvm_guest_debug d = {.control = 0xffffffffu & ~(uint32_t)(KVM_GUESTDBG_INJECT_DB |
                                                                       KVM_GUESTDBG_INJECT_BP)};
    ck_assert_int_eq(io(vcpu, KVM_SET_GUEST_DEBUG, &d), 0);
    d.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_INJECT_DB;
    ck_assert_int_eq(io(vcpu, KVM_SET_GUEST_DEBUG, &d), 0);
    ck_assert_int_eq(io(vcpu, KVM_SET_GUEST_DEBUG, &d), -EBUSY); /* #DB still pending */
    /* kvm_vcpu_ioctl_interrupt without an irqchip queues over a queued one */
    struct kvm_interrupt irq = {.irq = 0x20};
    ck_assert_int_eq(io(vcpu, KVM_INTERRUPT, &irq), 0);
    ck_assert_int_eq(io(vcpu, KVM_INTERRUPT, &irq), 0);
    /* kvm_inject_smi with CONFIG_KVM_SMM (smm.h): always 0 */
    ck_assert_int_eq(io(vcpu, KVM_SMI, NULL), 0);
}
END_TEST

START_TEST(vm_ioctl_orders_and_flags)
{
    /* x86.c: created_vcpus is checked before the address is read */
    ck_assert_int_eq(io(vm, KVM_SET_IDENTITY_MAP_ADDR, NULL), -EINVAL);
    struct kvm_clock_data c = {.flags = KVM_CLOCK_TSC_STABLE};
    ck_assert_int_eq(io(vm, KVM_SET_CLOCK, &c), 0);
    ck_assert_int_eq(io(vm, KVM_RESET_DIRTY_RINGS, NULL), -EINVAL);
    ck_assert_int_eq(io(vm, KVM_CREATE_DEVICE, NULL), -EFAULT);
    struct kvm_create_device cd = {.type = KVM_DEV_TYPE_VFIO, .flags = KVM_CREATE_DEVICE_TEST};
    ck_assert_int_eq(io(vm, KVM_CREATE_DEVICE, &cd), -ENODEV);
    ck_assert_int_eq(abi_ioctl(p, vm, KVM_GET_NR_MMU_PAGES, 0), -ENOTTY); /* gone in 6.12 */
    struct kvm_enable_cap cap = {.cap = KVM_CAP_EXIT_ON_EMULATION_FAILURE, .args = {2}};
    ck_assert_int_eq(io(vm, KVM_ENABLE_CAP, &cap), -EINVAL);
    cap = (struct kvm_enable_cap){.cap = KVM_CAP_HALT_POLL, .args = {1000}};
    ck_assert_int_eq(io(vm, KVM_ENABLE_CAP, &cap), 0);
    cap = (struct kvm_enable_cap){.cap = KVM_CAP_X86_BUS_LOCK_EXIT, .args = {3}};
    ck_assert_int_eq(io(vm, KVM_ENABLE_CAP, &cap), -EINVAL);
    cap.args[0] = 2;
    ck_assert_int_eq(io(vm, KVM_ENABLE_CAP, &cap), 0);
}
END_TEST

START_TEST(pmu_event_filter_is_validated)
{
    uint8_t buf[sizeof(struct kvm_pmu_event_filter) + 8];
    struct kvm_pmu_event_filter *f = (void *)buf;
    memset(buf, 0, sizeof buf);
    f->action = 2;
    ck_assert_int_eq(io(vm, KVM_SET_PMU_EVENT_FILTER, f), -EINVAL);
    f->action = KVM_PMU_EVENT_DENY;
    f->nevents = 301;
    ck_assert_int_eq(io(vm, KVM_SET_PMU_EVENT_FILTER, f), -E2BIG);
    f->nevents = 1;
    f->flags = 1; /* KVM_PMU_EVENT_FLAG_MASKED_EVENTS (newer than this header) */
    f->events[0] = 1ull << 40; /* not a masked-entry field */
    ck_assert_int_eq(io(vm, KVM_SET_PMU_EVENT_FILTER, f), -EINVAL);
    f->events[0] = 0x3c;
    ck_assert_int_eq(io(vm, KVM_SET_PMU_EVENT_FILTER, f), 0);
}
END_TEST

START_TEST(cpuid_ioctls)
{
    /* cpuid.c sanity_check_entries: KVM_GET_EMULATED_CPUID wants zero padding */
    static uint8_t buf[8 + 256 * sizeof(struct kvm_cpuid_entry2)];
    struct kvm_cpuid2 *c = (void *)buf;
    memset(buf, 0, sizeof buf);
    c->nent = 256;
    c->entries[3].padding[1] = 1;
    ck_assert_int_eq(io(sys_fd, KVM_GET_EMULATED_CPUID, c), -EINVAL);
    c->entries[3].padding[1] = 0;
    ck_assert_int_eq(io(sys_fd, KVM_GET_EMULATED_CPUID, c), 0);
    /* the old KVM_SET_CPUID */
    uint8_t b1[sizeof(struct kvm_cpuid) + sizeof(struct kvm_cpuid_entry)];
    struct kvm_cpuid *c1 = (void *)b1;
    memset(b1, 0, sizeof b1);
    c1->nent = 257;
    ck_assert_int_eq(io(vcpu, KVM_SET_CPUID, c1), -E2BIG);
    c1->nent = 1;
    c1->entries[0].function = 0;
    ck_assert_int_eq(io(vcpu, KVM_SET_CPUID, c1), 0);
    /* __kvm_set_xcr: with no CPUID leaf 0DH only x87 may be enabled */
    struct kvm_xcrs x = {.nr_xcrs = 2, .xcrs = {{.xcr = 5, .value = 9}, {.xcr = 0, .value = 3}}};
    ck_assert_int_eq(io(vcpu, KVM_SET_XCRS, &x), -EINVAL);
    x.xcrs[1].value = 1; /* and other XCR numbers are skipped */
    ck_assert_int_eq(io(vcpu, KVM_SET_XCRS, &x), 0);
}
END_TEST

START_TEST(vcpu_state_ioctls)
{
    /* set_vcpu_events: without VALID_PAYLOAD, exception.pending is ignored */
    struct kvm_vcpu_events e;
    memset(&e, 0, sizeof e);
    e.exception.pending = 1;
    e.exception.nr = 40; /* would be EINVAL if pending counted */
    ck_assert_int_eq(io(vcpu, KVM_SET_VCPU_EVENTS, &e), 0);
    memset(&e, 0, sizeof e);
    e.flags = KVM_VCPUEVENT_VALID_SMM;
    e.smi.pending = 1;
    /* x86.c set_vcpu_events with CONFIG_KVM_SMM: a pending SMI is accepted (EINVAL only
     * together with mp_state INIT_RECEIVED) */
    ck_assert_int_eq(io(vcpu, KVM_SET_VCPU_EVENTS, &e), 0);
    /* validate_user_xstate_header: XCOMP_BV and the reserved header bytes */
    static struct kvm_xsave xs;
    ck_assert_int_eq(io(vcpu, KVM_GET_XSAVE, &xs), 0);
    xs.region[(512 + 8) / 4] = 1;
    ck_assert_int_eq(io(vcpu, KVM_SET_XSAVE, &xs), -EINVAL);
    xs.region[(512 + 8) / 4] = 0;
    xs.region[(512 + 40) / 4] = 1;
    ck_assert_int_eq(io(vcpu, KVM_SET_XSAVE, &xs), -EINVAL);
    xs.region[(512 + 40) / 4] = 0;
    ck_assert_int_eq(io(vcpu, KVM_SET_XSAVE, &xs), 0);
    /* kvm_vcpu_ioctl_device_attr: the TSC offset attribute */
    uint64_t off = 12345, back = 0;
    struct kvm_device_attr a = {.group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET,
                                .addr = (uintptr_t)&off};
    ck_assert_int_eq(io(vcpu, KVM_HAS_DEVICE_ATTR, &a), 0);
    ck_assert_int_eq(io(vcpu, KVM_SET_DEVICE_ATTR, &a), 0);
    a.addr = (uintptr_t)&back;
    ck_assert_int_eq(io(vcpu, KVM_GET_DEVICE_ATTR, &a), 0);
    ck_assert_uint_eq(back, 12345);
    a.group = 1;
    ck_assert_int_eq(io(vcpu, KVM_GET_DEVICE_ATTR, &a), -ENXIO);
}
END_TEST

START_TEST(memslot_beyond_max_gfn)
{
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* kvm_arch_prepare_memory_region: the slot must end below 2^MAXPHYADDR */
    struct kvm_userspace_memory_region r = {.slot = 1, .guest_phys_addr = 1ull << 48,
                                            .memory_size = 4096, .userspace_addr = (uintptr_t)m};
    ck_assert_int_eq(io(vm, KVM_SET_USER_MEMORY_REGION, &r), -EINVAL);
    r.guest_phys_addr = (1ull << 48) - 4096;
    ck_assert_int_eq(io(vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    r.memory_size = 0;
    ck_assert_int_eq(io(vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    munmap(m, 4096);
}
END_TEST

START_TEST(msi_with_no_vcpu_is_minus_one)
{
    int vm2 = (int)abi_ioctl(p, sys_fd, KVM_CREATE_VM, 0);
    ck_assert_int_eq(abi_ioctl(p, vm2, KVM_CREATE_IRQCHIP, 0), 0);
    /* no vCPU, no APIC map: kvm_irq_delivery_to_apic's slow path finds nobody */
    struct kvm_msi msi = {.address_lo = 0xfee00000, .data = 0x30};
    ck_assert_int_eq(io(vm2, KVM_SIGNAL_MSI, &msi), -1);
}
END_TEST

/* (The host's /dev/kvm gives this same sequence.) KVM_KVMCLOCK_CTRL is EINVAL unless vcpu->arch.pv_time is active (x86.c
 * kvm_set_guest_paused 5242-5249). kvm_write_system_time (1935-1958) activates it for an
 * enabled MSR value, but kvm_gpc_activate refuses a 32-byte pvclock area that crosses a
 * page before touching the cache (pfncache.c __kvm_gpc_activate 394-395): the cache then
 * stays as it was, active or not, whatever the MSR now reads. No memslot is needed: the
 * cache is active even when the refresh cannot map the GPA (413-416). */
static int set_system_time(uint64_t val)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = 0x4b564d01, .e.data = val};
    return (int)io(vcpu, KVM_SET_MSRS, &m);
}

START_TEST(kvmclock_ctrl_follows_the_pv_time_cache)
{
    ck_assert_int_eq(io(vcpu, KVM_KVMCLOCK_CTRL, NULL), -EINVAL);
    ck_assert_int_eq(set_system_time(0x2ff1), 1);          /* crosses a page: not activated */
    ck_assert_int_eq(io(vcpu, KVM_KVMCLOCK_CTRL, NULL), -EINVAL);
    ck_assert_int_eq(set_system_time(0x1fe1), 1);          /* ends at the page end: active */
    ck_assert_int_eq(io(vcpu, KVM_KVMCLOCK_CTRL, NULL), 0);
    ck_assert_int_eq(set_system_time(0x2ff1), 1);          /* refused: stays active */
    ck_assert_int_eq(io(vcpu, KVM_KVMCLOCK_CTRL, NULL), 0);
    ck_assert_int_eq(set_system_time(0x1fe0), 1);          /* disabled: deactivated */
    ck_assert_int_eq(io(vcpu, KVM_KVMCLOCK_CTRL, NULL), -EINVAL);
}
END_TEST

/* SET_GUEST_DEBUG's EBUSY looks at kvm_is_exception_pending (x86.h 127-132): a pending
 * exception (or exception VM exit, or triple fault), not an injected one. The host's
 * /dev/kvm gives the same sequence; the fuzzer's EBUSY differences came from earlier
 * calls that had succeeded on one side only. */
START_TEST(guest_debug_ebusy_only_for_pending)
{
    int vm2 = (int)abi_ioctl(p, sys_fd, KVM_CREATE_VM, 0);
    struct kvm_enable_cap cap = {.cap = KVM_CAP_EXCEPTION_PAYLOAD, .args = {1}};
    ck_assert_int_eq(io(vm2, KVM_ENABLE_CAP, &cap), 0);
    int vc = (int)abi_ioctl(p, vm2, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(vc, 0);
    struct kvm_guest_debug d = {.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_INJECT_DB};
    struct kvm_vcpu_events e = {0};
    e.exception.injected = 1;
    e.exception.nr = 13;
    e.exception.has_error_code = 1;
    ck_assert_int_eq(io(vc, KVM_SET_VCPU_EVENTS, &e), 0);
    ck_assert_int_eq(io(vc, KVM_SET_GUEST_DEBUG, &d), 0); /* injected: not pending */
    memset(&e, 0, sizeof e);
    e.flags = KVM_VCPUEVENT_VALID_PAYLOAD;
    e.exception.pending = 1;
    e.exception.nr = 13;
    ck_assert_int_eq(io(vc, KVM_SET_VCPU_EVENTS, &e), 0);
    ck_assert_int_eq(io(vc, KVM_SET_GUEST_DEBUG, &d), -EBUSY);
    memset(&e, 0, sizeof e);
    e.flags = KVM_VCPUEVENT_VALID_PAYLOAD;
    ck_assert_int_eq(io(vc, KVM_SET_VCPU_EVENTS, &e), 0);
    ck_assert_int_eq(io(vc, KVM_SET_GUEST_DEBUG, &d), 0);
    ck_assert_int_eq(io(vc, KVM_GET_VCPU_EVENTS, &e), 0);
    ck_assert_int_eq(e.exception.pending, 1); /* the #DB INJECT_DB queued */
    ck_assert_int_eq(e.exception.nr, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("errno_parity");
    TCase *tc = tcase_create("errno_parity");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ioeventfd_deassign_checks_only_the_eventfd);
    tcase_add_test(tc, guest_debug_and_interrupt_and_smi);
    tcase_add_test(tc, vm_ioctl_orders_and_flags);
    tcase_add_test(tc, pmu_event_filter_is_validated);
    tcase_add_test(tc, cpuid_ioctls);
    tcase_add_test(tc, vcpu_state_ioctls);
    tcase_add_test(tc, memslot_beyond_max_gfn);
    tcase_add_test(tc, msi_with_no_vcpu_is_minus_one);
    tcase_add_test(tc, kvmclock_ctrl_follows_the_pv_time_cache);
    tcase_add_test(tc, guest_debug_ebusy_only_for_pending);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
