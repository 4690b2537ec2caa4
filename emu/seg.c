/* emu/: segmentation (SDM vol.3 chapter 3 and 5.3-5.6), mode tracking and control
 * register writes with their TLB consequences (SDM vol.3 2.5, 4.10.4). */
#include <string.h>

#include "emu/internal.h"

#define CR0_PE (1ull << 0)
#define CR0_ET (1ull << 4)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_PCIDE (1ull << 17)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

void emu_update_mode(struct emu_vcpu *v)
{
    struct cpu *c = &v->cpu;
    v->blk_break = true; /* the rest of the running block was decoded for the old mode */
    v->chain_gen++;      /* chains assume the CS base, mode and CPL they were made with */
    v->long_mode = c->efer & EFER_LMA;
    if (!(c->cr0 & CR0_PE)) {
        v->mode = DECODER_MODE_16;
        c->cpl = 0;
        return;
    }
    if (c->rflags & EMU_FL_VM) {
        v->mode = DECODER_MODE_16;
        c->cpl = 3;
        return;
    }
    if (v->long_mode && c->seg[EMU_CS].l)
        v->mode = DECODER_MODE_64;
    else
        v->mode = c->seg[EMU_CS].db ? DECODER_MODE_32 : DECODER_MODE_16;
    c->cpl = c->seg[EMU_SS].dpl;
}

static _Noreturn void seg_fault(struct emu_vcpu *v, unsigned seg)
{
    emu_raise(v, seg == EMU_SS ? EMU_SSF : EMU_GP, 0);
}

static bool canonical(uint64_t a)
{
    return emu_canonical(a);
}

uint64_t emu_seg_lin(struct emu_vcpu *v, unsigned seg, uint64_t off, unsigned size, unsigned acc)
{
    const struct emu_segment *s = &v->cpu.seg[seg];
    if (v->mode == DECODER_MODE_64) {
        uint64_t lin = (seg == EMU_FS || seg == EMU_GS) ? s->base + off : off;
        if (!canonical(lin) || !canonical(lin + size - 1))
            seg_fault(v, seg);
        return lin;
    }
    bool prot = (v->cpu.cr0 & CR0_PE) && !(v->cpu.rflags & EMU_FL_VM);
    if (prot) {
        if (s->unusable || !s->present)
            seg_fault(v, seg);
        unsigned kind = acc & EMU_ACC_KIND;
        if (kind == EMU_ACC_WRITE && ((s->type & 8) || !(s->type & 2)))
            seg_fault(v, seg); /* code segments and read-only data are not writable */
        if (kind == EMU_ACC_READ && (s->type & 8) && !(s->type & 2))
            seg_fault(v, seg); /* execute-only code */
    }
    uint64_t last = off + size - 1;
    if (prot && !(s->type & 8) && (s->type & 4)) {
        /* expand-down data: valid offsets are limit+1 .. 0xffff or 0xffffffff */
        uint64_t top = s->db ? 0xffffffffull : 0xffff;
        if (off <= s->limit || last > top)
            seg_fault(v, seg);
    } else if (last > s->limit) {
        seg_fault(v, seg);
    }
    return (uint32_t)(s->base + off);
}

uint64_t emu_mem_read(struct emu_vcpu *v, unsigned seg, uint64_t off, unsigned size)
{
    return emu_lin_read(v, emu_seg_lin(v, seg, off, size, EMU_ACC_READ), size, EMU_ACC_READ);
}

void emu_mem_write(struct emu_vcpu *v, unsigned seg, uint64_t off, unsigned size, uint64_t val)
{
    emu_lin_write(v, emu_seg_lin(v, seg, off, size, EMU_ACC_WRITE), size, val, EMU_ACC_WRITE);
}

void emu_mem_read_buf(struct emu_vcpu *v, unsigned seg, uint64_t off, void *buf, unsigned len)
{
    emu_lin_read_buf(v, emu_seg_lin(v, seg, off, len, EMU_ACC_READ), buf, len, EMU_ACC_READ);
}

void emu_mem_write_buf(struct emu_vcpu *v, unsigned seg, uint64_t off, const void *buf,
                       unsigned len)
{
    emu_lin_write_buf(v, emu_seg_lin(v, seg, off, len, EMU_ACC_WRITE), buf, len, EMU_ACC_WRITE);
}

void emu_desc_to_seg(const uint64_t d, uint16_t sel, struct emu_segment *s)
{
    memset(s, 0, sizeof *s);
    s->selector = sel;
    s->base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000ull);
    uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
    s->g = (d >> 55) & 1;
    s->limit = s->g ? (limit << 12) | 0xfff : limit;
    s->type = (d >> 40) & 0xf;
    s->s = (d >> 44) & 1;
    s->dpl = (d >> 45) & 3;
    s->present = (d >> 47) & 1;
    s->avl = (d >> 52) & 1;
    s->l = (d >> 53) & 1;
    s->db = (d >> 54) & 1;
}

