/* Nested SVM at guest level (AMD flavour): a small L1 hypervisor runs an L2 through VMRUN,
 * and every L2 MSR and port access is decided as Linux 6.12 decides it:
 * - L1's MSRPM / IOPM first (svm/nested.c nested_svm_exit_handled_msr,
 *   nested_svm_intercept_ioio): a set bit, or an MSR outside the three MSRPM ranges, is a
 *   #VMEXIT to L1 with EXITINFO1 = 0 read / 1 write or the IOIO encoding;
 * - what L1 lets through is L0's, i.e. softkvm's own path for L1 accesses: the MSR filter
 *   and user-space deflection (x86.c kvm_msr_allowed / kvm_msr_user_space) and port I/O
 *   exits to user space — KVM's merged vmcb02 MSRPM (nested_svm_merge_msrpm) intercepts
 *   when either level does, and the exit is L0's when L1's bit is clear;
 * - a VMCB that fails nested_vmcb_check_controls (ASID 0) gives VMEXIT_INVALID (-1) in
 *   VMCB12 and L1 continues after its VMRUN.
 * The guest runs in-process through abi_ioctl, in 64-bit mode. */
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

/* L1: enable SVM, set VM_HSAVE_PA, then loop { VMRUN; report on port 0x10; resume L2 at
 * the NextRIP of the exit }. L2: the accesses under test, in order. */
__asm__(".pushsection .rodata.nsvm, \"a\"\n"
    ".code64\n"
    "nsvm_l1:\n"
    "    mov $0xc0000080, %ecx\n"
    "    rdmsr\n"
    "    or $0x1000, %eax\n"            /* EFER.SVME */
    "    wrmsr\n"
    "    mov $0xc0010117, %ecx\n"       /* VM_HSAVE_PA */
    "    mov $0x21000, %eax\n"
    "    xor %edx, %edx\n"
    "    wrmsr\n"
    "1:  mov $0x20000, %eax\n"
    "    vmrun\n"
    "    out %al, $0x10\n"
    "    mov 0x200c8, %rbx\n"           /* control.next_rip */
    "    mov %rbx, 0x20578\n"           /* -> save.rip */
    "    jmp 1b\n"
    "nsvm_l2:\n"
    "    mov $0x10, %ecx\n"
    "nsvm_a:\n"
    "    rdmsr\n"                       /* TSC: L1's read bit set -> #VMEXIT(MSR) */
    "    mov $0x174, %ecx\n"
    "nsvm_b:\n"
    "    rdmsr\n"                       /* SYSENTER_CS: L1 lets it through, L0's filter denies */
    "    out %al, $0x80\n"              /* L1's IOPM bit clear: a user-space I/O exit */
    "nsvm_d:\n"
    "    out %al, $0x81\n"              /* L1's IOPM bit set: #VMEXIT(IOIO) */
    "    mov $0x174, %ecx\n"
    "nsvm_e:\n"
    "    wrmsr\n"                       /* L1's write bit set: #VMEXIT(MSR), EXITINFO1 = 1 */
    "    mov $0x4b564d01, %ecx\n"
    "nsvm_f:\n"
    "    rdmsr\n"                       /* outside the MSRPM ranges: always L1's */
    "nsvm_g:\n"
    "    vmmcall\n"
    "    hlt\n"
    /* the matrix (l2_msr_matrix): one access of MSR r12, writing r13 */
    "nsvm_mr:\n"
    "    mov %r12d, %ecx\n"
    "nsvm_mr_i:\n"
    "    rdmsr\n"
    "    out %al, $0x80\n"
    "    hlt\n"
    "nsvm_mw:\n"
    "    mov %r12d, %ecx\n"
    "    mov %r13d, %eax\n"
    "    xor %edx, %edx\n"
    "nsvm_mw_i:\n"
    "    wrmsr\n"
    "    out %al, $0x80\n"
    "    hlt\n"
    /* Hyper-V's nested enlightenments (l2_hyperv_enlightenments) */
    "nsvm_hv:\n"
    "    mov $0xc0000101, %ecx\n"      /* GS_BASE: L0 passes it through */
    "nsvm_hv_a:\n"
    "    rdmsr\n"
    "nsvm_hv_b:\n"
    "    rdmsr\n"
    "nsvm_hv_c:\n"
    "    rdmsr\n"
    "nsvm_hv_c2:\n"
    "    vmmcall\n"
    "    mov $0xc0010015, %ecx\n"      /* HWCR: L0 intercepts it */
    "nsvm_hv_d:\n"
    "    rdmsr\n"
    "    mov $0x10002, %ecx\n"         /* HvCallFlushVirtualAddressSpace, fast */
    "    xor %edx, %edx\n"
    "    mov $3, %r8d\n"               /* all address spaces, all processors */
    "nsvm_hv_e:\n"
    "    vmmcall\n"
    "    out %al, $0x80\n"
    "nsvm_hv_f:\n"
    "    vmmcall\n"
    "nsvm_hv_f_end:\n"
    "    out %al, $0x80\n"
    "nsvm_hv_g:\n"
    "    vmmcall\n"
    "    hlt\n"
    "nsvm_end:\n"
    ".popsection\n");
