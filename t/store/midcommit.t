# The committer stopped in the middle of a commit (its transaction waiting for a lock held
# elsewhere), and many posters with distinct references while the committer is stopped and
# killed: every request is answered within the store timeout plus a margin, every 202/200
# names the request's own order and that order is stored; a 503 says either that nothing
# was stored (it is not) or that the outcome is unknown, and then its resend with the
# Idempotency-Key the 503 gave is recognised exactly: the order is stored once.
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

plan tests => 13;

my $pg = ($ENV{OS_TEST_LABEL} // '') eq 'pg';
expect_error_log('ordersync: (the store could not commit|the store still cannot)',
                 'database is locked|lock timeout|canceling statement due to lock timeout');
my $v = Apache::Test::vars();
my $var = "$v->{t_logs}/midcommit-instance";
my $timeout = 1.0;                          # OrderSyncStoreTimeout, seconds
my $bound = $timeout + 0.5 + 0.7 + 1.0;     # + the answer margin (SQLite: 1.7 s floor) + slack
system('rm', '-rf', $var);
mkdir $var; mkdir "$var/conf";
{
    open my $fh, '>', "$var/conf/local.conf" or die $!;
    # prefork serves one request per process: enough processes that no poster queues in the
    # kernel behind another's wait (that time is not the store's)
    print $fh OSTest::three_processes() . "OrderSyncStoreTimeout " . ($timeout * 1000) . "\n"
            . "<IfModule mpm_prefork_module>\nStartServers 16\nMinSpareServers 16\n"
            . "MaxSpareServers 20\n</IfModule>\n";
    # which process served which order (a request held by a stopped process is logged when
    # it runs again; one held by a killed process never is)
    print $fh "LogFormat \"%P %{X-Test-Ref}i %>s %D\" refs\nCustomLog logs/ref_log refs\n";
    if ($pg) {
        print $fh "DBDriver pgsql\nDBDParams \"host=$ENV{OS_PG_SOCK} port=$ENV{OS_PG_PORT} "
                . "dbname=ordersync user=postgres\"\n";
    }
    close $fh;
}
my ($rc, $out) = OSTest::start_instance($var);
is($rc, 0, 'a separate instance with three processes starts') or diag($out);
my $info = JSON::PP::decode_json(OSTest::read_file("$var/instance.json"));
my $base = $info->{base_url};
my $auth = { Authorization => "Bearer $info->{source}{key}" };
my $tag = "MC$$";
my $http = HTTP::Tiny->new(timeout => 10);

sub post {
    my ($h, $ref, %hdr) = @_;
    return $h->post("$base/orders", { headers => { %$auth, 'Content-Type' => 'application/json',
                                                    'X-Test-Ref' => $ref, %hdr },
        content => JSON::PP::encode_json(order_payload(reference => $ref)) });
}
sub committer {
    my @c = OSTest::read_file("$var/logs/error_log") =~ /process (\d+) now commits the orders of every process/g;
    return $c[-1];
}
sub wait_for { my ($cond, $secs) = @_; my $end = time + $secs;
    while (time < $end) { return 1 if $cond->(); Time::HiRes::sleep(0.05) } return $cond->() }
sub stored {    # the order's versions, or undef when it is not there
    my $res = $http->get("$base/orders/demo/$_[0]", { headers => $auth });
    return undef unless $res->{status} == 200;
    my $d = JSON::PP::decode_json($res->{content});
    return $d->{reference} eq $_[0] ? scalar(@{ $d->{versions} }) : undef;
}

is(post($http, "$tag-first")->{status}, 202, 'an order is accepted');
ok(wait_for(sub { committer() }, 5), 'a process commits for all');

# Posters, each one order per new connection, writing "status seconds reference body-ref
# problem-type idempotency-key" per answer.
sub posters {
    my ($n, $secs, $name) = @_;
    my @pids;
    for my $w (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open my $log, '>', "$var/$name-$w" or POSIX::_exit(1);
            $log->autoflush(1);
            my $end = Time::HiRes::time() + $secs;
            for (my $i = 1; $i == 1 || Time::HiRes::time() < $end; $i++) {
                my $ref = "$tag-$name-$w-$i";
                my $h = HTTP::Tiny->new(timeout => 8);
                my $t0 = Time::HiRes::time();
                my $res = post($h, $ref);
                my $d = eval { JSON::PP::decode_json($res->{content}) } || {};
                printf $log "%d %.3f %s %s %s %s\n", $res->{status}, Time::HiRes::time() - $t0,
                       $ref, $d->{reference} // '-', $d->{type} // '-', $d->{idempotency_key} // '-';
            }
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    return @pids;
}
sub answers {
    my ($n, $name) = @_;
    my @a;
    for my $w (1 .. $n) {
        open my $fh, '<', "$var/$name-$w" or next;
        push @a, map { [split] } <$fh>;
    }
    return @a;
}
sub served_by {    # reference -> pid of the process that answered it
    my %by;
    for (split /\n/, OSTest::read_file("$var/logs/ref_log")) {
        my ($pid, $ref) = split;
        $by{$ref} = $pid;
    }
    return \%by;
}
# Checks the answers: returns a list of complaints (empty when all is well). A request with
# no answer (599) is fine only in the process that was stopped or killed.
sub check {
    my ($stopped, @answers) = @_;
    my @bad;
    my $by = served_by();
    for my $a (@answers) {
        my ($st, $secs, $ref, $bref, $type, $key) = @$a;
        if ($st == 599) {
            push @bad, "$ref had no answer, but process $by->{$ref} (not the stopped one) held it"
                if defined $by->{$ref} && $by->{$ref} != $stopped;
            next;
        }
        push @bad, "$ref took $secs s" if $secs > $bound;
        if ($st == 202 || $st == 200) {
            push @bad, "$ref answered for $bref" if $bref ne $ref;
            push @bad, "$ref acknowledged but not stored" unless stored($ref);
        }
        elsif ($st == 503 && $type =~ /store-unavailable|queue-full/) {
            push @bad, "$ref: 503 nothing stored, but it is" if defined stored($ref);
        }
        elsif ($st == 503 && $type =~ /store-outcome-unknown/) {
            my $res = post($http, $ref, 'Idempotency-Key' => $key);
            push @bad, "$ref: resend with its key answered $res->{status}"
                unless $res->{status} == 200 || $res->{status} == 202;
            my $n = stored($ref);
            push @bad, "$ref: stored " . ($n // 0) . " versions after the resend" unless ($n // 0) == 1;
        }
        else { push @bad, "$ref: unexpected $st $type" }
    }
    return @bad;
}

# --- stopped mid-commit: its transaction waits for a lock held elsewhere ------------------
my $holder = fork // die "fork: $!";
if (!$holder) {
    if ($pg) {
        exec('psql', '-q', '-h', $ENV{OS_PG_SOCK}, '-p', $ENV{OS_PG_PORT}, '-U', 'postgres',
             'ordersync', '-c', 'BEGIN; LOCK TABLE os_orders IN EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;');
    }
    # .timeout: the hub's own transactions (the dispatcher's claims among them) may hold
    # the lock for a moment; the holder waits for it instead of giving up at once
    exec('sh', '-c', "(echo '.timeout 3000'; echo 'BEGIN IMMEDIATE;'; sleep 4; echo 'COMMIT;') | sqlite3 '$var/store/ordersync.db'");
}
my $locked = $pg
    ? sub { `psql -qtA -h $ENV{OS_PG_SOCK} -p $ENV{OS_PG_PORT} -U postgres ordersync -c "SELECT count(*) FROM pg_locks WHERE relation = 'os_orders'::regclass AND mode = 'ExclusiveLock' AND granted"` =~ /^[1-9]/ }
    : sub { `sqlite3 '$var/store/ordersync.db' 'PRAGMA busy_timeout=0; BEGIN IMMEDIATE; ROLLBACK;' 2>&1` =~ /locked/ };
ok(wait_for($locked, 5), 'another connection holds the store\'s write lock');
my $c1 = committer();
my @kids = posters(12, 0, 'stop');
Time::HiRes::sleep(0.4);                    # the committer has taken them and waits in BEGIN
kill 'STOP', $c1;
waitpid($_, 0) for @kids;
kill 'CONT', $c1;
waitpid($holder, 0);
wait_for(sub { my $n = () = OSTest::read_file("$var/logs/ref_log") =~ /stop-/g; $n >= 12 }, 5);
my @a = answers(12, 'stop');
my @real = grep { $_->[0] != 599 } @a;
# (which process accepts a connection is the kernel's choice: most may go to the stopped one)
ok(@real >= 1, 'the requests the stopped process did not hold were answered: '
   . join(' ', map { "$_->[0]/$_->[4]" } @a));
ok(!grep({ $_->[1] > $bound } @real), "each within the store timeout and the margin ($bound s)")
    or diag(join "\n", map { "@$_" } @a);
ok(@real && !grep({ $_->[0] != 503 } @real), 'with 503 (the commit could not finish in time)');
my @bad = check($c1, @a);
is(scalar(@bad), 0, 'none is answered wrongly, and an unknown outcome resent with its key is stored once')
    or diag(join "\n", @bad);

# --- many posters while the committer is stopped, then killed --------------------------
my @p = posters(5, 4, 'chaos');
Time::HiRes::sleep(0.8);
my $c2 = committer();
kill 'STOP', $c2;
Time::HiRes::sleep(1.5);
kill 'CONT', $c2;
Time::HiRes::sleep(0.7);
kill 'KILL', $c2;
waitpid($_, 0) for @p;
my @b = answers(5, 'chaos');
my %st; $st{$_->[0]}++ for @b;
ok(($st{202} // 0) > 20, 'orders were accepted around the stall and the kill: '
   . join(' ', map { "$_ x$st{$_}" } sort keys %st));
ok(wait_for(sub { my $c = committer(); $c && $c != $c2 }, 5), 'another process took over');
@bad = check($c2, @b);
is(scalar(@bad), 0, 'every 202 names its own order and is stored; every 503 is true')
    or diag(join "\n", @bad[0 .. ($#bad < 15 ? $#bad : 15)]);
is(post($http, "$tag-last")->{status}, 202, 'the hub accepts orders afterwards');

# nothing crashed: the instance's own log
my $log = OSTest::read_file("$var/logs/error_log");
unlike($log, qr/exit signal|AddressSanitizer|runtime error:/, 'no process of the instance crashed');

OSTest::instance($var, 'stop');
