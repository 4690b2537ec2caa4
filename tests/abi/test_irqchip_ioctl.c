/* Irqchip ioctl probe: KVM_CREATE_IRQCHIP, KVM_GET/SET_LAPIC, KVM_GET/SET_IRQCHIP,
 * KVM_IRQ_LINE_STATUS over every default-routed GSI, KVM_SIGNAL_MSI,
 * KVM_SET_GSI_ROUTING validation, APIC_BASE/x2APIC MSRs through KVM_GET/SET_MSRS,
 * TSC deadline and KVM_CAP_X2APIC_API, all called in-process through abi_ioctl.
 * The output must equal, line for line, what the same probe printed on this
 * machine's real /dev/kvm (embedded below). */
#include <check.h>
#include "tests/check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi/abi.h"
#include "abi/abi_internal.h"

static struct abi_process *P_;
static int kvm, vm, vcpu, vcpu1;
static char out[16384];
static size_t outlen;

static void P(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + outlen, sizeof out - outlen, fmt, ap);
    va_end(ap);
    if (n > 0)
        outlen += (size_t)n < sizeof out - outlen ? (size_t)n : sizeof out - outlen - 1;
}

static int xioctl(int fd, unsigned long req, void *arg)
{
    return (int)abi_ioctl(P_, fd, req, (unsigned long)arg);
}

static void dump_lapic(const char *tag, int fd)
{
    struct kvm_lapic_state s;
    int r = xioctl(fd, KVM_GET_LAPIC, &s);
    P("%s GET_LAPIC r=%d:", tag, r);
    for (unsigned off = 0; off < 0x400; off += 0x10) {
        uint32_t v;
        memcpy(&v, s.regs + off, 4);
        if (off == 0x390)
            continue; /* TMCCT is time dependent */
        if (v)
            P(" %03x=%x", off, v);
    }
    P("\n");
}

static uint64_t getmsr(int fd, uint32_t idx, int *r)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = idx};
    *r = xioctl(fd, KVM_GET_MSRS, &m);
    return m.e.data;
}

static int setmsr(int fd, uint32_t idx, uint64_t v)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = idx, .e.data = v};
    return xioctl(fd, KVM_SET_MSRS, &m);
}

static void dump_chip(const char *tag)
{
    for (unsigned id = 0; id < 3; id++) {
        struct kvm_irqchip c = {.chip_id = id};
        int r = xioctl(vm, KVM_GET_IRQCHIP, &c);
        P("%s chip%u r=%d:", tag, id, r);
        if (id < 2) {
            uint8_t *b = (uint8_t *)&c.chip.pic;
            for (unsigned i = 0; i < sizeof c.chip.pic; i++)
                P(" %02x", b[i]);
        } else {
            struct kvm_ioapic_state *s = &c.chip.ioapic;
            P(" base=%llx sel=%x id=%x irr=%x", (unsigned long long)s->base_address, s->ioregsel, s->id, s->irr);
            for (int i = 0; i < 24; i++)
                P(" %llx", (unsigned long long)s->redirtbl[i].bits);
        }
        P("\n");
    }
}

static int irq_line(uint32_t irq, uint32_t level)
{
    struct kvm_irq_level l = {.irq = irq, .level = level};
    int r = xioctl(vm, KVM_IRQ_LINE_STATUS, &l);
    return r < 0 ? r : l.status;
}

/* The real-KVM transcript came from a probe whose compiler evaluated the
 * arguments of one printf right to left; these helpers make that order
 * explicit: de-assert first, then two asserts, printed as
 * "second-assert first-assert de-assert". */
static void line_triple(const char *fmt, uint32_t g)
{
    int deassert = irq_line(g, 0);
    int first = irq_line(g, 1);
    int second = irq_line(g, 1);
    P(fmt, second, first, deassert);
}