extern const uint8_t nsvm_l1[], nsvm_l2[], nsvm_a[], nsvm_b[], nsvm_d[], nsvm_e[], nsvm_f[],
    nsvm_g[], nsvm_mr[], nsvm_mr_i[], nsvm_mw[], nsvm_mw_i[], nsvm_hv[], nsvm_hv_a[],
    nsvm_hv_b[], nsvm_hv_c[], nsvm_hv_c2[], nsvm_hv_d[], nsvm_hv_e[], nsvm_hv_f[],
    nsvm_hv_f_end[], nsvm_hv_g[], nsvm_end[];

#define MEM_SIZE (2u << 20)
#define CODE_GPA 0x1000u
#define GDT_GPA 0x2000u
#define IDT_GPA 0x3000u
#define PML4_GPA 0x10000u
#define VMCB_GPA 0x20000u
#define HSAVE_GPA 0x21000u
#define MSRPM_GPA 0x22000u
#define IOPM_GPA 0x24000u
#define L2_STACK 0x40000u

#define SVM_EXIT_IOIO 0x7b
#define SVM_EXIT_MSR 0x7c
#define SVM_EXIT_VMMCALL 0x81

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

static uint64_t gpa_of(const uint8_t *sym) { return CODE_GPA + (uint64_t)(sym - nsvm_l1); }

static uint64_t vmcb64(struct nctx *c, unsigned off)
{
    uint64_t x;
    memcpy(&x, c->mem + VMCB_GPA + off, 8);
    return x;
}

static void vmcb_put(struct nctx *c, unsigned off, uint64_t x, unsigned n)
{
    memcpy(c->mem + VMCB_GPA + off, &x, n);
}

static void vmcb_seg(struct nctx *c, unsigned off, uint16_t sel, uint16_t attrib, uint64_t base,
                     uint32_t limit)
{
    vmcb_put(c, off, sel, 2);
    vmcb_put(c, off + 2, attrib, 2);
    vmcb_put(c, off + 4, limit, 4);
    vmcb_put(c, off + 8, base, 8);
}

/* VMCB12 as L1 would build it: L2 in the same flat 64-bit world, intercepting VMRUN,
 * VMMCALL, MSR_PROT and IOIO_PROT. */
