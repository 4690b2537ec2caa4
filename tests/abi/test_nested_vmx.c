/* Nested VMX at guest level (Intel flavour): a small L1 hypervisor runs an L2 through
 * VMXON / VMPTRLD / VMLAUNCH / VMRESUME, and every L2 RDMSR/WRMSR is decided as Linux 6.12
 * decides it:
 * - L1's MSR bitmap first (vmx/nested.c nested_vmx_exit_handled_msr, nested.c:6242): with
 *   "use MSR bitmaps" a set bit, or an MSR outside the two bitmap ranges, is a VM exit to
 *   L1 with reason 31 (RDMSR) / 32 (WRMSR); without the control every access exits;
 * - what L1 lets through is L0's, i.e. softkvm's own path for L1 accesses: the MSR filter
 *   and user-space deflection (x86.c kvm_msr_allowed / kvm_msr_user_space): KVM's merged
 *   vmcs02 bitmap (nested_vmx_prepare_msr_bitmap, nested.c:644) intercepts when either
 *   level does, and such an exit is L0's when L1's bit is clear
 *   (nested_vmx_l1_wants_exit -> nested_vmx_exit_handled_msr false, L0 handles it);
 * - a filter denial L0 does not deflect is #GP in L2, which L1's exception bitmap then
 *   turns into an exception exit (nested_vmx_is_exception_vmexit, nested.c:529).
 * Also: I/O bitmaps, a failed entry, nested EPT, the APIC-access page, and
 * KVM_GET_NESTED_STATE's VMX format.
 * The host prepares the vmcs12 image in guest memory in KVM's layout (emu/vmcs.h), which L1
 * loads with VMPTRLD; L1 reports each exit on port 0x10 with the exit reason in RSI, the
 * qualification in RDI, the L2 RIP in R8 and the interruption information in R9. The
 * guest runs in-process through abi_ioctl, in 64-bit mode. */
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
#include "emu/vmcs.h"

/* L1: CR0.NE, CR4.VMXE, FEATURE_CONTROL = LOCKED | VMX outside SMX, VMXON, VMCLEAR,
 * VMPTRLD, VMLAUNCH. HOST_RIP = nvmx_host: report, skip the exiting L2 instruction,
 * VMRESUME. A VMfail reports on port 0x11. */
__asm__(".pushsection .rodata.nvmx, \"a\"\n"
    ".code64\n"
    "nvmx_l1:\n"
    "    mov %cr0, %rax\n"
    "    or $0x20, %eax\n"
    "    mov %rax, %cr0\n"
    "    mov %cr4, %rax\n"
    "    or $0x2000, %eax\n"
    "    mov %rax, %cr4\n"
    "    mov $0x3a, %ecx\n"
    "    mov $5, %eax\n"
    "    xor %edx, %edx\n"
    "    wrmsr\n"
    "    vmxon nvmx_vmxon_ptr(%rip)\n"
    "    vmclear nvmx_vmcs_ptr(%rip)\n"
    "    vmptrld nvmx_vmcs_ptr(%rip)\n"
    "    vmlaunch\n"
    "    out %al, $0x11\n"
    "    hlt\n"
    "nvmx_host:\n"
    "    mov $0x4402, %ebx\n"           /* VM_EXIT_REASON */
    "    vmread %rbx, %rsi\n"
    "    mov $0x6400, %ebx\n"           /* EXIT_QUALIFICATION */
    "    vmread %rbx, %rdi\n"
    "    mov $0x681e, %ebx\n"           /* GUEST_RIP */
    "    vmread %rbx, %r8\n"
    "    mov $0x4404, %ebx\n"           /* VM_EXIT_INTR_INFO */
    "    vmread %rbx, %r9\n"
    "    out %al, $0x10\n"
    "    mov $0x440c, %ebx\n"           /* VM_EXIT_INSTRUCTION_LEN */
    "    vmread %rbx, %rcx\n"
    "    add %rcx, %r8\n"
    "    mov $0x681e, %ebx\n"
    "    vmwrite %r8, %rbx\n"
    "    vmresume\n"
    "    out %al, $0x11\n"
    "    hlt\n"
    "nvmx_l2:\n"
    "    mov $0x10, %ecx\n"
    "nvmx_a:\n"
    "    rdmsr\n"                       /* TSC: L1's read bit set -> exit 31 */
    "    mov $0x174, %ecx\n"
    "nvmx_b:\n"
    "    rdmsr\n"                       /* SYSENTER_CS: L1's bit clear -> L0 (filter) */
    "    out %al, $0x80\n"              /* no I/O exiting: a user-space I/O exit */
    "    mov $0x174, %ecx\n"
    "nvmx_e:\n"
    "    wrmsr\n"                       /* L1's write bit set -> exit 32 */
    "    mov $0x4b564d01, %ecx\n"
    "nvmx_f:\n"
    "    rdmsr\n"                       /* outside the bitmap ranges: always L1's */
    "nvmx_g:\n"
    "    vmcall\n"                      /* always exits (reason 18) */
    "    hlt\n"
    /* the matrix (l2_msr_matrix): one access of MSR r12, writing r13 */
    "nvmx_mr:\n"
    "    mov %r12d, %ecx\n"
    "nvmx_mr_i:\n"
    "    rdmsr\n"
    "    out %al, $0x80\n"
    "    hlt\n"
    "nvmx_mw:\n"
    "    mov %r12d, %ecx\n"
    "    mov %r13d, %eax\n"
    "    xor %edx, %edx\n"
    "nvmx_mw_i:\n"
    "    wrmsr\n"
    "    out %al, $0x80\n"
    "    hlt\n"
    ".balign 8\n"
    "nvmx_vmxon_ptr: .quad 0x20000\n"
    "nvmx_vmcs_ptr: .quad 0x21000\n"
    "nvmx_end:\n"
    ".popsection\n");
