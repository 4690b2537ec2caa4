/* emu/: guest page-table walk (SDM vol.3 chapter 4): 32-bit, PAE and 4-level paging,
 * 4K/2M/4M/1G pages, NX, WP, SMEP, SMAP, U/S, accessed/dirty updates, #PF error codes. */
#include <string.h>

#include "emu/internal.h"

#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)
#define EFER_NXE (1ull << 11)
#define EFER_LMA (1ull << 10)

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_U (1ull << 2)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_NX (1ull << 63)

static unsigned maxphyaddr(struct emu_vcpu *v)
{
    for (unsigned i = 0; i < v->ncpuid; i++)
        if (v->cpuid[i].function == 0x80000008u && (v->cpuid[i].eax & 0xff)) {
            /* user space may set any byte here (KVM takes it as is); beyond 52 there are
             * no reserved address bits left, and it is used as a shift count */
            unsigned w = v->cpuid[i].eax & 0xff;
            return w > 52 ? 52 : w;
        }
    return 46;
}

/* Reads a paging-structure entry; returns its host pointer (NULL if not in RAM). */
static uint8_t *pte_ptr(struct emu_vcpu *v, uint64_t gpa, unsigned size)
{
    uint8_t *p = emu_gpa_to_host(v->pm, gpa, size, false);
    uint64_t probe;
    /* outside emu_run (KVM_TRANSLATE) a bad host page would be a host crash: a walk
     * through it fails, as KVM's walker does on an unreadable hva */
    if (p && !v->in_run && !emu_host_read(&probe, p, size))
        return NULL;
    return p;
}

/* Is a paging-structure entry (a host pointer from pte_ptr) in a writable slot? KVM
 * leaves A/D bits alone in read-only slots (paging_tmpl.h update_accessed_dirty_bits:
 * "If the slot is read-only, simply do not process the accessed and dirty bits"). */
static bool pte_writable(const struct emu_vcpu *v, const uint8_t *p)
{
    for (unsigned i = 0; i < v->pm->nslots; i++) {
        const struct emu_slot *s = &v->pm->slots[i];
        if (s->size && s->host && p >= s->host && (uint64_t)(p - s->host) < s->size)
            return !s->readonly;
    }
    return false;
}

static uint64_t load_pte(const uint8_t *p, unsigned size)
{
    if (size == 4)
        return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
    return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
}

static void set_bits(uint8_t *p, unsigned size, uint64_t bits)
{
    /* Hardware sets A/D with a locked RMW (SDM vol.3 4.8): other vCPUs may be editing. */
    if (size == 4)
        __atomic_fetch_or((uint32_t *)p, (uint32_t)bits, __ATOMIC_SEQ_CST);
    else
        __atomic_fetch_or((uint64_t *)p, bits, __ATOMIC_SEQ_CST);
}

