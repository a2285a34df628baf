# The Clougistic simulator (t/sim/clougistic.js) keeps its contract: the Demand enqueue as
# the vendor documents it, the /_sim/ inspection routes, every fault, and HTTPS with a test CA.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use HTTP::Tiny ();
use IO::Socket::INET ();
use Time::HiRes ();
use lib 't/lib';
use OSTest;

my $v = Apache::Test::vars();
my $ca = "$v->{t_logs}/sim-ca";
system("bash $v->{top_dir}/t/sim/make-ca.sh $ca >/dev/null") == 0 or die "make-ca.sh failed";
my ($K1, $K2) = ('sim-key-one-0123456789', 'sim-key-two-0123456789');
my $sim = OSTest::start_sim(name => 'clougistic-sim-test', entities => "E1:$K1,E2:$K2",
    args => ['--tls-port', '@FREE_PORT@', '--cert', "$ca/server.pem", '--key', "$ca/server.key"]);
my $tls_port = $sim->{args}[1];
my $base = $sim->{url};
my $enq = "$base/api/v1/order/enqueue";
my $JSON = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 1);

sub call {    # (method, url, body string or ref) -> (status, decoded or undef, response)
    my ($m, $url, $body) = @_;
    $body = $JSON->encode($body) if ref $body;
    my $r = $http->request($m, $url, defined $body ? { content => $body,
        headers => { 'Content-Type' => 'application/json' } } : {});
    my $d = eval { JSON::PP::decode_json($r->{content}) };
    return ($r->{status}, $d, $r);
}
sub envelope {
    my (%o) = @_;
    my $p = order_payload(reference => 'S-1', source_id => 'webshop1', %{ $o{payload} || {} });
    return { access_key => $o{key} // $K1, entity_id => $o{entity} // 'E1', payload => $p };
}
sub faults { my ($st) = call('PUT', "$base/_sim/faults", shift); return $st }

# ---- enqueue ----
my ($st, $d) = call('POST', $enq, envelope());
is($st, 200, 'a valid envelope is accepted');
is_deeply([@$d{qw(reference entity_id)}], ['S-1', 'E1'], 'the answer is {id, reference, entity_id}');
my $id = $d->{id};
ok($id, "with the simulator's id ($id)");

($st, $d) = call('POST', $enq, envelope(key => 'no-such-key-000000000'));
is($st, 401, 'a wrong access key: 401');
($st, $d) = call('POST', $enq, envelope(key => $K2, entity => 'E1'));
is($st, 403, "another entity's key: 403");
is((call('POST', $enq, envelope(entity => 'E9')))[0], 403, 'an unknown entity: 403');
($st, $d) = call('POST', $enq, envelope(payload => { shipping_city => undef }));
is($st, 422, 'a missing required field: 422');
is($d->{field}, 'payload.shipping_city', 'naming the field');
($st, $d) = call('POST', $enq, envelope(payload => { type => 7 }));
is_deeply([$st, $d->{field}], [422, 'payload.type'], 'type outside 0/1: 422 naming payload.type');
($st, $d) = call('POST', $enq, envelope(payload => { reference => 'S-FULL', shipping_street => undef,
    shipping_housenumber => undef, shipping_street_full => 'Wallstreet 450' }));
is($st, 200, 'shipping_street_full stands in for street and house number');
($st, $d) = call('POST', $enq, envelope(payload => { shipping_housenumber => undef }));
is_deeply([$st, $d->{field}], [422, 'payload.shipping_housenumber'], 'without it the house number is required');
is((call('POST', $enq, '{"access_key": nope'))[0], 400, 'a body that is not JSON: 400');
is((call('GET', $enq))[0], 405, 'GET on enqueue: 405');
is((call('GET', "$base/nothing"))[0], 404, 'an unknown route: 404');

# upsert: the same reference keeps its id; raw text kept exactly
my $raw = '{"access_key":"' . $K1 . '","entity_id":"E1","payload":{"reference":"S-1","source_id":"webshop1",'
        . '"type":0,"currency":"EUR","shipping_firstname":"Ada","shipping_lastname":"L","shipping_street":"K",'
        . '"shipping_housenumber":"12","shipping_postcode":"1015","shipping_city":"A","shipping_country":"NL",'
        . '"cod_amount":1.10,"items":[{"sku":"X","qty":2,"unit_price":"50.00"}]}}';
($st, $d) = call('POST', $enq, $raw);
is_deeply([$st, $d->{id}], [200, $id], 'an update of the same reference keeps its id');
($st, $d) = call('POST', $enq, envelope(key => $K2, entity => 'E2'));
is($st, 200, 'the second entity with its own key');
isnt($d->{id}, $id, 'the same reference in another entity is another order');

my ($o) = (call('GET', "$base/_sim/orders?entity_id=E1"))[1];
is($o->{'S-1'}{versions}, 2, 'two accepted versions counted');
is($o->{'S-1'}{payload}{items}[0]{unit_price}, '50.00', 'the current payload is the newest');
my ($all) = (call('GET', "$base/_sim/orders"))[1];
ok($all->{'S-1@E1'} && $all->{'S-1@E2'} && $all->{'S-FULL'}, 'a reference in two entities is listed per entity');

my ($log) = (call('GET', "$base/_sim/enqueued"))[1];
is(scalar(@$log), 11, 'every enqueue call is logged');
is_deeply([map { $_->{seq} } @$log], [1 .. 11], 'in arrival order');
my ($last) = grep { $_->{raw} eq $raw } @$log;
ok($last && $last->{raw} =~ /"cod_amount":1\.10,/ && $last->{raw} =~ /"unit_price":"50\.00"/,
   'raw is the body exactly as received');
is_deeply([@{$last || {}}{qw(reference source_id entity_id access_key_ok status)}],
          ['S-1', 'webshop1', 'E1', JSON::PP::true, 200], 'with reference, source, entity, key check and status');
is($last->{body}{payload}{currency}, 'EUR', 'and the envelope parsed');
is_deeply([map { [$_->{status}, $_->{access_key_ok} ? 1 : 0] } @$log[1, 2]], [[401, 0], [403, 1]],
          'the refused calls with their status and key check');
my ($nonjson) = grep { $_->{status} == 400 } @$log;
ok($nonjson && !defined $nonjson->{body} && $nonjson->{raw} eq '{"access_key": nope', 'a non-JSON body: body null, raw kept');

# ---- stats and reset ----
is((call('DELETE', "$base/_sim/state"))[0], 200, 'DELETE /_sim/state');
my $fresh = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
$fresh->post($enq, { content => $JSON->encode(envelope()) }) for 1 .. 4;
my $stats = JSON::PP::decode_json($fresh->get("$base/_sim/stats")->{content});
is_deeply([@$stats{qw(requests connections enqueue_requests orders)}], [5, 1, 4, 1],
          'stats: 5 requests (the stats call too) on 1 kept-alive connection');

# ---- faults ----
is(faults({ status => 500, bogus => 1 }), 400, 'an unknown fault key: 400');
is(faults({ down => JSON::PP::true }), 400, 'down without for_s: 400');
is(faults({ status => 503, for_s => 1 }), 200, 'a 503 for one second');
my ($f) = (call('GET', "$base/_sim/faults"))[1];
is($f->[0]{status}, 503, 'GET /_sim/faults shows it');
is((call('POST', $enq, envelope(payload => { reference => 'F-1' })))[0], 503, 'answered 503');
Time::HiRes::sleep(1.2);
is((call('POST', $enq, envelope(payload => { reference => 'F-2' })))[0], 200, 'and lifted after for_s');
($o) = (call('GET', "$base/_sim/orders"))[1];
ok(!$o->{'F-1'} && $o->{'F-2'}, 'the faulted order was not stored');

faults({ status => 429, retry_after => 2 });
my $r;
($st, $d, $r) = call('POST', $enq, envelope());
is_deeply([$st, $r->{headers}{'retry-after'}], [429, '2'], '429 with Retry-After');

faults({ delay_ms => 700 });
my $t0 = Time::HiRes::time();
($st) = call('POST', $enq, envelope(payload => { reference => 'F-DELAY' }));
my $took = Time::HiRes::time() - $t0;
ok($st == 200 && $took >= 0.69, sprintf('delay_ms 700: answered 200 after %.2f s', $took));

$r = HTTP::Tiny->new(timeout => 0.3)->post($enq, { content => $JSON->encode(envelope(payload => { reference => 'F-LATE' })) });
is($r->{status}, 599, 'a client that gives up before the late answer');
($o) = (call('GET', "$base/_sim/orders"))[1];
ok($o->{'F-LATE'}, 'has still delivered the order: it is stored at once');

faults({ garbage => JSON::PP::true });
($st, $d, $r) = call('POST', $enq, envelope());
ok($st == 200 && !defined $d, 'garbage: 200 with a body that is not the documented JSON');

faults({ drop => JSON::PP::true });
my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$sim->{port}", Timeout => 5) or die $!;
my $body = $JSON->encode(envelope());
print $s "POST /api/v1/order/enqueue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       . "Content-Length: " . length($body) . "\r\n\r\n$body";
my $got = '';
1 while sysread($s, $got, 4096, length $got);
is($got, '', 'drop: the connection closes without an answer');
close $s;
($log) = (call('GET', "$base/_sim/enqueued"))[1];
is($log->[-1]{fault}, 'drop', 'the log says which fault answered');

faults({ status => 500, rate => 0.3 });
# 200 calls pipelined on one connection (one HTTP::Tiny POST waits ~40 ms for a delayed ACK)
my $one = "POST /api/v1/order/enqueue HTTP/1.1\r\nHost: x\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
$s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$sim->{port}", Timeout => 5) or die $!;
print $s $one x 199, $one =~ s/\r\n\r\n/\r\nConnection: close\r\n\r\n/r;
$got = '';
1 while sysread($s, $got, 65536, length $got);
my $n500 = () = $got =~ m{HTTP/1\.1 500 }g;
my $nall = () = $got =~ m{HTTP/1\.1 \d{3} }g;
is($nall, 200, '200 pipelined calls answered');
ok($n500 > 35 && $n500 < 85, "rate 0.3: $n500 of 200 calls answered 500");

is((call('DELETE', "$base/_sim/faults"))[0], 200, 'DELETE /_sim/faults');
is((call('POST', $enq, envelope()))[0], 200, 'and enqueue answers normally again');

is(faults({ down => JSON::PP::true, for_s => 1.5 }), 200, 'down for 1.5 s');
Time::HiRes::sleep(0.2);
my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$sim->{port}", Timeout => 2);
ok(!$c && ($!{ECONNREFUSED}), 'down: connections are refused') or diag("connect: $!");
Time::HiRes::sleep(1.6);
is((call('GET', "$base/_sim/stats"))[0], 200, 'and it is back after for_s');

# ---- HTTPS with the test CA ----
my $tls = HTTP::Tiny->new(timeout => 10, verify_SSL => 1, SSL_options => { SSL_ca_file => "$ca/ca.pem" });
$r = $tls->post("https://127.0.0.1:$tls_port/api/v1/order/enqueue",
    { content => $JSON->encode(envelope(payload => { reference => 'TLS-1' })) });
is($r->{status}, 200, 'HTTPS, verified against the test CA') or diag($r->{content});
($o) = (call('GET', "$base/_sim/orders"))[1];
ok($o->{'TLS-1'}, 'one state behind both listeners');
$r = HTTP::Tiny->new(timeout => 5, verify_SSL => 1)->get("https://127.0.0.1:$tls_port/_sim/stats");
is($r->{status}, 599, 'and refused by a client that does not trust the test CA');

is(OSTest::stop_sim($sim), 0, 'the simulator stops on TERM');
done_testing();