static void build_vmcb(struct nctx *c, uint32_t asid)
{
    memset(c->mem + VMCB_GPA, 0, 4096);
    vmcb_put(c, 0x00c, (1u << 27) | (1u << 28), 4); /* IOIO_PROT, MSR_PROT */
    vmcb_put(c, 0x010, 3, 4);                        /* VMRUN, VMMCALL */
    vmcb_put(c, 0x040, IOPM_GPA, 8);
    vmcb_put(c, 0x048, MSRPM_GPA, 8);
    vmcb_put(c, 0x058, asid, 4);
    vmcb_put(c, 0x0c8, gpa_of(nsvm_l2), 8); /* NextRIP: where L1's loop resumes L2 */
    uint16_t data = 0xc93, code = 0xa9b;     /* attrib: type S P (L) DB G */
    vmcb_seg(c, 0x400, 0x10, data, 0, 0xffffffff);
    vmcb_seg(c, 0x410, 0x8, code, 0, 0xffffffff);
    vmcb_seg(c, 0x420, 0x10, data, 0, 0xffffffff);
    vmcb_seg(c, 0x430, 0x10, data, 0, 0xffffffff);
    vmcb_seg(c, 0x460, 0, 0, GDT_GPA, 23);
    vmcb_seg(c, 0x480, 0, 0, IDT_GPA, 0xfff);
    vmcb_put(c, 0x4d0, 0x1500, 8); /* EFER: LME LMA SVME */
    vmcb_put(c, 0x548, 0x20, 8);   /* CR4.PAE */
    vmcb_put(c, 0x550, PML4_GPA, 8);
    vmcb_put(c, 0x558, 0x80000011, 8);
    vmcb_put(c, 0x560, 0x400, 8);
    vmcb_put(c, 0x568, 0xffff0ff0, 8);
    vmcb_put(c, 0x570, 2, 8);
    vmcb_put(c, 0x578, gpa_of(nsvm_l2), 8);
    vmcb_put(c, 0x5d8, L2_STACK, 8);
}

static void guest_open(struct nctx *c, uint32_t asid)
{
    setenv("SOFTKVM_VENDOR", "amd", 1);
    c->p = abi_process_create();
    ck_assert_ptr_nonnull(c->p);
    c->kvm = abi_open_dev_kvm(c->p, O_RDWR);
    ck_assert_int_ge(c->kvm, 0);
    c->vm = (int)io(c, c->kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(c->vm, 0);
    c->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(c->mem, MAP_FAILED);
    memcpy(c->mem + CODE_GPA, nsvm_l1, (size_t)(nsvm_end - nsvm_l1));
    abi_test_flat_tables(c->mem, GDT_GPA, PML4_GPA);
    c->mem[MSRPM_GPA + 0x10 * 2 / 8] |= 1;        /* MSR 0x10 read */
    c->mem[MSRPM_GPA + 0x174 * 2 / 8] |= 2;       /* MSR 0x174 write (bit 0x2e9) */
    c->mem[IOPM_GPA + 0x81 / 8] |= 1u << (0x81 % 8); /* port 0x81 */
    build_vmcb(c, asid);
    struct kvm_userspace_memory_region r = {.slot = 0, .memory_size = MEM_SIZE,
                                            .userspace_addr = (uintptr_t)c->mem};
    ck_assert_int_eq(io(c, c->vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    /* the supported CPUID, which offers SVM on the AMD flavour (svm_set_cpu_caps, nested=1) */
    struct abi_test_cpuid cp;
    c->vcpu = abi_test_vcpu_supported(c->p, c->kvm, c->vm, &c->run, &cp);
    const struct kvm_cpuid_entry2 *x1 = abi_cpuid_find(cp.e, cp.h.nent, 0x80000001, 0);
    ck_assert_ptr_nonnull(x1);
    ck_assert_uint_eq(x1->ecx & 4, 4);
    struct kvm_sregs s;
    ck_assert_int_eq(io(c, c->vcpu, KVM_GET_SREGS, &s), 0);
    abi_test_flat_sregs(&s, true, GDT_GPA, IDT_GPA, 0xfff, PML4_GPA);
    ck_assert_int_eq(io(c, c->vcpu, KVM_SET_SREGS, &s), 0);
    struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2, .rsp = 0x7000};
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

/* L1 reported a #VMEXIT: check VMCB12's exit code, EXITINFO1, saved RIP and NextRIP. */
static void expect_l1_exit(struct nctx *c, uint32_t code, uint64_t info1, const uint8_t *l2_rip)
{
    run_to_port(c, 0x10);
    ck_assert_uint_eq((uint32_t)vmcb64(c, 0x070), code);
    ck_assert_uint_eq(vmcb64(c, 0x078), info1);
    ck_assert_uint_eq(vmcb64(c, 0x578), gpa_of(l2_rip));
    ck_assert_uint_gt(vmcb64(c, 0x0c8), gpa_of(l2_rip)); /* NextRIP: after the instruction */
}

static void enable_deny_filter(struct nctx *c)
{
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
                                 .args = {KVM_MSR_EXIT_REASON_FILTER}};
    ck_assert_int_eq(io(c, c->vm, KVM_ENABLE_CAP, &cap), 0);
    /* deny reads of 0x10 and 0x174 (one-bit ranges: a clear bit denies) */
    static uint8_t deny = 0;
    struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    f.ranges[0] = (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_READ, .base = 0x10,
                                                .nmsrs = 1, .bitmap = &deny};
    f.ranges[1] = (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_READ, .base = 0x174,
                                                .nmsrs = 1, .bitmap = &deny};
    ck_assert_int_eq(io(c, c->vm, KVM_X86_SET_MSR_FILTER, &f), 0);
}

START_TEST(l2_msr_and_io_follow_l1_then_l0)
{
    struct nctx c;
    guest_open(&c, 1);
    enable_deny_filter(&c);
    /* L2 RDMSR 0x10: L1 intercepts, so L0's filter (which denies it) is never asked */
    expect_l1_exit(&c, SVM_EXIT_MSR, 0, nsvm_a);
    /* L2 RDMSR 0x174: L1's bit is clear; L0's filter denies -> user-space exit from L2 */
    ck_assert_int_eq(io(&c, c.vcpu, KVM_RUN, 0), 0);
    ck_assert_uint_eq(c.run->exit_reason, KVM_EXIT_X86_RDMSR);
    ck_assert_uint_eq(c.run->msr.index, 0x174);
    ck_assert_uint_eq(c.run->msr.reason, KVM_MSR_EXIT_REASON_FILTER);
    struct kvm_regs regs;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_REGS, &regs), 0);
    ck_assert_uint_eq(regs.rip, gpa_of(nsvm_b)); /* the vCPU is in L2 */
    c.run->msr.error = 0;
    c.run->msr.data = 0x1234;
    /* L2 OUT 0x80: not in L1's IOPM -> L0's user-space I/O exit, with the RDMSR's value */
    run_to_port(&c, 0x80);
    ck_assert_uint_eq(c.run->io.direction, KVM_EXIT_IO_OUT);
    ck_assert_uint_eq(*((uint8_t *)c.run + c.run->io.data_offset), 0x34);
    /* L2 OUT 0x81: in L1's IOPM -> #VMEXIT(IOIO): port << 16 | SZ8; EXITINFO2 = NextRIP */
    expect_l1_exit(&c, SVM_EXIT_IOIO, (0x81u << 16) | 0x10, nsvm_d);
    ck_assert_uint_eq(vmcb64(&c, 0x080), vmcb64(&c, 0x0c8));
    /* L2 WRMSR 0x174: L1's write bit -> EXITINFO1 = 1 */
    expect_l1_exit(&c, SVM_EXIT_MSR, 1, nsvm_e);
    /* L2 RDMSR 0x4b564d01: outside every MSRPM range -> always L1's */
    expect_l1_exit(&c, SVM_EXIT_MSR, 0, nsvm_f);
    expect_l1_exit(&c, SVM_EXIT_VMMCALL, 0, nsvm_g);
    guest_close(&c);
}
END_TEST

