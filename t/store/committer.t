# One process commits the orders of every process (the "committer"). When it dies, another
# takes over and the orders it held are still answered; while it is stuck, requests of the
# other processes get 503 after the store timeout, never a hang, and nothing is written for
# them; an order too big to hand over is committed by its own process.
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

plan tests => 17;

my $v = Apache::Test::vars();
my $var = "$v->{t_logs}/committer-instance";
system('rm', '-rf', $var);
mkdir $var; mkdir "$var/conf";
{
    open my $fh, '>', "$var/conf/local.conf" or die $!;
    # three processes (event's default); a short store timeout so a stuck committer shows soon
    print $fh OSTest::three_processes() . "OrderSyncStoreTimeout 1500\n";
    print $fh "LogFormat \"%P %{tid}P %>s %D %r\" pids\nCustomLog logs/pid_log pids\n";
    if (($ENV{OS_TEST_LABEL} // '') eq 'pg') {
        print $fh "DBDriver pgsql\nDBDParams \"host=$ENV{OS_PG_SOCK} port=$ENV{OS_PG_PORT} "
                . "dbname=ordersync user=postgres\"\n";
    }
    close $fh;
}
# the orders refused while the committer is stopped (below)
expect_error_log('ordersync: order [^ ]+ not stored: timed out waiting for the store');
my ($rc, $out) = OSTest::start_instance($var);
is($rc, 0, 'a separate instance with three processes starts') or diag($out);
my $info = JSON::PP::decode_json(OSTest::read_file("$var/instance.json"));
my $base = $info->{base_url};
my $key = $info->{source}{key};
my $auth = { Authorization => "Bearer $key" };
my $json = { %$auth, 'Content-Type' => 'application/json' };
my $tag = "C$$";

sub post {
    my ($http, $ref, %over) = @_;
    return $http->post("$base/orders", { headers => $json,
        content => JSON::PP::encode_json(order_payload(reference => $ref, %over)) });
}
sub committers {    # the pids that took the committer's role, in order
    my $log = OSTest::read_file("$var/logs/error_log");
    return $log =~ /process (\d+) now commits the orders of every process/g;
}
sub wait_for { my ($cond, $secs) = @_; my $end = time + $secs;
    while (time < $end) { return 1 if $cond->(); Time::HiRes::sleep(0.1) } return $cond->() }

my $http = HTTP::Tiny->new(timeout => 10);
is(post($http, "$tag-first")->{status}, 202, 'an order is accepted');
ok(wait_for(sub { scalar committers() }, 5), 'one process announced that it commits for all');
my ($first) = (committers())[-1];

# Clients posting orders for a while, each logging "status reference" per answer to
# $var/<name>-<n>; a connection to a killed process breaks, and the next request opens
# another. clients() returns their pids, results() the count of each status and the
# references answered 202 or 200.
sub clients {
    my ($n, $secs, $name) = @_;
    my @pids;
    for my $w (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $h = HTTP::Tiny->new(timeout => 8, keep_alive => 1);
            open my $log, '>', "$var/$name-$w" or POSIX::_exit(1);
            $log->autoflush(1);
            my $end = Time::HiRes::time() + $secs;
            for (my $i = 1; Time::HiRes::time() < $end; $i++) {
                my $ref = "$tag-$name-$w-$i";
                my $res = post($h, $ref);
                print $log "$res->{status} $ref\n";
                $h = HTTP::Tiny->new(timeout => 8, keep_alive => 1) if $res->{status} == 599;
            }
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    return @pids;
}
sub results {
    my ($n, $name) = @_;
    my (%status, @acked);
    for my $w (1 .. $n) {
        open my $fh, '<', "$var/$name-$w" or next;
        while (<$fh>) {
            my ($st, $ref) = split;
            $status{$st}++;
            push @acked, $ref if $st == 202 || $st == 200;
        }
    }
    return (\%status, @acked);
}

# --- the committer dies while four clients post orders ---------------------------------
my @kids = clients(4, 3, 'kill');
Time::HiRes::sleep(1);
ok(kill('KILL', $first), "the committing process ($first) is killed while orders arrive");
waitpid($_, 0) for @kids;

my ($st, @acked) = results(4, 'kill');
my %status = %$st;
my @odd = grep { !/^(200|202|503|599)$/ } keys %status;
is(scalar(@odd), 0, 'every answer was 202, 200, 503 or a broken connection')
    or diag(join ' ', map { "$_ x$status{$_}" } sort keys %status);
ok(($status{202} // 0) > 40, "orders kept being accepted (" . ($status{202} // 0) . ")");
ok(wait_for(sub { grep { $_ != $first } committers() }, 5),
   'another process took over the committing');
my @missing = grep {
    my $res = $http->get("$base/orders/demo/$_", { headers => $auth });
    $res->{status} != 200 || $res->{content} !~ /"reference":"\Q$_\E"/;
} @acked;
is(scalar(@missing), 0, 'every acknowledged order is in the store')
    or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");
is(post($http, "$tag-after")->{status}, 202, 'a new order after the takeover is accepted');

# --- an order too big for a slot (32 KB) goes through its own process ---------------------
my @items = map { { sku => "SKU-$_", description => ('x' x 900), qty => 1 } } 1 .. 50;
my $big = post($http, "$tag-big", items => \@items);
is($big->{status}, 202, 'an order of ~50 KB is accepted');
my $got = $http->get("$base/orders/demo/$tag-big", { headers => $auth });
ok($got->{status} == 200 && $got->{content} =~ /SKU-50/, 'and stored whole');

# --- a stuck committer: 503 after the store timeout, nothing written -------------------
my ($stuck) = (committers())[-1];
kill 'STOP', $stuck;
my (@codes, @refused);
for my $i (1 .. 6) {
    # new connections, so they spread over the processes (the stopped one never answers)
    my $h = HTTP::Tiny->new(timeout => 4);
    my $t0 = Time::HiRes::time();
    my $res = post($h, "$tag-stuck-$i");
    push @codes, $res->{status};
    if ($res->{status} == 503) {
        push @refused, ["$tag-stuck-$i", Time::HiRes::time() - $t0, $res];
    }
}
kill 'CONT', $stuck;
# every answer is 503 (not stored), 599 (a connection to the stopped process) or, should the
# order have been committed after all, 202 with the order in the store
my @wrong = grep { my ($ref, $st) = @$_;
    $st == 503 ? $http->get("$base/orders/demo/$ref", { headers => $auth })->{status} != 404
  : $st == 202 ? $http->get("$base/orders/demo/$ref", { headers => $auth })->{status} != 200
  : $st != 599 } map { ["$tag-stuck-$_", $codes[$_ - 1]] } 1 .. @codes;
ok(@refused >= 3 && !@wrong,
   "with the committer stopped, requests get 503 and nothing is stored for them: @codes")
    or diag("stopped $stuck; committers: @{[committers()]}; pids:\n" . `tail -12 $var/logs/pid_log`);
ok(@refused && !grep({ $_->[1] > 3.5 || !$_->[2]{headers}{'retry-after'} } @refused),
   '503 comes after about the store timeout, with Retry-After');
ok(wait_for(sub { post($http, "$tag-resumed-" . int(rand(1e9)))->{status} == 202 }, 5),
   'once it runs again, orders are accepted');

# --- a graceful restart while orders arrive ---------------------------------------------
my $elected = scalar(my @c = committers());
my @gk = clients(3, 2.5, 'graceful');
Time::HiRes::sleep(0.8);
kill 'USR1', $info->{pid};
waitpid($_, 0) for @gk;
my ($gst, @gacked) = results(3, 'graceful');
my %gs = %$gst;
ok(!grep({ !/^(202|599)$/ } keys %gs) && @gacked > 20,
   'across a graceful restart orders are accepted (a closing connection aside): '
   . join(' ', map { "$_ x$gs{$_}" } sort keys %gs));
ok(wait_for(sub { my @n = committers(); @n > $elected }, 5),
   'the new generation of processes has a committer of its own');
my @gmissing = grep { $http->get("$base/orders/demo/$_", { headers => $auth })->{status} != 200 }
               @gacked;
is(scalar(@gmissing), 0, 'every order accepted across the restart is in the store');

OSTest::instance($var, 'stop');
