# Every problem document is valid UTF-8 JSON, whatever bytes the request held: "instance"
# is the path as it was sent (still percent-encoded, a URI reference), and a detail that
# quotes the request's bytes (a path segment, a header, a field) carries U+FFFD for bytes
# that are not UTF-8. Each answer below is decoded strictly (invalid UTF-8 dies).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use IO::Socket::INET ();
use lib 't/lib';
use OSTest;

plan tests => 21;

my $STRICT = JSON::PP->new->utf8;

# the answer's status and its body decoded strictly (undef when it is not valid UTF-8 JSON)
sub strict_ok {
    my ($res, $status, $slug, $what) = @_;
    my $d = eval { $STRICT->decode($res->content) };
    ok($d, "$what: the problem is valid UTF-8 JSON") or diag($@ // '', ' ', $res->content);
    ok($res->code == $status && ($d->{type} // '') eq "urn:ordersync:problem:$slug",
       "$what: $status $slug") or diag($res->code . ' ' . $res->content);
    return $d || {};
}

my $res = req('GET', hub_url('/%ff'));
my $d = strict_ok($res, 404, 'not-found', 'GET /ordersync/%ff');
is(lc($d->{instance} // ''), '/ordersync/%ff', 'instance is the path as sent, percent-encoded');
like($d->{detail} // '', qr/\x{FFFD}/, 'the detail shows the byte as U+FFFD');

$res = req('GET', hub_url('/orders/%ff/%fe'), [Authorization => 'Bearer ' . key('demo')]);
$d = strict_ok($res, 403, 'wrong-source', 'GET /ordersync/orders/%ff/%fe');
is(lc($d->{instance} // ''), '/ordersync/orders/%ff/%fe', 'instance is the path as sent');

$res = req('GET', hub_url('/orders/demo/%fe%ff%c3'), [Authorization => 'Bearer ' . key('demo')]);
strict_ok($res, 404, 'order-not-found', 'GET /ordersync/orders/demo/%fe%ff%c3');

$res = req('POST', hub_url('/orders/%ff/%fe'), [Authorization => 'Bearer ' . key('demo')]);
strict_ok($res, 405, 'method-not-allowed', 'POST /ordersync/orders/%ff/%fe');

$res = req('POST', hub_url('/orders'),
           [Authorization => 'Bearer ' . key('demo'), 'Content-Type' => "application/\xff\xfe"],
           '{}');
strict_ok($res, 415, 'unsupported-media-type', 'a Content-Type with bytes 0xff 0xfe');

$res = req('POST', hub_url('/api/v1/order/enqueue'), ['Content-Type' => "text/\xff"], '{}');
strict_ok($res, 415, 'unsupported-media-type', 'the drop-in route, Content-Type with 0xff');

# a too long reference of two-byte characters: the message quotes what it may of it
$res = json_req('POST', '/orders',
                $STRICT->encode(order_payload(reference => "\x{e9}" x 700,
                                              shipping_city => "\x{e9}" x 1500)), 'demo');
strict_ok($res, 422, 'invalid-order', 'too long fields of two-byte characters');

# a raw byte 0xff in the request line, not percent-encoded
{
    my $s = IO::Socket::INET->new(PeerAddr => Apache::TestRequest::hostport(), Timeout => 5)
        or die $!;
    print $s "GET /ordersync/x\xffy HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $resp = <$s> // '';
    my ($status) = $resp =~ m{^HTTP/1\.\d (\d+)};
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    if (($head // '') =~ m{^Content-Type: application/problem\+json}mi) {
        my $p = eval { $STRICT->decode($body) };
        ok($p, 'a raw 0xff in the path: the problem is valid UTF-8 JSON') or diag($body);
        ok(($p->{instance} // '') eq '/ordersync/x%FFy', 'instance percent-encodes the raw byte')
            or diag($p->{instance});
    }
    else {
        # httpd itself refused the request line before the hub saw it
        ok(($status // 0) == 400, "a raw 0xff in the path: refused by httpd ($status)");
        ok(1, 'no problem document to check');
    }
}

$res = json_req('GET', '/orders/demo/nothing-here', undef, 'demo');
strict_ok($res, 404, 'order-not-found', 'an ordinary request afterwards');