/* Without a filter or with it allowing, an L2 RDMSR L1 passes through is L0's and
 * returns L0's value (here SYSENTER_CS as L1 left it) without any exit. */
START_TEST(l2_msr_passed_through_is_l0s)
{
    struct nctx c;
    guest_open(&c, 1);
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = 0x174, .e.data = 0x5678};
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_MSRS, &m), 1);
    expect_l1_exit(&c, SVM_EXIT_MSR, 0, nsvm_a);
    run_to_port(&c, 0x80);
    ck_assert_uint_eq(*((uint8_t *)c.run + c.run->io.data_offset), 0x78);
    guest_close(&c);
}
END_TEST

/* The whole L2 MSR matrix on SVM, for reads and writes of an MSR KVM passes through to
 * L1 (SYSENTER_CS: svm.c direct_access_msrs) and one it intercepts (HWCR), under every
 * combination of L1's MSRPM bit, an L0 filter denial and user-space deflection of filtered
 * accesses. Expected, from 6.12:
 *  - L1's bit set: #VMEXIT(MSR) to L1, EXITINFO1 = write (nested_svm_exit_handled_msr);
 *  - else L0 decides as for L1: the merged vmcb02 MSRPM (nested_svm_merge_msrpm) is L0's
 *    or L1's intercept, and a filter denial keeps L0's intercept (set_msr_interception_bitmap:
 *    !kvm_msr_allowed -> intercept); it goes to user space with KVM_MSR_EXIT_REASON_FILTER
 *    when deflection asks for it (kvm_msr_user_space), else it is #GP in L2, here an
 *    exception exit to L1 (#GP intercepted, SVM_EXIT_EXCP_BASE + 13);
 *  - else the access completes in L2 with L0's value (SYSENTER_CS as L1 left it; HWCR's
 *    McStatusWrEn is the one bit a guest may set, svm.c svm_set_msr MSR_K7_HWCR). */
