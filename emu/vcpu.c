/* emu/: vCPU lifecycle, reset state (SDM vol.3 9.1.1, as KVM's vCPU creation/INIT),
 * state accessors for abi/ and the CPUID table. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emu/internal.h"


struct emu_vcpu *emu_vcpu_create(struct emu_physmem *pm)
{
    struct emu_vcpu *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    /* the block cache is allocated on the first emu_run: VMMs and
     * kvm_create_max_vcpus create thousands of vCPUs that never run */
    v->pm = v->pm_as[0] = pm;
    emu_reset(v);
    return v;
}

void emu_vcpu_destroy(struct emu_vcpu *v)
{
    if (!v)
        return;
    emu_block_cache_free(v);
    free(v->cpuid);
    free(v);
}

struct cpu *emu_cpu(struct emu_vcpu *v)
{
    return &v->cpu;
}

void emu_set_hv_ops(struct emu_vcpu *v, const struct emu_hv_ops *ops)
{
    v->hv_ops = *ops;
}

void emu_set_msr_ops(struct emu_vcpu *v, const struct emu_msr_ops *ops)
{
    v->has_msr_ops = ops != NULL;
    if (ops)
        v->msr_ops = *ops;
}

void emu_set_irq_ops(struct emu_vcpu *v, const struct emu_irq_ops *ops)
{
    v->has_irq_ops = ops != NULL;
    if (ops)
        v->irq_ops = *ops;
}

void emu_set_kvm_policy(struct emu_vcpu *v, const struct emu_kvm_policy *p)
{
    v->policy = *p;
}

void emu_set_cpuid(struct emu_vcpu *v, const struct emu_cpuid_entry *entries, unsigned n)
{
    struct emu_cpuid_entry *copy = NULL;
    if (n) {
        copy = malloc(sizeof *copy * n);
        if (!copy)
            return;
        memcpy(copy, entries, sizeof *copy * n);
    }
    free(v->cpuid);
    v->cpuid = copy;
    v->ncpuid = n;
    /* the CPU is what CPUID says it is: vendor-specific details follow leaf 0 */
    const struct emu_cpuid_entry *l0 = emu_cpuid_find(v, 0, 0);
    v->cpu_amd = l0 && l0->ebx == 0x68747541u; /* "Auth" of AuthenticAMD */
}


void emu_reset(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    void *owner = c->owner;
    /* the TSC rate is the vCPU's (KVM_SET_TSC_KHZ), not reset state */
    uint64_t l1_ratio = c->l1_tsc_ratio ? c->l1_tsc_ratio : EMU_TSC_ONE;
    uint32_t tsc_khz = c->tsc_khz;
    memset(c, 0, sizeof *c);
    c->owner = owner;
    c->l2_tsc_mult = EMU_TSC_ONE;
    emu_cpu_set_l1_tsc(c, 0, l1_ratio);
    c->tsc_khz = tsc_khz;
    c->rip = 0xfff0;
    c->rflags = EMU_FL_FIXED1;
    c->gpr[EMU_RDX] = 0x600; /* processor signature (family 6) */
    for (int s = 0; s < EMU_NSEGS; s++) {
        c->seg[s].limit = 0xffff;
        c->seg[s].present = 1;
        c->seg[s].s = 1;
        c->seg[s].type = 3; /* read/write, accessed */
    }
    c->seg[EMU_CS].selector = 0xf000;
    c->seg[EMU_CS].base = 0xffff0000;
    c->seg[EMU_CS].type = 0xb;
    c->seg[EMU_TR].s = 0;
    c->seg[EMU_TR].type = 0xb;
    c->seg[EMU_LDTR].s = 0;
    c->seg[EMU_LDTR].type = 2;
    c->gdtr.limit = 0xffff;
    c->idtr.limit = 0xffff;
    c->cr0 = 0x60000010; /* CD NW ET */
    c->dr[6] = 0xffff0ff0;
    c->dr[7] = 0x400;
    emu_debug_update(v);
    c->smbase = 0x30000; /* x86.c kvm_vcpu_reset, RESET only (INIT keeps it, below) */
    c->xcr0 = 1;
    c->pat = 0x0007040600070406ull;
    c->apic_base = 0xfee00000ull | (1u << 11) | (1u << 8);
    c->fpu.fcw = 0x37f;
    c->fpu.mxcsr = 0x1f80;
    c->fpu.mxcsr_mask = 0xffff;
    memset(&v->lf, 0, sizeof v->lf);
    /* RESET and INIT leave guest mode and set GIF (KVM kvm_vcpu_reset -> kvm_leave_nested) */
    memset(&v->nested, 0, sizeof v->nested);
    v->pending = EMU_PEND_NONE;
    v->dbg_pending = 0;
    v->dbg_step_exit = false;
    v->tf_trap_after = false;
    emu_mmio_drop(v);
    v->mmio_nwr = v->mmio_wrpos = 0;
    emu_update_mode(v);
    emu_tlb_flush(v);
    emu_block_cache_flush(v);
    v->pm = v->pm_as[0]; /* RESET leaves SMM (cpu.ev.smm is clear) */
    v->pm_gen = v->pm ? v->pm->generation : 0;
}

/* INIT (SDM vol.3 9.1.1 table 9-1, KVM kvm_vcpu_reset(init_event = true)): the power-on
 * register state, except what INIT leaves alone: x87/SSE/AVX state, XCR0, CR0.CD/NW, the
 * APIC base, PAT, the TSC and the MSR-backed system-call/XSS state. */