extern const uint8_t nvmx_l1[], nvmx_host[], nvmx_l2[], nvmx_a[], nvmx_b[], nvmx_e[],
    nvmx_f[], nvmx_g[], nvmx_mr[], nvmx_mr_i[], nvmx_mw[], nvmx_mw_i[], nvmx_end[];

#define MEM_SIZE (2u << 20)
#define CODE_GPA 0x1000u
#define GDT_GPA 0x2000u
#define IDT_GPA 0x3000u
#define PML4_GPA 0x10000u
#define VMXON_GPA 0x20000u
#define VMCS_GPA 0x21000u
#define MSR_BITMAP_GPA 0x22000u
#define L2_STACK 0x40000u
#define L1_STACK 0x7000u

enum { EXIT_EXCEPTION_NMI = 0, EXIT_VMCALL = 18, EXIT_MSR_READ = 31, EXIT_MSR_WRITE = 32 };
#define VMCS12_REVISION 0x11e57ed0u /* IA32_VMX_BASIC[30:0] (vmcs12.h VMCS12_REVISION) */

struct nctx {
    struct abi_process *p;
    int kvm, vm, vcpu;
    struct kvm_run *run;
    uint8_t *mem;
};

static long io(struct nctx *c, int fd, unsigned long req, const void *arg)
{
    long r = abi_ioctl(c->p, fd, req, (unsigned long)arg);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static uint64_t gpa_of(const uint8_t *sym) { return CODE_GPA + (uint64_t)(sym - nvmx_l1); }

static void vput(struct nctx *c, uint32_t field, uint64_t val)
{
    emu_vmcs_put(c->mem + VMCS_GPA, field, val);
}

/* vmcs12 as an L1 would build it with the selftests' library (prepare_vmcs): L2 in the
 * same flat 64-bit world, "use MSR bitmaps" (unless msr_bitmaps is false), #GP in the
 * exception bitmap. */
static void build_vmcs(struct nctx *c, bool msr_bitmaps)
{
    uint8_t *v = c->mem + VMCS_GPA;
    memset(v, 0, 4096);
    memcpy(v, &(uint32_t){VMCS12_REVISION}, 4);
    memcpy(c->mem + VMXON_GPA, &(uint32_t){VMCS12_REVISION}, 4);
    vput(c, VF_PIN_BASED_VM_EXEC_CONTROL, 0x16);
    vput(c, VF_CPU_BASED_VM_EXEC_CONTROL, 0x0401e172u | (msr_bitmaps ? 1u << 28 : 0));
    vput(c, VF_VM_EXIT_CONTROLS, 0x36dffu | 1u << 9);   /* host address-space size */
    vput(c, VF_VM_ENTRY_CONTROLS, 0x11ffu | 1u << 9);   /* IA-32e mode guest */
    vput(c, VF_EXCEPTION_BITMAP, 1u << 13);             /* #GP */
    vput(c, VF_PAGE_FAULT_ERROR_CODE_MATCH, 0xffffffffu);
    vput(c, VF_MSR_BITMAP, MSR_BITMAP_GPA);
    vput(c, VF_VMCS_LINK_POINTER, ~0ull);
    static const uint32_t host_sel[] = {VF_HOST_ES_SELECTOR, VF_HOST_SS_SELECTOR,
                                        VF_HOST_DS_SELECTOR};
    for (unsigned i = 0; i < 3; i++)
        vput(c, host_sel[i], 0x10);
    vput(c, VF_HOST_CS_SELECTOR, 8);
    vput(c, VF_HOST_TR_SELECTOR, 0x18);
    vput(c, VF_HOST_CR0, 0x80000031u);
    vput(c, VF_HOST_CR3, PML4_GPA);
    vput(c, VF_HOST_CR4, 0x2020);
    vput(c, VF_HOST_GDTR_BASE, GDT_GPA);
    vput(c, VF_HOST_IDTR_BASE, IDT_GPA);
    vput(c, VF_HOST_RSP, L1_STACK);
    vput(c, VF_HOST_RIP, gpa_of(nvmx_host));
    /* guest state */
    static const struct { uint32_t sel, lim, ar; uint16_t s; uint32_t a; } seg[] = {
        {VF_GUEST_ES_SELECTOR, VF_GUEST_ES_LIMIT, VF_GUEST_ES_AR_BYTES, 0x10, 0xc093},
        {VF_GUEST_CS_SELECTOR, VF_GUEST_CS_LIMIT, VF_GUEST_CS_AR_BYTES, 0x08, 0xa09b},
        {VF_GUEST_SS_SELECTOR, VF_GUEST_SS_LIMIT, VF_GUEST_SS_AR_BYTES, 0x10, 0xc093},
        {VF_GUEST_DS_SELECTOR, VF_GUEST_DS_LIMIT, VF_GUEST_DS_AR_BYTES, 0x10, 0xc093},
        {VF_GUEST_FS_SELECTOR, VF_GUEST_FS_LIMIT, VF_GUEST_FS_AR_BYTES, 0, 0x10000},
        {VF_GUEST_GS_SELECTOR, VF_GUEST_GS_LIMIT, VF_GUEST_GS_AR_BYTES, 0, 0x10000},
        {VF_GUEST_LDTR_SELECTOR, VF_GUEST_LDTR_LIMIT, VF_GUEST_LDTR_AR_BYTES, 0, 0x10000},
        {VF_GUEST_TR_SELECTOR, VF_GUEST_TR_LIMIT, VF_GUEST_TR_AR_BYTES, 0x18, 0x8b},
    };
    for (unsigned i = 0; i < sizeof seg / sizeof seg[0]; i++) {
        vput(c, seg[i].sel, seg[i].s);
        vput(c, seg[i].lim, seg[i].a == 0x8b ? 0x67 : 0xffffffffu);
        vput(c, seg[i].ar, seg[i].a);
    }
    vput(c, VF_GUEST_GDTR_BASE, GDT_GPA);
    vput(c, VF_GUEST_GDTR_LIMIT, 23);
    vput(c, VF_GUEST_IDTR_BASE, IDT_GPA);
    vput(c, VF_GUEST_IDTR_LIMIT, 0xfff);
    vput(c, VF_GUEST_CR0, 0x80000031u);
    vput(c, VF_GUEST_CR3, PML4_GPA);
    vput(c, VF_GUEST_CR4, 0x2020);
    vput(c, VF_GUEST_DR7, 0x400);
    vput(c, VF_GUEST_RFLAGS, 2);
    vput(c, VF_GUEST_RIP, gpa_of(nvmx_l2));
    vput(c, VF_GUEST_RSP, L2_STACK);
}

static void guest_open(struct nctx *c, bool msr_bitmaps)
{
    setenv("SOFTKVM_VENDOR", "intel", 1);
    c->p = abi_process_create();
    ck_assert_ptr_nonnull(c->p);
    c->kvm = abi_open_dev_kvm(c->p, O_RDWR);
    ck_assert_int_ge(c->kvm, 0);
    c->vm = (int)io(c, c->kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(c->vm, 0);
    c->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(c->mem, MAP_FAILED);
    memcpy(c->mem + CODE_GPA, nvmx_l1, (size_t)(nvmx_end - nvmx_l1));
    abi_test_flat_tables(c->mem, GDT_GPA, PML4_GPA);
    /* L1's MSR bitmap (SDM 25.6.9): read-low at 0, write-low at 0x800 */
    c->mem[MSR_BITMAP_GPA + 0x10 / 8] |= 1u << (0x10 % 8);            /* read 0x10 */
    c->mem[MSR_BITMAP_GPA + 0x800 + 0x174 / 8] |= 1u << (0x174 % 8);  /* write 0x174 */
    build_vmcs(c, msr_bitmaps);
    struct kvm_userspace_memory_region r = {.slot = 0, .memory_size = MEM_SIZE,
                                            .userspace_addr = (uintptr_t)c->mem};
    ck_assert_int_eq(io(c, c->vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    /* the supported CPUID, which offers VMX on the Intel flavour (vmx_set_cpu_caps, nested=1) */
    struct abi_test_cpuid cp;
    c->vcpu = abi_test_vcpu_supported(c->p, c->kvm, c->vm, &c->run, &cp);
    const struct kvm_cpuid_entry2 *l1 = abi_cpuid_find(cp.e, cp.h.nent, 1, 0);
    ck_assert_ptr_nonnull(l1);
    ck_assert_uint_eq(l1->ecx & (1u << 5), 1u << 5);
    struct kvm_sregs s = {0};
    ck_assert_int_eq(io(c, c->vcpu, KVM_GET_SREGS, &s), 0);
    abi_test_flat_sregs(&s, true, GDT_GPA, IDT_GPA, 0xfff, PML4_GPA);
    s.tr = (struct kvm_segment){.selector = 0x18, .limit = 0x67, .type = 11, .present = 1};
    ck_assert_int_eq(io(c, c->vcpu, KVM_SET_SREGS, &s), 0);
    struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2, .rsp = L1_STACK};
    ck_assert_int_eq(io(c, c->vcpu, KVM_SET_REGS, &regs), 0);
}

static void guest_close(struct nctx *c)
{
    abi_test_close_all(c->p);
    munmap(c->mem, MEM_SIZE);
    unsetenv("SOFTKVM_VENDOR");
}

static void run_to_port(struct nctx *c, uint16_t port)
{
    ck_assert_int_eq(io(c, c->vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c->run->exit_reason, KVM_EXIT_IO);
    ck_assert_uint_eq(c->run->io.port, port);
}

/* L1 reported a VM exit: reason, qualification and the L2 RIP it saved. */
static struct kvm_regs expect_l1_exit(struct nctx *c, uint32_t reason, uint64_t qual,
                                      const uint8_t *l2_rip)
{
    run_to_port(c, 0x10);
    struct kvm_regs regs = {0};
    ck_assert_int_eq(io(c, c->vcpu, KVM_GET_REGS, &regs), 0);
    ck_assert_uint_eq(regs.rsi, reason);
    ck_assert_uint_eq(regs.rdi, qual);
    ck_assert_uint_eq(regs.r8, gpa_of(l2_rip));
    return regs;
}

/* deny reads of 0x10 and 0x174 (one-bit ranges: a clear bit denies) */
static void set_deny_filter(struct nctx *c)
{
    static uint8_t deny = 0;
    struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    f.ranges[0] = (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_READ, .base = 0x10,
                                                .nmsrs = 1, .bitmap = &deny};
    f.ranges[1] = (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_READ, .base = 0x174,
                                                .nmsrs = 1, .bitmap = &deny};
    ck_assert_int_eq(io(c, c->vm, KVM_X86_SET_MSR_FILTER, &f), 0);
}

START_TEST(l2_msr_follows_l1_bitmap_then_l0)
{
    struct nctx c;
    guest_open(&c, true);
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
                                 .args = {KVM_MSR_EXIT_REASON_FILTER}};
    ck_assert_int_eq(io(&c, c.vm, KVM_ENABLE_CAP, &cap), 0);
    set_deny_filter(&c);
    /* L2 RDMSR 0x10: L1's read bit is set, so the exit is L1's (reason 31) and L0's filter,
     * which denies 0x10, is never asked (nested_vmx_exit_handled_msr returns the bit) */
    expect_l1_exit(&c, EXIT_MSR_READ, 0, nvmx_a);
    /* L2 RDMSR 0x174: L1's bit is clear -> L0, whose filter denies it with a user-space
     * exit (nested_vmx_prepare_msr_bitmap keeps L0's intercept; L0 handles the exit) */
    ck_assert_int_eq(io(&c, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_X86_RDMSR);
    ck_assert_uint_eq(c.run->msr.index, 0x174);
    ck_assert_uint_eq(c.run->msr.reason, KVM_MSR_EXIT_REASON_FILTER);
    struct kvm_regs regs = {0};
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_REGS, &regs), 0);
    ck_assert_uint_eq(regs.rip, gpa_of(nvmx_b)); /* the vCPU is in L2 */
    c.run->msr.error = 0;
    c.run->msr.data = 0x1234;
    /* L2 OUT 0x80: neither I/O exiting control -> L0's user-space I/O exit, with the value
     * user space returned for the RDMSR */
    run_to_port(&c, 0x80);
    ck_assert_uint_eq(*((uint8_t *)c.run + c.run->io.data_offset), 0x34);
    /* L2 WRMSR 0x174: L1's write bit (bitmap + 0x800) -> reason 32 */
    expect_l1_exit(&c, EXIT_MSR_WRITE, 0, nvmx_e);
    /* L2 RDMSR 0x4b564d01: outside 0-0x1fff and 0xc0000000-0xc0001fff -> always L1's */
    expect_l1_exit(&c, EXIT_MSR_READ, 0, nvmx_f);
    expect_l1_exit(&c, EXIT_VMCALL, 0, nvmx_g);
    guest_close(&c);
}
END_TEST

/* Without user-space deflection, an L0 filter denial of an access L1 lets through is #GP
 * in L2 (kvm_msr_allowed -> KVM_MSR_RET_FILTERED -> #GP), which L1's exception bitmap
 * (#GP set) makes an exception exit: reason 0, vector 13, hardware exception, error 0. */
START_TEST(l2_msr_denied_by_l0_is_gp_in_l2)
{
    struct nctx c;
    guest_open(&c, true);
    set_deny_filter(&c);
    expect_l1_exit(&c, EXIT_MSR_READ, 0, nvmx_a);
    struct kvm_regs r = expect_l1_exit(&c, EXIT_EXCEPTION_NMI, 0, nvmx_b);
    ck_assert_uint_eq(r.r9, 0x80000000u | 3u << 8 | 1u << 11 | 13); /* valid, HW exc, err */
    guest_close(&c);
}
END_TEST

/* An L2 RDMSR L1 passes through is L0's: it returns the value L0 holds for the running
 * level without any exit. SYSENTER_CS is guest state VM entry loads (SDM 27.3.2.1, KVM
 * prepare_vmcs02 vmcs12->guest_sysenter_cs), so L2 reads its own 0x9a, not L1's 0x5678. */
START_TEST(l2_msr_passed_through_is_l0s)
{
    struct nctx c;
    guest_open(&c, true);
    vput(&c, VF_GUEST_SYSENTER_CS, 0x9a);
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = 0x174, .e.data = 0x5678};
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_MSRS, &m), 1);
    expect_l1_exit(&c, EXIT_MSR_READ, 0, nvmx_a);
    run_to_port(&c, 0x80);
    ck_assert_uint_eq(*((uint8_t *)c.run + c.run->io.data_offset), 0x9a);
    guest_close(&c);
}
END_TEST