uint32_t emu_walk(struct emu_vcpu *v, uint64_t lin, unsigned acc, bool set_ad, uint64_t *gpa,
                  bool *writable, bool *user)
{
    struct cpu *c = &v->cpu;
    unsigned kind = acc & EMU_ACC_KIND;
    bool is_user = c->cpl == 3 && !(acc & EMU_ACC_SYS);
    uint32_t ec = (kind == EMU_ACC_WRITE ? EMU_PFERR_W : 0) | (is_user ? EMU_PFERR_U : 0);
    bool nxe = c->efer & EFER_NXE;
    if (kind == EMU_ACC_FETCH && (nxe || (c->cr4 & CR4_SMEP)))
        ec |= EMU_PFERR_I;

    if (!(c->cr0 & CR0_PG)) {
        *gpa = c->efer & EFER_LMA ? lin : (uint32_t)lin;
        if (!emu_nested_tdp(v, gpa, acc, lin, true))
            return ec | EMU_WALK_FAIL;
        if (writable)
            *writable = true;
        if (user)
            *user = true;
        return 0;
    }

    uint64_t pa_mask = ((1ull << maxphyaddr(v)) - 1) & ~0xfffull;
    uint8_t *ptrs[5];
    unsigned nptr = 0;
    unsigned esize;
    bool w = true, u = true, nx = false;
    uint64_t entry = 0, page_size = 4096, table;
    int level;

    if (!(c->cr4 & CR4_PAE)) {
        /* 32-bit paging: 2 levels of 4-byte entries */
        esize = 4;
        table = c->cr3 & 0xfffff000u;
        for (level = 2; level >= 1; level--) {
            unsigned idx = level == 2 ? (lin >> 22) & 0x3ff : (lin >> 12) & 0x3ff;
            uint64_t pt = table + idx * 4;
            if (!emu_nested_tdp(v, &pt, EMU_ACC_READ, lin, false))
                return ec | EMU_WALK_FAIL;
            uint8_t *p = pte_ptr(v, pt, 4);
            if (!p) {
                if (v->in_run)
                    emu_unimplemented(v); /* page tables outside RAM */
                return ec | EMU_WALK_FAIL;
            }
            entry = load_pte(p, 4);
            if (!(entry & PTE_P))
                return ec | EMU_WALK_FAIL;
            ptrs[nptr++] = p;
            w &= !!(entry & PTE_W);
            u &= !!(entry & PTE_U);
            if (level == 2 && (entry & PTE_PS) && (c->cr4 & CR4_PSE)) {
                page_size = 4u << 20;
                /* PSE-36: bits 20:13 give physical bits 39:32 */
                entry = (entry & 0xffc00000u) | ((entry & 0x1fe000ull) << 19) | (entry & 0xfff);
                break;
            }
            table = entry & 0xfffff000u;
        }
    } else {
        esize = 8;
        uint64_t rsvd_nx = nxe ? 0 : PTE_NX;
        if (c->efer & EFER_LMA) {
            level = 4;
            table = c->cr3 & pa_mask;
        } else {
            /* PAE: the PDPTEs were loaded at the CR3 write (SDM vol.3 4.4.1) */
            uint64_t pdpte = c->pdptrs[(lin >> 30) & 3];
            if (!(pdpte & PTE_P))
                return ec | EMU_WALK_FAIL;
            table = pdpte & pa_mask;
            level = 2;
        }
        for (; level >= 1; level--) {
            unsigned idx = (lin >> (12 + 9 * (level - 1))) & 0x1ff;
            uint64_t pt = table + idx * 8; /* an L2-physical address under EPT */
            if (!emu_nested_tdp(v, &pt, EMU_ACC_READ, lin, false))
                return ec | EMU_WALK_FAIL;
            uint8_t *p = pte_ptr(v, pt, 8);
            if (!p) {
                if (v->in_run)
                    emu_unimplemented(v);
                return ec | EMU_WALK_FAIL;
            }
            entry = load_pte(p, 8);
            if (!(entry & PTE_P))
                return ec | EMU_WALK_FAIL;
            uint64_t rsvd = rsvd_nx | (~((1ull << maxphyaddr(v)) - 1) & 0x000fffffffffffffull);
            if (level == 4 && (entry & PTE_PS))
                rsvd |= PTE_PS;
            if ((level == 3 || level == 2) && (entry & PTE_PS))
                rsvd |= (level == 3 ? 0x3fffe000ull : 0x1fe000ull);
            if (entry & rsvd) {
                uint32_t f = ec | EMU_PFERR_P | EMU_PFERR_RSVD | EMU_WALK_FAIL;
                unsigned tw = v->policy.tdp_maxphyaddr;
                if (tw > maxphyaddr(v)) { /* reserved for the guest, not for the CPU? */
                    uint64_t cpu_ok = ((1ull << tw) - 1) & ~((1ull << maxphyaddr(v)) - 1);
                    if (!(entry & rsvd & ~cpu_ok))
                        f |= EMU_WALK_RSVD_TDP;
                }
                return f;
            }
            ptrs[nptr++] = p;
            w &= !!(entry & PTE_W);
            u &= !!(entry & PTE_U);
            nx |= nxe && (entry & PTE_NX);
            if ((level == 3 || level == 2) && (entry & PTE_PS)) {
                page_size = level == 3 ? 1ull << 30 : 2ull << 20;
                break;
            }
            table = entry & pa_mask;
        }
    }

    /* Access rights (SDM vol.3 4.6) */
    ec |= EMU_PFERR_P;
    if (is_user) {
        if (!u)
            return ec | EMU_WALK_FAIL;
        if (kind == EMU_ACC_WRITE && !w)
            return ec | EMU_WALK_FAIL;
        if (kind == EMU_ACC_FETCH && nx)
            return ec | EMU_WALK_FAIL;
    } else {
        if (kind == EMU_ACC_WRITE && !w && (c->cr0 & CR0_WP))
            return ec | EMU_WALK_FAIL;
        if (kind == EMU_ACC_FETCH) {
            if (nx)
                return ec | EMU_WALK_FAIL;
            if (u && (c->cr4 & CR4_SMEP))
                return ec | EMU_WALK_FAIL;
        } else if (u && (c->cr4 & CR4_SMAP)) {
            /* explicit accesses are allowed with EFLAGS.AC=1; implicit ones never */
            if ((acc & EMU_ACC_SYS) || !(emu_flags(v) & EMU_FL_AC))
                return ec | EMU_WALK_FAIL;
        }
    }

    if (set_ad) {
        for (unsigned i = 0; i < nptr; i++)
            if (!(load_pte(ptrs[i], esize) & PTE_A) && pte_writable(v, ptrs[i]))
                set_bits(ptrs[i], esize, PTE_A);
        if (kind == EMU_ACC_WRITE && !(load_pte(ptrs[nptr - 1], esize) & PTE_D) &&
            pte_writable(v, ptrs[nptr - 1]))
            set_bits(ptrs[nptr - 1], esize, PTE_D);
    }
    uint64_t base = esize == 4 && page_size == 4096 ? entry & 0xfffff000u : entry & pa_mask;
    base &= ~(page_size - 1);
    *gpa = base | (lin & (page_size - 1));
    if (!emu_nested_tdp(v, gpa, acc, lin, true))
        return ec | EMU_WALK_FAIL;
    if (writable)
        *writable = w;
    if (user)
        *user = u;
    return 0;
}
