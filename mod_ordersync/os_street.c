/* os_street.c: the one-line street address split (the rule is in os_street.h). */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "os_street.h"

typedef struct { apr_size_t start, end; } os_tok_t;

static int sep_token(const char *s, os_tok_t t)
{
    for (apr_size_t i = t.start; i < t.end; i++)
        if (s[i] != '-' && s[i] != '/')
            return 0;
    return 1;
}

static const char *trimmed(apr_pool_t *p, const char *s, apr_size_t start, apr_size_t end,
                           const char *strip_tail)
{
    while (start < end && apr_isspace(s[start]))
        start++;
    while (end > start && (apr_isspace(s[end - 1]) || (strip_tail && strchr(strip_tail, s[end - 1]))))
        end--;
    return apr_pstrmemdup(p, s + start, end - start);
}

/* The extension: what follows the house number's digits, minus one leading separator. */
static const char *extension(apr_pool_t *p, const char *s, apr_size_t start, apr_size_t end)
{
    const char *e = trimmed(p, s, start, end, NULL);
    if (*e == '-' || *e == '/')
        e = trimmed(p, e, 1, strlen(e), NULL);
    return *e ? e : NULL;
}

apr_status_t os_order_split_street(apr_pool_t *p, const char *full, const char **street,
                                   const char **number, const char **ext)
{
    apr_size_t len, i = 0, ntok = 0, nd;
    os_tok_t *tok;
    long k;

    *street = *number = *ext = NULL;
    if (!full)
        return APR_EINVAL;
    len = strlen(full);
    tok = apr_palloc(p, sizeof(*tok) * (len / 2 + 1));
    while (i < len) {
        while (i < len && apr_isspace(full[i]))
            i++;
        if (i == len)
            break;
        tok[ntok].start = i;
        while (i < len && !apr_isspace(full[i]))
            i++;
        tok[ntok++].end = i;
    }
    if (ntok == 0)
        return APR_EINVAL;

    for (k = (long)ntok - 1; k >= 1; k--) {
        if (!apr_isdigit(full[tok[k].start]))
            continue;
        if (sep_token(full, tok[k - 1]))
            continue;
        for (nd = 0; apr_isdigit(full[tok[k].start + nd]); nd++)
            ;
        *street = trimmed(p, full, 0, tok[k].start, ",");
        if (!**street)
            continue;
        *number = apr_pstrmemdup(p, full + tok[k].start, nd);
        *ext = extension(p, full, tok[k].start + nd, len);
        return APR_SUCCESS;
    }

    /* house number first, as in "450 Wallstreet" */
    if (apr_isdigit(full[tok[0].start]) && ntok > 1) {
        for (nd = 0; apr_isdigit(full[tok[0].start + nd]); nd++)
            ;
        *number = apr_pstrmemdup(p, full + tok[0].start, nd);
        *ext = extension(p, full, tok[0].start + nd, tok[0].end);
        *street = trimmed(p, full, tok[1].start, len, ",");
        if (**street)
            return APR_SUCCESS;
    }
    *street = *number = *ext = NULL;
    return APR_EINVAL;
}