/* Without "use MSR bitmaps" every L2 RDMSR/WRMSR exits to L1 (nested_vmx_exit_handled_msr:
 * !nested_cpu_has(vmcs12, CPU_BASED_USE_MSR_BITMAPS) -> true), even those whose bit is
 * clear in the (unused) bitmap. */
START_TEST(l2_msr_without_bitmaps_always_exits)
{
    struct nctx c;
    guest_open(&c, false);
    expect_l1_exit(&c, EXIT_MSR_READ, 0, nvmx_a);
    expect_l1_exit(&c, EXIT_MSR_READ, 0, nvmx_b);
    run_to_port(&c, 0x80);
    expect_l1_exit(&c, EXIT_MSR_WRITE, 0, nvmx_e);
    guest_close(&c);
}
END_TEST

/* I/O bitmaps (nested_vmx_check_io_bitmaps, nested.c:6185): a set bit for port 0x80 in
 * bitmap A is an I/O exit (reason 30) with qualification port << 16 | immediate (bit 6) |
 * size - 1; without the exit the same OUT would be L0's user-space exit. */
START_TEST(l2_io_follows_l1_io_bitmap)
{
    struct nctx c;
    guest_open(&c, true);
    vput(&c, VF_CPU_BASED_VM_EXEC_CONTROL, 0x0401e172u | 1u << 28 | 1u << 25);
    vput(&c, VF_IO_BITMAP_A, 0x30000);
    vput(&c, VF_IO_BITMAP_B, 0x31000);
    c.mem[0x30000 + 0x80 / 8] |= 1u << (0x80 % 8);
    expect_l1_exit(&c, EXIT_MSR_READ, 0, nvmx_a);
    expect_l1_exit(&c, 30, 0x80u << 16 | 1u << 6, nvmx_b + 2);
    guest_close(&c);
}
END_TEST

