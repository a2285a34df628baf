# POST /ordersync/orders and GET of one order at the HTTP level, as a shop sees them:
# who may call (401 with WWW-Authenticate, both keys of a rotated pair, 403 for another
# source), what the body must be (415, 413 also when chunked, 400 malformed or too deep with
# where the error is), before any field rule applies.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use HTTP::Request ();
use JSON::PP ();
use lib 't/lib';
use OSTest;

plan tests => 42;

my $n = 0;
sub ref_ { return "auth-$$-" . ++$n }

# A crashed child shows as LWP's own 500 ("Internal response"); the server logs the signal.
# Announced only when it happened, so that the run's error-log check names the real failure
# (a failing test); the crash itself also fails the run through the error-log check.
sub crashed {
    my $res = shift;
    return 0 unless ($res->header('Client-Warning') // '') eq 'Internal response';
    diag('the server closed the connection without an answer (child crashed?): '
         . $res->status_line);
    return 1;
}

sub post { my ($body, $key, %h) = @_; return json_req('POST', '/orders', $body, $key, %h) }

# ---------------------------------------------------------------- 401

my $res = post(order_payload(reference => ref_()), undef);
ok(problem_ok($res, 401, 'unauthorized'), 'no Authorization: 401 unauthorized problem');
is($res->header('WWW-Authenticate'), 'Bearer realm="ordersync"',
   'no key: WWW-Authenticate names the Bearer scheme and realm, no error');

$res = req('POST', hub_url('/orders'),
           [Authorization => 'Bearer not-a-key-of-anyone', 'Content-Type' => 'application/json'],
           '{}');
ok(problem_ok($res, 401, 'unauthorized'), 'unknown key: 401 unauthorized problem');
is($res->header('WWW-Authenticate'), 'Bearer realm="ordersync", error="invalid_token"',
   'unknown key: WWW-Authenticate says invalid_token');

$res = req('POST', hub_url('/orders'),
           [Authorization => 'Basic ' . 'ZGVtbzpkZW1v', 'Content-Type' => 'application/json'], '{}');
ok(problem_ok($res, 401, 'unauthorized'), 'Basic credentials instead of a Bearer key: 401');

$res = req('POST', hub_url('/orders'), ['Content-Type' => 'text/plain'], 'hello');
is($res->code, 401, 'no key and a non-JSON body: 401 first (who before what)');

# ---------------------------------------------------------------- both keys of demo

my $r1 = ref_();
$res = post(order_payload(reference => $r1), 'demo');
is($res->code, 202, "demo's first key is accepted: 202");
my $d = decode($res) || {};
is($d->{source_id}, 'demo', 'the order belongs to demo');

$res = post(order_payload(reference => $r1), 'demo-next');
is($res->code, 200, "demo's second key (rotation) sees the same order: replay 200");
is((decode($res) || {})->{id}, $d->{id}, 'same order id with either key');

$res = post(order_payload(reference => ref_()), 'demo-next');
is($res->code, 202, "a new order with demo's second key: 202");

# ---------------------------------------------------------------- 415

$res = post(JSON::PP->new->encode(order_payload(reference => ref_())), 'demo',
            'Content-Type' => 'application/json; charset=utf-8');
is($res->code, 202, 'Content-Type application/json; charset=utf-8 is accepted');

{

    $res = req('POST', hub_url('/orders'),
               [Authorization => 'Bearer ' . key('demo'), 'Content-Type' => 'text/plain'],
               JSON::PP->new->encode(order_payload(reference => ref_())));
    crashed($res);
    ok(problem_ok($res, 415, 'unsupported-media-type'), 'Content-Type text/plain: 415');

    $res = req('POST', hub_url('/orders'), [Authorization => 'Bearer ' . key('demo')],
               JSON::PP->new->encode(order_payload(reference => ref_())));
    crashed($res);
    $d = problem_ok($res, 415, 'unsupported-media-type');
    ok($d, 'no Content-Type: 415');
    like($d->{detail} // '', qr/application\/json/, '415 detail says what to send');

    # ---------------------------------------------------------------- 413

    my $big = '{"pad":"' . ('x' x 70000) . '"}';
    $res = post($big, 'demo');
    crashed($res);
    $d = problem_ok($res, 413, 'body-too-large');
    ok($d, '70 kB with Content-Length over OrderSyncMaxBody 65536: 413');
    like($d->{detail} // '', qr/65536/, '413 detail names the limit');

    # chunked: LWP streams a CODE ref content without Content-Length
    my @chunks = ('{"pad":"', ('y' x 8192) x 9, '"}');
    my $req = HTTP::Request->new(POST => 'http://' . Apache::TestRequest::hostport()
                                         . hub_url('/orders'),
                                 [Authorization => 'Bearer ' . key('demo'),
                                  'Content-Type' => 'application/json'],
                                 sub { return shift @chunks });
    $res = Apache::TestRequest::user_agent()->request($req);
    crashed($res);
    ok(problem_ok($res, 413, 'body-too-large'), '74 kB chunked (no Content-Length): 413');

    # ---------------------------------------------------------------- 400 malformed

    $res = post(qq({"a":\n[1,}), 'demo');
    crashed($res);
    $d = problem_ok($res, 400, 'malformed-json') || {};
    ok(%$d, 'a syntax error: 400 malformed-json');
    ok(defined $d->{offset} && defined $d->{line} && defined $d->{column}
       && !grep({ !/^\d+$/ } @$d{qw(offset line column)}),
       'offset, line and column are integers');
    is($d->{line}, 2, 'the error is on line 2');
    ok(defined $d->{offset} && ($d->{offset} == 9 || $d->{offset} == 10),
       'the offset points at (or just after) the "}" at byte 9');
    is($d->{column}, defined $d->{offset} ? $d->{offset} - 6 + 1 : -1,
       'the column is counted from the start of line 2');
    like($d->{detail} // '', qr/\b$d->{offset}\b.*line 2.*column $d->{column}/,
         'the detail names byte, line and column') if defined $d->{offset};
    fail('the detail names byte, line and column') unless defined $d->{offset};

    # ---------------------------------------------------------------- 400 too deep

    my $deep = '{"options":' . ('[' x 33) . (']' x 33) . '}';
    $res = post($deep, 'demo');
    crashed($res);
    $d = problem_ok($res, 400, 'too-deep') || {};
    ok(%$d, '34 levels of nesting (max 32): 400 too-deep');
    is($d->{max_depth}, 32, 'too-deep names max_depth 32');
}

my $ok_depth = '{"options":' . ('[' x 30) . (']' x 30) . '}';
$res = post($ok_depth, 'demo');
crashed($res);
is($res->code, 422, '31 levels are within the depth limit: on to validation (422)');

# exactly at OrderSyncMaxBody is still accepted
my $json = JSON::PP->new->canonical->encode(order_payload(reference => ref_()));
$json .= ' ' x (65536 - length $json);
$res = post($json, 'demo');
is($res->code, 202, 'a body of exactly 65536 bytes is accepted (202)');

# ---------------------------------------------------------------- 403

$res = post(order_payload(reference => ref_(), source_id => 'mage2'), 'demo');
$d = problem_ok($res, 403, 'wrong-source');
ok($d, "demo's key with source_id mage2: 403 wrong-source");
like($d->{detail} // '', qr/mage2/, '403 detail names the source_id');
$res = post(order_payload(reference => ref_(), source_id => 'demo'), 'mage2');
ok(problem_ok($res, 403, 'wrong-source'), "mage2's key with source_id demo: 403");
is((decode(json_req('GET', "/orders/demo/$r1", undef, 'demo')) || {})->{latest_version}, 1,
   'the orders refused meanwhile changed nothing stored');

# ---------------------------------------------------------------- GET

$res = json_req('GET', "/orders/demo/$r1", undef, undef);
ok(problem_ok($res, 401, 'unauthorized'), 'GET without a key: 401');
is($res->header('WWW-Authenticate'), 'Bearer realm="ordersync"', 'GET 401 has WWW-Authenticate');
$res = req('GET', hub_url("/orders/demo/$r1"), [Authorization => 'Bearer wrong']);
ok(problem_ok($res, 401, 'unauthorized'), 'GET with an unknown key: 401');
is($res->header('WWW-Authenticate'), 'Bearer realm="ordersync", error="invalid_token"',
   'GET with an unknown key: invalid_token');
$res = json_req('GET', "/orders/demo/$r1", undef, 'mage2');
ok(problem_ok($res, 403, 'wrong-source'), "GET demo's order with mage2's key: 403");
$res = json_req('GET', "/orders/demo/no-such-$$", undef, 'demo');
$d = problem_ok($res, 404, 'order-not-found');
ok($d, 'GET an unknown reference: 404 order-not-found');
like($d->{detail} // '', qr/no-such-$$/, '404 detail names the reference');
$res = json_req('GET', "/orders/demo/$r1", undef, 'demo-next');
is($res->code, 200, "GET with demo's second key: 200");
is((decode($res) || {})->{reference}, $r1, 'it is the order asked for');

# ---------------------------------------------------------------- no body before auth
# A wrong key with "Expect: 100-continue" and a large body: the 401 comes at once, without
# "100 Continue" and without the server reading the body.
{
    require IO::Socket::INET;
    my ($host, $port) = split /:/, Apache::TestRequest::hostport();
    my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Timeout => 5) or die $!;
    print $s "POST " . hub_url('/orders') . " HTTP/1.1\r\nHost: $host\r\n"
           . "Authorization: Bearer not-a-key-of-anyone-123\r\nContent-Type: application/json\r\n"
           . "Content-Length: 50000000\r\nExpect: 100-continue\r\n\r\n";
    my $line = '';
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 5;
        $line = <$s> // '';
        alarm 0;
    };
    like($line, qr{^HTTP/1\.1 401}, 'a wrong key is answered 401 before any body is sent (no 100 Continue)')
        or diag("first line: $line");
    close $s;
}
