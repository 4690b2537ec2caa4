/* The virtual PMU (msr/pmu.c, emu/pmu.c) seen by a 64-bit guest run in-process through
 * abi_ioctl, as Linux 6.12 arch/x86/kvm/pmu.c + vmx/pmu_intel.c + svm/pmu.c behave:
 *   - instructions retired, exactly: counting starts after the enabling WRMSR and the
 *     disabling WRMSR is counted (KVM_REQ_PMU reprograms at the next entry, after
 *     kvm_skip_emulated_instruction counted the WRMSR), at every CPL (the retired count)
 *     and at CPL 0 only (the precise path);
 *   - branch instructions retired, exactly;
 *   - RDPMC gives the counter, a fast-mode index #GPs (intel_rdpmc_ecx_to_pmc);
 *   - an overflow sets GLOBAL_STATUS and delivers LVTPC at the boundary after the
 *     overflowing instruction;
 *   - KVM_SET_PMU_EVENT_FILTER denies an event (and allows it in an allow list), on the
 *     AMD flavour's K7 counters;
 *   - KVM_CAP_PMU_CAPABILITY(KVM_PMU_CAP_DISABLE) leaves the guest without a PMU. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <check.h>

#include "tests/abi/abi_test_guest.h"
#include "tests/check_main.h"

/* Measured sequence: r8 = event select MSR, r9 = counter MSR, r10d = event select value,
 * r11d = RDPMC index. Reports the counter by RDMSR on port 0x10, by RDPMC on 0x11. */
__asm__(".pushsection .rodata.pmug, \"a\"\n"
        ".code64\n"
        "pmug_count:\n"
        "    mov %r9d, %ecx; xor %eax, %eax; xor %edx, %edx; wrmsr\n"
        "    mov %r8d, %ecx; mov %r10d, %eax; xor %edx, %edx; wrmsr\n" /* not counted */
        "    mov $10, %ecx\n"                                          /* 1 */
        "1:  nop\n"                                                    /* 10 */
        "    loop 1b\n"                                                /* 10, 10 branches */
        "    xor %eax, %eax\n"                                         /* 1 */
        "    xor %edx, %edx\n"                                         /* 1 */
        "    mov %r8d, %ecx\n"                                         /* 1 */
        "    wrmsr\n"                                                  /* 1: counted */
        "    mov %r9d, %ecx; rdmsr; out %eax, $0x10\n"
        "    mov %r11d, %ecx; rdpmc; out %eax, $0x11\n"
        "    hlt\n"
        "pmug_count_end:\n"
        /* PMI: x2APIC on, LVTPC = vector 0x40; PMC0 = 2^48 - 100 by a full-width write;
         * EVNTSEL0 = instructions, OS|USR|INT|EN; the 100th instruction overflows it */
        "pmug_pmi:\n"
        "    mov $0x1b, %ecx; rdmsr; or $0xc00, %eax; wrmsr\n"
        "    mov $0x80f, %ecx; mov $0x1ff, %eax; xor %edx, %edx; wrmsr\n"
        "    mov $0x834, %ecx; mov $0x40, %eax; wrmsr\n"
        "    mov $0x4c1, %ecx; mov $0xffffff9c, %eax; mov $0xffff, %edx; wrmsr\n"
        "    mov $0x186, %ecx; mov $0x5300c0, %eax; xor %edx, %edx; wrmsr\n"
        "    sti\n"                                                    /* 1 */
        "    mov $1000, %ecx\n"                                        /* 2 */
        "2:  nop\n"
        "    loop 2b\n"
        "    mov $0xdead, %eax; out %eax, $0x13; hlt\n"
        "pmug_handler:\n"
        "    mov $0x38e, %ecx; rdmsr; out %eax, $0x12\n"               /* 3 counted */
        "    mov $0xc1, %ecx; rdmsr; out %eax, $0x14\n"                /* +1 before rdmsr */
        "    hlt\n"
        "pmug_pmi_end:\n"
        ".popsection\n");