/* A guest-state check failure after the VMfail checks (SDM 26.3.1.2: TR unusable) is a
 * VM exit with reason 33 | bit 31 to HOST_RIP, L2 never runs and the VMCS stays
 * unlaunched, so the VMRESUME after it VMfails (nested_vmx_run: launch_state check). */
START_TEST(invalid_guest_state_is_a_failed_entry)
{
    struct nctx c;
    guest_open(&c, true);
    vput(&c, VF_GUEST_TR_AR_BYTES, 0x10000);
    expect_l1_exit(&c, 0x80000000u | 33, 0, nvmx_l2);
    run_to_port(&c, 0x11);
    struct kvm_regs regs = {0};
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_REGS, &regs), 0);
    ck_assert_uint_eq(regs.rflags & 0x41, 0x40); /* VMfailValid: ZF, not CF */
    guest_close(&c);
}
END_TEST

/* The VM-entry MSR-load list is an MSR access the CPU makes itself, yet 6.12 applies the
 * MSR filter to it: nested.c nested_vmx_load_msr (985-1019) writes each entry with
 * kvm_set_msr_with_filter (1008), which returns KVM_MSR_RET_FILTERED for a denied write
 * (x86.c kvm_set_msr_with_filter) and never deflects to user space (only
 * kvm_emulate_wrmsr does). The entry then fails with reason 34 | bit 31 and the 1-based
 * index of the failing entry as qualification (nested_vmx_enter_non_root_mode 3631-3637,
 * SDM 27.8). Without the filter the same list loads and L2 runs. */
