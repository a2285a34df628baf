# The dispatcher against the Clougistic simulator, as an operator would see it: orders pushed
# to the hub arrive at Clougistic within moments, byte for byte inside the documented
# envelope, over reused connections; every failure Clougistic or the network produces ends
# with every order delivered (or dead where the answer was final, then replayed), no try
# burned while Clougistic as a whole is down or refuses our credentials.
# A separate instance (build/instance.sh) with its simulator on PORT+1, short retry times.
use strict;
use warnings;
use utf8;
use Encode ();
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
plan tests => 48;

OSTest::expect_error_log('ordersync: clougistic paused');
my $var = OSTest::new_instance('dispatch-instance', OSTest::own_store('dispatch') .
    "OrderSyncRetry 200ms 1s 60s\nOrderSyncUpstreamPause 8 1s\n"
    . "OrderSyncClougisticTimeout 1s 1500ms\nOrderSyncDispatchConcurrency 8\n");
my ($rc, $out) = OSTest::start_instance($var);
is($rc, 0, 'an instance with its Clougistic simulator starts') or diag($out);
my $info = JSON::PP::decode_json(OSTest::read_file("$var/instance.json"));
my $J = JSON::PP->new->utf8->canonical;
my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
my $base = $info->{base_url};
my $sim = $info->{clougistic_sim};
my %auth = (Authorization => "Bearer $info->{source}{key}");

