# The handler's contract before any flow: 404 for unknown paths, 405 with Allow for wrong
# methods, 501 for routes of the interface not built yet, all as problem+json.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET POST PUT HEAD);
use Test::More;
use lib 't/lib';
use OSTest;

plan tests => 27;

my $res = GET hub_url('/no/such/route');
my $d = problem_ok($res, 404, 'not-found');
ok($d, '404 for an unknown path, as problem+json');
like($d->{detail} // '', qr{/no/such/route}, '404 detail names the path');
is($d->{instance}, '/ordersync/no/such/route', 'instance is the request path');

# Apache's own 404 (text/html), not the hub's problem+json and not a failure of any kind
$res = GET('/ordersyncx/orders');
ok($res->code == 404 && ($res->header('Content-Type') // '') =~ m{^text/html},
   'a sibling path outside the <Location> is not the hub (Apache\'s own 404)')
    or diag($res->code . ' ' . ($res->header('Content-Type') // '-'));

$res = req('DELETE', hub_url('/orders'));
ok(problem_ok($res, 405, 'method-not-allowed'), 'DELETE /orders is 405');
is($res->header('Allow'), 'POST', 'Allow lists POST for /orders');

$res = PUT hub_url('/orders/demo/REF-1');
ok(problem_ok($res, 405, 'method-not-allowed'), 'PUT on an order is 405');
is($res->header('Allow'), 'GET, HEAD', 'Allow lists GET, HEAD for an order');

$res = GET hub_url('/webhooks/clougistic');
is($res->header('Allow'), 'POST', 'the webhook takes POST only');

for my $r (['POST', '/webhooks/clougistic'], ['GET', '/admin/'], ['GET', '/admin/orders'],
           ['GET', '/admin/orders/demo/R1'],
           ['POST', '/admin/replay'], ['POST', '/admin/pause'], ['POST', '/admin/resume'],
           ['GET', '/admin/metrics']) {
    my ($m, $p) = @$r;
    my $fn = \&{"Apache::TestRequest::$m"};
    ok(problem_ok($fn->(hub_url($p)), 501, 'not-implemented'), "$m $p answers 501 for now");
}

$res = HEAD hub_url('/admin/metrics');
is($res->code, 501, 'HEAD follows GET');
is($res->content, '', 'HEAD has no body');

$res = GET hub_url('/orders/demo');
ok(problem_ok($res, 404, 'not-found'), 'an order path with a missing segment is 404');

# --- the admin's replay: who may, and what it answers where nothing is dead ---------------
my $replay = '/admin/orders/demo/ROUTES-R1/replay';
$res = json_req('POST', $replay, undef, undef);
ok(problem_ok($res, 401, 'unauthorized'), 'replay without a key: 401');
like($res->header('WWW-Authenticate') // '', qr/^Bearer realm="ordersync-admin"/,
     'with the admin realm in WWW-Authenticate');
ok(problem_ok(json_req('POST', $replay, undef, 'demo'), 401, 'unauthorized'),
   "a source's key is not the admin key: 401");
ok(problem_ok(json_req('POST', $replay, undef, 'admin'), 404, 'order-not-found'),
   'the admin key, an order that does not exist: 404');
$res = json_req('POST', '/orders', order_payload(reference => 'ROUTES-R1'), 'demo');
ok($res->code == 202 || $res->code == 200, 'an order is accepted (this server delivers none)');
my $d = problem_ok(json_req('POST', $replay, undef, 'admin'), 409, 'not-dead');
ok($d, 'a delivery that is not dead is not replayed: 409');
like($d->{detail} // '', qr/queued/, 'the detail says what state it is in');