static void entry_msr_load_case(bool deny)
{
    struct nctx c;
    guest_open(&c, true);
    uint64_t *list = (uint64_t *)(c.mem + 0x23000);
    list[0] = 0x175;            /* SYSENTER_ESP: allowed */
    list[1] = 0x123000;
    list[2] = 0x174;            /* SYSENTER_CS: write denied below */
    list[3] = 0x9a;
    vput(&c, VF_VM_ENTRY_MSR_LOAD_ADDR, 0x23000);
    vput(&c, VF_VM_ENTRY_MSR_LOAD_COUNT, 2);
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
                                 .args = {KVM_MSR_EXIT_REASON_FILTER}};
    ck_assert_int_eq(io(&c, c.vm, KVM_ENABLE_CAP, &cap), 0);
    if (deny) {
        static uint8_t none = 0;
        struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
        f.ranges[0] = (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_WRITE, .base = 0x174,
                                                    .nmsrs = 1, .bitmap = &none};
        ck_assert_int_eq(io(&c, c.vm, KVM_X86_SET_MSR_FILTER, &f), 0);
        /* no KVM_EXIT_X86_WRMSR: the failed entry goes straight to L1's HOST_RIP */
        expect_l1_exit(&c, 0x80000000u | 34, 2, nvmx_l2);
    } else {
        expect_l1_exit(&c, EXIT_MSR_READ, 0, nvmx_a);
    }
    guest_close(&c);
}