extern const uint8_t pmug_count[], pmug_count_end[], pmug_pmi[], pmug_handler[],
    pmug_pmi_end[];

#define GDT 0x100
#define PML4 0x3000
#define IDT 0x7000
#define CODE 0x1000
#define MEM 0x10000

struct ctx {
    struct abi_process *p;
    int sys, vm, vcpu;
    uint8_t *mem;
    struct kvm_run *run;
    struct abi_test_cpuid cpuid;
};

static void open_vm(struct ctx *c, const char *vendor, bool irqchip, bool pmu_disable)
{
    setenv("SOFTKVM_VENDOR", vendor, 1);
    c->p = abi_process_create();
    c->sys = abi_open_dev_kvm(c->p, 0);
    c->vm = (int)abi_ioctl(c->p, c->sys, KVM_CREATE_VM, 0);
    ck_assert_int_ge(c->vm, 0);
    if (pmu_disable) {
        struct kvm_enable_cap cap = {.cap = KVM_CAP_PMU_CAPABILITY, .args = {KVM_PMU_CAP_DISABLE}};
        ck_assert_int_eq(abi_ioctl(c->p, c->vm, KVM_ENABLE_CAP, (uintptr_t)&cap), 0);
    }
    if (irqchip)
        ck_assert_int_eq(abi_ioctl(c->p, c->vm, KVM_CREATE_IRQCHIP, 0), 0);
    c->mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct kvm_userspace_memory_region m = {.slot = 0, .memory_size = MEM,
                                            .userspace_addr = (uintptr_t)c->mem};
    ck_assert_int_eq(abi_ioctl(c->p, c->vm, KVM_SET_USER_MEMORY_REGION, (uintptr_t)&m), 0);
    abi_test_flat_tables(c->mem, GDT, PML4);
    c->vcpu = abi_test_vcpu_supported(c->p, c->sys, c->vm, &c->run, &c->cpuid);
    struct kvm_sregs s;
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_GET_SREGS, (uintptr_t)&s), 0);
    abi_test_flat_sregs(&s, true, GDT, IDT, 0xfff, PML4);
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_SET_SREGS, (uintptr_t)&s), 0);
}

static void close_vm(struct ctx *c)
{
    abi_test_close_all(c->p);
    munmap(c->mem, MEM);
    unsetenv("SOFTKVM_VENDOR");
}

static void start(struct ctx *c, const uint8_t *code, const uint8_t *end, uint64_t sel_msr,
                  uint64_t ctr_msr, uint64_t sel, uint64_t rdpmc_idx)
{
    memcpy(c->mem + CODE, code, (size_t)(end - code));
    struct kvm_regs r = {.rip = CODE, .rflags = 2, .rsp = 0x9000, .r8 = sel_msr, .r9 = ctr_msr,
                         .r10 = sel, .r11 = rdpmc_idx};
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_SET_REGS, (uintptr_t)&r), 0);
}

/* Run to the next port write; returns its port (or -exit reason) and the value in *val. */
static int next_out(struct ctx *c, uint32_t *val)
{
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_RUN, 0), 0);
    if (c->run->exit_reason != KVM_EXIT_IO)
        return -(int)c->run->exit_reason;
    memcpy(val, (uint8_t *)c->run + c->run->io.data_offset, 4);
    return c->run->io.port;
}

/* One measurement: the counter by RDMSR and by RDPMC. */
static void measure(struct ctx *c, uint64_t sel_msr, uint64_t ctr_msr, uint64_t sel,
                    uint64_t rdpmc_idx, uint32_t *by_rdmsr, uint32_t *by_rdpmc)
{
    start(c, pmug_count, pmug_count_end, sel_msr, ctr_msr, sel, rdpmc_idx);
    ck_assert_int_eq(next_out(c, by_rdmsr), 0x10);
    ck_assert_int_eq(next_out(c, by_rdpmc), 0x11);
    uint32_t dummy;
    ck_assert_int_eq(next_out(c, &dummy), -KVM_EXIT_HLT);
}

#define EN (1u << 22)
#define OS (1u << 17)
#define USR (1u << 16)

