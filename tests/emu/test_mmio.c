/* tests/emu: MMIO exits as KVM makes them: 8-byte pieces (x86.c emulator_read_write_onepage,
 * complete_emulated_mmio), the per-instruction read answers (emulate.c read_emulated,
 * ctxt->mem_read) and the restarted instruction running before anything else
 * (complete_userspace_io ahead of vcpu_run's event injection). */
#include <check.h>
#include "tests/check_main.h"
#include <stdlib.h>

#include "tests/emu/emu_test_vm.h"

static struct tvm T;
static struct emu_exit X;

static void setup(void) { tvm_init64(&T); }
static void teardown(void) { tvm_destroy(&T); }

#define RUN() tvm_run(&T, &X)
#define CODE(...) do { static const uint8_t c_[] = {__VA_ARGS__}; tvm_code(&T, c_, sizeof c_); } while (0)
#define MMIO 0x2000000u /* no slot there */

static void expect_read(uint64_t gpa, unsigned len, uint64_t rip)
{
    ck_assert_int_eq(RUN(), EMU_EXIT_MMIO);
    ck_assert(!X.mmio.is_write);
    ck_assert_uint_eq(X.mmio.gpa, gpa);
    ck_assert_uint_eq(X.mmio.len, len);
    ck_assert_uint_eq(X.mmio.rip, rip);
}

/* REPE CMPSB between two MMIO buffers: two MMIO reads per element. Each is asked for once;
 * the restarted instruction gets the answers it already has, in order, so the exits go
 * A0 B0 A1 B1 and the loop ends with ZF set and RCX 0 (kvm-unit-tests x86/emulator
 * test_cmps on its MMIO page). Without the kept answers it asks for A0 forever. */
START_TEST(cmps_between_two_mmio_buffers)
{
    /* mov esi,MMIO+0x100; mov edi,MMIO+0x200; mov ecx,2; repe cmpsb; hlt */
    CODE(0xbe, 0x00, 0x01, 0x00, 0x02, 0xbf, 0x00, 0x02, 0x00, 0x02, 0xb9, 2, 0, 0, 0, 0xf3, 0xa6,
         0xf4);
    static const uint64_t want[] = {MMIO + 0x100, MMIO + 0x200, MMIO + 0x101, MMIO + 0x201};
    for (unsigned i = 0; i < 4; i++) {
        expect_read(want[i], 1, TVM_CODE + 15);
        uint8_t b = (uint8_t)(0x30 + i / 2); /* both sides equal per element */
        emu_complete_mmio(T.v, &b);
    }
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RCX], 0);
    ck_assert_uint_eq(T.c->gpr[EMU_RSI], MMIO + 0x102);
    ck_assert_uint_eq(T.c->gpr[EMU_RDI], MMIO + 0x202);
    ck_assert(emu_get_rflags(T.v) & 0x40); /* ZF: equal */
}
END_TEST

/* CMPSB whose sides differ stops the REPE after the first element with the flags of
 * A0 - B0: the second answer is B0's, not A0's again */
START_TEST(cmps_mmio_answers_in_order)
{
    /* mov esi,MMIO; mov edi,MMIO+8; mov ecx,3; repe cmpsb; hlt */
    CODE(0xbe, 0x00, 0x00, 0x00, 0x02, 0xbf, 0x08, 0x00, 0x00, 0x02, 0xb9, 3, 0, 0, 0, 0xf3, 0xa6,
         0xf4);
    uint8_t a = 5, b = 7;
    expect_read(MMIO, 1, TVM_CODE + 15);
    emu_complete_mmio(T.v, &a);
    expect_read(MMIO + 8, 1, TVM_CODE + 15);
    emu_complete_mmio(T.v, &b);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RCX], 2);
    uint64_t fl = emu_get_rflags(T.v);
    ck_assert(!(fl & 0x40)); /* ZF clear: 5 != 7 */
    ck_assert(fl & 0x01);    /* CF: 5 - 7 borrows */
}
END_TEST

/* MOVDQU xmm0,[MMIO]; MOVDQU [MMIO+0x100],xmm0: each 16-byte access is two 8-byte exits,
 * reads at gpa and gpa+8, then the writes, the second reported by the next run without the
 * guest running on (KVM complete_emulated_mmio) */