START_TEST(l2_msr_matrix)
{
    static const uint32_t msrs[] = {0x174, 0xc0010015};
    static const uint32_t wval[] = {0x55, 1u << 18};
    static const uint8_t rval[] = {0x78, 0x00};
    unsigned cases = 0;
    for (unsigned mi = 0; mi < 2; mi++)
        for (int write = 0; write < 2; write++)
            for (int l1_bit = 0; l1_bit < 2; l1_bit++)
                for (int deny = 0; deny < 2; deny++)
                    for (int deflect = 0; deflect < 2; deflect++) {
        uint32_t msr = msrs[mi];
        struct nctx c;
        guest_open(&c, 1);
        memset(c.mem + MSRPM_GPA, 0, 0x2000);
        if (l1_bit) { /* APM 15.11: ranges at 0, 0x800 (0xc0000000), 0x1000 (0xc0010000) */
            unsigned base = msr >= 0xc0010000u ? 0x1000 : msr >= 0xc0000000u ? 0x800 : 0;
            unsigned bit = (msr & 0x1fff) * 2 + (write ? 1 : 0);
            c.mem[MSRPM_GPA + base + bit / 8] |= 1u << (bit % 8);
        }
        vmcb_put(&c, 0x008, 1u << 13, 4); /* intercept #GP */
        vmcb_put(&c, 0x578, gpa_of(write ? nsvm_mw : nsvm_mr), 8);
        struct {
            struct kvm_msrs h;
            struct kvm_msr_entry e;
        } m = {.h.nmsrs = 1, .e.index = 0x174, .e.data = 0x5678};
        ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_MSRS, &m), 1);
        struct kvm_regs regs;
        ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_REGS, &regs), 0);
        regs.r12 = msr;
        regs.r13 = wval[mi];
        ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_REGS, &regs), 0);
        if (deflect)
            abi_test_deflect_filtered(c.p, c.vm);
        if (deny)
            abi_test_deny_msr(c.p, c.vm, msr);
        const uint8_t *at = write ? nsvm_mw_i : nsvm_mr_i;
        uint8_t want = write ? (uint8_t)wval[mi] : rval[mi];
        if (l1_bit) {
            expect_l1_exit(&c, SVM_EXIT_MSR, write, at);
        } else if (deny && !deflect) {
            run_to_port(&c, 0x10);
            ck_assert_uint_eq((uint32_t)vmcb64(&c, 0x070), 0x40 + 13); /* SVM_EXIT_EXCP_BASE + #GP */
            ck_assert_uint_eq(vmcb64(&c, 0x078), 0);                   /* error code */
            ck_assert_uint_eq(vmcb64(&c, 0x578), gpa_of(at));
        } else {
            if (deny) {
                ck_assert_int_eq(io(&c, c.vcpu, KVM_RUN, 0), 0);
                ck_assert_uint_eq(c.run->exit_reason, write ? KVM_EXIT_X86_WRMSR : KVM_EXIT_X86_RDMSR);
                ck_assert_uint_eq(c.run->msr.index, msr);
                ck_assert_uint_eq(c.run->msr.reason, KVM_MSR_EXIT_REASON_FILTER);
                if (write)
                    ck_assert_uint_eq(c.run->msr.data, wval[mi]);
                c.run->msr.error = 0;
                c.run->msr.data = 0x77;
                want = write ? (uint8_t)wval[mi] : 0x77;
            }
            run_to_port(&c, 0x80);
            ck_assert_msg(*((uint8_t *)c.run + c.run->io.data_offset) == want,
                          "msr %#x write %d l1 %d deny %d deflect %d: %#x", msr, write, l1_bit,
                          deny, deflect, *((uint8_t *)c.run + c.run->io.data_offset));
            if (write && !deny) { /* the write landed */
                m.e = (struct kvm_msr_entry){.index = msr};
                ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_MSRS, &m), 1);
                ck_assert_uint_eq(m.e.data, wval[mi]);
            }
        }
        guest_close(&c);
        cases++;
                    }
    ck_assert_uint_eq(cases, 32);
}
END_TEST

