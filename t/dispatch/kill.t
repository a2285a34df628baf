# Stopping the dispatcher in the middle of its deliveries loses nothing and doubles nothing
# but identical re-sends: its process killed (kill -9) while twenty deliveries wait for
# Clougistic's answer, and a graceful restart while twenty more do. Another process takes
# over, gives back the leases of the dead one and sends what had no recorded answer again.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use HTTP::Tiny ();
use Time::HiRes ();
use lib 't/lib';
use OSTest;

plan tests => 12;

my $var = OSTest::new_instance('dispatch-kill-instance', OSTest::own_store('dispatch_kill') .
    "OrderSyncRetry 200ms 1s 60s\nOrderSyncClougisticTimeout 1s 10s\n"
    . "OrderSyncDispatchConcurrency 32\n" . OSTest::three_processes());
my ($rc, $out) = OSTest::start_instance($var);
is($rc, 0, 'an instance with three processes and its Clougistic simulator starts') or diag($out);
my $info = JSON::PP::decode_json(OSTest::read_file("$var/instance.json"));
my $J = JSON::PP->new->utf8->canonical;
my $http = HTTP::Tiny->new(timeout => 10);
my $base = $info->{base_url};
my $sim = $info->{clougistic_sim};
my %auth = (Authorization => "Bearer $info->{source}{key}");

sub post {
    my ($ref) = @_;
    return $http->post("$base/orders", { headers => { %auth, 'Content-Type' => 'application/json' },
        content => $J->encode(order_payload(reference => $ref)) })->{status};
}
sub status {
    my $res = $http->get("$base/orders/demo/$_[0]", { headers => \%auth });
    return $res->{status} == 200 ? $J->decode($res->{content}) : undef;
}
sub simcall { return OSTest::sim_call($sim, @_) }
sub wait_for { return OSTest::wait_until(@_) }
sub delivered { my $s = status($_[0]); return $s && $s->{states}{delivery}{state} eq 'delivered' }
# the process that delivers: the last "delivers the hub's orders" line of the error log
sub dispatcher_pid {
    my @l = OSTest::read_file("$var/logs/error_log") =~ /process (\d+) delivers the hub's orders/g;
    return $l[-1];
}
sub calls_by_ref {
    my %c;
    push @{ $c{$_->{reference}} }, $_->{raw} for @{ simcall('GET', '/_sim/enqueued') || [] };
    return \%c;
}
sub verdict {
    my ($tag, @refs) = @_;
    ok(wait_for(sub { !grep { !delivered($_) } @refs }, 20), "$tag: every order is delivered");
    my $c = calls_by_ref();
    my @lost = grep { !$c->{"DEMO-$_"} } @refs;
    is("@lost", '', "$tag: every order reached Clougistic");
    my @differ = grep { my $x = $c->{"DEMO-$_"} || []; grep { $_ ne $x->[0] } @$x } @refs;
    is("@differ", '', "$tag: where an order was sent twice, the two were identical");
    my @bad = grep { my $s = status($_); !$s || $s->{delivered_version} != 1
                     || $s->{states}{delivery}{state} ne 'delivered' } @refs;
    is("@bad", '', "$tag: each shows delivered_version 1, delivered")
        or diag(JSON::PP->new->canonical->encode({ map { my $x = status($_) || {};
            ($_ => { states => $x->{states}, jobs => $x->{jobs}, events => $x->{events} }) } @bad[0 .. 0] }));
    my $resent = grep { @{ $c->{"DEMO-$_"} || [] } > 1 } @refs;
    diag("$tag: $resent of " . scalar(@refs) . ' sent again after the stop');
}

# --- kill -9 of the dispatching process while its deliveries wait for answers -----------------
ok(wait_for(sub { dispatcher_pid() }, 10), 'a process delivers');
simcall('PUT', '/_sim/faults', { delay_ms => 2500 });
my @k = map { "KILL-$$-$_" } 1 .. 20;
my @codes = map { post($_) } @k;
is(scalar(grep { $_ == 202 } @codes), 20, 'twenty orders accepted');
ok(wait_for(sub { (simcall('GET', '/_sim/stats') || {})->{enqueue_requests} >= 20 }, 5),
   'their deliveries are at Clougistic, waiting for its answer');
my $victim = dispatcher_pid();
kill 'KILL', $victim;
simcall('DELETE', '/_sim/faults');
verdict('after kill -9 of the dispatcher', @k);

# --- a graceful restart while deliveries wait for answers --------------------------------------
simcall('PUT', '/_sim/faults', { delay_ms => 2500 });
my $before = (simcall('GET', '/_sim/stats') || {})->{enqueue_requests};
my @g = map { "GRACE-$$-$_" } 1 .. 20;
post($_) for @g;
wait_for(sub { (simcall('GET', '/_sim/stats') || {})->{enqueue_requests} >= $before + 20 }, 5);
kill 'USR1', $info->{pid};
Time::HiRes::sleep(0.5);
simcall('DELETE', '/_sim/faults');
verdict('after a graceful restart', @g);

OSTest::instance($var, 'stop');
