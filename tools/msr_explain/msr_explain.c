/* msr-explain: prints, for teaching, the path one guest MSR access takes through softkvm's
 * model of KVM: CPL check, hardware bitmap (byte/bit in the VMX bitmap or SVM MSRPM), MSR
 * filter (which range decided), in-kernel handler (table row, CPUID gate, rules) and the
 * outcome (done, #GP, or user-space exit with its reason). The access is really performed on
 * a fresh vCPU (empty guest CPUID, KVM_CAP_X86_USER_SPACE_MSR mask INVAL|UNKNOWN|FILTER). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msr/bitmap.h"
#include "msr/internal.h"
#include "msr/msr.h"
#include "msr_explain.h"

static void usage(FILE *o)
{
    fprintf(o,
        "usage: msr-explain --vendor intel|amd [--filter FILE] [--value V] [--full-cpuid]\n"
        "                   [--l2 set|clear|off] [--cpl N] [--implicit INSN]\n"
        "                   [--enforce-pv] [--pv-bits MASK] [--prior MSR=V]... MSR [read|write]\n"
        "\n"
        "Shows the path a guest RDMSR/WRMSR of MSR (number, e.g. 0xc0000100) takes in softkvm:\n"
        "the VMX 4 KiB MSR bitmap or SVM 8 KiB MSRPM bit (byte offset and bit), the\n"
        "KVM_X86_SET_MSR_FILTER range that decided, the in-kernel handler (or 'not emulated')\n"
        "and the outcome. --value is the value written (default 0). The access is performed on\n"
        "a fresh vCPU whose guest CPUID is empty, or with --full-cpuid exposes every feature\n"
        "msr/ gates on (vendor string of the flavour, KVM PV leaf with all KVM_FEATURE_* bits).\n"
        "--l2 makes it an access from a nested L2 guest: L1's bitmap bit for it is set or clear\n"
        "(SVM MSRPM / VMX MSR bitmap), or L1 does not use one (off); the merged bit, whether\n"
        "L1 gets the exit, and otherwise the L0 path are shown.\n"
        "--cpl N executes the instruction at CPL N (N > 0: #GP(0) before the bitmap/filter).\n"
        "--implicit INSN asks about the MSR use the CPU makes itself for INSN (syscall,\n"
        "sysret, sysenter, sysexit, swapgs, rdtscp, rdpid): never filtered or deflected.\n"
        "--enforce-pv enables KVM_CAP_ENFORCE_PV_FEATURE_CPUID; --pv-bits sets CPUID\n"
        "0x40000001.EAX (KVM PV leaf added if absent). --prior MSR=V performs guest WRMSRs\n"
        "first (e.g. --prior 0x48=1 makes SPEC_CTRL pass-through), each result printed.\n"
        "\n"
        "FILTER file format (one directive per line, '#' starts a comment):\n"
        "  default allow|deny                  KVM_MSR_FILTER_DEFAULT_ALLOW/DENY (default allow)\n"
        "  range read|write|rw BASE NMSRS BITS up to 16 ranges, first match decides\n"
        "BITS lists the ALLOWED offsets of the range: all | none | comma list like 0,2,8-15.\n"
        "Example:\n"
        "  default allow\n"
        "  range read 0xc0000100 3 none        # deny reads of FS/GS/KERNEL_GS base\n");
}

static int copy_local(void *dst, const void *src, size_t n)
{
    if (!src)
        return -EFAULT;
    memcpy(dst, src, n);
    return 0;
}

static const char *reason_name(uint32_t r)
{
    switch (r) {
    case KVM_MSR_EXIT_REASON_INVAL: return "KVM_MSR_EXIT_REASON_INVAL";
    case KVM_MSR_EXIT_REASON_UNKNOWN: return "KVM_MSR_EXIT_REASON_UNKNOWN";
    case KVM_MSR_EXIT_REASON_FILTER: return "KVM_MSR_EXIT_REASON_FILTER";
    default: return "?";
    }
}

static void explain_bitmap(struct msr_vcpu *v, uint32_t idx, bool write)
{
    struct msr_bitpos p;
    bool amd = v->vm->vendor == MSR_VENDOR_AMD;
    bool in = amd ? msr_svm_bitpos(idx, write, &p) : msr_vmx_bitpos(idx, write, &p);
    printf("2. hardware bitmap (%s):\n", amd ? "SVM MSRPM, 8 KiB, 2 bits per MSR" : "VMX MSR bitmap, 4 KiB");
    if (!in) {
        printf("   MSR outside the bitmap ranges -> always intercepted\n");
        return;
    }
    uint8_t byte = amd ? v->svm_msrpm[p.byte] : v->vmx_bitmap[p.byte];
    printf("   byte 0x%04x bit %u = %u -> %s\n", p.byte, p.bit, (byte >> p.bit) & 1,
           ((byte >> p.bit) & 1) ? "intercepted (KVM handles it)" : "PASS-THROUGH (no KVM code runs)");
    unsigned n;
    const struct msr_passthrough *pt = msr_passthrough_list(&n);
    for (unsigned i = 0; i < n; i++) {
        if (pt[i].index != idx)
            continue;
        enum msr_pt_policy pol = amd ? (write ? pt[i].svm_w : pt[i].svm_r) : (write ? pt[i].vmx_w : pt[i].vmx_r);
        printf("   KVM pass-through list: %s %s: %s\n", pt[i].name, write ? "write" : "read",
               msr_pt_policy_name(pol));
        return;
    }
    printf("   not in KVM's pass-through list for this flavour\n");
}

static void explain_filter(const struct msr_filter *f, uint32_t idx, bool write)
{
    uint32_t kind = write ? KVM_MSR_FILTER_WRITE : KVM_MSR_FILTER_READ;
    printf("3. MSR filter:\n");
    if (idx >= MSR_X2APIC_FIRST && idx <= MSR_X2APIC_LAST) {
        printf("   x2APIC MSR (0x800-0x8ff): filters never apply -> allowed\n");
        return;
    }
    if (!f) {
        printf("   no filter installed -> allowed\n");
        return;
    }
    for (unsigned i = 0; i < f->count; i++) {
        const struct msr_filter_range *r = &f->ranges[i];
        if (idx >= r->base && idx < r->base + r->nmsrs && (r->flags & kind)) {
            uint32_t b = idx - r->base;
            bool ok = (r->bitmap[b / 64] >> (b % 64)) & 1;
            printf("   range #%u [0x%x, 0x%x) flags %s%s decides: bit %u = %d -> %s\n", i, r->base,
                   r->base + r->nmsrs, (r->flags & 1) ? "R" : "", (r->flags & 2) ? "W" : "", b, ok,
                   ok ? "allowed" : "DENIED");
            return;
        }
    }
    printf("   no range matches -> default %s\n", f->default_allow ? "allow" : "DENY");
}

static void explain_kernel(struct msr_vcpu *v, uint32_t idx)
{
    const struct msr_entry *e = msr_table_lookup(v->vm->vendor, idx);
    printf("4. in-kernel emulation:\n");
    if (!e) {
        printf("   not emulated by KVM for this flavour -> failure reason UNKNOWN\n");
        return;
    }
    printf("   %s: %s\n", e->name, e->rules);
    printf("   gate: %s; %s%s\n", msr_gate_name(e->gate), e->get ? "readable" : "write-only",
           e->set ? "" : ", not writable");
    if (e->flags & MSR_F_SAVE)
        printf("   listed in KVM_GET_MSR_INDEX_LIST\n");
    if (e->flags & MSR_F_FEATURE)
        printf("   feature MSR (KVM_GET_MSR_FEATURE_INDEX_LIST, readable on the system fd)\n");
}

/* A guest CPUID exposing every feature an MSR gate looks at (full), or only the KVM PV
 * leaf (not full), whose 0x40000001.EAX is `pv_bits`. */