/* nested_svm_vmrun: a VMCB failing nested_vmcb_check_controls (ASID 0) is VMEXIT_INVALID,
 * exit_code = exit_code_hi = -1, and L1 continues after the VMRUN. */
START_TEST(vmrun_with_asid_zero_is_vmexit_invalid)
{
    struct nctx c;
    guest_open(&c, 0);
    run_to_port(&c, 0x10);
    ck_assert_uint_eq(vmcb64(&c, 0x070), ~0ull); /* exit_code and exit_code_hi */
    struct kvm_regs regs;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_REGS, &regs), 0);
    ck_assert_uint_lt(regs.rip, gpa_of(nsvm_l2)); /* still L1 */
    vmcb_put(&c, 0x058, 1, 4);                    /* a valid ASID: the next VMRUN enters */
    expect_l1_exit(&c, SVM_EXIT_MSR, 0, nsvm_a);
    guest_close(&c);
}
END_TEST

/* KVM_GET/SET_NESTED_STATE, SVM format (svm_get_nested_state / svm_set_nested_state and
 * x86.c's size rules): 128 bytes outside guest mode, + the 4 KiB VMCB image inside it;
 * a short buffer gets E2BIG and the size; the state moves L2 to a fresh VM. */
START_TEST(nested_state_moves_l2_to_a_new_vm)
{
    struct nctx c;
    guest_open(&c, 1);
    ck_assert_int_eq(io(&c, c.kvm, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_NESTED_STATE),
                     128 + 4096);
    struct kvm_nested_state *st = calloc(1, 128 + 4096);
    st->size = 128 + 4096;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_NESTED_STATE, st), 0);
    ck_assert_uint_eq(st->format, KVM_STATE_NESTED_FORMAT_SVM);
    ck_assert_uint_eq(st->flags, KVM_STATE_NESTED_GIF_SET); /* L1, before any VMRUN */
    ck_assert_uint_eq(st->size, 128);
    expect_l1_exit(&c, SVM_EXIT_MSR, 0, nsvm_a);
    /* resume L2, which stops in L2 at the user-space I/O exit on port 0x80 */
    run_to_port(&c, 0x80);
    st->size = 128;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_NESTED_STATE, st), -1);
    ck_assert_int_eq(errno, E2BIG);
    ck_assert_uint_eq(st->size, 128 + 4096);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_NESTED_STATE, st), 0);
    ck_assert_uint_eq(st->flags, KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_GIF_SET);
    ck_assert_uint_eq(st->hdr.svm.vmcb_pa, VMCB_GPA);
    uint64_t asid;
    memcpy(&asid, st->data.svm[0].vmcb12 + 0x58, 4);
    ck_assert_uint_eq((uint32_t)asid, 1);
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_REGS, &regs), 0);
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_SREGS, &sregs), 0);

    /* a fresh VM over the same memory, loaded as the selftests' vcpu_load_state does */
    struct nctx d = c;
    d.vm = (int)io(&d, d.kvm, KVM_CREATE_VM, 0);
    ck_assert_int_ge(d.vm, 0);
    struct kvm_userspace_memory_region r = {.slot = 0, .memory_size = MEM_SIZE,
                                            .userspace_addr = (uintptr_t)c.mem};
    ck_assert_int_eq(io(&d, d.vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
    d.vcpu = (int)io(&d, d.vm, KVM_CREATE_VCPU, 0);
    ck_assert_int_ge(d.vcpu, 0);
    struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[64];
    } cp = {.h.nent = 64};
    ck_assert_int_eq(io(&d, d.kvm, KVM_GET_SUPPORTED_CPUID, &cp), 0);
    ck_assert_int_eq(io(&d, d.vcpu, KVM_SET_CPUID2, &cp), 0);
    long sz = io(&d, d.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    d.run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, d.vcpu, 0);
    ck_assert_ptr_ne(d.run, MAP_FAILED);
    ck_assert_int_eq(io(&d, d.vcpu, KVM_SET_SREGS, &sregs), 0);
    ck_assert_int_eq(io(&d, d.vcpu, KVM_SET_REGS, &regs), 0);
    /* checks: a bad format, then a VMCB image failing VMRUN's control checks */
    st->format = KVM_STATE_NESTED_FORMAT_VMX;
    ck_assert_int_eq(io(&d, d.vcpu, KVM_SET_NESTED_STATE, st), -1);
    ck_assert_int_eq(errno, EINVAL);
    st->format = KVM_STATE_NESTED_FORMAT_SVM;
    memset(st->data.svm[0].vmcb12 + 0x58, 0, 4); /* ASID 0 */
    ck_assert_int_eq(io(&d, d.vcpu, KVM_SET_NESTED_STATE, st), -1);
    ck_assert_int_eq(errno, EINVAL);
    st->data.svm[0].vmcb12[0x58] = 1;
    ck_assert_int_eq(io(&d, d.vcpu, KVM_SET_NESTED_STATE, st), 0);
    /* the restored L2 goes on: OUT 0x81 is a #VMEXIT to the restored L1 */
    expect_l1_exit(&d, SVM_EXIT_IOIO, (0x81u << 16) | 0x10, nsvm_d);
    munmap(d.run, (size_t)sz);
    free(st);
    guest_close(&c);
}
END_TEST