static void probe(void)
{
    kvm = abi_open_dev_kvm(P_, O_RDWR);
    vm = (int)abi_ioctl(P_, kvm, KVM_CREATE_VM, 0);
    P("irq_line before irqchip: %d\n", irq_line(1, 1));
    P("create irqchip: %d\n", xioctl(vm, KVM_CREATE_IRQCHIP, NULL));
    P("create irqchip again: %d\n", xioctl(vm, KVM_CREATE_IRQCHIP, NULL));
    dump_chip("fresh");
    vcpu = (int)abi_ioctl(P_, vm, KVM_CREATE_VCPU, 0);
    vcpu1 = (int)abi_ioctl(P_, vm, KVM_CREATE_VCPU, 1);
    dump_lapic("vcpu0", vcpu);
    dump_lapic("vcpu1", vcpu1);
    int r;
    P("apicbase0 %llx\n", (unsigned long long)getmsr(vcpu, 0x1b, &r));
    P("apicbase1 %llx\n", (unsigned long long)getmsr(vcpu1, 0x1b, &r));

    /* IRQ lines with default routing, fresh PIC/IOAPIC. */
    P("irq_line:");
    for (uint32_t g = 0; g < 26; g++)
        line_triple(" %d/%d/%d", g);
    P("\n");
    dump_chip("after-lines");

    /* Unmask IOAPIC pin 9 -> vector 0x40 dest 1, edge; and pin 10 level -> 0x41 dest 0. */
    struct kvm_irqchip c = {.chip_id = 2};
    xioctl(vm, KVM_GET_IRQCHIP, &c);
    c.chip.ioapic.redirtbl[9].bits = 0x40ull | (1ull << 56);
    c.chip.ioapic.redirtbl[10].bits = 0x41ull | (1ull << 15);
    P("set ioapic: %d\n", xioctl(vm, KVM_SET_IRQCHIP, &c));
    /* software-enable both LAPICs */
    struct kvm_lapic_state ls;
    for (int k = 0; k < 2; k++) {
        int fd = k ? vcpu1 : vcpu;
        xioctl(fd, KVM_GET_LAPIC, &ls);
        uint32_t svr = 0x1ff;
        memcpy(ls.regs + 0xf0, &svr, 4);
        P("set lapic %d: %d\n", k, xioctl(fd, KVM_SET_LAPIC, &ls));
    }
    /* mask PIC so only the IOAPIC counts */
    struct kvm_irqchip pc = {.chip_id = 0};
    xioctl(vm, KVM_GET_IRQCHIP, &pc);
    pc.chip.pic.imr = 0xff;
    xioctl(vm, KVM_SET_IRQCHIP, &pc);
    pc.chip_id = 1;
    xioctl(vm, KVM_GET_IRQCHIP, &pc);
    pc.chip.pic.imr = 0xff;
    xioctl(vm, KVM_SET_IRQCHIP, &pc);
    line_triple("pin9: %d %d %d\n", 9);
    line_triple("pin10: %d %d %d\n", 10);
    dump_lapic("after-ioapic vcpu0", vcpu);
    dump_lapic("after-ioapic vcpu1", vcpu1);
    dump_chip("after-ioapic");

    /* MSI */
    struct kvm_msi msi = {.address_lo = 0xfee01000, .data = 0x42};
    P("msi: %d\n", xioctl(vm, KVM_SIGNAL_MSI, &msi));
    msi.address_lo = 0xfee05000;
    P("msi nodest: %d\n", xioctl(vm, KVM_SIGNAL_MSI, &msi));
    msi.flags = 2;
    P("msi badflags: %d\n", xioctl(vm, KVM_SIGNAL_MSI, &msi));
    msi.flags = 0;
    msi.address_lo = 0xfee0f00c; /* logical, dest 0xff broadcast */
    msi.data = 0x43;
    P("msi logical bcast: %d\n", xioctl(vm, KVM_SIGNAL_MSI, &msi));
    dump_lapic("after-msi vcpu1", vcpu1);

    /* routing */
    struct {
        struct kvm_irq_routing r;
        struct kvm_irq_routing_entry e[3];
    } rt;
    memset(&rt, 0, sizeof rt);
    rt.r.nr = 1;
    rt.e[0].gsi = 3;
    rt.e[0].type = KVM_IRQ_ROUTING_IRQCHIP;
    rt.e[0].u.irqchip.irqchip = 0;
    rt.e[0].u.irqchip.pin = 8;
    P("route pic pin8: %d\n", xioctl(vm, KVM_SET_GSI_ROUTING, &rt));
    rt.e[0].u.irqchip.irqchip = 2;
    rt.e[0].u.irqchip.pin = 24;
    P("route ioapic pin24: %d\n", xioctl(vm, KVM_SET_GSI_ROUTING, &rt));
    rt.e[0].u.irqchip.irqchip = 3;
    rt.e[0].u.irqchip.pin = 0;
    P("route chip3: %d\n", xioctl(vm, KVM_SET_GSI_ROUTING, &rt));
    rt.r.nr = 2;
    rt.e[0].u.irqchip.irqchip = 2;
    rt.e[0].u.irqchip.pin = 3;
    rt.e[1] = rt.e[0];
    P("route dup: %d\n", xioctl(vm, KVM_SET_GSI_ROUTING, &rt));
    rt.e[1].type = KVM_IRQ_ROUTING_MSI;
    memset(&rt.e[1].u, 0, sizeof rt.e[1].u);
    rt.e[1].u.msi.address_lo = 0xfee00000;
    rt.e[1].u.msi.data = 0x44;
    P("route irqchip+msi same gsi: %d\n", xioctl(vm, KVM_SET_GSI_ROUTING, &rt));
    rt.e[1].gsi = 4;
    P("route ok: %d\n", xioctl(vm, KVM_SET_GSI_ROUTING, &rt));
    rt.e[0].flags = 1;
    P("route flags: %d\n", xioctl(vm, KVM_SET_GSI_ROUTING, &rt));
    rt.e[0].flags = 0;
    rt.r.flags = 1;
    P("route rflags: %d\n", xioctl(vm, KVM_SET_GSI_ROUTING, &rt));
    line_triple("msi-route line: %d %d %d\n", 4);
    P("unrouted line: %d\n", irq_line(9, 1));

    /* x2APIC transitions via host MSR writes */
    P("x2apic: %d\n", setmsr(vcpu1, 0x1b, 0xfee00000 | (3 << 10)));
    dump_lapic("x2 vcpu1", vcpu1);
    P("msr 802=%llx", (unsigned long long)getmsr(vcpu1, 0x802, &r));
    P(" r=%d", r);
    P(" 80d=%llx", (unsigned long long)getmsr(vcpu1, 0x80d, &r));
    P(" 803=%llx", (unsigned long long)getmsr(vcpu1, 0x803, &r));
    P(" 80b r=%d", (getmsr(vcpu1, 0x80b, &r), r));
    P(" 830 r=%d", (getmsr(vcpu1, 0x830, &r), r));
    P("\n");
    int w83f = setmsr(vcpu1, 0x83f, 0x55); /* same right-to-left order as the transcript */
    int w802 = setmsr(vcpu1, 0x802, 5);
    int w808 = setmsr(vcpu1, 0x808, 0x20);
    P("x2 set 808: %d, 802: %d, 83f: %d\n", w808, w802, w83f);
    dump_lapic("x2 vcpu1 b", vcpu1);
    P("back to xapic (host): %d\n", setmsr(vcpu1, 0x1b, 0xfee00000 | (1 << 11)));
    dump_lapic("xapic again vcpu1", vcpu1);
    P("disable: %d\n", setmsr(vcpu1, 0x1b, 0xfee00000));
    P("invalid x2 no en: %d\n", setmsr(vcpu1, 0x1b, 0xfee00000 | (1 << 10)));
    P("reserved: %d\n", setmsr(vcpu1, 0x1b, 0xfee00001));
    P("reenable: %d\n", setmsr(vcpu1, 0x1b, 0xfee00000 | (1 << 11)));
    dump_lapic("reenabled vcpu1", vcpu1);
    P("xapic msr 802 r=%d\n", (getmsr(vcpu1, 0x802, &r), r));
    P("tscdeadline r=%d v=%llx\n", r, (unsigned long long)getmsr(vcpu1, 0x6e0, &r));

    /* SET_LAPIC timer: TSC-deadline mode and msr */
    xioctl(vcpu1, KVM_GET_LAPIC, &ls);
    uint32_t lvtt = (2 << 17) | 0xec;
    memcpy(ls.regs + 0x320, &lvtt, 4);
    P("set lapic tscdl: %d\n", xioctl(vcpu1, KVM_SET_LAPIC, &ls));
    P("tscdl set: %d\n", setmsr(vcpu1, 0x6e0, 1ull << 60));
    P("tscdl get: %llx r=%d\n", (unsigned long long)getmsr(vcpu1, 0x6e0, &r), r);

    /* x2apic api */
    struct kvm_enable_cap x2 = {.cap = KVM_CAP_X2APIC_API, .args = {4}};
    P("x2apic api bad: %d\n", xioctl(vm, KVM_ENABLE_CAP, &x2));
    x2.args[0] = 3;
    P("x2apic api: %d\n", xioctl(vm, KVM_ENABLE_CAP, &x2));
    msi.address_lo = 0xfee01000;
    msi.address_hi = 1;
    P("msi hi low bits: %d\n", xioctl(vm, KVM_SIGNAL_MSI, &msi));
    struct kvm_irqchip bad = {.chip_id = 5};
    P("get chip 5: %d\n", xioctl(vm, KVM_GET_IRQCHIP, &bad));
}

