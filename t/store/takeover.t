# The takeover's replay path: the committer has committed orders of other processes' requests
# and dies before it answers them. The process that takes over finds those orders already in
# the store (by the intake id each request carries) and answers each request as a replay
# (200, Idempotent-Replayed, its own order), never as a new version and never with 503.
#
# PostgreSQL makes the moment exact: with synchronous replication demanded of a standby that
# does not exist, COMMIT waits after the commit record is written. The committer is killed
# while it waits there; then the demand is lifted, which lets the commit finish.
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

plan skip_all => 'PostgreSQL only (make test-pg): a COMMIT held by synchronous replication'
    unless ($ENV{OS_TEST_LABEL} // '') eq 'pg';
plan tests => 8;

my $v = Apache::Test::vars();
my $var = "$v->{t_logs}/takeover-instance";
system('rm', '-rf', $var);
mkdir $var; mkdir "$var/conf";
{
    open my $fh, '>', "$var/conf/local.conf" or die $!;
    # a store timeout long enough that the waiting requests are still there at the takeover;
    # the suite's cluster runs with synchronous_commit off, these sessions with it on
    print $fh OSTest::three_processes() . "OrderSyncStoreTimeout 8000\n"
            . "DBDriver pgsql\nDBDParams \"host=$ENV{OS_PG_SOCK} port=$ENV{OS_PG_PORT} "
            . "dbname=ordersync user=postgres options='-c synchronous_commit=on'\"\n";
    close $fh;
}
expect_error_log('ordersync: (a batch of \d+ orders could not be committed|order [^ ]+ not stored)',
                 'duplicate key|terminating connection|server closed the connection');
my ($rc, $out) = OSTest::start_instance($var);
is($rc, 0, 'a separate instance with three processes starts') or diag($out);
my $info = JSON::PP::decode_json(OSTest::read_file("$var/instance.json"));
my ($base, $key) = ($info->{base_url}, $info->{source}{key});
my $auth = { Authorization => "Bearer $key" };
my $tag = "TO$$";

sub psql {
    my ($sql) = @_;
    open my $fh, '-|', 'psql', '-qtA', '-h', $ENV{OS_PG_SOCK}, '-p', $ENV{OS_PG_PORT},
         '-U', 'postgres', 'ordersync', '-c', $sql or die "psql: $!";
    local $/;
    my $r = <$fh> // '';
    close $fh;
    chomp $r;
    return $r;
}
sub post {
    my ($http, $ref) = @_;
    return $http->post("$base/orders", { headers => { %$auth, 'Content-Type' => 'application/json' },
        content => JSON::PP::encode_json(order_payload(reference => $ref)) });
}
sub committers {
    return OSTest::read_file("$var/logs/error_log") =~ /process (\d+) now commits the orders of every process/g;
}
sub wait_for { my ($cond, $secs) = @_; my $end = Time::HiRes::time() + $secs;
    while (Time::HiRes::time() < $end) { return 1 if $cond->(); Time::HiRes::sleep(0.05) } return $cond->() }

my $http = HTTP::Tiny->new(timeout => 10);
is(post($http, "$tag-first")->{status}, 202, 'an order is accepted');

# Up to three tries: the requests must be served by processes other than the committer, and
# which process the kernel hands each connection to is not ours to choose.
my (@replays, @lines, $held, $answered_in);
for my $try (1 .. 3) {
    wait_for(sub { scalar committers() }, 5);
    my ($committer) = (committers())[-1];
    psql("ALTER SYSTEM SET synchronous_standby_names = 'os_test_no_such_standby'");
    psql('SELECT pg_reload_conf()');
    my @pids;
    for my $c (1 .. 6) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $h = HTTP::Tiny->new(timeout => 20);
            my $ref = "$tag-$try-$c";
            my $r = post($h, $ref);
            my $d = eval { JSON::PP::decode_json($r->{content}) } || {};
            open my $fh, '>', "$var/answer-$try-$c" or POSIX::_exit(1);
            printf $fh "%s %d %s %s %s %.3f\n", $ref, $r->{status},
                   $r->{headers}{'idempotent-replayed'} // '-', $d->{reference} // '-',
                   $d->{version} // '-', Time::HiRes::time();
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, $pid;
        Time::HiRes::sleep(0.05);
    }
    # the committer's session waits in COMMIT for a standby that never comes
    $held = wait_for(sub { psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") > 0 }, 5);
    my $killed_at = Time::HiRes::time();
    kill 'KILL', $committer;
    psql('ALTER SYSTEM RESET synchronous_standby_names');
    psql('SELECT pg_reload_conf()');
    waitpid($_, 0) for @pids;
    @lines = ();
    for my $c (1 .. 6) {
        open my $fh, '<', "$var/answer-$try-$c" or next;
        my $l = <$fh>;
        chomp $l;
        push @lines, $l;
    }
    @replays = grep { (split ' ')[1] == 200 } @lines;
    if (@replays) {
        my ($last) = sort { $b <=> $a } map { (split ' ')[5] } @replays;
        $answered_in = $last - $killed_at;
        last;
    }
    diag("try $try: no request of another process was held in the commit: @lines");
}
ok($held, "the committer's COMMIT was held (waiting for synchronous replication)");
ok(scalar @replays, 'a request whose order the dead committer had committed is answered 200 as a replay')
    or diag(explain(\@lines));
my @wrong = grep { my ($ref, $st, $rep, $aref, $ver) = split ' ';
                   $st == 200 ? ($rep ne 'true' || $aref ne $ref || $ver ne '1')
                 : $st == 202 ? ($aref ne $ref || $ver ne '1')
                 : $st != 599 } @lines;
is(scalar @wrong, 0, 'every answer is a replay or acceptance of the request\'s own order, version 1, '
   . 'or a broken connection to the killed process') or diag(explain(\@lines));
ok(defined $answered_in && $answered_in < 3,
   sprintf('the replays were answered %.2f s after the kill', $answered_in // -1));
my @versions = map {
    my $ref = (split ' ')[0];
    my $res = $http->get("$base/orders/demo/$ref", { headers => $auth });
    my $d = eval { JSON::PP::decode_json($res->{content}) } || {};
    "$ref:" . scalar(@{ $d->{versions} // [] });
} grep { (split ' ')[1] =~ /^20[02]$/ } @lines;
is(scalar(grep { !/:1$/ } @versions), 0, 'each answered order is stored once, with one version')
    or diag("@versions");
is(post($http, "$tag-after")->{status}, 202, 'a new order after the takeover is accepted');
OSTest::instance($var, 'stop');
