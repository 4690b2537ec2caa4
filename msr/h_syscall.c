/* msr/: EFER and the SYSCALL/SYSENTER/segment-base MSRs (KVM: set_efer, __kvm_set_msr,
 * vmx_get/set_msr, svm_get/set_msr). State lives in struct cpu because instructions use it. */
#include "msr/internal.h"
#include "msr/bitmap.h"

#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NX (1ull << 11)
#define EFER_SVME (1ull << 12)
#define EFER_LMSLE (1ull << 13)
#define EFER_FFXSR (1ull << 14)
#define EFER_AUTOIBRS (1ull << 21)
#define CR0_PG (1ull << 31)

/* Bits KVM implements at all (efer_reserved_bits complement): SVM flavour adds SVME, FFXSR
 * and AUTOIBRS (svm_hardware_setup -> kvm_enable_efer_bits), and with nested=1 (softkvm's
 * kvm_amd) also LMSLE, which no CPUID bit gates: 6.12 svm.c svm_hardware_setup 5529-5532
 * kvm_enable_efer_bits(EFER_SVME | EFER_LMSLE); x86.c __kvm_valid_efer (1306-1325) never
 * looks at LMSLE. */
static uint64_t efer_implemented(enum msr_vendor vendor)
{
    uint64_t bits = EFER_SCE | EFER_LME | EFER_LMA | EFER_NX;
    if (vendor == MSR_VENDOR_AMD)
        bits |= EFER_SVME | EFER_LMSLE | EFER_FFXSR | EFER_AUTOIBRS;
    return bits;
}

/* KVM's __kvm_valid_efer: bits whose CPUID feature the guest lacks. */
static bool efer_valid_for_guest(const struct msr_vcpu *v, uint64_t efer)
{
    if ((efer & EFER_AUTOIBRS) && !v->feat.autoibrs) return false;
    if ((efer & EFER_FFXSR) && !v->feat.ffxsr) return false;
    if ((efer & EFER_SVME) && !v->feat.svm) return false;
    if ((efer & (EFER_LME | EFER_LMA)) && !v->feat.lm) return false;
    if ((efer & EFER_NX) && !v->feat.nx) return false;
    return true;
}

int msr_get_efer(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->cpu->efer;
    return MSR_RET_OK;
}

int msr_set_efer(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i;
    if (val & ~efer_implemented(v->vm->vendor))
        return MSR_RET_INVAL;
    if (!host) {
        if (!efer_valid_for_guest(v, val))
            return MSR_RET_INVAL;
        /* toggling LME with paging on is illegal (SDM vol.3 10.8.5) */
        if ((v->cpu->cr0 & CR0_PG) && ((v->cpu->efer ^ val) & EFER_LME))
            return MSR_RET_INVAL;
    }
    /* LMA is owned by the CPU: keep the current value (KVM ignores the written LMA) */
    val = (val & ~EFER_LMA) | (v->cpu->efer & EFER_LMA);
    v->cpu->efer = val;
    return MSR_RET_OK;
}

/* STAR/LSTAR/CSTAR/SFMASK/FS/GS/KERNEL_GS/SYSENTER_*: plain storage in struct cpu. */
static uint64_t *syscall_field(struct cpu *c, uint32_t i)
{
    switch (i) {
    case MSR_STAR: return &c->star;
    case MSR_LSTAR: return &c->lstar;
    case MSR_CSTAR: return &c->cstar;
    case MSR_SYSCALL_MASK: return &c->sfmask;
    case MSR_FS_BASE: return &c->seg[EMU_FS].base;
    case MSR_GS_BASE: return &c->seg[EMU_GS].base;
    case MSR_KERNEL_GS_BASE: return &c->kernel_gs_base;
    case MSR_IA32_SYSENTER_CS: return &c->sysenter_cs;
    case MSR_IA32_SYSENTER_ESP: return &c->sysenter_esp;
    case MSR_IA32_SYSENTER_EIP: return &c->sysenter_eip;
    default: return NULL;
    }
}

/* SVM keeps SYSENTER_ESP/EIP as 32-bit VMCB fields plus a high half tracked only for
 * Intel-compatible guests (6.12 svm.c svm_set_msr 3183-3196, svm_get_msr 2952-2960): for
 * an AMD-compatible guest on the SVM flavour the MSRs hold 32 bits. */
static bool sysenter_32bit(const struct msr_vcpu *v, uint32_t i)
{
    return (i == MSR_IA32_SYSENTER_ESP || i == MSR_IA32_SYSENTER_EIP) &&
           v->vm->vendor == MSR_VENDOR_AMD && !v->feat.intel;
}

int msr_get_syscall(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)host;
    *val = *syscall_field(v->cpu, i);
    if (sysenter_32bit(v, i))
        *val = (uint32_t)*val;
    return MSR_RET_OK;
}

static uint64_t sign_extend(uint64_t x, unsigned bits)
{
    return (uint64_t)((int64_t)(x << (64 - bits)) >> (64 - bits));
}

int msr_set_syscall(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)host;
    switch (i) {
    case MSR_FS_BASE: case MSR_GS_BASE: case MSR_KERNEL_GS_BASE:
    case MSR_LSTAR: case MSR_CSTAR:
        /* __kvm_set_msr: non-canonical -> fail, for host and guest alike */
        if (!msr_is_canonical(v, val))
            return MSR_RET_INVAL;
        break;
    case MSR_IA32_SYSENTER_ESP: case MSR_IA32_SYSENTER_EIP:
        /* KVM canonicalises instead of failing (AMD ignores the top half) */
        val = sign_extend(val, v->vm->la57 ? 57 : 48);
        if (sysenter_32bit(v, i))
            val = (uint32_t)val;
        break;
    case MSR_IA32_SYSENTER_CS:
        val = (uint32_t)val; /* 32-bit VMCS field */
        break;
    default:
        break;
    }
    *syscall_field(v->cpu, i) = val;
    return MSR_RET_OK;
}

int msr_get_tsc_aux(struct msr_vcpu *v, uint32_t i, uint64_t *val, bool host)
{
    (void)i; (void)host;
    *val = v->cpu->tsc_aux;
    return MSR_RET_OK;
}

int msr_set_tsc_aux(struct msr_vcpu *v, uint32_t i, uint64_t val, bool host)
{
    (void)i; (void)host;
    /* Intel-compatible guests: bits 63:32 reserved; others: silently dropped (x86.c) */
    if (v->feat.intel && (val >> 32))
        return MSR_RET_INVAL;
    v->cpu->tsc_aux = (uint32_t)val;
    return MSR_RET_OK;
}