/* Descriptor of sel from the GDT or LDT. sys16: 16-byte system descriptor (long mode). */
bool emu_read_desc(struct emu_vcpu *v, uint16_t sel, uint64_t desc[2], bool sys16)
{
    uint64_t base, limit;
    if (sel & 4) {
        const struct emu_segment *ldt = &v->cpu.seg[EMU_LDTR];
        if (ldt->unusable || !ldt->present)
            return false;
        base = ldt->base;
        limit = ldt->limit;
    } else {
        base = v->cpu.gdtr.base;
        limit = v->cpu.gdtr.limit;
    }
    uint64_t off = sel & ~7u;
    if (off + (sys16 ? 15 : 7) > limit)
        return false;
    desc[0] = emu_lin_read(v, base + off, 8, EMU_ACC_READ | EMU_ACC_SYS);
    desc[1] = sys16 ? emu_lin_read(v, base + off + 8, 8, EMU_ACC_READ | EMU_ACC_SYS) : 0;
    return true;
}

static void set_accessed(struct emu_vcpu *v, uint16_t sel, uint64_t desc)
{
    if (desc & (1ull << 40))
        return;
    uint64_t base = (sel & 4) ? v->cpu.seg[EMU_LDTR].base : v->cpu.gdtr.base;
    emu_lin_write(v, base + (sel & ~7u) + 5, 1, (uint8_t)(desc >> 40) | 1,
                  EMU_ACC_WRITE | EMU_ACC_SYS);
}

void emu_load_seg(struct emu_vcpu *v, unsigned seg, uint16_t sel)
{
    struct cpu *c = &v->cpu;
    struct emu_segment *s = &c->seg[seg];
    if (!(c->cr0 & CR0_PE) || (c->rflags & EMU_FL_VM)) {
        /* real / virtual-8086 mode: only selector and base change (SDM vol.3 20.1.1) */
        s->selector = sel;
        s->base = (uint64_t)sel << 4;
        if (c->rflags & EMU_FL_VM) {
            s->limit = 0xffff;
            s->type = seg == EMU_CS ? 0xb : 3;
            s->present = 1;
            s->s = 1;
            s->dpl = 3;
            s->unusable = 0;
        }
        if (seg == EMU_CS)
            emu_update_mode(v);
        return;
    }
    unsigned rpl = sel & 3;
    if ((sel & ~3u) == 0) {
        /* null selector: allowed except for SS outside 64-bit mode / at CPL 3 */
        if (seg == EMU_SS && (v->mode != DECODER_MODE_64 || c->cpl == 3 || rpl != (unsigned)c->cpl))
            emu_raise(v, EMU_GP, 0);
        memset(s, 0, sizeof *s);
        s->selector = sel;
        s->unusable = 1;
        if (seg == EMU_SS)
            s->dpl = (uint8_t)c->cpl;
        return;
    }
    uint64_t d[2];
    if (!emu_read_desc(v, sel, d, false))
        emu_raise(v, EMU_GP, sel & 0xfffc);
    struct emu_segment ns;
    emu_desc_to_seg(d[0], sel, &ns);
    if (!ns.s)
        emu_raise(v, EMU_GP, sel & 0xfffc);
    bool code = ns.type & 8, readable = ns.type & 2, conforming = code && (ns.type & 4);
    if (seg == EMU_SS) {
        if (rpl != (unsigned)c->cpl || ns.dpl != c->cpl || code || !(ns.type & 2))
            emu_raise(v, EMU_GP, sel & 0xfffc);
        if (!ns.present)
            emu_raise(v, EMU_SSF, sel & 0xfffc);
    } else {
        if (code && !readable)
            emu_raise(v, EMU_GP, sel & 0xfffc);
        if (!conforming && (rpl > ns.dpl || (unsigned)c->cpl > ns.dpl))
            emu_raise(v, EMU_GP, sel & 0xfffc);
        if (!ns.present)
            emu_raise(v, EMU_NP, sel & 0xfffc);
    }
    set_accessed(v, sel, d[0]);
    ns.type |= 1;
    *s = ns;
    if (seg == EMU_SS)
        emu_update_mode(v);
}

bool emu_try_load_pdptrs(struct emu_vcpu *v, uint64_t cr3)
{
    uint64_t gpa = cr3 & 0xffffffe0u;
    uint8_t *p = emu_gpa_to_host(v->pm, gpa, 32, false);
    if (!p)
        return false;
    uint64_t pd[4];
    memcpy(pd, p, sizeof pd);
    for (int i = 0; i < 4; i++)
        if ((pd[i] & 1) && (pd[i] & 0x1e6ull)) /* reserved bits 2:1, 8:5 (SDM vol.3 4.4.1) */
            return false;
    memcpy(v->cpu.pdptrs, pd, sizeof pd);
    return true;
}

static void load_pdptrs(struct emu_vcpu *v, uint64_t cr3)
{
    if (!emu_try_load_pdptrs(v, cr3))
        emu_raise(v, EMU_GP, 0);
}

