/* tap.h: a tiny Test Anything Protocol producer for the core's C unit tests (run by prove).
 * Header-only; each test binary includes it once. plan(n) is optional: without it the
 * "1..N" line is printed by done(), which exits non-zero when any test failed. */
#ifndef OS_TAP_H
#define OS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_planned = -1;
static int tap_run = 0;
static int tap_failed = 0;

static void plan(int n) __attribute__((unused));
static void plan(int n)
{
    tap_planned = n;
    printf("1..%d\n", n);
    fflush(stdout);
}

static int tap_vok(int cond, const char *file, int line, const char *fmt, va_list ap)
{
    tap_run++;
    printf("%sok %d - ", cond ? "" : "not ", tap_run);
    vprintf(fmt, ap);
    printf("\n");
    if (!cond) {
        tap_failed++;
        printf("#   Failed test at %s line %d\n", file, line);
    }
    fflush(stdout);
    return cond;
}

static int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = tap_vok(cond, file, line, fmt, ap);
    va_end(ap);
    return r;
}

static int tap_is_str(const char *got, const char *want, const char *file, int line,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int tap_is_str(const char *got, const char *want, const char *file, int line,
                      const char *fmt, ...)
{
    va_list ap;
    int cond = (got == NULL && want == NULL)
            || (got != NULL && want != NULL && strcmp(got, want) == 0);
    va_start(ap, fmt);
    tap_vok(cond, file, line, fmt, ap);
    va_end(ap);
    if (!cond) {
        printf("#          got: %s%s%s\n", got ? "'" : "", got ? got : "NULL", got ? "'" : "");
        printf("#     expected: %s%s%s\n", want ? "'" : "", want ? want : "NULL", want ? "'" : "");
    }
    return cond;
}

static int tap_is_int(long long got, long long want, const char *file, int line,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int tap_is_int(long long got, long long want, const char *file, int line,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_vok(got == want, file, line, fmt, ap);
    va_end(ap);
    if (got != want)
        printf("#          got: %lld\n#     expected: %lld\n", got, want);
    return got == want;
}

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

#define ok(cond, ...)          tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...) tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) tap_is_int((long long)(got), (long long)(want), __FILE__, __LINE__, __VA_ARGS__)

static void done(void) __attribute__((noreturn, unused));
static void done(void)
{
    if (tap_planned < 0)
        printf("1..%d\n", tap_run);
    else if (tap_planned != tap_run) {
        printf("# planned %d tests but ran %d\n", tap_planned, tap_run);
        fflush(stdout);
        exit(255);
    }
    if (tap_failed)
        printf("# failed %d of %d tests\n", tap_failed, tap_run);
    fflush(stdout);
    exit(tap_failed ? (tap_failed > 254 ? 254 : tap_failed) : 0);
}

#endif