void emu_init_signal(struct emu_vcpu *v)
{
    struct cpu old = v->cpu;
    emu_reset(v);
    struct cpu *c = &v->cpu;
    c->cr0 = (c->cr0 & ~0x60000000ull) | (old.cr0 & 0x60000000ull);
    c->xcr0 = old.xcr0;
    c->fpu = old.fpu;
    c->apic_base = old.apic_base;
    c->pat = old.pat;
    emu_cpu_set_l1_tsc(c, emu_cpu_l1_tsc_offset(&old), old.l1_tsc_ratio); /* L1's: INIT leaves L2 */
    c->tsc_aux = old.tsc_aux;
    c->star = old.star, c->lstar = old.lstar, c->cstar = old.cstar, c->sfmask = old.sfmask;
    c->kernel_gs_base = old.kernel_gs_base;
    c->sysenter_cs = old.sysenter_cs, c->sysenter_esp = old.sysenter_esp;
    c->sysenter_eip = old.sysenter_eip;
    c->xss = old.xss;
    c->smbase = old.smbase;
    c->cr8 = old.cr8; /* the LAPIC's TPR, which its own INIT reset then sets */
}

uint64_t emu_get_rflags(struct emu_vcpu *v)
{
    return emu_flags(v);
}

void emu_set_rflags(struct emu_vcpu *v, uint64_t rflags)
{
    emu_flags_set(v, rflags);
    emu_update_mode(v);
}

void emu_state_changed(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    v->lf.op = EMU_LF_NONE; /* abi/ wrote cpu.rflags directly */
    c->rflags |= EMU_FL_FIXED1;
    emu_update_mode(v);
    /* KVM_SET_SREGS with PAE paging reloads the PDPTEs from CR3 */
    if ((c->cr0 & (1ull << 31)) && (c->cr4 & (1ull << 5)) && !v->long_mode) {
        uint8_t *p = emu_gpa_to_host(v->pm, c->cr3 & 0xffffffe0u, 32, false);
        uint64_t pd[4];
        /* an ioctl, not the guest: bad slot memory leaves them as they were, like a
         * failed load_pdptrs() in KVM_SET_SREGS */
        if (p && emu_host_read(pd, p, sizeof pd))
            memcpy(c->pdptrs, pd, sizeof c->pdptrs);
    }
    emu_tlb_flush(v);
    emu_block_cache_flush(v);
}

void emu_queue_exception(struct emu_vcpu *v, uint8_t vector, bool has_error, uint32_t error_code)
{
    struct emu_events *ev = &v->cpu.ev;
    ev->exc_pending = true;
    ev->exc_vector = vector;
    ev->exc_has_error_code = has_error;
    ev->exc_error_code = error_code;
}

bool emu_translate(struct emu_vcpu *v, uint64_t gva, uint64_t *gpa, bool *writeable, bool *user)
{
    bool w = false, u = false;
    /* probe as a supervisor read without touching accessed/dirty bits */
    int saved = v->cpu.cpl;
    v->cpu.cpl = 0;
    uint32_t ec = emu_walk(v, gva, EMU_ACC_READ | EMU_ACC_SYS, false, gpa, &w, &u);
    v->cpu.cpl = saved;
    if (writeable)
        *writeable = w;
    if (user)
        *user = u;
    return ec == 0;
}

/* The host TSC read after the guest's earlier memory accesses are done. Without the LFENCE
 * the host CPU may execute RDTSC ahead of loads the interpreter issued for earlier guest
 * instructions, a window hundreds of host instructions wide rather than a guest
 * instruction's few: tsc_scaling_sync then sees another vCPU's stored TSC exceed the TSC
 * read after loading it (SDM vol.2 RDTSC: LFENCE orders it after prior instructions). */
static inline uint64_t host_tsc_ordered(void)
{
    __builtin_ia32_lfence();
    return __builtin_ia32_rdtsc();
}

uint64_t emu_read_tsc(struct emu_vcpu *v)
{
    /* guest TSC = scaled host TSC + offset, as VMX/SVM hardware computes it (6.12 x86.c
     * kvm_scale_tsc); at ratio 1 it runs at the host's rate, and KVM_VCPU_TSC_OFFSET
     * users compare the guest's RDTSC with their own */
    return emu_scale_tsc(host_tsc_ordered(), v->cpu.tsc_ratio) + v->cpu.tsc_offset;
}

/* kvm_read_l1_tsc: what L1 reads, also while an L2 runs */
uint64_t emu_read_l1_tsc(struct emu_vcpu *v)
{
    const struct cpu *c = &v->cpu;
    return emu_scale_tsc(host_tsc_ordered(), c->l1_tsc_ratio) + emu_cpu_l1_tsc_offset(c);
}

/* Both come from other threads (and signal handlers) while the vCPU runs: relaxed atomic
 * stores, read as such by run_loop (a plain volatile access is a data race for TSan). */
void emu_request_stop(struct emu_vcpu *v)
{
    __atomic_store_n(&v->stop_req, 1, __ATOMIC_RELAXED);
}

void emu_kick(struct emu_vcpu *v)
{
    __atomic_store_n(&v->kick, 1, __ATOMIC_RELAXED);
}

void emu_flush_caches(struct emu_vcpu *v)
{
    /* a new memslot layout (or a remote TLB flush): translations go, and every block is
     * compared with the memory its address maps to now before it runs again (a new code
     * epoch); the translated blocks themselves stay, keyed by guest-physical address */
    emu_tlb_flush(v);
    v->code_epoch++;
}