/* Real KVM (Linux, this machine) printed: */
static const char *const expected[] = {
    "irq_line before irqchip: -6",
    "create irqchip: 0",
    "create irqchip again: -17",
    "fresh chip0 r=0: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 f8",
    "fresh chip1 r=0: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 de",
    "fresh chip2 r=0: base=fec00000 sel=0 id=0 irr=0 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000",
    "vcpu0 GET_LAPIC r=0: 030=50014 0e0=ffffffff 0f0=ff 320=10000 330=10000 340=10000 350=700 360=10000 370=10000",
    "vcpu1 GET_LAPIC r=0: 020=1000000 030=50014 0e0=ffffffff 0f0=ff 320=10000 330=10000 340=10000 350=10000 360=10000 370=10000",
    "apicbase0 fee00900",
    "apicbase1 fee00800",
    "irq_line: 1/1/2 1/1/2 1/1/2 1/1/2 1/1/2 1/1/2 1/1/2 1/1/2 1/1/2 1/1/2 1/1/2 1/1/2 1/1/2 1/1/2 1/1/2 1/1/2 0/-1/1 0/-1/1 0/-1/1 0/-1/1 0/-1/1 0/-1/1 0/-1/1 0/-1/1 -1/-1/-1 -1/-1/-1",
    "after-lines chip0 r=0: fb ff 00 00 00 00 00 00 00 00 00 00 00 00 00 f8",
    "after-lines chip1 r=0: ff ff 00 00 00 00 00 00 00 00 00 00 00 00 00 de",
    "after-lines chip2 r=0: base=fec00000 sel=0 id=0 irr=ffffff 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000",
    "set ioapic: 0",
    "set lapic 0: 0",
    "set lapic 1: 0",
    "pin9: 0 1 1",
    "pin10: -1 1 1",
    "after-ioapic vcpu0 GET_LAPIC r=0: 030=50014 0e0=ffffffff 0f0=1ff 1a0=2 220=2 320=10000 330=10000 340=10000 350=700 360=10000 370=10000",
    "after-ioapic vcpu1 GET_LAPIC r=0: 020=1000000 030=50014 0e0=ffffffff 0f0=1ff 220=1 320=10000 330=10000 340=10000 350=10000 360=10000 370=10000",
    "after-ioapic chip0 r=0: fb ff ff 00 00 00 00 00 00 00 00 00 00 00 00 f8",
    "after-ioapic chip1 r=0: ff ff ff 00 00 00 00 00 00 00 00 00 00 00 00 de",
    "after-ioapic chip2 r=0: base=fec00000 sel=0 id=0 irr=ffffff 10000 10000 10000 10000 10000 10000 10000 10000 10000 100000000000040 c041 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000 10000",
    "msi: 1",
    "msi nodest: 0",
    "msi badflags: -22",
    "msi logical bcast: 0",
    "after-msi vcpu1 GET_LAPIC r=0: 020=1000000 030=50014 0e0=ffffffff 0f0=1ff 220=5 320=10000 330=10000 340=10000 350=10000 360=10000 370=10000",
    "route pic pin8: -22",
    "route ioapic pin24: -22",
    "route chip3: -22",
    "route dup: -22",
    "route irqchip+msi same gsi: -22",
    "route ok: 0",
    "route flags: -22",
    "route rflags: -22",
    "msi-route line: 1 1 -1",
    "unrouted line: -1",
    "x2apic: 0",
    "x2 vcpu1 GET_LAPIC r=0: 020=1000000 030=50014 0e0=ffffffff 0f0=1ff 220=5 320=10000 330=10000 340=10000 350=10000 360=10000 370=10000",
    "msr 802=0 r=0 80d=0 803=0 80b r=0 830 r=0",
    "x2 set 808: 0, 802: 0, 83f: 0",
    "x2 vcpu1 b GET_LAPIC r=0: 020=1000000 030=50014 0e0=ffffffff 0f0=1ff 220=5 320=10000 330=10000 340=10000 350=10000 360=10000 370=10000",
    "back to xapic (host): 1",
    "xapic again vcpu1 GET_LAPIC r=0: 020=1000000 030=50014 0e0=ffffffff 0f0=1ff 220=5 320=10000 330=10000 340=10000 350=10000 360=10000 370=10000",
    "disable: 1",
    "invalid x2 no en: 0",
    "reserved: 0",
    "reenable: 1",
    "reenabled vcpu1 GET_LAPIC r=0: 020=1000000 030=50014 0e0=ffffffff 0f0=1ff 220=5 320=10000 330=10000 340=10000 350=10000 360=10000 370=10000",
    "xapic msr 802 r=0",
    "tscdeadline r=1 v=0",
    "set lapic tscdl: 0",
    "tscdl set: 1",
    "tscdl get: 0 r=1",
    "x2apic api bad: -22",
    "x2apic api: 0",
    "msi hi low bits: -22",
    "get chip 5: -22",
};

START_TEST(ioctl_probe_matches_real_kvm)
{
    P_ = abi_process_create();
    ck_assert_ptr_nonnull(P_);
    probe();
    unsigned n = 0;
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        ck_assert_uint_lt(n, sizeof expected / sizeof expected[0]);
        ck_assert_msg(!strcmp(line, expected[n]), "line %u:\n softkvm: %s\n real:    %s", n + 1, line,
                      expected[n]);
    }
    ck_assert_uint_eq(n, sizeof expected / sizeof expected[0]);
    abi_process_destroy(P_);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("irqchip_ioctl");
    TCase *tc = tcase_create("ioctl");
    tcase_add_test(tc, ioctl_probe_matches_real_kvm);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
