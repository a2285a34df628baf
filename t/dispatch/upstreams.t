# Where and how the dispatcher delivers: Clougistic over HTTPS (HTTP/2 where offered, the
# certificate checked against OrderSyncClougisticCAFile, never delivered to a server the CA
# did not sign), a source with its own entity and key, and an order that keeps failing
# going dead at the end of its horizon, while time spent paused does not count.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use HTTP::Tiny ();
use Time::HiRes ();
use lib 't/lib';
use OSTest;

# what is tested here does not depend on the MPM; kill.t runs under each
plan skip_all => 'the delivery policy: under the event MPM (and make test-pg)'
    if ($ENV{OS_TEST_MPM} // 'event') ne 'event';
plan tests => 22;

OSTest::expect_error_log('ordersync: clougistic(:\S+)? paused', 'AH01630: client denied by server configuration: \S+/DENIED/replay');
my $v = Apache::Test::vars();
my $ca = "$v->{t_logs}/upstreams-ca";
my $other_ca = "$v->{t_logs}/upstreams-other-ca";
for ($ca, $other_ca) {
    system("bash $v->{top_dir}/t/sim/make-ca.sh $_ >/dev/null") == 0 or die "make-ca.sh failed";
}
my ($key1, $key2) = map { join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 32 } 1 .. 2;
my $sim = OSTest::start_sim(name => 'upstreams-sim', entities => "1:$key1,2:$key2",
    args => ['--tls-port', '@FREE_PORT@', '--cert', "$ca/server.pem", '--key', "$ca/server.key",
             '--http2']);
my $tls_port = $sim->{args}[1];
my $J = JSON::PP->new->utf8->canonical;
my $http = HTTP::Tiny->new(timeout => 10);

# An instance delivering over HTTPS to that simulator; `extra` adds configuration.
sub instance_with {
    my ($name, $ca_file, $extra) = @_;
    my $var = OSTest::new_instance($name, '');
    mkdir "$var/keys";
    for (['clougistic.key', $key1], ['shop2-cg.key', $key2], ['shop2.key', "shop2-intake-key-$$-0123456789"]) {
        open my $fh, '>', "$var/keys/$_->[0]" or die $!;
        print $fh "$_->[1]\n";
        close $fh;
    }
    open my $fh, '>', "$var/conf/local.conf" or die $!;
    print $fh OSTest::own_store($name) . "OrderSyncClougisticURL https://127.0.0.1:$tls_port\n"
        . "OrderSyncClougisticCAFile $ca_file\nOrderSyncClougisticTimeout 1s 2s\n"
        . "OrderSyncSource shop2 key=file:$var/keys/shop2.key prefix=S2- entity=2 "
        . "clougistic_key=file:$var/keys/shop2-cg.key\n" . $extra;
    close $fh;
    my ($rc, $out) = OSTest::start_instance($var);
    is($rc, 0, "$name starts") or diag($out);
    return ($var, JSON::PP::decode_json(OSTest::read_file("$var/instance.json")));
}
sub post {
    my ($info, $ref, $key, %over) = @_;
    return $http->post("$info->{base_url}/orders", { headers => { Authorization => "Bearer $key",
        'Content-Type' => 'application/json' },
        content => $J->encode(order_payload(reference => $ref, %over)) })->{status};
}
sub status {
    my ($info, $src, $ref, $key) = @_;
    my $res = $http->get("$info->{base_url}/orders/$src/$ref", { headers => { Authorization => "Bearer $key" } });
    return $res->{status} == 200 ? $J->decode($res->{content}) : {};
}
sub simcall { return OSTest::sim_call($sim->{url}, @_) }
sub wait_for { return OSTest::wait_until(@_) }
sub state_of { return (status(@_)->{states}{delivery}{state} // '') }

# --- HTTPS, HTTP/2, the CA file; a source's own entity -------------------------------------
my ($var, $info) = instance_with('upstreams-instance', "$ca/ca.pem",
    "OrderSyncRetry 100ms 300ms 3s\nOrderSyncUpstreamPause 1000 500ms\nOrderSyncClougisticHTTP2 on\n");
my $demo = $info->{source}{key};
my $shop2 = "shop2-intake-key-$$-0123456789";
my @refs = map { "TLS-$$-$_" } 1 .. 30;
post($info, $_, $demo) for @refs;
ok(wait_for(sub { !grep { state_of($info, 'demo', $_, $demo) ne 'delivered' } @refs }, 10),
   'thirty orders are delivered over HTTPS, the certificate checked against the CA file');
my @calls = @{ simcall('GET', '/_sim/enqueued') || [] };
my %ver = map { $_->{http_version} => 1 } @calls;
is(join(',', sort keys %ver), '2.0', 'over HTTP/2, which the server offers');
my %conns = map { $_->{conn} => 1 } @calls;
cmp_ok(scalar(keys %conns), '<=', 2, 'multiplexed on ' . scalar(keys %conns) . ' connection(s) for '
       . scalar(@calls) . ' calls');
ok(!grep({ !$_->{access_key_ok} || $_->{entity_id} ne '1' } @calls),
   "the hub's orders went to entity 1 with its key");
is(post($info, "S2-$$", $shop2, source_id => "shop2"), 202, 'an order of the source with its own entity is accepted');
ok(wait_for(sub { state_of($info, 'shop2', "S2-$$", $shop2) eq 'delivered' }, 5), 'and delivered');
my ($c2) = grep { $_->{reference} eq "S2-S2-$$" } @{ simcall('GET', '/_sim/enqueued') || [] };
ok($c2 && $c2->{entity_id} eq '2' && $c2->{access_key_ok}, "to its own entity (2) with its own key");

# --- an order that keeps failing goes dead at its horizon (3 s here) ---------------------------
simcall('PUT', '/_sim/faults', { status => 503 });
my $h = "HZ-$$";
post($info, $h, $demo);
ok(wait_for(sub { state_of($info, 'demo', $h, $demo) eq 'dead' }, 8),
   'an order answered 503 on every try goes dead after its horizon');
my $s = status($info, 'demo', $h, $demo);
like($s->{states}{delivery}{cause} // '', qr/deadline/, 'the cause says it was tried until its deadline');
cmp_ok($s->{jobs}[0]{attempts}, '>', 3, "after $s->{jobs}[0]{attempts} tries");
simcall('DELETE', '/_sim/faults');

# --- time paused does not count: paused for 5 s, longer than the horizon ------------------------
simcall('PUT', '/_sim/faults', { status => 401, for_s => 5 });
my $p = "PZ-$$";
post($info, $p, $demo);
ok(wait_for(sub { (status($info, 'demo', $p, $demo)->{upstream}{state} // '') eq 'paused' }, 3),
   'credentials refused: paused');
post($info, "S2-PZ-$$", $shop2, source_id => 'shop2');
ok(wait_for(sub { my $u = status($info, 'shop2', "S2-PZ-$$", $shop2)->{upstream} || {};
                  ($u->{state} // '') eq 'paused' && ($u->{name} // '') eq 'clougistic:shop2' }, 4),
   "the source with its own entity pauses on its own, and its orders show that upstream");
like(status($info, 'shop2', "S2-PZ-$$", $shop2)->{upstream}{cause} // '', qr/401/, 'with its cause');
ok(wait_for(sub { state_of($info, 'demo', $p, $demo) eq 'delivered' }, 10),
   'paused longer than the horizon, the order is still delivered once Clougistic accepts again');
ok(wait_for(sub { state_of($info, 'shop2', "S2-PZ-$$", $shop2) eq 'delivered' }, 5),
   "and so is the other source's");
OSTest::instance($var, 'stop');

# --- a server the CA did not sign: nothing is delivered ------------------------------------------
simcall('DELETE', '/_sim/state');
my ($var2, $info2) = instance_with('upstreams-wrong-ca', "$other_ca/ca.pem",
    "OrderSyncRetry 200ms 500ms 60s\n"
    . "<Location /ordersync/admin>\n  OrderSyncAdminAuth apache\n  Require ip 127.0.0.1\n</Location>\n"
    . "<Location /ordersync/admin/orders/demo/DENIED>\n  Require all denied\n</Location>\n");
my $w = "WCA-$$";
post($info2, $w, $info2->{source}{key});
ok(wait_for(sub { grep { $_->{kind} eq 'attempt' } @{ status($info2, 'demo', $w, $info2->{source}{key})->{events} || [] } }, 5),
   'a delivery to a certificate the CA file does not vouch for fails');
my ($ev) = grep { $_->{kind} eq 'attempt' } @{ status($info2, 'demo', $w, $info2->{source}{key})->{events} };
like($ev->{detail} // '', qr/SSL|certificate/i, 'with the TLS error as its event');
is(scalar(@{ simcall('GET', '/_sim/enqueued') || [] }), 0, 'and nothing reached the server');

# --- OrderSyncAdminAuth apache: Apache's own rules decide, not the admin key -------------------
my $res = $http->post("$info2->{base_url}/admin/orders/demo/$w/replay");
is($res->{status}, 409, "with OrderSyncAdminAuth apache, Require ip lets the admin in without "
   . "the key (the order is not dead: 409)") or diag($res->{content});
$res = $http->post("$info2->{base_url}/admin/orders/demo/DENIED/replay",
                   { headers => { Authorization => "Bearer $info2->{admin_key}" } });
is($res->{status}, 403, 'and where Apache denies, the admin key does not help: 403');
OSTest::instance($var2, 'stop');
OSTest::stop_sim($sim);
