# PostgreSQL: the store's sessions terminated under load (as a restart, a failover or an idle
# timeout does). No process crashes (the harness fails on any "exit signal"), answers are 202
# or 503 while it happens, orders are accepted again at once, and every 202'd order is stored.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Test::More;
use HTTP::Tiny ();
use JSON::PP ();
use POSIX ();
use Time::HiRes ();
use lib 't/lib';
use OSTest;

plan skip_all => 'PostgreSQL only (make test-pg)' unless ($ENV{OS_TEST_LABEL} // '') eq 'pg';
plan tests => 12;

expect_error_log('ordersync: (the store could not commit|the store still cannot|order [^ ]+ not stored|reading order failed)',
                 'terminating connection|server closed the connection|no connection to the server|connection',
                 'the database system is (shutting down|starting up)|Connection refused|No such file or directory',
                 'AH00629|AH02655|DBD');

my $tag = "PGS$$";
my $url = 'http://' . Apache::TestRequest::hostport() . OSTest::hub_url('/orders');
my $key = key('demo');
sub post {
    my ($h, $ref) = @_;
    return $h->post($url, { headers => { Authorization => "Bearer $key",
                                         'Content-Type' => 'application/json' },
                            content => JSON::PP::encode_json(order_payload(reference => $ref)) });
}
sub terminate {
    system('psql', '-qtA', '-h', $ENV{OS_PG_SOCK}, '-p', $ENV{OS_PG_PORT}, '-U', 'postgres',
           'ordersync', '-c', 'SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity '
           . "WHERE datname = 'ordersync' AND pid <> pg_backend_pid()");
}

my $http = HTTP::Tiny->new(timeout => 10);
is(post($http, "$tag-0")->{status}, 202, 'an order is accepted');
terminate();
is(json_req('GET', "/orders/demo/$tag-0", undef, 'demo')->code, 200,
   'right after, the status of a stored order reads (the session is reconnected)');
my $t0 = Time::HiRes::time();
my $st = 0;
for my $i (1 .. 20) {
    $st = post($http, "$tag-after-$i")->{status};
    last if $st == 202;
}
ok($st == 202 && Time::HiRes::time() - $t0 < 3,
   'after its sessions were terminated the store accepts orders again at once');

# posters for 3 s while the sessions are terminated twice
my $dir = Apache::Test::vars()->{t_logs};
my @kids;
for my $w (1 .. 3) {
    my $pid = fork // die;
    if (!$pid) {
        my $h = HTTP::Tiny->new(timeout => 10);
        open my $log, '>', "$dir/pgs-$w" or POSIX::_exit(1);
        $log->autoflush(1);
        my $end = Time::HiRes::time() + 3;
        for (my $i = 1; Time::HiRes::time() < $end; $i++) {
            my $ref = "$tag-$w-$i";
            print $log post($h, $ref)->{status}, " $ref\n";
        }
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
Time::HiRes::sleep(1); terminate(); Time::HiRes::sleep(1); terminate();
waitpid($_, 0) for @kids;
my (%status, @acked);
for my $w (1 .. 3) {
    open my $fh, '<', "$dir/pgs-$w" or next;
    while (<$fh>) { my ($s, $r) = split; $status{$s}++; push @acked, $r if $s == 202 }
}
ok(!grep({ !/^(202|503)$/ } keys %status), 'every answer was 202 or 503: '
   . join(' ', map { "$_ x$status{$_}" } sort keys %status));
ok(@acked > 10, 'orders kept being accepted (' . scalar(@acked) . ')');
my @missing = grep { json_req('GET', "/orders/demo/$_", undef, 'demo')->code != 200 } @acked;
is(scalar(@missing), 0, 'every accepted order is stored') or diag("@missing[0 .. 9]");

# --- the server itself stopped and started again (a restart, a failover): 503 with
# Retry-After while it is down, 202 within a second of its return, nothing stored twice
my ($bin) = reverse sort glob('/usr/lib/postgresql/*/bin');
my $data = "$ENV{OS_PG_SOCK}/../data";
open my $ofh, '<', "$data/postmaster.opts" or die "postmaster.opts: $!";
my $opts = <$ofh>;
close $ofh;
chomp $opts;
$opts =~ s/^\S+\s+//;                       # the postgres binary
$opts =~ s/"-D"\s+"[^"]*"\s*//;              # pg_ctl gives the data directory itself
is(system("$bin/pg_ctl -D $data -m fast -w stop >/dev/null 2>&1"), 0, 'the PostgreSQL server is stopped');
my $down = post($http, "$tag-down");
my $d = eval { JSON::PP::decode_json($down->{content}) } || {};
ok($down->{status} == 503 && ($d->{type} // '') =~ /store-unavailable$/
   && ($down->{headers}{'retry-after'} // '') =~ /^\d+$/,
   'while it is down an order is refused: 503 store-unavailable with Retry-After')
    or diag("$down->{status} $down->{content}");
my $read = json_req('GET', "/orders/demo/$tag-0", undef, 'demo');
is($read->code, 503, 'and the status route answers 503, not an error page');
is(system("$bin/pg_ctl -D $data -l $data/../server.log -w -o '$opts' start >/dev/null 2>&1"), 0,
   'the PostgreSQL server is started again');
$t0 = Time::HiRes::time();
my ($back, $elapsed) = (0, 0);
for my $i (1 .. 200) {
    $back = post($http, "$tag-back-$i")->{status};
    $elapsed = Time::HiRes::time() - $t0;
    last if $back == 202 || $elapsed > 5;
    Time::HiRes::sleep(0.02);
}
ok($back == 202 && $elapsed < 1, sprintf('orders are accepted again %.2f s after its return', $elapsed));
is(json_req('GET', "/orders/demo/$tag-down", undef, 'demo')->code, 404,
   'the order refused while it was down was not stored');