static void full_cpuid(struct msr_vcpu *v, bool amd, bool full, uint32_t pv_bits)
{
    struct kvm_cpuid_entry2 e[] = {
        {.function = 0, .eax = 0xd, .ebx = amd ? 0x68747541 : 0x756e6547,
         .ecx = amd ? 0x444d4163 : 0x6c65746e, .edx = amd ? 0x69746e65 : 0x49656e69},
        {.function = 1, .ecx = (1u << 0) | (1u << 15) | (1u << 21) | (1u << 24) | (amd ? 0 : 1u << 5),
         .edx = (1u << 7) | (1u << 12) | (1u << 14) | (1u << 16)},
        {.function = 7, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 1u << 1,
         .ecx = (1u << 5) | (1u << 22),
         .edx = (1u << 26) | (1u << 27) | (1u << 28) | (1u << 29) | (1u << 31)},
        {.function = 0xd, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = (1u << 3) | (1u << 4)},
        {.function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b, .ecx = 0x564b4d56, .edx = 0x4d},
        {.function = 0x40000001, .eax = pv_bits},
        {.function = 0x80000001, .ecx = (amd ? 1u << 2 : 0) | (1u << 9),
         .edx = (1u << 11) | (1u << 20) | (1u << 27) | (1u << 29)},
        {.function = 0x80000008, .eax = 48,
         .ebx = (1u << 12) | (1u << 14) | (1u << 15) | (1u << 24) | (1u << 25)},
    };
    if (full)
        msr_vcpu_set_cpuid(v, e, sizeof(e) / sizeof(e[0]));
    else
        msr_vcpu_set_cpuid(v, e + 4, 2); /* the two KVM leaves */
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"vendor", required_argument, 0, 'v'}, {"filter", required_argument, 0, 'f'},
        {"value", required_argument, 0, 'x'}, {"full-cpuid", no_argument, 0, 'c'},
        {"l2", required_argument, 0, 'n'}, {"help", no_argument, 0, 'h'},
        {"cpl", required_argument, 0, 'p'}, {"implicit", required_argument, 0, 'i'},
        {"enforce-pv", no_argument, 0, 'e'}, {"pv-bits", required_argument, 0, 'b'},
        {"prior", required_argument, 0, 'w'}, {0, 0, 0, 0}};
    unsigned cpl = 0, nprior = 0;
    const char *implicit_insn = NULL;
    bool enforce_pv = false, have_pv_bits = false;
    uint32_t pv_bits = 0;
    struct { uint32_t idx; uint64_t val; } prior[8];
    enum explain_l1 l1 = EXPLAIN_L1_NONE;
    bool want_full_cpuid = false;
    const char *vendor = NULL, *filter_path = NULL;
    uint64_t value = 0;
    int c;
    while ((c = getopt_long(argc, argv, "v:f:x:chn:p:i:eb:w:", opts, NULL)) != -1) {
        switch (c) {
        case 'p': cpl = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'i': implicit_insn = optarg; break;
        case 'e': enforce_pv = true; break;
        case 'b': pv_bits = (uint32_t)strtoul(optarg, NULL, 0); have_pv_bits = true; break;
        case 'w': {
            char *eq = strchr(optarg, '=');
            if (!eq || nprior >= 8) {
                usage(stderr);
                return 2;
            }
            prior[nprior].idx = (uint32_t)strtoul(optarg, NULL, 0);
            prior[nprior++].val = strtoull(eq + 1, NULL, 0);
            break;
        }
        case 'n':
            l1 = !strcmp(optarg, "set") ? EXPLAIN_L1_SET : !strcmp(optarg, "clear") ? EXPLAIN_L1_CLEAR
               : !strcmp(optarg, "off") ? EXPLAIN_L1_OFF : EXPLAIN_L1_NONE;
            if (l1 == EXPLAIN_L1_NONE) {
                usage(stderr);
                return 2;
            }
            break;
        case 'c': want_full_cpuid = true; break;
        case 'v': vendor = optarg; break;
        case 'f': filter_path = optarg; break;
        case 'x': value = strtoull(optarg, NULL, 0); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!vendor || (strcmp(vendor, "intel") && strcmp(vendor, "amd")) || optind >= argc ||
        argc - optind > 2) {
        usage(stderr);
        return 2;
    }
    char *end;
    unsigned long long idx_ull = strtoull(argv[optind], &end, 0);
    if (*end || idx_ull > 0xffffffffull) {
        fprintf(stderr, "msr-explain: bad MSR number '%s'\n", argv[optind]);
        return 2;
    }
    uint32_t idx = (uint32_t)idx_ull;
    bool write = false;
    if (argc - optind == 2) {
        if (!strcmp(argv[optind + 1], "write"))
            write = true;
        else if (strcmp(argv[optind + 1], "read")) {
            usage(stderr);
            return 2;
        }
    }

    struct msr_vm vm;
    struct cpu cpu;
    memset(&cpu, 0, sizeof(cpu));
    cpu.apic_base = 0xfee00900;
    enum msr_vendor ven = strcmp(vendor, "amd") ? MSR_VENDOR_INTEL : MSR_VENDOR_AMD;
    if (msr_vm_init(&vm, ven)) {
        fprintf(stderr, "msr-explain: out of memory\n");
        return 1;
    }
    static struct explain_filter ef;
    if (filter_path) {
        char err[600];
        if (explain_load_filter(filter_path, &ef, err, sizeof(err))) {
            fprintf(stderr, "msr-explain: %s\n", err);
            return 2;
        }
        /* installed after the --prior writes: a filter set while the vCPU has state */
        if (!nprior) {
            int r = msr_vm_set_filter(&vm, &ef.f, copy_local);
            if (r) {
                fprintf(stderr, "msr-explain: KVM_X86_SET_MSR_FILTER would fail: %s\n", strerror(-r));
                return 1;
            }
        }
    }
    msr_vm_enable_user_space_msr(&vm, KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_UNKNOWN |
                                          KVM_MSR_EXIT_REASON_FILTER);
    struct msr_vcpu *v = msr_vcpu_create(&vm, &cpu);
    if (!v)
        return 1;
    if (want_full_cpuid || have_pv_bits)
        full_cpuid(v, ven == MSR_VENDOR_AMD, want_full_cpuid, have_pv_bits ? pv_bits : 0x7fff);
    if (enforce_pv)
        msr_vcpu_enable_pv_enforcement(v, 1);
    if (cpl > 3) {
        usage(stderr);
        return 2;
    }

    if (implicit_insn) {
        const char *nm = msr_name(idx);
        printf("MSR 0x%08x (%s), used by %s itself, %s flavour\n", idx, nm ? nm : "unknown",
               implicit_insn, ven == MSR_VENDOR_AMD ? "amd/svm" : "intel/vmx");
        int r = explain_implicit(stdout, idx, implicit_insn);
        if (r)
            fprintf(stderr, "msr-explain: %s %s\n", implicit_insn,
                    r == -1 ? "does not use this MSR" : "is not an instruction msr-explain knows");
        msr_vcpu_destroy(v);
        msr_vm_destroy(&vm);
        return r ? 2 : 0;
    }
    const char *name = msr_name(idx);
    printf("MSR 0x%08x (%s), guest %s%s, %s flavour\n", idx, name ? name : "unknown",
           write ? "WRMSR" : "RDMSR", write ? "" : "", ven == MSR_VENDOR_AMD ? "amd/svm" : "intel/vmx");
    if (write)
        printf("   value 0x%llx\n", (unsigned long long)value);
    for (unsigned i = 0; i < nprior; i++) {
        uint32_t why = 0;
        enum emu_msr_result pr;
        if (!msr_bitmap_intercepted(v, prior[i].idx, true))
            pr = msr_passthrough_write(v, &cpu, prior[i].idx, prior[i].val);
        else
            pr = msr_emu_ops.wrmsr(v, &cpu, prior[i].idx, prior[i].val, &why);
        printf("0. prior guest WRMSR 0x%x = 0x%llx: %s%s\n", prior[i].idx,
               (unsigned long long)prior[i].val,
               pr == EMU_MSR_OK ? "done" : pr == EMU_MSR_GP ? "#GP(0)" : "user-space exit, ",
               pr == EMU_MSR_EXIT ? reason_name(why) : "");
    }
    if (filter_path && nprior) {
        int r = msr_vm_set_filter(&vm, &ef.f, copy_local);
        if (r) {
            fprintf(stderr, "msr-explain: KVM_X86_SET_MSR_FILTER would fail: %s\n", strerror(-r));
            return 1;
        }
        printf("0. then KVM_X86_SET_MSR_FILTER %s: the vCPU recomputes its bitmaps\n", filter_path);
        msr_vcpu_sync(v); /* KVM_REQ_MSR_FILTER_CHANGED */
    }
    if (explain_cpl(stdout, cpl)) {
        printf("5. outcome: #GP(0) injected (CPL %u)\n", cpl);
        msr_vcpu_destroy(v);
        msr_vm_destroy(&vm);
        return 0;
    }
    if (l1 != EXPLAIN_L1_NONE && explain_nested(v, idx, write, l1)) {
        msr_vcpu_destroy(v);
        msr_vm_destroy(&vm);
        return 0;
    }
    explain_bitmap(v, idx, write);
    explain_pt_filter(stdout, v, idx, write);
    explain_filter(v->filter, idx, write);
    if (filter_path)
        explain_filter_change(stdout, v, idx, write);
    explain_kernel(v, idx);
    explain_pv(stdout, v, idx);
    const char *init = explain_init_rule(ven, idx);
    if (init)
        printf("   INIT: %s\n", init);

    /* perform it */
    uint32_t reason = 0;
    uint64_t val = value;
    enum emu_msr_result r;
    if (!msr_bitmap_intercepted(v, idx, write))
        r = write ? msr_passthrough_write(v, &cpu, idx, value) : msr_passthrough_read(v, &cpu, idx, &val);
    else
        r = write ? msr_emu_ops.wrmsr(v, &cpu, idx, value, &reason)
                  : msr_emu_ops.rdmsr(v, &cpu, idx, &val, &reason);
    printf("5. outcome on a fresh vCPU (%s guest CPUID):\n", want_full_cpuid ? "full" : "empty");
    switch (r) {
    case EMU_MSR_OK:
        if (write)
            printf("   done\n");
        else
            printf("   done, EDX:EAX = 0x%llx\n", (unsigned long long)val);
        break;
    case EMU_MSR_GP:
        printf("   #GP(0) injected\n");
        break;
    case EMU_MSR_EXIT:
        printf("   KVM_RUN returns KVM_EXIT_X86_%s with %s if that bit is in the\n"
               "   KVM_CAP_X86_USER_SPACE_MSR mask; otherwise the guest gets #GP(0)\n",
               write ? "WRMSR" : "RDMSR", reason_name(reason));
        break;
    }
    msr_vcpu_destroy(v);
    msr_vm_destroy(&vm);
    return 0;
}
