# UTF-16 surrogate escapes in the JSON text of POST /ordersync/orders: a pair is one
# character (kept), a half of a pair on its own is 400 malformed-json naming the escape,
# with the byte offset, line and column of its backslash, in a value and in a key alike
# (before, a lone high surrogate was silently turned into '?' or merged with the escape
# after it, and a lone low one was reported as invalid UTF-8).
use strict;
use warnings;
use utf8;
use Apache::Test qw(-withtestmore);
use Test::More;
use lib 't/lib';
use OSTest;
use JSON::PP ();

my $JSON = JSON::PP->new->canonical->utf8;

my $tag = "SUR$$";
my $n = 0;

# the body text of a valid order whose shipping_company is the raw JSON string text $s
sub body_with {
    my ($s, $ref) = @_;
    my $p = order_payload(reference => $ref, shipping_company => 'PLACEHOLDER');
    my $body = $JSON->encode($p);
    $body =~ s/"PLACEHOLDER"/"$s"/ or die 'no placeholder';
    return $body;
}

my @bad = (
    # [raw string text, the escape, which half, what]
    ['\\uD800', '\\uD800', 'high surrogate must be followed by a low one', 'a lone high surrogate'],
    ['A\\uD800\\u0041', '\\uD800', 'high surrogate', 'a high surrogate before \\u0041'],
    ['\\uDBFF\\u0000', '\\uDBFF', 'high surrogate', 'a high surrogate before \\u0000'],
    ['\\uDC00', '\\uDC00', 'low surrogate must follow a high one', 'a lone low surrogate'],
    ['\\ud800\\ud800\\udc00', '\\ud800', 'high surrogate', 'two high surrogates'],
);

plan tests => 6 * @bad + 2 + 5;

for my $c (@bad) {
    my ($s, $esc, $kind, $what) = @$c;
    my $body = body_with($s, "$tag-" . ++$n);
    my $want = index($body, $esc);
    my $res = json_req('POST', '/orders', $body, 'demo');
    my $d = problem_ok($res, 400, 'malformed-json') || {};
    ok(%$d, "$what: 400 malformed-json");
    is($d->{offset}, $want, "$what: offset of the escape ($want)");
    is($d->{line}, 1, "$what: line 1");
    is($d->{column}, $want + 1, "$what: column");
    like($d->{detail} // '', qr/lone UTF-16 surrogate escape \Q$esc\E \(a $kind/,
         "$what: the detail names the escape");
    like($d->{detail} // '', qr/at byte $want \(line 1, column ${\($want + 1)}\)/,
         "$what: the detail gives the position");
}

# in a key: the order's passthrough options
{
    my $p = order_payload(reference => "$tag-K", options => { PLACEHOLDER => 1 });
    my $body = $JSON->encode($p);
    $body =~ s/"PLACEHOLDER"/"k\\uD800\\u0041"/ or die;
    my $want = index($body, '\\uD800');
    my $d = problem_ok(json_req('POST', '/orders', $body, 'demo'), 400, 'malformed-json') || {};
    is($d->{offset}, $want, 'a high surrogate before \\u0041 in a key: 400 at its offset');
    like($d->{detail} // '', qr/lone UTF-16 surrogate escape \\uD800/, 'and named');
}

# a pair is one character, kept as it was sent
{
    my $ref = "$tag-PAIR";
    my $res = json_req('POST', '/orders', body_with('Shop \\uD83D\\uDE00', $ref), 'demo');
    is($res->code, 202, 'a surrogate pair is accepted') or diag($res->content);
    $res = json_req('GET', "/orders/demo/$ref", undef, 'demo');
    is($res->code, 200, 'its order is found');
    my $d = eval { $JSON->decode($res->content) } || {};
    is($d->{order}{shipping_company}, "Shop \x{1F600}", 'and holds U+1F600');
    # an escaped backslash before "uD800" is text, not an escape
    $res = json_req('POST', '/orders', body_with('C:\\\\uD800', "$tag-BS"), 'demo');
    is($res->code, 202, 'an escaped backslash followed by uD800 is plain text');
    $d = eval { $JSON->decode(json_req('GET', "/orders/demo/$tag-BS", undef, 'demo')->content) } || {};
    is($d->{order}{shipping_company}, 'C:\\uD800', 'kept as sent');
}