START_TEST(entry_msr_load_list_is_filtered_not_deflected)
{
    entry_msr_load_case(true);
    entry_msr_load_case(false);
}
END_TEST

/* Nested EPT (secondary control 1): L1's EPT at 0x50000 maps L2-physical addresses to
 * L1-physical ones. `pd_mapped` false leaves the page of L2's page directory (0x12000)
 * out, so L2's first instruction fetch faults on a paging-structure read: an EPT
 * violation (reason 48) with qualification "read, no permissions, linear address valid,
 * not the final translation" (SDM table 28-7) and the guest-physical address of the PDE. */
static void build_ept(struct nctx *c, bool pd_mapped)
{
    uint64_t *pml4 = (uint64_t *)(c->mem + 0x50000), *pdpt = (uint64_t *)(c->mem + 0x51000);
    uint64_t *pd = (uint64_t *)(c->mem + 0x52000), *pt = (uint64_t *)(c->mem + 0x53000);
    pml4[0] = 0x51000 | 7;
    pdpt[0] = 0x52000 | 7;
    pd[0] = 0x53000 | 7;
    for (unsigned i = 0; i < 512; i++) /* identity, RWX, WB (memory type 6 in bits 5:3) */
        if (pd_mapped || i != 0x12)
            pt[i] = (uint64_t)i << 12 | 7 | 6u << 3;
    vput(c, VF_CPU_BASED_VM_EXEC_CONTROL, 0x0401e172u | 1u << 28 | 1u << 31);
    vput(c, VF_SECONDARY_VM_EXEC_CONTROL, 1u << 1);
    vput(c, VF_EPT_POINTER, 0x50000 | 3u << 3 | 6); /* 4-level walk, WB */
}

START_TEST(ept_maps_l2_physical)
{
    struct nctx c;
    guest_open(&c, true);
    build_ept(&c, true);
    expect_l1_exit(&c, EXIT_MSR_READ, 0, nvmx_a);
    run_to_port(&c, 0x80);
    guest_close(&c);
}
END_TEST

START_TEST(ept_violation_on_a_page_walk)
{
    struct nctx c;
    guest_open(&c, true);
    build_ept(&c, false);
    expect_l1_exit(&c, 48, 1u | 1u << 7, nvmx_l2);
    guest_close(&c);
}
END_TEST

/* "Virtualize APIC accesses" (secondary control 0) with the APIC-access page on L2's code
 * page: L2's first instruction fetch is an APIC-access exit (reason 44), qualification =
 * page offset | access type 2 (linear fetch) << 12 (SDM table 28-6). */
START_TEST(apic_access_page_access_exits)
{
    struct nctx c;
    guest_open(&c, true);
    vput(&c, VF_CPU_BASED_VM_EXEC_CONTROL, 0x0401e172u | 1u << 28 | 1u << 31);
    vput(&c, VF_SECONDARY_VM_EXEC_CONTROL, 1u << 0);
    vput(&c, VF_APIC_ACCESS_ADDR, CODE_GPA);
    expect_l1_exit(&c, 44, (gpa_of(nvmx_l2) & 0xfff) | 2u << 12, nvmx_l2);
    guest_close(&c);
}
END_TEST

/* KVM_GET_NESTED_STATE in VMX format (vmx_get_nested_state): in L2, GUEST_MODE with the
 * VMXON and VMCS pointers and the vmcs12 (its guest RIP synced to where L2 stopped). */
START_TEST(nested_state_vmx_format)
{
    struct nctx c;
    guest_open(&c, true);
    ck_assert_int_eq(io(&c, c.kvm, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_NESTED_STATE),
                     128 + 2 * 4096);
    expect_l1_exit(&c, EXIT_MSR_READ, 0, nvmx_a);
    /* resume L2 to its user-space I/O exit */
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = 0x174, .e.data = 0x5678};
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_MSRS, &m), 1);
    run_to_port(&c, 0x80);
    struct kvm_nested_state *st = calloc(1, 128 + 2 * 4096);
    st->size = 128;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_NESTED_STATE, st), -1);
    ck_assert_int_eq(errno, E2BIG);
    ck_assert_uint_eq(st->size, 128 + 4096);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_NESTED_STATE, st), 0);
    ck_assert_uint_eq(st->format, KVM_STATE_NESTED_FORMAT_VMX);
    ck_assert_uint_eq(st->flags, KVM_STATE_NESTED_GUEST_MODE);
    ck_assert_uint_eq(st->hdr.vmx.vmxon_pa, VMXON_GPA);
    ck_assert_uint_eq(st->hdr.vmx.vmcs12_pa, VMCS_GPA);
    uint64_t rip = emu_vmcs_get(st->data.vmx[0].vmcs12, VF_GUEST_RIP);
    ck_assert_uint_gt(rip, gpa_of(nvmx_b)); /* at or after the OUT, before the WRMSR */
    ck_assert_uint_lt(rip, gpa_of(nvmx_e));
    free(st);
    guest_close(&c);
}
END_TEST

