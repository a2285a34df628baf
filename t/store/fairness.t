# The committer takes at most OrderSyncBatchMax filled slots per commit. With more slots filled
# than that all the time, it must still come to every slot in turn: collecting from the first
# slot each time let the lower slots, refilled at once, keep the higher ones waiting until
# their requests timed out (503). Here 24 clients keep posting to an instance committing
# batches of 2 with a store timeout of 2 s: every order must be accepted.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use HTTP::Tiny ();
use POSIX ();
use Time::HiRes ();
use lib 't/lib';
use OSTest;

plan tests => 3;

my $pg = ($ENV{OS_TEST_LABEL} // '') eq 'pg';
# (prefork serves one connection per process: one for each client, so none queues in the
# kernel behind another)
my $var = OSTest::new_instance('fairness-instance', OSTest::three_processes()
    . "<IfModule mpm_prefork_module>\nStartServers 28\nMinSpareServers 28\nMaxSpareServers 32\n</IfModule>\n"
    . "OrderSyncBatchMax 2\nOrderSyncStoreTimeout 2000\n"
    . ($pg ? "DBDriver pgsql\nDBDParams \"host=$ENV{OS_PG_SOCK} port=$ENV{OS_PG_PORT} "
             . "dbname=ordersync user=postgres\"\n" : ''));
my ($rc, $out) = OSTest::start_instance($var);
is($rc, 0, 'a separate instance committing batches of at most 2 starts') or diag($out);
my $info = JSON::PP::decode_json(OSTest::read_file("$var/instance.json"));
my ($base, $key) = ($info->{base_url}, $info->{source}{key});
my $tag = "FA$$";

my $clients = 24;
my $secs = 4;
my @pids;
for my $c (1 .. $clients) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $h = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
        open my $log, '>', "$var/client-$c" or POSIX::_exit(1);
        $log->autoflush(1);
        my $end = Time::HiRes::time() + $secs;
        for (my $i = 1; Time::HiRes::time() < $end; $i++) {
            my $ref = "$tag-$c-$i";
            my $t0 = Time::HiRes::time();
            my $r = $h->post("$base/orders", { headers => { Authorization => "Bearer $key",
                'Content-Type' => 'application/json' },
                content => JSON::PP::encode_json(order_payload(reference => $ref)) });
            printf $log "%d %s %.3f\n", $r->{status}, $ref, Time::HiRes::time() - $t0;
        }
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
waitpid($_, 0) for @pids;

my (%status, $n, $slowest);
for my $c (1 .. $clients) {
    open my $fh, '<', "$var/client-$c" or next;
    while (<$fh>) {
        my ($st, $ref, $t) = split;
        $status{$st}++;
        $n++;
        $slowest = $t if !defined $slowest || $t > $slowest;
    }
}
ok($n > 200, "$clients clients posted $n orders in $secs s");
is(join(' ', map { "$_ x$status{$_}" } sort keys %status), "202 x$n",
   'every one was accepted: no slot waited past the store timeout');
diag(sprintf('the slowest answer took %.2f s', $slowest // -1));
OSTest::instance($var, 'stop');