START_TEST(instructions_retired_exact_fast_and_precise)
{
    struct ctx c;
    open_vm(&c, "intel", false, false);
    uint32_t a, b;
    /* OS|USR: the retired count itself */
    measure(&c, 0x186, 0xc1, EN | OS | USR | 0xc0, 0, &a, &b);
    ck_assert_uint_eq(a, 25);
    ck_assert_uint_eq(b, 25);
    /* OS only: counted per instruction at its CPL, same number at CPL 0 */
    measure(&c, 0x187, 0xc2, EN | OS | 0xc0, 1, &a, &b);
    ck_assert_uint_eq(a, 25);
    ck_assert_uint_eq(b, 25);
    /* USR only: nothing runs at CPL 3 */
    measure(&c, 0x186, 0xc1, EN | USR | 0xc0, 0, &a, &b);
    ck_assert_uint_eq(a, 0);
    close_vm(&c);
}
END_TEST

START_TEST(branches_retired_exact)
{
    struct ctx c;
    open_vm(&c, "intel", false, false);
    uint32_t a, b;
    measure(&c, 0x186, 0xc1, EN | OS | USR | 0xc4, 0, &a, &b);
    ck_assert_uint_eq(a, 10); /* ten LOOPs */
    ck_assert_uint_eq(b, 10);
    close_vm(&c);
    /* AMD: retired branch instructions are event 0xc2 on the K7 counters */
    open_vm(&c, "amd", false, false);
    measure(&c, 0xc0010001, 0xc0010005, EN | OS | USR | 0xc2, 1, &a, &b);
    ck_assert_uint_eq(a, 10);
    ck_assert_uint_eq(b, 10);
    close_vm(&c);
}
END_TEST

START_TEST(rdpmc_fast_mode_and_absent_counters_gp)
{
    struct ctx c;
    open_vm(&c, "intel", false, false);
    uint32_t a, b;
    /* bit 31 (fast mode) is no counter type KVM knows: #GP, which with an empty IDT is a
     * triple fault */
    start(&c, pmug_count, pmug_count_end, 0x186, 0xc1, EN | OS | USR | 0xc0, 0x80000000u);
    ck_assert_int_eq(next_out(&c, &a), 0x10);
    ck_assert_uint_eq(a, 25);
    ck_assert_int_eq(next_out(&c, &b), -KVM_EXIT_SHUTDOWN);
    close_vm(&c);
    /* the fifth GP counter does not exist (CPUID.0AH: four) */
    open_vm(&c, "intel", false, false);
    start(&c, pmug_count, pmug_count_end, 0x186, 0xc1, EN | OS | USR | 0xc0, 4);
    ck_assert_int_eq(next_out(&c, &a), 0x10);
    ck_assert_int_eq(next_out(&c, &b), -KVM_EXIT_SHUTDOWN);
    close_vm(&c);
}
END_TEST

START_TEST(overflow_delivers_lvtpc_pmi)
{
    struct ctx c;
    open_vm(&c, "intel", true, false);
    /* IDT gate 0x40 -> pmug_handler */
    uint64_t h = CODE + (uint64_t)(pmug_handler - pmug_pmi);
    uint8_t *g = c.mem + IDT + 0x40 * 16;
    memset(g, 0, 16);
    g[0] = (uint8_t)h;
    g[1] = (uint8_t)(h >> 8);
    g[2] = 8; /* CS */
    g[5] = 0x8e; /* present, interrupt gate */
    g[6] = (uint8_t)(h >> 16);
    g[7] = (uint8_t)(h >> 24);
    start(&c, pmug_pmi, pmug_pmi_end, 0, 0, 0, 0);
    uint32_t status, ctr;
    ck_assert_int_eq(next_out(&c, &status), 0x12); /* not 0x13: the loop was interrupted */
    ck_assert_uint_eq(status, 1);                  /* GLOBAL_STATUS: PMC0 overflowed */
    ck_assert_int_eq(next_out(&c, &ctr), 0x14);
    /* the PMI came right after the overflowing instruction: the counter holds the
     * handler's four instructions before its RDMSR */
    ck_assert_uint_eq(ctr, 4);
    close_vm(&c);
}
END_TEST