/* The whole L2 MSR matrix, for reads and writes of an MSR KVM passes through to L1
 * (SYSENTER_CS: vmx.c vmx_vcpu_create, MSR_TYPE_RW) and one it intercepts (STAR), under
 * every combination of L1's bitmap bit, an L0 filter denial and user-space deflection of
 * filtered accesses. Expected, from 6.12:
 *  - L1's bit set: a VM exit to L1, reason 31/32, whatever L0 would do
 *    (nested_vmx_exit_handled_msr, nested.c 6242; nested_vmx_l1_wants_exit);
 *  - else L0 decides as for L1. A filter denial takes the MSR out of L0's pass-through
 *    (vmx_disable_intercept_for_msr keeps the intercept when !kvm_msr_allowed, so the
 *    merged vmcs02 bitmap of nested_vmx_prepare_msr_bitmap intercepts it) and it goes to
 *    user space with KVM_MSR_EXIT_REASON_FILTER when deflection asks for it
 *    (kvm_msr_user_space), else it is #GP in L2 (KVM_MSR_RET_FILTERED), here an exception
 *    exit to L1 (#GP is in L1's exception bitmap);
 *  - else the access completes in L2: pass-through or L0's emulation give the same value
 *    (SYSENTER_CS is L2's own from vmcs12, STAR is shared). */
START_TEST(l2_msr_matrix)
{
    static const uint32_t msrs[] = {0x174, 0xc0000081};
    unsigned cases = 0;
    for (unsigned mi = 0; mi < 2; mi++)
        for (int write = 0; write < 2; write++)
            for (int l1_bit = 0; l1_bit < 2; l1_bit++)
                for (int deny = 0; deny < 2; deny++)
                    for (int deflect = 0; deflect < 2; deflect++) {
        uint32_t msr = msrs[mi];
        struct nctx c;
        guest_open(&c, true);
        memset(c.mem + MSR_BITMAP_GPA, 0, 4096);
        if (l1_bit) {
            unsigned off = (write ? 0x800 : 0) + (msr >= 0xc0000000u ? 0x400 : 0);
            unsigned bit = msr & 0x1fff;
            c.mem[MSR_BITMAP_GPA + off + bit / 8] |= 1u << (bit % 8);
        }
        vput(&c, VF_GUEST_SYSENTER_CS, 0x9a);
        vput(&c, VF_GUEST_RIP, gpa_of(write ? nvmx_mw : nvmx_mr));
        struct {
            struct kvm_msrs h;
            struct kvm_msr_entry e;
        } m = {.h.nmsrs = 1, .e.index = 0xc0000081, .e.data = 0x0023001000000042ull};
        ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_MSRS, &m), 1);
        struct kvm_regs regs;
        ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_REGS, &regs), 0);
        regs.r12 = msr;
        regs.r13 = 0x55;
        ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_REGS, &regs), 0);
        if (deflect)
            abi_test_deflect_filtered(c.p, c.vm);
        if (deny)
            abi_test_deny_msr(c.p, c.vm, msr);
        const uint8_t *at = write ? nvmx_mw_i : nvmx_mr_i;
        uint8_t want = write ? 0x55 : msr == 0x174 ? 0x9a : 0x42;
        if (l1_bit) {
            expect_l1_exit(&c, write ? EXIT_MSR_WRITE : EXIT_MSR_READ, 0, at);
        } else if (deny && !deflect) {
            struct kvm_regs r = expect_l1_exit(&c, EXIT_EXCEPTION_NMI, 0, at);
            ck_assert_uint_eq(r.r9, 0x80000000u | 3u << 8 | 1u << 11 | 13);
        } else {
            if (deny) {
                ck_assert_int_eq(io(&c, c.vcpu, KVM_RUN, 0), 0);
                ck_assert_uint_eq(c.run->exit_reason, write ? KVM_EXIT_X86_WRMSR : KVM_EXIT_X86_RDMSR);
                ck_assert_uint_eq(c.run->msr.index, msr);
                ck_assert_uint_eq(c.run->msr.reason, KVM_MSR_EXIT_REASON_FILTER);
                if (write)
                    ck_assert_uint_eq(c.run->msr.data, 0x55);
                c.run->msr.error = 0;
                c.run->msr.data = 0x77;
                want = write ? 0x55 : 0x77;
            }
            run_to_port(&c, 0x80);
            ck_assert_msg(*((uint8_t *)c.run + c.run->io.data_offset) == want,
                          "msr %#x write %d l1 %d deny %d deflect %d: %#x", msr, write, l1_bit,
                          deny, deflect, *((uint8_t *)c.run + c.run->io.data_offset));
            if (write && !deny) { /* the write landed: L2's view of the MSR */
                m.e = (struct kvm_msr_entry){.index = msr};
                ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_MSRS, &m), 1);
                ck_assert_uint_eq(m.e.data, 0x55);
            }
        }
        guest_close(&c);
        cases++;
                    }
    ck_assert_uint_eq(cases, 32);
}
END_TEST