START_TEST(sse_16_byte_mmio_in_8_byte_pieces)
{
    /* movdqu xmm0,[MMIO]; movdqu [MMIO+0x100],xmm0; hlt */
    CODE(0xf3, 0x0f, 0x6f, 0x04, 0x25, 0x00, 0x00, 0x00, 0x02,
         0xf3, 0x0f, 0x7f, 0x04, 0x25, 0x00, 0x01, 0x00, 0x02, 0xf4);
    uint8_t lo[8], hi[8];
    for (unsigned i = 0; i < 8; i++) {
        lo[i] = (uint8_t)(0x10 + i);
        hi[i] = (uint8_t)(0x80 + i);
    }
    expect_read(MMIO, 8, TVM_CODE);
    emu_complete_mmio(T.v, lo);
    expect_read(MMIO + 8, 8, TVM_CODE);
    emu_complete_mmio(T.v, hi);
    ck_assert_int_eq(RUN(), EMU_EXIT_MMIO);
    ck_assert(X.mmio.is_write);
    ck_assert_uint_eq(X.mmio.gpa, MMIO + 0x100);
    ck_assert_uint_eq(X.mmio.len, 8);
    ck_assert_mem_eq(X.mmio.data, lo, 8);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 18); /* the store completed */
    emu_complete_mmio(T.v, NULL);
    ck_assert_int_eq(RUN(), EMU_EXIT_MMIO);
    ck_assert(X.mmio.is_write);
    ck_assert_uint_eq(X.mmio.gpa, MMIO + 0x108);
    ck_assert_uint_eq(X.mmio.len, 8);
    ck_assert_mem_eq(X.mmio.data, hi, 8);
    ck_assert_uint_eq(X.mmio.rip, TVM_CODE + 9);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 18); /* no guest instruction ran */
    emu_complete_mmio(T.v, NULL);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_mem_eq(T.c->fpu.xmm[0], lo, 8);
    ck_assert_mem_eq(T.c->fpu.xmm[0] + 8, hi, 8);
}
END_TEST

/* An interrupt made pending while an MMIO read is out: the restarted instruction runs
 * first with its answer, then the interrupt is taken, and the handler's read of the same
 * register is asked for afresh instead of being served the mov's answer. */
START_TEST(interrupt_after_the_restarted_insn_gets_no_answer)
{
    /* mov eax,[MMIO]; hlt; vector 0x40: mov ebx,[MMIO]; hlt */
    CODE(0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x02, 0xf4);
    static const uint8_t isr[] = {0x8b, 0x1c, 0x25, 0x00, 0x00, 0x00, 0x02, 0xf4};
    memcpy(T.ram + TVM_STUB + 0x40 * 16, isr, sizeof isr);
    T.c->rflags = 0x202; /* IF */
    emu_state_changed(T.v);
    expect_read(MMIO, 4, TVM_CODE);
    T.c->ev.irq_injected = true; /* KVM_INTERRUPT while the read is out */
    T.c->ev.irq_vector = 0x40;
    static const uint8_t a[4] = {0x11, 0x22, 0x33, 0x44};
    emu_complete_mmio(T.v, a);
    expect_read(MMIO, 4, TVM_STUB + 0x40 * 16);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 0x44332211);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), TVM_CODE + 7); /* taken after the mov */
    static const uint8_t b[4] = {0x55, 0x66, 0x77, 0x88};
    emu_complete_mmio(T.v, b);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, TVM_STUB + 0x40 * 16 + 8); /* past the handler's hlt */
    ck_assert_uint_eq(T.c->gpr[EMU_RBX], 0x88776655);
}
END_TEST

/* User space moves RIP while a read is out (KVM_SET_REGS): the answer belonged to the
 * abandoned instruction; the one at the new RIP reading the same register asks again */
START_TEST(moved_rip_drops_the_answer)
{
    /* mov eax,[MMIO]; hlt; mov ebx,[MMIO]; hlt */
    CODE(0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x02, 0xf4, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x00, 0x02,
         0xf4);
    expect_read(MMIO, 4, TVM_CODE);
    static const uint8_t a[4] = {1, 2, 3, 4};
    emu_complete_mmio(T.v, a);
    T.c->rip = TVM_CODE + 8;
    emu_state_changed(T.v);
    expect_read(MMIO, 4, TVM_CODE + 8);
    static const uint8_t b[4] = {5, 6, 7, 8};
    emu_complete_mmio(T.v, b);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RBX], 0x08070605);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 0);
}
END_TEST

/* A fault after the MMIO read (the MOVS destination is not present) abandons the
 * instruction with its answer, so its re-execution asks for the read again */