static void set_filter(struct ctx *c, uint32_t action, uint64_t event)
{
    struct {
        struct kvm_pmu_event_filter h;
        uint64_t e[1];
    } f = {.h = {.action = action, .nevents = 1}, .e = {event}};
    ck_assert_int_eq(abi_ioctl(c->p, c->vm, KVM_SET_PMU_EVENT_FILTER, (uintptr_t)&f), 0);
}

START_TEST(event_filter_denies_and_allows)
{
    struct ctx c;
    open_vm(&c, "amd", false, false);
    uint32_t a, b;
    measure(&c, 0xc0010000, 0xc0010004, EN | OS | USR | 0xc0, 0, &a, &b);
    ck_assert_uint_eq(a, 25);
    set_filter(&c, KVM_PMU_EVENT_DENY, 0xc0);
    measure(&c, 0xc0010000, 0xc0010004, EN | OS | USR | 0xc0, 0, &a, &b);
    ck_assert_uint_eq(a, 0); /* denied: the counter does not count */
    ck_assert_uint_eq(b, 0);
    /* event select 0x1c0 is another event on AMD (bits 35:32): 0xc0 counts again */
    set_filter(&c, KVM_PMU_EVENT_DENY, 0x1000000c0ull);
    measure(&c, 0xc0010000, 0xc0010004, EN | OS | USR | 0xc0, 0, &a, &b);
    ck_assert_uint_eq(a, 25);
    set_filter(&c, KVM_PMU_EVENT_ALLOW, 0xc2);
    measure(&c, 0xc0010000, 0xc0010004, EN | OS | USR | 0xc0, 0, &a, &b);
    ck_assert_uint_eq(a, 0); /* not in the allow list */
    measure(&c, 0xc0010000, 0xc0010004, EN | OS | USR | 0xc2, 0, &a, &b);
    ck_assert_uint_eq(a, 10);
    close_vm(&c);
}
END_TEST

START_TEST(pmu_capability_disable_and_cpuid)
{
    struct ctx c;
    open_vm(&c, "intel", false, false);
    ck_assert_int_eq(abi_ioctl(c.p, c.sys, KVM_CHECK_EXTENSION, KVM_CAP_PMU_CAPABILITY),
                     KVM_PMU_CAP_DISABLE);
    /* CPUID.0AH: version 2, 4 GP counters of 48 bits, 3 fixed of 48 bits */
    bool found = false;
    for (unsigned i = 0; i < c.cpuid.h.nent; i++)
        if (c.cpuid.e[i].function == 0xa) {
            found = true;
            ck_assert_uint_eq(c.cpuid.e[i].eax & 0xffffff, 2 | 4 << 8 | 48 << 16);
            ck_assert_uint_eq(c.cpuid.e[i].edx, 3 | 48 << 5);
        }
    ck_assert(found);
    /* after a vCPU exists the capability is refused */
    struct kvm_enable_cap cap = {.cap = KVM_CAP_PMU_CAPABILITY, .args = {KVM_PMU_CAP_DISABLE}};
    ck_assert_int_eq(abi_ioctl(c.p, c.vm, KVM_ENABLE_CAP, (uintptr_t)&cap), -EINVAL);
    close_vm(&c);
    /* disabled: the counter is the legacy MSR that reads 0 and drops writes, RDPMC #GPs */
    open_vm(&c, "intel", false, true);
    uint32_t a, b;
    start(&c, pmug_count, pmug_count_end, 0x186, 0xc1, EN | OS | USR | 0xc0, 0);
    ck_assert_int_eq(next_out(&c, &a), 0x10);
    ck_assert_uint_eq(a, 0);
    ck_assert_int_eq(next_out(&c, &b), -KVM_EXIT_SHUTDOWN);
    close_vm(&c);
}
END_TEST