void emu_write_cr(struct emu_vcpu *v, unsigned cr, uint64_t val)
{
    struct cpu *c = &v->cpu;
    switch (cr) {
    case 0: {
        if (val >> 32)
            emu_raise(v, EMU_GP, 0);
        val |= CR0_ET;
        if (((val & CR0_PG) && !(val & CR0_PE)) || ((val & CR0_NW) && !(val & CR0_CD)))
            emu_raise(v, EMU_GP, 0);
        uint64_t old = c->cr0;
        if ((val & CR0_PG) && !(old & CR0_PG) && (c->efer & EFER_LME)) {
            if (!(c->cr4 & CR4_PAE) || c->seg[EMU_CS].l)
                emu_raise(v, EMU_GP, 0);
            c->efer |= EFER_LMA; /* SDM vol.3 10.8.5: long mode activation */
        } else if ((val & CR0_PG) && !(old & CR0_PG) && (c->cr4 & CR4_PAE)) {
            load_pdptrs(v, c->cr3);
        }
        if (!(val & CR0_PG) && (old & CR0_PG) && (c->efer & EFER_LMA)) {
            if (v->mode == DECODER_MODE_64)
                emu_raise(v, EMU_GP, 0);
            c->efer &= ~EFER_LMA;
        }
        if (!(val & CR0_PG) && (c->cr4 & CR4_PCIDE))
            emu_raise(v, EMU_GP, 0);
        if (!emu_vmx_cr_valid(v, 0, val))
            emu_raise(v, EMU_GP, 0); /* IA32_VMX_CR0_FIXED0/1 in VMX operation */
        c->cr0 = val;
        if ((old ^ val) & (CR0_PG | CR0_WP | CR0_PE))
            emu_tlb_flush(v);
        emu_update_mode(v);
        break;
    }
    case 2:
        c->cr2 = val;
        break;
    case 3: {
        bool noflush = false;
        if ((c->cr4 & CR4_PCIDE) && (val >> 63)) {
            noflush = true; /* SDM vol.3 4.10.4.1: bit 63 = keep this PCID's entries */
            val &= ~(1ull << 63);
        }
        if (v->long_mode && (val >> 52))
            emu_raise(v, EMU_GP, 0);
        if (!v->long_mode && (c->cr0 & CR0_PG) && (c->cr4 & CR4_PAE))
            load_pdptrs(v, val);
        c->cr3 = val;
        if (!noflush)
            emu_tlb_flush(v);
        else
            emu_tlb_flush(v); /* our TLB is untagged: switching address space must drop it */
        break;
    }
    case 4: {
        /* bits this CPU model supports: VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR
         * OSXMMEXCPT UMIP FSGSBASE PCIDE OSXSAVE SMEP SMAP */
        uint64_t ok = 0x1ff | (1u << 9) | (1u << 10) | (1u << 11) | (1u << 16) |
                      (1u << 17) | (1u << 18) | (1u << 20) | (1u << 21);
        /* VMXE with CPUID.1:ECX.VMX (emu/vmx.c); fixed to 1 in VMX operation */
        const struct emu_cpuid_entry *l1 = emu_cpuid_find(v, 1, 0);
        if (l1 && (l1->ecx & (1u << 5)))
            ok |= 1u << 13;
        /* and only those the guest's CPUID has (KVM __cr4_reserved_bits via
         * cr4_guest_rsvd_bits, kvm_is_valid_cr4 -> #GP): pcid.flat sets PCIDE without
         * CPUID.1:ECX.PCID and expects #GP */
        static const struct { uint64_t cr4; uint32_t fn; uint8_t reg, bit; } need[] = {
            {1u << 18, 1, 2, 26}, /* OSXSAVE: XSAVE */
            {1u << 20, 7, 1, 7},  /* SMEP */
            {1u << 21, 7, 1, 20}, /* SMAP */
            {1u << 16, 7, 1, 0},  /* FSGSBASE */
            {1u << 11, 7, 2, 2},  /* UMIP */
            {1u << 17, 1, 2, 17}, /* PCIDE: PCID */
        };
        for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
            if (!emu_cpuid_has(v, need[i].fn, 0, need[i].reg, need[i].bit))
                ok &= ~need[i].cr4;
        if ((val & ~ok) || !emu_vmx_cr_valid(v, 4, val))
            emu_raise(v, EMU_GP, 0);
        if (v->long_mode && !(val & CR4_PAE))
            emu_raise(v, EMU_GP, 0);
        if ((val & CR4_PCIDE) && !(c->cr4 & CR4_PCIDE) && (!v->long_mode || (c->cr3 & 0xfff)))
            emu_raise(v, EMU_GP, 0);
        uint64_t old = c->cr4;
        if (!v->long_mode && (c->cr0 & CR0_PG) && (val & CR4_PAE) && !(old & CR4_PAE))
            load_pdptrs(v, c->cr3);
        c->cr4 = val;
        if ((old ^ val) & ((1u << 4) | (1u << 5) | (1u << 7) | (1u << 17) | (1u << 20) | (1u << 21)))
            emu_tlb_flush(v);
        break;
    }
    case 8:
        if (val & ~0xfull)
            emu_raise(v, EMU_GP, 0);
        c->cr8 = val;
        break;
    default:
        emu_raise(v, EMU_UD, EMU_NO_ERRCODE);
    }
}
