/* msr-explain: the FILTER file format (documented in --help):
 *
 *   # comment
 *   default allow|deny
 *   range read|write|rw BASE NMSRS BITS
 *
 * BITS lists the allowed offsets in the range: "all", "none", or a comma list of offsets
 * and offset ranges ("0,2,8-15"). Up to 16 ranges, in order (the first match decides). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msr_explain.h"

static int parse_bits(const char *s, uint8_t *bm, uint32_t nmsrs)
{
    if (!strcmp(s, "all")) {
        for (uint32_t i = 0; i < nmsrs; i++)
            bm[i / 8] |= (uint8_t)(1u << (i % 8));
        return 0;
    }
    if (!strcmp(s, "none"))
        return 0;
    char *dup = strdup(s), *save = NULL;
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        unsigned long lo = strtoul(tok, &end, 0), hi = lo;
        if (*end == '-')
            hi = strtoul(end + 1, &end, 0);
        if (*end || hi < lo || hi >= nmsrs) {
            free(dup);
            return -1;
        }
        for (unsigned long i = lo; i <= hi; i++)
            bm[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    free(dup);
    return 0;
}

int explain_load_filter(const char *path, struct explain_filter *out, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    memset(out, 0, sizeof(*out));
    char line[512];
    int lineno = 0;
    unsigned n = 0;
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char kw[16] = "", a[16] = "", bits[400] = "";
        unsigned long base = 0, nmsrs = 0;
        int got = sscanf(line, "%15s %15s %li %li %399s", kw, a, (long *)&base, (long *)&nmsrs, bits);
        if (got <= 0)
            continue;
        if (!strcmp(kw, "default") && got >= 2) {
            if (!strcmp(a, "deny"))
                out->f.flags = KVM_MSR_FILTER_DEFAULT_DENY;
            else if (!strcmp(a, "allow"))
                out->f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
            else
                goto bad;
            continue;
        }
        if (strcmp(kw, "range") || got != 5 || n >= KVM_MSR_FILTER_MAX_RANGES || nmsrs > 0x600 * 8)
            goto bad;
        uint32_t flags = !strcmp(a, "read") ? KVM_MSR_FILTER_READ
                       : !strcmp(a, "write") ? KVM_MSR_FILTER_WRITE
                       : !strcmp(a, "rw") ? (KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE) : 0;
        if (!flags || parse_bits(bits, out->bitmaps[n], (uint32_t)nmsrs))
            goto bad;
        out->f.ranges[n] = (struct kvm_msr_filter_range){
            .flags = flags, .nmsrs = (uint32_t)nmsrs, .base = (uint32_t)base, .bitmap = out->bitmaps[n]};
        n++;
    }
    fclose(fp);
    return 0;
bad:
    snprintf(err, errlen, "%s:%d: cannot parse: %s", path, lineno, line);
    fclose(fp);
    return -1;
}
