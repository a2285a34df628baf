# OrderSyncMaxDepth at its maximum (126, <VirtualHost os_deep>): an order nested to the
# limit (the order object is level 1) is stored, and its status answer, which carries it one
# level deeper ({"order": ...}), is valid JSON holding the same order; one level more is
# answered 400 too-deep before anything is stored.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Test::More;
use JSON::PP ();
use lib 't/lib';
use OSTest;

plan tests => 16;

# the nesting is the point here: Perl's own recursion warnings are noise
$SIG{__WARN__} = sub { warn @_ unless $_[0] =~ /^Deep recursion/ };

my $MAX = 126;
my $tag = "DEEP$$";

# a value of `levels` nested containers: {"k":{"k":...1}} or [[...1]]
sub nested {
    my ($levels, $arrays) = @_;
    my $v = 1;
    $v = $arrays ? [$v] : { k => $v } for 1 .. $levels;
    return $v;
}

# how many containers deep a decoded value goes
sub depth_of {
    my $v = shift;
    return 0 unless ref $v;
    my $max = 0;
    for my $m (ref $v eq 'HASH' ? values %$v : @$v) {
        my $d = depth_of($m);
        $max = $d if $d > $max;
    }
    return 1 + $max;
}

my $json = JSON::PP->new->canonical->max_depth(1024);

sub on_deep {
    my $code = shift;
    Apache::TestRequest::module('os_deep');
    my @r = $code->();
    Apache::TestRequest::module('default');
    return wantarray ? @r : $r[0];
}

for my $arrays (0, 1) {
    my $what = $arrays ? 'arrays' : 'objects';
    my $ref = "$tag-" . ($arrays ? 'A' : 'O');
    # the order is level 1 and options level 2: options holds MAX - 1 levels
    my $order = order_payload(reference => $ref, options => { deep => nested($MAX - 2, $arrays) });
    is(depth_of($order), $MAX, "the $what order is $MAX levels deep");
    my $res = on_deep(sub { json_req('POST', '/orders', $json->encode($order), 'demo') });
    is($res->code, 202, "an order $MAX levels deep ($what) is accepted")
        or diag($res->content);
    my $loc = $res->header('Location') // '';
    my $st = on_deep(sub { req('GET', $loc, [Authorization => 'Bearer ' . key('demo')]) });
    is($st->code, 200, "its status answer is found ($what)");
    my $d = eval { $json->decode($st->content) };
    ok($d && ref $d->{order} eq 'HASH', "the status answer is valid JSON ($what)")
        or diag(($@ || '') . substr($st->content, -200));
    is(depth_of($d && $d->{order}), $MAX, "the stored order is still $MAX levels deep ($what)");
    is_deeply($d && $d->{order}{options}, $order->{options},
              "the stored options are the ones sent ($what)");

    my $deeper = order_payload(reference => "$ref-X",
                               options => { deep => nested($MAX - 1, $arrays) });
    $res = on_deep(sub { json_req('POST', '/orders', $json->encode($deeper), 'demo') });
    my $p = problem_ok($res, 400, 'too-deep') || {};
    is($p->{max_depth}, $MAX, "one level more is too deep ($what), max_depth $MAX");
}

# the default hub (OrderSyncMaxDepth 32) is unchanged
my $res = json_req('POST', '/orders',
                   order_payload(reference => "$tag-D", options => { deep => nested(31) }), 'demo');
my $p = problem_ok($res, 400, 'too-deep') || {};
is($p->{max_depth}, 32, 'the default hub still refuses 33 levels');
$res = json_req('POST', '/orders',
                order_payload(reference => "$tag-E", options => { deep => nested(30) }), 'demo');
is($res->code, 202, 'and takes 32');
