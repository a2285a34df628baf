# Sending an order again: the same content (whatever its key order or "2" versus 2) is a
# replay (200, Idempotent-Replayed: true, same id and version); changed content is a new
# version of the same order; status 9 cancels. Then many identical requests at the same
# instant (exactly one 202) and many different ones (all 202, all stored).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use LWP::UserAgent ();
use HTTP::Request ();
use POSIX ();
use lib 't/lib';
use OSTest;

plan tests => 40;

my $JSON = JSON::PP->new->canonical;
my $ref = "idem-$$-1";

sub post { return json_req('POST', '/orders', $_[0], 'demo') }
sub get_order { return decode(json_req('GET', "/orders/demo/$_[0]", undef, 'demo')) || {} }

# ---------------------------------------------------------------- first time

my $p = order_payload(reference => $ref);
my $res = post($p);
is($res->code, 202, 'a new order: 202 Accepted');
my $first = decode($res) || {};
like($first->{id} // '', qr/\S/, 'it has an id');
is_deeply([ @$first{qw(source_id reference version state)} ], [ 'demo', $ref, 1, 'queued' ],
          'source_id, reference, version 1, state queued');
is($first->{status_url}, "/ordersync/orders/demo/$ref", 'status_url is the order URL');
is($res->header('Location'), $first->{status_url}, 'Location is the status_url');
ok(!defined $res->header('Idempotent-Replayed'), 'a first delivery is not marked replayed');

# ---------------------------------------------------------------- replays

$res = post($p);
is($res->code, 200, 'the same order again: 200');
is($res->header('Idempotent-Replayed'), 'true', 'Idempotent-Replayed: true');
my $again = decode($res) || {};
is($again->{id}, $first->{id}, 'same id');
is($again->{version}, 1, 'same version');
is($res->header('Location'), $first->{status_url}, 'the replay has the Location too');

# the same content with the keys in another order (also inside the item)
my $rev = '{' . join(',', map {
    my $v = $p->{$_};
    my $t = ref $v eq 'ARRAY'
        ? '[' . join(',', map { my $i = $_; '{' . join(',', map { JSON::PP->new->allow_nonref
              ->encode($_) . ':' . JSON::PP->new->allow_nonref->encode($i->{$_}) }
              reverse sort keys %$i) . '}' } @$v) . ']'
        : JSON::PP->new->allow_nonref->encode($v);
    JSON::PP->new->allow_nonref->encode($_) . ':' . $t
} reverse sort keys %$p) . '}';
isnt($rev, $JSON->encode($p), '(the reordered text differs from the first)');
$res = post($rev);
is($res->code, 200, 'same content with reversed key order: replay 200');
is((decode($res) || {})->{version}, 1, '... still version 1');

# "2" vs 2, "0" vs 0, "9.95" vs 9.95
my $q = $JSON->decode($JSON->encode($p));
$q->{items}[0]{qty} = '2';
$q->{status} = '0';
$q->{type} = '0';
$res = post($q);
is($res->code, 200, 'qty "2", status "0", type "0" for 2, 0, 0: replay 200');
is($res->header('Idempotent-Replayed'), 'true', '... marked replayed');
(my $txt = $JSON->encode($p)) =~ s/"9\.95"/9.95/;
$res = post($txt);
is($res->code, 200, 'unit_price 9.95 for "9.95": replay 200');

# ---------------------------------------------------------------- new versions

$p->{items}[0]{qty} = 3;
$res = post($p);
is($res->code, 202, 'qty changed: 202');
my $v2 = decode($res) || {};
is($v2->{version}, 2, 'version 2');
is($v2->{id}, $first->{id}, 'same order id');
ok(!defined $res->header('Idempotent-Replayed'), 'a new version is not a replay');

$p->{shipping_city} = 'Rotterdam';
$res = post($p);
is((decode($res) || {})->{version}, 3, 'address changed: version 3');
$res = post($p);
ok($res->code == 200 && (decode($res) || {})->{version} == 3, 'version 3 again: replay of 3');

my $o = get_order($ref);
is($o->{latest_version}, 3, 'GET: latest_version 3');
is_deeply([ map { $_->{version} } @{ $o->{versions} || [] } ], [ 1, 2, 3 ],
          'GET: versions 1, 2, 3');
my %dig = map { ($_->{digest} // '') => 1 } @{ $o->{versions} || [] };
is(scalar keys %dig, 3, 'GET: each version has its own digest');
ok(@{ $o->{events} || [] } >= 3, 'GET: an event per version at least');
is($o->{order}{shipping_city}, 'Rotterdam', 'GET: the order shown is the latest version');
is($o->{delivered_version}, 0, 'nothing delivered yet');
is($o->{states}{intake}{state}, 'accepted', 'intake state accepted');

# ---------------------------------------------------------------- cancel

$p->{status} = 9;
$res = post($p);
ok($res->code == 202 && (decode($res) || {})->{version} == 4, 'status 9: a new version (4)');
$o = get_order($ref);
is($o->{states}{intake}{state}, 'cancelled', 'GET: intake state cancelled');
like($o->{states}{intake}{at} // '', qr/^\d{4}-\d\d-\d\dT/, 'the cancellation has a time');

# ---------------------------------------------------------------- concurrency

my $url = 'http://' . Apache::TestRequest::hostport() . hub_url('/orders');
my $key = key('demo');

# Runs $n children that wait for one signal, then each POST its body; returns the codes.
sub race {
    my @bodies = @_;
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    pipe(my $res_r, my $res_w) or die "pipe: $!";
    pipe(my $ready_r, my $ready_w) or die "pipe: $!";
    my @pids;
    for my $i (0 .. $#bodies) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $go_w;
            close $res_r;
            close $ready_r;
            my $ua = LWP::UserAgent->new(keep_alive => 0, timeout => 30);
            my $req = HTTP::Request->new(POST => $url, [Authorization => "Bearer $key",
                                                        'Content-Type' => 'application/json'],
                                         $bodies[$i]);
            syswrite($ready_w, '.');     # ready: the request is built
            close $ready_w;
            sysread($go_r, my $x, 1);    # returns at EOF: the parent closed the pipe
            my $r = $ua->request($req);
            syswrite($res_w, sprintf("%d %s\n", $r->code, $r->header('Idempotent-Replayed')
                                                          // '-'));
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    close $res_w;
    close $ready_w;
    # every child is at its read once it said so (or died: EOF); 30 s is a deadline only
    my ($ready, $end) = ('', time + 30);
    while (length($ready) < @bodies && time < $end) {
        my $rin = '';
        vec($rin, fileno($ready_r), 1) = 1;
        last unless select(my $rout = $rin, undef, undef, 1) >= 0;
        next unless vec($rout, fileno($ready_r), 1);
        last unless sysread($ready_r, $ready, 64, length $ready);
    }
    close $ready_r;
    close $go_w;
    my @codes = map { chomp; $_ } <$res_r>;
    waitpid($_, 0) for @pids;
    return @codes;
}

my $cref = "idem-$$-race";
my $cbody = $JSON->encode(order_payload(reference => $cref));
my @got = race(($cbody) x 10);
my %c;
$c{ (split ' ', $_)[0] }++ for @got;
is(scalar @got, 10, 'ten identical orders at once: ten answers');
is($c{202} // 0, 1, 'exactly one 202');
is($c{200} // 0, 9, 'nine 200 replays');
is(scalar(grep { !/^(?:202 -|200 true)$/ } @got), 0,
   'no other code, and every 200 is marked replayed') or diag(explain(\@got));
$o = get_order($cref);
ok($o->{latest_version} == 1 && @{ $o->{versions} || [] } == 1,
   'GET: one order, latest_version 1, one version');

my @refs = map { "idem-$$-many-$_" } 1 .. 20;
@got = race(map { $JSON->encode(order_payload(reference => $_)) } @refs);
is(join(',', sort @got), join(',', ('202 -') x 20), 'twenty different orders at once: all 202')
    or diag(explain(\@got));
is(scalar(grep { (get_order($_)->{reference} // '') eq $_ } @refs), 20,
   'all twenty can be read back');
