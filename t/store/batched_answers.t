# Orders arriving at once on many connections (and so in several server processes) are
# committed in batches by the writers, which hand each request the answer for its own order.
# Every client must get the answer for its own order: 202, the id the store gave that order,
# version 1; and every order must be stored with its own content.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Test::More;
use JSON::PP ();
use HTTP::Tiny ();
use POSIX ();
use lib 't/lib';
use OSTest;

my $clients = 8;
my $per_client = 25;
plan tests => 5;

my $tag = "SC$$";

# each client posts its orders back to back
my @lines = OSTest::parallel_posts($clients, $per_client, sub {
    my ($c, $i) = @_;
    return ("$tag-$c-$i", order_payload(reference => "$tag-$c-$i", shipping_city => "City $c $i"));
});

is(scalar @lines, $clients * $per_client, "$clients clients x $per_client orders: every one answered");
my @bad = grep { my ($ref, $code, $aref, $id, $v) = split ' '; $code != 202 || $aref ne $ref || $v ne '1' } @lines;
is(scalar @bad, 0, 'each answer is 202 for the order posted, version 1') or diag(explain([@bad[0 .. ($#bad < 4 ? $#bad : 4)]]));
my %ids;
$ids{ (split ' ', $_)[3] }++ for @lines;
is(scalar(keys %ids), scalar @lines, 'every order got an id of its own');

# the store agrees: the id answered is the order's id, and the content is that order's
my ($id_ok, $content_ok) = (0, 0);
for my $l (@lines) {
    my ($ref, $code, $aref, $id) = split ' ', $l;
    my $res = json_req('GET', "/orders/demo/$ref", undef, 'demo');
    my $o = decode($res) || {};
    $id_ok++ if ($o->{id} // '') eq $id;
    my ($c, $i) = $ref =~ /-(\d+)-(\d+)$/;
    $content_ok++ if ($o->{order}{shipping_city} // '') eq "City $c $i";
}
is($id_ok, scalar @lines, 'GET shows each order under the id its client was given');
is($content_ok, scalar @lines, 'and with its own content');