static bool index_listed(struct ctx *c, uint32_t msr)
{
    struct {
        struct kvm_msr_list h;
        uint32_t idx[1024];
    } l = {.h.nmsrs = 1024};
    ck_assert_int_eq(abi_ioctl(c->p, c->sys, KVM_GET_MSR_INDEX_LIST, (uintptr_t)&l), 0);
    for (unsigned i = 0; i < l.h.nmsrs; i++)
        if (l.idx[i] == msr)
            return true;
    return false;
}

static int host_set(struct ctx *c, uint32_t msr, uint64_t val)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e = {.index = msr, .data = val}};
    return (int)abi_ioctl(c->p, c->vcpu, KVM_SET_MSRS, (uintptr_t)&m);
}

static uint64_t host_get(struct ctx *c, uint32_t msr)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e = {.index = msr}};
    ck_assert_int_eq(abi_ioctl(c->p, c->vcpu, KVM_GET_MSRS, (uintptr_t)&m), 1);
    return m.e.data;
}

/* msrs_to_save_pmu as kvm_probe_msr_to_save leaves it per flavour, and the host-initiated
 * rules of kvm_pmu_set_msr / intel_pmu_set_msr */
START_TEST(msr_index_list_and_host_accesses)
{
    struct ctx c;
    open_vm(&c, "intel", false, false);
    ck_assert(index_listed(&c, 0x38f));  /* PERF_GLOBAL_CTRL */
    ck_assert(index_listed(&c, 0x30b));  /* FIXED_CTR2 */
    ck_assert(index_listed(&c, 0xc4));   /* PERFCTR3: four GP counters */
    ck_assert(!index_listed(&c, 0xc5));
    ck_assert(!index_listed(&c, 0xc0010000));
    /* RESET value of PERF_GLOBAL_CTRL: the GP enables */
    ck_assert_uint_eq(host_get(&c, 0x38f), 0xf);
    ck_assert_int_eq(host_set(&c, 0x38f, 1ull << 35), 0); /* no fourth fixed counter */
    ck_assert_int_eq(host_set(&c, 0x38e, 1), 1);          /* GLOBAL_STATUS: host may write */
    ck_assert_uint_eq(host_get(&c, 0x38e), 1);
    ck_assert_int_eq(host_set(&c, 0x186, 1ull << 21), 0); /* EVNTSEL: ANY is reserved */
    /* host writes of the legacy counter MSR are not sign-extended; full-width ones are
     * limited to 48 bits */
    ck_assert_int_eq(host_set(&c, 0xc1, 0x80000000ull), 1);
    ck_assert_uint_eq(host_get(&c, 0xc1), 0x80000000ull);
    ck_assert_int_eq(host_set(&c, 0x4c1, 1ull << 48), 0);
    ck_assert_int_eq(host_set(&c, 0x4c1, (1ull << 48) - 1), 1);
    ck_assert_uint_eq(host_get(&c, 0xc1), (1ull << 48) - 1);
    close_vm(&c);
    open_vm(&c, "amd", false, false);
    ck_assert(index_listed(&c, 0xc0010000));
    ck_assert(index_listed(&c, 0xc0010007));
    ck_assert(!index_listed(&c, 0x38f));
    /* AMD drops reserved event-select bits instead of failing (amd_pmu_set_msr) */
    ck_assert_int_eq(host_set(&c, 0xc0010000, (1ull << 21) | 0xc0), 1);
    ck_assert_uint_eq(host_get(&c, 0xc0010000), 0xc0);
    close_vm(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pmu");
    TCase *tc = tcase_create("pmu");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, instructions_retired_exact_fast_and_precise);
    tcase_add_test(tc, branches_retired_exact);
    tcase_add_test(tc, rdpmc_fast_mode_and_absent_counters_gp);
    tcase_add_test(tc, overflow_delivers_lvtpc_pmi);
    tcase_add_test(tc, event_filter_denies_and_allows);
    tcase_add_test(tc, pmu_capability_disable_and_cpuid);
    tcase_add_test(tc, msr_index_list_and_host_accesses);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
