/* abi/: SOFTKVM_REPORT=path appends one line per VM and vCPU softkvm creates, so a test (or
 * a user) can prove that a program's /dev/kvm was served by softkvm and not by the host's
 * KVM module. Off unless the variable is set. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "abi/abi_internal.h"

void abi_report(const char *fmt, ...)
{
    const char *path = getenv("SOFTKVM_REPORT");
    if (!path || !*path)
        return;
    char line[256];
    int n = snprintf(line, sizeof line, "softkvm[%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)!write(fd, line, (size_t)n); /* O_APPEND: one write per line keeps lines whole */
    close(fd);
}
