/* decoder-bench: softkvm's decoder vs Capstone 4 (detail mode on), same buffer,
 * same run. The buffer is real code: the .text of the system libc (64-bit),
 * or a file given with --file (whole file as code) / --elf (its .text).
 * Both decoders walk the buffer sequentially; on an undecodable byte both skip 1. */
#include <capstone/capstone.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decoder/decoder.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: the build machine is shared */
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(b);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* .text of an ELF64 file (section headers), or NULL */
static const uint8_t *elf_text(const uint8_t *b, size_t len, size_t *tlen)
{
    if (len < sizeof(Elf64_Ehdr) || memcmp(b, ELFMAG, SELFMAG) || b[EI_CLASS] != ELFCLASS64)
        return NULL;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)b;
    if (eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > len || eh->e_shstrndx >= eh->e_shnum)
        return NULL;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(b + eh->e_shoff);
    const char *names = (const char *)b + sh[eh->e_shstrndx].sh_offset;
    for (unsigned i = 0; i < eh->e_shnum; i++)
        if (!strcmp(names + sh[i].sh_name, ".text") && sh[i].sh_offset + sh[i].sh_size <= len) {
            *tlen = sh[i].sh_size;
            return b + sh[i].sh_offset;
        }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *elf = "/lib/x86_64-linux-gnu/libc.so.6", *raw = NULL;
    size_t max = 1u << 20;
    int reps = 10;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--elf") && i + 1 < argc) elf = argv[++i];
        else if (!strcmp(argv[i], "--file") && i + 1 < argc) raw = argv[++i];
        else if (!strcmp(argv[i], "--bytes") && i + 1 < argc) max = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: decoder-bench [--elf FILE | --file FILE] [--bytes N] [--reps N]\n");
            return 2;
        }
    }
    size_t flen;
    uint8_t *file = read_file(raw ? raw : elf, &flen);
    if (!file) {
        fprintf(stderr, "decoder-bench: cannot read %s\n", raw ? raw : elf);
        return 2;
    }
    const uint8_t *buf = file;
    size_t len = flen;
    if (!raw) {
        buf = elf_text(file, flen, &len);
        if (!buf) {
            fprintf(stderr, "decoder-bench: no .text in %s\n", elf);
            return 2;
        }
    }
    if (len > max)
        len = max;

    /* The build machine is shared: alternate the two decoders pass by pass and
     * keep each one's fastest pass (CPU time), which is the least disturbed. */
    csh cs;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
        return 2;
    cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
    cs_insn *insn = cs_malloc(cs);
    unsigned long ours_n = 0, ours_bad = 0, cs_n = 0, cs_bad = 0;
    double t_ours = 1e9, t_cs = 1e9;
    for (int r = 0; r < reps; r++) {
        ours_n = ours_bad = cs_n = cs_bad = 0;
        double t0 = now();
        size_t off = 0;
        struct decoded_insn d;
        while (off < len) {
            if (decoder_decode(buf + off, len - off, DECODER_MODE_64, &d) == DECODER_OK) {
                off += d.length;
                ours_n++;
            } else {
                off++;
                ours_bad++;
            }
        }
        double t = now() - t0;
        if (t < t_ours)
            t_ours = t;

        t0 = now();
        const uint8_t *p = buf;
        size_t left = len;
        uint64_t addr = 0x1000;
        while (left) {
            if (cs_disasm_iter(cs, &p, &left, &addr, insn)) {
                cs_n++;
            } else {
                p++;
                left--;
                addr++;
                cs_bad++;
            }
        }
        t = now() - t0;
        if (t < t_cs)
            t_cs = t;
    }
    cs_free(insn, 1);
    cs_close(&cs);

    double ours_rate = ours_n / t_ours, cs_rate = cs_n / t_cs;
    printf("buffer: %zu bytes of %s%s, best of %d alternating passes\n", len, raw ? raw : elf, raw ? "" : " .text", reps);
    printf("softkvm decoder:    %10.0f insn/s  (%lu insns, %lu undecodable bytes, %.3f s)\n", ours_rate,
           ours_n, ours_bad, t_ours);
    printf("capstone (detail):  %10.0f insn/s  (%lu insns, %lu undecodable bytes, %.3f s)\n", cs_rate, cs_n,
           cs_bad, t_cs);
    printf("ratio softkvm/capstone: %.1fx\n", ours_rate / cs_rate);
    free(file);
    return 0;
}