/* An SMI while L2 runs (6.12 vmx.c vmx_enter_smm / vmx_leave_smm, nested.c
 * vmx_get/set_nested_state): SMM leaves L2 without telling L1 and suspends VMX operation,
 * KVM_GET_NESTED_STATE then says SMM_VMXON | SMM_GUEST_MODE and no guest mode (6711-6715);
 * in SMM a state with guest mode, or SMM_GUEST_MODE without SMM_VMXON, is EINVAL
 * (6857-6865); RSM re-enters L2, which goes on to its next exit. */
START_TEST(smi_in_l2_suspends_vmx_until_rsm)
{
    struct nctx c;
    guest_open(&c, true);
    /* address space 1 = the same memory; the SMI handler at SMBASE 0x30000 + 0x8000 */
    static const uint8_t handler[] = {0xe6, 0x81, 0x0f, 0xaa}; /* out %al, $0x81; rsm */
    memcpy(c.mem + 0x38000, handler, sizeof handler);
    struct kvm_userspace_memory_region r1 = {.slot = 1u << 16, .memory_size = MEM_SIZE,
                                             .userspace_addr = (uintptr_t)c.mem};
    ck_assert_int_eq(io(&c, c.vm, KVM_SET_USER_MEMORY_REGION, &r1), 0);
    expect_l1_exit(&c, EXIT_MSR_READ, 0, nvmx_a);
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = 0x174, .e.data = 0x5678};
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_MSRS, &m), 1);
    run_to_port(&c, 0x80); /* in L2 */
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SMI, 0), 0);
    run_to_port(&c, 0x81);
    ck_assert_uint_eq(c.run->flags & KVM_RUN_X86_SMM, KVM_RUN_X86_SMM);
    struct kvm_nested_state *st = calloc(1, 128 + 2 * 4096);
    st->size = 128 + 2 * 4096;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_NESTED_STATE, st), 0);
    ck_assert_uint_eq(st->flags, 0);
    ck_assert_uint_eq(st->hdr.vmx.smm.flags, KVM_STATE_NESTED_SMM_VMXON | KVM_STATE_NESTED_SMM_GUEST_MODE);
    ck_assert_uint_eq(st->hdr.vmx.vmxon_pa, VMXON_GPA);
    ck_assert_uint_eq(st->hdr.vmx.vmcs12_pa, VMCS_GPA);
    st->flags = KVM_STATE_NESTED_GUEST_MODE;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_NESTED_STATE, st), -1);
    ck_assert_int_eq(errno, EINVAL);
    st->flags = 0;
    st->hdr.vmx.smm.flags = KVM_STATE_NESTED_SMM_GUEST_MODE;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_NESTED_STATE, st), -1);
    ck_assert_int_eq(errno, EINVAL);
    st->hdr.vmx.smm.flags = KVM_STATE_NESTED_SMM_VMXON | KVM_STATE_NESTED_SMM_GUEST_MODE;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_NESTED_STATE, st), 0);
    /* RSM: back in L2, whose WRMSR 0x174 is L1's exit as before */
    expect_l1_exit(&c, EXIT_MSR_WRITE, 0, nvmx_e);
    ck_assert_uint_eq(c.run->flags & KVM_RUN_X86_SMM, 0);
    free(st);
    guest_close(&c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("abi_nested_vmx");
    TCase *t = tcase_create("l2");
    tcase_add_test(t, l2_msr_follows_l1_bitmap_then_l0);
    tcase_add_test(t, l2_msr_denied_by_l0_is_gp_in_l2);
    tcase_add_test(t, l2_msr_passed_through_is_l0s);
    tcase_add_test(t, l2_msr_without_bitmaps_always_exits);
    tcase_add_test(t, l2_io_follows_l1_io_bitmap);
    tcase_add_test(t, invalid_guest_state_is_a_failed_entry);
    tcase_add_test(t, entry_msr_load_list_is_filtered_not_deflected);
    tcase_add_test(t, ept_maps_l2_physical);
    tcase_add_test(t, ept_violation_on_a_page_walk);
    tcase_add_test(t, apic_access_page_access_exits);
    tcase_add_test(t, nested_state_vmx_format);
    tcase_add_test(t, smi_in_l2_suspends_vmx_until_rsm);
    tcase_add_test(t, l2_msr_matrix);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