sub post {
    my ($ref, %over) = @_;
    my $res = $http->post("$base/orders", { headers => { %auth, 'Content-Type' => 'application/json' },
        content => $J->encode(order_payload(reference => $ref, %over)) });
    return $res->{status};
}
sub status {
    my $res = $http->get("$base/orders/demo/$_[0]", { headers => \%auth });
    return $res->{status} == 200 ? $J->decode($res->{content}) : undef;
}
sub simcall { return OSTest::sim_call($sim, @_) }
sub wait_for { return OSTest::wait_until(@_) }
sub delivered { my $s = status($_[0]); return $s && $s->{states}{delivery}{state} eq 'delivered' }
sub wait_delivered { my ($secs, @r) = @_; return wait_for(sub { !grep { !delivered($_) } @r }, $secs) }
sub stored_body {
    my ($ref, $version) = @_;
    my $q = "SELECT body FROM os_order_versions v JOIN os_orders o ON o.id = v.order_id "
          . "WHERE o.source_id = 'demo' AND o.reference = '$ref' AND v.version = $version";
    my $b = ($ENV{OS_TEST_LABEL} // '') eq 'pg'
        ? `psql -qtA -h $ENV{OS_PG_SOCK} -p $ENV{OS_PG_PORT} -U postgres os_dispatch -c "$q"`
        : `sqlite3 -cmd '.timeout 5000' $var/store/ordersync.db "$q"`;
    chomp $b;
    return Encode::decode_utf8($b);
}
sub calls_for { my $r = "DEMO-$_[0]"; return grep { $_->{reference} eq $r } @{ simcall('GET', '/_sim/enqueued') || [] } }
sub events_of { my $s = status($_[0]) || {}; return @{ $s->{events} || [] } }

# --- every field arrives as accepted, within moments --------------------------------------
my @refs = map { "DSP-$$-A$_" } 1 .. 12;
my $t0 = Time::HiRes::time();
for my $i (0 .. $#refs) {
    post($refs[$i], shipping_firstname => "Zoë \"Q\" \\ Ånström ✓ $i",
         items => [ { sku => "SKU-$i", description => "Tulip \x{1F337} bulbs", qty => 2 + $i,
                      unit_price => '19.990' }, { sku => 'B', description => 'x', qty => 1,
                      unit_price => '0.10' } ]);
}
ok(wait_delivered(5, @refs), 'twelve pushed orders are delivered');
my $took = Time::HiRes::time() - $t0;
cmp_ok($took, '<', 3, sprintf('within moments of the push (%.2f s for all twelve)', $took));
my $head = '{"access_key":"' . $info->{clougistic_access_key} . '"'
         . ',"entity_id":' . $info->{clougistic_entity_id} . ',"payload":';
my (@wrong, @wrong_status);
for my $ref (@refs) {
    my ($call) = calls_for($ref);
    my $want = stored_body($ref, 1);
    $want =~ s/"reference":"\Q$ref\E"/"reference":"DEMO-$ref"/;
    push @wrong, $ref unless $call && $call->{raw} eq "$head$want}";
    my $s = status($ref);
    my $at_sim = (simcall('GET', '/_sim/orders') || {})->{"DEMO-$ref"} || {};
    push @wrong_status, $ref unless $s->{delivered_version} == 1 && defined $s->{clougistic_id}
        && $s->{clougistic_id} eq ($at_sim->{id} // '') && grep { $_->{kind} eq 'delivered' } @{ $s->{events} };
}
is("@wrong", '', 'Clougistic received each stored payload byte for byte in the documented '
   . 'envelope, the reference with its prefix, the key and entity from the configuration');
is("@wrong_status", '', "the status route shows delivered_version 1, Clougistic's id and a "
   . '"delivered" event');
my $s = status($refs[0]);
ok(!grep({ ($_->{detail} // '') =~ /\Q$info->{clougistic_access_key}\E/ } @{ $s->{events} })
   && $J->encode($s) !~ /\Q$info->{clougistic_access_key}\E/, 'the access key is nowhere in the status answer');
is($s->{upstream}{state}, 'active', 'the upstream is shown active');

# --- connections are reused ------------------------------------------------------------------
simcall('DELETE', '/_sim/state');
my @many = map { "DSP-$$-M$_" } 1 .. 120;
post($_) for @many;
ok(wait_delivered(20, @many), '120 more orders are delivered');
my @mcalls = @{ simcall('GET', '/_sim/enqueued') || [] };
my %mconns = map { $_->{conn} => 1 } @mcalls;
cmp_ok(scalar(keys %mconns), '<=', 10, 'over few connections: ' . scalar(keys %mconns)
       . ' for ' . scalar(@mcalls) . ' enqueue calls (8 at once at most)');
cmp_ok(scalar(@mcalls), '>=', 120, 'each order sent (at least) once');

# --- 30% of the answers are 500 --------------------------------------------------------------
simcall('PUT', '/_sim/faults', { status => 500, rate => 0.3, seed => 7 });
my @flaky = map { "DSP-$$-F$_" } 1 .. 40;
post($_) for @flaky;
ok(wait_delivered(30, @flaky), 'with 30% 500s every order is delivered in the end');
my @tried = grep { grep { $_->{kind} eq 'attempt' && $_->{detail} =~ /HTTP 500/ } events_of($_) } @flaky;
cmp_ok(scalar(@tried), '>', 0, scalar(@tried) . ' of them show a failed try (HTTP 500) among their events');
ok(!grep({ (status($_) || {})->{states}{delivery}{state} eq 'dead' } @flaky), 'none went dead');
simcall('DELETE', '/_sim/faults');

# --- 429 with Retry-After ---------------------------------------------------------------------
simcall('PUT', '/_sim/faults', { status => 429, retry_after => 2, for_s => 0.5 });
my $r429 = "DSP-$$-429";
post($r429);
ok(wait_delivered(6, $r429), '429 with Retry-After: delivered after it');
my @ev = events_of($r429);
my ($first) = grep { $_->{kind} eq 'attempt' && $_->{detail} =~ /HTTP 429/ } @ev;
my ($done) = grep { $_->{kind} eq 'delivered' } @ev;
ok($first && $done, 'a 429 try and the delivery are both events');
my $gap = $first && $done ? iso($done->{at}) - iso($first->{at}) : 0;
cmp_ok($gap, '>=', 1.9, sprintf('the next try waited the 2 s asked for (%.2f s)', $gap));
sub iso { my ($y, $mo, $d, $h, $mi, $sec) = $_[0] =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):([\d.]+)Z$/;
          require Time::Local; return Time::Local::timegm(0, $mi, $h, $d, $mo - 1, $y) + $sec }

# --- a timeout, a dropped connection ----------------------------------------------------------
simcall('PUT', '/_sim/faults', { delay_ms => 3000, for_s => 1 });
my $rslow = "DSP-$$-SLOW";
post($rslow);
ok(wait_delivered(10, $rslow), 'an answer slower than the timeout: tried again, delivered');
ok(grep({ $_->{kind} eq 'attempt' && $_->{detail} =~ /time/i } events_of($rslow)),
   'the timed-out try is an event');
simcall('DELETE', '/_sim/faults');
simcall('PUT', '/_sim/faults', { drop => JSON::PP::true, for_s => 0.7 });
my $rdrop = "DSP-$$-DROP";
post($rdrop);
ok(wait_delivered(10, $rdrop), 'a connection closed without an answer: tried again, delivered');
ok(grep({ $_->{kind} eq 'attempt' } events_of($rdrop)), 'the dropped try is an event');
simcall('DELETE', '/_sim/faults');

# --- answers that are final: dead, then replayed -----------------------------------------------
simcall('PUT', '/_sim/faults', { garbage => 'html' });
my $rg = "DSP-$$-GARBAGE";
post($rg);
ok(wait_for(sub { ((status($rg) || {})->{states}{delivery}{state} // '') eq 'dead' }, 5),
   'a 200 that is not the documented answer: dead (not sent again blindly)');
simcall('DELETE', '/_sim/faults');
simcall('PUT', '/_sim/faults', { status => 422 });
my $r422 = "DSP-$$-422";
post($r422);
ok(wait_for(sub { ((status($r422) || {})->{states}{delivery}{state} // '') eq 'dead' }, 5),
   'a 422: dead');
$s = status($r422);
is($s->{jobs}[0]{state}, 'dead', 'its job is dead');
like($s->{jobs}[0]{last_error} // '', qr/HTTP 422/, "the upstream's answer is kept");
is(scalar(calls_for($r422)), 1, 'and it was sent once');
simcall('DELETE', '/_sim/faults');
my $replay = "$base/admin/orders/demo/$r422/replay";
is($http->post($replay)->{status}, 401, 'replay without the admin key: 401');
my $res = $http->post($replay, { headers => { Authorization => "Bearer $info->{admin_key}" } });
is($res->{status}, 200, 'replay with the admin key: 200') or diag($res->{content});
ok(wait_delivered(5, $r422), 'the replayed order is delivered');
ok(grep({ $_->{kind} eq 'replay' } events_of($r422)), 'the replay is an event');
$res = $http->post($replay, { headers => { Authorization => "Bearer $info->{admin_key}" } });
is($res->{status}, 409, 'a delivered order is not replayed: 409');
$res = $http->post("$base/admin/orders/demo/$rg/replay", { headers => { Authorization => "Bearer $info->{admin_key}" } });
ok($res->{status} == 200 && wait_delivered(5, $rg), 'the garbage-answered order, replayed, is delivered');

# --- our credentials refused: paused, nothing burned, resumed ----------------------------------
my $log0 = -s "$var/logs/error_log";
simcall('PUT', '/_sim/faults', { status => 401, for_s => 3 });
my @cred = map { "DSP-$$-C$_" } 1 .. 6;
post($_) for @cred;
ok(wait_for(sub { ((status($cred[0]) || {})->{upstream}{state} // '') eq 'paused' }, 3),
   'a 401 pauses the upstream; the status route shows it paused');
$s = status($cred[0]);
like($s->{upstream}{cause} // '', qr/401/, 'with the cause');
ok(wait_for(sub { ((status($cred[-1]) || {})->{states}{delivery}{state} // '') =~ /^(paused|delivering|queued)$/ }, 2),
   'the waiting orders show as paused');
ok(wait_delivered(12, @cred), 'once the credentials are accepted again, every order is delivered');
my @burned = grep { (status($_) || {})->{jobs}[0]{attempts} > 2 } @cred;
is("@burned", '', 'no order spent tries while paused');
is((status($cred[0]) || {})->{upstream}{state}, 'active', 'the upstream is active again');
my $log = substr(OSTest::read_file("$var/logs/error_log"), $log0);
is(scalar(() = $log =~ /clougistic paused/g), 1, 'the error log says it paused once');
is(scalar(() = $log =~ /clougistic works again/g), 1, 'and once that it works again');

# --- an outage: connections refused ---------------------------------------------------------
simcall('PUT', '/_sim/faults', { down => JSON::PP::true, for_s => 3 });
my @out = map { "DSP-$$-O$_" } 1 .. 10;
post($_) for @out;
ok(wait_delivered(15, @out), 'after an outage every order is delivered');
ok(!grep({ (status($_) || {})->{states}{delivery}{state} eq 'dead' } @out), 'none went dead');
# tries before the pause count (8 failures in a row pause it, and up to 8 more were in
# flight then), tries while paused do not: without the pause, ten orders retrying for 3 s
# would spend some 60 tries
my $tries = 0;
$tries += (status($_) || {})->{jobs}[0]{attempts} for @out;
cmp_ok($tries, '<=', 10 + 8 + 8, "the outage cost $tries tries for ten orders, the ten deliveries included");

# --- rapid updates of one order ----------------------------------------------------------------
my $ru = "DSP-$$-UPD";
my @codes = map { post($ru, shipping_city => "City-$_") } 1 .. 15;
ok(!grep({ !/^20[02]$/ } @codes), 'fifteen versions of one order are accepted');
ok(wait_for(sub { my $x = status($ru); $x && $x->{delivered_version} == $x->{latest_version}
                  && $x->{states}{delivery}{state} eq 'delivered' }, 10),
   'the newest version ends up delivered');
$s = status($ru);
is($s->{latest_version}, 15, 'fifteen versions');
my $held = (simcall('GET', '/_sim/orders') || {})->{"DEMO-$ru"};
is($held->{payload}{shipping_city}, 'City-15', 'Clougistic holds the newest version');
my @seen = map { ($_->{body}{payload}{shipping_city} // '') =~ /(\d+)$/ ? $1 : 0 } calls_for($ru);
ok(!grep({ $seen[$_] < $seen[$_ - 1] } 1 .. $#seen), 'versions reached Clougistic in order, never an older after a newer ('
   . join(',', @seen) . ')');

($rc, $out) = OSTest::instance($var, 'stop');
is($rc, 0, 'the instance stops');
