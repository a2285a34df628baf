# Every order answered 202 survives an abrupt kill of the whole server (kill -9 of its process
# group while orders are arriving): after a restart each one is there, with its content.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use HTTP::Tiny ();
use POSIX ();
use lib 't/lib';
use OSTest;

plan tests => 6;

my $v = Apache::Test::vars();
my $var = "$v->{t_logs}/killed-instance";
if (($ENV{OS_TEST_LABEL} // '') eq 'pg') {
    # the same store as the suite's PostgreSQL cluster (the references are distinct)
    mkdir $var; mkdir "$var/conf";
    open my $fh, '>', "$var/conf/local.conf" or die $!;
    print $fh "DBDriver pgsql\nDBDParams \"host=$ENV{OS_PG_SOCK} port=$ENV{OS_PG_PORT} "
            . "dbname=ordersync user=postgres\"\n";
    close $fh;
}
my ($rc, $out, $port) = OSTest::start_instance($var);
is($rc, 0, 'a separate instance starts') or diag($out);
my $info = JSON::PP::decode_json(OSTest::read_file("$var/instance.json"));
my $base = $info->{base_url};
my $key = $info->{source}{key};
my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 1);

# four writers, each posting orders as fast as it can and logging every 202/200 it got
my @kids;
for my $w (1 .. 4) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $h = HTTP::Tiny->new(timeout => 5, keep_alive => 1);
        open my $log, '>', "$var/acked-$w" or POSIX::_exit(1);
        $log->autoflush(1);
        for my $i (1 .. 100000) {
            my $ref = "KILL-$w-$i";
            my $res = $h->post("$base/orders", { headers => {
                Authorization => "Bearer $key", 'Content-Type' => 'application/json' },
                content => JSON::PP::encode_json(order_payload(reference => $ref)) });
            last if $res->{status} == 599;    # the server is gone
            print $log "$ref\n" if $res->{status} == 202 || $res->{status} == 200;
        }
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
select(undef, undef, undef, 1.5);
kill 'KILL', -$info->{pid};          # the whole process group, parent and children at once
waitpid($_, 0) for @kids;
sub alive {    # a zombie (nobody reaps it in some containers) is dead too
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh>;
    return $stat !~ /^\d+ \(.*\) Z/;
}
select(undef, undef, undef, 0.2);
ok(!alive($info->{pid}), 'the server is dead');

my @acked;
for my $w (1 .. 4) {
    open my $fh, '<', "$var/acked-$w" or next;
    push @acked, map { chomp; $_ } <$fh>;
}
ok(@acked > 20, 'orders were being accepted when it died (' . scalar(@acked) . ')');

unlink "$var/run/httpd.pid";
($rc, $out) = OSTest::instance($var, 'start', $port);
is($rc, 0, 'the instance starts again on the same store') or diag($out);

my @missing = grep {
    my $res = $http->get("$base/orders/demo/$_", { headers => { Authorization => "Bearer $key" } });
    $res->{status} != 200 || $res->{content} !~ /"reference":"\Q$_\E"/;
} @acked;
is(scalar(@missing), 0, 'every acknowledged order is in the store after the kill')
    or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");

my $res = $http->post("$base/orders", { headers => { Authorization => "Bearer $key",
    'Content-Type' => 'application/json' }, content => JSON::PP::encode_json(order_payload(reference => $acked[0])) });
is($res->{status}, 200, 'and a resent acknowledged order is recognised as a replay');
OSTest::instance($var, 'stop');