START_TEST(fault_after_the_read_drops_the_answer)
{
    /* mov esi,MMIO; mov rdi,0x40000000000 (not mapped); movsb; hlt */
    CODE(0xbe, 0x00, 0x00, 0x00, 0x02, 0x48, 0xbf, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00,
         0xa4, 0xf4);
    expect_read(MMIO, 1, TVM_CODE + 15);
    uint8_t a = 0x5a;
    emu_complete_mmio(T.v, &a);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 14); /* #PF */
    /* back at the MOVSB with the page still missing: the read is asked for again */
    T.c->rip = TVM_CODE + 15;
    T.c->halted = false;
    T.c->gpr[EMU_RSP] = TVM_STACK - 0x1000;
    emu_state_changed(T.v);
    expect_read(MMIO, 1, TVM_CODE + 15);
}
END_TEST

/* REP INSB into MMIO across a page (kvm-unit-tests x86/emulator test_string_io_mmio):
 * the destination is not read to probe it; each batch (the rest of the page, at most
 * KVM's 1024-byte read-ahead buffer) is one IN exit and then one write of the batch in
 * 8-byte exits, before the INS goes on (emulate.c pio_in_emulated + OP_MEM_STR
 * writeback, x86.c complete_emulated_mmio) */
START_TEST(rep_insb_into_mmio_across_a_page)
{
    /* mov edi,MMIO+0xfc0; mov ecx,100; mov edx,0xe0; cld; rep insb; hlt */
    CODE(0xbf, 0xc0, 0x0f, 0x00, 0x02, 0xb9, 100, 0, 0, 0, 0xba, 0xe0, 0, 0, 0, 0xfc, 0xf3, 0x6c,
         0xf4);
    uint8_t in[1024];
    for (unsigned i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)i;
    static const struct { unsigned count, gpa; } batch[] = {{64, MMIO + 0xfc0}, {36, MMIO + 0x1000}};
    for (unsigned b = 0; b < 2; b++) {
        ck_assert_int_eq(RUN(), EMU_EXIT_IO);
        ck_assert(X.io.in);
        ck_assert_uint_eq(X.io.port, 0xe0);
        ck_assert_uint_eq(X.io.count, batch[b].count);
        emu_complete_io(T.v, in);
        for (unsigned off = 0; off < batch[b].count; off += 8) {
            unsigned len = batch[b].count - off < 8 ? batch[b].count - off : 8;
            ck_assert_int_eq(RUN(), EMU_EXIT_MMIO);
            ck_assert(X.mmio.is_write);
            ck_assert_uint_eq(X.mmio.gpa, batch[b].gpa + off);
            ck_assert_uint_eq(X.mmio.len, len);
            ck_assert_mem_eq(X.mmio.data, in + off, len);
            emu_complete_mmio(T.v, NULL);
        }
    }
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RCX], 0);
    ck_assert_uint_eq(T.c->gpr[EMU_RDI], MMIO + 0xfc0 + 100);
}
END_TEST

/* A VMM hardware breakpoint on an instruction that reads MMIO: the debug exit comes once,
 * before it; its restart after the read is not stopped again (which would drop the answer
 * and read the device a second time, forever) */
START_TEST(breakpoint_on_the_insn_is_not_hit_by_its_restart)
{
    /* mov eax,[MMIO]; hlt */
    CODE(0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x02, 0xf4);
    uint64_t dbg[8] = {0};
    dbg[0] = TVM_CODE;
    dbg[7] = 0x400 | 2; /* G0, execute */
    emu_set_guest_debug(T.v, 0x1 | 0x20000, dbg); /* ENABLE | USE_HW_BP */
    ck_assert_int_eq(RUN(), EMU_EXIT_DEBUG);
    ck_assert_uint_eq(X.debug.pc, TVM_CODE);
    expect_read(MMIO, 4, TVM_CODE);
    static const uint8_t a[4] = {9, 8, 7, 6};
    emu_complete_mmio(T.v, a);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 0x06070809);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("emu_mmio");
    TCase *t = tcase_create("mmio");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, cmps_between_two_mmio_buffers);
    tcase_add_test(t, cmps_mmio_answers_in_order);
    tcase_add_test(t, sse_16_byte_mmio_in_8_byte_pieces);
    tcase_add_test(t, interrupt_after_the_restarted_insn_gets_no_answer);
    tcase_add_test(t, moved_rip_drops_the_answer);
    tcase_add_test(t, fault_after_the_read_drops_the_answer);
    tcase_add_test(t, rep_insb_into_mmio_across_a_page);
    tcase_add_test(t, breakpoint_on_the_insn_is_not_hit_by_its_restart);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
