# An order's reference is a segment of its status URL, <base>/orders/<source_id>/<reference>,
# and every reference the intake accepts has a status URL that finds that very order: the
# Location header and the answer's status_url of POST /ordersync/orders, fetched as given,
# answer 200 with the same reference, whatever URL-special characters it holds (space, ?, #,
# %, an encoded slash as text, +, ;, non-ASCII, leading dots). A reference that cannot be
# one segment ('/', '\', '.', '..', and so x/../WEB-1001 or ../../evil) is 422 format.
use strict;
use warnings;
use utf8;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use lib 't/lib';
use OSTest;

my $JSON = JSON::PP->new->canonical->utf8;
my $tag = "R$$";

my @good = (
    "$tag with spaces", "$tag?query=1", "$tag#fragment", "${tag}100%", "${tag}%2F1001",
    "${tag}%252F", "$tag+plus", "$tag;param", "$tag&x=y", "Bestellung-ÄÖÜ-中文-$tag",
    ".hidden-$tag", "...", "$tag..", "..$tag", "$tag:colon", "$tag~tilde", "${tag}'quote\"",
    " $tag-lead-space", "$tag\@at",
);
my @bad = (
    ['/', "must not contain '/'"],
    ["$tag/1", "must not contain '/'"],
    ["x/../$tag", "must not contain '/'"],
    ['../../../../evil', "must not contain '/'"],
    ['.', "must not be '.' or '..'"],
    ['..', "must not be '.' or '..'"],
    ["a\\..\\$tag", "must not contain '\\'"],
);

plan tests => 7 * @good + 2 * @bad;
binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);

my @auth = (Authorization => 'Bearer ' . key('demo'));

sub get_status {
    my $url = shift;
    my $res = req('GET', $url, [@auth]);
    my $d = eval { $JSON->decode($res->content) } || {};
    return ($res, $d);
}

for my $ref (@good) {
    my $body = $JSON->encode(order_payload(reference => $ref));
    my $res = json_req('POST', '/orders', $body, 'demo');
    ok($res->code == 202 || $res->code == 200, "'$ref' is accepted") or diag($res->content);
    my $posted = eval { $JSON->decode($res->content) } || {};
    is($posted->{reference}, $ref, "'$ref': the answer names it");
    my $loc = $res->header('Location') // '';
    is($posted->{status_url}, $loc, "'$ref': status_url is the Location");
    my ($st, $d) = get_status($loc);
    is($st->code, 200, "'$ref': GET on the Location ($loc) finds it") or diag($st->content);
    is($d->{reference}, $ref, "'$ref': the Location's order is that reference");
    is($d->{order} && $d->{order}{reference}, $ref, "'$ref': and so is its stored order");
    ($st, $d) = get_status($posted->{status_url} // '/none');
    ok($st->code == 200 && ($d->{reference} // '') eq $ref, "'$ref': GET on status_url finds it");
}

for my $c (@bad) {
    my ($ref, $msg) = @$c;
    my $res = json_req('POST', '/orders', $JSON->encode(order_payload(reference => $ref)), 'demo');
    my $d = problem_ok($res, 422, 'invalid-order') || {};
    my ($e) = grep { $_->{path} eq '$.reference' } @{ $d->{errors} || [] };
    is($e && $e->{rule}, 'format', "'$ref': 422, rule format at \$.reference");
    like($e ? $e->{message} : '', qr/^reference \Q$msg\E \(the order's status URL is <base>\/orders\/<source_id>\/<reference>/,
         "'$ref': the message names the rule");
}
