# After shipment an order can no longer change: the same content is still a replay (200),
# changed content is refused with 409 and stores nothing. Shipments come with the feedback
# flow; here the test marks the order shipped in the store directly, as that flow will.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use lib 't/lib';
use OSTest;

plan tests => 7;

my $ref = "shipped-$$";
my $pg = ($ENV{OS_TEST_LABEL} // '') eq 'pg';

sub mark_shipped {
    my $sql = "UPDATE os_orders SET shipment_state = 'shipped' "
            . "WHERE source_id = 'demo' AND reference = '$ref'";
    my @cmd = $pg
        ? ('psql', '-q', '-h', $ENV{OS_PG_SOCK}, '-p', $ENV{OS_PG_PORT}, '-U', 'postgres',
           'ordersync', '-c', $sql)
        : ('sqlite3', '-cmd', '.timeout 5000', Apache::Test::vars()->{t_logs} . '/ordersync.db', $sql);
    return system(@cmd) == 0;
}

my $order = order_payload(reference => $ref);
my $res = json_req('POST', '/orders', $order, 'demo');
is($res->code, 202, 'a new order: 202');
ok(mark_shipped(), 'the order is marked shipped in the store');

$res = json_req('POST', '/orders', $order, 'demo');
is($res->code, 200, 'the same content after shipment: still a replay (200)');
is($res->header('Idempotent-Replayed'), 'true', '... marked replayed');

$res = json_req('POST', '/orders', order_payload(reference => $ref, shipping_city => 'Utrecht'), 'demo');
my $d = problem_ok($res, 409, 'already-shipped');
ok($d, 'changed content after shipment: 409 already-shipped');
like($d ? $d->{detail} : '', qr/\Q$ref\E.*shipped/, 'the detail names the order');

my $o = decode(json_req('GET', "/orders/demo/$ref", undef, 'demo')) || {};
is_deeply([ $o->{latest_version}, $o->{order}{shipping_city}, $o->{states}{shipment}{state} ],
          [ 1, 'Amsterdam', 'shipped' ], 'nothing was stored: still version 1, still Amsterdam');