/* Hyper-V's enlightenments for an L1 on SVM (svm/nested.c, svm/hyperv.h, hyperv.c; the
 * VMCB's hv_vmcb_enlightenments at 0x3e0), once the Hyper-V hypercall interface is on:
 *  - enlightened MSR bitmap: with its clean bit (31) set, VMRUN keeps the MSRPM merged
 *    before (nested_svm_vmrun_msrpm), so for an MSR L0 passes through (GS_BASE) a bit L1
 *    cleared still intercepts until the clean bit is dropped; an MSR L0 intercepts (HWCR)
 *    is looked up in L1's bitmap at the access (nested_svm_exit_handled_msr);
 *  - direct TLB flush: with nested_flush_hypercall and the VP assist page's directhypercall,
 *    an L2 TLB-flush hypercall is served by L0 (nested_svm_exit_special), without an exit
 *    to L1; a nonzero lock count in the partition assist page then makes the synthetic
 *    #VMEXIT HV_SVM_EXITCODE_ENL / TRAP_AFTER_FLUSH after it (kvm_hv_hypercall_complete);
 *    without directhypercall the hypercall is L1's VMMCALL. */
#define HV_VP_ASSIST 0x31000u
#define HV_PARTITION_ASSIST 0x32000u
START_TEST(l2_hyperv_enlightenments)
{
    struct nctx c;
    guest_open(&c, 1);
    struct abi_test_cpuid cp = {.h.nent = 64};
    ck_assert_int_eq(io(&c, c.kvm, KVM_GET_SUPPORTED_CPUID, &cp), 0);
    abi_test_set_hv_cpuid(c.p, c.kvm, c.vcpu, &cp);
    const struct kvm_cpuid_entry2 *nf = abi_cpuid_find(cp.e, cp.h.nent, 0x4000000a, 0);
    ck_assert_ptr_nonnull(nf);
    ck_assert_uint_eq(nf->eax & ((1u << 17) | (1u << 19)), (1u << 17) | (1u << 19));
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e[3];
    } m = {.h.nmsrs = 3,
           .e = {{.index = 0x40000000, .data = 0x8100ull << 48},  /* GUEST_OS_ID */
                 {.index = 0x40000001, .data = 0x30000 | 1},     /* HYPERCALL */
                 {.index = 0x40000073, .data = HV_VP_ASSIST | 1}}}; /* VP_ASSIST_PAGE */
    ck_assert_int_eq(io(&c, c.vcpu, KVM_SET_MSRS, &m), 3);
    memset(c.mem + MSRPM_GPA, 0, 0x2000);
    const unsigned gs_byte = MSRPM_GPA + 0x800 + 0x101 * 2 / 8, gs_bit = 1u << ((0x101 * 2) % 8);
    const unsigned hwcr_byte = MSRPM_GPA + 0x1000 + 0x15 * 2 / 8, hwcr_bit = 1u << ((0x15 * 2) % 8);
    c.mem[gs_byte] |= gs_bit;
    vmcb_put(&c, 0x3e0, 1u << 1, 4); /* hv_enlightenments_control.msr_bitmap */
    vmcb_put(&c, 0x578, gpa_of(nsvm_hv), 8);
    expect_l1_exit(&c, SVM_EXIT_MSR, 0, nsvm_hv_a);
    /* L1 clears GS_BASE's bit but says "unchanged": the merged bitmap still intercepts */
    c.mem[gs_byte] &= (uint8_t)~gs_bit;
    vmcb_put(&c, 0x0c0, 1u << 31, 4);
    expect_l1_exit(&c, SVM_EXIT_MSR, 0, nsvm_hv_b);
    /* ... and once it drops the clean bit, VMRUN merges again: no exit */
    vmcb_put(&c, 0x0c0, 0, 4);
    expect_l1_exit(&c, SVM_EXIT_VMMCALL, 0, nsvm_hv_c2);
    /* an L0-intercepted MSR's bit counts at once, whatever the clean bit says */
    c.mem[hwcr_byte] |= hwcr_bit;
    vmcb_put(&c, 0x0c0, 1u << 31, 4);
    expect_l1_exit(&c, SVM_EXIT_MSR, 0, nsvm_hv_d);
    /* direct TLB flush: L0 serves the hypercall (status 0 in RAX), L1 sees nothing */
    vmcb_put(&c, 0x3e0, (1u << 1) | 1u, 4); /* + nested_flush_hypercall */
    vmcb_put(&c, 0x3f0, HV_PARTITION_ASSIST, 8);
    memset(c.mem + HV_PARTITION_ASSIST, 0, 4);
    uint32_t direct = 1;
    memcpy(c.mem + HV_VP_ASSIST + 32, &direct, 4); /* nested_control.features.directhypercall */
    run_to_port(&c, 0x80);
    ck_assert_uint_eq(*((uint8_t *)c.run + c.run->io.data_offset), 0);
    struct kvm_regs regs;
    ck_assert_int_eq(io(&c, c.vcpu, KVM_GET_REGS, &regs), 0);
    ck_assert_uint_eq(regs.rip, gpa_of(nsvm_hv_f)); /* still in L2, after its OUT */
    /* a nonzero lock count: the synthetic #VMEXIT after the flush, RIP past the VMMCALL */
    uint32_t one = 1;
    memcpy(c.mem + HV_PARTITION_ASSIST, &one, 4);
    run_to_port(&c, 0x10);
    ck_assert_uint_eq((uint32_t)vmcb64(&c, 0x070), 0xf0000000u); /* HV_SVM_EXITCODE_ENL */
    ck_assert_uint_eq(vmcb64(&c, 0x078), 1);                      /* TRAP_AFTER_FLUSH */
    ck_assert_uint_eq(vmcb64(&c, 0x578), gpa_of(nsvm_hv_f_end));
    ck_assert_uint_eq(vmcb64(&c, 0x5f8) & 0xffff, 0);            /* the status, in L2's RAX */
    /* without directhypercall the flush hypercall is L1's VMMCALL */
    direct = 0;
    memcpy(c.mem + HV_VP_ASSIST + 32, &direct, 4);
    run_to_port(&c, 0x80);
    expect_l1_exit(&c, SVM_EXIT_VMMCALL, 0, nsvm_hv_g);
    guest_close(&c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("abi_nested_svm");
    TCase *t = tcase_create("l2");
    tcase_add_test(t, l2_msr_and_io_follow_l1_then_l0);
    tcase_add_test(t, l2_msr_passed_through_is_l0s);
    tcase_add_test(t, vmrun_with_asid_zero_is_vmexit_invalid);
    tcase_add_test(t, nested_state_moves_l2_to_a_new_vm);
    tcase_add_test(t, l2_msr_matrix);
    tcase_add_test(t, l2_hyperv_enlightenments);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
